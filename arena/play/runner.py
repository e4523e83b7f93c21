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


def group_rows(arrays: Mapping[str, np.ndarray], group: Any,
               device: torch.device) -> torch.Tensor:
    """A step's per-role (B, n_role, X) array (obs, masks, final obs) as the (B * n, X)
    rows of one policy group, game-major, on `device`."""
    x = arrays[group.role.name][:, group.role_columns]
    return torch.from_numpy(np.ascontiguousarray(x)).reshape(-1, x.shape[-1]).to(
        device, non_blocking=True)


def transitions(alive_before: np.ndarray, step: VecStep) -> tuple[np.ndarray, np.ndarray]:
    """The one rule for agents' episodes across a step: (agent_done, episode_start), both
    (B, S). An agent's episode ends with its game or when it leaves the game for good; a
    row starts afresh (its LSTM state reset) where its episode ended or it was not in play.
    A waiting agent of a turn-based game stays in play: its state follows the game."""
    agent_done = alive_before & (step.dones[:, None] | ~step.alive)
    return agent_done, agent_done | ~alive_before


def sample_actions(probs: torch.Tensor, generator: torch.Generator,
                   device: torch.device) -> torch.Tensor:
    """One action per row from `probs` (N, A), with our own CPU generator, so play is
    reproducible for a seed and never touches torch's global random stream."""
    if device.type == "cpu":
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    u = torch.rand(probs.shape[:-1] + (1,), generator=generator).to(device)
    return torch.searchsorted(probs.cumsum(-1), u).clamp_(max=probs.shape[-1] - 1).squeeze(-1)


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
        B, dev = self.vec.num_games, self.device
        for g in self.groups:
            starts = torch.from_numpy(np.ascontiguousarray(episode_start[:, g.slots])).reshape(-1)
            logits, _, self._state[g.key] = self.policy_for(g.key).step(
                group_rows(step.obs, g, dev), self._state[g.key], starts.to(dev),
                group_rows(step.action_mask, g, dev))
            if self.deterministic:
                action = logits.argmax(dim=-1)
            else:  # masked actions have probability 0
                action = sample_actions(torch.softmax(logits.float(), dim=-1), self.generator, dev)
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
        _, episode_start = transitions(alive, step)
        alive = step.alive.copy()
    raise RuntimeError(f"play_against: {int(np.isnan(scores).sum())} of {B} games did not "
                       f"end within {max_steps} steps")
