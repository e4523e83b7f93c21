"""Win rates of the learner's latest policy against the MOBA's scripted bots.

The bots are fixed references (OpenAI Five measured itself against fixed reference agents
in the same way): the learner plays half the games as radiant and half as dire, sampling
from its policy; a draw counts half.
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
def play_vs_bot(learner: PPOLearner, bot_name: str, side: int, num_games: int,
                seed: int) -> np.ndarray:
    """Play `num_games` MOBA games, the learner on `side` (0 radiant, 1 dire).
    Returns the learner's score per game: 1 win, 0.5 draw, 0 loss."""
    config = make_config(**learner.cfg.game.options)
    layout = MobaLayout(config)
    bot = make_bot(bot_name, layout, seed=seed)
    core = MobaCore(config, num_games=num_games, autoreset=False)
    r = core.reset(seed=seed)
    n = config.team_size
    mine = list(range(side * n, (side + 1) * n))
    theirs = [h for h in range(2 * n) if h not in mine]
    dev = learner.device
    plans = []  # (policy, hero columns it plays, LSTM state)
    for g in learner.groups:
        cols = [s for s in g.slots if s in mine]
        if cols:
            policy = learner.policy_for(g.key)
            plans.append([policy, cols, policy.initial_state(num_games * len(cols), dev)])
    actions = np.zeros((num_games, 2 * n), np.int64)
    done = np.zeros(num_games, bool)
    scores = np.zeros(num_games)
    first = True
    while not done.all():
        for plan in plans:
            policy, cols, state = plan
            obs = torch.from_numpy(r.obs[:, cols].reshape(-1, layout.obs_dim)).to(dev)
            mask = torch.from_numpy(r.action_mask[:, cols].reshape(-1, layout.num_actions)).to(dev)
            starts = torch.full((obs.shape[0],), first, dtype=torch.bool, device=dev)
            action, _, _, _, plan[2] = policy.act(obs, state, starts, mask.bool())
            actions[:, cols] = action.view(num_games, len(cols)).cpu().numpy()
        bot_obs = r.obs[:, theirs].reshape(-1, layout.obs_dim)
        bot_mask = r.action_mask[:, theirs].reshape(-1, layout.num_actions)
        actions[:, theirs] = bot.act(bot_obs, bot_mask).reshape(num_games, n)
        r = core.step(actions)
        first = False
        newly = r.dones & ~done
        if newly.any():
            w = r.winners[newly]
            scores[newly] = np.where(w == side, 1.0, np.where(w < 0, 0.5, 0.0))
            done |= newly
    return scores


class BotEvaluator:
    """Called by the learner every `eval.every` updates; returns metrics to log."""

    def __init__(self, bots: list[str], games: int, seed: int) -> None:
        unknown = [b for b in bots if b not in BOT_NAMES]
        if unknown:
            raise ValueError(f"eval.bots: unknown bot(s) {unknown}; valid bots: {list(BOT_NAMES)}")
        self.bots = list(bots)
        self.games = games
        self.seed = seed

    def __call__(self, learner: PPOLearner) -> dict[str, float]:
        was_training = learner.training
        learner.eval()
        out: dict[str, float] = {}
        try:
            half = max(self.games // 2, 1)
            for i, name in enumerate(self.bots):
                seed = self.seed + 1000 * learner.updates + 10 * i
                scores = np.concatenate([play_vs_bot(learner, name, side, half, seed + side)
                                         for side in (0, 1)])
                out[f"eval/win_rate_vs_{name}"] = float(scores.mean())
        finally:
            learner.train(was_training)
        return out
