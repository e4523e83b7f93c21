"""Agent-steps per second of the built-in MOBA, random legal actions.

    python benchmarks/env_throughput.py [--seconds 10] [--threads 1 2] [--scale-games 256]

On one core (serial kernels):
(a) the batched core, 3v3, B=256 games, observations and masks included;
(b) the single-game PettingZoo env (dict in, dicts out);
(c) the batched core, 5v5, B=64 games.
Targets on one core of the 2-core dev machines: (a) 500,000, (b) 20,000, (c) 210,000
(the last is what PufferLib's C MOBA, 5v5 with 64 games, measures on these machines).

Then the thread scaling of the batched 3v3 core (`MobaCore(threads=k)`, random actions
sampled on the same threads) at B=256 for each `--threads` count, with the ratio to one
thread; target on the 2-core machines: 2 threads >= 1.7x one thread. The thread counts
are measured in alternating windows, so a change in the machine's load hits them alike;
the figure means something only on an otherwise idle machine, so the load average is
printed beside it. numba's pool is sized to the largest `--threads` (NUMBA_NUM_THREADS is
set before numba is imported); the single-core figures run the serial kernels, on one
thread. The threading layer is printed too (NUMBA_THREADING_LAYER chooses another).

Each figure is the median of 5 timed windows after a warm-up (numba compiles on first use).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

SCALING_TARGET = 1.7  # 2 threads vs 1, at B=256 on the 2-core machines


def _windows(steps: list[Callable[[], None]], agents_per_step: list[int], seconds: float,
             windows: int = 5) -> list[float]:
    """Median agent-steps/s of each stepper; their timed windows alternate."""
    for step in steps:
        for _ in range(50):  # warm-up
            step()
    rates: list[list[float]] = [[] for _ in steps]
    for _ in range(windows):
        for i, step in enumerate(steps):
            n = 0
            start = time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds / windows / len(steps):
                for _ in range(20):
                    step()
                n += 20
            rates[i].append(n * agents_per_step[i] / elapsed)
    return [statistics.median(r) for r in rates]


def _core_step(team_size: int, num_games: int, threads: int = 1) -> Callable[[], None]:
    from games.moba import MobaCore

    core = MobaCore(num_games=num_games, team_size=team_size, threads=threads)
    core.reset(seed=0)
    rng = core.new_rng_state(1)

    def step():
        core.step(core.sample_actions(rng))

    return step


def bench_core(team_size: int, num_games: int, seconds: float) -> float:
    return _windows([_core_step(team_size, num_games)], [num_games * 2 * team_size], seconds)[0]


def bench_env(team_size: int, seconds: float) -> float:
    import numpy as np

    from games.moba import MobaEnv

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

    return _windows([step], [2 * team_size], seconds)[0]


def bench_scaling(num_games: int, threads: list[int], seconds: float) -> list[float]:
    """3v3 agent-steps/s of `MobaCore(threads=k)` for each k, in alternating windows."""
    steps = [_core_step(3, num_games, k) for k in threads]
    return _windows(steps, [num_games * 6] * len(threads), seconds * len(threads))


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per case")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts of the scaling figure (default: 1 2)")
    parser.add_argument("--scale-games", type=int, nargs="+", default=[256],
                        help="batch sizes of the scaling figure (default: 256)")
    args = parser.parse_args()
    if min(args.threads) < 1 or min(args.scale_games) < 1:
        parser.error("--threads and --scale-games take positive ints")
    threads = sorted(set(args.threads) | {1})
    # before numba is imported: its pool is sized once, for the largest count asked
    os.environ["NUMBA_NUM_THREADS"] = str(max(threads))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import numba  # not before NUMBA_NUM_THREADS is set

    # The single-core figures use `threads=1` cores, whose serial kernels never start
    # numba's pool; so the pool starts with the first threaded core, which picks the
    # threading layer (see games/moba/core.py).
    print(_load(), flush=True)
    cases = [
        ("(a) batched core, 3v3, B=256", lambda: bench_core(3, 256, args.seconds), 500_000),
        ("(b) PettingZoo env, 3v3, 1 game", lambda: bench_env(3, args.seconds), 20_000),
        ("(c) batched core, 5v5, B=64", lambda: bench_core(5, 64, args.seconds), 210_000),
    ]
    print(f"{'case (one core)':34s} {'agent-steps/s':>14s} {'target':>10s}  ok")
    for name, run, target in cases:
        rate = run()
        print(f"{name:34s} {rate:14,.0f} {target:10,d}  {'yes' if rate >= target else 'NO'}",
              flush=True)

    print("\nthread scaling, batched core, 3v3 (target: 2 threads >= "
          f"{SCALING_TARGET}x one thread)", flush=True)
    print(f"{'games':>6s} {'threads':>8s} {'agent-steps/s':>14s} {'vs 1 thread':>12s}  "
          f"{'target':>7s}  ok", flush=True)
    for num_games in args.scale_games:
        rates = bench_scaling(num_games, threads, args.seconds)
        for k, rate in zip(threads, rates):
            ratio = rate / rates[0]
            if k == 2:
                verdict = f"{SCALING_TARGET:6.2f}x  {'yes' if ratio >= SCALING_TARGET else 'NO'}"
            else:
                verdict = ""
            print(f"{num_games:6d} {k:8d} {rate:14,.0f} {ratio:11.2f}x  {verdict}".rstrip(),
                  flush=True)
    print(f"numba threading layer {numba.threading_layer()}, {_load()}", flush=True)


if __name__ == "__main__":
    main()
