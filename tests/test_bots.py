"""Scripted bots of the built-in MOBA, played through the one match runner
(arena/play/runner.py) on a batched MobaVec."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.play.runner import BotSide, play_games
from games.moba import MobaEnv
from games.moba.bots import BOT_NAMES, LADDER, Bot, make_bot
from games.moba.config import MobaConfig
from games.moba.layout import E_ILLEGAL, EVENT_NAMES, MobaLayout
from games.moba.vec import MobaVec

CONFIG = MobaConfig()
LAYOUT = MobaLayout(CONFIG)


def _bots(a: str, b: str, seed: int = 0) -> tuple[Bot, Bot]:
    return make_bot(a, LAYOUT, seed=seed), make_bot(b, LAYOUT, seed=seed + 1)


def play(radiant: Bot, dire: Bot, num_games: int, seed: int, config: MobaConfig = CONFIG,
         on_step=None, swapped: np.ndarray | None = None):
    """`radiant` plays team 0 and `dire` team 1 of every game (the other way round where
    `swapped`), all games in one batch without autoreset."""
    vec = MobaVec(num_games, config=config, autoreset=False)
    seats = np.tile([0, 1], (num_games, 1))
    if swapped is not None:
        seats[swapped] = [1, 0]
    sides = [BotSide(vec, {"hero": radiant}), BotSide(vec, {"hero": dire})]
    return play_games(vec, sides, seats, seed, on_step=on_step), seats


class _Checked(Bot):
    """Wraps a bot and asserts that every action it picks is legal under the mask."""

    def __init__(self, inner: Bot) -> None:
        super().__init__(inner.layout, inner.seed)
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    def act(self, obs, mask):
        actions = self.inner.act(obs, mask)
        assert actions.shape == (obs.shape[0],) and actions.dtype == np.int64
        assert (mask[np.arange(obs.shape[0]), actions] == 1).all(), self.name
        self.calls += 1
        return actions


def test_make_bot_names():
    assert LADDER == ("random", "passive", "lasthitter", "pusher")
    assert BOT_NAMES == (*LADDER, "teamfighter")
    for name in BOT_NAMES:
        bot = make_bot(name, LAYOUT, seed=3)
        assert isinstance(bot, Bot) and bot.name == name
    with pytest.raises(ValueError, match="random, passive, lasthitter, pusher, teamfighter"):
        make_bot("godlike", LAYOUT)


@pytest.mark.parametrize("name", BOT_NAMES)
def test_bots_only_choose_legal_actions_in_play(name):
    cfg = MobaConfig(max_ticks=400)
    lay = MobaLayout(cfg)
    # against the pusher too, so that heroes die, respawn and buildings fall
    for other in ("random", "pusher"):
        me, them = _Checked(make_bot(name, lay, 1)), _Checked(make_bot(other, lay, 2))
        result, _ = play(me, them, num_games=8, seed=11, config=cfg)
        assert me.calls == them.calls == int(result.lengths.max())
        assert result.events[..., E_ILLEGAL].sum() == 0


@pytest.mark.parametrize("options", [
    {"team_size": 1}, {"team_size": 5, "lanes": 3}, {"num_visible": 1, "team_size": 2},
])
def test_bots_play_other_configs(options):
    cfg = MobaConfig(max_ticks=250, **options)
    lay = MobaLayout(cfg)
    for a, b in (("pusher", "lasthitter"), ("passive", "random")):
        result, _ = play(_Checked(make_bot(a, lay, 1)), _Checked(make_bot(b, lay, 2)),
                         num_games=4, seed=5, config=cfg)
        assert result.events.shape == (4, cfg.num_heroes, len(EVENT_NAMES))
        assert result.events[..., E_ILLEGAL].sum() == 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 7))
def test_bots_legal_on_arbitrary_inputs(seed, n):
    """Garbage observations and arbitrary masks still get legal actions."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(0.0, 2.0, (n, LAYOUT.obs_dim)).astype(np.float32)
    mask = (rng.random((n, LAYOUT.num_actions)) < rng.random()).astype(np.int8)
    mask[rng.random(n) < 0.7, 0] = 1  # the no-op is legal in the game, but not assumed here
    mask[np.flatnonzero(mask.sum(1) == 0), rng.integers(LAYOUT.num_actions)] = 1
    for name in BOT_NAMES:
        actions = make_bot(name, LAYOUT, seed).act(obs, mask)
        assert actions.shape == (n,) and actions.dtype == np.int64
        assert (mask[np.arange(n), actions] == 1).all(), name


def test_bots_work_on_the_pettingzoo_view():
    env = MobaEnv(team_size=2, max_ticks=120)
    lay = env.layout
    bots = {"radiant": make_bot("lasthitter", lay), "dire": make_bot("pusher", lay)}
    obs, _ = env.reset(seed=4)
    while env.agents:
        actions = {}
        for team, agents in env.teams.items():
            o = np.stack([obs[a]["observation"] for a in agents])
            m = np.stack([obs[a]["action_mask"] for a in agents])
            actions.update(zip(agents, bots[team].act(o, m).tolist()))
        obs, _, _, _, infos = env.step(actions)
        assert all(info["illegal_action"] == 0 for info in infos.values())


def test_random_bot_is_uniform_over_legal_actions():
    mask = np.zeros((4000, LAYOUT.num_actions), np.int8)
    mask[:, [0, 3, 7]] = 1
    actions = make_bot("random", LAYOUT, seed=0).act(np.zeros((4000, LAYOUT.obs_dim)), mask)
    counts = np.bincount(actions, minlength=LAYOUT.num_actions)
    assert counts.sum() == counts[[0, 3, 7]].sum()
    assert counts[[0, 3, 7]].min() > 1200


def test_determinism_per_seed_and_on_step():
    frames = []
    a, _ = play(*_bots("random", "pusher", seed=5), num_games=6, seed=21,
                on_step=lambda vec, step: frames.append(int(vec.core.tick.max())))
    b, _ = play(*_bots("random", "pusher", seed=5), num_games=6, seed=21)
    c, _ = play(*_bots("random", "pusher", seed=6), num_games=6, seed=21)
    for field in ("winners", "lengths", "returns", "events"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.events, c.events)  # the random bot's seed matters
    # on_step: once after the reset, then after every step until the last game ended
    assert frames[0] == 0 and len(frames) == a.lengths.max() + 1
    # the scripted bots are pure functions of the observation
    obs = np.random.default_rng(0).normal(size=(5, LAYOUT.obs_dim)).astype(np.float32)
    mask = np.ones((5, LAYOUT.num_actions), np.int8)
    for name in BOT_NAMES[1:]:
        np.testing.assert_array_equal(make_bot(name, LAYOUT, 0).act(obs, mask),
                                      make_bot(name, LAYOUT, 9).act(obs, mask))


def test_match_between_scripted_bots_ends_with_a_winner():
    result, seats = play(*_bots("pusher", "lasthitter"), num_games=8, seed=3)
    n, H = 8, CONFIG.num_heroes
    assert result.winners.shape == (n,) and result.lengths.shape == (n,)
    assert result.events.shape == (n, H, len(EVENT_NAMES))
    assert (result.winners >= 0).all()
    assert (result.lengths <= CONFIG.max_ticks).all()
    # the outcome reward: +1 per winning hero, -1 per loser
    np.testing.assert_allclose(result.returns[np.arange(n), result.winners], CONFIG.team_size)
    assert set(result.scores(seats, 0).tolist()) <= {0.0, 0.5, 1.0}


def _score(strong: str, weak: str, games: int, seed: int) -> float:
    """The strong bot's share of wins (draws half), half of the games on each side."""
    swapped = np.arange(games) >= games // 2
    result, seats = play(*_bots(strong, weak, seed), num_games=games, seed=seed, swapped=swapped)
    return float(result.scores(seats, 0).mean())


def test_strongest_bot_beats_random():
    assert _score(LADDER[-1], "random", games=32, seed=100) >= 0.95


@pytest.mark.parametrize("weak,strong", list(zip(LADDER[:-1], LADDER[1:])))
def test_each_bot_beats_the_one_before(weak, strong):
    assert _score(strong, weak, games=24, seed=200) > 0.5


@pytest.mark.slow
def test_strongest_bot_beats_random_in_100_games():
    assert _score(LADDER[-1], "random", games=100, seed=300) >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("weak,strong", list(zip(LADDER[:-1], LADDER[1:])))
def test_each_bot_beats_the_one_before_in_100_games(weak, strong):
    assert _score(strong, weak, games=100, seed=400) > 0.7
