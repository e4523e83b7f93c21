"""What happens around the update, as Lightning callbacks: league snapshots
(`league.snapshot_every`), evaluation against fixed references (`eval.every`), match GIFs
(`watch.every`), the learner's choice of torch threads beside actors, the progress line,
checkpoints by update and by time (`trainer.checkpoint_every`, `checkpoint_minutes`) and
the stop on SIGINT/SIGTERM. The LightningModule keeps only the update; the Trainer runs
these after it, before checkpoints are written (Lightning keeps checkpoint callbacks last),
so a checkpoint holds the snapshot and ratings of its own update."""

from __future__ import annotations

import collections
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar

from arena.rundir import is_launch_rank_zero


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


# ---- progress, checkpoints and stop signals ---------------------------------------------
class UpdateProgress(ProgressBar):
    """One line per update (at most every `interval` seconds): updates, rate, ETA, win rates.

    The rate is recent and of training alone: over the updates of the last `window` seconds
    (at least the last one) since the end of the first, less the time periodic work paused
    training (evaluation, match GIFs: arena/learn/callbacks.Periodic), so neither start-up
    and compilation nor an evaluation drag it down. The ETA is the remaining updates at that
    pace plus the periodic work still to come, each at its last duration. The first update
    of a run (or of a resume) holds the warm-up (numba compiling, first kernels), so its
    line gives its duration instead."""

    def __init__(self, interval: float = 5.0, stream=None, window: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self.window = window
        self.stream = stream or sys.stderr
        self._enabled = True
        self._last = 0.0
        self._printed = 0
        # (time, updates, agent-steps, paused seconds) at the end of recent updates
        self._marks: collections.deque[tuple[float, int, int, float]] = collections.deque()

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        now = time.perf_counter()
        total = pl_module.cfg.trainer.max_updates
        done = pl_module.updates
        marks = self._marks  # the first is the end of the run's (or resume's) first update
        marks.append((now, done, pl_module.agent_steps, pl_module.paused_seconds))
        while len(marks) > 2 and now - marks[1][0] >= self.window:
            marks.popleft()
        if self._printed and now - self._last < self.interval and done < total:
            return
        self._last = now
        self._printed += 1
        m = pl_module.last_metrics
        parts = [f"update {done}/{total}", f"{pl_module.agent_steps:,} agent-steps"]
        if len(marks) == 1:
            first = now - pl_module._t_start - pl_module.paused_seconds
            parts.append(f"first update {first:.1f} s (warm-up included)")
        else:
            t0, u0, s0, p0 = marks[0]
            seconds = max(now - t0 - (pl_module.paused_seconds - p0), 1e-9)
            rate = (pl_module.agent_steps - s0) / seconds
            eta = seconds / max(done - u0, 1) * (total - done)
            for cb in getattr(trainer, "callbacks", ()):
                if isinstance(cb, Periodic) and cb.last_seconds is not None:
                    eta += cb.remaining(done, total) * cb.last_seconds
            parts += [f"{rate:,.0f} agent-steps/s", f"ETA {_hms(eta)}"]
        evals = pl_module.win_rates
        prefix = "eval/win_rate_vs_"
        wins = {k[len(prefix):]: v for k, v in evals.items()  # the bots, not the snapshots
                if k.startswith(prefix) and "/" not in k[len(prefix):]}
        if wins:
            parts.append("win " + " ".join(f"{k} {v:.2f}" for k, v in wins.items()))
        if "eval/rating" in evals:
            parts.append(f"rating {evals['eval/rating']:.1f}")
        if "loss/approx_kl" in m:
            parts.append(f"kl {m['loss/approx_kl']:.4f}")
        print(" | ".join(parts), file=self.stream, flush=True)


def _hms(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class UpdateCheckpoint(ModelCheckpoint):
    """Lightning's checkpointing, triggered by training updates rather than epochs: at every
    multiple of `every` updates, at `max_updates`, after `minutes` of training without one,
    at the end of training, and on request (`save_now`, when a stop signal arrives).

    Files are `update-NNNNNN.ckpt` (the newest `keep`) and one `last.ckpt`; the version
    counter is off, so a resumed run overwrites rather than writing `-v1` copies."""

    def __init__(self, dirpath: Path, every: int, max_updates: int, minutes: float | None,
                 keep: int = 3) -> None:
        super().__init__(dirpath=str(dirpath), filename="update-{updates:06.0f}",
                         auto_insert_metric_name=False, monitor="updates", mode="max",
                         save_top_k=keep, save_last=True, enable_version_counter=False,
                         every_n_epochs=0, save_on_train_epoch_end=False)
        self.every, self.max_updates, self.minutes = every, max_updates, minutes
        self.saved_on_error: tuple[Path, int] | None = None  # (checkpoint, update)
        self._last_time = time.monotonic()
        self._saved_update = -1

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self._last_time = time.monotonic()
        self._saved_update = pl_module.updates  # the checkpoint it resumed from, if any

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        u = pl_module.updates
        timed = self.minutes is not None and \
            time.monotonic() - self._last_time >= 60.0 * self.minutes
        if u % self.every == 0 or u >= self.max_updates or _all_ranks_any(timed, pl_module):
            self.save_now(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.save_now(trainer)  # a stop by trainer.max_time keeps its last update

    def on_exception(self, trainer: L.Trainer, pl_module: Any, exception: BaseException) -> None:
        """A game that fails while a rollout is collected (a worker process killed, a game's
        own error) leaves the learner as its last finished update left it: checkpoint that,
        so a resume loses nothing. Not after a failure inside an update (the weights may be
        half-stepped), nor under DDP (the other ranks are not here to join the save)."""
        self.saved_on_error = None
        if not getattr(pl_module, "failed_collecting", False) or trainer.world_size != 1:
            return
        try:
            self.save_now(trainer)
        except Exception as exc:  # noqa: BLE001 - the game's error is the one to report
            warnings.warn(f"could not checkpoint after the error: {type(exc).__name__}: {exc}",
                          stacklevel=1)
            return
        if self.last_model_path:
            self.saved_on_error = (Path(self.last_model_path), pl_module.updates)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        """Epochs mean nothing here: the one epoch ends only when training does."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        """No validation loop."""

    def save_now(self, trainer: L.Trainer) -> None:
        """Checkpoint the current update (once; every rank must call it under DDP)."""
        update = trainer.lightning_module.updates
        if update == self._saved_update:
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)
        self._saved_update = update
        self._last_time = time.monotonic()
        if trainer.is_global_zero:
            self._remove_strays()

    def _remove_strays(self) -> None:
        """Remove `update-N.ckpt` files older than the newest `keep` that Lightning does not
        track: a kill between writing a checkpoint and removing the oldest leaves one."""
        tracked = {Path(p).resolve() for p in self.best_k_models}
        files = sorted(Path(self.dirpath).glob("update-*.ckpt"),
                       key=lambda p: (len(p.name), p.name))
        for path in files[:max(len(files) - self.save_top_k, 0)]:
            if path.resolve() not in tracked:
                path.unlink(missing_ok=True)


def _all_ranks_any(flag: bool, pl_module: Any) -> bool:
    """One decision on every rank (a checkpoint is a collective under DDP)."""
    from arena.scale.distributed import all_reduce_sum, world_size

    if world_size() == 1:
        return flag
    return bool(all_reduce_sum(torch.tensor([float(flag)], device=pl_module.device))[0] > 0)


class StopOnSignal(Callback):
    """SIGINT or SIGTERM: finish the current update, checkpoint it, stop. A second SIGINT
    stops at once (the newest checkpoint stays; the unfinished update is lost).

    SIGTERM is what SLURM and Kubernetes send before they preempt a job. Every rank stops at
    the same update: the ranks' flags are all-reduced after each update. Lightning's own
    SIGTERM handling (the rank that got the signal raises SIGTERMException at the end of its
    update, alone, and under DDP broadcasts from inside the handler) would leave the other
    ranks waiting in a collective, or stop one update without its checkpoint; so once
    training starts, this handler takes SIGTERM back from Lightning's."""

    def __init__(self, checkpoint: UpdateCheckpoint) -> None:
        self.checkpoint = checkpoint
        self.requested: str | None = None
        self.stopped_at: int | None = None
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        """Before training (Lightning composes its SIGTERM handler with this one while it
        sets up; see on_train_start)."""
        handlers = {signal.SIGINT: self._handle, signal.SIGTERM: self._handle}
        if not is_launch_rank_zero():
            # launched ranks share rank 0's terminal: on Ctrl-C they follow its decision,
            # which is all-reduced at every update, instead of stopping on their own
            handlers[signal.SIGINT] = signal.SIG_IGN
        for signum, handler in handlers.items():
            try:
                self._old[signum] = signal.signal(signum, handler)
            except ValueError:  # not the main thread (e.g. called from a worker thread)
                pass

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        """Lightning put its SIGTERM handler in front of this one when fit began: take it
        back (Lightning's teardown restores the handler it found, this one)."""
        if signal.SIGTERM in self._old:
            try:
                signal.signal(signal.SIGTERM, self._handle)
            except ValueError:
                pass

    def uninstall(self) -> None:
        for signum, handler in self._old.items():
            signal.signal(signum, handler)
        self._old = {}

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None and signum == signal.SIGINT:
            print(f"\narena train: second {name}: stopping now; the newest checkpoint stays "
                  f"in {self.checkpoint.dirpath}", file=sys.stderr, flush=True)
            os._exit(130)
        if self.requested is None:
            self.requested = name
            if is_launch_rank_zero():  # one line per run, not one per rank
                print(f"\narena train: {name} received: finishing this update, then saving a "
                      f"checkpoint" + (" (Ctrl-C again stops at once)"
                                       if signum == signal.SIGINT else ""),
                      file=sys.stderr, flush=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if _all_ranks_any(self.requested is not None or trainer.received_sigterm, pl_module):
            self.requested = self.requested or "SIGTERM"
            self.checkpoint.save_now(trainer)
            self.stopped_at = pl_module.updates
            trainer.should_stop = True
