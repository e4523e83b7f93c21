"""How the MOBA's bots play: each bot (any bot spec) against each opponent, with two
statistics of style read from what the bot saw and did.

    python benchmarks/moba_bots.py [--bots SPEC ...] [--opponents SPEC ...] [--games 24]
                                   [--seed 0] [--team-size 3]

Per (bot, opponent): the bot's score (win 1, draw 0.5; half of the games on each side); over
all its games, the mean distance between two of its living heroes both out on the lane
(past their inner tower; map units) and how often they are within 5 units (it moves as a
group), and the share of its attacks and nukes aimed at enemy heroes (it hunts heroes
rather than creeps and buildings). Defaults: every bot of the game and its
held-out panel against the ladder and the teamfighter.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

import numpy as np
import torch

from arena.play.runner import BotSide, play_games
from games.bots import bot_act
from games.moba.bots import BOT_NAMES
from games.moba.layout import ENTITY_FEATURES, SELF_FEATURES, MobaLayout
from games.registry import make_side_bots, panel
from games.vector import make_vec

_E = {name: i for i, name in enumerate(ENTITY_FEATURES)}
_ALIVE, _X, _Y = (SELF_FEATURES.index(f) for f in ("alive", "x", "y"))
GROUPED = 5.0


@dataclass
class Style:
    """Sums over the steps a recorded bot acted."""

    ally_distance: float = 0.0  # over pairs of living heroes both out on the lane
    ally_pairs: int = 0
    grouped: int = 0  # of those pairs, within GROUPED map units
    hero_targets: int = 0
    targets: int = 0

    def add(self, layout: MobaLayout, obs: np.ndarray, actions: np.ndarray) -> None:
        parts = layout.split_obs(obs)
        vision, size = layout.config.hero_vision, layout.config.map_size
        me = parts["self"][:, [_X, _Y]] * size
        alive = parts["self"][:, _ALIVE] > 0.5
        allies = parts["allies"]
        ally_pos = me[:, None, :] + allies[..., [_E["dx"], _E["dy"]]] * vision
        inner = float(layout.tower_positions()[0, 0, 1].sum())  # own inner tower, x + y
        on_lane = (me.sum(axis=1) > inner)[:, None] & (ally_pos.sum(axis=2) > inner)
        ok = alive[:, None] & (allies[..., _E["alive"]] > 0.5) & on_lane
        dist = (allies[..., _E["distance"]] * vision)[ok]
        self.ally_distance += float(dist.sum())
        self.ally_pairs += len(dist)
        self.grouped += int((dist <= GROUPED).sum())
        K = layout.config.num_visible
        k = actions - layout.first_attack
        k = np.where(k >= K, k - K, k)  # an ability on entity k
        aimed = alive & (actions >= layout.first_attack) & (actions < layout.first_attack + 2 * K)
        rows = np.flatnonzero(aimed)
        self.targets += len(rows)
        self.hero_targets += int((parts["visible"][rows, k[rows], _E["hero"]] > 0.5).sum())


class Recorded:
    """A bot that records what it saw and chose into a `Style`."""

    uses_agents = True

    def __init__(self, bot, layout: MobaLayout, style: Style) -> None:
        self.bot, self.layout, self.style = bot, layout, style

    def act(self, obs, mask, agents=None):
        actions = np.asarray(bot_act(self.bot, obs, mask, agents), np.int64)
        self.style.add(self.layout, np.asarray(obs, np.float64), actions)
        return actions


def match(spec: str, opponent: str, games: int, seed: int, team_size: int
          ) -> tuple[float, Style]:
    vec = make_vec("moba", games, team_size=team_size)
    try:
        style = Style()
        mine = {role: Recorded(bot, vec.role(role).obs_layout, style) for role, bot in
                make_side_bots("moba", spec, vec, seed).items()}
        theirs = make_side_bots("moba", opponent, vec, seed + 100)
        seats = np.tile([0, 1], (games, 1))
        seats[games // 2:] = [1, 0]
        result = play_games(vec, [BotSide(vec, mine), BotSide(vec, theirs)], seats, seed)
        return float(result.scores(seats, 0).mean()), style
    finally:
        vec.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", nargs="+",
                        default=list(dict.fromkeys([*BOT_NAMES[1:], *panel("moba")])))
    parser.add_argument("--opponents", nargs="+", default=list(BOT_NAMES))
    parser.add_argument("--games", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--team-size", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{args.games} games per pair, team size {args.team_size}, seed {args.seed}")
    print(f"{'bot':>32s} " + " ".join(f"{o:>12s}" for o in args.opponents)
          + f" {'lane dist':>10s} {'grouped':>8s} {'hero aim':>9s}", flush=True)
    for spec in args.bots:
        total = Style()
        scores = []
        for i, opponent in enumerate(args.opponents):
            score, style = match(spec, opponent, args.games, args.seed + 1000 * i,
                                 args.team_size)
            scores.append(score)
            for f in fields(Style):
                setattr(total, f.name, getattr(total, f.name) + getattr(style, f.name))
        dist = total.ally_distance / max(total.ally_pairs, 1)
        grouped = total.grouped / max(total.ally_pairs, 1)
        aim = total.hero_targets / max(total.targets, 1)
        print(f"{spec:>32s} " + " ".join(f"{s:12.2f}" for s in scores)
              + f" {dist:10.1f} {grouped:8.0%} {aim:9.1%}", flush=True)


if __name__ == "__main__":
    main()
