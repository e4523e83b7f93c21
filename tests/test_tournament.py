"""Ratings, players, tournaments, and `arena watch` with checkpoints."""

import csv
import json

import numpy as np
import pytest

from arena.checkpoints import CheckpointError
from arena.cli import main
from arena.config import CONFIG_DIR, load_config
from arena.players import load_player, play_match
from arena.tournament import entrants_from, run_tournament, write_results
from arena.train import train
from league.ratings import RatingTable

SHORT = ["game.options.max_ticks=30", "game.num_envs=2", "ppo.chunk_len=10",
         "ppo.chunks_per_update=3", "eval.every=0", "model.hidden=32", "model.lstm_hidden=32"]
OPTIONS = {"team_size": 3, "max_ticks": 120}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return train(load_config(CONFIG_DIR / "default.yaml", [
        *SHORT, f"run.root={root}", "run.name=t", "trainer.max_updates=2",
        "trainer.checkpoint_every=1", "league.snapshot_every=1"]))


def test_ratings_anchors_stay_and_winners_rise():
    table = RatingTable(anchors={"random": 10.0})
    table.add("new")
    mu0 = table.rating("new")[0]
    for _ in range(5):
        table.update("new", "random", 1.0)
    assert table.rating("random") == (10.0, 1.0)  # anchors never move
    mu, sigma = table.rating("new")
    assert mu > mu0 and table.conservative("new") == pytest.approx(mu - 3 * sigma)
    table.update("new", "random", 0.5)
    assert [r["name"] for r in table.table()][0] in ("new", "random")
    again = RatingTable()
    again.load_state_dict(json.loads(json.dumps(table.state_dict())))
    assert again.table() == table.table()


def test_ratings_are_deterministic():
    def rate():
        t = RatingTable()
        for a, b, s in [("x", "y", 1.0), ("y", "z", 0.5), ("z", "x", 0.0)] * 3:
            t.update(a, b, s)
        return t.table()

    assert rate() == rate()


def test_bots_alone_rank_in_their_known_order(tmp_path):
    entrants = entrants_from([], ["random", "passive", "lasthitter", "pusher"])
    table, pairs = run_tournament(entrants, games=4, seed=3, workers=1,
                                  game_options={"team_size": 3})
    assert [r["name"] for r in table.table()] == ["pusher", "lasthitter", "passive", "random"]
    json_path, csv_path = write_results(tmp_path, table, entrants, pairs, {"seed": 3})
    doc = json.loads(json_path.read_text())
    assert doc["table"][0]["name"] == "pusher" and len(doc["pairs"]) == 6
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["name"] for r in rows] == ["pusher", "lasthitter", "passive", "random"]


def test_run_snapshots_enter_with_their_updates_and_workers_change_nothing(run_dir, tmp_path):
    entrants = entrants_from([str(run_dir)], ["random"])
    assert [(e.name, e.update) for e in entrants] == [("t@0", 1), ("t@1", 2), ("random", None)]
    one, pairs1 = run_tournament(entrants, games=2, seed=5, workers=1, game_options=OPTIONS)
    two, pairs2 = run_tournament(entrants, games=2, seed=5, workers=2, game_options=OPTIONS)
    assert pairs1 == pairs2 and one.table() == two.table()
    assert one.rating("random") == (10.0, 1.0)  # the bot anchors the scale
    assert main(["tournament", str(run_dir), "--bots", "random", "--games", "2",
                 "--max-ticks", "120", "--out", str(tmp_path)]) == 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert [s.step for s in acc.Scalars("tournament/rating/t")] == [1, 2]
    assert (tmp_path / "tournament.json").is_file() and (tmp_path / "tournament.csv").is_file()


def test_players_from_checkpoints_runs_and_snapshots(run_dir):
    for spec in (str(run_dir), str(next((run_dir / "checkpoints").glob("update-*.ckpt"))),
                 f"{run_dir}@1"):
        player = load_player(spec, OPTIONS)
        scores = play_match(player, load_player("random", OPTIONS), games=2, seed=0,
                            game_options=OPTIONS)
        assert scores.shape == (2,) and np.isin(scores, [0.0, 0.5, 1.0]).all()
    with pytest.raises(CheckpointError, match="no snapshot 7"):
        load_player(f"{run_dir}@7", OPTIONS)
    with pytest.raises(CheckpointError, match="another team size"):
        load_player(str(run_dir), {"team_size": 2})


def test_tournament_errors(capsys, tmp_path):
    assert main(["tournament", "--bots", "random"]) == 2
    assert "at least 2 participants" in capsys.readouterr().err
    assert main(["tournament", str(tmp_path / "nope"), "--bots"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["tournament", "--bots", "random", "superbot"]) == 2
    assert "superbot" in capsys.readouterr().err


def test_watch_a_checkpoint_and_log_it_to_tensorboard(run_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "m.gif"
    assert main(["watch", str(run_dir), "random", "--out", str(out), "--max-ticks", "40",
                 "--tensorboard", str(tmp_path / "tb")]) == 0
    assert out.read_bytes()[:6] == b"GIF89a"
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    acc.Reload()
    assert acc.Tags()["images"] == ["match/t_vs_random"]
