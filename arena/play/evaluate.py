"""Win rates of the learner's latest policy against fixed references, for any game.

The references are the game's scripted bots (games/registry.py: `random`, which every game
has, and the bots a game registers), as OpenAI Five measured itself against fixed
reference agents. An evaluation plays its references (the bots, then the league snapshots)
side by side in one batch of fresh games through the one policy runner
(arena/play/runner.py), a block of games per reference: the learner plays team b % T of the
block's game b (so every team in turn; in a game of more teams than games, from a seat that
moves with the evaluation's seed), sampling from its policy with its own seeded
generator; a draw counts half. The learner makes one forward pass per step for all the
games of all references, and the game steps them all at once: references played one after
another cost the learner a pass per reference per step, and the slowest reference's games
set the length of the batch either way. Likewise, the league snapshots among the references
make one forward pass per step between them (arena/play/runner.StackedRunner).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from arena.play.runner import BotSide, PolicyRunner, StackedRunner, play_games
from games.registry import bot_names, make_side_bots, parse_bot
from games.vector import VecGame, make_vec

if TYPE_CHECKING:
    from arena.learn.learner import PPOLearner


def _games(vec_teams: int, games: int) -> int:
    """`games` rounded up to a multiple of the number of teams (each team played equally),
    or `games` itself in a game of more teams than that (hundreds of one-agent teams):
    there, the learner's seats rotate from one evaluation to the next instead."""
    if vec_teams > games:
        return max(games, 1)
    return -(-games // vec_teams) * vec_teams


@dataclass(frozen=True)
class Frozen:
    """An opponent of `play_references` played by frozen networks (a league snapshot),
    `policy_for(group key)`: all of an evaluation's frozen opponents act in one forward
    pass per step (arena/play/runner.StackedRunner)."""

    policy_for: Callable[[str], Any]


@torch.inference_mode()
def play_references(learner: PPOLearner,
                    opponents: list[tuple[str, Callable[[VecGame], Any] | Frozen]],
                    games: int, seed: int,
                    vecs: dict[int, VecGame] | None = None) -> dict[str, np.ndarray]:
    """The learner's score per game (1 win, 0.5 draw, 0 loss) against each opponent, all
    played in one batch: `opponents` are (name, side(vec)) with a side as
    arena/play/runner.play_games takes it, or (name, Frozen(policy_for)); opponent k plays
    the k-th block of `games` games, game j of a block with the learner as team (j + r) % T (r = 0 when `games` is a
    multiple of the T teams, else seed % T, so that evaluations with different seeds seat
    it at different teams). `vecs` caches the batch between calls (by its number of games;
    one batch: a batch of another size, once the league has more snapshots to play,
    replaces it)."""
    if not opponents:
        return {}
    cfg = learner.cfg
    T = len(learner.team_names)
    block = int(games)
    B = block * len(opponents)
    vec = (vecs or {}).get(B)
    if vec is None:
        if vecs:  # games of a third-party batch can hold much memory: one batch at a time
            for old in vecs.values():
                old.close()
            vecs.clear()
        vec = make_vec(cfg.game.name, B, **cfg.game.options)
        if vecs is not None:
            vecs[B] = vec
    r = 0 if block % T == 0 else seed % T
    me = PolicyRunner(vec, learner.groups, learner.policy_for, seed=seed, device=learner.device)
    sides, side_of = [me], np.zeros(len(opponents), np.int64)
    frozen = [k for k, (_, side) in enumerate(opponents) if isinstance(side, Frozen)]
    for k, (_, side) in enumerate(opponents):
        if not isinstance(side, Frozen):
            side_of[k] = len(sides)
            sides.append(side(vec))
    if frozen:  # every frozen reference on one side: one forward pass per step
        owner = np.full(len(opponents), -1, np.int64)
        owner[frozen] = np.arange(len(frozen))
        side_of[frozen] = len(sides)
        sides.append(StackedRunner(vec, learner.groups,
                                   [opponents[k][1].policy_for for k in frozen],
                                   np.repeat(owner, block), seed=seed + 1,
                                   device=learner.device))
    seats = np.repeat(side_of, block)[:, None].repeat(T, 1)
    seats[np.arange(B), (np.arange(B) % block + r) % T] = 0
    scores = play_games(vec, sides, seats, seed).scores(seats, 0)
    return {name: scores[k * block:(k + 1) * block] for k, (name, _) in enumerate(opponents)}


def bot_opponents(game: str, bots: list[str], seed: int
                  ) -> list[tuple[str, Callable[[VecGame], Any]]]:
    """The game's scripted `bots` as opponents of `play_references`, bot i seeded seed + 1 + i."""
    return [(name, lambda vec, name=name, i=i: BotSide(vec, make_side_bots(game, name, vec,
                                                                             seed=seed + 1 + i)))
            for i, name in enumerate(bots)]


def play_vs_bots(learner: PPOLearner, bots: list[str], games_per_side: int, seed: int,
                 vecs: dict[int, VecGame] | None = None) -> dict[str, np.ndarray]:
    """The learner's score per game against each bot: T x `games_per_side` games per bot,
    game b of a bot's block with the learner as team b % T (play_references)."""
    return play_references(learner, bot_opponents(learner.cfg.game.name, bots, seed),
                           len(learner.team_names) * games_per_side, seed, vecs)


class BotEvaluator:
    """Called by the learner every `eval.every` updates; returns metrics to log: the win
    rate against each bot and against two league snapshots (the newest and a random one), and a rating of the latest policy on the bots' fixed
    scale (league/ratings.py, anchors from the game's registry entry), which makes the
    rating curve in TensorBoard. The rating table (an entry per evaluation and per snapshot
    played) is kept in the learner's checkpoints."""

    def __init__(self, bots: list[str] | None, games: int, seed: int,
                 game: str | None = None, panel_every: int = 10, panel_size: int = 4) -> None:
        if game is not None and bots is not None:
            for b in bots:  # names or composite specs of the game's bots
                try:
                    parse_bot(game, b)
                except ValueError as exc:
                    raise ValueError(f"eval.bots: {exc}") from None
        self.bots = None if bots is None else list(bots)
        self.games = games
        self.seed = seed
        self.panel_every, self.panel_size = panel_every, panel_size
        self._vecs: dict[int, VecGame] = {}

    def games_per_reference(self, learner: PPOLearner) -> int:
        return _games(max(len(learner.team_names), 1), self.games)

    def snapshot_opponents(self, learner: PPOLearner) -> list[tuple[str, Frozen]]:
        """The newest and a random older league snapshot, and the fixed panel, as opponents
        of `play_references` named `snapshot-NNNN` (in a game of several roles a snapshot
        plays with all of its roles' networks, frozen together)."""
        manager = None if learner.collector is None else learner.collector.opponents
        pools = list(learner.pools.values())
        if manager is None or not pools or not all(len(p) for p in pools):
            return []
        # the main's own past (exploiters' snapshots are opponents, not progress marks)
        ids = set.intersection(*({s.id for s in p.snapshots if s.source == "main"}
                                 for p in pools))
        if not ids:
            return []
        ids = sorted(ids)
        rng = np.random.default_rng(self.seed + learner.updates)
        picks = {ids[-1], ids[int(rng.integers(len(ids)))], *self.panel(ids)}
        role_of = {g.key: g.role.name for g in learner.groups}

        def frozen(snap_id: int) -> Frozen:
            return Frozen(lambda key: manager.models(snap_id, role_of[key])[key])

        return [(f"snapshot-{i:04d}", frozen(i)) for i in sorted(picks)]

    def panel(self, ids: list[int]) -> list[int]:
        """The fixed panel among snapshot ids: every `panel_every`-th, the newest
        `panel_size` of them (a member stays until newer ones push it out)."""
        if self.panel_size <= 0:
            return []
        members = [i for i in ids if i % self.panel_every == 0]
        return members[-self.panel_size:]

    def __call__(self, learner: PPOLearner) -> dict[str, float]:
        if len(learner.team_names) < 2:
            return {}  # a one-team game (the memory game) has nobody to play against
        bots = self.bots if self.bots is not None else list(bot_names(learner.cfg.game.name))
        was_training = learner.training
        learner.eval()
        try:
            seed = self.seed + 1000 * learner.updates
            snapshots = self.snapshot_opponents(learner)
            scores = play_references(
                learner, bot_opponents(learner.cfg.game.name, bots, seed) + snapshots,
                self.games_per_reference(learner), seed, vecs=self._vecs)
            out = {f"eval/win_rate_vs_{name}": float(scores[name].mean()) for name in bots}
            played = {int(name[len("snapshot-"):]): scores[name] for name, _ in snapshots}
            for snap_id, s in played.items():
                out[f"eval/win_rate_vs_snapshot/{snap_id:04d}"] = float(s.mean())
            panel = self.panel(sorted(played))
            if panel:  # one curve against the fixed panel of past selves
                out["eval/win_rate_vs_past_panel"] = float(np.mean(
                    [played[i].mean() for i in panel]))
                out["eval/worst_vs_past_panel"] = float(min(played[i].mean() for i in panel))
        finally:
            learner.train(was_training)
        if not scores:  # no bots to play and no snapshots yet
            return out
        me = f"update-{learner.updates:06d}"
        table = learner.ratings
        table.add(me)
        for k in range(max(len(s) for s in scores.values())):  # games interleaved
            for name, s in scores.items():
                if k < len(s):
                    table.update(me, name, float(s[k]))
        mu, sigma = table.rating(me)
        out["eval/rating"] = mu - 3.0 * sigma
        out["eval/rating_mu"] = mu
        return out

    def close(self) -> None:
        for vec in self._vecs.values():
            vec.close()
        self._vecs.clear()
