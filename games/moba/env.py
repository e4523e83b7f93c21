"""`MobaEnv`: the PettingZoo `ParallelEnv` view of one MOBA game (a core with B=1).

Conventions a trainer can rely on:

* Agents are `radiant_0..radiant_{n-1}, dire_0..dire_{n-1}`; `env.teams` maps team -> agents.
* Observation: `{"observation": float32 vector (layout in games/moba/layout.py),
  "action_mask": int8 vector}`; action: one `Discrete(num_actions)`.
* A dead hero stays in `env.agents` while it waits to respawn: it keeps observing (its own
  `alive` feature is 0, its team's vision still works) and its mask allows only the no-op.
* An action that the mask forbids is played as a no-op and counted:
  `infos[agent]["illegal_action"]` is 1 on that step (0 otherwise). `step` takes exactly
  one action per agent; an action outside the action space (not an int in
  0..num_actions-1) is an error (see games/actions.py).
* Reward is the outcome only: +1 win, -1 loss, 0 draw, on the last step. Every step
  `infos[agent]["events"]` gives that step's counters (kills, deaths, assists, last_hits,
  denies, gold, xp, net_worth, tower_damage, towers_destroyed, damage_dealt, damage_taken,
  gold_spent, health_delta, illegal_actions); `net_worth` is the current value, the others
  are what happened during the step. Shaping rewards from them is the league's job.
* The game ends for everybody at once, when an ancient falls or at `max_ticks` (the time
  limit is a rule of the game, which then decides the winner by ancient HP, then net
  worth): `terminations` are all True, `truncations` stay False, and the last infos carry
  `"winner"` ("radiant", "dire" or None for a draw).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from games.actions import as_discrete, check_agents
from games.moba.config import make_config
from games.moba.core import MobaCore
from games.moba.layout import E_ILLEGAL, EVENT_NAMES, TEAM_NAMES


class MobaEnv(ParallelEnv):
    metadata = {"name": "moba_v0", "render_modes": ["rgb_array"], "render_fps": 8,
                "is_parallelizable": True}

    def __init__(self, render_mode: str | None = None, render_team: str | None = None,
                 **kwargs: Any) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"MobaEnv: render_mode must be None or 'rgb_array', got {render_mode!r}")
        if render_team not in (None, *TEAM_NAMES):
            raise ValueError(
                f"MobaEnv: render_team must be None (full view), 'radiant' or 'dire', got {render_team!r}")
        self.config = make_config(**kwargs)
        self.core = MobaCore(self.config, num_games=1, autoreset=False)
        self.layout = self.core.layout
        self.render_mode = render_mode
        self.render_team = render_team
        self.possible_agents = list(self.core.agent_names)
        self.agents: list[str] = []
        n = self.config.team_size
        self.teams = {TEAM_NAMES[t]: self.possible_agents[t * n:(t + 1) * n] for t in range(2)}
        self.agent_team = {a: team for team, agents in self.teams.items() for a in agents}
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        obs_space = spaces.Dict({
            "observation": spaces.Box(-np.inf, np.inf, (self.layout.obs_dim,), np.float32),
            "action_mask": spaces.Box(0, 1, (self.layout.num_actions,), np.int8),
        })
        act_space = spaces.Discrete(self.layout.num_actions)
        self.observation_spaces = {a: obs_space for a in self.possible_agents}
        self.action_spaces = {a: act_space for a in self.possible_agents}
        self.state_space = spaces.Box(
            -np.inf, np.inf, (len(self.possible_agents) * self.layout.obs_dim,), np.float32)
        self._actions = np.zeros((1, len(self.possible_agents)), np.int64)

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    # ------------------------------------------------------------------------------------
    def _observations(self) -> dict[str, dict[str, np.ndarray]]:
        obs = self.core.obs[0].copy()
        mask = self.core.action_mask[0].copy()
        return {a: {"observation": obs[i], "action_mask": mask[i]}
                for i, a in enumerate(self.possible_agents)}

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.core.reset(seed=seed)
        self.agents = list(self.possible_agents)
        return self._observations(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("MobaEnv.step: the game is over (or was never started); call reset()")
        n_actions = self.layout.num_actions
        check_agents("MobaEnv", actions, self.agents)
        acts = self._actions
        for agent, action in actions.items():
            acts[0, self._index[agent]] = as_discrete("MobaEnv", agent, action, n_actions)
        r = self.core.step(acts)
        obs = self._observations()
        events = r.events[0].tolist()
        done = bool(r.dones[0])
        rewards = dict(zip(self.possible_agents, r.rewards[0].tolist()))
        infos = {}
        for i, a in enumerate(self.possible_agents):
            row = events[i]
            infos[a] = {"events": dict(zip(EVENT_NAMES, row)), "illegal_action": int(row[E_ILLEGAL])}
        if done:
            w = int(r.winners[0])
            winner = TEAM_NAMES[w] if w >= 0 else None
            for a in self.possible_agents:
                infos[a]["winner"] = winner
        terminations = dict.fromkeys(self.possible_agents, done)
        truncations = dict.fromkeys(self.possible_agents, False)
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        from games.moba.render import render_frame

        return render_frame(self.core, game=0, team=self.render_team)

    def state(self) -> np.ndarray:
        """Both teams' observations concatenated (a centralised critic's input)."""
        return self.core.obs[0].ravel().copy()

    def close(self) -> None:
        pass

