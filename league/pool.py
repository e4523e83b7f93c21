"""The opponent pool: frozen past selves, sampled by quality score (OpenAI Five) or PFSP.

Each game's opponent is the latest policy with probability `latest_prob`; otherwise a
snapshot i drawn with probability p_i = softmax(q)_i. A new snapshot enters with
q = max(q). When the latest policy beats snapshot i, q_i <- q_i - eta / (N p_i), so
opponents that are beaten often are drawn less (OpenAI Five, Berner et al. 2019).
PFSP (AlphaStar) weights snapshots by f(x) of the latest's win rate x against them instead:
f_hard = (1 - x)^p, f_var = x (1 - x).

On disk (one directory per role): `snapshot-NNNNNN.safetensors` (the weights, never a
pickle) and `pool.json` (the index with qualities and results), both written atomically
with a temporary file and a rename.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save

from games.files import atomic_write_bytes

INDEX = "pool.json"
SAMPLERS = ("quality", "pfsp")


class PoolError(ValueError):
    """A pool directory or index that cannot be used as it is."""


@dataclass
class Snapshot:
    id: int
    update: int
    agent_steps: int
    file: str
    quality: float
    games: int = 0  # games the latest policy played against it
    score: float = 0.0  # the latest's summed score against it (1 win, 0.5 draw, 0 loss)

    @property
    def win_rate(self) -> float | None:
        return self.score / self.games if self.games else None


class OpponentPool:
    def __init__(self, directory: str | Path, *, latest_prob: float = 0.8,
                 sampler: str = "quality", eta: float = 0.01, pfsp_weighting: str = "hard",
                 pfsp_p: float = 2.0, max_snapshots: int | None = None, cache: int = 8) -> None:
        if not 0.0 <= latest_prob <= 1.0:
            raise ValueError(f"latest_prob: expected a number in [0, 1], got {latest_prob!r}")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler: expected one of {SAMPLERS}, got {sampler!r}")
        if pfsp_weighting not in ("hard", "var"):
            raise ValueError(f"pfsp_weighting: expected hard or var, got {pfsp_weighting!r}")
        self.directory = Path(directory)
        self.latest_prob = latest_prob
        self.sampler = sampler
        self.eta = eta
        self.pfsp_weighting = pfsp_weighting
        self.pfsp_p = pfsp_p
        self.max_snapshots = max_snapshots
        self.snapshots: list[Snapshot] = []
        self._next_id = 0
        self._cache: OrderedDict[int, dict[str, torch.Tensor]] = OrderedDict()
        self._cache_size = cache

    # ---- persistence --------------------------------------------------------------------
    @classmethod
    def open(cls, directory: str | Path, **kwargs: Any) -> OpponentPool:
        """The pool stored in `directory` (an empty pool if there is none yet)."""
        pool = cls(directory, **kwargs)
        index = pool.directory / INDEX
        if index.is_file():
            try:
                data = json.loads(index.read_text())
                pool._load_entries(data)
            except (ValueError, KeyError, TypeError) as exc:
                raise PoolError(f"{index}: not a valid pool index ({exc})") from None
            for snap in pool.snapshots:
                if not (pool.directory / snap.file).is_file():
                    raise PoolError(f"{pool.directory / snap.file}: snapshot listed in {index} "
                                    f"is missing")
        return pool

    def _load_entries(self, data: Mapping[str, Any]) -> None:
        self.snapshots = [Snapshot(**entry) for entry in data["snapshots"]]
        self._next_id = int(data.get("next_id", len(self.snapshots)))
        self._cache.clear()

    def state_dict(self) -> dict[str, Any]:
        """JSON-able: the index as it is now (saved in training checkpoints)."""
        return {"snapshots": [asdict(s) for s in self.snapshots], "next_id": self._next_id}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._load_entries(state)
        missing = [s.file for s in self.snapshots if not (self.directory / s.file).is_file()]
        if missing:
            raise PoolError(f"{self.directory}: snapshot files {missing} are missing")
        self.save_index()

    def save_index(self) -> None:
        atomic_write_bytes(self.directory / INDEX,
                           json.dumps(self.state_dict(), indent=1).encode())

    # ---- adding and sampling --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.snapshots)

    def add(self, weights: Mapping[str, torch.Tensor], update: int, agent_steps: int) -> Snapshot:
        """Freeze `weights` (a flat state_dict) as a new snapshot; it enters at max(q)."""
        quality = max((s.quality for s in self.snapshots), default=0.0)
        snap = Snapshot(id=self._next_id, update=int(update), agent_steps=int(agent_steps),
                        file=f"snapshot-{self._next_id:06d}.safetensors", quality=quality)
        tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
        atomic_write_bytes(self.directory / snap.file, save(
            tensors, metadata={"update": str(update), "agent_steps": str(agent_steps)}))
        self.snapshots.append(snap)
        self._next_id += 1
        dropped = None
        if self.max_snapshots is not None and len(self.snapshots) > self.max_snapshots:
            # drop the lowest-quality of the older snapshots (the newest always stays)
            dropped = min(self.snapshots[:-1], key=lambda s: (s.quality, s.id))
            self.snapshots.remove(dropped)
            self._cache.pop(dropped.id, None)
        self.save_index()
        if dropped is not None:  # the index no longer lists it: now the file may go
            (self.directory / dropped.file).unlink(missing_ok=True)
        return snap

    def probabilities(self) -> np.ndarray:
        """Probability of each snapshot when a past self is drawn."""
        if not self.snapshots:
            return np.zeros(0)
        if self.sampler == "quality":
            q = np.array([s.quality for s in self.snapshots], np.float64)
            e = np.exp(q - q.max())
            return e / e.sum()
        x = np.array([s.win_rate if s.games else 0.5 for s in self.snapshots], np.float64)
        f = (1.0 - x) ** self.pfsp_p if self.pfsp_weighting == "hard" else x * (1.0 - x)
        f = f + 1e-3  # never rule a snapshot out entirely
        return f / f.sum()

    def sample(self, rng: np.random.Generator) -> Snapshot | None:
        """An opponent for one game: None (the latest policy) or a past snapshot."""
        if not self.snapshots or rng.random() < self.latest_prob:
            return None
        return self.sample_snapshot(rng)

    def sample_snapshot(self, rng: np.random.Generator) -> Snapshot:
        if not self.snapshots:
            raise PoolError(f"{self.directory}: the pool is empty; no past snapshot to draw")
        return self.snapshots[int(rng.choice(len(self.snapshots), p=self.probabilities()))]

    def get(self, snapshot_id: int) -> Snapshot:
        for snap in self.snapshots:
            if snap.id == snapshot_id:
                return snap
        raise PoolError(f"{self.directory}: no snapshot {snapshot_id} in the pool")

    def record(self, snapshot_id: int, latest_score: float) -> None:
        """One game of the latest policy against a snapshot: 1 win, 0.5 draw, 0 loss.
        Kept in memory; `save_index` writes it (the learner does after every update)."""
        snap = self.get(snapshot_id)
        if latest_score >= 1.0 and self.sampler == "quality":
            p = self.probabilities()[self.snapshots.index(snap)]
            snap.quality = float(snap.quality - self.eta / (len(self.snapshots) * p))
        snap.games += 1
        snap.score += float(latest_score)

    def win_rates(self) -> dict[int, float]:
        return {s.id: s.win_rate for s in self.snapshots if s.games}

    def load_weights(self, snapshot_id: int) -> dict[str, torch.Tensor]:
        """A snapshot's weights (safetensors, on CPU), with a small cache."""
        if snapshot_id in self._cache:
            self._cache.move_to_end(snapshot_id)
            return self._cache[snapshot_id]
        path = self.directory / self.get(snapshot_id).file
        try:
            weights = load_file(str(path), device="cpu")
        except Exception as exc:
            raise PoolError(f"{path}: not a readable snapshot ({exc})") from None
        self._cache[snapshot_id] = weights
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return weights

