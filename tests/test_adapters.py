"""Third-party PettingZoo games through TeamParallelEnv / TeamAECEnv (games/adapters.py).

magent2 battle (symmetric, red_* vs blue_*) and mpe2 simple_tag (asymmetric:
adversary_* predators vs agent_* prey; its AEC factory stays turn-based). Turn-based
classic games (connect four, poker) are in test_aec.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

import games
from games.adapters import (
    TeamAECEnv, TeamParallelEnv, default_teams, team_spaces_differ, teams_from_prefixes,
    with_teams,
)
from games.memory import MemoryGame

with warnings.catch_warnings():  # pettingzoo.test imports its deprecated classic games
    warnings.simplefilter("ignore", DeprecationWarning)
    from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test

battle_v4 = pytest.importorskip(
    "magent2.environments.battle_v4", reason="magent2 is optional: pip install -e '.[thirdparty]'")
simple_tag_v3 = pytest.importorskip(
    "mpe2.simple_tag_v3", reason="mpe2 is optional: pip install -e '.[thirdparty]'")

BATTLE = "pettingzoo:magent2.environments.battle_v4:parallel_env"
BATTLE_TEAMS = {"red": "red_", "blue": "blue_"}
TAG = "pettingzoo:mpe2.simple_tag_v3:parallel_env"
TAG_TEAMS = {"predator": "adversary_", "prey": "agent_"}


def battle(**kwargs) -> TeamParallelEnv:
    """The smallest battle magent2 allows (map_size 12: two agents a side)."""
    return games.make(BATTLE, teams=BATTLE_TEAMS, map_size=12, max_cycles=15, **kwargs)


def tag(**kwargs) -> TeamParallelEnv:
    return games.make(TAG, teams=TAG_TEAMS, max_cycles=15, **kwargs)


def trajectory(env, seed: int):
    """Observations and rewards of one episode under fixed pseudo-random actions."""
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    while env.agents:
        actions = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        out.append(env.step(actions)[:2])
    return out


# -- magent2 battle -------------------------------------------------------------------


def test_battle_api():
    env = battle()
    assert isinstance(env, TeamParallelEnv)
    parallel_api_test(env, num_cycles=50)


def test_battle_seed():
    parallel_seed_test(battle)


def test_battle_teams_and_passthrough():
    env = battle()
    inner = env.env
    assert env.possible_agents == ["red_0", "red_1", "blue_0", "blue_1"]
    assert env.teams == {"red": ["red_0", "red_1"], "blue": ["blue_0", "blue_1"]}
    assert env.agent_team == {"red_0": "red", "red_1": "red", "blue_0": "blue", "blue_1": "blue"}
    assert env.role_of("blue_1") == "blue"
    assert not env.team_spaces_differ
    assert env.metadata is inner.metadata and env.metadata["name"] == "battle_v4"
    assert env.observation_space("red_0") is inner.observation_space("red_0")
    assert env.action_space("blue_1") is inner.action_space("blue_1")
    assert env.unwrapped is inner.unwrapped
    obs, infos = env.reset(seed=0)
    assert env.agents == inner.agents and set(obs) == set(env.agents)
    assert env.state().shape == inner.state_space.shape
    env.close()


def test_battle_same_seed_same_sequence():
    assert data_equivalence(trajectory(battle(), seed=3), trajectory(battle(), seed=3))


# -- mpe2 simple_tag: two roles -------------------------------------------------------


def test_tag_api():
    parallel_api_test(tag(), num_cycles=50)


def test_tag_seed():
    parallel_seed_test(tag)


def test_tag_roles():
    env = tag()
    predators = ["adversary_0", "adversary_1", "adversary_2"]
    assert env.teams == {"predator": predators, "prey": ["agent_0"]}
    assert env.role_of("agent_0") == "prey" and env.role_of("adversary_2") == "predator"
    assert env.team_spaces_differ  # 16- vs 14-dim observations
    assert env.observation_space("adversary_0").shape != env.observation_space("agent_0").shape


def test_tag_aec_factory_stays_turn_based():
    env = games.make("pettingzoo:mpe2.simple_tag_v3:env", teams=TAG_TEAMS, max_cycles=5)
    assert isinstance(env, TeamAECEnv)
    assert env.teams == {"predator": ["adversary_0", "adversary_1", "adversary_2"],
                         "prey": ["agent_0"]}
    api_test(env, num_cycles=10)


def test_tag_determinism():
    assert data_equivalence(trajectory(tag(), seed=1), trajectory(tag(), seed=1))
    assert not data_equivalence(trajectory(tag(), seed=1), trajectory(tag(), seed=2))


# -- team maps ------------------------------------------------------------------------


AGENTS = ["red_0", "red_1", "blue_0", "bluered_0"]


def test_prefix_lists_and_order():
    teams = teams_from_prefixes(AGENTS, {"b": ["blue_", "bluered_"], "r": "red_"})
    assert teams == {"b": ["blue_0", "bluered_0"], "r": ["red_0", "red_1"]}


def test_unmatched_agent_is_named():
    with pytest.raises(ValueError, match=r"matching no team: \['bluered_0'\]"):
        teams_from_prefixes(AGENTS, {"r": "red_", "b": "blue_"})


def test_doubly_matched_agent_is_named():
    with pytest.raises(ValueError, match="matching several teams") as err:
        teams_from_prefixes(AGENTS, {"r": "red", "b": "blue", "x": "blue_"})
    assert "{'blue_0': ['b', 'x']}" in str(err.value)


def test_team_without_agents_is_named():
    with pytest.raises(ValueError, match=r"teams matching no agent: \['green'\]"):
        teams_from_prefixes(AGENTS, {"r": "red_", "b": "blue", "green": "green_"})


@pytest.mark.parametrize("bad", [{}, None, "red_", {"r": ""}, {"r": 3}, {"r": []}, {"": "red_"}])
def test_malformed_team_map(bad):
    with pytest.raises(ValueError, match="team"):
        teams_from_prefixes(AGENTS, bad)


def test_default_teams_from_agent_names():
    assert default_teams(["red_0", "red_1", "blue_0", "blue_12"]) == {
        "red": ["red_0", "red_1"], "blue": ["blue_0", "blue_12"]}
    # names without an index are teams of their own; only a final "_<digits>" counts
    assert default_teams(["adversary_2", "agent_0", "prey", "x_y_1", "x_y_2"]) == {
        "adversary": ["adversary_2"], "agent": ["agent_0"], "prey": ["prey"],
        "x_y": ["x_y_1", "x_y_2"]}
    # one group of every agent: each against each
    assert default_teams(["player_0", "player_1"]) == {
        "player_0": ["player_0"], "player_1": ["player_1"]}
    assert default_teams(["solo_0"]) == {"solo": ["solo_0"]}


def test_default_teams_through_make():
    env = games.make(BATTLE, map_size=12, max_cycles=5)
    assert env.teams == {"red": ["red_0", "red_1"], "blue": ["blue_0", "blue_1"]}
    env = games.make(TAG, max_cycles=5)
    assert env.teams == {"adversary": ["adversary_0", "adversary_1", "adversary_2"],
                         "agent": ["agent_0"]}
    assert env.role_of("agent_0") == "agent" and env.team_spaces_differ


def test_a_game_that_declares_its_teams_keeps_them():
    from types import SimpleNamespace

    from games.adapters import declared_teams

    agents = ["red_leader_0", "red_soldier_0", "blue_leader_0", "blue_soldier_0"]
    mine = {"red": agents[:2], "blue": agents[2:]}
    assert declared_teams(SimpleNamespace(teams=mine), agents) == mine
    # anything but a map that puts every agent in exactly one team is not a team map
    for teams in (None, {}, ["red", "blue"], {"red": agents[:2]}, {"red": "red_leader_0"},
                  {"red": agents[:2], "blue": agents[1:]}, {"red": agents, "blue": []}):
        assert declared_teams(SimpleNamespace(teams=teams), agents) is None, teams
    assert declared_teams(SimpleNamespace(), agents) is None


def test_bad_team_map_through_make():
    with pytest.raises(ValueError, match=r"matching no team: \['blue_0', 'blue_1'\]"):
        games.make(BATTLE, teams={"red": "red_"}, map_size=12, max_cycles=5)


# -- helpers --------------------------------------------------------------------------


def test_wrapping_needs_a_pettingzoo_env():
    with pytest.raises(TypeError, match="wraps a pettingzoo ParallelEnv, got object"):
        TeamParallelEnv(object(), {"r": "red_"})
    with pytest.raises(TypeError, match="wraps a pettingzoo AECEnv, got MemoryGame"):
        TeamAECEnv(MemoryGame(), {"r": "red_"})
    with pytest.raises(TypeError, match="expected a pettingzoo ParallelEnv or AECEnv, got object"):
        with_teams(object())
    assert isinstance(with_teams(MemoryGame()), TeamParallelEnv)


def test_wrapping_a_built_in_game_and_space_check():
    env = TeamParallelEnv(MemoryGame(teams=2), {"red": "red_", "blue": "blue_"})
    assert env.teams == env.env.teams and not env.team_spaces_differ
    assert team_spaces_differ(MemoryGame(teams=2)) is False
    parallel_api_test(env, num_cycles=20)
