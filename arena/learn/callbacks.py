"""What happens around the update, every so many updates, as Lightning callbacks: league
snapshots (`league.snapshot_every`), evaluation against fixed references (`eval.every`)
and match GIFs (`watch.every`). The LightningModule keeps only the update; the Trainer runs
these after it, before checkpoints are written (Lightning keeps checkpoint callbacks last),
so a checkpoint holds the snapshot and ratings of its own update."""

from __future__ import annotations

import time
from typing import Any, Callable

import lightning as L
from lightning.pytorch.callbacks import Callback


def _log(module: Any, metrics: dict[str, float]) -> None:
    module.last_metrics.update(metrics)
    if module.logger is not None and metrics:
        module.logger.log_metrics(metrics, step=module.updates)


class LeagueSnapshots(Callback):
    """Rank 0 freezes the current weights of every role into its pool every `every`
    updates, freezes and resets exploiters that are done (league/exploiters.py), serves the
    league to actors and other ranks, and writes the pools' results."""

    def __init__(self, every: int) -> None:
        self.every = every

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, *args: Any) -> None:
        if not pl_module.pools or pl_module.global_rank != 0:
            return
        if pl_module.updates % self.every == 0:
            pl_module.snapshot()
        _log(pl_module, pl_module.tend_exploiters())
        pl_module.serve_league()
        for pool in pl_module.pools.values():
            pool.save_index()  # results against snapshots, on disk once per update


class Periodic(Callback):
    """Work done every `every` updates that pauses training (an evaluation, a match GIF).

    Its time is added to the learner's `paused_seconds`, so that the progress line's rate is
    the training rate, not one that drops for a minute after each evaluation, and it keeps
    its last duration, from which the progress line's ETA counts the pauses still to come."""

    every: int = 0
    last_seconds: float | None = None

    def timed(self, pl_module: Any, work: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return work()
        finally:
            self.last_seconds = time.perf_counter() - t0
            pl_module.paused_seconds += self.last_seconds

    def remaining(self, done: int, total: int) -> int:
        """Times this work still comes between update `done` (exclusive) and `total`."""
        return total // self.every - done // self.every if self.every > 0 else 0


class Evaluation(Periodic):
    """Every `every` updates, `evaluator(learner)` (arena/play/evaluate.py: win rates and a
    rating against the game's bots and league snapshots) on every rank alike; its metrics
    are logged at that update and shown on the progress line."""

    def __init__(self, evaluator: Callable[[Any], dict[str, float]], every: int) -> None:
        self.evaluator, self.every = evaluator, every

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, *args: Any) -> None:
        if self.every and pl_module.updates % self.every == 0:
            pl_module.win_rates = self.timed(pl_module, lambda: self.evaluator(pl_module))
            _log(pl_module, pl_module.win_rates)

    def teardown(self, trainer: L.Trainer, pl_module: Any, stage: str) -> None:
        close = getattr(self.evaluator, "close", None)
        if callable(close):
            close()


class MatchGifs(Periodic):
    """Every `every` updates, on rank 0, `watcher(learner)` (arena/play/watch.py) logs one
    match of the latest policy to TensorBoard as an animation."""

    def __init__(self, watcher: Callable[[Any], dict[str, float]], every: int) -> None:
        self.watcher, self.every = watcher, every

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, *args: Any) -> None:
        if trainer.is_global_zero and pl_module.updates % self.every == 0:
            _log(pl_module, self.timed(pl_module, lambda: self.watcher(pl_module)))
