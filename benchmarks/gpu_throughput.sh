#!/usr/bin/env bash
# End-to-end agent-steps/s and the floor (the same networks' least PPO work, plain PyTorch)
# for the 3v3 MOBA on one GPU, bf16-mixed, at 1,024 and 4,096 games, the games stepped on
# every CPU core (game.threads), after a check that the collector's pinned, non-blocking
# copies to the GPU record every step intact. One prepared run, under 5 minutes warm:
#
#     bash benchmarks/gpu_throughput.sh            # from the repository root
#
# Goal on one H200 (issue 11): >= 1,000,000 agent-steps/s end to end.
#
# The project runs from the checkout (PYTHONPATH), on the machine's own python3 with its
# PyTorch. A GPU machine that cannot fetch packages gets the few it lacks as wheels in
# .whl/ (installed into /tmp/site when present); fetch them beforehand, where pip works:
#
#     bash benchmarks/gpu_throughput.sh --fetch-wheels [PYTHON_VERSION]   # default 3.12
#
# (.whl/ is meant to be ignored by git: `echo /.whl/ >> .git/info/exclude`.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# what the project needs that a CUDA image with PyTorch and Lightning usually lacks
WHEELS="pettingzoo==1.27.0 gymnasium==1.4.0 farama-notifications==0.0.6 pyzmq==27.3.0 omegaconf==2.4.0 openskill==6.2.0"

if [ "${1:-}" = "--fetch-wheels" ]; then
    VERSION=${2:-3.12}
    platforms=""
    for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_26_x86_64 \
             manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
        platforms="$platforms --platform $p"
    done
    # shellcheck disable=SC2086
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$VERSION" \
        --implementation cp $platforms -d .whl $WHEELS
    ls -l .whl
    exit 0
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import arena.train, games.registry" 2>/dev/null; then
    if ls .whl/*.whl >/dev/null 2>&1; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl
        export PYTHONPATH="$PYTHONPATH:/tmp/site"
    fi
fi
"$PY" - <<'PY'
import torch
import arena.train  # noqa: F401  (the project and all it imports)
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}")
PY
THREADS=$(nproc)
export PYTHONUNBUFFERED=1
# the pinned, non-blocking copies deliver every step's observations intact (exit 1 if not)
timeout 90 "$PY" benchmarks/staging_check.py --device cuda --games 1024 --rollouts 3 \
    || echo "[staging] check failed or timed out"
for GAMES in 1024 4096; do
    timeout 140 "$PY" benchmarks/train_throughput.py --settings moba --warmup 2 --updates 4 --floor-repeats 1 \
        trainer.accelerator=gpu trainer.devices=1 trainer.precision=bf16-mixed \
        game.num_envs=$GAMES game.threads=$THREADS league.snapshot_every=1000000 \
        watch.every=0 ppo.num_minibatches=4 || echo "[moba] $GAMES games: failed or timed out"
done
