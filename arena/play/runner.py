"""One way to play policies on any game: a `VecGame` batch, one LSTM state per row (reset
at the row's episode start), masked logits, and one seeded sampler per runner.

`PolicyRunner` plays the rows of the policy groups it is given (a learner's, or a frozen
snapshot's); a `BotSide` plays the rows with the game's scripted bots (games/registry.py).
`play_games` seats sides at the teams of every game of a batch (any number of teams, any
roles) and plays one episode each: winners, lengths, team returns and event totals;
`play_against` is its two-sided form, the first side playing each team in turn, scored
1 win, 0.5 draw, 0 loss. Collection (arena/learn/rollout.py) shares the episode-transition rule,
the group-rows view and the sampler."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from games.bots import bot_act, team_columns
from games.vector import VecGame, VecStep

State = tuple[torch.Tensor, torch.Tensor]


class HostStaging:
    """Pinned host buffers for the per-step copies of game arrays to a CUDA device.

    A copy from ordinary (pageable) memory to the GPU is synchronous: the driver stages it
    through a pinned buffer of its own while the host waits. Copying into a pinned buffer of
    ours and then to the device with non_blocking=True lets the host go on to queue the
    forward pass behind the transfer. Each buffer is reused from step to step; before it is
    overwritten, the event recorded after its last transfer is waited on, so a transfer
    still in flight never reads a half-written buffer. On any other device this is a plain
    copy: a CPU tensor is the step's own buffer (no copy at all where the layout allows)."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.pinned = self.device.type == "cuda"
        self._buffers: dict[str, tuple[torch.Tensor, Any]] = {}  # key -> (buffer, event)

    def to_device(self, key: str, x: np.ndarray) -> torch.Tensor:
        src = torch.from_numpy(np.ascontiguousarray(x))
        if not self.pinned:
            return src.to(self.device)
        buf, done = self._buffers.get(key, (None, None))
        if buf is None or buf.shape != src.shape or buf.dtype != src.dtype:
            buf = torch.empty(src.shape, dtype=src.dtype, pin_memory=True)
        elif done is not None:
            done.synchronize()  # its last transfer has left the buffer
        buf.copy_(src)
        out = buf.to(self.device, non_blocking=True)
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(self.device))  # behind the transfer
        self._buffers[key] = (buf, done)
        return out


def group_rows(arrays: Mapping[str, np.ndarray], group: Any,
               device: torch.device, staging: HostStaging | None = None,
               name: str = "") -> torch.Tensor:
    """A step's per-role (B, n_role, X) array (obs, masks, final obs) as the (B * n, X)
    rows of one policy group, game-major, on `device` (through `staging`'s pinned buffer
    `name`/group where one is given)."""
    x = arrays[group.role.name]
    if len(group.role_columns) != x.shape[1]:  # one agent's network: its column only
        x = x[:, group.role_columns]
    x = x.reshape(-1, x.shape[-1])
    if staging is not None:
        return staging.to_device(f"{name}/{group.key}", x)
    # a group playing the whole role is a view of the step's buffer: no copy on the CPU
    return torch.from_numpy(np.ascontiguousarray(x)).to(device, non_blocking=True)


def transitions(alive_before: np.ndarray, step: VecStep) -> tuple[np.ndarray, np.ndarray]:
    """The one rule for agents' episodes across a step: (agent_done, episode_start), both
    (B, S). An agent's episode ends with its game or when it leaves the game for good; a
    row starts afresh (its LSTM state reset) once, where its episode ended or where it
    comes into play. A row out of play (a dead soldier) is not reset again at every step:
    nothing it computes is used, and a stretch without resets replays as one LSTM call.
    A waiting agent of a turn-based game stays in play: its state follows the game."""
    agent_done = alive_before & (step.dones[:, None] | ~step.alive)
    return agent_done, agent_done | (step.alive & ~alive_before)


def sample_actions(probs: torch.Tensor, generator: torch.Generator,
                   device: torch.device) -> torch.Tensor:
    """One action per row from `probs` (N, A), with our own CPU generator, so play is
    reproducible for a seed and never touches torch's global random stream.

    Inverse CDF, the same on every device: one uniform per row (drawn on the CPU, so a seed
    plays alike on CPU and GPU), scaled to the row's total mass and looked up strictly
    above the cumulative sums. The uniform is kept below 1 - 2^-23, so the scaled draw
    stays below the total whatever the rounding, and an action of zero probability (masked:
    its cumulative sum does not rise) is never taken. About twice as fast as
    torch.multinomial on the CPU for a collector's rows."""
    cdf = probs.cumsum(-1)
    u = torch.rand(probs.shape[:-1] + (1,), generator=generator, dtype=cdf.dtype)
    u = u.clamp_(max=1.0 - 2.0**-23).to(device)
    picks = torch.searchsorted(cdf, u * cdf[..., -1:], right=True).squeeze(-1)
    return picks.clamp_(max=probs.shape[-1] - 1)


def seated_rows(mine: np.ndarray | None, slots: Sequence[int]) -> np.ndarray | None:
    """The rows (game-major, over `slots`) a side is seated at by `mine` (B, S) bool; None
    for all of them (no gather needed)."""
    if mine is None:
        return None
    seated = np.asarray(mine)[:, list(slots)].reshape(-1)
    return None if seated.all() else np.flatnonzero(seated)


def open_rows(rows: np.ndarray | None, slots: int, closed: np.ndarray
              ) -> tuple[np.ndarray, torch.Tensor | None]:
    """A side's rows (game-major, `slots` per game; None: every row of the `closed` (B,)
    batch) without those of the closed games, and the positions of the kept ones among
    the side's rows (for its LSTM state; None when none was dropped)."""
    if rows is None:
        rows = np.arange(closed.shape[0] * slots)
    keep = ~closed[rows // slots]
    if keep.all():
        return rows, None
    return rows[keep], torch.from_numpy(np.flatnonzero(keep))


class PolicyRunner:
    """Acts for the slots of `groups` (arena.learn.networks.PolicyGroup) in every game of `vec`, or,
    after `reset(mine)`, only for the rows of the slots it plays in a match."""

    def __init__(self, vec: VecGame, groups: Sequence[Any], policy_for: Callable[[str], Any],
                 seed: int, device: torch.device | str = "cpu",
                 deterministic: bool = False) -> None:
        self.vec, self.groups, self.policy_for = vec, list(groups), policy_for
        self.device = torch.device(device)
        self.deterministic = deterministic
        self.generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self._state: dict[str, State] = {}
        self._rows: dict[str, np.ndarray | None] = {}  # group rows played; None: all of them
        self._staging = HostStaging(self.device)

    def reset(self, mine: np.ndarray | None = None) -> None:
        """Fresh LSTM states. `mine` (B, S) bool: the slots this side plays (fixed until the
        next reset); only their rows are inferred. None: every slot of the groups."""
        self._rows = {}
        for g in self.groups:
            self._rows[g.key] = rows = seated_rows(mine, g.slots)
            n = self.vec.num_games * len(g.slots) if rows is None else len(rows)
            self._state[g.key] = self.policy_for(g.key).initial_state(n, self.device)

    def retire(self, closed: np.ndarray) -> None:
        """Stop playing the games `closed` (B,) bool (their result is in): their rows are
        no longer inferred, and their LSTM states dropped."""
        for g in self.groups:
            rows, kept = open_rows(self._rows.get(g.key), len(g.slots), closed)
            if kept is not None:
                self._rows[g.key] = rows
                kept = kept.to(self.device)
                self._state[g.key] = tuple(x.index_select(0, kept) for x in self._state[g.key])

    @torch.inference_mode()
    def act(self, step: VecStep, episode_start: np.ndarray, out: np.ndarray) -> None:
        """Write the actions of the groups' slots into `out` (B, S); every row's LSTM state
        advances (a waiting agent still observes), and is reset where `episode_start`."""
        dev = self.device
        for g in self.groups:
            rows = self._rows.get(g.key)
            starts = np.ascontiguousarray(episode_start[:, g.slots]).reshape(-1)
            obs = group_rows(step.obs, g, dev, self._staging, "obs")
            mask = group_rows(step.action_mask, g, dev, self._staging, "action_mask")
            if rows is not None:
                if not len(rows):
                    continue
                index = torch.from_numpy(rows).to(dev)
                obs, mask = obs.index_select(0, index), mask.index_select(0, index)
                starts = starts[rows]
            logits, _, self._state[g.key] = self.policy_for(g.key).step(
                obs, self._state[g.key], torch.from_numpy(starts).to(dev), mask)
            if self.deterministic:
                action = logits.argmax(dim=-1)
            else:  # masked actions have probability 0
                action = sample_actions(torch.softmax(logits.float(), dim=-1), self.generator, dev)
            action = action.cpu().numpy()
            view = out[:, g.slots]
            if rows is None:
                view[...] = action.reshape(view.shape)
            else:
                flat = view.reshape(-1)
                flat[rows] = action
                view = flat.reshape(view.shape)
            out[:, g.slots] = view


class StackedRunner:
    """Several frozen policy sets as one side of a match: game b's rows are played by
    `policy_sets[owner[b]]` (owner (B,); or (B, T), team t of game b by `owner[b, t]`;
    -1: none), all of them in one forward pass per step (agents/policy_stack.py: each set a
    slot of a stack per group and architecture), where one PolicyRunner per set would make
    a pass each. One seeded sampler for them all. An evaluation plays its league snapshots
    so (arena/play/evaluate.py), and a training match GIF both of its teams
    (arena/play/watch.py)."""

    def __init__(self, vec: VecGame, groups: Sequence[Any],
                 policy_sets: Sequence[Callable[[str], Any]], owner: np.ndarray, seed: int,
                 device: torch.device | str = "cpu") -> None:
        from agents.policy_stack import PolicyStack, architecture

        self.vec, self.groups = vec, list(groups)
        self.owner = np.asarray(owner, np.int64)
        self.device = torch.device(device)
        self.generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self._staging = HostStaging(self.device)
        # per group: a stack per architecture among the sets, and each set's (stack, slot)
        self._stacks: dict[str, list[PolicyStack]] = {}
        self._slot: dict[str, list[tuple[int, int]]] = {}
        for g in self.groups:
            stacks: dict[tuple, PolicyStack] = {}
            where = []
            for k, policy_for in enumerate(policy_sets):
                policy = policy_for(g.key)
                arch = architecture(policy)
                if arch not in stacks:
                    stacks[arch] = PolicyStack(policy, capacity=len(policy_sets))
                stack = stacks[arch]
                slot = int(stack.slots([k], lambda _, p=policy: p)[0])
                where.append((list(stacks).index(arch), slot))
            self._stacks[g.key], self._slot[g.key] = list(stacks.values()), where
        self._rows: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._state: dict[tuple[str, int], State] = {}

    def reset(self, mine: np.ndarray | None = None) -> None:
        """Fresh LSTM states; `mine` (B, S) bool: the slots this side plays (None: every
        slot of the groups, in the games that have an owner)."""
        self._rows, self._state = {}, {}
        for g in self.groups:
            n = len(g.slots)
            rows = seated_rows(mine, g.slots)
            rows = np.arange(self.vec.num_games * n) if rows is None else rows
            if self.owner.ndim == 2:  # by team: each row's game and its slot's team
                team = np.asarray(self.vec.slot_team)[list(g.slots)]
                owner = self.owner[rows // n, team[rows % n]]
            else:
                owner = self.owner[rows // n]
            rows, owner = rows[owner >= 0], owner[owner >= 0]
            where = np.array(self._slot[g.key], np.int64).reshape(-1, 2)
            self._rows[g.key] = []
            for i, stack in enumerate(self._stacks[g.key]):
                mine_here = where[owner, 0] == i if len(owner) else np.zeros(0, bool)
                self._rows[g.key].append((rows[mine_here], where[owner[mine_here], 1]))
                self._state[g.key, i] = stack.like.initial_state(int(mine_here.sum()),
                                                                 self.device)

    def retire(self, closed: np.ndarray) -> None:
        """As PolicyRunner.retire: the rows of the `closed` games are no longer played."""
        for g in self.groups:
            for i, (rows, slots) in enumerate(self._rows[g.key]):
                kept_rows, kept = open_rows(rows, len(g.slots), closed)
                if kept is not None:
                    self._rows[g.key][i] = (kept_rows, slots[kept.numpy()])
                    kept = kept.to(self.device)
                    self._state[g.key, i] = tuple(x.index_select(0, kept)
                                                  for x in self._state[g.key, i])

    @torch.inference_mode()
    def act(self, step: VecStep, episode_start: np.ndarray, out: np.ndarray) -> None:
        dev = self.device
        for g in self.groups:
            starts = np.ascontiguousarray(episode_start[:, g.slots]).reshape(-1)
            obs = group_rows(step.obs, g, dev, self._staging, "obs")
            mask = group_rows(step.action_mask, g, dev, self._staging, "action_mask")
            flat = out[:, g.slots].reshape(-1)
            for i, stack in enumerate(self._stacks[g.key]):
                rows, slots = self._rows[g.key][i]
                if not len(rows):
                    continue
                index = torch.from_numpy(rows).to(dev)
                logits, self._state[g.key, i] = stack.step(
                    slots, obs.index_select(0, index), self._state[g.key, i],
                    torch.from_numpy(starts[rows]).to(dev), mask.index_select(0, index))
                action = sample_actions(torch.softmax(logits.float(), dim=-1), self.generator,
                                        dev)
                flat[rows] = action.cpu().numpy()
            out[:, g.slots] = flat.reshape(out.shape[0], len(g.slots))


class BotSide:
    """Scripted bots as a side of a match: `bots[role]` acts for every slot of that role (or,
    after `reset(mine)`, for the rows of the slots this side plays). Each row's index among
    its team's agents goes to the bots that ask for it (games.bots.bot_act: mixtures)."""

    def __init__(self, vec: VecGame, bots: Mapping[str, Any]) -> None:
        self.vec, self.bots = vec, dict(bots)
        self._rows: dict[str, np.ndarray | None] = {}
        columns = team_columns(vec.slot_team)
        self._agents = {role.name: np.tile(columns[list(role.slots)], vec.num_games)
                        for role in vec.roles}

    def reset(self, mine: np.ndarray | None = None) -> None:
        """Bots keep no per-game state; `mine` only narrows the rows they are asked about."""
        self._rows = {role.name: seated_rows(mine, role.slots) for role in self.vec.roles}

    def retire(self, closed: np.ndarray) -> None:
        """The bots are no longer asked about the rows of the `closed` games."""
        for role in self.vec.roles:
            rows, kept = open_rows(self._rows.get(role.name), len(role.slots), closed)
            if kept is not None:
                self._rows[role.name] = rows

    def act(self, step: VecStep, episode_start: np.ndarray, out: np.ndarray) -> None:
        B = self.vec.num_games
        for role in self.vec.roles:
            n, slots = len(role.slots), list(role.slots)
            obs = step.obs[role.name].reshape(B * n, -1)
            mask = step.action_mask[role.name].reshape(B * n, -1)
            rows = self._rows.get(role.name)
            bot, agents = self.bots[role.name], self._agents[role.name]
            if rows is None:
                picked = bot_act(bot, obs, mask, agents)
                out[:, slots] = np.asarray(picked, np.int64).reshape(B, n)
            elif len(rows):
                picked = bot_act(bot, obs[rows], mask[rows], agents[rows])
                flat = out[:, slots].reshape(-1)
                flat[rows] = np.asarray(picked, np.int64)
                out[:, slots] = flat.reshape(B, n)


@dataclass
class MatchResult:
    """Per game of a batch, its first episode: winners (B,) team index or -1 (draw),
    lengths (B,) steps, returns (B, T) each team's summed reward, events (B, S, E) summed
    per slot (names: the game's `event_names`) and final_events (B, S, E) those of the
    episode's last step (for events that are values, not counts)."""

    winners: np.ndarray
    lengths: np.ndarray
    returns: np.ndarray
    events: np.ndarray
    final_events: np.ndarray

    def scores(self, seats: np.ndarray, side: int) -> np.ndarray:
        """`side`'s score per game (1 its team won, 0.5 draw, 0 loss)."""
        team = np.argmax(np.asarray(seats) == side, axis=1)
        return np.where(self.winners < 0, 0.5, (self.winners == team).astype(np.float64))


def play_games(vec: VecGame, sides: Sequence[Any], seats: np.ndarray, seed: int,
               max_steps: int = 100_000,
               on_step: Callable[[VecGame, VecStep], None] | None = None) -> MatchResult:
    """Play one episode in every game of `vec`: `seats[b, t]` is the index in `sides` of the
    side that plays team t in game b. Sides are PolicyRunners, BotSides or anything with
    `reset(mine)` and `act(step, episode_start, out)`; each acts once per step for all of its
    rows. Game b is reset with seed + b; a game that ends restarts and plays on unrecorded
    until every game has ended once, its agents then playing their first legal action: sides
    with a `retire(closed)` method (the runners above) stop acting for the games whose
    result is in, so an evaluation whose short games end early does not infer their rows
    while its longest game plays on. `on_step(vec, step)` is called after the reset and
    after every step (e.g. to record frames)."""
    B, S = vec.num_games, vec.num_slots
    T = len(vec.team_names)
    seats = np.asarray(seats, np.int64)
    if seats.shape != (B, T):
        raise ValueError(f"play_games: seats must be (num_games, teams) = {(B, T)}, "
                         f"got {seats.shape}")
    if seats.min() < 0 or seats.max() >= len(sides):
        raise ValueError(f"play_games: seats name sides 0..{len(sides) - 1}, got "
                         f"{sorted(set(seats.ravel().tolist()))}")
    slot_side = seats[:, vec.slot_team]  # (B, S)
    step = vec.reset(seed=seed)
    outs = []
    for i, side in enumerate(sides):
        side.reset(slot_side == i)
        outs.append(np.zeros((B, S), np.int64))
    if on_step is not None:
        on_step(vec, step)
    E = len(vec.event_names)
    winners = np.full(B, -1, np.int64)
    lengths = np.zeros(B, np.int64)
    returns = np.zeros((B, T), np.float64)
    events = np.zeros((B, S, E), np.float64)
    final_events = np.zeros((B, S, E), np.float64)
    open_ = np.ones(B, bool)
    alive = step.alive.copy()
    episode_start = np.ones((B, S), bool)
    actions = np.zeros((B, S), np.int64)
    playing = slot_side  # (B, S) the side acting for each slot; -1 once its game is closed
    for _ in range(max_steps):
        for i, side in enumerate(sides):
            side.act(step, episode_start, outs[i])
            np.copyto(actions, outs[i], where=playing == i)
        if not open_.all():  # the closed games' agents: their first legal action
            for role in vec.roles:
                cols = list(role.slots)
                first = np.argmax(step.action_mask[role.name], axis=-1)  # (B, n_role)
                actions[:, cols] = np.where(open_[:, None], actions[:, cols], first)
        step = vec.step(actions)
        if on_step is not None:
            on_step(vec, step)
        rewards = np.where(open_[:, None], step.rewards, 0.0)
        np.add.at(returns.T, vec.slot_team, rewards.T)
        if E:
            events[open_] += step.events[open_]
        ended = step.dones & open_
        if ended.any():
            if E:
                final_events[ended] = step.events[ended]
            winners[ended] = step.winners[ended]
            lengths[ended] = step.lengths[ended]
            open_ &= ~ended
            if not open_.any():
                return MatchResult(winners, lengths, returns, events, final_events)
            for side in sides:
                retire = getattr(side, "retire", None)
                if retire is not None:
                    retire(ended)
            playing = np.where(open_[:, None], slot_side, -1)
        _, episode_start = transitions(alive, step)
        alive = step.alive.copy()
    raise RuntimeError(f"play_games: {int(open_.sum())} of {B} games did not end within "
                       f"{max_steps} steps")


def play_against(vec: VecGame, first: Any, second: Any, seed: int,
                 max_steps: int = 100_000) -> np.ndarray:
    """The score of `first` in each game of `vec` (1 win, 0.5 draw, 0 loss): it plays team
    `b % T` of game b, `second` every other team."""
    B, T = vec.num_games, len(vec.team_names)
    if T < 2:
        raise ValueError(f"a match needs at least two teams; this game has {vec.team_names}")
    seats = np.ones((B, T), np.int64)
    seats[np.arange(B), np.arange(B) % T] = 0
    return play_games(vec, [first, second], seats, seed, max_steps).scores(seats, 0)
