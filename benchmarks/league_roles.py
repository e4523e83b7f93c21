"""League roles, side by side: the same config trained with and without exploiters, at
equal wall time, on the main's worst scores that the opponent mix cannot flatter.

    python benchmarks/league_roles.py [CONFIG] [--minutes 45] [--every 20]
        [--with league.main_exploiters=1 league.league_exploiters=1 ...] [key=value ...]

Runs `benchmarks/learning.py` twice at the same time (one torch thread each, so both see
the same machine): once with CONFIG as it is and once with the `--with` overrides (by
default one main and one league exploiter). Each prints its own learning curve (saved
under runs/bench-league-roles-*/); this script then prints, at each evaluation, the main's
worst score against the game's held-out panel (`panel`) and against the fixed panel of
its own past snapshots (`past`), for both runs, and a summary at the end.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPLOITERS = ["league.main_exploiters=1", "league.league_exploiters=1",
              "league.exploiter_max_updates=100"]
COLUMNS = ("panel", "past")


def parse_curve(text: str) -> list[dict[str, float]]:
    """The rows of a learning.py curve: minutes, updates and every score column."""
    rows: list[dict[str, float]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        words = line.split()
        if words[:3] == ["minutes", "updates", "agent-steps"]:
            header = words
            continue
        if header is None or len(words) < len(header):
            continue
        try:
            values = [float(w.replace(",", "")) for w in words[:len(header)]]
        except ValueError:
            continue
        rows.append(dict(zip(header, values)))
    return rows


def value_at(rows: list[dict[str, float]], minutes: float, column: str) -> float:
    """The latest value of `column` at or before `minutes` (nan if none)."""
    seen = [r.get(column, math.nan) for r in rows if r["minutes"] <= minutes + 1e-9]
    return seen[-1] if seen else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="configs/default.yaml")
    parser.add_argument("--minutes", type=float, default=45.0)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--games", type=int, default=16)
    parser.add_argument("--with", dest="with_", nargs="+", default=EXPLOITERS,
                        metavar="KEY=VALUE", help="the overrides of the run with exploiters")
    parser.add_argument("overrides", nargs="*", help="overrides of both runs")
    args = parser.parse_intermixed_args()
    if "=" in args.config:  # only overrides were given
        args.overrides.insert(0, args.config)
        args.config = "configs/default.yaml"
    out_dir = ROOT / "runs" / f"bench-league-roles-{datetime.now():%Y%m%d-%H%M%S}"
    out_dir.mkdir(parents=True)
    base = [sys.executable, str(ROOT / "benchmarks" / "learning.py"), args.config,
            "--minutes", str(args.minutes), "--every", str(args.every), "--games",
            str(args.games), "trainer.num_threads=1", *args.overrides]
    runs = {"without": [*base, f"run.name={out_dir.name}-without"],
            "with": [*base, f"run.name={out_dir.name}-with", *args.with_]}
    procs = {}
    for name, command in runs.items():
        log = (out_dir / f"{name}.txt").open("w")
        print(f"{name} exploiters: {' '.join(command[1:])}  (log: {log.name})", flush=True)
        procs[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                        cwd=ROOT), log)
    failed = []
    for name, (proc, log) in procs.items():
        if proc.wait() != 0:
            failed.append(name)
        log.close()
    curves = {name: parse_curve((out_dir / f"{name}.txt").read_text()) for name in runs}
    if failed or not all(curves.values()):
        raise SystemExit(f"learning run(s) {failed or list(curves)} failed or printed no "
                         f"curve; see {out_dir}")
    print(f"\n{'minutes':>8s} " + " ".join(f"{c + ' ' + n:>14s}" for n in runs for c in COLUMNS))
    times = sorted({r["minutes"] for rows in curves.values() for r in rows})
    for t in times:
        print(f"{t:8.1f} " + " ".join(f"{value_at(curves[n], t, c):14.2f}"
                                      for n in runs for c in COLUMNS))
    print()
    for n in runs:
        last = curves[n][-1]
        late = [r for r in curves[n] if r["minutes"] >= last["minutes"] / 2]
        print(f"{n:>7s} exploiters: {last['updates']:.0f} updates in {last['minutes']:.1f} min; "
              f"at the end worst panel {last.get('panel', math.nan):.2f}, worst past "
              f"{last.get('past', math.nan):.2f}; over the second half, mean worst panel "
              f"{sum(r.get('panel', math.nan) for r in late) / len(late):.2f}, mean worst "
              f"past {sum(r.get('past', math.nan) for r in late) / len(late):.2f}")


if __name__ == "__main__":
    main()
