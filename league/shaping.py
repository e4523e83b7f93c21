"""Reward shaping from game events, team spirit and zero-sum, as OpenAI Five did.

Games report what happened (`infos[agent]["events"]`: kills, gold, last hits, ...); how
much each thing is worth is a training decision, so it lives here and in the config:

    shaped_i = env_weight * env_reward_i + decay(t) * sum_k w_k * event_ik
    team spirit:  r_i <- (1 - tau) * r_i + tau * mean_{j in team(i)} r_j
    zero-sum:     r_i <- r_i - mean_{j in enemy teams} r_j

`decay(t) = 0.6 ** (t / time_decay_ticks)` is OpenAI Five's decay of everything but the
outcome (off when `time_decay_ticks` is None). The weights come from the config
(configs/default.yaml holds the MOBA's table, adapted from OpenAI Five's). Team means count only agents present at
that step. Each component is returned separately so it can be logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

@dataclass
class Shaper:
    """Turns env rewards and events of a rollout into per-agent training rewards."""

    event_names: tuple[str, ...]
    slot_team: np.ndarray  # (S,) team index of each agent slot
    env_weight: float = 1.0
    weights: dict[str, float] = field(default_factory=dict)
    zero_sum: bool = False
    time_decay_ticks: float | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weights) - set(self.event_names))
        if unknown and self.event_names:
            raise ValueError(
                f"reward.weights: unknown event(s) {unknown}; this game reports {list(self.event_names)}")
        self._w = np.array([self.weights.get(n, 0.0) for n in self.event_names], np.float32)
        self.slot_team = np.asarray(self.slot_team)
        self.teams = np.unique(self.slot_team)
        self._onehot = (self.slot_team[:, None] == self.teams[None, :]).astype(np.float32)  # (S,T)

    def __call__(self, env_rewards: np.ndarray, events: np.ndarray, active: np.ndarray,
                 ticks: np.ndarray | None, team_spirit: float) -> dict[str, np.ndarray]:
        """env_rewards (L,B,S), events (L,B,S,E), active (L,B,S) bool, ticks (L,B) game time
        of each step. Returns {"total", "env", "events", <event name>...} each (L,B,S)."""
        out: dict[str, np.ndarray] = {}
        env = self.env_weight * env_rewards.astype(np.float32)
        out["env"] = env
        if events.shape[-1] and self._w.any():
            per_event = events * self._w  # (L,B,S,E)
            if self.time_decay_ticks is not None and ticks is not None:
                decay = 0.6 ** (ticks.astype(np.float32) / self.time_decay_ticks)
                per_event = per_event * decay[:, :, None, None]
            for k, name in enumerate(self.event_names):
                if self._w[k] != 0.0:
                    out[name] = per_event[..., k]
            shaped = per_event.sum(-1)
        else:
            shaped = np.zeros_like(env)
        out["events"] = shaped
        r = (env + shaped) * active
        if team_spirit > 0.0 or self.zero_sum:
            team_sum = r @ self._onehot  # (L,B,T)
            team_n = np.maximum(active.astype(np.float32) @ self._onehot, 1.0)
            team_mean = team_sum / team_n
            own_mean = team_mean @ self._onehot.T  # (L,B,S)
            if team_spirit > 0.0:
                r = (1.0 - team_spirit) * r + team_spirit * own_mean
            if self.zero_sum and len(self.teams) > 1:
                # mean over the other teams' means (one enemy team in a 2-team game)
                total = team_mean.sum(-1, keepdims=True)
                enemy_mean = (total - team_mean) / (len(self.teams) - 1)
                r = r - (enemy_mean @ self._onehot.T)
            r = r * active
        out["total"] = r.astype(np.float32)
        return out


def team_spirit_at(update: int, start: float, end: float, anneal_updates: int) -> float:
    """Linear annealing of team spirit tau from `start` to `end` over `anneal_updates`."""
    if anneal_updates <= 0:
        return end
    frac = min(max(update / anneal_updates, 0.0), 1.0)
    return start + frac * (end - start)
