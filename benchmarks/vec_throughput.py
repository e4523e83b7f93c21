"""Agent-steps per second of a third-party game, in process vs in worker processes.

    python benchmarks/vec_throughput.py [--games 8] [--map-size 20] [--workers 2]
                                        [--seconds 10]

magent2 battle (map_size 20, 8 games by default), uniformly random legal actions, stepped
(a) in process (`make_vec(..., threads=1)`, one Python loop over the games) and (b) by a
`games.procvec.ProcVec` with `--workers` worker processes writing into shared memory
(`make_vec(..., threads=W)`), blocking `step`; then (c) the same ProcVec driven the way an
overlapped collector drives it: two halves of whole workers, one half's actions drawn
while the other half steps (`step_async`/`wait`). Agent-steps count the agents that acted
(`active`). Each figure is the median of 5 timed windows that alternate between the three,
after a warm-up, so a change in the machine's load hits them alike; it means something
only on an otherwise idle machine, so the load average is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

BATTLE = "pettingzoo:magent2.environments.battle_v4:parallel_env"


def random_legal(vec, st, rng: np.random.Generator) -> np.ndarray:
    """(n, S) random legal actions for the n games of the step (or step view) `st`."""
    n = len(st.dones)
    actions = np.zeros((n, vec.num_slots), np.int64)
    for role in vec.roles:
        mask = st.action_mask[role.name]
        actions[:, list(role.slots)] = (rng.random(mask.shape) * mask).argmax(-1)
    return actions


class Blocking:
    """Steps the whole batch with `step`; returns the agents that acted."""

    def __init__(self, vec, seed: int) -> None:
        self.vec, self.rng = vec, np.random.default_rng(seed)
        self.st = vec.reset(seed=seed)

    def __call__(self) -> int:
        self.st = self.vec.step(random_legal(self.vec, self.st, self.rng))
        return int(self.st.active.sum())


class Halves:
    """Two halves of whole workers: draw one half's actions while the other steps."""

    def __init__(self, vec, seed: int) -> None:
        self.vec, self.rng = vec, np.random.default_rng(seed)
        vec.reset(seed=seed)
        self.halves = vec.game_groups(2)
        for h in self.halves:
            vec.step_async(random_legal(vec, vec.view(h), self.rng), h)

    def __call__(self) -> int:
        n = 0
        for h in self.halves:
            st = self.vec.wait(h)
            n += int(st.active.sum())
            self.vec.step_async(random_legal(self.vec, st, self.rng), h)
        return n


def measure(steppers: dict[str, object], seconds: float, windows: int = 5) -> dict[str, float]:
    for step in steppers.values():
        for _ in range(20):  # warm-up
            step()
    rates: dict[str, list[float]] = {k: [] for k in steppers}
    for _ in range(windows):
        for k, step in steppers.items():
            agents = 0
            start = time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds / windows / len(steppers):
                agents += step()
            rates[k].append(agents / elapsed)
    return {k: statistics.median(r) for k, r in rates.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--games", type=int, default=8)
    ap.add_argument("--map-size", type=int, default=20)
    ap.add_argument("--max-cycles", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0, help="timed seconds in all")
    args = ap.parse_args()

    from games.vector import make_vec

    kw = dict(teams={"red": "red_", "blue": "blue_"}, map_size=args.map_size,
              max_cycles=args.max_cycles)
    inproc = make_vec(BATTLE, args.games, **kw)
    with make_vec(BATTLE, args.games, threads=args.workers, **kw) as procs:
        steppers = {"in-process": Blocking(inproc, 0), "procvec": Blocking(procs, 0)}
        if procs.workers >= 2:
            with make_vec(BATTLE, args.games, threads=args.workers, **kw) as halves_vec:
                steppers["procvec-halves"] = Halves(halves_vec, 0)
                rates = measure(steppers, args.seconds)
        else:
            rates = measure(steppers, args.seconds)
    inproc.close()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"magent2 battle map_size={args.map_size}, {args.games} games "
          f"({inproc.num_slots} agent slots each), random legal actions; "
          f"{os.cpu_count()} cores, load average {load}")
    base = rates["in-process"]
    print(f"  in-process              {base:>10,.0f} agent-steps/s")
    print(f"  ProcVec {args.workers} workers       {rates['procvec']:>10,.0f} agent-steps/s  "
          f"ratio {rates['procvec'] / base:.2f}")
    if "procvec-halves" in rates:
        print(f"  ProcVec halves (async)  {rates['procvec-halves']:>10,.0f} agent-steps/s  "
              f"ratio {rates['procvec-halves'] / base:.2f}")


if __name__ == "__main__":
    main()
