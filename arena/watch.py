"""Matches to watch during training: every `watch.every` updates the latest policy plays one
MOBA match against an opponent drawn from the league (a past snapshot, or itself), and the
match goes to TensorBoard as an animation (arena/media.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from arena.media import log_gif
from games.moba import MobaCore, make_config
from games.moba.render import FrameRecorder

if TYPE_CHECKING:
    from arena.learner import PPOLearner


@torch.no_grad()
def record_match(learner: PPOLearner, opponent: dict | None, seed: int, view: str | None,
                 every: int, max_ticks: int | None = None) -> tuple[list[np.ndarray], int]:
    """Play one game, the latest policy as radiant against `opponent` (policies by group key,
    or None for the latest policy itself) as dire. Returns (frames, winner)."""
    options = dict(learner.cfg.game.options)
    if max_ticks is not None:
        options["max_ticks"] = max_ticks
    config = make_config(**options)
    core = MobaCore(config, num_games=1, autoreset=False)
    recorder = FrameRecorder(game=0, team=view, every=every)
    r = core.reset(seed=seed)
    recorder(core)
    n = config.team_size
    dev = learner.device
    sides = []  # (policy, hero columns, state)
    for g in learner.groups:
        for team in (0, 1):
            cols = [s for s in g.slots if s // n == team]
            if not cols:
                continue
            policy = learner.policy_for(g.key) if team == 0 or opponent is None \
                else opponent[g.key]
            sides.append([policy, cols, policy.initial_state(len(cols), dev)])
    actions = np.zeros((1, 2 * n), np.int64)
    first = True
    while not r.dones[0]:
        for side in sides:
            policy, cols, state = side
            obs = torch.from_numpy(r.obs[0, cols]).to(dev)
            mask = torch.from_numpy(r.action_mask[0, cols]).to(dev).bool()
            starts = torch.full((len(cols),), first, dtype=torch.bool, device=dev)
            action, _, _, _, side[2] = policy.act(obs, state, starts, mask)
            actions[0, cols] = action.cpu().numpy()
        r = core.step(actions)
        recorder(core)
        first = False
    return recorder.frames, int(r.winners[0])


class MatchWatcher:
    """Called by the learner every `watch.every` updates (rank 0); logs one match GIF."""

    def __init__(self, every: int, view: str | None, frame_every: int, fps: int,
                 max_ticks: int | None, seed: int) -> None:
        self.every, self.view, self.frame_every = every, view, frame_every
        self.fps, self.max_ticks, self.seed = fps, max_ticks, seed
        self.rng = np.random.default_rng(seed)

    def __call__(self, learner: PPOLearner) -> dict[str, float]:
        opponent, name = None, "latest"
        pool = learner.pools.get("hero")
        if pool is not None and len(pool) and self.rng.random() < 0.5:
            snap = pool.sample_snapshot(self.rng)
            opponent = learner.collector.opponents.models(snap.id, "hero")
            name = f"snapshot_{snap.id:04d}"
        was_training = learner.training
        learner.eval()
        try:
            frames, winner = record_match(learner, opponent, self.seed + learner.updates,
                                          self.view, self.frame_every, self.max_ticks)
        finally:
            learner.train(was_training)
        if learner.logger is not None:
            log_gif(learner.logger.experiment, f"match/latest_vs_{name}", frames,
                    step=learner.updates, fps=self.fps)
        return {"watch/latest_won": 1.0 if winner == 0 else (0.5 if winner < 0 else 0.0)}
