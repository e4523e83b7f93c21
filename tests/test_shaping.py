"""Reward shaping: event weights, team spirit, zero-sum, time decay."""

import numpy as np
import pytest

from league.shaping import Shaper, team_spirit_at

EVENTS = ("gold", "deaths", "last_hits")
TEAMS = np.array([0, 0, 0, 1, 1, 1])


def batch(seed=0, L=5, B=4):
    rng = np.random.default_rng(seed)
    env = rng.choice([-1.0, 0.0, 1.0], size=(L, B, 6)).astype(np.float32)
    events = rng.integers(0, 50, size=(L, B, 6, 3)).astype(np.float32)
    active = np.ones((L, B, 6), bool)
    return env, events, active


def test_weighted_events_by_hand():
    shaper = Shaper(EVENTS, TEAMS, env_weight=5.0, weights={"gold": 0.006, "deaths": -1.0})
    env = np.zeros((1, 1, 6), np.float32)
    env[0, 0, 0] = 1.0
    events = np.zeros((1, 1, 6, 3), np.float32)
    events[0, 0, 0] = [40.0, 1.0, 7.0]  # last hits carry no weight
    out = shaper(env, events, np.ones((1, 1, 6), bool), None, team_spirit=0.0)
    assert out["total"][0, 0, 0] == pytest.approx(5.0 + 0.24 - 1.0)
    assert out["gold"][0, 0, 0] == pytest.approx(0.24) and out["deaths"][0, 0, 0] == -1.0
    assert "last_hits" not in out and out["env"][0, 0, 0] == 5.0


@pytest.mark.parametrize("tau", [0.0, 0.3, 1.0])
def test_team_spirit_keeps_the_team_mean(tau):
    env, events, active = batch()
    plain = Shaper(EVENTS, TEAMS, weights={"gold": 0.01, "deaths": -1.0})
    r0 = plain(env, events, active, None, team_spirit=0.0)["total"]
    r = plain(env, events, active, None, team_spirit=tau)["total"]
    for team in (0, 1):
        cols = TEAMS == team
        np.testing.assert_allclose(r[..., cols].mean(-1), r0[..., cols].mean(-1), atol=1e-5)
    if tau == 1.0:  # everyone gets the team mean
        np.testing.assert_allclose(r[..., :3], np.repeat(r0[..., :3].mean(-1, keepdims=True), 3, -1),
                                   atol=1e-5)


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0])
def test_zero_sum_makes_the_two_teams_sum_to_zero(tau):
    env, events, active = batch(1)
    shaper = Shaper(EVENTS, TEAMS, env_weight=5.0, weights={"gold": 0.006, "deaths": -1.0},
                    zero_sum=True)
    r = shaper(env, events, active, None, team_spirit=tau)["total"]
    np.testing.assert_allclose(r.sum(-1), 0.0, atol=1e-4)


def test_agents_absent_from_a_step_get_nothing_and_do_not_count():
    env, events, active = batch(2)
    active[:, :, 2] = False  # radiant_2 has left the game
    shaper = Shaper(EVENTS, TEAMS, weights={"gold": 0.01}, zero_sum=True)
    r = shaper(env, events, active, None, team_spirit=1.0)["total"]
    assert (r[..., 2] == 0).all()
    np.testing.assert_allclose(r[..., 0], r[..., 1], atol=1e-6)  # the mean of the 2 present


def test_time_decay_spares_the_outcome():
    shaper = Shaper(EVENTS, TEAMS, env_weight=1.0, weights={"gold": 1.0}, time_decay_ticks=100.0)
    env = np.ones((2, 1, 6), np.float32)
    events = np.zeros((2, 1, 6, 3), np.float32)
    events[..., 0] = 1.0
    ticks = np.array([[0], [100]])
    out = shaper(env, events, np.ones((2, 1, 6), bool), ticks, team_spirit=0.0)
    np.testing.assert_allclose(out["total"][0], 2.0)
    np.testing.assert_allclose(out["total"][1], 1.0 + 0.6, rtol=1e-6)


def test_games_without_events_use_the_env_reward():
    shaper = Shaper((), np.array([0, 1]), env_weight=1.0)
    env = np.array([[[0.5, -0.25]]], np.float32)
    out = shaper(env, np.zeros((1, 1, 2, 0), np.float32), np.ones((1, 1, 2), bool), None, 0.0)
    np.testing.assert_allclose(out["total"], env)


def test_unknown_event_weight_is_an_error():
    with pytest.raises(ValueError, match="reward.weights.*golde"):
        Shaper(EVENTS, TEAMS, weights={"golde": 1.0})


def test_team_spirit_schedule():
    assert team_spirit_at(0, 0.3, 1.0, 100) == pytest.approx(0.3)
    assert team_spirit_at(50, 0.3, 1.0, 100) == pytest.approx(0.65)
    assert team_spirit_at(500, 0.3, 1.0, 100) == pytest.approx(1.0)
    assert team_spirit_at(0, 0.3, 1.0, 0) == 1.0
