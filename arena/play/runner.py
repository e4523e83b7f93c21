"""One way to play policies on any game: a `VecGame` batch, one LSTM state per row (reset
at the row's episode start), masked logits, and one seeded sampler per runner.

`PolicyRunner` plays the rows of the policy groups it is given (a learner's, or a frozen
snapshot's); a `BotSide` plays every row with the game's scripted bots (games/registry.py).
`play_against` pits one side against another on any game with two or more teams, the first
side playing each team in turn, and scores each game once it ends: 1 win, 0.5 draw, 0 loss.
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


class BotSide:
    """Scripted bots as a side of a match: `bots[role]` acts for every slot of that role."""

    def __init__(self, vec: VecGame, bots: Mapping[str, Any]) -> None:
        self.vec, self.bots = vec, dict(bots)

    def reset(self) -> None:
        """Bots keep no per-game state."""

    def act(self, step: VecStep, episode_start: np.ndarray, out: np.ndarray) -> None:
        B = self.vec.num_games
        for role in self.vec.roles:
            n = len(role.slots)
            picked = self.bots[role.name].act(step.obs[role.name].reshape(B * n, -1),
                                              step.action_mask[role.name].reshape(B * n, -1))
            out[:, list(role.slots)] = np.asarray(picked, np.int64).reshape(B, n)


def play_against(vec: VecGame, first: Any, second: Any, seed: int,
                 max_steps: int = 100_000) -> np.ndarray:
    """The score of `first` in each game of `vec` (1 win, 0.5 draw, 0 loss): it plays team
    `b % T` of game b, `second` every other team. Sides are PolicyRunners or BotSides. Each
    game counts once, when its first episode ends."""
    B, S = vec.num_games, vec.num_slots
    T = len(vec.team_names)
    if T < 2:
        raise ValueError(f"a match needs at least two teams; this game has {vec.team_names}")
    mine = vec.slot_team[None, :] == (np.arange(B) % T)[:, None]  # (B, S)
    scores = np.full(B, np.nan)
    ours = np.zeros((B, S), np.int64)
    theirs = np.zeros((B, S), np.int64)
    step = vec.reset(seed=seed)
    first.reset()
    second.reset()
    alive = step.alive.copy()
    episode_start = np.ones((B, S), bool)
    for _ in range(max_steps):
        first.act(step, episode_start, ours)
        second.act(step, episode_start, theirs)
        step = vec.step(np.where(mine, ours, theirs))
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
