"""Win rates of the learner's latest policy against fixed references, for any game.

The references are the game's scripted bots (games/registry.py: `random`, which every game
has, and the bots a game registers), as OpenAI Five measured itself against fixed
reference agents. Each evaluation plays a batch of fresh games per bot through the one
policy runner (arena/play/runner.py): the learner plays team b % T of game b (so every team
in turn), sampling from its policy with its own seeded generator; a draw counts half. The
policy makes one forward pass per step for all the games of a bot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from arena.play.runner import BotSide, PolicyRunner, play_against
from games.registry import bot_names, make_side_bots, parse_bot
from games.vector import VecGame, make_vec

if TYPE_CHECKING:
    from arena.learner import PPOLearner


def _games(vec_teams: int, games: int) -> int:
    """At least `games`, a multiple of the number of teams (each team played equally)."""
    return max(vec_teams, -(-games // vec_teams) * vec_teams)


@torch.no_grad()
def play_vs_bots(learner: PPOLearner, bots: list[str], games_per_side: int, seed: int,
                 vecs: dict[str, VecGame] | None = None) -> dict[str, np.ndarray]:
    """The learner's score per game (1 win, 0.5 draw, 0 loss) against each bot: T x
    `games_per_side` games, game b with the learner as team b % T. `vecs` caches the game
    batches between calls (bot name -> VecGame)."""
    cfg = learner.cfg
    out = {}
    for i, name in enumerate(bots):
        vec = (vecs or {}).get(name)
        if vec is None:
            probe_teams = len(learner.team_names)
            vec = make_vec(cfg.game.name, probe_teams * games_per_side, **cfg.game.options)
            if vecs is not None:
                vecs[name] = vec
        me = PolicyRunner(vec, learner.groups, learner.policy_for, seed=seed, device=learner.device)
        side = BotSide(vec, make_side_bots(cfg.game.name, name, vec, seed=seed + 1 + i))
        out[name] = play_against(vec, me, side, seed=seed + 7919 * i)
    return out


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
        self._vecs: dict[str, VecGame] = {}

    def games_per_side(self, learner: PPOLearner) -> int:
        teams = max(len(learner.team_names), 1)
        return _games(teams, self.games) // teams

    def play_snapshots(self, learner: PPOLearner) -> dict[int, np.ndarray]:
        """The latest policy against the newest and a random older league snapshot, each
        playing every team in turn (in a game of several roles a snapshot plays with all of
        its roles' networks, frozen together)."""
        manager = None if learner.collector is None else learner.collector.opponents
        pools = list(learner.pools.values())
        if manager is None or not pools or not all(len(p) for p in pools):
            return {}
        # the main's own past (exploiters' snapshots are opponents, not progress marks)
        ids = set.intersection(*({s.id for s in p.snapshots if s.source == "main"}
                                 for p in pools))
        if not ids:
            return {}
        ids = sorted(ids)
        rng = np.random.default_rng(self.seed + learner.updates)
        picks = {ids[-1], ids[int(rng.integers(len(ids)))], *self.panel(ids)}
        vec = self._vecs.get("snapshot")
        if vec is None:
            vec = self._vecs["snapshot"] = make_vec(
                learner.cfg.game.name, len(learner.team_names) * self.games_per_side(learner),
                **learner.cfg.game.options)
        role_of = {g.key: g.role.name for g in learner.groups}
        out = {}
        for snap_id in sorted(picks):
            def frozen(key: str, snap_id: int = snap_id) -> Any:
                return manager.models(snap_id, role_of[key])[key]

            seed = self.seed + 1000 * learner.updates + 7 * snap_id
            latest = PolicyRunner(vec, learner.groups, learner.policy_for, seed=seed,
                                  device=learner.device)
            past = PolicyRunner(vec, learner.groups, frozen, seed=seed + 1,
                                device=learner.device)
            out[snap_id] = play_against(vec, latest, past, seed=seed)
        return out

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
            scores = play_vs_bots(learner, bots, self.games_per_side(learner),
                                  self.seed + 1000 * learner.updates, vecs=self._vecs)
            out = {f"eval/win_rate_vs_{name}": float(s.mean()) for name, s in scores.items()}
            played = self.play_snapshots(learner)
            for snap_id, s in played.items():
                scores[f"snapshot-{snap_id:04d}"] = s
                out[f"eval/win_rate_vs_snapshot/{snap_id:04d}"] = float(s.mean())
            panel = self.panel(sorted(played))
            if panel:  # one curve against the fixed panel of past selves
                out["eval/win_rate_vs_past_panel"] = float(np.mean(
                    [played[i].mean() for i in panel]))
                out["eval/worst_vs_past_panel"] = float(min(played[i].mean() for i in panel))
        finally:
            learner.train(was_training)
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
