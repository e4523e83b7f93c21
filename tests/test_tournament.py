"""Players, matches through the one policy runner, and `arena tournament` (on the MOBA; other
games: tests/test_any_game_play.py)."""

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
from arena.learn.learner import PPOLearner
from arena.play.evaluate import BotEvaluator, play_vs_bots
from arena.play.players import (
    BotPlayer,
    MatchGame,
    PolicyPlayer,
    check_fits,
    load_player,
)
from arena.play.runner import BotSide, play_against, play_games
from arena.play.tournament import Entrant, entrants_from, run_tournament, write_results
from arena.train import train
from games.vector import make_vec
from league.ratings import BOT_ANCHORS

SHORT = ["game.options.max_ticks=30", "game.num_envs=2", "ppo.chunk_len=10",
         "ppo.chunks_per_update=3", "eval.every=0", "watch.every=0", "model.hidden=32",
         "model.lstm_hidden=32"]
OPTIONS = {"team_size": 3, "max_ticks": 60}
GAME = MatchGame("moba", OPTIONS)
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


def weights(player):
    return {f"{key}.{name}": t for key, policy in player.policies.items()
            for name, t in policy.state_dict().items()}


# ---- players and matches --------------------------------------------------------------------
def test_players_from_every_kind_of_spec(run_dir):
    snap_file = run_dir / "league" / "hero" / "snapshot-000001.safetensors"
    ckpt = run_dir / "checkpoints" / "update-000001.ckpt"
    expected = {str(run_dir): ("t", 2), str(ckpt): ("t/update-000001", 1),
                f"{run_dir}@0": ("t@0", 1), f"{run_dir}@1": ("t@1", 2),
                str(snap_file): ("t@1", 2)}
    bot = load_player("random", GAME)
    assert isinstance(bot, BotPlayer) and bot.name == "random" and bot.update is None
    short = MatchGame("moba", {**OPTIONS, "max_ticks": 20})
    vec = short.vec(2, autoreset=False)
    try:
        for seed, (spec, (name, update)) in enumerate(expected.items()):
            player = load_player(spec, GAME)
            assert isinstance(player, PolicyPlayer) and set(player.policies) == {"hero"}
            assert (player.name, player.update) == (name, update), spec
            check_fits(player, short)
            scores = play_against(vec, player.side(vec, seed), bot.side(vec, seed + 1), seed=0)
            assert scores.shape == (2,) and np.isin(scores, [0.0, 0.5, 1.0]).all(), spec
    finally:
        vec.close()
    # the snapshot by id and by file are the same weights
    a = weights(load_player(f"{run_dir}@1", GAME))
    b = weights(load_player(str(snap_file), GAME))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


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
    cases[f"{bad_run}@0"] = "do not fit the network of its config"
    empty = tmp_path / "empty_run"
    empty.mkdir()
    cases[str(empty)] = "no checkpoints"
    for spec, message in cases.items():
        with pytest.raises(CheckpointError, match=message) as info:
            load_player(spec, GAME)
        if spec != "nosuchbot":
            assert str(info.value).startswith(spec.split("@")[0]) or spec in str(info.value), spec
    # a player of another team size loads, and is refused when it takes a seat
    two = MatchGame("moba", {"team_size": 2})
    player = load_player(str(run_dir), two)
    with pytest.raises(CheckpointError, match="another team size") as info:
        check_fits(player, two)
    assert str(info.value).startswith(str(run_dir))
    vec = two.vec(1)
    try:
        with pytest.raises(CheckpointError, match="another team size"):
            player.side(vec, seed=0)
    finally:
        vec.close()


def test_policy_players_are_reproducible_and_leave_torch_random_state_alone(run_dir):
    cache: dict = {}

    def trace(seed):
        a = load_player(f"{run_dir}@1", GAME, cache=cache)
        b = load_player(f"{run_dir}@0", GAME, cache=cache)
        vec = GAME.vec(2, autoreset=False)
        digest = hashlib.sha256()
        torch.manual_seed(123)
        before = torch.get_rng_state()
        try:
            seats = np.array([[0, 1], [1, 0]])
            result = play_games(vec, [a.side(vec, seed), b.side(vec, seed + 1)], seats, seed=3,
                                on_step=lambda v, step: digest.update(v.core.unit_f.tobytes()))
        finally:
            vec.close()
        # sampling uses the players' own generators, never torch's global one
        assert torch.equal(torch.get_rng_state(), before)
        return result.scores(seats, 0).tolist(), digest.hexdigest()

    first = trace(0)
    assert len(cache) == 2  # each spec's networks loaded once
    assert trace(0) == first
    assert trace(1)[1] != first[1]  # another seed, other actions


def test_per_agent_weights_play_each_hero_with_its_own_network():
    learner = untrained("model.per_agent_weights=true")
    assert len(learner.groups) == 6
    with torch.no_grad():
        learner.policy_for("hero.dire_0").actor.bias[0] = 1e4  # always the no-op
        learner.policy_for("hero.dire_1").actor.bias[0] = -1e4  # never the no-op
    policies = {g.key: learner.policy_for(g.key) for g in learner.groups}
    player = PolicyPlayer("per-agent", policies, per_agent_weights=True, deterministic=True)
    game = MatchGame("moba", {"team_size": 3, "max_ticks": 30})
    vec = game.vec(2, autoreset=False)
    try:
        side = player.side(vec, seed=0)
        assert sorted(g.key for g in side.groups) == sorted(policies)  # a network per hero
        step = vec.reset(seed=0)
        mine = np.zeros((2, vec.num_slots), bool)
        mine[:, 3:] = True  # the dire heroes of both games
        side.reset(mine)
        out = np.full((2, vec.num_slots), -1, np.int64)
        side.act(step, np.ones((2, vec.num_slots), bool), out)
        assert (out[:, :3] == -1).all()  # radiant's slots are not this side's
        assert (out[:, 3] == 0).all() and (out[:, 4] != 0).all()  # dire_0 and dire_1
        scores = play_against(vec, side, BotPlayer("random", "moba").side(vec, seed=1), seed=0)
        assert scores.shape == (2,)
    finally:
        vec.close()


def test_sides_play_both_teams_and_act_once_per_step_for_all_their_rows():
    game = MatchGame("moba", {"team_size": 1, "max_ticks": 600})
    vec = game.vec(4, autoreset=False)
    try:
        pusher = BotPlayer("pusher", "moba").side(vec, seed=0)
        rand = BotPlayer("random", "moba").side(vec, seed=1)
        # pusher wins from either team; as the second side it loses every game it plays
        assert play_against(vec, pusher, rand, seed=0).tolist() == [1.0] * 4
        assert play_against(vec, rand, pusher, seed=0).tolist() == [0.0] * 4
        # three sides at the tables of one batch: each acts once per step, for all its rows
        calls = []

        class Counting:
            def __init__(self, bot):
                self.bot = bot

            def act(self, obs, mask):
                calls.append(len(obs))
                return self.bot.act(obs, mask)

        lasthitter = BotPlayer("lasthitter", "moba").side(vec, seed=2)
        counting = BotSide(vec, {r: Counting(b) for r, b in lasthitter.bots.items()})
        passive = BotPlayer("passive", "moba").side(vec, seed=3)
        seats = np.array([[0, 1], [1, 0], [0, 2], [2, 0]])
        result = play_games(vec, [counting, rand, passive], seats, seed=0)
    finally:
        vec.close()
    assert set(calls) == {4}  # 4 games x 1 hero of its own, in one call per step
    assert len(calls) == result.lengths.max()
    assert [result.scores(seats, 0).shape, result.scores(seats, 2).shape] == [(4,), (4,)]


def test_bot_evaluation_keeps_its_interface():
    learner = untrained("game.options.max_ticks=20")
    scores = play_vs_bots(learner, ["random", "pusher"], games_per_side=2, seed=0)
    assert list(scores) == ["random", "pusher"] and all(s.shape == (4,) for s in scores.values())
    again = play_vs_bots(learner, ["random", "pusher"], games_per_side=2, seed=0)
    assert all(np.array_equal(scores[k], again[k]) for k in scores)
    learner.pools = {}  # no league: the evaluator plays the bots only
    metrics = BotEvaluator(["random"], games=2, seed=0)(learner)
    assert set(metrics) >= {"eval/win_rate_vs_random", "eval/rating"}


def test_an_evaluation_plays_all_its_references_in_one_batch():
    """Every reference plays its own block of games, each team in turn, and the learner
    makes one forward pass per step for the games of all of them, not one per reference."""
    from arena.play.evaluate import bot_opponents, play_references

    learner = untrained("game.options.max_ticks=20")
    policy = learner.policy_for("hero")
    rows, step = [], policy.step

    def counting_step(obs, *args, **kwargs):
        rows.append(len(obs))
        return step(obs, *args, **kwargs)

    seated = {}

    def recording(name, make):
        def side(vec):
            inner = make(vec)
            reset = inner.reset

            def record(mine):
                seated[name] = np.asarray(mine).copy()
                reset(mine)
            inner.reset = record
            return inner
        return name, side

    policy.step = counting_step
    opponents = [recording(n, f) for n, f in bot_opponents("moba", ["random", "pusher"], seed=0)]
    scores = play_references(learner, opponents, games=4, seed=0)
    team_size = 3
    assert list(scores) == ["random", "pusher"] and all(s.shape == (4,) for s in scores.values())
    assert set(rows) == {8 * team_size}  # 2 blocks x 4 games, one team each, in one call
    assert len(rows) == 20  # one call per step (the games last their 20 ticks)
    probe = make_vec("moba", 1, team_size=team_size)
    slot_team = np.asarray(probe.slot_team)
    probe.close()
    for k, name in enumerate(["random", "pusher"]):
        mine = seated[name]  # (games, slots): only its block, the team the learner is not
        assert not mine[:4 * k].any() and not mine[4 * (k + 1):].any()
        for b in range(4):
            assert (mine[4 * k + b] == (slot_team != b % 2)).all()


def test_frozen_references_act_together_each_game_with_its_own_networks():
    """StackedRunner: the snapshots of an evaluation in one forward pass per step, game b
    played by policy set owner[b], a set of another architecture in a stack of its own."""
    from agents.policy import RecurrentPolicy
    from arena.play.runner import StackedRunner

    learner = untrained("game.options.max_ticks=20")
    (g,) = learner.groups
    base = learner.policy_for(g.key)

    def favouring(action: int, lstm_hidden: int = base.lstm_hidden) -> RecurrentPolicy:
        p = RecurrentPolicy(base.obs_dim, base.num_actions, hidden=32, lstm_hidden=lstm_hidden,
                            entity_layout=base.entity_layout)
        with torch.no_grad():
            p.actor.weight.zero_()
            p.actor.bias.zero_()
            p.actor.bias[action] = 50.0
        return p.eval()

    favourite = [3, 5, 2, 4]
    sets = [favouring(3), favouring(5), favouring(2, lstm_hidden=16), favouring(4)]
    vec = make_vec("moba", 6, team_size=3)
    owner = np.array([0, 1, -1, 2, 3, 1])
    runner = StackedRunner(vec, learner.groups, [lambda key, p=p: p for p in sets], owner, seed=0)
    assert len(runner._stacks[g.key]) == 2  # the narrower LSTM has a stack of its own
    step = vec.reset(seed=0)
    slot_team = np.asarray(vec.slot_team)
    mine = np.repeat((slot_team == 1)[None], 6, axis=0)
    runner.reset(mine)
    out = np.full((6, vec.num_slots), -1, np.int64)
    for _ in range(3):  # the LSTM states carry on from step to step
        runner.act(step, np.zeros((6, vec.num_slots), bool), out)
        for b in range(6):
            want = -1 if owner[b] < 0 else favourite[owner[b]]
            assert (out[b, slot_team == 1] == want).all()
            assert (out[b, slot_team == 0] == -1).all()
        step = vec.step(np.where(out < 0, 0, out))
    vec.close()


# ---- tournaments ------------------------------------------------------------------------------
def test_bots_alone_rank_in_their_known_order(tmp_path, capsys):
    code = main(["tournament", "--bots", "--games", "8", "--max-ticks", "600", "--seed", "1",
                 "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = list(csv.DictReader((tmp_path / "tournament.csv").open()))
    # the ladder in its order; the teamfighter (a style, not a rung) above the lasthitter
    names = [r["name"] for r in rows]
    assert [n for n in names if n != "teamfighter"] == ["pusher", "lasthitter", "passive",
                                                        "random"]
    assert names.index("teamfighter") < names.index("lasthitter")
    assert [int(r["games"]) for r in rows] == [32] * 5
    doc = json.loads((tmp_path / "tournament.json").read_text())
    assert [r["name"] for r in doc["table"]] == [r["name"] for r in rows]
    assert len(doc["matches"]) == 10
    for match in doc["matches"]:
        assert len(match["players"]) == 2 and set(match["scores"]) == set(match["players"])
        a, b = (match["scores"][p] for p in match["players"])
        assert len(a) == len(b) == 8 and all(x + y == 1.0 for x, y in zip(a, b))
        assert match["mean"][match["players"][0]] == pytest.approx(np.mean(a))
    assert doc["meta"]["game"] == "moba" and doc["meta"]["game_options"] == {"max_ticks": 600}
    assert doc["meta"]["teams"] == ["radiant", "dire"]
    out = captured.out
    assert out.index("pusher") < out.index("lasthitter") < out.index("passive") < out.index("random")
    assert "mu - 3 sigma" in out and "win rate" in out
    assert "tournament on moba (radiant vs dire): 5 players, 10 pairs" in captured.err
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_run_directories_enter_with_their_snapshots(run_dir, tmp_path):
    entrants = entrants_from([str(run_dir)], ["random"])
    assert [(e.name, e.update) for e in entrants] == [("t@0", 1), ("t@1", 2), ("random", None)]
    assert all(e.run == str(run_dir) for e in entrants[:2]) and entrants[2].is_bot
    # without league snapshots a run enters with its checkpoints
    no_league = tmp_path / "nl"
    shutil.copytree(run_dir, no_league, ignore=shutil.ignore_patterns("league", "tb"))
    assert [(e.name, e.update) for e in entrants_from([str(no_league)])] == \
        [("nl/update-000001", 1), ("nl/update-000002", 2)]
    # the same player twice enters once
    again = entrants_from([str(run_dir), f"{run_dir}@1", "random"], ["random"])
    assert [e.name for e in again] == ["t@0", "t@1", "random"]
    with pytest.raises(CheckpointError, match="unknown bot 'connect4' for game 'moba'"):
        entrants_from([str(run_dir)], ["connect4"], GAME)


def test_a_run_with_snapshots_and_no_checkpoint_plays_its_snapshots(run_dir, tmp_path, capsys):
    only = tmp_path / "so"
    shutil.copytree(run_dir, only,
                    ignore=shutil.ignore_patterns("checkpoints", "tb", "tournament*"))
    assert [e.name for e in entrants_from([str(only)], ["random"])] == ["so@0", "so@1", "random"]
    code = main(["tournament", str(only), "--bots", "random", "--games", "2", "--max-ticks", "60"])
    assert code == 0, capsys.readouterr().err


def test_tournaments_are_deterministic_and_workers_change_nothing(run_dir, tmp_path):
    entrants = entrants_from([str(run_dir), str(run_dir / "checkpoints" / "update-000002.ckpt")],
                             ["random"])
    one, res1 = run_tournament(entrants, GAME, games=4, seed=5, workers=1)
    again, res_again = run_tournament(entrants, GAME, games=4, seed=5, workers=1)
    two, res2 = run_tournament(entrants, GAME, games=4, seed=5, workers=2)
    assert res1 == res_again == res2
    assert one.table() == again.table() == two.table()
    assert one.rating("random") == (BOT_ANCHORS["random"], 1.0)  # the bot anchors the scale
    assert len(res1) == 6 and list(res1) == sorted(res1)
    for table, per_game in res1.items():
        assert len(table) == 2 and len(per_game) == 4
        assert all(len(g) == 2 and sum(g) == 1.0 and set(g) <= {0.0, 0.5, 1.0} for g in per_game)
    json_path, csv_path = write_results(tmp_path, one, entrants, res1, {"seed": 5})
    doc = json.loads(json_path.read_text())
    assert {r["name"]: r["update"] for r in doc["table"]}["t@1"] == 2
    assert doc["ratings"]["anchors"] == ["random"]
    assert len(doc["matches"]) == 6
    first = doc["matches"][0]
    names = [entrants[i].name for i in next(iter(res1))]
    assert first["players"] == names
    assert first["scores"] == {n: [g[m] for g in res1[tuple(next(iter(res1)))]]
                               for m, n in enumerate(names)}
    assert len(list(csv.DictReader(csv_path.open()))) == 4


def test_table_seeds_do_not_depend_on_the_other_participants():
    game = MatchGame("moba", {"max_ticks": 60})
    entrants = [Entrant("random", "random"), Entrant("passive", "passive")]
    _, small = run_tournament(entrants, game, games=2, seed=9)
    _, big = run_tournament([*entrants, Entrant("pusher", "pusher")], game, games=2, seed=9)
    assert list(small) == [(0, 1)] and big[(0, 1)] == small[(0, 1)]
    assert set(big) == {(0, 1), (0, 2), (1, 2)}


def test_cli_tournament_writes_into_the_run_and_logs_the_rating_curve(run_dir, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code = main(["tournament", str(run_dir), "--bots", "random", "--games", "2",
                 "--max-ticks", "60"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (run_dir / "tournament.json").is_file() and (run_dir / "tournament.csv").is_file()
    assert "t@0" in captured.out and "t@1" in captured.out and "(anchor)" in captured.out
    doc = json.loads((run_dir / "tournament.json").read_text())
    assert doc["meta"]["game"] == "moba"
    assert doc["meta"]["game_options"]["max_ticks"] == 60  # the run's options, --max-ticks on top
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
        (["tournament", "--bots", "--game", "connect_four", "--max-ticks", "9"],
         "game 'connect_four' with options {'max_ticks': 9}: "),  # the game refuses it
        (["tournament", "--bots", "--set", "max_ticks"], "expected KEY=VALUE"),
        (["tournament", "--bots", "--game", "no_such_game"], "no_such_game"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
