"""Players, the batched match runner, and `arena tournament`."""

import csv
import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from arena.checkpoints import CheckpointError
from arena.cli import main
from arena.config import CONFIG_DIR, load_config, to_dict
from arena.evaluate import BotEvaluator, play_vs_bots
from arena.learner import PPOLearner
from arena.players import BotPlayer, PolicyPlayer, load_player, play_match, play_matches
from arena.tournament import Entrant, entrants_from, run_tournament, write_results
from arena.train import train
from games.moba import MobaLayout, make_config
from league.ratings import BOT_ANCHORS

SHORT = ["game.options.max_ticks=30", "game.num_envs=2", "ppo.chunk_len=10",
         "ppo.chunks_per_update=3", "eval.every=0", "watch.every=0", "model.hidden=32",
         "model.lstm_hidden=32"]
OPTIONS = {"team_size": 3, "max_ticks": 60}
BOTS = ["random", "passive", "lasthitter", "pusher"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny MOBA run: checkpoints and league snapshots at updates 1 and 2."""
    root = tmp_path_factory.mktemp("runs")
    return train(load_config(CONFIG_DIR / "default.yaml", [
        *SHORT, f"run.root={root}", "run.name=t", "trainer.max_updates=2",
        "trainer.checkpoint_every=1", "league.snapshot_every=1"]))


def untrained(*overrides):
    return PPOLearner(to_dict(load_config(CONFIG_DIR / "default.yaml", [*SHORT, *overrides]))).eval()


# ---- players and matches --------------------------------------------------------------------
def test_players_from_every_kind_of_spec(run_dir):
    snap_file = run_dir / "league" / "hero" / "snapshot-000001.safetensors"
    ckpt = run_dir / "checkpoints" / "update-000001.ckpt"
    expected = {str(run_dir): ("t", 2), str(ckpt): ("t/update-000001", 1),
                f"{run_dir}@0": ("t@0", 1), f"{run_dir}@1": ("t@1", 2),
                str(snap_file): ("t@1", 2)}
    bot = load_player("random", OPTIONS)
    assert isinstance(bot, BotPlayer) and bot.name == "random" and bot.update is None
    players = []
    for spec, (name, update) in expected.items():
        player = load_player(spec, OPTIONS, seed=1)
        assert isinstance(player, PolicyPlayer)
        assert (player.name, player.update) == (name, update), spec
        players.append(player)
    out = play_matches([(p, bot) for p in players], games=2, seed=0,
                       game_options={**OPTIONS, "max_ticks": 20})
    assert all(s.shape == (2,) and np.isin(s, [0.0, 0.5, 1.0]).all() for s in out)
    # the snapshot by id and by file are the same weights
    a = load_player(f"{run_dir}@1", OPTIONS).learner.state_dict()
    b = load_player(str(snap_file), OPTIONS).learner.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("policies."))


def test_spec_errors_name_the_spec(run_dir, tmp_path):
    cases = {
        "nosuchbot": "unknown bot 'nosuchbot'",
        str(tmp_path / "missing.ckpt"): "no such checkpoint file or run directory",
        f"{tmp_path / 'norun'}@3": "no such run directory",
        f"{run_dir}@7": "no snapshot 7",
        f"{run_dir}@x": "snapshot number",
    }
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    cases[str(garbage)] = "not a readable checkpoint"
    foreign = tmp_path / "memory.ckpt"
    torch.save({"state_dict": {}, "arena": {"updates": 1, "agent_steps": 1},
                "hyper_parameters": {"config": {"game": {"name": "memory"}}}}, foreign)
    cases[str(foreign)] = "game 'memory'"
    # a run whose snapshot does not fit its config
    bad_run = tmp_path / "bad"
    shutil.copytree(run_dir, bad_run, ignore=shutil.ignore_patterns("tb"))
    from safetensors.torch import save_file

    save_file({"policies.hero.nothing": torch.zeros(2)},
              str(bad_run / "league" / "hero" / "snapshot-000000.safetensors"))
    cases[f"{bad_run}@0"] = "do not fit the run's model"
    empty = tmp_path / "empty_run"
    empty.mkdir()
    cases[str(empty)] = "no checkpoints"
    for spec, message in cases.items():
        with pytest.raises(CheckpointError, match=message) as info:
            load_player(spec, OPTIONS)
        if spec != "nosuchbot":
            assert str(info.value).startswith(spec.split("@")[0]) or spec in str(info.value), spec
    with pytest.raises(CheckpointError, match="another team size"):
        load_player(str(run_dir), {"team_size": 2})


def test_policy_players_are_reproducible_and_leave_torch_random_state_alone(run_dir):
    cache: dict = {}

    def trace(seed):
        a = load_player(f"{run_dir}@1", OPTIONS, seed=seed, cache=cache)
        b = load_player(f"{run_dir}@0", OPTIONS, seed=seed + 1, cache=cache)
        digest = hashlib.sha256()
        torch.manual_seed(123)
        before = torch.get_rng_state()
        scores = play_matches([(a, b)], games=2, seed=3, game_options=OPTIONS,
                              on_step=lambda core: digest.update(core.unit_f.tobytes()))[0]
        # sampling uses the players' own generators, never torch's global one
        assert torch.equal(torch.get_rng_state(), before)
        return scores.tolist(), digest.hexdigest()

    first = trace(0)
    assert trace(0) == first
    assert trace(1)[1] != first[1]  # another seed, other actions


def test_per_agent_weights_play_each_hero_with_its_own_network():
    learner = untrained("model.per_agent_weights=true")
    assert len(learner.groups) == 6
    with torch.no_grad():
        learner.policy_for("hero.dire_0").actor.bias[0] = 1e4  # always the no-op
        learner.policy_for("hero.dire_1").actor.bias[0] = -1e4  # never the no-op
    player = PolicyPlayer("per-agent", learner, deterministic=True)
    config = make_config(team_size=3, max_ticks=30)
    from games.moba import MobaCore

    core = MobaCore(config, num_games=2, autoreset=False)
    r = core.reset(seed=0)
    player.begin(np.array([3, 4, 3, 4]))  # dire_0, dire_1 of two games
    actions = player.act(r.obs[[0, 0, 1, 1], [3, 4, 3, 4]], r.action_mask[[0, 0, 1, 1], [3, 4, 3, 4]],
                         np.ones(4, bool))
    assert actions[0] == 0 and actions[2] == 0 and actions[1] != 0 and actions[3] != 0
    with pytest.raises(ValueError, match="hero slot"):
        player.begin(4)
    scores = play_match(player, BotPlayer("random", MobaLayout(config)), games=2, seed=0,
                        game_options=config)
    assert scores.shape == (2,)


def test_sides_are_swapped_and_maps_mirrored():
    config = {"team_size": 1, "max_ticks": 600}
    lay = MobaLayout(make_config(**config))
    pusher, rand = BotPlayer("pusher", lay), BotPlayer("random", lay, seed=1)
    # pusher wins from either side; as B it loses every game it plays
    assert play_match(pusher, rand, games=4, seed=0, game_options=config).tolist() == [1.0] * 4
    assert play_match(rand, pusher, games=4, seed=0, game_options=config).tolist() == [0.0] * 4
    # several pairings in one core, one act per player per tick
    calls = []

    class Counting(BotPlayer):
        def act(self, obs, mask, episode_start):
            calls.append(len(obs))
            return super().act(obs, mask, episode_start)

    counting = Counting("lasthitter", lay)
    out = play_matches([(counting, rand), (counting, BotPlayer("passive", lay))], games=3, seed=0,
                       game_options=config)
    assert [len(s) for s in out] == [3, 3]
    assert set(calls) == {6}  # 2 pairings x 3 games x 1 hero, in one call per tick


def test_bot_evaluation_keeps_its_interface():
    learner = untrained("game.options.max_ticks=20")
    scores = play_vs_bots(learner, ["random", "pusher"], games_per_side=2, seed=0)
    assert list(scores) == ["random", "pusher"] and all(s.shape == (4,) for s in scores.values())
    again = play_vs_bots(learner, ["random", "pusher"], games_per_side=2, seed=0)
    assert all(np.array_equal(scores[k], again[k]) for k in scores)
    learner.pools = {}  # no league: the evaluator plays the bots only
    metrics = BotEvaluator(["random"], games=2, seed=0)(learner)
    assert set(metrics) >= {"eval/win_rate_vs_random", "eval/rating"}


# ---- tournaments ------------------------------------------------------------------------------
def test_bots_alone_rank_in_their_known_order(tmp_path, capsys):
    code = main(["tournament", "--bots", "--games", "8", "--max-ticks", "600", "--seed", "1",
                 "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = list(csv.DictReader((tmp_path / "tournament.csv").open()))
    assert [r["name"] for r in rows] == ["pusher", "lasthitter", "passive", "random"]
    assert [int(r["games"]) for r in rows] == [24] * 4
    doc = json.loads((tmp_path / "tournament.json").read_text())
    assert [r["name"] for r in doc["table"]] == [r["name"] for r in rows]
    assert len(doc["pairs"]) == 6 and all(len(p["scores"]) == 8 for p in doc["pairs"])
    assert doc["meta"]["game_options"] == {"max_ticks": 600}
    out = captured.out
    assert out.index("pusher") < out.index("lasthitter") < out.index("passive") < out.index("random")
    assert "mu - 3 sigma" in out and "win rate" in out
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_run_directories_enter_with_their_snapshots(run_dir, tmp_path):
    entrants = entrants_from([str(run_dir)], ["random"])
    assert [(e.name, e.update) for e in entrants] == [("t@0", 1), ("t@1", 2), ("random", None)]
    # without league snapshots a run enters with its checkpoints
    no_league = tmp_path / "nl"
    shutil.copytree(run_dir, no_league, ignore=shutil.ignore_patterns("league", "tb"))
    assert [(e.name, e.update) for e in entrants_from([str(no_league)])] == \
        [("nl/update-000001", 1), ("nl/update-000002", 2)]
    # the same player twice enters once
    again = entrants_from([str(run_dir), f"{run_dir}@1", "random"], ["random"])
    assert [e.name for e in again] == ["t@0", "t@1", "random"]


def test_tournaments_are_deterministic_and_workers_change_nothing(run_dir, tmp_path):
    entrants = entrants_from([str(run_dir), str(run_dir / "checkpoints" / "update-000002.ckpt")],
                             ["random"])
    one, pairs1 = run_tournament(entrants, games=4, seed=5, workers=1, game_options=OPTIONS)
    again, pairs_again = run_tournament(entrants, games=4, seed=5, workers=1, game_options=OPTIONS)
    two, pairs2 = run_tournament(entrants, games=4, seed=5, workers=2, game_options=OPTIONS)
    assert pairs1 == pairs_again == pairs2
    assert one.table() == again.table() == two.table()
    assert one.rating("random") == (BOT_ANCHORS["random"], 1.0)  # the bot anchors the scale
    assert len(pairs1) == 6 and all(len(s) == 4 for s in pairs1.values())
    json_path, csv_path = write_results(tmp_path, one, entrants, pairs1, {"seed": 5})
    doc = json.loads(json_path.read_text())
    assert {r["name"]: r["update"] for r in doc["table"]}["t@1"] == 2
    assert doc["ratings"]["anchors"] == ["random"]
    assert len(list(csv.DictReader(csv_path.open()))) == 4


def test_pair_seeds_do_not_depend_on_the_other_participants():
    entrants = [Entrant("random", "random"), Entrant("passive", "passive")]
    _, small = run_tournament(entrants, games=2, seed=9, game_options={"max_ticks": 60})
    _, big = run_tournament([*entrants, Entrant("pusher", "pusher")], games=2, seed=9,
                            game_options={"max_ticks": 60})
    assert big["random vs passive"] == small["random vs passive"]


def test_cli_tournament_writes_into_the_run_and_logs_the_rating_curve(run_dir, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code = main(["tournament", str(run_dir), "--bots", "random", "--games", "2",
                 "--max-ticks", "60"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (run_dir / "tournament.json").is_file() and (run_dir / "tournament.csv").is_file()
    assert "t@0" in captured.out and "t@1" in captured.out and "(anchor)" in captured.out
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    assert [s.step for s in acc.Scalars("tournament/rating")] == [1, 2]
    assert "tournament/table/text_summary" in acc.Tags()["tensors"]


def test_tournament_errors_are_one_line_and_exit_2(capsys, tmp_path):
    cases = [
        (["tournament"], "no participants"),
        (["tournament", "--bots", "random"], "at least 2 participants"),
        (["tournament", str(tmp_path / "nope"), "--bots"], "nope"),
        (["tournament", "--bots", "random", "superbot"], "unknown bot 'superbot'"),
        (["tournament", "random", "superbot"], "unknown bot 'superbot'"),
        (["tournament", "--bots", "--team-size", "9"], "team_size"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
