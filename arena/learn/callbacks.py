"""What happens around the update, every so many updates, as Lightning callbacks: league
snapshots (`league.snapshot_every`), evaluation against fixed references (`eval.every`),
match GIFs (`watch.every`) and the learner's choice of torch threads beside actors. The
LightningModule keeps only the update; the Trainer runs these after it, before checkpoints
are written (Lightning keeps checkpoint callbacks last), so a checkpoint holds the snapshot
and ratings of its own update."""

from __future__ import annotations

import time
from typing import Any, Callable

import lightning as L
import numpy as np
import torch
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


class ThreadChoice(Callback):
    """Where local actors collect while the learner updates and `trainer.num_threads` is
    unset, the learner's two candidate torch thread counts (`pl_module.thread_candidates`,
    set in its setup: the cores the actors leave, arena/learn/learner.learner_threads, then all)
    take turns in blocks of `block` updates, `rounds` times each, after `warmup` updates;
    the one whose updates went faster end to end (pauses left out; the first update of a
    block left out too, as its rollout was collected beside the block before) is kept.

    Why try: which wins depends on the game, the network and the precision. On 2 cores with
    one actor ahead, one learner thread was 1.35-1.6x faster than two on magent2 battle and
    1.1-1.3x on the MOBA in bf16-mixed, but 0.82-0.90x as fast on the MOBA in float32,
    whose larger update two threads still speed up. Ranks choose each for itself."""

    def __init__(self, warmup: int = 2, block: int = 3, rounds: int = 2) -> None:
        self.warmup, self.block, self.rounds = warmup, block, rounds
        self.schedule: list[int] = []
        self.seconds: dict[int, list[float]] = {}
        self.chosen: int | None = None
        self._seen = 0  # updates finished in this fit
        self._mark: tuple[float, int, float] | None = None  # clock, agent-steps, paused

    @property
    def trial_updates(self) -> int:
        """Updates of a fit after which the choice is made (from its first)."""
        return self.warmup + 2 * self.block * self.rounds

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, *args: Any) -> None:
        candidates = getattr(pl_module, "thread_candidates", None)
        if not candidates or self.chosen is not None:
            return
        now = time.perf_counter()
        mark = (now, pl_module.agent_steps, pl_module.paused_seconds)
        j = self._seen - self.warmup  # this update's place in the schedule (< 0: warm-up)
        self._seen += 1
        if not self.schedule:
            self.schedule = [c for _ in range(self.rounds) for c in candidates
                             for _ in range(self.block)]
            self.seconds = {c: [] for c in candidates}
        if j >= 0 and j % self.block and self._mark is not None:
            t0, steps0, paused0 = self._mark
            steps = pl_module.agent_steps - steps0
            if steps > 0:
                took = now - t0 - (pl_module.paused_seconds - paused0)
                self.seconds[self.schedule[j]].append(took / steps)
        self._mark = mark
        if j + 1 < len(self.schedule):
            if j + 1 >= 0:
                torch.set_num_threads(self.schedule[j + 1])
            return
        rates = {c: 1.0 / float(np.median(v)) for c, v in self.seconds.items() if v}
        self.chosen = max(rates, key=rates.get) if rates else candidates[0]
        torch.set_num_threads(self.chosen)
        if trainer.is_global_zero and len(rates) == len(candidates):
            other = next(c for c in candidates if c != self.chosen)
            print(f"torch threads: {self.chosen} ({rates[self.chosen]:,.0f} agent-steps/s end "
                  f"to end, against {rates[other]:,.0f} with {other}; trainer.num_threads "
                  "sets it)", flush=True)
