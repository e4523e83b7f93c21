"""Scripted players that any game can use or register: the universal `random` bot, and a
small connect-four bot, so every game's learning curve has a fixed reference.

A bot sees what an agent sees, the flat observation and the action mask of its rows, and
returns one legal action per row: `act(obs (N, D) float32, mask (N, A) bool) -> (N,) int64`.
Bots are vectorised over rows (all agents of all games they control) and stateless apart
from their seeded generators, so one bot object can drive any number of games.

Composite bots are built from a game's registered bots (the spec syntax lives in
games/registry.py): `NoisyBot` plays a uniformly random legal action with probability ε
per row and step, else its base bot's; `MixtureBot` plays each agent of a team with its own
member bot. A mixture must know which agent of its team each row is: bots that declare
`uses_agents = True` get `act(obs, mask, agents=...)`, agents (N,) the row's index among its
team's agents (`team_columns`); callers go through `bot_act`, so every other bot keeps the
two-argument `act` unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def _uniform_legal(rng: np.random.Generator, legal: np.ndarray) -> np.ndarray:
    """One uniformly random legal action per row of the bool mask `legal`."""
    u = rng.random(legal.shape) * legal  # the largest draw among the legal ones
    return u.argmax(axis=1).astype(np.int64)


class RandomBot:
    """Uniform over the legal actions: the anchor every game has."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return _uniform_legal(self.rng, _legal(mask))


def team_columns(slot_team: Sequence[int] | np.ndarray) -> np.ndarray:
    """(S,) each slot's index among the slots of its team, in slot (agent) order: what a
    mixture bot reads to know which member plays a row."""
    slot_team = np.asarray(slot_team)
    out = np.zeros(len(slot_team), np.int64)
    for team in np.unique(slot_team):
        slots = np.flatnonzero(slot_team == team)
        out[slots] = np.arange(len(slots))
    return out


def bot_act(bot: Any, obs: np.ndarray, mask: np.ndarray,
            agents: np.ndarray | None = None) -> np.ndarray:
    """`bot.act` on rows; `agents` (N,), each row's index among its team's agents, is passed
    only to bots that declare `uses_agents` (mixtures, and noisy bots around one)."""
    if getattr(bot, "uses_agents", False):
        return bot.act(obs, mask, agents=agents)
    return bot.act(obs, mask)


class NoisyBot:
    """Its base bot, except that each row, each step, with probability `epsilon` plays a
    uniformly random legal action instead. The base bot is asked about every row (so its
    own generator advances the same whatever the coin says); the coin and the random action
    come from this bot's own seeded generator: deterministic per seed, and ε = 0 is exactly
    the base bot."""

    def __init__(self, base: Any, epsilon: float, seed: int = 0, name: str = "") -> None:
        if not 0.0 <= float(epsilon) <= 1.0:
            raise ValueError(f"noisy bot: epsilon must be in [0, 1], got {epsilon!r}")
        self.base, self.epsilon = base, float(epsilon)
        self.name = name or f"{getattr(base, 'name', 'bot')}~{epsilon:g}"
        self.uses_agents = bool(getattr(base, "uses_agents", False))
        self.rng = np.random.default_rng((int(seed), 0x6E6F697379))  # apart from the base's

    def act(self, obs: np.ndarray, mask: np.ndarray,
            agents: np.ndarray | None = None) -> np.ndarray:
        picked = np.asarray(bot_act(self.base, obs, mask, agents), np.int64)
        legal = _legal(mask)
        noise = self.rng.random(len(legal)) < self.epsilon
        uniform = _uniform_legal(self.rng, legal)
        return np.where(noise, uniform, picked).astype(np.int64)


class MixtureBot:
    """One member bot per agent of a team: the row of the team's i-th agent is played by
    `members[i]` (each member sees only its own rows). Needs `agents` with every call."""

    uses_agents = True

    def __init__(self, members: Sequence[Any], name: str = "") -> None:
        if len(members) < 2:
            raise ValueError(f"mixture bot: needs at least two members, got {len(members)}")
        self.members = list(members)
        self.name = name or "+".join(getattr(m, "name", "bot") for m in self.members)

    def act(self, obs: np.ndarray, mask: np.ndarray,
            agents: np.ndarray | None = None) -> np.ndarray:
        n = len(obs)
        if agents is None:
            raise ValueError(f"mixture bot {self.name!r} plays each agent of a team with its "
                             f"own bot: it needs each row's agent index (agents=...)")
        agents = np.asarray(agents, np.int64)
        if agents.shape != (n,):
            raise ValueError(f"mixture bot {self.name!r}: agents must have shape ({n},), "
                             f"got {agents.shape}")
        if n and (agents.min() < 0 or agents.max() >= len(self.members)):
            raise ValueError(f"mixture bot {self.name!r} has {len(self.members)} members, one "
                             f"per agent of a team, but was asked about agent "
                             f"{int(agents.max())} (a team of more agents?)")
        out = np.zeros(n, np.int64)
        for i, member in enumerate(self.members):
            rows = np.flatnonzero(agents == i)
            if len(rows):
                out[rows] = bot_act(member, obs[rows], mask[rows], agents[rows])
        return out


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
