"""Bad input to the MOBA gives errors that name the problem."""

import numpy as np
import pytest

import games
from games.moba import MobaCore, MobaEnv


@pytest.mark.parametrize("team_size", [0, 9, -1])
def test_team_size_out_of_range(team_size):
    with pytest.raises(ValueError, match=r"team_size.*1 to 5.*" + str(team_size)):
        games.make("moba", team_size=team_size)


@pytest.mark.parametrize("bad", [2.5, "3", True])
def test_team_size_wrong_type(bad):
    with pytest.raises(TypeError, match="team_size"):
        MobaEnv(team_size=bad)


def test_unknown_option_suggests_the_close_one():
    with pytest.raises(TypeError, match="team_sise.*did you mean 'team_size'"):
        games.make("moba", team_sise=3)


def test_unknown_game_lists_the_known_ones():
    with pytest.raises(ValueError, match="mobba.*moba"):
        games.make("mobba")


@pytest.mark.parametrize("kwargs, field", [({"lanes": 2}, "lanes"), ({"max_ticks": 0}, "max_ticks"),
                                           ({"num_visible": 0}, "num_visible")])
def test_other_options_validated(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MobaEnv(**kwargs)


def test_render_options_validated():
    with pytest.raises(ValueError, match="render_mode"):
        MobaEnv(render_mode="human")
    with pytest.raises(ValueError, match="render_team"):
        MobaEnv(render_team="green")


@pytest.mark.parametrize("bad, error", [(1.0, TypeError), ("2", TypeError), (None, TypeError),
                                        (-1, ValueError), (10_000, ValueError),
                                        (np.array([1, 2]), ValueError)])
def test_env_rejects_actions_outside_the_space(bad, error):
    env = MobaEnv(team_size=1)
    env.reset(seed=0)
    with pytest.raises(error, match="radiant_0"):
        env.step({"radiant_0": bad, "dire_0": 0})


def test_env_wants_one_action_per_agent():
    env = MobaEnv(team_size=1)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"radiant_0": 0, "dire_0": 0})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"missing \['dire_0'\]"):
        env.step({"radiant_0": 0})
    with pytest.raises(ValueError, match=r"unknown \['dire_7'\]"):
        env.step({"radiant_0": 0, "dire_0": 0, "dire_7": 0})


def test_masked_action_is_a_counted_noop():
    env = MobaEnv(team_size=1)
    obs, _ = env.reset(seed=0)
    mask = obs["radiant_0"]["action_mask"]
    illegal = int(np.flatnonzero(mask == 0)[0])
    _, _, _, _, infos = env.step({"radiant_0": illegal, "dire_0": 0})
    assert infos["radiant_0"]["illegal_action"] == 1
    assert infos["radiant_0"]["events"]["illegal_actions"] == 1
    assert infos["dire_0"]["illegal_action"] == 0


def test_core_rejects_bad_action_arrays():
    core = MobaCore(num_games=2, team_size=1)
    with pytest.raises(RuntimeError, match="before reset"):
        core.step(np.zeros((2, 2), np.int64))
    core.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape.*\(2, 2\).*\(2, 3\)"):
        core.step(np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError, match="integers"):
        core.step(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="num_games"):
        MobaCore(num_games=0)
    # out-of-range integers in the batched core are masked actions: no-ops, counted
    r = core.step(np.full((2, 2), 999, np.int64))
    assert (r.events[..., core.event_names.index("illegal_actions")] == 1).all()
