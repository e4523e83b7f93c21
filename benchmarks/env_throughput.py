"""Agent-steps per second of the built-in MOBA, on one core, random legal actions.

    python benchmarks/env_throughput.py [--seconds 10]

(a) the batched core, 3v3, B=256 games, observations and masks included;
(b) the single-game PettingZoo env (dict in, dicts out);
(c) the batched core, 5v5, B=64 games.
Targets on one core of the 2-core dev machines: (a) 500,000, (b) 20,000, (c) 210,000
(the last is what PufferLib's C MOBA, 5v5 with 64 games, measures on these machines).
Each figure is the median of 5 timed windows after a warm-up (numba compiles on first use).
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from games.moba import MobaCore, MobaEnv  # noqa: E402


def _windows(step, agents_per_step: int, seconds: float, windows: int = 5) -> float:
    for _ in range(50):  # warm-up
        step()
    rates = []
    for _ in range(windows):
        n = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / windows:
            for _ in range(20):
                step()
            n += 20
        rates.append(n * agents_per_step / elapsed)
    return statistics.median(rates)


def bench_core(team_size: int, num_games: int, seconds: float) -> float:
    core = MobaCore(num_games=num_games, team_size=team_size)
    core.reset(seed=0)
    rng = core.new_rng_state(1)

    def step():
        core.step(core.sample_actions(rng))

    return _windows(step, num_games * 2 * team_size, seconds)


def bench_env(team_size: int, seconds: float) -> float:
    env = MobaEnv(team_size=team_size)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    state = {"obs": obs}

    def step():
        obs = state["obs"]
        masks = np.stack([o["action_mask"] for o in obs.values()])
        picks = np.argmax(rng.random(masks.shape) * masks, axis=1)
        actions = dict(zip(obs.keys(), picks.tolist()))
        obs, _, _, _, _ = env.step(actions)
        if not env.agents:
            obs, _ = env.reset()
        state["obs"] = obs

    return _windows(step, 2 * team_size, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per case")
    args = parser.parse_args()
    cases = [
        ("(a) batched core, 3v3, B=256", lambda: bench_core(3, 256, args.seconds), 500_000),
        ("(b) PettingZoo env, 3v3, 1 game", lambda: bench_env(3, args.seconds), 20_000),
        ("(c) batched core, 5v5, B=64", lambda: bench_core(5, 64, args.seconds), 210_000),
    ]
    print(f"{'case':34s} {'agent-steps/s':>14s} {'target':>10s}  ok")
    for name, run, target in cases:
        rate = run()
        print(f"{name:34s} {rate:14,.0f} {target:10,d}  {'yes' if rate >= target else 'NO'}",
              flush=True)


if __name__ == "__main__":
    main()
