"""The opponent pool: frozen past selves, sampled by quality score (OpenAI Five) or PFSP.

Each game's opponent is the latest policy with probability `latest_prob`; otherwise a
snapshot i drawn with probability p_i = softmax(q)_i. A new snapshot enters with
q = max(q). When the latest policy beats snapshot i, q_i <- q_i - eta / (N p_i), so
opponents that are beaten often are drawn less (OpenAI Five, Berner et al. 2019).
PFSP (AlphaStar) weights snapshots by f(x) of the latest's win rate x against them instead:
f_hard = (1 - x)^p, f_var = x (1 - x), with x = 0.5 for a snapshot not played yet and a
small floor so that no snapshot is ruled out. Quality scores are kept up to date under
both samplers (they decide which snapshot `max_snapshots` drops).

On disk (one directory per role): `snapshot-NNNNNN.safetensors` (the weights, never a
pickle) and `pool.json` (the index with qualities and results), both written atomically
with a temporary file and a rename. A snapshot's file also records, as JSON in its
safetensors metadata ("arch"), the architecture of its networks (whatever the learner
passes: sizes and the meaning of inputs and outputs), so that it can be rebuilt as it was
after the run's networks or game changed (arena/learn/surgery.py). A snapshot dropped by `max_snapshots` leaves the index
first and loses its file after; its weights stay in memory for a while, so that games
already playing against it can finish (`record` ignores results against it).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save

from games.files import atomic_write_bytes

INDEX = "pool.json"
ARCH_KEY = "arch"  # safetensors metadata entry: JSON of the snapshot's architecture
FORMAT = 1
SAMPLERS = ("quality", "pfsp")
PFSP_WEIGHTINGS = ("hard", "var")
PFSP_FLOOR = 1e-3  # added to f(x) so that no snapshot has probability zero
QUALITY_LIMIT = 1e300  # q never falls below -QUALITY_LIMIT (stays finite in JSON)


class PoolError(ValueError):
    """A pool directory or index that cannot be used as it is, or an impossible request."""


class EmptyPoolError(PoolError):
    """A past snapshot was asked of a pool that holds none."""


@dataclass
class Snapshot:
    id: int  # 0, 1, 2 ... in order of creation
    update: int  # learner update at which it was taken
    agent_steps: int
    file: str  # file name inside the pool directory
    quality: float  # q_i
    games: int = 0  # games the latest policy played against it
    score: float = 0.0  # the latest's summed score against it (1 win, 0.5 draw, 0 loss)
    source: str = "main"  # who was frozen: the main policy or an exploiter (league/exploiters.py)

    @property
    def win_rate(self) -> float | None:
        """The latest policy's mean score against this snapshot (None before any game)."""
        return self.score / self.games if self.games else None


def pfsp_weights(win_rates: np.ndarray, weighting: str = "hard", p: float = 2.0) -> np.ndarray:
    """PFSP probabilities from the learner's win rate x against each candidate (nan: not
    played yet, counted as 0.5): f_hard = (1 - x)^p, f_var = x (1 - x), plus a small floor
    so that no candidate is ruled out, normalised."""
    x = np.clip(np.nan_to_num(np.asarray(win_rates, np.float64), nan=0.5), 0.0, 1.0)
    f = (1.0 - x) ** p if weighting == "hard" else x * (1.0 - x)
    f = f + PFSP_FLOOR
    return f / f.sum()


SNAPSHOT_FILE = re.compile(r"snapshot-(\d{6,})\.safetensors")


def snapshot_file(snapshot_id: int) -> str:
    return f"snapshot-{snapshot_id:06d}.safetensors"


def _snapshot_from_json(entry: Any) -> Snapshot:
    """One index entry, checked field by field (the index is read from disk)."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"snapshot entry {entry!r} is not an object")
    names = {f.name for f in fields(Snapshot)}
    required = {"id", "update", "agent_steps", "file", "quality"}
    if not required <= set(entry) or not set(entry) <= names:
        raise ValueError(f"snapshot entry {dict(entry)!r}: expected the fields {sorted(names)}")
    for key in ("id", "update", "agent_steps", "games"):
        value = entry.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"snapshot entry {entry.get('id')!r}: {key} must be an int >= 0, "
                             f"got {value!r}")
    for key in ("quality", "score"):
        value = entry.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ValueError(f"snapshot entry {entry['id']}: {key} must be a number, "
                             f"got {value!r}")
    source = entry.get("source", "main")
    if not isinstance(source, str) or not source:
        raise ValueError(f"snapshot entry {entry['id']}: source must be a non-empty string, "
                         f"got {source!r}")
    name = entry["file"]
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        # a bare file name inside the pool directory, never a path that leads out of it
        raise ValueError(f"snapshot entry {entry['id']}: file must be a plain file name, "
                         f"got {name!r}")
    return Snapshot(id=entry["id"], update=entry["update"], agent_steps=entry["agent_steps"],
                    file=name, quality=float(entry["quality"]), games=entry.get("games", 0),
                    score=float(entry.get("score", 0.0)), source=source)


def entries_from_state(state: Any) -> tuple[list[Snapshot], int]:
    if not isinstance(state, Mapping) or not isinstance(state.get("snapshots"), list):
        raise ValueError("expected an object with a 'snapshots' list")
    snapshots = [_snapshot_from_json(e) for e in state["snapshots"]]
    ids = [s.id for s in snapshots]
    if len(set(ids)) != len(ids):
        raise ValueError(f"snapshot ids {ids} repeat")
    if ids != sorted(ids):
        raise ValueError(f"snapshot ids {ids} are not in order of creation")
    next_id = state.get("next_id", ids[-1] + 1 if ids else 0)
    if isinstance(next_id, bool) or not isinstance(next_id, int) or (ids and next_id <= ids[-1]):
        raise ValueError(f"next_id {next_id!r} must be an int above every snapshot id")
    return snapshots, next_id


class OpponentPool:
    """Frozen snapshots of one role's policy, on disk in `directory`.

    latest_prob: chance that a game's opponent is the latest policy (`sample` -> None).
    sampler: "quality" (softmax of the quality scores, OpenAI Five) or "pfsp".
    eta: step of the quality update. pfsp_weighting: "hard" (1-x)^pfsp_p or "var" x(1-x).
    max_snapshots: keep at most this many; beyond it the lowest-quality older snapshot
    (the oldest among equals) is dropped. cache: snapshots whose weights are kept in memory.
    """

    def __init__(self, directory: str | Path, *, latest_prob: float = 0.8,
                 sampler: str = "quality", eta: float = 0.01, pfsp_weighting: str = "hard",
                 pfsp_p: float = 2.0, max_snapshots: int | None = None, cache: int = 8) -> None:
        if not 0.0 <= latest_prob <= 1.0:
            raise ValueError(f"latest_prob: expected a number in [0, 1], got {latest_prob!r}")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler: expected one of {', '.join(SAMPLERS)}, got {sampler!r}")
        if not eta > 0.0 or not math.isfinite(eta):
            raise ValueError(f"eta: expected a positive number, got {eta!r}")
        if pfsp_weighting not in PFSP_WEIGHTINGS:
            raise ValueError(f"pfsp_weighting: expected one of {', '.join(PFSP_WEIGHTINGS)}, "
                             f"got {pfsp_weighting!r}")
        if not pfsp_p >= 0.0 or not math.isfinite(pfsp_p):
            raise ValueError(f"pfsp_p: expected a number >= 0, got {pfsp_p!r}")
        if max_snapshots is not None and (isinstance(max_snapshots, bool)
                                          or not isinstance(max_snapshots, int)
                                          or max_snapshots < 1):
            raise ValueError(f"max_snapshots: expected None or an int >= 1, got {max_snapshots!r}")
        if isinstance(cache, bool) or not isinstance(cache, int) or cache < 0:
            raise ValueError(f"cache: expected an int >= 0, got {cache!r}")
        self.directory = Path(directory)
        self.latest_prob = float(latest_prob)
        self.sampler = sampler
        self.eta = float(eta)
        self.pfsp_weighting = pfsp_weighting
        self.pfsp_p = float(pfsp_p)
        self.max_snapshots = max_snapshots
        self._snapshots: list[Snapshot] = []
        self._next_id = 0
        self._cache: OrderedDict[int, dict[str, torch.Tensor]] = OrderedDict()
        self._retired: OrderedDict[int, dict[str, torch.Tensor]] = OrderedDict()
        self._archs: dict[int, dict[str, Any] | None] = {}  # small: kept for every id read
        self._cache_size = cache
        self._written: bytes | None = None  # the index as last written

    # ---- what is in it ---------------------------------------------------------------------
    @property
    def snapshots(self) -> list[Snapshot]:
        """The snapshots, oldest first (the objects themselves: edits change the pool)."""
        return self._snapshots

    @property
    def index_path(self) -> Path:
        return self.directory / INDEX

    @property
    def next_id(self) -> int:
        return self._next_id

    def __len__(self) -> int:
        return len(self._snapshots)

    def __contains__(self, snapshot_id: object) -> bool:
        return any(s.id == snapshot_id for s in self._snapshots)

    def get(self, snapshot_id: int) -> Snapshot:
        for snap in self._snapshots:
            if snap.id == snapshot_id:
                return snap
        if 0 <= snapshot_id < self._next_id:
            raise PoolError(f"{self.directory}: snapshot {snapshot_id} was dropped from the pool")
        raise PoolError(f"{self.directory}: no snapshot {snapshot_id} in the pool")

    def win_rates(self) -> dict[int, float]:
        """The latest policy's mean score against each snapshot it has played."""
        return {s.id: s.score / s.games for s in self._snapshots if s.games}

    # ---- persistence -----------------------------------------------------------------------
    @classmethod
    def open(cls, directory: str | Path, *, recover: bool = False,
             **kwargs: Any) -> OpponentPool:
        """The pool stored in `directory`; an empty pool if there is none yet.

        The settings come from `kwargs` (the config), not from the stored index. Snapshots
        whose file is gone are left out with a warning (the others still play). An index
        that cannot be read raises PoolError, or with `recover` (a training run, whose
        checkpoint holds the pool's state and puts it back on resume) warns and starts
        from an empty index."""
        pool = cls(directory, **kwargs)
        if pool.directory.exists() and not pool.directory.is_dir():
            raise PoolError(f"{pool.directory}: not a directory, cannot hold a pool")
        index = pool.index_path
        if not index.is_file():
            return pool
        try:
            raw = index.read_bytes()
            snapshots, next_id = entries_from_state(json.loads(raw))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            message = f"{index}: not a valid pool index ({exc})"
            if not recover:
                raise PoolError(message) from None
            warnings.warn(message + "; the pool starts from the state a resumed run's "
                          "checkpoint holds", RuntimeWarning, stacklevel=2)
            return pool
        missing = [s.file for s in snapshots if not (pool.directory / s.file).is_file()]
        if missing:
            warnings.warn(f"{index} lists snapshot file(s) that are missing: "
                          + ", ".join(str(pool.directory / m) for m in missing)
                          + "; left out of the pool", RuntimeWarning, stacklevel=2)
            snapshots = [s for s in snapshots if s.file not in missing]
            raw = b""  # the index on disk is not this pool's: write it again at the next change
        pool._snapshots, pool._next_id = snapshots, next_id
        pool._written = raw
        return pool

    def settings(self) -> dict[str, Any]:
        return {"latest_prob": self.latest_prob, "sampler": self.sampler, "eta": self.eta,
                "pfsp_weighting": self.pfsp_weighting, "pfsp_p": self.pfsp_p,
                "max_snapshots": self.max_snapshots}

    def state_dict(self) -> dict[str, Any]:
        """JSON-able: the index as it is now, with the settings for reference (saved in
        training checkpoints and as pool.json)."""
        return {"format": FORMAT, "snapshots": [asdict(s) for s in self._snapshots],
                "next_id": self._next_id, "settings": self.settings()}

    def load_state_dict(self, state: Mapping[str, Any], *, strict: bool = False) -> None:
        """Back to the pool as `state` saw it (qualities, results and the next id exactly);
        the settings stay those this pool was made with. Snapshots whose file is gone
        (dropped by `max_snapshots` after that checkpoint) are left out with a warning, or
        raise PoolError when `strict`. Writes the index."""
        try:
            snapshots, next_id = entries_from_state(state)
        except (ValueError, KeyError, TypeError) as exc:
            raise PoolError(f"{self.directory}: not a valid pool state ({exc})") from None
        missing = [s.file for s in snapshots if not (self.directory / s.file).is_file()]
        if missing:
            message = (f"{self.directory}: snapshot file(s) of the saved pool state are "
                       f"missing: {', '.join(missing)}")
            if strict:
                raise PoolError(message)
            warnings.warn(message + "; left out of the pool", RuntimeWarning, stacklevel=2)
            snapshots = [s for s in snapshots if s.file not in missing]
        self._snapshots, self._next_id = snapshots, next_id
        self._cache.clear()  # ids at or above next_id may be taken again by new snapshots
        # Files of snapshots added after `state` was saved (a killed run resumed from an
        # older checkpoint): no pool lists them and their ids will be given again.
        for path in self.directory.glob("snapshot-*.safetensors"):
            m = SNAPSHOT_FILE.fullmatch(path.name)
            if m and int(m.group(1)) >= next_id:
                path.unlink(missing_ok=True)
        self._retired.clear()
        self._archs.clear()
        self.save_index()

    def save_index(self) -> None:
        """Write pool.json atomically (skipped when nothing changed since the last write)."""
        data = json.dumps(self.state_dict(), indent=1).encode()
        if data != self._written or not self.index_path.is_file():
            atomic_write_bytes(self.index_path, data)
            self._written = data

    # ---- adding ----------------------------------------------------------------------------
    def add(self, weights: Mapping[str, torch.Tensor], update: int, agent_steps: int,
            source: str = "main", arch: Mapping[str, Any] | None = None) -> Snapshot:
        """Freeze `weights` (a flat state_dict) as a new snapshot; it enters at max(q).
        `source` names who was frozen (the main policy or an exploiter); `arch` (JSON-able)
        describes its networks, `load_arch` gives it back. Writes the weights file, then
        the index."""
        if not weights:
            raise ValueError("weights: a snapshot needs at least one tensor")
        tensors = {}
        for name, value in weights.items():
            if not isinstance(name, str) or not isinstance(value, torch.Tensor):
                raise TypeError(f"weights: expected str -> torch.Tensor, got {name!r} -> "
                                f"{type(value).__name__}")
            # a private contiguous CPU copy: safetensors refuses tensors that share memory
            tensors[name] = value.detach().to("cpu", memory_format=torch.contiguous_format,
                                              copy=True)
        quality = max((s.quality for s in self._snapshots), default=0.0)
        snap = Snapshot(id=self._next_id, update=int(update), agent_steps=int(agent_steps),
                        file=snapshot_file(self._next_id), quality=float(quality),
                        source=str(source))
        metadata = {"id": str(snap.id), "update": str(snap.update),
                    "agent_steps": str(snap.agent_steps)}
        if arch is not None:
            metadata[ARCH_KEY] = json.dumps(arch, separators=(",", ":"))
        atomic_write_bytes(self.directory / snap.file, save(tensors, metadata=metadata))
        self._snapshots.append(snap)
        self._next_id += 1
        self._cache.pop(snap.id, None)
        self._retired.pop(snap.id, None)
        self._archs[snap.id] = None if arch is None else json.loads(metadata[ARCH_KEY])
        dropped = None
        if self.max_snapshots is not None and len(self._snapshots) > self.max_snapshots:
            # the lowest-quality older snapshot, the oldest among equals; never the new one
            dropped = min(self._snapshots[:-1], key=lambda s: (s.quality, s.id))
            self._snapshots.remove(dropped)
            self._retire(dropped)
        self.save_index()
        if dropped is not None:  # the index no longer lists it: now the file may go
            (self.directory / dropped.file).unlink(missing_ok=True)
        return snap

    def _retire(self, snap: Snapshot) -> None:
        """Keep a dropped snapshot's weights in memory for games still playing it."""
        weights = self._cache.pop(snap.id, None)
        if weights is None:
            try:
                weights = load_file(str(self.directory / snap.file), device="cpu")
            except Exception:  # noqa: BLE001 - unreadable: nothing to keep
                weights = None
        if weights is not None and self._cache_size:
            self._retired[snap.id] = weights
            while len(self._retired) > self._cache_size:
                self._retired.popitem(last=False)

    # ---- sampling and results ----------------------------------------------------------------
    def quality_probabilities(self) -> np.ndarray:
        """softmax(q) over the snapshots (what the quality update divides by)."""
        if not self._snapshots:
            return np.zeros(0)
        q = np.array([s.quality for s in self._snapshots], np.float64)
        e = np.exp(q - q.max())
        return e / e.sum()

    def probabilities(self) -> np.ndarray:
        """Probability of each snapshot (oldest first) when a past self is drawn."""
        if not self._snapshots or self.sampler == "quality":
            return self.quality_probabilities()
        x = np.array([s.score / s.games if s.games else np.nan for s in self._snapshots],
                     np.float64)
        return pfsp_weights(x, self.pfsp_weighting, self.pfsp_p)

    def sample(self, rng: np.random.Generator) -> Snapshot | None:
        """An opponent for one game: None (the latest policy) with probability latest_prob
        or when the pool is empty, else a past snapshot."""
        if not self._snapshots or rng.random() < self.latest_prob:
            return None
        return self.sample_snapshot(rng)

    def sample_snapshot(self, rng: np.random.Generator) -> Snapshot:
        """A past snapshot, never the latest policy; EmptyPoolError if there is none."""
        if not self._snapshots:
            raise EmptyPoolError(f"{self.directory}: the pool is empty; "
                                 f"there is no past snapshot to draw")
        return self._snapshots[int(rng.choice(len(self._snapshots), p=self.probabilities()))]

    def record(self, snapshot_id: int, latest_score: float) -> None:
        """One game of the latest policy against a snapshot: 1 win, 0.5 draw, 0 loss.

        A win lowers q_i by eta / (N p_i), p_i = softmax(q)_i, under either sampler.
        Results against a snapshot dropped meanwhile are ignored. Kept in memory;
        `save_index` writes them (the learner does after every update)."""
        score = float(latest_score)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"latest_score: expected a number in [0, 1], got {latest_score!r}")
        if snapshot_id not in self and 0 <= snapshot_id < self._next_id:
            return  # dropped by max_snapshots while the game was playing
        snap = self.get(snapshot_id)
        if score >= 1.0:
            i = self._snapshots.index(snap)
            p = max(float(self.quality_probabilities()[i]), np.finfo(np.float64).tiny)
            snap.quality = max(float(snap.quality - self.eta / (len(self._snapshots) * p)),
                               -QUALITY_LIMIT)
        snap.games += 1
        snap.score += score

    # ---- weights -------------------------------------------------------------------------------
    def load_weights(self, snapshot_id: int) -> dict[str, torch.Tensor]:
        """A snapshot's weights (safetensors, on CPU); the most recent few are cached, so
        treat the tensors as read-only (copy them into a model)."""
        if snapshot_id in self._cache:
            self._cache.move_to_end(snapshot_id)
            return dict(self._cache[snapshot_id])
        if snapshot_id not in self and snapshot_id in self._retired:
            return dict(self._retired[snapshot_id])
        path = self.directory / self.get(snapshot_id).file
        try:
            weights = load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - any failure to read is the file's fault
            raise PoolError(f"{path}: not a readable snapshot ({exc})") from None
        if self._cache_size:
            self._cache[snapshot_id] = weights
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return dict(weights)

    def load_arch(self, snapshot_id: int) -> dict[str, Any] | None:
        """The architecture stored with a snapshot (`add(arch=...)`); None for a snapshot
        written without one (before architectures were stored). Kept once read."""
        if snapshot_id not in self._archs:
            self._archs[snapshot_id] = self._read_arch(snapshot_id)
        return self._archs[snapshot_id]

    def _read_arch(self, snapshot_id: int) -> dict[str, Any] | None:
        from safetensors import safe_open

        path = self.directory / self.get(snapshot_id).file
        try:
            with safe_open(str(path), framework="pt", device="cpu") as fh:
                metadata = fh.metadata() or {}
        except Exception as exc:  # noqa: BLE001 - any failure to read is the file's fault
            raise PoolError(f"{path}: not a readable snapshot ({exc})") from None
        return arch_from_metadata(metadata, str(path))


def arch_from_metadata(metadata: Mapping[str, str], where: str) -> dict[str, Any] | None:
    """The architecture entry of a snapshot's safetensors metadata (None if it has none)."""
    raw = metadata.get(ARCH_KEY)
    if raw is None:
        return None
    try:
        arch = json.loads(raw)
    except ValueError as exc:
        raise PoolError(f"{where}: the snapshot's architecture is not valid JSON ({exc})") from None
    if not isinstance(arch, dict):
        raise PoolError(f"{where}: the snapshot's architecture is not a JSON object")
    return arch


def arch_from_bytes(data: bytes, where: str) -> dict[str, Any] | None:
    """`arch_from_metadata` of a whole safetensors file held in memory (8-byte little-endian
    header length, then the JSON header with its "__metadata__")."""
    try:
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + size])
    except ValueError as exc:
        raise PoolError(f"{where}: not a readable snapshot header ({exc})") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return arch_from_metadata(metadata or {}, where)
