"""`arena train`: a run directory, a Lightning Trainer, and the PPO learner.

runs/<name>/
    config.yaml          the resolved config (written atomically)
    checkpoints/         Lightning checkpoints: update-NNNNNN.ckpt (latest few) and last.ckpt
    tb/                  TensorBoard events (`tensorboard --logdir runs`)

A Lightning "epoch" here is `trainer.checkpoint_every` updates, so a checkpoint is written
at the end of each; `arena train --resume runs/<name>` continues from the newest checkpoint with the
weights, optimizer state, normalisers, counters and random states.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.loggers import TensorBoardLogger

from arena.checkpoints import latest_in_run
from arena.config import (
    Config, ConfigError, atomic_write_text, load_config, to_dict, to_flat_dict, to_yaml,
)

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"


class UpdateProgress(ProgressBar):
    """One line per update (at most every `interval` seconds): updates, rate, ETA, win rates."""

    def __init__(self, interval: float = 5.0, stream=None) -> None:
        super().__init__()
        self.interval = interval
        self.stream = stream or sys.stderr
        self._enabled = True
        self._last = 0.0
        self._printed = 0

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
        if self._printed and now - self._last < self.interval and done < total:
            return
        self._last = now
        self._printed += 1
        m = pl_module.last_metrics
        rate = m.get("perf/agent_steps_per_s", 0.0)
        per_update = (now - pl_module._t_start) / max(done - pl_module._updates_at_start, 1)
        eta = per_update * (total - done)
        parts = [f"update {done}/{total}", f"{pl_module.agent_steps:,} agent-steps",
                 f"{rate:,.0f} agent-steps/s", f"ETA {_hms(eta)}"]
        evals = pl_module.win_rates
        wins = {k.rsplit("_", 1)[-1]: v for k, v in evals.items()
                if k.startswith("eval/win_rate_vs_")}
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


def new_run_dir(cfg: Config) -> Path:
    name = cfg.run.name or f"{cfg.game.name.split(':')[-1]}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir = Path(cfg.run.root) / name
    if (run_dir / CHECKPOINT_DIR / LAST).exists():
        raise ConfigError(f"run.name: {run_dir} already holds a run; resume it with "
                          f"`arena train --resume {run_dir}` or choose another run.name")
    return run_dir


def build_trainer(cfg: Config, run_dir: Path,
                  callbacks: list | tuple = ()) -> tuple[L.Trainer, TensorBoardLogger]:
    t = cfg.trainer
    logger = TensorBoardLogger(save_dir=str(run_dir), name="", version="tb", default_hp_metric=False)
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / CHECKPOINT_DIR, filename="update-{updates:06.0f}",
        auto_insert_metric_name=False, monitor="updates", mode="max", save_top_k=3,
        save_last=True, every_n_epochs=1, save_on_train_epoch_end=True)
    trainer = L.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes,
        precision=t.precision, max_epochs=math.ceil(t.max_updates / t.checkpoint_every),
        limit_train_batches=t.checkpoint_every, max_time=t.max_time, logger=logger,
        callbacks=[checkpoint, UpdateProgress(), *callbacks], num_sanity_val_steps=0,
        enable_model_summary=False, log_every_n_steps=1, use_distributed_sampler=False)
    return trainer, logger


def train(cfg: Config, resume: Path | None = None, evaluator=None,
          callbacks: list | tuple = ()) -> Path:
    """Run (or continue) training; returns the run directory. `evaluator(learner) -> metrics`
    replaces the default scripted-bot evaluation and `callbacks` are extra Lightning
    callbacks (benchmarks use both to measure a run)."""
    from arena.evaluate import BotEvaluator
    from arena.learner import PPOLearner
    from arena.watch import MatchWatcher

    warnings.filterwarnings("ignore", message=".*dataloader_iter.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
    L.seed_everything(cfg.run.seed, workers=True, verbose=False)
    if resume is None:
        run_dir = new_run_dir(cfg)
        ckpt_path = None
    else:
        run_dir = resume
        ckpt_path = latest_in_run(run_dir)
        if ckpt_path is None:
            raise ConfigError(f"{run_dir}: no checkpoint to resume from in {run_dir / CHECKPOINT_DIR}")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", to_yaml(cfg))
    learner = PPOLearner(to_dict(cfg))
    learner.run_dir = run_dir
    if evaluator is not None:
        learner.evaluator = evaluator
    elif cfg.game.name == "moba" and cfg.eval.every > 0 and cfg.eval.bots:
        learner.evaluator = BotEvaluator(cfg.eval.bots, cfg.eval.games, cfg.run.seed + 17)
    if cfg.game.name == "moba" and cfg.watch.every > 0:
        w = cfg.watch
        learner.watcher = MatchWatcher(w.every, w.view, w.frame_every, w.fps, w.max_ticks,
                                       cfg.run.seed + 23)
    trainer, logger = build_trainer(cfg, run_dir, callbacks)
    if trainer.is_global_zero:
        logger.log_hyperparams(to_flat_dict(cfg))
        print(f"run directory: {run_dir}   (tensorboard --logdir {run_dir.parent})",
              file=sys.stderr, flush=True)
    try:
        trainer.fit(learner, ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
    except Exception as exc:
        if ckpt_path is not None and _is_load_error(exc):
            raise ConfigError(f"{ckpt_path}: cannot resume from this checkpoint: {exc}") from exc
        raise
    return run_dir


def _is_load_error(exc: Exception) -> bool:
    import pickle
    import zipfile

    return isinstance(exc, (ValueError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError,
                            zipfile.BadZipFile))


def resume_config(run_dir: Path, overrides: list[str]) -> Config:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    return load_config(path, overrides)


def main_train(config: str | None, overrides: list[str], resume: str | None) -> Path:
    if resume is not None:
        if config is not None and "=" not in config:
            raise ConfigError("give either a config file or --resume RUN_DIR, not both")
        if config is not None:
            overrides = [config, *overrides]
        cfg = resume_config(Path(resume), overrides)
        return train(cfg, resume=Path(resume))
    if config is not None and "=" in config and not Path(config).exists():
        overrides = [config, *overrides]
        config = None
    return train(load_config(config, overrides))
