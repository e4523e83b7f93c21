"""Win rates of the learner's latest policy against the MOBA's scripted bots.

The bots are fixed references (OpenAI Five measured itself against fixed reference agents
the same way). The learner plays half of the games against each bot as radiant and half
as dire, sampling from its policy; a draw counts half. All games of one evaluation run in
one batched core, so the policy makes one forward pass per tick for all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from games.moba import MobaCore, MobaLayout, make_config
from games.moba.bots import BOT_NAMES, make_bot

if TYPE_CHECKING:
    from arena.learner import PPOLearner


@torch.no_grad()
def play_vs_bots(learner: PPOLearner, bots: list[str], games_per_side: int,
                 seed: int) -> dict[str, np.ndarray]:
    """The learner's score per game (1 win, 0.5 draw, 0 loss) against each bot; games
    [0, games_per_side) of a bot have the learner as radiant, the rest as dire."""
    config = make_config(**learner.cfg.game.options)
    layout = MobaLayout(config)
    n, per_bot = config.team_size, 2 * games_per_side
    B = per_bot * len(bots)
    core = MobaCore(config, num_games=B, autoreset=False)
    r = core.reset(seed=seed)
    side = np.tile(np.repeat([0, 1], games_per_side), len(bots))  # learner's team per game
    heroes = np.arange(2 * n)
    learner_hero = (heroes[None, :] // n) == side[:, None]  # (B, H)
    dev = learner.device
    plans = []  # per policy group: (policy, game index, hero index) of its rows, LSTM state
    for g in learner.groups:
        rows = np.argwhere(learner_hero & np.isin(heroes, g.slots)[None, :])
        if len(rows):
            policy = learner.policy_for(g.key)
            plans.append([policy, rows[:, 0], rows[:, 1], policy.initial_state(len(rows), dev)])
    bot_players = []
    for i, name in enumerate(bots):
        games = np.arange(i * per_bot, (i + 1) * per_bot)
        rows = np.argwhere(~learner_hero[games]) + [i * per_bot, 0]
        bot_players.append((make_bot(name, layout, seed=seed + i), rows[:, 0], rows[:, 1]))
    actions = np.zeros((B, 2 * n), np.int64)
    done = np.zeros(B, bool)
    scores = np.zeros(B)
    first = True
    while not done.all():
        for plan in plans:
            policy, gi, hi, state = plan
            obs = torch.from_numpy(r.obs[gi, hi]).to(dev)
            mask = torch.from_numpy(r.action_mask[gi, hi]).to(dev).bool()
            starts = torch.full((len(gi),), first, dtype=torch.bool, device=dev)
            action, _, _, _, plan[3] = policy.act(obs, state, starts, mask)
            actions[gi, hi] = action.cpu().numpy()
        for bot, gi, hi in bot_players:
            actions[gi, hi] = bot.act(r.obs[gi, hi], r.action_mask[gi, hi])
        r = core.step(actions)
        first = False
        newly = r.dones & ~done
        if newly.any():
            w = r.winners[newly].astype(np.int64)
            scores[newly] = np.where(w == side[newly], 1.0, np.where(w < 0, 0.5, 0.0))
            done |= newly
    return {name: scores[i * per_bot:(i + 1) * per_bot] for i, name in enumerate(bots)}


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
        from arena.players import PolicyPlayer, play_match

        pool = learner.pools.get("hero")
        if pool is None or not len(pool) or learner.collector.opponents is None:
            return {}
        rng = np.random.default_rng(self.seed + learner.updates)
        picks = {pool.snapshots[-1].id, pool.snapshots[int(rng.integers(len(pool)))].id}
        out = {}
        was_training = learner.training
        for snap_id in sorted(picks):
            models = learner.collector.opponents.models(snap_id, "hero")
            out[snap_id] = play_match(
                PolicyPlayer("latest", learner),
                PolicyPlayer(f"snapshot-{snap_id}", _Frozen(learner.groups, models)),
                games=self.games_per_side, seed=self.seed + 7 * snap_id,
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
