"""A run directory: one run, one process writing it, and a record of how it was configured.

runs/<name>/
    config.yaml            the config the run trains with now (written once training starts)
    config_history.jsonl   one line per start: the update it took effect at, when, how the
                           run was started, the overrides given, and the whole config
    checkpoints/           Lightning checkpoints (update-NNNNNN.ckpt, last.ckpt)
    league/, tb/           the opponent pool; TensorBoard events
    .lock                  held (flock) by the process that trains the run; names its pid

Two processes training into one directory would interleave their checkpoints, and a new run
started over an old one would continue the old weights under a new config at the next
resume; both are refused here. Only rank 0 of a launch takes the lock and writes the config.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from games.files import atomic_write_bytes

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"
CONFIG = "config.yaml"
HISTORY = "config_history.jsonl"
LOCK = ".lock"


# the temporary file of `games.files.atomic_write_bytes` (mkstemp: prefix ".NAME.", 8 random
# characters, suffix ".tmp"); one is left behind only when its writer died before the rename
TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (held by another process, holds a run)."""


def holds_run(path: Path) -> bool:
    """Whether `path` holds (part of) a run: a config, a checkpoint or a league pool."""
    return (path / CONFIG).exists() or any((path / CHECKPOINT_DIR).glob("*.ckpt")) \
        or any((path / "league").glob("*/pool.json"))


def is_launch_rank_zero() -> bool:
    """Rank 0 of the whole launch, from the environment the launcher (Lightning's own,
    torchrun or SLURM) sets before any process group exists."""
    from lightning.pytorch.utilities import rank_zero_only

    return rank_zero_only.rank == 0 and int(os.environ.get("NODE_RANK", "0") or 0) == 0


class RunLock:
    """An exclusive lock on a run directory for the life of the process that trains it.

    flock is released by the kernel when the process dies (SIGKILL included), so a killed
    run never leaves a stale lock behind; the pid in the file only names the holder."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise
            holder = self._holder()
            raise RunDirError(
                f"{self.path.parent}: another process{f' (pid {holder})' if holder else ''} "
                f"is training this run; wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def _holder(self) -> str:
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def stale_temporaries(run_dir: Path) -> list[Path]:
    """Temporary files of atomic writes in the run (any depth) whose writer died mid-write."""
    return sorted(p for p in Path(run_dir).rglob(".*.tmp")
                  if TEMPORARY.match(p.name) and p.is_file())


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete what killed atomic writes left behind (SIGKILL skips their clean-up); returns
    the files removed. Call it only with the run's lock held: then no writer is alive, and
    the finished file (or the old one) is already in place beside each temporary."""
    removed = []
    for path in stale_temporaries(run_dir):
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def starts_recorded(run_dir: Path | None) -> int:
    """How many starts of the run have trained so far (lines of its history): a number
    that differs between a run's lives, for seeds that must not repeat after a resume."""
    history = None if run_dir is None else Path(run_dir) / HISTORY
    if history is None or not history.is_file():
        return 0
    return sum(1 for line in history.read_bytes().splitlines() if line.strip())


def record_start(run_dir: Path, config_yaml: str, config: dict[str, Any], update: int,
                 how: str, overrides: list[str]) -> None:
    """Write the config the run now trains with, and append this start to the history.

    Called once training has started (after a resume restored its checkpoint), so a start
    that fails or has nothing to do leaves the run's config as it was."""
    atomic_write_bytes(run_dir / CONFIG, config_yaml.encode())
    line = json.dumps({"update": int(update), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "how": how, "overrides": list(overrides), "config": config},
                      default=str)
    history = run_dir / HISTORY
    old = history.read_bytes() if history.is_file() else b""
    atomic_write_bytes(history, old + line.encode() + b"\n")
