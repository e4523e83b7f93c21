"""One way to play policies on any game: a `VecGame` batch, one LSTM state per row (reset
at the row's episode start), masked logits, and one seeded sampler per runner.

`PolicyRunner` plays the rows of the policy groups it is given (a learner's, or a frozen
snapshot's); bots (games/bots.py, a game's registered bots) act on the rows of their role.
`play_against` pits a policy against a bot on any game with two or more teams, the policy
playing each team in turn, and scores each game once it ends: 1 win, 0.5 draw, 0 loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from games.vector import VecGame, VecStep

State = tuple[torch.Tensor, torch.Tensor]


class PolicyRunner:
    """Acts for the slots of `groups` (arena.rollout.PolicyGroup) in every game of `vec`."""

    def __init__(self, vec: VecGame, groups: Sequence[Any], policy_for: Callable[[str], Any],
                 seed: int, device: torch.device | str = "cpu",
                 deterministic: bool = False) -> None:
        self.vec, self.groups, self.policy_for = vec, list(groups), policy_for
        self.device = torch.device(device)
        self.deterministic = deterministic
        self.generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self._state: dict[str, State] = {}

    def reset(self) -> None:
        B = self.vec.num_games
        self._state = {g.key: self.policy_for(g.key).initial_state(B * len(g.slots), self.device)
                       for g in self.groups}

    @torch.no_grad()
    def act(self, step: VecStep, episode_start: np.ndarray, out: np.ndarray) -> None:
        """Write the actions of the groups' slots into `out` (B, S); every row's LSTM state
        advances (a waiting agent still observes), and is reset where `episode_start`."""
        B = self.vec.num_games
        for g in self.groups:
            n = B * len(g.slots)
            obs = step.obs[g.role.name][:, g.role_columns].reshape(n, -1)
            mask = step.action_mask[g.role.name][:, g.role_columns].reshape(n, -1)
            starts = episode_start[:, g.slots].reshape(-1)
            policy = self.policy_for(g.key)
            mask_t = torch.from_numpy(np.ascontiguousarray(mask)).to(self.device)
            logits, _, self._state[g.key] = policy.step(
                torch.from_numpy(np.ascontiguousarray(obs)).to(self.device), self._state[g.key],
                torch.from_numpy(np.ascontiguousarray(starts)).to(self.device), mask_t)
            if self.deterministic:
                action = logits.argmax(dim=-1)
            else:
                probs = torch.softmax(logits.float(), dim=-1).cpu()  # masked actions: 0
                action = torch.multinomial(probs, 1, generator=self.generator).squeeze(1)
            out[:, g.slots] = action.view(B, len(g.slots)).cpu().numpy()


def play_against(vec: VecGame, runner: PolicyRunner, bots: Mapping[str, Any], seed: int,
                 max_steps: int = 100_000) -> np.ndarray:
    """The policy's score in each game of `vec` (1 win, 0.5 draw, 0 loss), playing team
    `b % T` of game b while `bots[role]` plays every other slot of that role. Each game
    counts once, when its first episode ends."""
    B, S = vec.num_games, vec.num_slots
    T = len(vec.team_names)
    if T < 2:
        raise ValueError(f"a match needs at least two teams; this game has {vec.team_names}")
    mine = vec.slot_team[None, :] == (np.arange(B) % T)[:, None]  # (B, S)
    scores = np.full(B, np.nan)
    actions = np.zeros((B, S), np.int64)
    step = vec.reset(seed=seed)
    runner.reset()
    alive = step.alive.copy()
    episode_start = np.ones((B, S), bool)
    for _ in range(max_steps):
        runner.act(step, episode_start, actions)
        for role in vec.roles:
            cols = list(role.slots)
            flat_obs = step.obs[role.name].reshape(B * len(cols), -1)
            flat_mask = step.action_mask[role.name].reshape(B * len(cols), -1)
            picked = np.asarray(bots[role.name].act(flat_obs, flat_mask)).reshape(B, len(cols))
            theirs = ~mine[:, cols]
            actions[:, cols] = np.where(theirs, picked, actions[:, cols])
        step = vec.step(actions)
        done = step.dones
        if done.any():
            for b in np.flatnonzero(done & np.isnan(scores)):
                w = int(step.winners[b])
                scores[b] = 0.5 if w < 0 else float(w == b % T)
            if not np.isnan(scores).any():
                return scores
        agent_done = alive & (done[:, None] | ~step.alive)
        episode_start = agent_done | ~alive
        alive = step.alive.copy()
    raise RuntimeError(f"play_against: {int(np.isnan(scores).sum())} of {B} games did not "
                       f"end within {max_steps} steps")
