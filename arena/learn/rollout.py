"""Rollout collection: step a batch of games with the current policies, emit trajectory chunks.

Every agent slot keeps its own LSTM state across steps; the state is reset where an agent's
episode starts. In a turn-based game an agent that waits for its turn still observes every
step (its state follows the game), but only its own actions are trained, and rewards that
reach it while it waits are credited to its own last action (agents/ppo.compute_gae). An
agent whose episode is cut off by a time limit is bootstrapped from the value of its final
observation, computed here with its own LSTM state. A rollout of `chunk_len * chunks_per_update` steps is cut into chunks of
`chunk_len` steps, each with the LSTM state at its start, so the learner can replay every
chunk from that state (truncated BPTT).

Policies are organised in groups: one group per role (both MOBA teams share one), or one
group per agent slot with `model.per_agent_weights`. The collector is the same code for
in-process collection and for actor processes. A step is `Collector._act` (inference) then
`Collector._after` (what the games gave) over a slice of the games: all of them, or with
`game.overlap` each half in turn while the other half steps in its worker processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from arena.learn.networks import (  # noqa: F401 - policy_groups: its home until it moved
    PolicyGroup,
    policy_groups,
)
from arena.play.runner import HostStaging, group_rows, sample_actions, transitions
from games.registry import vectorizer_path
from games.vector import VecGame, VecStep, make_vec


def collection_vec(cfg: Any, num_games: int) -> VecGame:
    """The games a collector steps: `num_games` of the config's game, stepped on
    `game.threads` threads (MOBA) or worker processes (any other game) when above 1."""
    extra = {"threads": cfg.game.threads} if cfg.game.threads > 1 else {}
    if cfg.game.overlap and min(cfg.game.threads, num_games) >= 2 \
            and vectorizer_path(cfg.game.name) is None:
        extra["split"] = 2  # the overlap's halves: the same games whatever the threads
    return make_vec(cfg.game.name, num_games, **cfg.game.options, **extra)


# ---- the one rollout record ---------------------------------------------------------------
# Every field of a rollout, once: its dtype and its dims. Per policy group: L steps, K chunks,
# n rows (games x the group's slots, game-major), D observation size, A actions, H LSTM
# size; shared over all slots: L, B games, S slots, E events. This schema allocates the
# collector's buffers, checks and builds the actors' wire messages, joins rollouts side by
# side (along n or B) and moves them between devices.
GROUP_FIELDS: dict[str, tuple[str, str]] = {
    "obs": ("float32", "LnD"), "action_mask": ("bool", "LnA"), "actions": ("int64", "Ln"),
    "logprobs": ("float32", "Ln"), "values": ("float32", "Ln"),
    "episode_starts": ("bool", "Ln"), "valid": ("bool", "Ln"), "agent_dones": ("bool", "Ln"),
    "truncated": ("bool", "Ln"), "final_values": ("float32", "Ln"),
    "state_h": ("float32", "KnH"), "state_c": ("float32", "KnH"),
    "last_values": ("float32", "n"), "last_episode_starts": ("bool", "n"),
}
SHARED_FIELDS: dict[str, tuple[str, str]] = {
    "env_rewards": ("float32", "LBS"), "events": ("float32", "LBSE"), "active": ("bool", "LBS"),
    "alive": ("bool", "LBS"), "ticks": ("int64", "LB"),
}
TORCH_DTYPES = {"float32": torch.float32, "bool": torch.bool, "int64": torch.int64}


@dataclass(frozen=True)
class RolloutSpec:
    """The sizes of one rollout: with the schema above, the exact arrays it holds."""

    length: int  # steps (chunk_len * chunks)
    chunks: int
    games: int
    slots: int
    events: int
    groups: tuple[tuple[str, int, int, int, int], ...]  # key, rows per game, obs, actions, H

    def shapes(self, copies: int = 1) -> dict[str, tuple[str, tuple[int, ...]]]:
        """"name" (shared) or "key/name" (group) -> (dtype, shape), for `copies` rollouts
        side by side."""
        L, K, B, S = self.length, self.chunks, self.games * copies, self.slots
        out = {}
        for name, (dtype, dims) in SHARED_FIELDS.items():
            sizes = {"L": L, "B": B, "S": S, "E": self.events}
            out[name] = (dtype, tuple(sizes[c] for c in dims))
        for key, rows, obs_dim, actions, hidden in self.groups:
            sizes = {"L": L, "n": B * rows, "D": obs_dim, "A": actions, "K": K, "H": hidden}
            for name, (dtype, dims) in GROUP_FIELDS.items():
                out[f"{key}/{name}"] = (dtype, tuple(sizes[c] for c in dims))
        return out

    def expected(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        return self.shapes(1)


def join_dim(name: str) -> int:
    """The axis along which rollouts of more games go side by side (n or B)."""
    dims = GROUP_FIELDS[name.rsplit("/", 1)[-1]][1] if "/" in name or name in GROUP_FIELDS \
        else SHARED_FIELDS[name][1]
    return dims.index("n") if "n" in dims else dims.index("B")


@dataclass
class Rollout:
    """One rollout. Per group (key): tensors with L steps and N = num_games * len(slots) rows.

    group[key] = {obs (L,N,D), action_mask (L,N,A) bool, actions (L,N), logprobs (L,N),
    values (L,N), episode_starts (L,N) bool, valid (L,N) bool (acted, and trains),
    agent_dones (L,N) bool, truncated (L,N) bool (the episode ended by a time limit),
    final_values (L,N) (where truncated: V of the observation at the cut), state_h/state_c
    (K,N,H), last_values (N,), last_episode_starts (N,) bool}
    Shared numpy arrays over all slots: env_rewards (L,B,S), events (L,B,S,E),
    active (L,B,S) (acted), alive (L,B,S) (in the episode: acting or waiting for its turn),
    ticks (L,B). `episodes`: outcome and length of every game that ended.
    """

    groups: dict[str, dict[str, torch.Tensor]]
    env_rewards: np.ndarray
    events: np.ndarray
    active: np.ndarray
    ticks: np.ndarray
    alive: np.ndarray
    episodes: dict[str, np.ndarray] = field(default_factory=dict)
    agent_steps: int = 0
    seconds: float = 0.0
    bot_results: dict[str, tuple[float, int]] = field(default_factory=dict)  # from actors

    def to(self, device: torch.device | str) -> Rollout:
        """The group tensors on `device` (the shared arrays stay numpy)."""
        device = torch.device(device)
        self.groups = {key: {name: t.to(device, non_blocking=True) for name, t in g.items()}
                       for key, g in self.groups.items()}
        return self

    def select_games(self, first: int, end: int) -> Rollout:
        """The rollout of games [first, end) alone (views, no copy): one learning agent's
        block of games when several train on one batched collection."""
        groups = {}
        for key, group in self.groups.items():
            n = group["last_values"].shape[0] // self.env_rewards.shape[1]  # rows per game
            rows = slice(first * n, end * n)
            groups[key] = {name: t[(slice(None),) * join_dim(name) + (rows,)]
                           for name, t in group.items()}
        games = slice(first, end)
        episodes = dict(self.episodes)
        if "games" in episodes:
            keep = (episodes["games"] >= first) & (episodes["games"] < end)
            episodes = {k: v[keep] for k, v in episodes.items()}
        active = self.active[:, games]
        return Rollout(groups, self.env_rewards[:, games], self.events[:, games], active,
                       self.ticks[:, games], self.alive[:, games], episodes,
                       int(active.sum()), self.seconds)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every field as numpy, named as the schema and the wire name them."""
        out: dict[str, np.ndarray] = {name: getattr(self, name) for name in SHARED_FIELDS}
        for key, group in self.groups.items():
            for name in GROUP_FIELDS:
                out[f"{key}/{name}"] = group[name].detach().cpu().numpy()
        out["episodes/winners"] = self.episodes["winners"].astype(np.int64)
        out["episodes/lengths"] = self.episodes["lengths"].astype(np.int64)
        return out


def group_buffers(spec: RolloutSpec, device: torch.device | str,
                  fields: tuple[str, ...] = tuple(GROUP_FIELDS),
                  unset: tuple[str, ...] = ()) -> dict[str, dict[str, torch.Tensor]]:
    """Group tensors of one rollout of `spec`, by the schema: zeroed, but for the `unset`
    fields, left as allocated for a writer that fills every element."""
    shapes = spec.shapes(1)
    return {key: {name: (torch.empty if name in unset else torch.zeros)(
                      shapes[f"{key}/{name}"][1], dtype=TORCH_DTYPES[GROUP_FIELDS[name][0]],
                      device=device)
                  for name in fields}
            for key, *_ in spec.groups}


# what the collector writes for every row at every step (or chunk): not zeroed beforehand
# (the observations alone are L x n x D floats, ~40 MB a rollout on the magent2 setting)
EVERY_STEP_FIELDS = ("obs", "action_mask", "actions", "logprobs", "values", "episode_starts",
                     "valid", "agent_dones", "state_h", "state_c")


def concat_rollouts(rollouts: list[Rollout]) -> Rollout:
    """Rollouts of equal length side by side, as one rollout of all their games (the learner
    trains on several actors' rollouts at once). Group rows are game-major, so rows and games
    stay aligned."""
    if len(rollouts) == 1:
        return rollouts[0]
    groups = {
        key: {name: torch.cat([r.groups[key][name] for r in rollouts], dim=join_dim(name))
              for name in rollouts[0].groups[key]}
        for key in rollouts[0].groups}
    episodes = {k: np.concatenate([r.episodes.get(k, np.zeros(0, np.int64)) for r in rollouts])
                for k in ("winners", "lengths")}
    return Rollout(groups,
                   np.concatenate([r.env_rewards for r in rollouts], axis=1),
                   np.concatenate([r.events for r in rollouts], axis=1),
                   np.concatenate([r.active for r in rollouts], axis=1),
                   np.concatenate([r.ticks for r in rollouts], axis=1),
                   np.concatenate([r.alive for r in rollouts], axis=1),
                   episodes, sum(r.agent_steps for r in rollouts),
                   max(r.seconds for r in rollouts))


@dataclass
class _RolloutArrays:
    """What one `Collector.collect` fills in, step by step."""

    env_rewards: np.ndarray
    events: np.ndarray
    active: np.ndarray
    alive: np.ndarray
    ticks: np.ndarray
    bufs: dict[str, dict[str, torch.Tensor]]
    winners: list[np.ndarray] = field(default_factory=list)
    lengths: list[np.ndarray] = field(default_factory=list)
    games: list[np.ndarray] = field(default_factory=list)


class Collector:
    """Steps `vec` with the policies and returns rollouts.

    `blocks`: several learning agents on one batched collection (league exploiters): each
    (policies, first game, end game) plays its contiguous block of games, so one step runs
    every agent's networks on its own rows; None: `policies` play every game. `overlap`:
    step one half of the games while the other is inferred (a ProcVec of 2+ workers)."""

    def __init__(self, vec: VecGame, policies: dict[str, torch.nn.Module],
                 groups: list[PolicyGroup], chunk_len: int, num_chunks: int, seed: int,
                 device: torch.device | str = "cpu", opponents=None,
                 blocks: list[tuple[dict[str, torch.nn.Module], int, int]] | None = None,
                 overlap: bool = False) -> None:
        self.vec = vec
        self.overlap = overlap  # infer one half of the games while the other steps
        self.opponents = opponents  # arena.learn.opponents.OpponentManager, or None: pure self-play
        self.policies = policies
        self.blocks = blocks or [(policies, 0, vec.num_games)]
        ends = [b0 for _, b0, _ in self.blocks] + [vec.num_games]
        if ends[0] != 0 or any(b1 != ends[i + 1] for i, (_, _, b1) in enumerate(self.blocks)):
            raise ValueError(f"collector blocks {[(b0, b1) for _, b0, b1 in self.blocks]} must "
                             f"cover games 0..{vec.num_games} in order")
        self.groups = groups
        # each group's columns of the (B, S) arrays: a view when it plays every slot
        self._cols = {g.key: slice(None) if tuple(g.slots) == tuple(range(vec.num_slots))
                      else list(g.slots) for g in groups}
        self.chunk_len = chunk_len
        self.num_chunks = num_chunks
        self.length = chunk_len * num_chunks
        self.device = torch.device(device)
        self._staging = HostStaging(self.device)  # pinned copies to a GPU
        self.seed = seed
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        B, S = vec.num_games, vec.num_slots
        self._actions = np.zeros((B, S), np.int64)
        self._state: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._step: VecStep | None = None
        self._episode_start = np.ones((B, S), bool)
        self._alive = np.zeros((B, S), bool)  # in the episode before the next step
        self._ticks = np.zeros(B, np.int64)
        self.episodes_started = 0
        self.game_seconds = 0.0  # the last rollout's time in the games' own steps

    def _games(self, call, *args) -> VecStep:
        """The games' vec.step or vec.wait, its time counted in `game_seconds`."""
        t = time.perf_counter()
        step = call(*args)
        self.game_seconds += time.perf_counter() - t
        return step

    def metrics(self) -> dict[str, float]:
        """The league's opponents, and the last rollout's seconds in the games' own steps
        (with overlap, the time left waiting for them): what of the collection is the
        game's, not the network's."""
        out = self.opponents.metrics() if self.opponents is not None else {}
        out["perf/game_seconds"] = self.game_seconds
        return out

    def close(self) -> None:
        self.vec.close()

    # ------------------------------------------------------------------------------------
    def _start(self) -> VecStep:
        step = self.vec.reset(seed=self.seed)
        self._episode_start[:] = True
        np.copyto(self._alive, step.alive)
        self._ticks[:] = 0
        for g in self.groups:
            n = self.vec.num_games * len(g.slots)
            self._state[g.key] = self.policies[g.key].initial_state(n, self.device)
        if self.opponents is not None:
            self.opponents.start({g.key: self.vec.num_games * len(g.slots) for g in self.groups})
        return step

    def _forward(self, g: PolicyGroup, obs: torch.Tensor, state, starts: torch.Tensor,
                 mask: torch.Tensor, own: np.ndarray | None = None):
        """policy.step over the rows of group g (of all games, or of part of them with one
        block: overlap is refused with several), each block of games by its own agent.

        `own`: the indices of the only rows to infer (the others are played by league
        opponents, whose actions replace the learner's): the rest get logits and values 0
        and keep their state (never read: such a row starts afresh with its next episode)."""
        n = len(g.slots)
        if own is not None:
            logits = torch.zeros(obs.shape[0], mask.shape[-1], device=obs.device)
            value = torch.zeros(obs.shape[0], device=obs.device)
            h, c = state[0].clone(), state[1].clone()
            for policies, b0, b1 in self.blocks:
                rows = own[(own >= b0 * n) & (own < b1 * n)]
                if rows.size:
                    i = torch.from_numpy(rows).to(obs.device)
                    # index_select/index_copy_: a few times cheaper than tensor indexing
                    lg, v, (nh, nc) = policies[g.key].step(
                        obs.index_select(0, i), (h.index_select(0, i), c.index_select(0, i)),
                        starts.index_select(0, i), mask.index_select(0, i))
                    h.index_copy_(0, i, nh)
                    c.index_copy_(0, i, nc)
                    logits, value = logits.to(lg.dtype), value.to(v.dtype)
                    logits.index_copy_(0, i, lg)
                    value.index_copy_(0, i, v)
            return logits, value, (h, c)
        if len(self.blocks) == 1:
            return self.blocks[0][0][g.key].step(obs, state, starts, mask)
        parts = []
        for policies, b0, b1 in self.blocks:
            r = slice(b0 * n, b1 * n)
            parts.append(policies[g.key].step(obs[r], (state[0][r], state[1][r]), starts[r],
                                              mask[r]))
        return (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]),
                (torch.cat([p[2][0] for p in parts]), torch.cat([p[2][1] for p in parts])))

    def _group_view(self, step: VecStep, g: PolicyGroup, games: slice = slice(None)):
        """Group g's observations, masks and episode starts in `step` (whose arrays hold
        the rows of `games`)."""
        cols = self._cols[g.key]
        starts = torch.from_numpy(self._episode_start[games][:, cols].reshape(-1).copy())
        return (group_rows(step.obs, g, self.device, self._staging, "obs"),
                group_rows(step.action_mask, g, self.device, self._staging, "action_mask"),
                starts.to(self.device))

    def _halves(self) -> list[slice] | None:
        """The two halves of the games, stepped in turn while the other is inferred, when
        `overlap` was asked for and the batch can step part of its games (ProcVec)."""
        if not self.overlap:
            return None
        if not hasattr(self.vec, "game_groups") or getattr(self.vec, "workers", 1) < 2:
            raise ValueError("game.overlap: the batch cannot step part of its games while the "
                             "rest is inferred; it needs 2 or more games stepped in worker "
                             "processes (game.threads >= 2 and 2+ games; any game but the "
                             "MOBA, whose threads step all its games at once)")
        if len(self.blocks) > 1:
            raise ValueError("game.overlap: not with league exploiters (several learning "
                             "agents on one batch)")
        return self.vec.game_groups(2)

    def collect(self) -> Rollout:
        """One rollout. Plainly, each step infers every game, then steps them all. With
        `overlap`, the games' halves alternate: half 0 steps in its worker processes while
        half 1 is inferred and sent off, and so on (EnvPool's and PufferLib's overlap);
        torch then runs on one thread, leaving the other cores to the games.

        Played under torch.inference_mode (5-10% less per operation than no_grad on the
        CPU), into buffers made outside it: the rollout's tensors are ordinary ones, which
        its users may change in place."""
        t0 = time.perf_counter()
        halves = self._halves()
        if self._step is None:
            self._step = self._start()
        vec, L = self.vec, self.length
        B, S = vec.num_games, vec.num_slots
        E = len(vec.event_names)
        spec = RolloutSpec(L, self.num_chunks, B, S, E, tuple(
            (g.key, len(g.slots), g.role.obs_dim, g.role.num_actions,
             self._state[g.key][0].shape[-1]) for g in self.groups))
        shapes = spec.shapes()
        run = _RolloutArrays(
            *(np.zeros(shapes[name][1], shapes[name][0]) for name in SHARED_FIELDS),
            group_buffers(spec, self.device,
                          tuple(n for n in GROUP_FIELDS if not n.startswith("last_")),
                          unset=EVERY_STEP_FIELDS))
        self.game_seconds = 0.0
        with torch.inference_mode():
            last = self._play(run, halves)
        bufs = run.bufs
        for key, (value, starts) in last.items():  # ordinary tensors, as the buffers
            bufs[key]["last_values"] = value.clone()
            bufs[key]["last_episode_starts"] = starts.clone()
        episodes = {
            "winners": np.concatenate(run.winners) if run.winners else np.zeros(0, np.int64),
            "lengths": np.concatenate(run.lengths) if run.lengths else np.zeros(0, np.int64),
            "games": np.concatenate(run.games) if run.games else np.zeros(0, np.int64),
        }
        agent_steps = int(run.active.sum())
        return Rollout(bufs, run.env_rewards, run.events, run.active, run.ticks, run.alive,
                       episodes, agent_steps, time.perf_counter() - t0)

    def _play(self, run: _RolloutArrays, halves) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The rollout's steps into `run`; -> each group's (values, episode starts) after the
        last step (the bootstrap)."""
        vec, L = self.vec, self.length
        everything = slice(0, vec.num_games)
        if halves is None:
            step = self._step
            for t in range(L):
                self._act(t, step, everything, run)
                step = self._games(vec.step, self._actions)
                self._after(t, step, everything, run)
        else:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                for t in range(L):
                    for h in halves:
                        st = vec.view(h) if t == 0 else self._games(vec.wait, h)
                        if t > 0:
                            self._after(t - 1, st, h, run)
                        self._act(t, st, h, run)
                        vec.step_async(self._actions[h], h)
                for h in halves:
                    self._after(L - 1, self._games(vec.wait, h), h, run)
            except BaseException:
                try:  # leave nothing in flight; the first error is the one to see
                    vec.wait()
                except Exception:
                    pass
                raise
            finally:
                torch.set_num_threads(threads)
            step = vec.view(everything)
        last = {}  # bootstrap values after the last step
        for g in self.groups:
            obs, mask, starts = self._group_view(step, g)
            _, value, _ = self._forward(g, obs, self._state[g.key], starts, mask)
            last[g.key] = (value, starts)
        self._step = step
        return last

    def _act(self, t: int, step: VecStep, games: slice, run: _RolloutArrays) -> None:
        """Step t's inference for `games` (`step` holds their rows): record what the
        policies see and do, write their actions into `self._actions`."""
        T = self.chunk_len
        nb = games.stop - games.start
        valid_now = step.next_active.copy()  # the buffer is overwritten by the game's step
        alive_now = self._alive[games].copy()
        run.active[t, games] = valid_now
        run.alive[t, games] = alive_now
        run.ticks[t, games] = self._ticks[games]
        for g in self.groups:
            buf = run.bufs[g.key]
            n = len(g.slots)
            rows = slice(games.start * n, games.stop * n)
            obs, mask, starts = self._group_view(step, g, games)
            h, c = self._state[g.key]
            state = (h[rows], c[rows])
            if t % T == 0:
                keep = (~starts).unsqueeze(-1).to(state[0].dtype)
                buf["state_h"][t // T, rows] = state[0] * keep
                buf["state_c"][t // T, rows] = state[1] * keep
            # rows played by league opponents are not inferred: override acts for them
            others = None if self.opponents is None else self.opponents.played(g, games)
            own = None if others is None or not others.any() else np.flatnonzero(~others)
            logits, value, (nh, nc) = self._forward(g, obs, state, starts, mask, own)
            logp = torch.log_softmax(logits, dim=-1)  # the policy masked them already
            action = sample_actions(logp.exp(), self.generator, self.device)
            trains = valid_now[:, self._cols[g.key]].reshape(-1)
            if others is not None:  # snapshot, bot and live opponents act for their side
                self.opponents.override(g, obs, mask, starts, action, self.generator, games)
                trains = trains & ~others
            if nb == self.vec.num_games:
                self._state[g.key] = (nh, nc)
            else:
                h[rows], c[rows] = nh, nc
            buf["obs"][t, rows] = obs
            buf["action_mask"][t, rows] = mask
            buf["actions"][t, rows] = action
            buf["logprobs"][t, rows] = logp.gather(-1, action.unsqueeze(-1)).squeeze(-1)
            buf["values"][t, rows] = value
            buf["episode_starts"][t, rows] = starts
            buf["valid"][t, rows] = torch.from_numpy(trains).to(self.device)
            self._actions[games][:, self._cols[g.key]] = \
                action.view(nb, n).cpu().numpy()

    def _after(self, t: int, step: VecStep, games: slice, run: _RolloutArrays) -> None:
        """What step t of `games` gave (`step` holds their rows): rewards, events, ends of
        agents' episodes (and the values at time-limit cuts), ends of games."""
        run.env_rewards[t, games] = step.rewards
        run.events[t, games] = step.events
        self._ticks[games] += 1
        done = step.dones
        agent_done, self._episode_start[games] = transitions(run.alive[t, games], step)
        truncated = agent_done & step.truncated
        for g in self.groups:
            n = len(g.slots)
            run.bufs[g.key]["agent_dones"][t, games.start * n:games.stop * n] = \
                torch.from_numpy(agent_done[:, self._cols[g.key]].reshape(-1)).to(self.device)
        if truncated.any():
            self._bootstrap_truncated(step, truncated, run.bufs, t, games)
        self._alive[games] = step.alive
        if done.any():
            local = np.flatnonzero(done)
            idx = local + games.start
            run.games.append(idx)
            run.winners.append(step.winners[local].copy())
            run.lengths.append(step.lengths[local].copy())
            self._ticks[idx] = 0
            if self.opponents is not None:
                self.opponents.finish(idx, step.winners[local])

    def _bootstrap_truncated(self, step: VecStep, truncated: np.ndarray,
                             bufs: dict[str, dict[str, torch.Tensor]], t: int,
                             games: slice) -> None:
        """V(observation at the cut) for agents whose episode a time limit ended at step t,
        from the LSTM state they reached; the game has already reset, so the observation
        comes from the step's `final_obs` (`step` holds the rows of `games`)."""
        for g in self.groups:
            cut_rows = truncated[:, self._cols[g.key]].reshape(-1)
            if not cut_rows.any():
                continue
            n = len(g.slots)
            rows = slice(games.start * n, games.stop * n)
            h, c = self._state[g.key]
            no_start = torch.zeros(len(cut_rows), dtype=torch.bool, device=self.device)
            _, value, _ = self._forward(
                g, group_rows(step.final_obs, g, self.device, self._staging, "final_obs"),
                (h[rows], c[rows]), no_start,
                group_rows(step.final_mask, g, self.device, self._staging, "final_mask"))
            cut = torch.from_numpy(cut_rows).to(self.device)
            bufs[g.key]["truncated"][t, rows] = cut
            bufs[g.key]["final_values"][t, rows] = torch.where(cut, value, 0.0)

