"""Learning curve of the default config: win rate of the latest policy vs each scripted bot,
against wall-clock time.

    python benchmarks/learning_moba.py [--minutes 60] [--every 20] [--games 32] [key=value ...]

Trains `configs/default.yaml` (plus overrides) in a fresh run directory under
runs/bench-learning-*/, evaluates every `--every` updates (half the games as radiant, half
as dire), and prints one row per evaluation: training minutes (evaluation time excluded),
updates, agent-steps, and the win rate against each bot. At the end it prints when each
target was first met: beats random >= 95% within 10 minutes, beats the strongest bot
(pusher) >= 60% within 60 minutes, on the 2-core dev machines.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from arena.config import CONFIG_DIR, load_config
from arena.evaluate import BotEvaluator
from games.moba.bots import BOT_NAMES

TARGETS = (("random", 0.95, 10.0), ("pusher", 0.60, 60.0))


class TimedEvaluator(BotEvaluator):
    """A BotEvaluator that also prints a row and keeps its own time out of the clock."""

    def __init__(self, bots, games, seed) -> None:
        super().__init__(bots, games, seed)
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
        rates = {k.rsplit("_", 1)[-1]: v for k, v in out.items()}
        self.rows.append((minutes, learner.updates, learner.agent_steps, rates))
        print(f"{minutes:8.1f} {learner.updates:8d} {learner.agent_steps:12,d} "
              + " ".join(f"{rates[b]:10.2f}" for b in self.bots), flush=True)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    parser.add_argument("--every", type=int, default=20, help="evaluate every N updates")
    parser.add_argument("--games", type=int, default=32, help="games per bot per evaluation")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. ppo.lr=1e-3")
    args = parser.parse_args()
    from arena.train import train

    name = f"bench-learning-{datetime.now():%Y%m%d-%H%M%S}"
    cfg = load_config(CONFIG_DIR / "default.yaml", [
        f"run.name={name}", "trainer.max_updates=1000000", f"eval.every={args.every}",
        f"eval.games={args.games}", *args.overrides])
    evaluator = TimedEvaluator(list(BOT_NAMES), args.games, cfg.run.seed + 17)
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
    for bot, rate, minutes in TARGETS:
        hit = next((r for r in evaluator.rows if r[3][bot] >= rate), None)
        when = f"first at {hit[0]:.1f} min (update {hit[1]})" if hit else "not reached"
        ok = hit is not None and hit[0] <= minutes
        print(f"target: beat {bot} >= {rate:.0%} within {minutes:.0f} min: {when} "
              f"-> {'met' if ok else 'NOT met'}", file=sys.stdout)


if __name__ == "__main__":
    main()
