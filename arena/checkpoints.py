"""Reading training checkpoints back: weights only, never arbitrary pickles.

Lightning writes checkpoints atomically (a temporary file moved into place); reading them
here goes through `torch.load(weights_only=True)`, so a checkpoint handed to a user cannot
run code. A missing, truncated or foreign file gives a `CheckpointError` naming it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from games.files import atomic_write_bytes


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or not what was expected."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, with the project's atomic write.

    Lightning saves through an fsspec transaction, whose local file is first written to
    the system temporary folder and then `shutil.move`d into place: where /tmp is another
    file system (tmpfs) the move is a copy into the checkpoint's own path, so a kill during
    it leaves a half-written checkpoint; the killed save's temporary file stays in /tmp;
    and nothing is fsynced. Here the bytes go to a temporary file beside the checkpoint,
    are fsynced and renamed over it (`games.files.atomic_write_bytes`): a reader, or a
    resume after SIGKILL, sees the old file or the new one; a killed save leaves at most a
    `.NAME.<random>.tmp` beside it, which the next resume removes (arena/rundir.py)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"storage_options are not supported by {type(self).__name__}")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getvalue())


def checkpoint_files(run_dir: str | Path) -> list[Path]:
    """Every checkpoint file of a run (update-N.ckpt, last.ckpt and any other *.ckpt)."""
    folder = Path(run_dir) / "checkpoints"
    return sorted(p for p in folder.glob("*.ckpt") if p.is_file()) if folder.is_dir() else []


def recorded_update(path: Path) -> int | None:
    """The update a checkpoint recorded inside it, or None when it cannot be read.

    The file is memory-mapped (weights_only), so only the small `arena` record is paged in."""
    try:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # not a zip archive: the legacy format cannot be mapped
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        return int(checkpoint["arena"]["updates"])
    except Exception:  # noqa: BLE001 - truncated, foreign or garbage: not a candidate
        return None


def latest_in_run(run_dir: str | Path) -> Path | None:
    """The newest checkpoint of a run: the highest update recorded inside a readable file.

    Names are not trusted to sort (update-1000000 after update-999999, "-v1" copies, a stale
    last.ckpt): each file says which update it holds. Among equals the newer file wins.
    When no file is readable the newest by time is returned, so that reading it reports
    what is wrong with it; None when the run has no checkpoint at all."""
    files = checkpoint_files(run_dir)
    if not files:
        return None

    def mtime(p: Path) -> int | None:  # a file a running trainer replaced meanwhile: gone
        try:
            return p.stat().st_mtime_ns
        except OSError:
            return None

    readable = [(update, t, p) for p in files
                if (update := recorded_update(p)) is not None and (t := mtime(p)) is not None]
    if readable:
        return max(readable, key=lambda t: (t[0], t[1]))[2]
    present = [(t, p) for p in files if (t := mtime(p)) is not None]
    return max(present)[1] if present else None


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


def check_saved_game(name: Any, source: str) -> None:
    """CheckpointError (starting with `source`) unless this process may build game `name`,
    read from a run's config or a checkpoint, i.e. from someone else (arena/trust.py)."""
    from arena.trust import check_game
    from games.registry import UntrustedGameError

    try:
        check_game(name, source=source)
    except UntrustedGameError as exc:
        raise CheckpointError(str(exc)) from None


def load_learner(path: str | Path, expect_game: str | None = None):
    """The PPOLearner saved in a checkpoint (weights, normalisers, counters), on CPU.

    The checkpoint may come from anyone: its game must be one this process trusts
    (`check_saved_game`) before the learner builds it, and its `actors.curve_keys` (the
    training machine's key folder) is dropped, since playing needs no keys."""
    from arena.learn.learner import PPOLearner

    path = find_checkpoint(path)
    checkpoint = read_checkpoint(path)
    try:
        config = checkpoint["hyper_parameters"]["config"]
        game = config["game"]["name"]
    except (KeyError, TypeError):
        raise CheckpointError(f"{path}: checkpoint carries no game config") from None
    check_saved_game(game, source=str(path))
    if expect_game is not None and game != expect_game:
        raise CheckpointError(f"{path}: checkpoint is for game {game!r}, expected {expect_game!r}")
    if isinstance(config.get("actors"), dict):
        config = {**config, "actors": {**config["actors"], "curve_keys": None}}
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
