"""A tiny game that only an agent with memory can solve.

Each agent sees a random cue in the first observation only and must name it on the last
step. A feed-forward policy can do no better than guessing (1/num_cues correct), so a
policy that scores 1.0 proves that the recurrent path (LSTM state carried across steps,
truncated BPTT from the stored state) really carries information through time.

Rules (time t = 0 .. length-1 is the index of the observation an agent acts on):

- observation = [cue one-hot (num_cues) | t/(length-1) | is_last_step]; the cue is
  present at t = 0 (the observation from `reset`) and zeros afterwards.
- actions Discrete(num_cues + 1): 0 = wait, k = "the cue was k-1". Before the last step
  only 0 is legal; on the last step only 1..num_cues are legal (PettingZoo's
  `{"observation", "action_mask"}` convention).
- reward 0 before the last step; on the last step +1 if right, else -1.
- a masked (illegal) action never crashes: it acts as a wait (so a wrong answer on the
  last step) and `infos[agent]["illegal_action"]` is 1 for that step. An action outside
  the action space is an error (games/actions.py).
- every step `infos[agent]["events"] == {"correct": 0 or 1}`, a per-step counter like the
  MOBA's events (1 only on the last step, when the answer was right).
- after the last step all agents are terminated and `agents == []`. The observation
  returned with the termination is a neutral final frame (no cue, time 1.0, flag 0, wait-only
  mask) that is never acted on.

With `teams=2` a second team plays the same game, scored independently: there is no
interaction. It exists so that the team machinery (`teams`, `agent_team`, one policy per
team) is exercised by a game whose optimum is known exactly.
"""

from __future__ import annotations

import numbers
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from games.actions import as_discrete, check_agents

TEAM_NAMES: tuple[str, ...] = ("red", "blue")
MAX_TEAM_SIZE = 4


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """Return `value` as an int, or raise a ValueError naming the argument and range."""
    allowed = f"{low}..{high}" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"MemoryGame: {name} must be an int {allowed}, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise ValueError(f"MemoryGame: {name} must be {allowed}, got {value}")
    return value


class MemoryGame(ParallelEnv):
    """Remember a cue shown at t=0 and name it at t=length-1 (see module docstring)."""

    metadata = {
        "name": "memory_v0",
        "render_modes": ["ansi"],
        "render_fps": 1,
        "is_parallelizable": True,
    }

    def __init__(
        self,
        num_cues: int = 4,
        length: int = 8,
        teams: int = 2,
        team_size: int = 1,
        render_mode: str | None = None,
    ) -> None:
        self.num_cues = _check_int("num_cues", num_cues, 2)
        self.length = _check_int("length", length, 2)
        num_teams = _check_int("teams", teams, 1, len(TEAM_NAMES))
        self.team_size = _check_int("team_size", team_size, 1, MAX_TEAM_SIZE)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"MemoryGame: render_mode must be None or one of "
                f"{self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.render_mode = render_mode

        self.teams: dict[str, list[str]] = {
            team: [f"{team}_{i}" for i in range(self.team_size)]
            for team in TEAM_NAMES[:num_teams]
        }
        self.agent_team: dict[str, str] = {
            agent: team for team, members in self.teams.items() for agent in members
        }
        self.possible_agents: list[str] = [a for m in self.teams.values() for a in m]
        self.agents: list[str] = []

        # Built once, one object per agent: observation_space(a) is observation_space(a),
        # and seeding one agent's space leaves the others alone.
        self.observation_spaces = {
            a: spaces.Dict(
                {
                    "observation": spaces.Box(0.0, 1.0, (self.num_cues + 2,), np.float32),
                    "action_mask": spaces.Box(0, 1, (self.num_cues + 1,), np.int8),
                }
            )
            for a in self.possible_agents
        }
        self.action_spaces = {
            a: spaces.Discrete(self.num_cues + 1) for a in self.possible_agents
        }

        self._rng: np.random.Generator | None = None
        self._cues: dict[str, int] = {}
        self._t = 0
        self._last_correct: dict[str, int] = {}

    # -- spaces ----------------------------------------------------------------------

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    # -- API -------------------------------------------------------------------------

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, Any]]]:
        """Draw new cues. `seed` reseeds the game's generator; `options` are ignored.

        Without a seed, the generator continues from the last seeded reset (so a
        sequence of episodes is deterministic given the first seed), or is seeded from
        OS entropy if the game was never seeded.
        """
        if seed is not None or self._rng is None:
            self._rng = np.random.default_rng(seed)
        cues = self._rng.integers(0, self.num_cues, size=len(self.possible_agents))
        self._cues = {a: int(c) for a, c in zip(self.possible_agents, cues, strict=True)}
        self._t = 0
        self._last_correct = {}
        self.agents = list(self.possible_agents)
        obs = {a: self._observe(a) for a in self.agents}
        infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        return obs, infos

    def step(self, actions: dict[str, Any]) -> tuple[
        dict[str, dict[str, np.ndarray]],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Apply one action per live agent; all agents act every step."""
        if not self.agents:
            raise RuntimeError(
                "MemoryGame.step() called with no live agents: call reset() first "
                "(the episode is over or never started)"
            )
        check_agents("MemoryGame", actions, self.agents)

        last = self._t == self.length - 1
        rewards: dict[str, float] = {}
        infos: dict[str, dict[str, Any]] = {}
        for agent in self.agents:
            action = as_discrete("MemoryGame", agent, actions[agent], self.num_cues + 1)
            legal = action >= 1 if last else action == 0
            correct = int(last and legal and action - 1 == self._cues[agent])
            rewards[agent] = (1.0 if correct else -1.0) if last else 0.0
            infos[agent] = {"illegal_action": int(not legal), "events": {"correct": correct}}
            if last:
                self._last_correct[agent] = correct

        self._t += 1
        done = self._t >= self.length
        obs = {a: self._observe(a) for a in self.agents}
        terminations = {a: done for a in self.agents}
        truncations = {a: False for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        """`ansi`: one line per agent with its cue and, after the end, its answer."""
        if self.render_mode is None:
            gymnasium.logger.warn(
                "MemoryGame.render() called without a render_mode; "
                "construct it with render_mode='ansi'"
            )
            return None
        lines = [f"t={self._t}/{self.length}"]
        for agent, cue in self._cues.items():
            tail = ""
            if agent in self._last_correct:
                tail = " correct" if self._last_correct[agent] else " wrong"
            lines.append(f"{agent} cue={cue}{tail}")
        return "\n".join(lines)

    def close(self) -> None:
        pass

    # -- helpers ---------------------------------------------------------------------

    def _observe(self, agent: str) -> dict[str, np.ndarray]:
        obs = np.zeros(self.num_cues + 2, dtype=np.float32)
        mask = np.zeros(self.num_cues + 1, dtype=np.int8)
        t = self._t
        if t >= self.length:  # the neutral final frame returned with the termination
            obs[self.num_cues] = 1.0
            mask[0] = 1
        else:
            if t == 0:
                obs[self._cues[agent]] = 1.0
            obs[self.num_cues] = t / (self.length - 1)
            if t == self.length - 1:
                obs[self.num_cues + 1] = 1.0
                mask[1:] = 1
            else:
                mask[0] = 1
        return {"observation": obs, "action_mask": mask}

