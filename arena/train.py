"""`arena train`: a run directory, a Lightning Trainer, and the PPO learner.

runs/<name>/ (arena/rundir.py)
    config.yaml          the config the run trains with (written once training has started)
    config_history.jsonl every start: its update, overrides and config
    checkpoints/         Lightning checkpoints: update-NNNNNN.ckpt (latest few) and last.ckpt
    tb/                  TensorBoard events (`tensorboard --logdir runs`)

Training is one endless Lightning epoch that stops at `trainer.max_updates`; a checkpoint is
written at every multiple of `trainer.checkpoint_every` updates, every
`trainer.checkpoint_minutes`, at the end, and when a stop signal arrives (SIGINT, SIGTERM:
the current update finishes, is saved, and the process exits 130 or 143 with the command that
resumes it). `arena train --resume runs/<name>` continues from the newest checkpoint with the
weights, optimizer state, normalisers, counters and random states.

Surgery: `arena train --resume runs/<name> model.lstm_hidden=256` (or a wider model.hidden,
or game.options that change the observation or actions) continues the run through a
function-preserving transfer (arena/learn/surgery.py): the transferred checkpoint is written
beside the old ones as checkpoints/surgery-NNNNNN.ckpt (the old files stay), the start is
recorded in config_history.jsonl as "surgery", and TensorBoard gets a text entry and the
scalar surgery/count at that update. A change that cannot keep the function is refused.
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from arena.checkpoints import (
    AtomicCheckpointIO,
    CheckpointError,
    latest_in_run,
    read_checkpoint,
)
from arena.config import (
    Config,
    ConfigError,
    load_config,
    to_dict,
    to_flat_dict,
    to_yaml,
)
from arena.learn.callbacks import (
    Evaluation,
    LeagueSnapshots,
    MatchGifs,
    Periodic,
    ThreadChoice,
)
from arena.rundir import (
    CHECKPOINT_DIR,
    RunDirError,
    RunLock,
    holds_run,
    is_launch_rank_zero,
    record_start,
    remove_stale_temporaries,
)

if TYPE_CHECKING:
    from arena.learn.surgery import Surgery

RUN_DIR_ENV = "ARENA_RUN_DIR"  # rank 0's run directory, inherited by the ranks it launches


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




class TrainingStopped(Exception):
    """Training stopped by a signal after saving a checkpoint; `exit_code` is 128 + signal."""

    def __init__(self, signame: str, run_dir: Path, update: int, max_updates: int,
                 checkpoint: Path | None) -> None:
        self.signame, self.run_dir, self.update = signame, run_dir, update
        self.exit_code = 128 + int(getattr(signal, signame))
        saved = f"saved {checkpoint}" if checkpoint else "no checkpoint was saved"
        super().__init__(f"stopped by {signame} at update {update} of {max_updates}; {saved}; "
                         f"continue with: arena train --resume {run_dir}")


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


def new_run_dir(cfg: Config) -> Path:
    """The directory of a new run: run.root/run.name (default <game>-<date>-<time>).

    Ranks launched by rank 0 take rank 0's directory (inherited through the environment),
    so one run has one directory; under torchrun or SLURM every rank starts on its own,
    so a run name is needed to agree on one."""
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited and not is_launch_rank_zero():
        return Path(inherited)
    if cfg.run.name is None and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        raise ConfigError("run.name: set a run name when launching with torchrun or srun, so "
                          "that every rank writes one run directory")
    name = cfg.run.name or f"{_game_label(cfg.game.name)}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir = Path(cfg.run.root).expanduser() / name
    if is_launch_rank_zero() and run_dir.is_dir() and holds_run(run_dir):
        raise ConfigError(f"run.name: {run_dir} already holds a run; resume it with "
                          f"`arena train --resume {run_dir}` or choose another run.name")
    return run_dir


def _game_label(name: str) -> str:
    """A short name for run directories: "moba", or a spec's module ("tictactoe_v3")."""
    parts = name.split(":")
    return parts[1].rsplit(".", 1)[-1] if len(parts) == 3 and parts[1] else parts[-1]


def build_trainer(cfg: Config, run_dir: Path,
                  callbacks: list | tuple = ()) -> tuple[L.Trainer, TensorBoardLogger]:
    """The Trainer and its logger; nothing is written to `run_dir` until training starts.
    Settings Lightning refuses (an accelerator this machine lacks, say) are config errors."""
    t = cfg.trainer
    logger = TensorBoardLogger(save_dir=str(run_dir), name="", version="tb", default_hp_metric=False)
    checkpoint = UpdateCheckpoint(run_dir / CHECKPOINT_DIR, t.checkpoint_every, t.max_updates,
                                  t.checkpoint_minutes)
    stop = StopOnSignal(checkpoint)
    try:
        trainer = L.Trainer(
            accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes,
            precision=t.precision, max_epochs=-1, max_time=t.max_time, logger=logger,
            callbacks=[checkpoint, stop, UpdateProgress(), *callbacks], num_sanity_val_steps=0,
            enable_model_summary=False, log_every_n_steps=1, use_distributed_sampler=False,
            plugins=[AtomicCheckpointIO()])
    except Exception as exc:  # MisconfigurationException, ValueError, RuntimeError, ...
        first = (str(exc) or type(exc).__name__).splitlines()[0]
        raise ConfigError(f"trainer (accelerator={t.accelerator}, devices={t.devices}, "
                          f"num_nodes={t.num_nodes}, precision={t.precision}): {first}") from None
    return trainer, logger


def check_game(cfg: Config) -> None:
    """Build the game once, so a bad game.name or game.options is a config error before
    anything is written (and not a failure deep inside the learner)."""
    from games.vector import make_vec

    try:
        probe = make_vec(cfg.game.name, 1, **cfg.game.options)
    except Exception as exc:  # an unknown game, a missing module, a bad keyword or value
        message = (str(exc) or type(exc).__name__).splitlines()[0]
        if _game_is_named(cfg.game.name) and not isinstance(exc, ImportError) \
                and "game spec" not in message:
            raise ConfigError(f"game.options: game {cfg.game.name!r} refuses the options "
                              f"{dict(cfg.game.options)}: {message}") from None
        raise ConfigError(f"game.name: {message}") from None
    try:
        from games.vector import AECVec, ParallelVec

        if cfg.game.overlap and not isinstance(probe, (ParallelVec, AECVec)):
            raise ConfigError(
                f"game.overlap: {cfg.game.name!r} steps all its games at once on its own "
                f"threads (game.threads), so there is no half to step while the other is "
                f"inferred; set game.overlap=false")
        teams = list(probe.team_names)
        if cfg.league.enabled and len(teams) != 2:
            raise ConfigError(
                f"league.enabled: the league plays one team against another and needs a "
                f"game of exactly two teams; {cfg.game.name!r} has {len(teams)}: "
                f"{_team_listing(probe)}. Group its agents into two teams with "
                f"game.options.teams (team -> agent-name prefix or list of prefixes, e.g. "
                f"{{good: agent_, bad: [leader_, adversary_]}}), or set league.enabled=false "
                f"to train every team by plain self-play")
    finally:
        close = getattr(probe, "close", None)
        if callable(close):
            close()


def _team_listing(vec: Any, most: int = 4) -> str:
    """The first `most` teams of `vec` with their agents, for an error message."""
    members = [[a for a, t in zip(vec.slot_agents, vec.slot_team) if t == i]
               for i in range(len(vec.team_names))]
    shown = [f"{name} ({', '.join(m[:3])}{', ...' if len(m) > 3 else ''})"
             for name, m in zip(vec.team_names[:most], members)]
    more = len(vec.team_names) - most
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def watcher(cfg: Config):
    """The training match GIFs (watch.*) for the config's game; a ConfigError naming the
    field when the game cannot draw them."""
    from arena.play.watch import MatchWatcher
    from games.render import RenderError

    w = cfg.watch
    try:
        watcher = MatchWatcher(cfg.game.name, dict(cfg.game.options), w.every, w.view,
                               w.frame_every, w.fps, w.max_ticks, cfg.run.seed + 23)
        watcher.check()
    except RenderError as exc:
        field = "watch.view" if w.view is not None and "view" in str(exc) else "watch.every"
        raise ConfigError(f"{field}: {exc}; set watch.every=0 to train without match "
                          f"GIFs") from None
    except (TypeError, ValueError) as exc:
        if w.max_ticks is None:
            raise
        raise ConfigError(f"watch.max_ticks: game {cfg.game.name!r} takes no option max_ticks "
                          f"({str(exc).splitlines()[0]}); leave watch.max_ticks null") from None
    return watcher


def bot_evaluator(cfg: Config):
    """The training-time evaluation (eval.*) for the config's game, or None where it names
    no reference (`eval.bots: []`)."""
    from arena.play.evaluate import BotEvaluator

    if cfg.eval.bots == []:
        return None
    return BotEvaluator(cfg.eval.bots, cfg.eval.games, cfg.run.seed + 17, game=cfg.game.name,
                        panel_every=cfg.eval.panel_every, panel_size=cfg.eval.panel_size)


def _game_is_named(name: str) -> bool:
    """A registered game or a well-formed pettingzoo: spec (whether it imports or not)."""
    from games.registry import PETTINGZOO_PREFIX, list_games

    if name.startswith(PETTINGZOO_PREFIX):
        return name[len(PETTINGZOO_PREFIX):].count(":") == 1
    return name in {g.name for g in list_games()}


def _build_learner(cfg: Config):
    from arena.learn.learner import PPOLearner

    check_game(cfg)
    try:
        return PPOLearner(to_dict(cfg))
    except Exception as exc:  # a model that cannot be built for this game
        message = (str(exc) or type(exc).__name__).splitlines()[0]
        raise ConfigError(f"model: cannot build the policy networks for game "
                          f"{cfg.game.name!r}: {message}") from None


def _check_resume_checkpoint(ckpt_path: Path, learner: Any, run_dir: Path
                             ) -> tuple[int, Surgery | None]:
    """Read the checkpoint a resume starts from, before anything runs: a checkpoint that
    cannot be read is named; a config whose networks or game differ from the checkpoint's
    gets a surgery (a function-preserving transfer, `arena.learn.surgery`) or, where none
    is possible, a ConfigError that says why. Returns the update the checkpoint holds and
    the surgery (None when the checkpoint fits as it is)."""
    try:
        checkpoint = read_checkpoint(ckpt_path)
    except CheckpointError as exc:
        raise ConfigError(f"cannot resume from this checkpoint: {exc}") from None
    done = int(checkpoint["arena"]["updates"])
    if checkpoint["arena"].get("signature") == learner.signature:
        try:
            learner.load_state_dict(checkpoint["state_dict"])  # Lightning loads it again in fit
            return done, None
        except RuntimeError:
            pass  # other network sizes: a surgery
    surgery = _plan_surgery(checkpoint, ckpt_path, learner, run_dir)
    learner.load_state_dict(surgery.checkpoint["state_dict"])
    return done, surgery


def _plan_surgery(checkpoint: dict[str, Any], ckpt_path: Path, learner: Any,
                  run_dir: Path) -> Surgery:
    """The checkpoint transferred to the networks of `learner`'s config (ConfigError when
    that cannot keep what the networks compute)."""
    from arena.learn.learner import PPOLearner
    from arena.learn.surgery import SurgeryError, transfer_checkpoint

    blame = f"{run_dir / 'config.yaml'} (with the overrides given)"
    try:
        config = checkpoint["hyper_parameters"]["config"]
        game = config["game"]["name"]
    except (KeyError, TypeError):
        raise ConfigError(f"{ckpt_path}: the checkpoint carries no config; resume with the "
                          f"settings the run was trained with") from None
    if game != learner.cfg.game.name:  # before building it: the saved game is not trusted
        raise ConfigError(f"{blame} is for game {learner.cfg.game.name!r}, but {ckpt_path} was "
                          f"trained on {game!r}: a run cannot change its game (no "
                          f"function-preserving transfer between games); start a new run")
    if isinstance(config.get("actors"), dict):
        config = {**config, "actors": {**config["actors"], "curve_keys": None}}
    try:
        old = PPOLearner(config)
        old.load_state_dict(checkpoint["state_dict"])
    except Exception as exc:  # noqa: BLE001 - the saved config no longer builds its networks
        raise ConfigError(f"{ckpt_path}: cannot rebuild the networks it was trained with "
                          f"({str(exc).splitlines()[0]}); resume with its settings") from None
    try:
        return transfer_checkpoint(checkpoint, old, learner, where=str(ckpt_path))
    except SurgeryError as exc:
        raise ConfigError(f"{blame} cannot continue {ckpt_path.name} without changing what its "
                          f"networks compute: {exc}; resume with the settings the run was "
                          f"trained with, or grow instead of shrinking") from None


def _write_surgery_checkpoint(run_dir: Path, surgery: Surgery) -> Path:
    """The transferred checkpoint, written atomically beside the old ones (never over
    one): checkpoints/surgery-NNNNNN.ckpt. Launched ranks > 0 compute the same one and
    keep a private copy (a file that is no `*.ckpt`, removed after training)."""
    import io
    import tempfile

    from games.files import atomic_write_bytes

    folder = run_dir / CHECKPOINT_DIR
    buffer = io.BytesIO()
    torch.save(surgery.checkpoint, buffer)
    if not is_launch_rank_zero():
        fd, name = tempfile.mkstemp(dir=folder, prefix=".surgery-", suffix=".rank")
        with os.fdopen(fd, "wb") as fh:
            fh.write(buffer.getvalue())
        return Path(name)
    path = folder / f"surgery-{surgery.update:06d}.ckpt"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"surgery-{surgery.update:06d}-{n}.ckpt"
    atomic_write_bytes(path, buffer.getvalue())
    return path


def train(cfg: Config, resume: Path | None = None, evaluator=None,
          callbacks: list | tuple = (), overrides: list[str] | tuple[str, ...] = ()) -> Path:
    """Run (or continue) training; returns the run directory. `evaluator(learner) -> metrics`
    replaces the default scripted-bot evaluation and `callbacks` are extra Lightning
    callbacks (benchmarks use both to measure a run). `overrides` are recorded in the run's
    config history. Raises ConfigError (or RunDirError) before writing anything when the
    config, the game, the trainer settings or the run directory are unusable, and
    TrainingStopped after a stop signal."""

    warnings.filterwarnings("ignore", message=".*dataloader_iter.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended.*")
    warnings.filterwarnings("ignore", message=".*infinite.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
    L.seed_everything(cfg.run.seed, workers=True, verbose=False)
    run_dir = new_run_dir(cfg) if resume is None else Path(resume)
    rank_zero = is_launch_rank_zero()
    lock = RunLock(run_dir)
    if rank_zero and resume is not None:  # first of all: is another process training it?
        if not run_dir.is_dir():
            raise ConfigError(f"{run_dir}: not a run directory (no such folder)")
        _acquire(lock)
        # with the lock held no writer is alive: what a killed atomic write left goes now
        for stale in remove_stale_temporaries(run_dir):
            print(f"removed {stale} (left by a write that was killed)", file=sys.stderr,
                  flush=True)
    try:
        learner = _build_learner(cfg)
        match_gifs = watcher(cfg) if cfg.watch.every > 0 else None
        trainer, _ = build_trainer(cfg, run_dir, callbacks)
        checkpoint_cb = next(c for c in trainer.callbacks if isinstance(c, UpdateCheckpoint))
        stop = next(c for c in trainer.callbacks if isinstance(c, StopOnSignal))
        if rank_zero and resume is None:  # everything checked: now the directory
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"run.root: cannot create the run directory {run_dir}: "
                                  f"{exc.strerror or exc}") from None
            _acquire(lock)
        if rank_zero:
            os.environ[RUN_DIR_ENV] = str(run_dir.resolve())
        ckpt_path = None
        surgery = None
        if resume is not None:
            ckpt_path = latest_in_run(run_dir)
            if ckpt_path is None:
                raise ConfigError(f"{run_dir}: no checkpoint to resume from in "
                                  f"{run_dir / CHECKPOINT_DIR}")
            done, surgery = _check_resume_checkpoint(ckpt_path, learner, run_dir)
            if done >= cfg.trainer.max_updates:
                raise ConfigError(
                    f"trainer.max_updates: {run_dir} is already at update {done} and "
                    f"trainer.max_updates is {cfg.trainer.max_updates}: nothing to train; "
                    f"give a larger one, e.g. `arena train --resume {run_dir} "
                    f"trainer.max_updates={done + cfg.trainer.max_updates}`")
            if surgery is not None:
                ckpt_path = _write_surgery_checkpoint(run_dir, surgery)
                if is_launch_rank_zero():
                    print(f"surgery at update {done}: " + "; ".join(surgery.changes)
                          + f"; continuing from {ckpt_path}", file=sys.stderr, flush=True)
        learner.run_dir = run_dir
        if evaluator is None and cfg.eval.every > 0:
            evaluator = bot_evaluator(cfg)
        # around the update, before the progress line that shows their results
        around = [LeagueSnapshots(cfg.league.snapshot_every), ThreadChoice()]
        if evaluator is not None and cfg.eval.every > 0:
            around.append(Evaluation(evaluator, cfg.eval.every))
        if match_gifs is not None:
            around.append(MatchGifs(match_gifs, cfg.watch.every))
        trainer.callbacks[0:0] = around
        trainer.callbacks.append(_RecordStart(
            cfg, "new" if resume is None else "surgery" if surgery else "resume", overrides,
            surgery))
        if trainer.is_global_zero:
            print(f"run directory: {run_dir}   (tensorboard --logdir {run_dir.parent})",
                  file=sys.stderr, flush=True)
        stop.install()
        try:
            trainer.fit(learner, ckpt_path=str(ckpt_path) if ckpt_path else None,
                        weights_only=True)
        except SIGTERMException:
            stop.requested = "SIGTERM"
        except Exception:
            if checkpoint_cb.saved_on_error is not None and trainer.is_global_zero:
                path, update = checkpoint_cb.saved_on_error
                print(f"saved {path} (update {update}) before stopping on the error below; "
                      f"once it is fixed, continue with: arena train --resume {run_dir}",
                      file=sys.stderr, flush=True)
            raise
        finally:
            stop.uninstall()
            if surgery is not None and not is_launch_rank_zero():
                ckpt_path.unlink(missing_ok=True)  # a launched rank's private copy
        if stop.requested is not None:
            update = stop.stopped_at if stop.stopped_at is not None else learner.updates
            saved = Path(checkpoint_cb.last_model_path) if checkpoint_cb.last_model_path else None
            raise TrainingStopped(stop.requested, run_dir, update, cfg.trainer.max_updates, saved)
    finally:
        lock.release()
    return run_dir


def _acquire(lock: RunLock) -> None:
    try:
        lock.acquire()
    except RunDirError as exc:
        raise ConfigError(str(exc)) from None


class _RecordStart(Callback):
    """Writes config.yaml and its history line once training has started (rank 0), so a
    start that fails or has nothing to train leaves the run's config as it was."""

    def __init__(self, cfg: Config, how: str, overrides: list[str] | tuple[str, ...],
                 surgery: Surgery | None = None) -> None:
        self.cfg, self.how, self.overrides, self.surgery = cfg, how, list(overrides), surgery

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        if trainer.is_global_zero:
            record_start(pl_module.run_dir, to_yaml(self.cfg), to_dict(self.cfg),
                         pl_module.updates, self.how, self.overrides)
            if trainer.logger is not None and self.how == "new":
                trainer.logger.log_hyperparams(to_flat_dict(self.cfg))
            if trainer.logger is not None and self.surgery is not None:
                from arena.learn.surgery import surgery_markdown

                s = self.surgery
                count = len(s.checkpoint["arena"].get("surgeries", []))
                add_text = getattr(trainer.logger.experiment, "add_text", None)
                if add_text is not None:
                    add_text("surgery", surgery_markdown(s), global_step=s.update)
                trainer.logger.log_metrics({"surgery/count": float(count)}, step=s.update)


def resume_config(run_dir: Path, overrides: list[str]) -> Config:
    """The config of a run to resume, with `overrides` on top. The run directory may have
    been handed over: its game is built only if the user's allow-list trusts it."""
    from arena.trust import check_config_file

    path = run_dir / "config.yaml"
    if not path.is_file():
        if run_dir.is_dir() and latest_in_run(run_dir) is None:
            raise ConfigError(f"{run_dir}: not a run directory (no config.yaml, no checkpoints)")
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    try:
        check_config_file(path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return load_config(path, overrides)


def prepare(config: str | None, overrides: list[str], resume: str | None
            ) -> tuple[Config, Path | None, list[str]]:
    """The config of `arena train` (fresh or resumed) and the overrides it was given."""
    if resume is not None:
        if config is not None and "=" not in config:
            raise ConfigError("give either a config file or --resume RUN_DIR, not both")
        if config is not None:
            overrides = [config, *overrides]
        return resume_config(Path(resume), overrides), Path(resume), list(overrides)
    if config is not None and "=" in config and not os.path.exists(config):
        overrides = [config, *overrides]
        config = None
    return load_config(config, overrides), None, list(overrides)


def check_only(config: str | None, overrides: list[str], resume: str | None) -> str:
    """`arena train --check`: everything `arena train` checks before it starts (config,
    game, networks, trainer settings, run directory), with nothing written. Returns a
    one-paragraph summary."""
    import logging

    cfg, resume_dir, _ = prepare(config, overrides, resume)
    learner = _build_learner(cfg)
    if cfg.watch.every > 0:
        watcher(cfg)
    run_dir = new_run_dir(cfg) if resume_dir is None else resume_dir
    quiet = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the Trainer's device lines are not the check's output
    try:
        build_trainer(cfg, run_dir)
    finally:
        quiet.setLevel(level)
    if resume_dir is not None:
        ckpt = latest_in_run(resume_dir)
        if ckpt is None:
            raise ConfigError(f"{resume_dir}: no checkpoint to resume from")
        done, surgery = _check_resume_checkpoint(ckpt, learner, resume_dir)
        where = f"resumes {resume_dir} from update {done} ({ckpt.name})"
        if surgery is not None:
            where += (f" through surgery (a function-preserving transfer, written as "
                      f"checkpoints/surgery-{done:06d}.ckpt): " + "; ".join(surgery.changes))
    else:
        where = f"writes {run_dir}"
    params = sum(p.numel() for p in learner.parameters())
    t = cfg.trainer
    return (f"config OK: game {cfg.game.name} ({len(learner.slot_agents)} agents, "
            f"{len(learner.groups)} policy group(s), {params:,} parameters), "
            f"{t.max_updates} updates on {t.accelerator} x{t.devices}; {where}")


def main_train(config: str | None, overrides: list[str], resume: str | None) -> Path:
    cfg, resume_dir, given = prepare(config, overrides, resume)
    return train(cfg, resume=resume_dir, overrides=given)
