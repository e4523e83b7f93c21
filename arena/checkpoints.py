"""Reading training checkpoints back: weights only, never arbitrary pickles.

Lightning writes checkpoints atomically (a temporary file moved into place); reading them
here goes through `torch.load(weights_only=True)`, so a checkpoint handed to a user cannot
run code. A missing, truncated or foreign file gives a `CheckpointError` naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or not what was expected."""


def latest_in_run(run_dir: str | Path) -> Path | None:
    """The newest checkpoint of a run: the highest update-NNNNNN.ckpt, else last.ckpt.

    Each epoch end writes update-N.ckpt and then last.ckpt (both atomically); a run killed
    between the two still resumes from update N."""
    folder = Path(run_dir) / "checkpoints"
    numbered = sorted(folder.glob("update-*.ckpt"))
    if numbered:
        return numbered[-1]
    last = folder / "last.ckpt"
    return last if last.is_file() else None


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run directory (its newest checkpoint)."""
    path = Path(path)
    if path.is_dir():
        candidate = latest_in_run(path)
        if candidate is None:
            raise CheckpointError(f"{path}: no checkpoints in this run directory")
        return candidate
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = find_checkpoint(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, garbage bytes, disallowed pickle globals, ...
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or \
            "arena" not in checkpoint:
        raise CheckpointError(f"{path}: not an Arena training checkpoint")
    return checkpoint


def load_learner(path: str | Path, expect_game: str | None = None):
    """The PPOLearner saved in a checkpoint (weights, normalisers, counters), on CPU."""
    from arena.learner import PPOLearner

    checkpoint = read_checkpoint(path)
    try:
        config = checkpoint["hyper_parameters"]["config"]
    except (KeyError, TypeError):
        raise CheckpointError(f"{path}: checkpoint carries no config") from None
    game = config.get("game", {}).get("name")
    if expect_game is not None and game != expect_game:
        raise CheckpointError(f"{path}: checkpoint is for game {game!r}, expected {expect_game!r}")
    learner = PPOLearner(config)
    try:
        learner.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model of its config: "
                              f"{str(exc).splitlines()[0]}") from None
    learner.updates = int(checkpoint["arena"]["updates"])
    learner.agent_steps = int(checkpoint["arena"]["agent_steps"])
    learner.eval()
    return learner
