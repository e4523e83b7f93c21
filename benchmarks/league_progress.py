"""Does the league make progress? A tournament over one training run's league snapshots.

    python benchmarks/league_progress.py runs/NAME [--snapshots 8] [--games 16] [--workers 2]
    python benchmarks/league_progress.py --train-minutes 30 [--snapshots 8] ...

Takes `--snapshots` snapshots evenly spaced over the run (first and latest included), plays
a round robin with sides swapped, and prints the ranked table with each snapshot's training
update, whether ratings rise with the update (Spearman rank correlation), and the latest
snapshot's score against the first (target: >= 0.8). With --train-minutes it first trains
configs/default.yaml for that long (evaluation off) in a fresh run directory.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from lightning.pytorch.callbacks import Callback

from arena.config import CONFIG_DIR, load_config
from arena.play.players import MatchGame
from arena.play.tournament import Entrant, run_tournament
from league.pool import OpponentPool


class StopAfter(Callback):
    def __init__(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + seconds

    def on_train_batch_end(self, trainer, *args) -> None:
        if time.perf_counter() >= self.deadline:
            trainer.should_stop = True


def spearman(x: list[float], y: list[float]) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="a run directory with league snapshots")
    parser.add_argument("--train-minutes", type=float, default=None)
    parser.add_argument("--snapshots", type=int, default=8)
    parser.add_argument("--games", type=int, default=16, help="games per pair")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.train_minutes is not None:
        from arena.train import train

        cfg = load_config(CONFIG_DIR / "default.yaml", [
            f"run.name=bench-league-{datetime.now():%Y%m%d-%H%M%S}", "eval.every=0",
            "watch.every=0", "trainer.max_updates=1000000"])
        run = train(cfg, callbacks=[StopAfter(args.train_minutes * 60)])
    elif args.run:
        run = Path(args.run)
    else:
        parser.error("give a run directory or --train-minutes")
    cfg = load_config(run / "config.yaml")
    game = MatchGame(cfg.game.name, dict(cfg.game.options))
    snaps = OpponentPool.open(next((run / "league").iterdir())).snapshots
    if len(snaps) < 2:
        raise SystemExit(f"{run}: needs at least 2 league snapshots, has {len(snaps)}")
    picks = sorted({int(round(i)) for i in np.linspace(0, len(snaps) - 1, args.snapshots)})
    entrants = [Entrant(f"{run}@{snaps[i].id}", f"{run.name}@{snaps[i].id}", snaps[i].update)
                for i in picks]
    t0 = time.perf_counter()
    table, _ = run_tournament(entrants, game, games=args.games, seed=args.seed,
                              workers=args.workers)
    seconds = time.perf_counter() - t0
    rows = table.table()
    update = {e.name: e.update for e in entrants}
    print(f"{run}: {len(entrants)} of {len(snaps)} snapshots, {args.games} games per pair, "
          f"{seconds:.0f} s")
    print(f"{'rank':>4s} {'snapshot':24s} {'update':>7s} {'mu':>6s} {'mu-3s':>6s} {'win rate':>8s}")
    for r in rows:
        print(f"{r['rank']:4d} {r['name']:24s} {update[r['name']]:7d} {r['mu']:6.1f} "
              f"{r['conservative']:6.1f} {r['win_rate']:8.2f}")
    by_update = sorted(entrants, key=lambda e: e.update)
    rho = spearman([e.update for e in by_update], [table.rating(e.name)[0] for e in by_update])
    print(f"ratings vs training update: Spearman {rho:+.2f}")
    first, last = by_update[0], by_update[-1]
    _, result = run_tournament([last, first], game, games=max(args.games, 50),
                               seed=args.seed + 99)
    scores = np.array([g[0] for g in next(iter(result.values()))])
    print(f"latest ({last.name}, update {last.update}) vs first ({first.name}, update "
          f"{first.update}): {scores.mean():.2f} over {len(scores)} games (target >= 0.80)")


if __name__ == "__main__":
    main()
