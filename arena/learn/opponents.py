"""Who plays the other side: the latest policy (a mirror game) or a frozen past snapshot.

OpenAI Five played the latest policy against itself 80% of the time and a past version
20% of the time. Here every game of the batch draws its opponent at the start of each
episode from the league pool of the opponent team's role (league/pool.py): `None` means
the latest policy (both sides train), a snapshot means the learner's side trains alone
while the other side is played by that frozen network. Games facing the same snapshot are
run through it in one batched forward pass, each opponent row with its own LSTM state,
reset with the episode. Results against snapshots go back to the pool (quality scores).

Scripted bots (those the game offers in its registry entry, and `random`, which every game
has) can join the league as fixed opponents:
with probability `bot_prob` a game faces one of `bots`, drawn uniformly, instead. The
league then keeps meeting play it would otherwise have to discover by self-play alone
(AlphaStar's league kept fixed exploiters for the same reason).

With league exploiters (league/exploiters.py) the batch is split into blocks of games, one
per learning agent; an exploiter's games face the current main (live weights, not trained
there) or PFSP-drawn snapshots, and the main's past opponents include the live exploiters.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from agents.policy import RecurrentPolicy
from agents.policy_stack import PolicyStack, architecture
from arena.learn.surgery import snapshot_arch, snapshot_policy
from arena.play.runner import sample_actions
from games.bots import bot_act, team_columns
from games.registry import make_side_bots
from games.vector import VecGame
from league.exploiters import MAIN, Exploiter
from league.pool import OpponentPool, pfsp_weights

State = tuple[torch.Tensor, torch.Tensor]


@dataclass
class _Plan:
    """Who plays a group's rows of some games, as long as their opponents stay the same:
    the rows the learner does not play, and per bot, stack of snapshots and live network
    its rows (numpy and as a tensor on the device)."""

    played: np.ndarray
    bots: list[tuple[tuple[str, str], np.ndarray, torch.Tensor, np.ndarray]] = field(
        default_factory=list)  # (bot key, rows, index, each row's agent in its team)
    stacks: list = field(default_factory=list)  # (stack, rows, index)
    lives: list[tuple[int, np.ndarray, torch.Tensor]] = field(default_factory=list)


class OpponentManager:
    def __init__(self, vec: VecGame, groups, pools: dict[str, OpponentPool],
                 build: Callable[[str], RecurrentPolicy], module_key: Callable[[str], str],
                 seed: int, device: torch.device, max_cached: int = 8,
                 bots: list[str] | tuple[str, ...] = (), bot_prob: float = 0.0,
                 game: str = "", agents: Sequence[tuple[str, int, int]] = (),
                 live: Mapping[str, Mapping[str, RecurrentPolicy]] | None = None,
                 exploiters: Sequence[Exploiter] = ()) -> None:
        teams = np.unique(vec.slot_team)
        if len(teams) != 2:
            raise ValueError(f"league: needs a game with exactly two teams, got {len(teams)}")
        self.vec = vec
        self.groups = groups
        self.pools = pools  # role name -> pool of that role's snapshots
        self.build = build  # group key -> a fresh policy of that group's shape
        self.module_key = module_key
        self.device = device
        self.rng = np.random.default_rng(seed)
        self.max_cached = max_cached
        B = vec.num_games
        self.learner_team = np.zeros(B, np.int64)
        self.snapshot = np.full(B, -1, np.int64)  # per game: snapshot id, -1 = none
        self.bot = np.full(B, -1, np.int64)  # per game: index into bot_names, -1 = none
        # a team's roles (one unless its agents are of several kinds); all of a team's roles
        # snapshot together under one id, so the first role's pool draws for the team
        self.team_roles = {int(t): [vec.roles[int(r)].name for r in dict.fromkeys(
            vec.slot_role[vec.slot_team == t].tolist())] for t in teams}
        self._models: OrderedDict[tuple[str, int], dict[str, RecurrentPolicy]] = OrderedDict()
        self._state: dict[str, State] = {}
        self._stacks: dict[tuple, PolicyStack] = {}  # (group key, architecture) -> its stack
        self._stack_of: dict[tuple[str, int], PolicyStack] = {}  # (group key, snapshot) -> stack
        self._plans: dict[tuple, tuple[bytes, _Plan]] = {}  # (group, games) -> who, plan
        self.games_vs_snapshots = 0
        self.games_vs_bots = 0
        self.games_total = 0
        self.bot_prob = float(bot_prob)
        self.bot_names = tuple(bots)
        if self.bot_prob > 0 and not self.bot_names:
            raise ValueError("league.bots: bot_prob > 0 needs at least one bot")
        # one bot object per (bot, role): a bot reads the observations of one role
        self.bots: dict[tuple[str, str], object] = {}
        if self.bot_prob > 0:
            self.bots = {(name, role): bot for i, name in enumerate(self.bot_names) for role, bot
                         in make_side_bots(game, name, vec, seed=seed + 101 * i).items()}
        self._bot_results: dict[str, list[float]] = {name: [0.0, 0] for name in self.bot_names}
        # League roles (league/exploiters.py): the learning agent of each game (0: the main,
        # k: exploiter k-1), fixed by the collector's game blocks; `live` holds every
        # agent's current networks, which play as opponents without training there.
        self.exploiters = list(exploiters)
        names = [MAIN] + [e.name for e in self.exploiters]
        self.game_agent = np.zeros(B, np.int64)
        for name, b0, b1 in agents:
            self.game_agent[b0:b1] = names.index(name)
        self.live_models = [dict((live or {}).get(name, {})) for name in names]
        if self.exploiters and any(not m for m in self.live_models):
            raise ValueError("league exploiters: every learning agent needs its live networks")
        self.live = np.full(B, -1, np.int64)  # per game: agent index of a live opponent

    # ---- assignment ------------------------------------------------------------------------
    def assign(self, games: np.ndarray) -> None:
        """Draw the opponent of each listed game for its next episode.

        The main's games: a bot with probability bot_prob, else the latest policy (a mirror
        game) or a past snapshot from the opponent role's pool — with exploiters, the past
        opponent is drawn by PFSP over the pool's snapshots and the live exploiters. A main
        exploiter's games: the current main. A league exploiter's: a snapshot drawn by PFSP
        on its own results (the current main while the pool is empty)."""
        for b in games:
            learner_team = int(self.rng.integers(0, 2))
            self.learner_team[b] = learner_team
            self.snapshot[b] = self.bot[b] = self.live[b] = -1
            pool = self.pools[self.team_roles[1 - learner_team][0]]
            agent = int(self.game_agent[b])
            if agent > 0:
                exploiter = self.exploiters[agent - 1]
                if exploiter.kind == "main_exploiter" or not len(pool):
                    self.live[b] = 0
                else:
                    ids = [s.id for s in pool.snapshots]
                    p = exploiter.pfsp(ids, pool.pfsp_weighting, pool.pfsp_p)
                    self.snapshot[b] = ids[int(self.rng.choice(len(ids), p=p))]
                continue
            if self.bot_prob > 0 and self.rng.random() < self.bot_prob:
                self.bot[b] = int(self.rng.integers(0, len(self.bot_names)))
                continue
            if not self.exploiters:
                snap = pool.sample(self.rng)
                self.snapshot[b] = -1 if snap is None else snap.id
                continue
            if self.rng.random() < pool.latest_prob:
                continue
            self._draw_past_or_exploiter(b, pool)

    def _draw_past_or_exploiter(self, b: int, pool: OpponentPool) -> None:
        """PFSP over the pool's snapshots and the live exploiters, on the main's results."""
        x = [s.score / s.games if s.games else np.nan for s in pool.snapshots]
        x += [np.nan if e.main_win_rate() is None else e.main_win_rate()
              for e in self.exploiters]
        k = int(self.rng.choice(len(x), p=pfsp_weights(np.array(x, np.float64),
                                                       pool.pfsp_weighting, pool.pfsp_p)))
        if k < len(pool):
            self.snapshot[b] = pool.snapshots[k].id
        else:
            self.live[b] = k - len(pool) + 1

    def start(self, num_rows: dict[str, int]) -> None:
        """A fresh batch of games: opponents for all of them, zero opponent LSTM states."""
        self.assign(np.arange(self.vec.num_games))
        for g in self.groups:
            policy = self.build(g.key)
            self._state[g.key] = policy.initial_state(num_rows[g.key], self.device)

    def finish(self, games: np.ndarray, winners: np.ndarray) -> None:
        """Report finished games to the pools, then draw the next opponents."""
        for b, w in zip(games, winners):
            snap = int(self.snapshot[b])
            score = 1.0 if w == self.learner_team[b] else (0.5 if w < 0 else 0.0)
            agent = int(self.game_agent[b])
            if agent > 0:  # an exploiter's game: its own results, not the pool's
                self.exploiters[agent - 1].record(score, snap if snap >= 0 else None)
                continue
            self.games_total += 1
            if self.live[b] > 0:
                self.exploiters[int(self.live[b]) - 1].record_main(score)
            elif snap >= 0:
                self.games_vs_snapshots += 1
                for role in self.team_roles[1 - int(self.learner_team[b])]:
                    self.pools[role].record(snap, score)
            elif self.bot[b] >= 0:
                self.games_vs_bots += 1
                result = self._bot_results[self.bot_names[int(self.bot[b])]]
                result[0] += score
                result[1] += 1
        self.assign(games)

    # ---- acting ------------------------------------------------------------------------------
    def models(self, snap: int, role: str) -> dict[str, RecurrentPolicy]:
        """The frozen networks of a snapshot, by group key (cached, most recent kept)."""
        key = (role, snap)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        weights = self.pools[role].load_weights(snap)
        stored = self.pools[role].load_arch(snap)  # its own architecture (None: old snapshot)
        models = {}
        for g in self.groups:
            if g.role.name != role:
                continue
            mk = self.module_key(g.key)
            policy = snapshot_policy(group_weights(weights, mk), snapshot_arch(stored, mk),
                                     g.role, lambda g=g: self.build(g.key),
                                     where=f"snapshot {snap} of role {role!r}")
            models[g.key] = policy.to(self.device).eval()
        self._models[key] = models
        while len(self._models) > self.max_cached:
            self._models.popitem(last=False)
        return models

    def _plan(self, g, games: slice) -> _Plan:
        """Who plays group g's rows of `games`, kept while those games' opponents stay the
        same (they change only between episodes, so a step reuses the last step's plan)."""
        games = slice(*games.indices(self.vec.num_games))
        who = (self.learner_team[games], self.snapshot[games], self.bot[games],
               self.live[games])
        signature = b"".join(x.tobytes() for x in who)
        key = (g.key, games.start, games.stop)
        cached = self._plans.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        n, B = len(g.slots), games.stop - games.start
        slot_team = np.asarray(self.vec.slot_team)[list(g.slots)]  # (n,)
        other_side = slot_team[None, :] != who[0][:, None]
        opp_rows, bot_rows, live_rows = (((x[:, None] >= 0) & other_side).reshape(B * n)
                                         for x in who[1:])

        def rows_of(select: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
            rows = np.flatnonzero(select)
            return rows, torch.from_numpy(rows).to(self.device)

        plan = _Plan(played=opp_rows | bot_rows | live_rows)
        columns = np.tile(team_columns(self.vec.slot_team)[list(g.slots)], B)
        bots = np.repeat(who[2], n)
        for i in np.unique(bots[bot_rows]).tolist():
            rows, idx = rows_of(bot_rows & (bots == i))
            plan.bots.append(((self.bot_names[i], g.role.name), rows, idx, columns[rows]))
        snaps = np.repeat(who[1], n)
        for s in np.unique(snaps[opp_rows]).tolist():  # each stack of snapshots: one forward
            stack = self._stack(g, s)
            known = [k for k, (st, _) in enumerate(plan.stacks) if st is stack]
            if not known:
                plan.stacks.append((stack, [s]))
            else:
                plan.stacks[known[0]][1].append(s)
        plan.stacks = [(stack, *rows_of(opp_rows & np.isin(snaps, ids)))
                       for stack, ids in plan.stacks]
        lives = np.repeat(who[3], n)
        for agent in np.unique(lives[live_rows]).tolist():  # each live network alone
            plan.lives.append((agent, *rows_of(live_rows & (lives == agent))))
        self._plans[key] = (signature, plan)
        return plan

    def played(self, g, games: slice = slice(None)) -> np.ndarray:
        """The (rows,) bool array of group g's rows of `games` that the learner does not
        play (their actions are `override`'s): a collector need not infer them."""
        return self._plan(g, games).played

    @torch.inference_mode()
    def override(self, g, obs: torch.Tensor, mask: torch.Tensor, starts: torch.Tensor,
                 action: torch.Tensor, generator: torch.Generator,
                 games: slice = slice(None)) -> np.ndarray:
        """Replace the actions of opponent rows in snapshot and bot games (in place);
        returns the (rows,) bool array of rows the learner trains on in this group. The
        rows are those of `games` (a collector that infers half of its games at a time)."""
        games = slice(*games.indices(self.vec.num_games))
        n = len(g.slots)
        plan = self._plan(g, games)
        for bot, rows, idx, agents in plan.bots:
            picks = bot_act(self.bots[bot], obs.index_select(0, idx).cpu().numpy(),
                            mask.index_select(0, idx).cpu().numpy(), agents)
            action[idx] = torch.from_numpy(np.asarray(picks, np.int64)).to(action.device)
        # who plays which rows: each stack of snapshots in one forward, each live network alone
        plays: list[tuple[np.ndarray, torch.Tensor, PolicyStack | RecurrentPolicy,
                          np.ndarray | None]] = []
        snaps = np.repeat(self.snapshot[games], n)
        for stack, rows, idx in plan.stacks:
            slots = stack.slots(snaps[rows].tolist(), lambda snap: self.models(
                int(snap), g.role.name)[g.key])
            plays.append((rows, idx, stack, slots))
        plays += [(rows, idx, self.live_models[agent][g.key], None)
                  for agent, rows, idx in plan.lives]
        h, c = self._state[g.key]  # a step starts a row afresh with its episode
        w = max((p.lstm_hidden for _, _, p, _ in plays), default=0)
        if w > h.shape[1]:  # a snapshot from before a surgery may be narrower, or wider
            h, c = (torch.nn.functional.pad(x, (0, w - x.shape[1])) for x in (h, c))
            self._state[g.key] = (h, c)
        h, c = h[games.start * n:games.stop * n], c[games.start * n:games.stop * n]  # views
        for rows, idx, player, slots in plays:
            w = player.lstm_hidden
            # index_select/index_copy_: a few times cheaper than indexing with a tensor
            state = (h.index_select(0, idx)[:, :w], c.index_select(0, idx)[:, :w])
            rows_of = (obs.index_select(0, idx), state, starts.index_select(0, idx),
                       mask.index_select(0, idx))
            if slots is not None:
                logits, (nh, nc) = player.step(slots, *rows_of)
            else:
                logits, _, (nh, nc) = player.step(*rows_of)
            picks = sample_actions(torch.softmax(logits.float(), dim=-1), generator,
                                   self.device)  # the policy masked its logits
            action.index_copy_(0, idx.to(action.device), picks.to(action.device))
            if w < h.shape[1]:  # a narrower snapshot's rows: the rest of the width is 0
                nh, nc = (torch.nn.functional.pad(x, (0, h.shape[1] - w)) for x in (nh, nc))
            h.index_copy_(0, idx, nh.to(h.dtype))
            c.index_copy_(0, idx, nc.to(c.dtype))
        return ~plan.played

    def _stack(self, g, snap: int) -> PolicyStack:
        """The stack that plays snapshot `snap` in group `g`: one per architecture (a
        snapshot from before a surgery has its own), slots loaded as snapshots come into
        play."""
        key = (g.key, snap)
        if key not in self._stack_of:
            policy = self.models(snap, g.role.name)[g.key]
            arch = (g.key, architecture(policy))
            if arch not in self._stacks:
                self._stacks[arch] = PolicyStack(policy, capacity=self.max_cached)
            self._stack_of[key] = self._stacks[arch]
        return self._stack_of[key]

    # ---- logging -------------------------------------------------------------------------------
    def take_bot_results(self) -> dict[str, tuple[float, int]]:
        """(score, games) against each bot since the last call."""
        out = {name: (r[0], int(r[1])) for name, r in self._bot_results.items() if r[1]}
        for r in self._bot_results.values():
            r[0], r[1] = 0.0, 0
        return out

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.games_total:
            out["league/games_vs_snapshots_fraction"] = self.games_vs_snapshots / self.games_total
            if self.bot_names:
                out["league/games_vs_bots_fraction"] = self.games_vs_bots / self.games_total
        for name, (score, games) in self.take_bot_results().items():  # since the last call
            out[f"league/win_rate_vs_bot/{name}"] = score / games
        for e in self.exploiters:
            if e.recent_win_rate() is not None:  # against the main, or the pool (league exploiter)
                what = "win_rate_vs_main" if e.kind == "main_exploiter" else "win_rate_vs_pool"
                out[f"league/{e.name}/{what}"] = e.recent_win_rate()
            if e.main_win_rate() is not None:
                out[f"league/main/win_rate_vs/{e.name}"] = e.main_win_rate()
            out[f"league/{e.name}/resets"] = float(e.resets)
            out[f"league/{e.name}/updates_since_reset"] = float(e.updates_since_reset)
        out.update(pool_metrics(self.pools))
        return out


def group_weights(weights: dict[str, torch.Tensor], module_key: str) -> dict[str, torch.Tensor]:
    """One policy's state_dict out of the learner's weights (keys `policies.<module_key>.*`)."""
    prefix = f"policies.{module_key}."
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


def pool_metrics(pools: dict[str, OpponentPool]) -> dict[str, float]:
    """Pool size, quality scores and the latest policy's results against each snapshot."""
    out: dict[str, float] = {}
    for role, pool in pools.items():
        prefix = "league" if len(pools) == 1 else f"league/{role}"
        out[f"{prefix}/pool_size"] = float(len(pool))
        for snap in pool.snapshots:
            out[f"{prefix}/quality/{snap.id:04d}"] = float(snap.quality)
            if snap.games:
                out[f"{prefix}/win_rate_vs/{snap.id:04d}"] = snap.score / snap.games
    return out
