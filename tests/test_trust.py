"""Games named by configs from elsewhere are checked before anything is imported or built
(games/registry.py check_trusted, arena/trust.py): a spoofed learner's hello, a run
directory or checkpoint handed over. Written the way the hole was found: a config whose
game is `pettingzoo:os:system` with a shell command in its options."""

import json
import threading

import pytest
import torch
import zmq

import games
from arena import trust
from arena.checkpoints import CheckpointError, load_learner
from arena.cli import main
from arena.config import ConfigError, load_config, to_dict
from arena.learn.learner import PPOLearner
from arena.play.players import MatchGame, load_player, saved_config
from arena.scale.actors import ActorError, ActorService, run_actor
from arena.scale.wire import decode, encode
from games.registry import UntrustedGameError, check_trusted
from league.pool import OpponentPool

SMALL = ["game.options.team_size=1", "game.options.max_ticks=16", "game.num_envs=2",
         "model.hidden=32", "model.lstm_hidden=32", "eval.every=0", "watch.every=0"]
TEAMS = {"red": "red_", "blue": "blue_"}


@pytest.fixture(autouse=True)
def fresh_allow_list(monkeypatch):
    """Each test starts with an empty allow-list and leaves none behind (--allow-game adds
    to the process's list)."""
    monkeypatch.delenv(trust.ENV_VAR, raising=False)
    monkeypatch.setattr(trust, "_ALLOWED", [])


def evil_config(marker, name="pettingzoo:os:system"):
    """A valid Arena config whose game runs `touch marker` when made."""
    config = to_dict(load_config(None, [*SMALL, "league.bot_prob=0", "league.bots=[]", "eval.bots=null",
                                              "league.enabled=false"]))
    config["game"]["name"] = name
    config["game"]["options"] = {"command": f"touch {marker}", "teams": TEAMS}
    return config


class SpoofedLearner:
    """A REP socket on 127.0.0.1 answering every `hello` with `config`, on the wire format
    real actors expect (arena/scale/wire.py); it serves nothing else."""

    def __init__(self, config):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.config = config
        self.hellos = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            if not self.socket.poll(50, zmq.POLLIN):
                continue
            kind, _, _ = decode(self.socket.recv_multipart())
            assert kind == "hello"
            self.hellos += 1
            self.socket.send_multipart(encode("hello", {
                "config": self.config, "actor": 0, "seed": 1, "rollouts_port": 1,
                "weights_port": 2, "league": "self", "num_envs": 1,
                "rollouts_per_version": 1}, {}))

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.socket.close(linger=0)
        self.context.term()


@pytest.fixture
def spoofed():
    learners = []

    def start(config):
        learners.append(SpoofedLearner(config))
        return learners[-1]

    yield start
    for learner in learners:
        learner.close()


# ---- the registry's check -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["moba", "memory", "pettingzoo:mpe2.simple_tag_v3:parallel_env",
                                  "pettingzoo:mpe2.simple_tag_v3:env",
                                  "pettingzoo:magent2.environments.battle_v4:parallel_env"])
def test_registered_games_and_pettingzoo_factories_are_trusted(name):
    check_trusted(name)


@pytest.mark.parametrize("name, why", [
    ("pettingzoo:os:system", "module 'os' is outside pettingzoo/mpe2/magent2"),
    ("pettingzoo:builtins:exec", "module 'builtins' is outside"),
    ("pettingzoo:mpe2.simple_tag_v3:os.system", "only the factories env, parallel_env, raw_env"),
    ("pettingzoo:pettingzoo.utils.conversions:parallel_wrapper_fn", "only the factories"),
    ("pettingzoo:games.memory:MemoryGame", "module 'games.memory' is outside"),
    ("pettingzoo:..os:system", "malformed game spec"),
    ("no_such_game", "neither a registered game"),
])
def test_everything_else_is_refused_naming_the_spec_and_how_to_allow_it(name, why):
    with pytest.raises(UntrustedGameError) as info:
        check_trusted(name)
    message = str(info.value)
    assert name in message and why in message
    if "not trusted" in message:
        module = name.split(":")[1]
        assert f"--allow-game {module}" in message and f"ARENA_ALLOW_GAMES={module}" in message


def test_a_factory_defined_outside_the_namespaces_is_refused(monkeypatch):
    import os

    import mpe2.simple_tag_v3 as tag

    monkeypatch.setattr(tag, "raw_env", os.system)  # a re-export from outside
    with pytest.raises(UntrustedGameError, match="defined in 'posix'|defined in 'nt'"):
        check_trusted("pettingzoo:mpe2.simple_tag_v3:raw_env")


def test_a_module_outside_the_namespaces_is_not_imported_to_be_refused():
    import sys

    assert "antigravity" not in sys.modules
    with pytest.raises(UntrustedGameError):
        check_trusted("pettingzoo:antigravity:env")
    assert "antigravity" not in sys.modules


@pytest.mark.parametrize("allow", ["games", "games.memory", "pettingzoo:games.memory:MemoryGame",
                                   "games.memory:MemoryGame"])
def test_the_allow_list_names_a_spec_its_module_or_a_package_above(allow):
    check_trusted("pettingzoo:games.memory:MemoryGame", [allow])
    with pytest.raises(UntrustedGameError):
        check_trusted("pettingzoo:games.memory:MemoryGame", ["games.mem", "gam"])


def test_dotted_attributes_never_walk_through_a_module(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(UntrustedGameError, match="only the factories"):
        check_trusted("pettingzoo:mpe2.simple_tag_v3:os.system")
    # even a module the user allowed cannot hand out what it imported
    with pytest.raises(ValueError, match="reaches into module 'os'.*name the module itself"):
        games.make("pettingzoo:games.files:os.system", teams=TEAMS, command=f"touch {marker}")
    assert not marker.exists()


def test_the_process_allow_list_is_the_environment_plus_the_options(monkeypatch):
    with pytest.raises(UntrustedGameError, match=r"^runs/x/config.yaml: game 'pettingzoo:games"):
        trust.check_game("pettingzoo:games.memory:MemoryGame", source="runs/x/config.yaml")
    monkeypatch.setenv(trust.ENV_VAR, " other , games.memory")
    trust.check_game("pettingzoo:games.memory:MemoryGame", source="x")
    monkeypatch.delenv(trust.ENV_VAR)
    trust.allow_games(["games"])
    trust.check_game("pettingzoo:games.memory:MemoryGame", source="x")
    with pytest.raises(ValueError, match="--allow-game"):
        trust.allow_games([" "])


# ---- actors --------------------------------------------------------------------------------
def test_a_spoofed_learner_cannot_run_code_on_an_actor(spoofed, tmp_path, capsys):
    marker = tmp_path / "pwned"
    learner = spoofed(evil_config(marker))
    with pytest.raises(ActorError, match=f"the learner at {learner.endpoint}: game "
                                         f"'pettingzoo:os:system' is not trusted"):
        run_actor(learner.endpoint, hello_timeout_s=10)
    assert main(["actor", "--connect", learner.endpoint, "--timeout", "10"]) == 2
    err = capsys.readouterr().err
    assert "arena actor: error: refusing the learner's config" in err
    assert "--allow-game os" in err and "Traceback" not in err
    assert learner.hellos == 2 and not marker.exists()


def test_an_actor_refuses_dotted_specs_through_a_trusted_namespace(spoofed, tmp_path, capsys):
    marker = tmp_path / "pwned"
    learner = spoofed(evil_config(marker, "pettingzoo:mpe2.simple_tag_v3:os.system"))
    assert main(["actor", "--connect", learner.endpoint, "--timeout", "10"]) == 2
    assert "only the factories env, parallel_env, raw_env" in capsys.readouterr().err
    assert not marker.exists()


def test_an_actor_builds_a_game_its_own_command_line_allows(spoofed, tmp_path, capsys):
    config = to_dict(load_config(None, [*SMALL, "league.bot_prob=0", "league.enabled=false",
                                        "league.bots=[]", "eval.bots=null",
                                        "actors.timeout_s=1"]))
    config["game"]["name"] = "pettingzoo:games.memory:MemoryGame"
    config["game"]["options"] = {"teams": TEAMS, "team_size": 1}
    learner = spoofed(config)
    assert main(["actor", "--connect", learner.endpoint, "--timeout", "10"]) == 2
    assert "--allow-game games.memory" in capsys.readouterr().err
    # allowed: the actor builds the game and its policies, then waits for weights in vain
    assert main(["actor", "--connect", learner.endpoint, "--timeout", "10",
                 "--allow-game", "games.memory"]) == 2
    err = capsys.readouterr().err
    assert "no weights from the learner" in err and "not trusted" not in err


def test_the_hello_carries_no_key_folder_and_the_learner_checks_its_own(tmp_path):
    cfg = to_dict(load_config(None, [*SMALL, "actors.listen=true", "league.enabled=false"]))
    empty = tmp_path / "keys"
    empty.mkdir()
    cfg["actors"]["curve_keys"] = str(empty)
    with pytest.raises(ConfigError, match="actors.curve_keys: .* holds no server.key_secret"):
        ActorService(cfg, 0, None, None, 2)


# ---- players: arena tournament / arena watch ------------------------------------------------
def evil_run(root, marker, name="pettingzoo:os:system"):
    """A run directory someone hands over: config.yaml names `name`; one league snapshot."""
    from arena.config import atomic_write_text, config_from_dict, to_yaml

    run = root / "handed-over"
    run.mkdir()
    atomic_write_text(run / "config.yaml", to_yaml(config_from_dict(evil_config(marker, name))))
    OpponentPool(run / "league" / "hero").add({"w": torch.zeros(1)}, update=1, agent_steps=1)
    return run


def test_tournament_and_watch_refuse_a_run_whose_config_runs_code(tmp_path, capsys):
    marker = tmp_path / "pwned"
    run = evil_run(tmp_path, marker)
    assert main(["tournament", f"{run}@0", "--bots", "random", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'config.yaml'}: game 'pettingzoo:os:system' is not trusted" in err
    assert "--allow-game os" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert main(["watch", f"{run}@0", "random", "--out", str(tmp_path / "m.gif")]) == 2
    assert "game 'pettingzoo:os:system' is not trusted" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "m.gif").exists()
    # the whole run directory (its league snapshots) is refused too, whatever the message
    assert main(["tournament", str(run), "--bots", "random", "--out", str(tmp_path)]) == 2
    assert "Traceback" not in capsys.readouterr().err and not marker.exists()


def test_a_whole_run_whose_config_runs_code_is_refused_naming_its_config(tmp_path, capsys):
    marker = tmp_path / "pwned"
    run = evil_run(tmp_path, marker)
    assert main(["tournament", str(run), "--bots", "random", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert f"{run / 'config.yaml'}: game 'pettingzoo:os:system' is not trusted" in err, err


def test_an_allowed_module_passes_the_trust_check(tmp_path, capsys):
    run = evil_run(tmp_path, tmp_path / "unused", "pettingzoo:games.memory:MemoryGame")
    assert main(["watch", f"{run}@0", "random", "--out", str(tmp_path / "m.gif")]) == 2
    assert "--allow-game games.memory" in capsys.readouterr().err
    # allowed, it meets the next rule: the game must build with the run's options
    assert main(["watch", f"{run}@0", "random", "--out", str(tmp_path / "m.gif"),
                 "--allow-game", "games.memory"]) == 2
    err = capsys.readouterr().err
    assert "not trusted" not in err and "'command'" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "m.gif").exists()


def memory_checkpoint(root):
    """A trained-looking checkpoint of a game from outside the trusted namespaces (the memory
    game as a pettingzoo: spec, red vs blue), in a run directory of its own."""
    config = to_dict(load_config(None, [*SMALL, "league.enabled=false", "league.bot_prob=0",
                                        "league.bots=[]", "eval.bots=null"]))
    config["game"]["name"] = "pettingzoo:games.memory:MemoryGame"
    config["game"]["options"] = {"teams": TEAMS, "team_size": 1}
    config["reward"]["weights"] = {}  # the memory game reports no MOBA events
    return save_checkpoint(root / "mem" / "checkpoints" / "update-000001.ckpt", config)


def test_an_allowed_third_party_run_is_played(tmp_path, capsys):
    # tournaments and watch once played the MOBA only; an allowed game of any kind is played
    ckpt = memory_checkpoint(tmp_path)
    run = ckpt.parent.parent
    argv = ["tournament", str(run), "--bots", "random", "--games", "2", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "--allow-game games.memory" in capsys.readouterr().err
    assert main([*argv, "--allow-game", "games.memory"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "mem/update-000001" in out and "random (anchor)" in out
    doc = json.loads((tmp_path / "tournament.json").read_text())
    assert doc["meta"]["game"] == "pettingzoo:games.memory:MemoryGame"
    assert doc["meta"]["teams"] == ["red", "blue"]
    (match,) = doc["matches"]
    assert all(len(s) == 2 and set(s) <= {0.0, 0.5, 1.0} for s in match["scores"].values())
    # the memory game draws no pictures: watch says so before a match is played
    gif = tmp_path / "m.gif"
    assert main(["watch", str(ckpt), "random", "--out", str(gif),
                 "--allow-game", "games.memory"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "not trusted" not in err and "render_mode" in err and len(err.splitlines()) == 1, err
    assert "result:" not in captured.out and not gif.exists()


def save_checkpoint(path, config):
    """A checkpoint as Lightning writes it, enough for load_learner (untrained weights)."""
    learner = PPOLearner({**config, "actors": {**config["actors"], "curve_keys": None}})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": learner.state_dict(), "hyper_parameters": {"config": config},
                "arena": {"updates": 1, "agent_steps": 1}}, path)
    return path


def test_a_checkpoint_whose_config_runs_code_is_refused_before_the_learner_is_built(tmp_path,
                                                                                   capsys):
    marker = tmp_path / "pwned"
    good = to_dict(load_config(None, SMALL))
    ckpt = save_checkpoint(tmp_path / "run" / "checkpoints" / "update-000001.ckpt", good)
    data = torch.load(ckpt, weights_only=True)
    data["hyper_parameters"]["config"] = evil_config(marker)
    torch.save(data, ckpt)
    with pytest.raises(CheckpointError, match=f"^{ckpt}: game 'pettingzoo:os:system' is not"):
        load_learner(ckpt)
    assert main(["tournament", str(tmp_path / "run"), "--bots", "random"]) == 2
    assert "is not trusted" in capsys.readouterr().err
    assert main(["watch", str(ckpt), "random", "--out", str(tmp_path / "m.gif")]) == 2
    assert "is not trusted" in capsys.readouterr().err
    assert not marker.exists()


def test_players_ignore_the_training_machines_key_folder(tmp_path):
    config = to_dict(load_config(None, SMALL))
    config["actors"]["curve_keys"] = str(tmp_path / "gone")  # keys of a machine long gone
    ckpt = save_checkpoint(tmp_path / "update-000001.ckpt", config)
    player = load_player(str(ckpt), MatchGame("moba", config["game"]["options"]))
    assert player.kind == "policy" and set(player.policies) == {"hero"}
    assert saved_config(str(ckpt)).actors.curve_keys is None


def test_resume_refuses_a_handed_over_run_whose_config_runs_code(tmp_path, capsys):
    marker = tmp_path / "pwned"
    run = evil_run(tmp_path, marker)
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'config.yaml'}: game 'pettingzoo:os:system' is not trusted" in err
    assert "Traceback" not in err and not marker.exists()
    # a module the user allows passes the trust check
    (tmp_path / "other").mkdir()
    other = evil_run(tmp_path / "other", tmp_path / "unused", "pettingzoo:games.memory:MemoryGame")
    assert main(["train", "--resume", str(other)]) == 2
    assert "--allow-game games.memory" in capsys.readouterr().err
    assert main(["train", "--resume", str(other), "--allow-game", "games.memory"]) == 2
    assert "not trusted" not in capsys.readouterr().err
