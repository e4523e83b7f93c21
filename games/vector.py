"""Every game as fixed-shape numpy batches: B games stepped at once, one network per role.

The trainer's rollout collector does not want dicts keyed by agent name whose keys come
and go; it wants arrays of a fixed shape it can feed to one network per *role*. A
`VecGame` gives exactly that:

* **Slots.** Every agent the game can ever have (`possible_agents`, in that order) owns
  one column `s` of the `(B, S)` arrays: `slot_agents[s]`, `slot_team[s]` (index into
  `team_names`), `slot_role[s]` (index into `roles`).
* **Roles.** A `RoleSpec` is what one network plays: its flat observation size, its
  `Discrete` action count, whether the game masks actions, and the slots that play it.
  Observations and masks are grouped per role: `obs[role]` is `(B, len(slots), obs_dim)`
  float32 and `action_mask[role]` `(B, len(slots), num_actions)` bool, columns in the
  order of `RoleSpec.slots`.
* **Liveness.** `next_active[b, s]` says the slot has a live agent in the returned
  observation and must act next; `active[b, s]` says it acted in the step just taken;
  `alive[b, s]` says the slot's agent is in its episode (acting next, or waiting for its
  turn in a turn-based game; elsewhere the same as `next_active`). Slots without a live
  agent (agents gone for good, e.g. dead magent2 soldiers) have zero observations and an
  all-True mask (so a batched masked softmax stays finite); their actions are ignored and
  their rewards and events are zero.
* **Auto-reset.** A game that ends inside `step` is reset in the same call: `dones[b]`
  is True, `rewards`/`events`/`active`/`truncated` are those of the last step, `winners[b]`
  and `lengths[b]` describe the finished episode, and `obs`/`action_mask`/`next_active`/
  `alive` are already the first ones of the next episode.
* **Truncation.** An agent cut off by a time limit (truncated, not terminated) has not
  reached the end of its return: `truncated[b, s]` marks the step of the cut, and
  `final_obs[role]`/`final_mask[role]` hold the observation and mask it got there (which
  `obs` no longer holds after an auto-reset), so the collector can bootstrap from its
  value. Terminated agents have no final observation: their return is complete. The
  built-in MOBA ends by its own rules (its time limit has a winner), so nothing of it is
  ever truncated.

Everything a `VecStep` holds is a view of buffers preallocated by the game: valid until
the next `reset`/`step`, copy what you keep.

Three implementations:

* `MobaVec` (games/moba/vec.py, the MOBA's registered vectoriser: `make_vec("moba", B,
  **config)`): the fast path, a view over one batched
  `MobaCore(num_games=B, autoreset=True)`; no Python loop over games or heroes. One role,
  "hero", played by both teams: MOBA observations are in each team's own frame, so one
  network plays both sides. Heroes never leave (a dead hero acts with a no-op-only mask),
  so every slot is always active. Game `b` of `reset(seed)` is seeded `seed + b` (so game
  0 replays `MobaEnv().reset(seed=seed)`); later episodes continue each game's own random
  stream.
* `ParallelVec` (every other name whose game is a `ParallelEnv`, e.g. "memory" or
  "pettingzoo:<module>:parallel_env") and `AECVec` (a turn-based `AECEnv`, e.g.
  "pettingzoo:pettingzoo.classic.connect_four_v3:env"): B instances of
  `games.make(name, **kwargs)` stepped in a Python loop. Rules for both:

  - Roles: one per kind of agent (its observation and action spaces, hence mask-ness) in
    each team, named by the team, or "<team>-<agent name without its index>" in a team
    of several kinds (simple_world_comm's team {leadadversary_0, adversary_*} gives
    "bad-leadadversary" and "bad-adversary"); the same kind in several teams is one role,
    named by joining those names with "+" in team order ("red+blue" for magent2 battle or
    the memory game, "player_0+player_1" for connect four; simple_tag gives "adversary"
    and "agent"; a name over 64 characters becomes "<first>..<last>", e.g.
    "omnivore_0..omnivore_494" for magent2 gather's 495 one-agent teams).
    `roles={team: role name}` overrides this: teams given the same role name share it
    (their spaces must agree), distinct names keep them apart. All agents of a role must
    have the same spaces.
  - Observation spaces: a `Dict` with keys exactly {"observation", "action_mask"}
    (PettingZoo's convention) uses the mask; anything else is flattened to float32
    (`Box` by reshape, other spaces by `gymnasium.spaces.flatten`) with an all-True mask.
    Action spaces must be `Discrete` (actions are 0..n-1; a nonzero `start` is added).
  - An agent that leaves `env.agents`, or is terminated/truncated, is gone: its slot is
    not alive until the game resets. Agents that (re)appear in `env.agents` become alive.
    The game ends when no live agent is left. `truncated` comes from the truncations
    dict: an agent in the episode before the step, truncated and not terminated by it.
  - Seeds: `reset(seed)` resets game b with `seed + b`; the k-th automatic reset of game
    b (k = 1, 2, ...) uses a 32-bit seed hashed from (seed, b, k) by `np.random.SeedSequence`,
    so runs are deterministic per seed and different reset seeds do not share episodes.
  - Outcome: if the final step's infos carry "winner" (a team name, a team index, or None
    for a draw: the MOBA's convention) that decides it; otherwise the game option
    `outcome=` does: "reward" (default), the team with the highest summed episode reward
    (over all its agents and steps) wins; "survivors", the team with the most agents still
    in the game at the end wins (for games like magent2 battle, where reward sums favour a
    team that idles while the other loses reward). An agent truncated by the time limit
    survives; one terminated or removed from `env.agents` before the end, or terminated
    in the final step while others are truncated, does not. A game that ends by its own
    rule terminates everyone left at once, survivors too (magent2 does when a team is wiped
    out): then, nobody being truncated in the final step, the agents in the game going into
    that step survive (agents killed in that very step count too; they cannot be told
    apart). -1 on a tie.
  - Events: names given as `event_names=(...)`, else the env's `event_names` attribute,
    else found by a probe: the batch's first game is reset (seed 0) and stepped once with the
    first legal action of every agent (of the selected agent, turn-based), and the numeric
    keys of `infos[agent]["events"]` (reset and step infos, union in first-seen order)
    become `event_names`, fixed from then on (keys that show up only later are ignored).
    No "events" dicts: E = 0. A step's events are those in the infos of the agents that
    acted in it.

  In a `ParallelVec` every live agent acts at every step. In an `AECVec` only the game's
  `agent_selection` acts (`next_active` is True for that slot alone): the others wait,
  alive, and still observe (`env.observe(agent)` is written to their obs rows, so a
  recurrent policy sees the board after the opponent's move), but their mask rows are all
  True and their actions ignored, as for slots without an agent. A selected agent that is
  terminated or truncated is stepped with None (PettingZoo's dead step) inside the same
  step, until a live agent is selected or none is left. `rewards[b, s]` sums
  `env.rewards[agent]` over every `env.step` taken inside the step, for every agent: the
  loser's -1 that arrives on the winner's move shows in that step's row, in the loser's
  slot, while the loser waits (a collector credits it to the loser's own last action).
  `lengths` counts steps, i.e. moves.

  `make_vec(name, B, threads=N)` with N > 1 steps the same batch in min(N, B) worker
  processes (`games.procvec.ProcVec`): each runs a `ParallelVec`/`AECVec` over a contiguous
  slice of the games, seeded by their global index (`game_offset`), writing straight into
  shared memory, so the results equal the in-process batch's exactly for the same seed and
  actions. `step_async(actions, games=...)`/`wait(...)` step some workers' games while the
  caller infers the others (EnvPool/PufferLib's overlap). threads=1 (the default) keeps
  everything in this process, for debugging. For "moba", `threads` is `MobaCore`'s.
"""

from __future__ import annotations

import abc
import dataclasses
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv

from games.actions import as_action_batch
from games.adapters import agent_kind

__all__ = ["AECVec", "ParallelVec", "RoleSpec", "VecGame", "VecStep", "make_vec"]

MERGED_ROLE_SEP = "+"
# a merged role name longer than this (many one-agent teams: magent2 gather's 495
# omnivores) is shortened to "<first team>..<last team>": role names name league
# directories and TensorBoard tags
MAX_MERGED_ROLE_NAME = 64
# game options that make_vec consumes itself instead of passing them to games.make
VEC_OPTIONS = ("roles", "event_names", "outcome")


@dataclass(frozen=True)
class RoleSpec:
    """What one network plays: sizes, mask-ness, and the slots (batch columns) it plays."""

    name: str
    obs_dim: int
    num_actions: int
    has_mask: bool
    slots: tuple[int, ...]
    obs_layout: object | None = None  # the game's own observation layout (the MOBA's bots read it)
    # (flat_dim, num_entities, entity_dim) when the observation is [flat | entity rows] with a
    # presence flag first in each row (for an entity encoder); None: a flat observation
    entity_layout: tuple[int, int, int] | None = None


@dataclass
class VecStep:
    """One batched step (views of preallocated buffers, valid until the next call).

    obs: role -> (B, n_role_slots, obs_dim) float32, columns in `RoleSpec.slots` order;
    action_mask: role -> (B, n_role_slots, A) bool (all True where the game has no masks
    and for inactive slots); rewards: (B, S) float32, the game's own reward for this step;
    dones: (B,) bool, the game ended at this step and was reset already (obs are the next
    episode's first); active: (B, S) bool, slot acted in this step (at reset: same as
    next_active); next_active: (B, S) bool, slot has a live agent in the returned obs;
    winners: (B,) int64 team index of the winner, -1 draw (valid where dones; -1 elsewhere);
    lengths: (B,) int64 steps taken in the episode so far; where dones, the finished
    episode's length (the new episode has taken no step yet);
    events: (B, S, E) float32 this step's event counters (names: `VecGame.event_names`);
    alive: (B, S) bool, the slot's agent is in its episode after this step, acting next or
    waiting for its turn (equals next_active where every live agent acts; after an
    auto-reset and at reset: the new episode's agents);
    truncated: (B, S) bool, the slot's episode ended at this step by truncation (a time
    limit), not termination: its return is cut off, so bootstrap from final_obs;
    final_obs: role -> (B, n_role_slots, obs_dim) float32 and final_mask: role ->
    (B, n_role_slots, A) bool, where `truncated`, the observation (flattened like obs) and
    mask the agent got at the cut, which obs no longer holds after an auto-reset; zeros
    and all True elsewhere.
    """

    obs: dict[str, np.ndarray]
    action_mask: dict[str, np.ndarray]
    rewards: np.ndarray
    dones: np.ndarray
    active: np.ndarray
    next_active: np.ndarray
    winners: np.ndarray
    lengths: np.ndarray
    events: np.ndarray
    alive: np.ndarray
    truncated: np.ndarray
    final_obs: dict[str, np.ndarray]
    final_mask: dict[str, np.ndarray]


class VecGame(abc.ABC):
    """B games of one kind as fixed-shape numpy batches (see the module docstring)."""

    num_games: int
    num_slots: int
    slot_agents: list[str]
    slot_team: np.ndarray
    team_names: list[str]
    roles: list[RoleSpec]
    slot_role: np.ndarray
    event_names: tuple[str, ...]
    level_events: tuple[str, ...] = ()  # events that report a current value, not a count

    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> VecStep:
        """Start every game; game b of a seeded reset uses seed + b."""

    @abc.abstractmethod
    def step(self, actions: np.ndarray) -> VecStep:
        """Advance every game; actions (B, S) int64, inactive slots ignored."""

    def close(self) -> None:
        pass

    def role(self, name: str) -> RoleSpec:
        """The role called `name`."""
        for r in self.roles:
            if r.name == name:
                return r
        raise KeyError(f"{type(self).__name__}: no role {name!r}; roles: "
                       f"{[r.name for r in self.roles]}")

    def __enter__(self) -> VecGame:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # helpers shared by implementations ------------------------------------------------
    def _check_actions(self, actions: Any) -> np.ndarray:
        return as_action_batch(type(self).__name__, actions, (self.num_games, self.num_slots),
                               "(num_games, num_slots)")


def _check_seed(owner: str, seed: Any) -> int:
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint32)[0])
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{owner}.reset: seed must be an int or None, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{owner}.reset: seed must be >= 0, got {seed}")
    return int(seed)


OUTCOMES = ("reward", "survivors")


def _check_outcome(owner: str, outcome: Any) -> str:
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        raise ValueError(f"{owner}: game option outcome must be one of {list(OUTCOMES)}, "
                         f"got {outcome!r}")
    return outcome


def _check_num_games(owner: str, num_games: Any) -> int:
    if isinstance(num_games, bool) or not isinstance(num_games, numbers.Integral) \
            or num_games < 1:
        raise ValueError(f"{owner}: num_games must be a positive int, got {num_games!r}")
    return int(num_games)


# ========================================================================================
@dataclass(frozen=True)
class _SlotSpace:
    obs_space: spaces.Space
    act_space: spaces.Space
    has_mask: bool
    inner: spaces.Space  # the observation part (the Dict's "observation", or the space)
    obs_dim: int


def _slot_space(where: str, agent: str, obs_space: spaces.Space,
                act_space: spaces.Space) -> _SlotSpace:
    has_mask = isinstance(obs_space, spaces.Dict) and \
        set(obs_space.spaces) == {"observation", "action_mask"}
    inner = obs_space["observation"] if has_mask else obs_space
    try:
        dim = int(spaces.flatdim(inner))
    except Exception as e:  # noqa: BLE001 - any space gymnasium cannot flatten
        raise ValueError(
            f"{where}: agent {agent!r} has an observation space that cannot be flattened "
            f"to a vector: {obs_space} ({e})") from e
    if has_mask:
        m = obs_space["action_mask"]
        n = getattr(act_space, "n", None)
        if not isinstance(m, (spaces.Box, spaces.MultiBinary)) or n is None \
                or int(np.prod(m.shape)) != int(n):
            raise ValueError(
                f"{where}: agent {agent!r}: the 'action_mask' space {m} does not match "
                f"its action space {act_space} (expected one flag per action)")
    return _SlotSpace(obs_space, act_space, has_mask, inner, dim)


class _EnvVec(VecGame):
    """B instances of one game from `games.make`, stepped in a Python loop.

    Everything `ParallelVec` and `AECVec` share lives here, so both follow one set of rules
    (slots, teams, roles, spaces, buffers, seeds, outcome, events, truncation); a subclass
    says only how one game resets (`_reset_env`) and steps (`_step_game`), and how the
    event probe plays (`_probe_infos`).
    """

    def __init__(self, name: str, num_games: int, *, roles: Mapping[str, str] | None = None,
                 event_names: Sequence[str] | None = None, outcome: str = "reward",
                 autoreset: bool = True, game_offset: int = 0, _first: Any = None,
                 **kwargs: Any) -> None:
        import games

        self._where = where = f"{type(self).__name__}({name!r})"
        B = _check_num_games(where, num_games)
        if isinstance(game_offset, bool) or not isinstance(game_offset, numbers.Integral) \
                or game_offset < 0:
            raise ValueError(f"{where}: game_offset must be an int >= 0, got {game_offset!r}")
        # this batch is games game_offset.. of a larger one (a games.procvec worker's slice):
        # seeds follow the global game index, so the slice replays those games exactly
        self.game_offset = int(game_offset)
        self.outcome = _check_outcome(where, outcome)
        self.autoreset = bool(autoreset)
        self.name = name
        # make_vec builds the first game itself to see its kind; it is reused, not rebuilt
        env = games.make(name, **kwargs) if _first is None else _first
        self._check_kind(env)
        self.envs = [env] + [games.make(name, **kwargs) for _ in range(B - 1)]
        possible = list(getattr(env, "possible_agents", None) or [])
        if not possible:
            raise ValueError(f"{where}: the game has no possible_agents before reset()")
        if len(set(possible)) != len(possible):
            raise ValueError(f"{where}: possible_agents has duplicates: {possible}")
        teams = getattr(env, "teams", None)
        agent_team = getattr(env, "agent_team", None)
        if not isinstance(teams, Mapping) or not isinstance(agent_team, Mapping):
            raise ValueError(
                f"{where}: the game has no team map (`teams`/`agent_team`); wrap it with "
                "games.adapters.with_teams, or make it as a 'pettingzoo:' spec")
        missing = [a for a in possible if a not in agent_team]
        if missing:
            raise ValueError(f"{where}: agents without a team: {missing}")

        S = len(possible)
        self.num_games, self.num_slots = B, S
        self.slot_agents = possible
        self._slot_of = {a: s for s, a in enumerate(possible)}
        self.team_names = list(teams)
        team_index = {t: i for i, t in enumerate(self.team_names)}
        self.slot_team = np.array([team_index[agent_team[a]] for a in possible], np.int64)

        # -- spaces and roles --------------------------------------------------------------
        sp = [_slot_space(where, a, env.observation_space(a), env.action_space(a))
              for a in possible]
        self._slot_spaces = sp
        team_slots = {t: [s for s in range(S) if self.slot_team[s] == i]
                      for t, i in team_index.items()}
        role_of_slot = self._assign_roles(where, team_slots, sp, roles)
        role_names: list[str] = []
        for t in self.team_names:
            for s in team_slots[t]:
                if role_of_slot[s] not in role_names:
                    role_names.append(role_of_slot[s])
        self.roles = []
        self.slot_role = np.zeros(S, np.int64)
        for ri, rname in enumerate(role_names):
            slots = tuple(s for s in range(S) if role_of_slot[s] == rname)
            ref = sp[slots[0]]
            for s in slots:
                if sp[s].obs_space != ref.obs_space or sp[s].act_space != ref.act_space:
                    raise ValueError(
                        f"{where}: role {rname!r}: agents of one role must share spaces, but "
                        f"{possible[slots[0]]!r} has observation {ref.obs_space} / action "
                        f"{ref.act_space} and {possible[s]!r} has observation {sp[s].obs_space}"
                        f" / action {sp[s].act_space}")
            for s in slots:
                if not isinstance(sp[s].act_space, spaces.Discrete):
                    raise ValueError(
                        f"{where}: role {rname!r}, agent {possible[s]!r}: only Discrete action "
                        f"spaces are supported, got {sp[s].act_space}")
            self.slot_role[list(slots)] = ri
            self.roles.append(RoleSpec(rname, ref.obs_dim, int(ref.act_space.n), ref.has_mask,
                                       slots, entity_layout=_declared_entity_layout(
                                           where, env, possible[slots[0]], ref.obs_dim)))

        self._slot_n = np.array([int(x.act_space.n) for x in sp], np.int64)
        self._slot_start = [int(x.act_space.start) for x in sp]
        self._slot_start_arr = np.array(self._slot_start, np.int64)
        self._slot_box = [isinstance(x.inner, spaces.Box) for x in sp]
        # roles whose observations are plain arrays (a Box, no mask): a game step writes
        # all of a role's live agents' observations as one array, not one slot at a time
        self._plain_roles = [r for r in self.roles
                             if not r.has_mask and all(self._slot_box[s] for s in r.slots)]
        self._plain = np.zeros(len(possible), bool)
        for r in self._plain_roles:
            self._plain[list(r.slots)] = True
        self._rewards_key: tuple[Any, ...] | None = None  # _add_rewards' cached agent order
        self._rewards_at: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

        # -- events ----------------------------------------------------------------------
        if event_names is None:
            event_names = getattr(env, "event_names", None)
        if event_names is None:
            event_names = self._probe_event_names()
        if isinstance(event_names, str) or not all(isinstance(e, str) for e in event_names):
            raise ValueError(f"{where}: event_names must be a sequence of strings, "
                             f"got {event_names!r}")
        self.event_names = tuple(event_names)
        self._event_index = {e: i for i, e in enumerate(self.event_names)}
        E = len(self.event_names)

        # -- buffers ---------------------------------------------------------------------
        def obs_buffers() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
            return ({r.name: np.zeros((B, len(r.slots), r.obs_dim), np.float32)
                     for r in self.roles},
                    {r.name: np.ones((B, len(r.slots), r.num_actions), bool)
                     for r in self.roles})

        (obs, mask), (final_obs, final_mask) = obs_buffers(), obs_buffers()
        self._final_written: list[tuple[int, int]] = []  # rows to clear at the next step
        self._bind_buffers(VecStep(
            obs=obs, action_mask=mask, rewards=np.zeros((B, S), np.float32),
            dones=np.zeros(B, bool), active=np.zeros((B, S), bool),
            next_active=np.zeros((B, S), bool), winners=np.full(B, -1, np.int64),
            lengths=np.zeros(B, np.int64), events=np.zeros((B, S, E), np.float32),
            alive=np.zeros((B, S), bool), truncated=np.zeros((B, S), bool),
            final_obs=final_obs, final_mask=final_mask))
        self._ep_return = np.zeros((B, len(self.team_names)), np.float64)
        # (game, slot): the agent left its episode by truncation, i.e. it survived to the cut
        self._ep_survived = np.zeros((B, S), bool)
        self._ep_len = np.zeros(B, np.int64)
        self._episode = np.zeros(B, np.int64)
        self._over = np.zeros(B, bool)  # without autoreset: the game ended and sits still
        self._base_seed: int | None = None

    def _set_event_names(self, names: Sequence[str]) -> None:
        """Replace the event names (a games.procvec worker takes worker 0's, probed on game
        0, before it binds its buffers); the event counters start again at zero."""
        self.event_names = tuple(names)
        self._event_index = {e: i for i, e in enumerate(self.event_names)}
        self._events = np.zeros((self.num_games, self.num_slots, len(self.event_names)),
                                np.float32)
        self._step_result = dataclasses.replace(self._step_result, events=self._events)

    def _bind_buffers(self, buffers: VecStep) -> None:
        """Write every result into `buffers` from now on (arrays of this batch's shapes and
        dtypes, e.g. a games.procvec worker's slice of shared memory); what the current
        buffers hold is copied over."""
        B, S = self.num_games, self.num_slots
        old = getattr(self, "_step_result", None)
        if old is not None:  # rebinding: same shapes and dtypes, contents carried over
            for k in VecStep.__dataclass_fields__:
                was, new = getattr(old, k), getattr(buffers, k)
                pairs = [(f"{k}[{r!r}]", was[r], new.get(r) if isinstance(new, Mapping)
                          else None) for r in was] if isinstance(was, dict) \
                    else [(k, was, new)]
                for what, w, n in pairs:
                    if not isinstance(n, np.ndarray) or n.shape != w.shape \
                            or n.dtype != w.dtype:
                        raise ValueError(
                            f"{self._where}: buffer {what} must be an array of shape "
                            f"{w.shape} and dtype {w.dtype}, got {type(n).__name__} "
                            f"{getattr(n, 'shape', '')} {getattr(n, 'dtype', '')}")
                    np.copyto(n, w)
        self._step_result = buffers
        self._obs, self._mask = buffers.obs, buffers.action_mask
        self._final_obs, self._final_mask = buffers.final_obs, buffers.final_mask
        self._rewards, self._dones = buffers.rewards, buffers.dones
        self._active, self._next_active = buffers.active, buffers.next_active
        self._alive, self._truncated = buffers.alive, buffers.truncated
        self._winners, self._lengths = buffers.winners, buffers.lengths
        self._events = buffers.events
        # per (game, slot) row views into the role buffers, so the loop writes in place
        col = {s: (r.name, j) for r in self.roles for j, s in enumerate(r.slots)}

        def rows(bufs: dict[str, np.ndarray]) -> list[list[np.ndarray]]:
            return [[bufs[col[s][0]][b, col[s][1]] for s in range(S)] for b in range(B)]

        self._obs_rows, self._mask_rows = rows(self._obs), rows(self._mask)
        self._final_rows, self._final_mask_rows = rows(self._final_obs), rows(self._final_mask)

    # -- what a subclass says -------------------------------------------------------------
    @abc.abstractmethod
    def _check_kind(self, env: Any) -> None:
        """Raise ValueError if this class cannot step `env` (the other class can)."""

    @abc.abstractmethod
    def _reset_env(self, b: int) -> None:
        """Reset game b with `_episode_seed(b)` and write its first observations."""

    @abc.abstractmethod
    def _step_game(self, b: int, act_row: np.ndarray) -> Mapping | None:
        """Step game b with its row of actions: add rewards, events and truncations, and
        write the next observations. Returns None while the game goes on, else the final
        infos (for the winner); the caller then counts and resets the episode."""

    @abc.abstractmethod
    def _probe_infos(self, probe: Any) -> Iterator[Any]:
        """Reset `probe` (seed 0), step it once with first legal actions, yielding the
        infos of both."""

    # -- shared rules -------------------------------------------------------------------
    def _assign_roles(self, where: str, team_slots: dict[str, list[int]],
                      sp: list[_SlotSpace], roles: Mapping[str, str] | None) -> list[str]:
        """The role name of every slot."""
        S = len(sp)
        if roles is not None:
            if not isinstance(roles, Mapping):
                raise ValueError(f"{where}: roles must be a dict team -> role name, got {roles!r}")
            unknown = sorted(set(roles) - set(team_slots))
            absent = [t for t in team_slots if t not in roles]
            if unknown or absent:
                raise ValueError(
                    f"{where}: roles must name a role for every team {list(team_slots)}; "
                    f"unknown teams {unknown}, teams without a role {absent}")
            bad = {t: r for t, r in roles.items() if not isinstance(r, str) or not r}
            if bad:
                raise ValueError(f"{where}: role names must be non-empty strings, got {bad}")
            out = [""] * S
            for t, slots in team_slots.items():
                for s in slots:
                    out[s] = roles[t]
            return out
        # default: a team's agents of one kind (the same spaces) are a unit; units of
        # different teams with the same spaces share one role
        units: list[tuple[tuple, list[tuple[str, list[int]]]]] = []  # (spaces, [(team, slots)])
        for t, slots in team_slots.items():
            kinds: list[tuple[tuple, list[int]]] = []  # spaces are not hashable
            for s in slots:
                sig = (sp[s].obs_space, sp[s].act_space)
                for ksig, members in kinds:
                    if ksig[0] == sig[0] and ksig[1] == sig[1]:
                        members.append(s)
                        break
                else:
                    kinds.append((sig, [s]))
            for sig, members in kinds:
                for usig, parts in units:
                    if usig[0] == sig[0] and usig[1] == sig[1] \
                            and all(team != t for team, _ in parts):
                        parts.append((t, members))
                        break
                else:
                    units.append((sig, [(t, members)]))
        mixed = {t for t, slots in team_slots.items()
                 if sum(t == team for _, parts in units for team, _ in parts) > 1}
        out = [""] * S
        for _, parts in units:
            # a team of several kinds names each unit by its agents' name without the index
            names = [f"{t}-{agent_kind(self.slot_agents[members[0]])}" if t in mixed else t
                     for t, members in parts]
            name = merged_role_name(names)
            for _, members in parts:
                for s in members:
                    out[s] = name
        return out

    def _first_legal(self, s: int, o: Any) -> int:
        """The env's action for slot s's first legal move in observation `o` (0 unmasked)."""
        act = 0
        if self._slot_spaces[s].has_mask and isinstance(o, Mapping):
            legal = np.flatnonzero(np.asarray(o["action_mask"]).reshape(-1))
            act = int(legal[0]) if legal.size else 0
        return act + self._slot_start[s]

    def _probe_event_names(self) -> tuple[str, ...]:
        """Probed on the batch's first game, which `reset` resets before anything plays:
        a separate instance, closed at once, costs a game's construction, and closing one
        instance can break the others (mpe2's close() quits pygame, which invalidates
        the fonts every live instance draws its labels with)."""
        names: list[str] = []
        for infos in self._probe_infos(self.envs[0]):
            if not isinstance(infos, Mapping):
                continue
            for info in infos.values():
                ev = info.get("events") if isinstance(info, Mapping) else None
                if isinstance(ev, Mapping):
                    for k, v in ev.items():
                        if isinstance(k, str) and isinstance(v, numbers.Real) \
                                and k not in names:
                            names.append(k)
        return tuple(names)

    def _episode_seed(self, b: int) -> int:
        k, g = int(self._episode[b]), self.game_offset + b  # g: the game's global index
        if k == 0:
            return self._base_seed + g
        ss = np.random.SeedSequence(entropy=self._base_seed, spawn_key=(g, k))
        return int(ss.generate_state(1, np.uint32)[0])

    def _write_slot(self, b: int, s: int, obs: Mapping, row: np.ndarray, mrow: np.ndarray,
                    with_mask: bool) -> None:
        """Flatten slot s's observation from `obs` into `row`; its mask into `mrow` if
        `with_mask` (the agent acts next), else all True."""
        agent = self.slot_agents[s]
        try:
            o = obs[agent]
        except (KeyError, TypeError):
            raise ValueError(f"{self._where}: game {b} gave no observation for agent "
                             f"{agent!r}") from None
        sp = self._slot_spaces[s]
        if sp.has_mask:
            if with_mask:
                mrow[:] = np.asarray(o["action_mask"]).reshape(-1)
            else:
                mrow.fill(True)
            o = o["observation"]
        flat = np.asarray(o).reshape(-1) if self._slot_box[s] else spaces.flatten(sp.inner, o)
        if flat.size != row.size:
            raise ValueError(f"{self._where}: agent {agent!r} observation has {flat.size} "
                             f"values, its space says {row.size}")
        row[:] = flat

    def _write_obs(self, b: int, obs: Mapping, live: set[str], acting: str | None) -> None:
        """Write game b's observations: every live agent is alive and observes; it acts
        next if `acting` is None (all live agents act) or names it. Rows out of the game
        are zeros (their masks all True)."""
        obs_rows, mask_rows = self._obs_rows[b], self._mask_rows[b]
        here = np.array([a in live for a in self.slot_agents], bool)
        np.copyto(self._alive[b], here)
        na = self._next_active[b]
        if acting is None:
            np.copyto(na, here)
        else:
            na.fill(False)
            s = self._slot_of.get(acting)
            if s is not None:
                na[s] = acting in live
        self._ep_survived[b, here] = False  # in the game again: not ended yet
        for s in np.flatnonzero(~here).tolist():
            obs_rows[s].fill(0.0)
            mask_rows[s].fill(True)
        for role in self._plain_roles:
            self._write_plain(b, obs, role, here[list(role.slots)])
        for s in np.flatnonzero(here & ~self._plain).tolist():
            self._write_slot(b, s, obs, obs_rows[s], mask_rows[s], bool(na[s]))

    def _write_plain(self, b: int, obs: Mapping, role: Any, live: np.ndarray) -> None:
        """The observations of a plain role's live agents (`live` over its columns), copied
        into the role's rows at once; an observation that does not stack (missing, or of
        another size than the space says) gets the slot-by-slot path and its error."""
        cols = np.flatnonzero(live).tolist()
        if not cols:
            return
        agents = [self.slot_agents[role.slots[j]] for j in cols]
        rows = self._obs[role.name][b]
        try:
            arrays = [obs[a] for a in agents]
        except (KeyError, TypeError):  # an agent without an observation: the slot path names it
            arrays = None
        stacked = None
        if arrays is not None:
            shape = getattr(arrays[0], "shape", None)
            if len(cols) == rows.shape[0] and shape and rows.flags.c_contiguous \
                    and all(getattr(x, "shape", None) == shape for x in arrays):
                # every agent of the role, arrays of one shape: one pass straight into the
                # rows (C order: stacked on a new first axis = joined along the first;
                # reshape is a view of contiguous rows), not a stacked copy copied again. A
                # many-agent game's observations are megabytes a step (magent2 gather's 495
                # agents: half the batch's step).
                try:
                    np.concatenate(arrays, out=rows.reshape(len(cols) * shape[0], *shape[1:]),
                                   casting="unsafe")
                    return
                except (TypeError, ValueError):
                    pass  # not the space's size: the general path says
            try:
                stacked = np.array(arrays)  # arrays of one shape, or raises
            except (TypeError, ValueError):
                pass
        if stacked is None or stacked.size != len(cols) * rows.shape[1]:
            for j in cols:
                s = role.slots[j]
                self._write_slot(b, s, obs, self._obs_rows[b][s], self._mask_rows[b][s], True)
            return
        if len(cols) == rows.shape[0]:
            rows[...] = stacked.reshape(rows.shape)
        else:
            rows[cols] = stacked.reshape(len(cols), -1)

    def _write_final(self, b: int, s: int, obs: Mapping, with_mask: bool) -> None:
        """Slot s of game b was truncated: keep the observation it got at the cut."""
        self._truncated[b, s] = True
        self._ep_survived[b, s] = True
        self._write_slot(b, s, obs, self._final_rows[b][s], self._final_mask_rows[b][s],
                         with_mask)
        self._final_written.append((b, s))

    def _clear_finals(self) -> None:
        for b, s in self._final_written:
            self._final_rows[b][s].fill(0.0)
            self._final_mask_rows[b][s].fill(True)
        self._final_written.clear()
        self._truncated.fill(False)

    def _add_rewards(self, b: int, rewards: Mapping) -> None:
        """Add a step's rewards (agents of other names ignored) to game b's slots and team
        returns. The agents' order of the last call is kept: a game that reports the same
        agents in the same order again costs one vectorised add."""
        key = tuple(rewards)
        if key != self._rewards_key:
            slots = np.array([self._slot_of.get(a, -1) for a in key], np.int64)
            known = slots >= 0
            self._rewards_key = key
            self._rewards_at = (known, slots[known], self.slot_team[slots[known]])
        known, slots, teams = self._rewards_at
        if not len(slots):
            return
        try:
            values = np.fromiter(rewards.values(), np.float64, len(key))[known]
        except (TypeError, ValueError):  # None, a one-value array, or not a number
            values = self._reward_values(b, rewards)[known]
        self._rewards[b, slots] += values  # an agent once per step: no repeated index
        self._ep_return[b] += np.bincount(teams, weights=values,
                                          minlength=self._ep_return.shape[1])

    def _reward_values(self, b: int, rewards: Mapping) -> np.ndarray:
        """A step's rewards one by one: None counts 0, a one-value array its value; anything
        else that is not a number is an error naming the agent."""
        out = np.zeros(len(rewards))
        for j, (a, r) in enumerate(rewards.items()):
            if r is None:
                continue
            try:
                out[j] = float(np.asarray(r, np.float64).item())
            except (TypeError, ValueError):
                raise ValueError(f"{self._where}: game {b} gave agent {a!r} the reward {r!r}; "
                                 "a reward must be a number") from None
        return out

    def _add_events(self, b: int, agent: str, infos: Any) -> None:
        info = infos.get(agent) if isinstance(infos, Mapping) else None
        ev = info.get("events") if isinstance(info, Mapping) else None
        if isinstance(ev, Mapping):
            row, ev_index = self._events[b, self._slot_of[agent]], self._event_index
            for k, v in ev.items():
                e = ev_index.get(k)
                if e is not None:
                    row[e] = v

    def _live(self, env: Any, terms: Mapping | None = None,
              truncs: Mapping | None = None) -> set[str]:
        """Agents of `env.agents` neither terminated nor truncated (per the given dicts)."""
        live = set(env.agents)
        if not live <= self._slot_of.keys():
            a = next(a for a in env.agents if a not in self._slot_of)
            raise ValueError(f"{self._where}: agent {a!r} is not one of "
                             f"possible_agents {self.slot_agents}")
        if terms is not None:
            for ended in (terms, truncs):
                if any(ended.values()):
                    live.difference_update([a for a, t in ended.items() if t])
        return live

    def _reset_game(self, b: int) -> None:
        self._ep_return[b] = 0.0
        self._ep_survived[b] = False
        self._ep_len[b] = 0
        self._reset_env(b)
        if not self._next_active[b].any():
            raise ValueError(f"{self._where}: game {b} has no agents after reset()")

    def _winner(self, b: int, infos: Mapping) -> int:
        for info in infos.values():
            if isinstance(info, Mapping) and "winner" in info:
                w = info["winner"]
                if w is None:
                    return -1
                if isinstance(w, str) and w in self.team_names:
                    return self.team_names.index(w)
                if isinstance(w, numbers.Integral) and not isinstance(w, bool) \
                        and -1 <= w < len(self.team_names):
                    return int(w)
                raise ValueError(
                    f"{self._where}: infos 'winner' must be a team name "
                    f"{self.team_names}, a team index or None, got {w!r}")
        if self.outcome == "survivors":
            survived = self._ep_survived[b]
            if not self._truncated[b].any():
                # the game ended by its own rule: everyone left was terminated at once;
                # `_alive` still holds who was in the game going into the final step
                survived = survived | self._alive[b]
            ret = np.bincount(self.slot_team[survived], minlength=len(self.team_names))
        else:
            ret = self._ep_return[b]
        best = np.flatnonzero(ret == ret.max())
        return int(best[0]) if best.size == 1 else -1

    # ------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> VecStep:
        self._base_seed = _check_seed(type(self).__name__, seed)
        self._episode.fill(0)
        self._over.fill(False)
        self._clear_finals()
        for b in range(self.num_games):
            self._reset_game(b)
        self._rewards.fill(0.0)
        self._dones.fill(False)
        self._events.fill(0.0)
        self._winners.fill(-1)
        self._lengths.fill(0)
        np.copyto(self._active, self._next_active)
        return self._step_result

    def step(self, actions: np.ndarray) -> VecStep:
        if self._base_seed is None:
            raise RuntimeError(f"{self._where}.step called before reset()")
        actions = self._check_actions(actions)
        bad = self._next_active & ((actions < 0) | (actions >= self._slot_n))
        if bad.any():
            b, s = map(int, np.argwhere(bad)[0])
            raise ValueError(
                f"{self._where}.step: action {int(actions[b, s])} of game {b} "
                f"slot {s} ({self.slot_agents[s]!r}) is outside 0..{self._slot_n[s] - 1}")
        np.copyto(self._active, self._next_active)
        self._rewards.fill(0.0)
        self._events.fill(0.0)
        self._dones.fill(False)
        self._winners.fill(-1)
        self._clear_finals()
        for b in range(self.num_games):
            if self._over[b]:
                continue
            final_infos = self._step_game(b, actions[b])
            self._ep_len[b] += 1
            self._lengths[b] = self._ep_len[b]
            if final_infos is None:
                continue
            self._dones[b] = True
            self._winners[b] = self._winner(b, final_infos)
            self._episode[b] += 1
            if self.autoreset:
                self._reset_game(b)
            else:  # the env keeps its final state (to render it); nothing acts in it
                self._over[b] = True
                self._next_active[b] = False
        return self._step_result

    def close(self) -> None:
        for env in self.envs:
            env.close()


class ParallelVec(_EnvVec):
    """B instances of any ParallelEnv from `games.make`, stepped in a Python loop."""

    def _check_kind(self, env: Any) -> None:
        if isinstance(env, AECEnv):
            raise ValueError(f"{self._where}: the game is turn-based (an AECEnv); "
                             "make_vec steps it with AECVec")

    def _probe_infos(self, probe: Any) -> Iterator[Any]:
        obs, infos = probe.reset(seed=0)
        yield infos
        if probe.agents:
            yield probe.step({a: self._first_legal(self._slot_of[a], obs.get(a))
                              for a in probe.agents if a in self._slot_of})[4]

    def _reset_env(self, b: int) -> None:
        env = self.envs[b]
        obs, _ = env.reset(seed=self._episode_seed(b))
        self._write_obs(b, obs, self._live(env), None)

    def _step_game(self, b: int, act_row: np.ndarray) -> Mapping | None:
        env = self.envs[b]
        values = (act_row + self._slot_start_arr).tolist()
        active = self._active[b].tolist()
        acts = {a: values[s] for s, a in enumerate(self.slot_agents) if active[s]}
        obs, rewards, terms, truncs, infos = env.step(acts)
        self._add_rewards(b, rewards)
        if self._event_index:
            for a in acts:
                self._add_events(b, a, infos)
        if any(truncs.values()):
            for a in acts:
                if truncs.get(a, False) and not terms.get(a, False):
                    self._write_final(b, self._slot_of[a], obs, True)
        live = self._live(env, terms, truncs)
        if live:
            self._write_obs(b, obs, live, None)
            return None
        return infos if isinstance(infos, Mapping) else {}


class AECVec(_EnvVec):
    """B instances of a turn-based AECEnv from `games.make`, stepped in a Python loop.

    Only `agent_selection` acts in a game; the others wait and observe (see the module
    docstring for the rules).
    """

    def _check_kind(self, env: Any) -> None:
        if not isinstance(env, AECEnv):
            raise ValueError(f"{self._where}: expected a turn-based game (an AECEnv), got "
                             f"{type(env).__name__}; make_vec steps it with ParallelVec")

    def _probe_infos(self, probe: Any) -> Iterator[Any]:
        probe.reset(seed=0)
        yield probe.infos
        agent = probe.agent_selection
        if agent in self._slot_of and agent in probe.agents:
            probe.step(self._first_legal(self._slot_of[agent], probe.observe(agent)))
            yield probe.infos

    def _observe_live(self, b: int, env: Any, live: set[str]) -> None:
        acting = env.agent_selection
        if acting not in live:
            raise ValueError(f"{self._where}: game {b}: agent_selection {acting!r} is not a "
                             f"live agent ({sorted(live)})")
        self._write_obs(b, {a: env.observe(a) for a in live}, live, acting)

    def _reset_env(self, b: int) -> None:
        env = self.envs[b]
        env.reset(seed=self._episode_seed(b))
        self._observe_live(b, env, self._live(env, env.terminations, env.truncations))

    def _step_game(self, b: int, act_row: np.ndarray) -> Mapping | None:
        env = self.envs[b]
        acting = env.agent_selection
        s = self._slot_of[acting]
        # agents in the episode before this step, to see who leaves (and how) in it
        staying = [a for a, alive in zip(self.slot_agents, self._alive[b]) if alive]
        env.step(int(act_row[s]) + self._slot_start[s])
        self._add_rewards(b, env.rewards)
        if self._event_index:
            self._add_events(b, acting, env.infos)
        for _ in range(len(self.slot_agents) + 1):
            terms, truncs = env.terminations, env.truncations
            live = self._live(env, terms, truncs)
            for a in [a for a in staying if a not in live]:
                staying.remove(a)
                if truncs.get(a, False) and not terms.get(a, False):
                    self._write_final(b, self._slot_of[a], {a: env.observe(a)},
                                      a == env.agent_selection)
            if not live:
                return env.infos if isinstance(env.infos, Mapping) else {}
            if env.agent_selection in live:
                self._observe_live(b, env, live)
                return None
            env.step(None)  # PettingZoo's dead step: the selected agent leaves the game
            self._add_rewards(b, env.rewards)
        raise ValueError(
            f"{self._where}: game {b}: agent_selection {env.agent_selection!r} is still "
            f"terminated or truncated after {len(self.slot_agents)} dead steps")


def merged_role_name(teams: Sequence[str]) -> str:
    """The name of a role shared by `teams`: their names joined with "+" in team order, or
    "<first>..<last>" where that would be longer than MAX_MERGED_ROLE_NAME characters."""
    name = MERGED_ROLE_SEP.join(teams)
    if len(name) > MAX_MERGED_ROLE_NAME:
        name = f"{teams[0]}..{teams[-1]}"
    return name


def _declared_entity_layout(where: str, env: Any, agent: str,
                            obs_dim: int) -> tuple[int, int, int] | None:
    """A game may declare its observation as [flat | entity rows] for the entity encoder:
    `entity_layout` = (flat_dim, num_entities, entity_dim), or a callable agent -> that (or
    None). Checked against the agent's flattened observation size."""
    declared = getattr(env, "entity_layout", None)
    if callable(declared):
        declared = declared(agent)
    if declared is None:
        return None
    try:
        flat, n, dim = (int(x) for x in declared)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: entity_layout must be (flat_dim, num_entities, entity_dim), "
                         f"got {declared!r}") from None
    if min(flat, n, dim) < 0 or dim < 1 or flat + n * dim != obs_dim:
        raise ValueError(f"{where}: entity_layout {declared!r} of agent {agent!r} does not "
                         f"split its {obs_dim} observations (flat_dim + num_entities x "
                         f"entity_dim must equal it)")
    return flat, n, dim


# ========================================================================================
def make_vec(name: str, num_games: int, **kwargs: Any) -> VecGame:
    """`num_games` games called `name` as one `VecGame`.

    A game that registered its own vectoriser gets it (the MOBA: `games.moba.vec.MobaVec`,
    kwargs its config options, or `config=`); every other name is made once with
    `games.make(name, **kwargs)` to see its kind: a turn-based
    `AECEnv` gives an `AECVec`, anything else a `ParallelVec` (plus the optional `roles=`,
    `event_names=` and `outcome=`, see the module docstring). `autoreset=False` (any game):
    a game that ends keeps its final state and sits still (its actions ignored, no rewards;
    count it at its first `dones`, which the MOBA keeps reporting) until the next `reset`:
    for matches that play each game once, and for rendering the last frame.

    `threads=N` (default 1): a registered vectoriser takes it itself (the MOBA: `MobaCore`'s
    numba threads). For any other game, N > 1 gives a `games.procvec.ProcVec`: the same batch stepped in
    min(N, num_games) worker processes that write into shared memory, with exactly the
    in-process results per seed (and `step_async`/`wait` to step half the games while the
    caller infers the other half; `split=2` lays the workers out so that the halves are the
    same games whatever their number); threads=1 keeps the in-process vec (for debugging).
    """
    from games.registry import resolve, vectorizer_path

    own = vectorizer_path(name)
    if own is not None:  # a game with its own batched implementation (the MOBA's MobaVec)
        return resolve(own, what=f"vectoriser of game {name!r}")(num_games, **kwargs)
    import games

    where = f"make_vec({name!r})"
    _check_num_games(where, num_games)
    threads = kwargs.pop("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"{where}: threads must be an int >= 1, got {threads!r}")
    split = kwargs.pop("split", 1)
    if threads > 1:
        from games.procvec import ProcVec

        return ProcVec(name, num_games, workers=min(int(threads), num_games), split=split,
                       **kwargs)
    if split != 1:
        raise ValueError(f"{where}: split={split!r} needs threads >= 2 (worker processes)")
    game_kwargs = {k: v for k, v in kwargs.items()
                   if k not in (*VEC_OPTIONS, "autoreset", "game_offset")}
    first = games.make(name, **game_kwargs)
    cls = AECVec if isinstance(first, AECEnv) else ParallelVec
    return cls(name, num_games, _first=first, **kwargs)
