"""The built-in MOBA as a `VecGame` (games/vector.py): a view over one batched `MobaCore`,
the game's registered vectoriser (games/registry.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from games.vector import RoleSpec, VecGame, VecStep, _check_num_games, _check_seed


class MobaVec(VecGame):
    """The built-in MOBA over one batched `MobaCore` (autoreset): no Python loops."""

    ROLE = "hero"

    def __init__(self, num_games: int, config: Any = None, autoreset: bool = True,
                 **kwargs: Any) -> None:
        from games.moba.core import MobaCore
        from games.moba.layout import TEAM_NAMES

        B = _check_num_games("MobaVec", num_games)
        self.autoreset = bool(autoreset)
        self.core = core = MobaCore(config, num_games=B, autoreset=self.autoreset, **kwargs)
        self.config = core.config
        self.layout = core.layout
        H = core.num_heroes
        self.num_games, self.num_slots = B, H
        self.slot_agents = list(core.agent_names)
        self.team_names = list(TEAM_NAMES)
        self.slot_team = np.arange(H, dtype=np.int64) // core.config.team_size
        self.roles = [RoleSpec(self.ROLE, core.obs_dim, core.num_actions, True,
                               tuple(range(H)), core.layout, core.layout.entity_layout)]
        self.slot_role = np.zeros(H, np.int64)
        self.event_names = tuple(core.event_names)
        self.level_events = ("net_worth",)  # a current value each step, not a counter
        self._active = np.ones((B, H), bool)
        self._winners = np.full(B, -1, np.int64)
        self._lengths = np.zeros(B, np.int64)
        # the MOBA's time limit is a rule with a winner: nothing is ever truncated
        self._truncated = np.zeros((B, H), bool)
        self._final_obs = np.zeros((B, H, core.obs_dim), np.float32)
        self._final_mask = np.ones((B, H, core.num_actions), bool)
        if core.action_mask.dtype.itemsize != 1:  # pragma: no cover - layout guard
            raise TypeError("MobaVec: expected an int8 action mask from MobaCore")
        self._step = VecStep(
            obs={self.ROLE: core.obs},
            action_mask={self.ROLE: core.action_mask.view(bool)},  # 0/1 int8 -> bool, no copy
            rewards=core.rewards,
            dones=core.dones.view(bool),
            active=self._active,
            next_active=self._active,
            winners=self._winners,
            lengths=self._lengths,
            events=core.events,
            alive=self._active,
            truncated=self._truncated,
            final_obs={self.ROLE: self._final_obs},
            final_mask={self.ROLE: self._final_mask},
        )

    def _result(self) -> VecStep:
        np.copyto(self._winners, self.core.winners)
        np.copyto(self._lengths, self.core.lengths)
        return self._step

    def reset(self, seed: int | None = None) -> VecStep:
        self.core.reset(seed=_check_seed("MobaVec", seed))
        self._winners.fill(-1)
        self._lengths.fill(0)
        return self._step

    def step(self, actions: np.ndarray) -> VecStep:
        self.core.step(self._check_actions(actions))
        return self._result()
