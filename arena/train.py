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

import os
import signal
import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
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
    StopOnSignal,
    ThreadChoice,
    UpdateCheckpoint,
    UpdateProgress,
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


class TrainingStopped(Exception):
    """Training stopped by a signal after saving a checkpoint; `exit_code` is 128 + signal."""

    def __init__(self, signame: str, run_dir: Path, update: int, max_updates: int,
                 checkpoint: Path | None) -> None:
        self.signame, self.run_dir, self.update = signame, run_dir, update
        self.exit_code = 128 + int(getattr(signal, signame))
        saved = f"saved {checkpoint}" if checkpoint else "no checkpoint was saved"
        super().__init__(f"stopped by {signame} at update {update} of {max_updates}; {saved}; "
                         f"continue with: arena train --resume {run_dir}")


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
