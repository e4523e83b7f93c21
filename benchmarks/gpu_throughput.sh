#!/usr/bin/env bash
# End-to-end agent-steps/s and the floor (the same networks' least PPO work, plain PyTorch)
# for the 3v3 MOBA on one GPU, bf16-mixed, at 1,024 and 4,096 games, the games stepped on
# every CPU core (game.threads), after a check that the collector's pinned, non-blocking
# copies to the GPU record every step intact. One prepared run, under 5 minutes warm:
#
#     bash benchmarks/gpu_throughput.sh            # from the repository root
#
# Goal on one H200 (issue 11): >= 1,000,000 agent-steps/s end to end. Installs the project
# into .venv-gpu first when no `arena` is importable (CUDA torch from the default index).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import arena, torch; assert torch.cuda.is_available()" 2>/dev/null; then
    if [ ! -x .venv-gpu/bin/python ]; then
        "$PY" -m venv .venv-gpu
        .venv-gpu/bin/pip install -q -e .
    fi
    PY=.venv-gpu/bin/python
fi
"$PY" - <<'PY'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
PY
THREADS=$(nproc)
# the pinned, non-blocking copies deliver every step's observations intact (exit 1 if not)
timeout 90 "$PY" benchmarks/staging_check.py --device cuda --games 1024 --rollouts 3 \
    || echo "[staging] check failed or timed out"
for GAMES in 1024 4096; do
    timeout 140 "$PY" benchmarks/train_throughput.py --settings moba --warmup 2 --updates 4 --floor-repeats 1 \
        trainer.accelerator=gpu trainer.devices=1 trainer.precision=bf16-mixed \
        game.num_envs=$GAMES game.threads=$THREADS league.snapshot_every=1000000 \
        watch.every=0 ppo.num_minibatches=4 || echo "[moba] $GAMES games: failed or timed out"
done
