"""Win rates of the learner's latest policy against the MOBA's scripted bots.

The bots are fixed references (OpenAI Five measured itself against fixed reference agents
the same way). The learner plays half of the games against each bot as radiant and half
as dire, sampling from its policy with its own seeded generator; a draw counts half. All
games of one evaluation run in one batched core (arena/players.py `play_matches`), so the
policy makes one forward pass per tick for all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from arena.players import BotPlayer, PolicyPlayer, play_match, play_matches
from games.moba import MobaLayout, make_config
from games.moba.bots import BOT_NAMES

if TYPE_CHECKING:
    from arena.learner import PPOLearner


@torch.no_grad()
def play_vs_bots(learner: PPOLearner, bots: list[str], games_per_side: int,
                 seed: int) -> dict[str, np.ndarray]:
    """The learner's score per game (1 win, 0.5 draw, 0 loss) against each bot; games
    [0, games_per_side) of a bot have the learner as radiant, the rest as dire."""
    config = make_config(**learner.cfg.game.options)
    layout = MobaLayout(config)
    me = PolicyPlayer("learner", learner, seed=seed)
    pairings = [(me, BotPlayer(name, layout, seed=seed + i)) for i, name in enumerate(bots)]
    scores = play_matches(pairings, games=2 * games_per_side, seed=seed, game_options=config)
    return dict(zip(bots, scores))


class _Frozen:
    """A snapshot's networks in the shape a PolicyPlayer wants (groups, policy_for)."""

    def __init__(self, groups, models: dict) -> None:
        self.groups, self.models, self.updates = groups, models, 0

    def policy_for(self, key: str):
        return self.models[key]

    def eval(self):
        return self


class BotEvaluator:
    """Called by the learner every `eval.every` updates; returns metrics to log: the win
    rate against each bot and against two league snapshots (the newest and a random one),
    and a rating of the latest policy on the bots' fixed scale (league/ratings.py), which
    makes the rating curve in TensorBoard. The rating table (an entry per evaluation and
    per snapshot played) is kept in the learner's checkpoints."""

    def __init__(self, bots: list[str], games: int, seed: int) -> None:
        unknown = [b for b in bots if b not in BOT_NAMES]
        if unknown:
            raise ValueError(f"eval.bots: unknown bot(s) {unknown}; valid bots: {list(BOT_NAMES)}")
        self.bots = list(bots)
        self.games_per_side = max(games // 2, 1)
        self.seed = seed

    def play_snapshots(self, learner: PPOLearner) -> dict[int, np.ndarray]:
        """The latest policy against the newest and a random older league snapshot."""
        pool = learner.pools.get("hero")
        if pool is None or not len(pool) or learner.collector.opponents is None:
            return {}
        rng = np.random.default_rng(self.seed + learner.updates)
        picks = {pool.snapshots[-1].id, pool.snapshots[int(rng.integers(len(pool)))].id}
        out = {}
        was_training = learner.training
        for snap_id in sorted(picks):
            models = learner.collector.opponents.models(snap_id, "hero")
            seed = self.seed + 1000 * learner.updates + 7 * snap_id
            out[snap_id] = play_match(
                PolicyPlayer("latest", learner, seed=seed),
                PolicyPlayer(f"snapshot-{snap_id}", _Frozen(learner.groups, models),
                             seed=seed + 1),
                games=self.games_per_side, seed=seed,
                game_options=dict(learner.cfg.game.options))
        learner.train(was_training)
        return out

    def __call__(self, learner: PPOLearner) -> dict[str, float]:
        was_training = learner.training
        learner.eval()
        try:
            scores = play_vs_bots(learner, self.bots, self.games_per_side,
                                  self.seed + 1000 * learner.updates)
        finally:
            learner.train(was_training)
        out = {f"eval/win_rate_vs_{name}": float(s.mean()) for name, s in scores.items()}
        for snap_id, s in self.play_snapshots(learner).items():
            scores[f"snapshot-{snap_id:04d}"] = s
            out[f"eval/win_rate_vs_snapshot/{snap_id:04d}"] = float(s.mean())
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
