"""Scripted players that any game can use or register: the universal `random` bot, and a
small connect-four bot, so every game's learning curve has a fixed reference.

A bot sees what an agent sees, the flat observation and the action mask of its rows, and
returns one legal action per row: `act(obs (N, D) float32, mask (N, A) bool) -> (N,) int64`.
Bots are vectorised over rows (all agents of all games they control) and stateless apart
from their seeded generators, so one bot object can drive any number of games.
"""

from __future__ import annotations

import numpy as np


def _legal(mask: np.ndarray) -> np.ndarray:
    """The mask as bool, with rows that allow nothing opened up entirely (such rows belong
    to agents that do not act this step; whatever they get is ignored)."""
    legal = np.asarray(mask, dtype=bool)
    empty = ~legal.any(axis=1)
    if empty.any():
        legal = legal.copy()
        legal[empty] = True
    return legal


class RandomBot:
    """Uniform over the legal actions: the anchor every game has."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        legal = _legal(mask)
        u = self.rng.random(legal.shape) * legal  # the largest draw among the legal ones
        return u.argmax(axis=1).astype(np.int64)


class ConnectFourBot:
    """PettingZoo connect_four_v3: win now if it can, else block the opponent's immediate
    win, else play the legal column nearest the centre (ties broken at random).

    The observation is the (6, 7, 2) board from the player's own view, flattened: plane 0
    its own discs, plane 1 the opponent's, row 5 the bottom."""

    name = "connect4"
    ROWS, COLS = 6, 7
    PREFERENCE = (3, 2, 4, 1, 5, 0, 6)  # centre first

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        legal = _legal(mask)
        boards = np.asarray(obs, dtype=np.float32).reshape(-1, self.ROWS, self.COLS, 2) > 0.5
        out = np.empty(len(boards), np.int64)
        for i, (board, ok) in enumerate(zip(boards, legal)):
            out[i] = self._choose(board[..., 0], board[..., 1], ok)
        return out

    def _choose(self, mine: np.ndarray, theirs: np.ndarray, legal: np.ndarray) -> int:
        columns = [c for c in self.PREFERENCE if legal[c]]
        for player, other in ((mine, theirs), (theirs, mine)):  # win, then block
            for c in columns:
                row = self._landing_row(mine | theirs, c)
                if row is not None and self._wins(player, row, c):
                    return c
        best = self.PREFERENCE.index(columns[0]) if columns else 0
        near = [c for c in columns if abs(c - 3) == abs(self.PREFERENCE[best] - 3)]
        return int(self.rng.choice(near)) if near else int(np.flatnonzero(legal)[0])

    def _landing_row(self, filled: np.ndarray, column: int) -> int | None:
        empty = np.flatnonzero(~filled[:, column])
        return int(empty[-1]) if empty.size else None  # the lowest empty cell

    def _wins(self, discs: np.ndarray, row: int, column: int) -> bool:
        """Would a disc at (row, column) make four in a row for `discs`?"""
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            count = 1
            for sign in (1, -1):
                r, c = row + sign * dr, column + sign * dc
                while 0 <= r < self.ROWS and 0 <= c < self.COLS and discs[r, c]:
                    count += 1
                    r, c = r + sign * dr, c + sign * dc
            if count >= 4:
                return True
        return False


def connect_four_bot(name: str, role: object, seed: int = 0) -> ConnectFourBot:
    """The registry's factory for connect four's bot (games/registry.py)."""
    return ConnectFourBot(seed)
