"""games.make / register / list_games and their errors (games/registry.py).

Nothing here builds the MOBA: its package is written separately and may be absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import games
from games import registry
from games.memory import MemoryGame


@pytest.fixture
def clean_registry():
    """Undo any registration a test makes."""
    saved = dict(registry._REGISTRY), dict(registry._FACTORIES)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved[0])
    registry._FACTORIES.clear()
    registry._FACTORIES.update(saved[1])


def test_built_ins_are_listed():
    specs = {spec.name: spec for spec in games.list_games()}
    assert specs["memory"].factory_path == "games.memory:MemoryGame"
    assert specs["moba"].factory_path == "games.moba:MobaEnv"
    assert all(spec.description for spec in specs.values())


def test_listing_imports_no_game():
    code = textwrap.dedent(
        """
        import sys, games
        games.list_games()
        assert "games.moba" not in sys.modules, "list_games imported games.moba"
        """
    )
    root = Path(games.__file__).resolve().parents[1]  # works with or without install
    path = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_make_memory_passes_kwargs():
    env = games.make("memory", num_cues=3, length=4, teams=1, team_size=2)
    assert isinstance(env, MemoryGame)
    assert (env.num_cues, env.length, env.possible_agents) == (3, 4, ["red_0", "red_1"])
    assert env.teams == {"red": ["red_0", "red_1"]}


def test_unknown_game_lists_known_and_suggests():
    with pytest.raises(ValueError) as err:
        games.make("memroy")
    msg = str(err.value)
    assert "'memroy'" in msg and "did you mean 'memory'" in msg
    assert "memory" in msg and "moba" in msg and "pettingzoo:" in msg


def test_unknown_game_without_close_match():
    with pytest.raises(ValueError, match="unknown game 'chess'. Known games: connect_four, memory, moba"):
        games.make("chess")


def test_name_must_be_a_string():
    with pytest.raises(TypeError):
        games.make(3)


def test_register_callable_and_path(clean_registry):
    spec = games.register("tiny", lambda **kw: MemoryGame(num_cues=2, **kw), "two cues")
    assert spec.name == "tiny" and spec in games.list_games()
    assert games.make("tiny", length=3).num_cues == 2
    games.register("mem2", "games.memory:MemoryGame", "by path")
    assert isinstance(games.make("mem2"), MemoryGame)


def test_register_errors(clean_registry):
    with pytest.raises(ValueError, match="already registered"):
        games.register("memory", MemoryGame, "again")
    games.register("memory", MemoryGame, "again", overwrite=True)
    assert games.make("memory").num_cues == 4
    for bad in ["", "a:b"]:
        with pytest.raises(ValueError, match="without ':'"):
            games.register(bad, MemoryGame)
    with pytest.raises(ValueError, match="expected 'module:attr'"):
        games.register("x", "games.memory.MemoryGame")
    with pytest.raises(TypeError, match="callable"):
        games.register("x", 42)


def test_broken_lazy_path_names_the_game(clean_registry):
    games.register("ghost", "games.no_such_module:Env")
    with pytest.raises(ImportError, match="game 'ghost'.*games.no_such_module"):
        games.make("ghost")
    games.register("ghost2", "games.memory:NoSuchEnv")
    with pytest.raises(ValueError, match="game 'ghost2'.*no attribute 'NoSuchEnv'"):
        games.make("ghost2")


# -- pettingzoo: specs ----------------------------------------------------------------

TEAMS = {"red": "red_", "blue": "blue_"}


@pytest.mark.parametrize(
    "spec",
    ["pettingzoo:", "pettingzoo:games.memory", "pettingzoo:a:b:c", "pettingzoo::MemoryGame",
     "pettingzoo:games.memory:"],
)
def test_malformed_spec(spec):
    with pytest.raises(ValueError, match="malformed"):
        games.make(spec, teams=TEAMS)


def test_spec_teams_default_to_agent_names():
    env = games.make("pettingzoo:games.memory:MemoryGame", team_size=2)
    assert isinstance(env, games.TeamParallelEnv)
    assert env.teams == {"red": ["red_0", "red_1"], "blue": ["blue_0", "blue_1"]}
    assert env.agent_team["blue_1"] == "blue"


def test_spec_module_not_importable():
    with pytest.raises(ImportError, match="cannot import module 'no_such_pkg.envs'"):
        games.make("pettingzoo:no_such_pkg.envs:parallel_env", teams=TEAMS)


def test_spec_factory_missing():
    with pytest.raises(ValueError, match="module 'games.memory' has no attribute 'parallel_env'"):
        games.make("pettingzoo:games.memory:parallel_env", teams=TEAMS)


def test_spec_factory_not_callable():
    with pytest.raises(ValueError, match="not callable"):
        games.make("pettingzoo:games.memory:TEAM_NAMES", teams=TEAMS)


def test_spec_factory_returns_no_env():
    with pytest.raises(TypeError, match="expected a pettingzoo ParallelEnv or AECEnv, got dict"):
        games.make("pettingzoo:builtins:dict", teams=TEAMS)


def test_spec_wraps_any_parallel_env():
    env = games.make("pettingzoo:games.memory:MemoryGame", teams=TEAMS, team_size=2)
    assert isinstance(env, games.TeamParallelEnv)
    assert env.teams == {"red": ["red_0", "red_1"], "blue": ["blue_0", "blue_1"]}
    obs, _ = env.reset(seed=0)
    assert set(obs) == set(env.possible_agents)


def test_spec_bad_team_map():
    with pytest.raises(ValueError, match=r"matching no team: \['blue_0'\]"):
        games.make("pettingzoo:games.memory:MemoryGame", teams={"red": "red_"})


def test_installed_packages_register_games_through_entry_points(monkeypatch):
    """`[project.entry-points."arena.games"]`: the arena command knows a package's games in
    every process; a broken plugin is reported and hides nothing."""
    import importlib.metadata

    from games import registry

    class EntryPoint:
        def __init__(self, name, value, fn):
            self.name, self.value, self.fn = name, value, fn

        def load(self):
            return self.fn

    def good():
        registry.register("plugin_memory", "games.memory:MemoryGame", "from a plugin",
                          overwrite=True)

    def bad():
        raise RuntimeError("broken")

    eps = [EntryPoint("bad", "x:bad", bad), EntryPoint("good", "x:good", good)]
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: eps if group == "arena.games" else [])
    try:
        with pytest.warns(UserWarning, match="plugin 'bad'.*broken"):
            registry._load_plugins()
        assert "plugin_memory" in {g.name for g in registry.list_games()}
        registry.check_trusted("plugin_memory")  # an installed package is the user's own
        entries = [e for e in registry.registrations() if e["name"] == "plugin_memory"]
        assert entries and entries[0]["factory"] == "games.memory:MemoryGame"
    finally:
        registry._REGISTRY.pop("plugin_memory", None)
