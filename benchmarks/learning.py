"""Learning curve of any config: the latest policy's score against every anchor of its game
(`random`, which every game has, and the bots the game registers), over wall-clock time.

    python benchmarks/learning.py [CONFIG] [--minutes 60] [--every 20] [--games 32]
                                  [--target BOT:RATE:MINUTES ...] [key=value ...]

Trains CONFIG (default configs/default.yaml, plus overrides) in a fresh run directory under
runs/bench-learning-*/, evaluates every `--every` updates (the policy playing every team in
turn), and prints one row per evaluation: training minutes (evaluation time excluded),
updates, agent-steps, and the score (win 1, draw 0.5) against each anchor. At the end it
prints when each target was first met. Targets on the 2-core dev machines (issue notes):

    default.yaml       random:0.95:10  pusher:0.60:60
    connect_four.yaml  random:0.95:10  connect4:0.60:30
    magent_battle.yaml random:0.90:20
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from arena.config import CONFIG_DIR, load_config
from arena.evaluate import BotEvaluator
from games.registry import bot_names

DEFAULT_TARGETS = {
    "default.yaml": ("random:0.95:10", "pusher:0.60:60"),
    "connect_four.yaml": ("random:0.95:10", "connect4:0.60:30"),
    "magent_battle.yaml": ("random:0.90:20",),
}


class TimedEvaluator(BotEvaluator):
    """A BotEvaluator that also prints a row and keeps its own time out of the clock."""

    def __init__(self, bots, games, seed, game) -> None:
        super().__init__(bots, games, seed, game=game)
        self.t0 = time.perf_counter()
        self.eval_seconds = 0.0
        self.rows: list[tuple[float, int, int, dict[str, float]]] = []
        print(f"{'minutes':>8s} {'updates':>8s} {'agent-steps':>12s} "
              + " ".join(f"{b:>10s}" for b in bots), flush=True)

    def __call__(self, learner):
        start = time.perf_counter()
        out = super().__call__(learner)
        self.eval_seconds += time.perf_counter() - start
        minutes = (start - self.t0 - (self.eval_seconds - (time.perf_counter() - start))) / 60
        rates = {k[len("eval/win_rate_vs_"):]: v for k, v in out.items()
                 if k.startswith("eval/win_rate_vs_") and "/" not in k[len("eval/win_rate_vs_"):]}
        self.rows.append((minutes, learner.updates, learner.agent_steps, rates))
        print(f"{minutes:8.1f} {learner.updates:8d} {learner.agent_steps:12,d} "
              + " ".join(f"{rates[b]:10.2f}" for b in self.bots), flush=True)
        return out


def parse_target(text: str) -> tuple[str, float, float]:
    bot, rate, minutes = text.split(":")
    return bot, float(rate), float(minutes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(CONFIG_DIR / "default.yaml"))
    parser.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    parser.add_argument("--every", type=int, default=20, help="evaluate every N updates")
    parser.add_argument("--games", type=int, default=32, help="games per bot per evaluation")
    parser.add_argument("--target", action="append", default=None, metavar="BOT:RATE:MINUTES")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. ppo.lr=1e-3")
    args = parser.parse_intermixed_args()  # overrides may follow the options
    if args.config and "=" in args.config:
        args.overrides.insert(0, args.config)
        args.config = str(CONFIG_DIR / "default.yaml")
    from arena.train import train

    name = f"bench-learning-{datetime.now():%Y%m%d-%H%M%S}"
    cfg = load_config(args.config, [
        f"run.name={name}", "trainer.max_updates=1000000", f"eval.every={args.every}",
        f"eval.games={args.games}", *args.overrides])
    bots = list(bot_names(cfg.game.name))
    evaluator = TimedEvaluator(bots, args.games, cfg.run.seed + 17, cfg.game.name)
    targets = [parse_target(t) for t in
               (args.target or DEFAULT_TARGETS.get(Path(args.config).name, ()))]
    budget = args.minutes * 60

    class Stop:
        """Stops the run once the training time (evaluation excluded) is spent."""

        def __call__(self, learner):
            out = evaluator(learner)
            if time.perf_counter() - evaluator.t0 - evaluator.eval_seconds >= budget:
                learner.trainer.should_stop = True
            return out

    train(cfg, evaluator=Stop())
    print()
    for bot, rate, minutes in targets:
        hit = next((r for r in evaluator.rows if r[3].get(bot, -1) >= rate), None)
        when = f"first at {hit[0]:.1f} min (update {hit[1]})" if hit else "not reached"
        ok = hit is not None and hit[0] <= minutes
        print(f"target: beat {bot} >= {rate:.0%} within {minutes:.0f} min: {when} "
              f"-> {'met' if ok else 'NOT met'}", file=sys.stdout)


if __name__ == "__main__":
    main()
