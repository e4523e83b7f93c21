"""Batched matches between two bots on `MobaCore` (num_games games at once, no autoreset).

    from games.moba.bots import make_bot
    from games.moba.layout import MobaLayout
    lay = MobaLayout(config)
    result = play_games(make_bot("pusher", lay), make_bot("random", lay, seed=1),
                        num_games=32, seed=0, config=config)
    win_rate(result)  # radiant's share, draws count half

The radiant bot controls heroes 0..n-1 of every game, the dire bot heroes n..2n-1; each
bot gets the (num_games * n, obs_dim) observations of its heroes in one call. Games that
have ended sit still (the core ignores their actions) until every game is over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from games.moba.config import MobaConfig
from games.moba.core import MobaCore
from games.moba.layout import E_NET_WORTH, EVENT_NAMES, I_ALIVE


@dataclass
class MatchResult:
    """Outcome of a batch of games.

    winners: (num_games,) int8, 0 radiant won, 1 dire won, -1 draw.
    lengths: (num_games,) ticks played.
    net_worth: (num_games, 2) final team net worth (radiant, dire).
    event_totals: (num_games, num_heroes, num_events) events summed over the match (names
        in `EVENT_NAMES`), except `net_worth`, which holds the hero's final net worth.
    ancient_destroyed: (num_games,) bool, the game ended by an ancient falling (not the
        time limit).
    """

    winners: np.ndarray
    lengths: np.ndarray
    net_worth: np.ndarray
    event_totals: np.ndarray
    ancient_destroyed: np.ndarray | None = None

    event_names = EVENT_NAMES

    @property
    def num_games(self) -> int:
        return int(self.winners.shape[0])


def play_games(radiant, dire, num_games: int = 1, seed: int = 0,
               config: MobaConfig | None = None,
               on_step: Callable[[MobaCore], None] | None = None) -> MatchResult:
    """Play `num_games` games of `radiant` (heroes 0..n-1) against `dire` (heroes n..2n-1).

    `seed`: game b is reset with seed + b. `on_step(core)` is called after the reset and
    after every step (e.g. to record frames). The bots' own random state is theirs: build
    them afresh with the same seeds to replay a match exactly.
    """
    if config is None:
        config = MobaConfig()
    core = MobaCore(config, num_games=num_games, autoreset=False)
    B, H, n = core.num_games, core.num_heroes, config.team_size
    obs_dim, num_actions = core.obs_dim, core.num_actions
    r = core.reset(seed=seed)
    if on_step is not None:
        on_step(core)
    actions = np.zeros((B, H), np.int64)
    totals = np.zeros((B, H, core.events.shape[2]), np.float64)
    while not r.dones.all():
        for side, bot in ((0, radiant), (1, dire)):
            heroes = slice(side * n, (side + 1) * n)
            obs = r.obs[:, heroes].reshape(B * n, obs_dim)
            mask = r.action_mask[:, heroes].reshape(B * n, num_actions)
            actions[:, heroes] = np.asarray(bot.act(obs, mask)).reshape(B, n)
        r = core.step(actions)
        totals += r.events  # finished games report zero events
        if on_step is not None:
            on_step(core)
    net = core.net_worth().astype(np.float64)
    totals[:, :, E_NET_WORTH] = net
    ancients = np.array([core.layout.ancient(0), core.layout.ancient(1)])
    destroyed = (core.unit_i[I_ALIVE][:, ancients] == 0).any(axis=1)
    return MatchResult(
        winners=r.winners.copy(),
        lengths=r.lengths.astype(np.int64),
        net_worth=np.stack([net[:, :n].sum(axis=1), net[:, n:].sum(axis=1)], axis=1),
        event_totals=totals,
        ancient_destroyed=destroyed,
    )


def win_rate(result: MatchResult, side: int = 0) -> float:
    """Share of games won by `side` (0 radiant, 1 dire), draws counting half."""
    if side not in (0, 1):
        raise ValueError(f"win_rate: side must be 0 (radiant) or 1 (dire), got {side!r}")
    w = np.asarray(result.winners)
    if w.size == 0:
        return float("nan")
    return float(((w == side).sum() + 0.5 * (w == -1).sum()) / w.size)
