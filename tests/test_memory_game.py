"""Rules, API conformance and determinism of the memory game (games/memory.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from hypothesis import given, settings
from hypothesis import strategies as st

from games.memory import MemoryGame

with warnings.catch_warnings():  # pettingzoo.test imports its deprecated classic games
    warnings.simplefilter("ignore", DeprecationWarning)
    from pettingzoo.test import parallel_api_test, parallel_seed_test


def cue_of(obs: dict[str, np.ndarray], num_cues: int) -> int:
    return int(np.argmax(obs["observation"][:num_cues]))


def play(env: MemoryGame, policy, seed: int | None = None):
    """Run one episode; `policy(agent, obs, memory)` -> action. Returns the final step."""
    obs, _ = env.reset(seed=seed)
    memory = {a: cue_of(o, env.num_cues) for a, o in obs.items()}
    while True:
        actions = {a: policy(a, obs[a], memory) for a in env.agents}
        obs, rew, term, trunc, info = env.step(actions)
        if not env.agents:
            return obs, rew, term, trunc, info


def remember(agent, obs, memory):
    return 1 + memory[agent] if obs["observation"][-1] == 1.0 else 0


def guess_zero(agent, obs, memory):
    return 1 if obs["observation"][-1] == 1.0 else 0


# -- API ------------------------------------------------------------------------------


@pytest.mark.parametrize("teams,team_size", [(1, 1), (2, 1), (1, 4), (2, 3)])
def test_parallel_api(teams, team_size):
    parallel_api_test(MemoryGame(teams=teams, team_size=team_size), num_cycles=50)


@pytest.mark.parametrize("teams", [1, 2])
def test_parallel_seed(teams):
    parallel_seed_test(lambda: MemoryGame(teams=teams, team_size=2))


def test_agents_and_teams():
    env = MemoryGame(teams=2, team_size=3)
    assert env.possible_agents == ["red_0", "red_1", "red_2", "blue_0", "blue_1", "blue_2"]
    assert env.teams == {"red": ["red_0", "red_1", "red_2"], "blue": ["blue_0", "blue_1", "blue_2"]}
    assert env.agent_team["blue_1"] == "blue" and env.agent_team["red_0"] == "red"
    solo = MemoryGame(teams=1, team_size=2)
    assert solo.possible_agents == ["red_0", "red_1"] and list(solo.teams) == ["red"]


def test_spaces_declared_up_front():
    env = MemoryGame(num_cues=3)
    space = env.observation_space("red_0")
    assert space is env.observation_space("red_0")
    assert space["observation"].shape == (5,) and space["observation"].dtype == np.float32
    assert space["action_mask"].shape == (4,) and space["action_mask"].dtype == np.int8
    assert env.action_space("blue_0").n == 4
    assert env.observation_space("red_0") is not env.observation_space("blue_0")


def test_every_observation_is_in_its_space():
    env = MemoryGame(num_cues=3, length=4)
    obs, _ = env.reset(seed=0)
    seen = [obs]
    while env.agents:
        obs, *_ = env.step({a: 0 for a in env.agents})
        seen.append(obs)
    for step_obs in seen:
        for agent, o in step_obs.items():
            assert env.observation_space(agent).contains(o)


# -- rules ----------------------------------------------------------------------------


def test_cue_only_at_start_and_time_features():
    env = MemoryGame(num_cues=4, length=5, teams=1)
    obs, infos = env.reset(seed=3)
    o = obs["red_0"]["observation"]
    assert o[:4].sum() == 1.0 and o[4] == 0.0 and o[5] == 0.0
    assert infos == {"red_0": {}}
    for t in range(1, 5):
        obs, *_ = env.step({"red_0": 0})
        o = obs["red_0"]["observation"]
        assert o[:4].sum() == 0.0
        assert o[4] == pytest.approx(t / 4)
        assert o[5] == (1.0 if t == 4 else 0.0)


def test_action_mask():
    env = MemoryGame(num_cues=3, length=3, teams=1)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["red_0"]["action_mask"], [1, 0, 0, 0])
    obs, *_ = env.step({"red_0": 0})
    np.testing.assert_array_equal(obs["red_0"]["action_mask"], [1, 0, 0, 0])
    obs, *_ = env.step({"red_0": 0})
    np.testing.assert_array_equal(obs["red_0"]["action_mask"], [0, 1, 1, 1])


@pytest.mark.parametrize("right", [True, False])
def test_reward_for_answer(right):
    env = MemoryGame(num_cues=4, length=3, teams=2)
    obs, _ = env.reset(seed=5)
    cue = {a: cue_of(o, 4) for a, o in obs.items()}
    for _ in range(2):
        obs, rew, term, trunc, info = env.step({a: 0 for a in env.agents})
        assert all(r == 0.0 for r in rew.values()) and not any(term.values())
        assert all(i == {"illegal_action": 0, "events": {"correct": 0}} for i in info.values())
    answer = {a: 1 + (c if right else (c + 1) % 4) for a, c in cue.items()}
    obs, rew, term, trunc, info = env.step(answer)
    assert rew == {a: (1.0 if right else -1.0) for a in cue}
    assert all(term.values()) and not any(trunc.values())
    assert all(i["events"]["correct"] == int(right) for i in info.values())
    assert all(i["illegal_action"] == 0 for i in info.values())
    assert env.agents == []


@pytest.mark.parametrize("bad", [2, 4])
def test_illegal_action_before_last_is_a_counted_wait(bad):
    env = MemoryGame(num_cues=4, length=2, teams=1)
    env.reset(seed=0)
    obs, rew, term, trunc, info = env.step({"red_0": bad})
    assert info["red_0"]["illegal_action"] == 1 and rew["red_0"] == 0.0
    assert env.agents == ["red_0"] and obs["red_0"]["observation"][-1] == 1.0


@pytest.mark.parametrize("bad", [0])
def test_illegal_answer_is_wrong_and_counted(bad):
    env = MemoryGame(num_cues=4, length=2, teams=1)
    env.reset(seed=0)
    env.step({"red_0": 0})
    _, rew, term, _, info = env.step({"red_0": bad})
    assert rew["red_0"] == -1.0 and term["red_0"]
    assert info["red_0"] == {"illegal_action": 1, "events": {"correct": 0}}


@pytest.mark.parametrize(
    "bad, error", [(99, ValueError), (-1, ValueError), (5, ValueError), (1.5, TypeError),
                   (None, TypeError), ("x", TypeError), (True, TypeError),
                   (np.array([0, 1]), ValueError), (np.array(0.0), ValueError)])
def test_action_outside_the_space_is_an_error_naming_the_agent(bad, error):
    env = MemoryGame(num_cues=4, length=2, teams=1)
    env.reset(seed=0)
    with pytest.raises(error, match="red_0"):
        env.step({"red_0": bad})


def test_numpy_integer_actions_are_accepted():
    env = MemoryGame(num_cues=4, length=2, teams=1)
    obs, _ = env.reset(seed=1)
    env.step({"red_0": np.int64(0)})
    _, rew, _, _, info = env.step({"red_0": np.array(1 + cue_of(obs["red_0"], 4))})
    assert rew["red_0"] == 1.0 and info["red_0"]["illegal_action"] == 0


def test_step_errors():
    env = MemoryGame(teams=2, length=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="missing \\['blue_0'\\]"):
        env.step({"red_0": 0})
    with pytest.raises(ValueError, match="unknown \\['green_0'\\]"):
        env.step({"red_0": 0, "blue_0": 0, "green_0": 0})
    env.step({"red_0": 0, "blue_0": 0})
    env.step({"red_0": 1, "blue_0": 1})
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"red_0": 0, "blue_0": 0})


def test_remembering_policy_scores_one():
    env = MemoryGame(num_cues=6, length=7, teams=2, team_size=2)
    for seed in range(20):
        _, rew, _, _, info = play(env, remember, seed=seed)
        assert all(r == 1.0 for r in rew.values())
        assert all(i["events"]["correct"] == 1 for i in info.values())


def test_always_guess_first_cue_scores_one_over_num_cues():
    env = MemoryGame(num_cues=4, length=2, teams=2, team_size=4)
    correct = []
    env.reset(seed=123)
    for _ in range(250):
        _, _, _, _, info = play(env, guess_zero)
        correct += [i["events"]["correct"] for i in info.values()]
    # 2000 answers: standard error ~0.01, so 0.25 +- 0.05 is ~5 sigma.
    assert abs(np.mean(correct) - 0.25) < 0.05


# -- determinism ----------------------------------------------------------------------


def trajectory(env: MemoryGame, seed: int, episodes: int = 3):
    out = []
    rng = np.random.default_rng(0)  # same actions for every run
    env.reset(seed=seed)
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        out.append(obs)
        while env.agents:
            step = env.step({a: int(rng.integers(env.num_cues + 1)) for a in env.agents})
            out.append(step[:2])
    return out


def test_same_seed_same_sequence():
    a = trajectory(MemoryGame(teams=2, team_size=4), seed=7)
    b = trajectory(MemoryGame(teams=2, team_size=4), seed=7)
    assert data_equivalence(a, b)


def test_different_seeds_differ():
    a = trajectory(MemoryGame(teams=2, team_size=4), seed=7)
    b = trajectory(MemoryGame(teams=2, team_size=4), seed=8)
    assert not data_equivalence(a, b)


def test_reseeding_reproduces_the_episode():
    env = MemoryGame(teams=2, team_size=4)
    first, _ = env.reset(seed=11)
    env.reset()
    again, _ = env.reset(seed=11)
    assert data_equivalence(first, again)


# -- validation and rendering ---------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"num_cues": 1}, ["num_cues", ">= 2"]),
        ({"num_cues": 2.5}, ["num_cues", "int"]),
        ({"length": 1}, ["length", ">= 2"]),
        ({"teams": 3}, ["teams", "1..2"]),
        ({"teams": 0}, ["teams", "1..2"]),
        ({"team_size": 5}, ["team_size", "1..4"]),
        ({"team_size": 0}, ["team_size", "1..4"]),
        ({"team_size": True}, ["team_size", "int"]),
        ({"render_mode": "human"}, ["render_mode", "ansi"]),
    ],
)
def test_bad_kwargs(kwargs, words):
    with pytest.raises(ValueError) as err:
        MemoryGame(**kwargs)
    for word in words:
        assert word in str(err.value)


def test_ansi_render_and_no_render_mode():
    env = MemoryGame(teams=1, length=2, render_mode="ansi")
    env.reset(seed=0)
    assert "red_0 cue=" in env.render()
    env.step({"red_0": 0})
    env.step({"red_0": 0})
    assert "wrong" in env.render()
    quiet = MemoryGame()
    quiet.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert quiet.render() is None


@settings(max_examples=30, deadline=None)
@given(
    num_cues=st.integers(2, 6),
    length=st.integers(2, 6),
    teams=st.integers(1, 2),
    team_size=st.integers(1, 4),
    seed=st.integers(0, 2**31),
    actions=st.lists(st.integers(0, 6), min_size=48, max_size=48),
)
def test_rules_hold_for_any_actions(num_cues, length, teams, team_size, seed, actions):
    env = MemoryGame(num_cues=num_cues, length=length, teams=teams, team_size=team_size)
    obs, _ = env.reset(seed=seed)
    cue = {a: cue_of(o, num_cues) for a, o in obs.items()}
    it = iter(actions)
    for t in range(length):
        act = {a: min(next(it, 0), num_cues) for a in env.agents}
        obs, rew, term, trunc, info = env.step(act)
        for agent, action in act.items():
            last = t == length - 1
            legal = (1 <= action <= num_cues) if last else action == 0
            assert info[agent]["illegal_action"] == int(not legal)
            expected = (1.0 if action - 1 == cue[agent] and legal else -1.0) if last else 0.0
            assert rew[agent] == expected
            assert term[agent] == last and not trunc[agent]
            assert env.observation_space(agent).contains(obs[agent])
    assert env.agents == []
