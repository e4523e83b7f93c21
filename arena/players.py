"""Things that play a MOBA team: scripted bots and trained policies, behind one interface,
and the batched match runner that tournaments, `arena watch` and evaluations share.

A player spec (command line and tournaments) is one of:
    random | passive | lasthitter | pusher     a scripted bot
    path/to/file.ckpt                          a training checkpoint
    runs/NAME                                  a run: its newest checkpoint
    runs/NAME@ID                               a run's league snapshot ID (runs/NAME/league/hero)
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from games.moba import MobaCore, MobaLayout, make_config
from games.moba.bots import BOT_NAMES, make_bot
from games.moba.match import MatchResult, play_games


class Player(abc.ABC):
    """Plays the heroes of one side in a batch of games (rows = games x heroes)."""

    name: str

    def begin(self, heroes: np.ndarray) -> None:
        """New games; `heroes` (rows,) is the hero index (slot) each row plays."""

    @abc.abstractmethod
    def act(self, obs: np.ndarray, mask: np.ndarray, episode_start: np.ndarray) -> np.ndarray:
        """obs (rows, D), mask (rows, A) -> (rows,) int64 legal actions."""


class BotPlayer(Player):
    def __init__(self, name: str, layout: MobaLayout, seed: int = 0) -> None:
        self.name = name
        self.bot = make_bot(name, layout, seed=seed)

    def act(self, obs, mask, episode_start):
        return self.bot.act(obs, mask)


class PolicyPlayer(Player):
    """A learner's policies; each row keeps its own LSTM state, reset at episode start.
    With per-agent weights, a row is played by the network of its hero slot."""

    def __init__(self, name: str, learner, update: int | None = None) -> None:
        self.name = name
        self.learner = learner.eval()
        self.update = learner.updates if update is None else update
        self._rows: list[tuple[object, np.ndarray]] = []
        self._state: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def begin(self, heroes: np.ndarray) -> None:
        self._rows = []
        for g in self.learner.groups:
            rows = np.flatnonzero(np.isin(heroes, g.slots))
            if len(rows):
                policy = self.learner.policy_for(g.key)
                self._rows.append((policy, rows))
                self._state[id(policy)] = policy.initial_state(len(rows))

    @torch.no_grad()
    def act(self, obs, mask, episode_start):
        out = np.zeros(len(obs), np.int64)
        for policy, rows in self._rows:
            dev = policy.actor.weight.device
            action, _, _, _, self._state[id(policy)] = policy.act(
                torch.from_numpy(obs[rows]).to(dev), self._state[id(policy)],
                torch.from_numpy(episode_start[rows]).to(dev),
                torch.from_numpy(mask[rows]).to(dev).bool())
            out[rows] = action.cpu().numpy()
        return out


def load_player(spec: str, game_options: dict, seed: int = 0) -> Player:
    """A player from its spec (see the module docstring)."""
    from arena.checkpoints import CheckpointError, load_learner

    layout = MobaLayout(make_config(**game_options))
    if spec in BOT_NAMES:
        return BotPlayer(spec, layout, seed)
    path, _, snap = spec.partition("@")
    if snap:
        return _snapshot_player(spec, Path(path), snap, game_options)
    if not Path(path).exists():
        raise CheckpointError(f"{spec}: not a bot ({', '.join(BOT_NAMES)}), checkpoint or run "
                              f"directory")
    learner = load_learner(path, expect_game="moba")
    _check_same_game(spec, learner, layout)
    return PolicyPlayer(Path(spec).name if Path(spec).is_dir() else spec, learner)


def _snapshot_player(spec: str, run_dir: Path, snap: str, game_options: dict) -> Player:
    from arena.checkpoints import CheckpointError
    from arena.config import load_config, to_dict
    from arena.learner import PPOLearner
    from league.pool import OpponentPool, PoolError

    if not snap.isdigit():
        raise CheckpointError(f"{spec}: expected RUN_DIR@SNAPSHOT_ID with a number after '@'")
    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{spec}: {run_dir} is not a run directory (no config.yaml)")
    cfg = load_config(run_dir / "config.yaml")
    if cfg.game.name != "moba":
        raise CheckpointError(f"{spec}: run is for game {cfg.game.name!r}, expected 'moba'")
    learner = PPOLearner(to_dict(cfg))
    try:
        pool = OpponentPool.open(run_dir / "league" / "hero")
        snapshot = pool.get(int(snap))
        learner.load_state_dict(pool.load_weights(snapshot.id), strict=False)
    except PoolError as exc:
        raise CheckpointError(f"{spec}: {exc}") from None
    _check_same_game(spec, learner, MobaLayout(make_config(**game_options)))
    return PolicyPlayer(f"{run_dir.name}@{snapshot.id}", learner, update=snapshot.update)


def _check_same_game(spec: str, learner, layout: MobaLayout) -> None:
    from arena.checkpoints import CheckpointError

    role = learner.groups[0].role
    if (role.obs_dim, role.num_actions) != (layout.obs_dim, layout.num_actions):
        raise CheckpointError(
            f"{spec}: trained for observations/actions {role.obs_dim}/{role.num_actions}, this "
            f"game has {layout.obs_dim}/{layout.num_actions} (another team size or setting?)")


class _Seat:
    """Adapts a Player to the bot interface of games.moba.match.play_games (one side of
    every game; rows = games x heroes of that side, all games starting together)."""

    def __init__(self, player: Player, side: int, team_size: int) -> None:
        self.player, self.side, self.n = player, side, team_size
        self.first = True

    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.first:
            self.player.begin(self.side * self.n + np.arange(len(obs)) % self.n)
        starts = np.full(len(obs), self.first)
        self.first = False
        return self.player.act(obs, mask, starts)


def play(radiant: Player, dire: Player, *, games: int, seed: int, game_options: dict,
         on_step: Callable[[MobaCore], None] | None = None) -> MatchResult:
    """`games` batched games of `radiant` against `dire` (games.moba.match.play_games)."""
    config = make_config(**game_options)
    n = config.team_size
    return play_games(_Seat(radiant, 0, n), _Seat(dire, 1, n), num_games=games, seed=seed,
                      config=config, on_step=on_step)


def play_match(a: Player, b: Player, *, games: int, seed: int, game_options: dict) -> np.ndarray:
    """A's score in each game (1 win, 0.5 draw, 0 loss): A plays radiant in the first
    ceil(games/2) games and dire in the rest."""
    first = (games + 1) // 2
    scores = []
    r = play(a, b, games=first, seed=seed, game_options=game_options)
    scores.append(np.where(r.winners == 0, 1.0, np.where(r.winners < 0, 0.5, 0.0)))
    if games > first:
        r = play(b, a, games=games - first, seed=seed + first, game_options=game_options)
        scores.append(np.where(r.winners == 1, 1.0, np.where(r.winners < 0, 0.5, 0.0)))
    return np.concatenate(scores)
