"""Tournaments and `arena watch` for games other than the MOBA: tiny runs of magent2 battle,
mpe2 simple_tag (asymmetric roles: predators and prey) and connect four (turn-based), and a
game of three teams written here. (Evaluation against `random` during training for a
third-party game: tests/test_any_game_training.py; the MOBA: tests/test_tournament.py and
tests/test_cli.py.)"""

from __future__ import annotations

import json
import re
from typing import ClassVar

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo import ParallelEnv
from PIL import Image

import games
from arena.cli import main
from arena.config import CONFIG_DIR, load_config
from arena.play.players import MatchGame, PolicyPlayer, load_player, match_game
from arena.play.runner import play_games
from arena.play.tournament import entrants_from, run_tournament
from arena.train import train
from league.ratings import RatingTable

MAGENT = "pettingzoo:magent2.environments.battle_v4:parallel_env"
TAG = "pettingzoo:mpe2.simple_tag_v3:parallel_env"
TINY = ["trainer.max_updates=2", "trainer.checkpoint_every=1", "league.snapshot_every=1",
        "eval.every=0", "watch.every=0", "model.hidden=16", "model.lstm_hidden=16",
        "ppo.chunk_len=8", "ppo.chunks_per_update=1", "ppo.update_epochs=1",
        "ppo.num_minibatches=1", "game.num_envs=2"]


def tiny_run(root, config: str, name: str, *overrides: str):
    """Two updates of a config: checkpoints and league snapshots 0 (update 1) and 1 (2)."""
    return train(load_config(CONFIG_DIR / config, [*TINY, f"run.root={root}", f"run.name={name}",
                                                   *overrides]))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {
        "battle": tiny_run(root, "magent_battle.yaml", "battle", "game.options.map_size=12",
                           "game.options.max_cycles=20"),
        "tag_a": tiny_run(root, "simple_tag.yaml", "tag_a", "game.options.max_cycles=15"),
        "tag_b": tiny_run(root, "simple_tag.yaml", "tag_b", "game.options.max_cycles=15",
                          "run.seed=1"),
        # a match GIF of the latest policy in TensorBoard at update 2
        "four": tiny_run(root, "connect_four.yaml", "four", "league.bot_prob=0",
                         "watch.every=2", "watch.frame_every=2"),
    }


def tournament_doc(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out_dir = argv[argv.index("--out") + 1]
    with open(f"{out_dir}/tournament.json") as fh:
        return captured, json.load(fh)


def check_matches(doc, names, games_per_table):
    """Every pair of `names` met, each game scored 1/0.5/0 and adding up to 1."""
    met = {frozenset(m["players"]) for m in doc["matches"]}
    assert met == {frozenset((a, b)) for i, a in enumerate(names) for b in names[i + 1:]}
    for m in doc["matches"]:
        a, b = (m["scores"][p] for p in m["players"])
        assert len(a) == len(b) == games_per_table
        assert set(a) | set(b) <= {0.0, 0.5, 1.0}
        assert all(x + y == 1.0 for x, y in zip(a, b))


def watch_gif(capsys, argv, every):
    """Run `arena watch`, check the GIF against the match's length, return stdout."""
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    steps = int(re.search(r"^result: .* after (\d+) steps$", captured.out, re.MULTILINE).group(1))
    frames = len(range(0, steps + 1, every)) + (steps % every != 0)  # the end is always shown
    assert f": {frames} frames " in captured.out, captured.out
    with Image.open(argv[argv.index("--out") + 1]) as im:
        assert im.format == "GIF" and 2 <= im.n_frames <= frames  # identical frames merge
    assert "steps/s" in captured.err
    return captured.out, steps


# ---- magent2 battle -------------------------------------------------------------------------
def test_magent_battle_run_in_a_tournament_and_a_gif(runs, tmp_path, capsys):
    run = runs["battle"]
    captured, doc = tournament_doc(capsys, ["tournament", str(run), "--bots", "--games", "2",
                                            "--out", str(tmp_path)])
    assert "battle@0" in captured.out and "battle@1" in captured.out
    assert "random (anchor)" in captured.out
    assert f"tournament on {MAGENT} (red vs blue): 3 players" in captured.err
    assert doc["meta"]["game"] == MAGENT
    assert doc["meta"]["game_options"]["map_size"] == 12  # the run's own settings
    assert doc["meta"]["game_options"]["outcome"] == "survivors"
    assert {r["name"]: r["update"] for r in doc["table"]} == \
        {"battle@0": 1, "battle@1": 2, "random": None}
    assert {r["name"]: r["mu"] for r in doc["table"]}["random"] == 10.0
    check_matches(doc, ["battle@0", "battle@1", "random"], 2)
    gif = tmp_path / "battle.gif"
    out, steps = watch_gif(capsys, ["watch", str(run), "random", "--out", str(gif),
                                    "--every", "5"], every=5)
    assert out.startswith(f"battle (red) vs random (blue): {MAGENT}, seed 0, up to 20 steps\n")
    assert 1 <= steps <= 20
    with Image.open(gif) as im:
        assert im.size == (96, 112)


# ---- simple_tag: predators and prey -----------------------------------------------------------
def test_simple_tag_run_in_a_tournament_and_a_gif(runs, tmp_path, capsys):
    a, b = runs["tag_a"], runs["tag_b"]
    captured, doc = tournament_doc(capsys, ["tournament", str(a), f"{b}@1", "--bots", "random",
                                            "--games", "2", "--out", str(tmp_path)])
    assert f"tournament on {TAG} (adversary vs agent): 4 players, 6 pairs" in captured.err
    names = ["tag_a@0", "tag_a@1", "tag_b@1", "random"]
    assert {r["name"]: r["mu"] for r in doc["table"]}.keys() == set(names)
    assert {r["name"]: r["mu"] for r in doc["table"]}["random"] == 10.0
    assert doc["meta"]["teams"] == ["adversary", "agent"]
    check_matches(doc, names, 2)
    out, steps = watch_gif(capsys, ["watch", f"{a}@1", str(b), "--out", str(tmp_path / "t.gif"),
                                    "--every", "4"], every=4)
    assert out.startswith(f"tag_a@1 (adversary) vs tag_b (agent): {TAG}, seed 0, up to 15 "
                          f"steps\n")
    assert steps == 15  # simple_tag ends by its time limit
    assert re.search(r"^returns: adversary -?[\d,.]+, agent -?[\d,.]+$", out, re.MULTILINE), out
    with Image.open(tmp_path / "t.gif") as im:
        assert im.size == (700, 700)  # mpe2's own rgb_array


class Seen:
    """Wraps a side and records the (B, S) slots it was given to play at each reset."""

    def __init__(self, side, log):
        self.side, self.log = side, log

    def reset(self, mine=None):
        self.log.append(np.array(mine))
        self.side.reset(mine)

    def act(self, step, episode_start, out):
        self.side.act(step, episode_start, out)


def test_simple_tag_runs_meet_as_predators_and_as_prey(runs, monkeypatch):
    a, b = runs["tag_a"], runs["tag_b"]
    game = match_game([f"{a}@1", f"{b}@1"])
    assert game.name == TAG and game.options["max_cycles"] == 15
    for spec in (f"{a}@1", f"{b}@1"):  # two networks each: its predators' and its prey's
        player = load_player(spec, game)
        assert isinstance(player, PolicyPlayer) and set(player.policies) == {"adversary", "agent"}
    seen: dict[str, list[np.ndarray]] = {}
    side = PolicyPlayer.side

    def recording(self, vec, seed):
        return Seen(side(self, vec, seed), seen.setdefault(self.name, []))

    monkeypatch.setattr(PolicyPlayer, "side", recording)
    entrants = entrants_from([f"{a}@1", f"{b}@1"], [], game)
    table, results = run_tournament(entrants, game, games=4, seed=3, workers=1)
    (per_game,) = results.values()
    assert len(per_game) == 4 and all(sorted(g) in ([0.0, 1.0], [0.5, 0.5]) for g in per_game)
    vec = game.vec(1)
    teams = np.asarray(vec.slot_team)  # adversary_0..2 -> 0, agent_0 -> 1
    vec.close()
    (mine_a,), (mine_b,) = seen["tag_a@1"], seen["tag_b@1"]
    assert mine_a.shape == (4, 4) and (mine_a ^ mine_b).all()  # every slot played by one of them
    for g in range(4):  # each game: one run is the predators, the other the prey
        assert sorted(set(teams[mine_a[g]])) in ([0], [1])
    predators = [bool(mine_a[g][teams == 0].all()) for g in range(4)]
    assert predators.count(True) == predators.count(False) == 2  # both ways, equally
    # seats rotate with the game: a plays the predators in games 0 and 2
    assert predators == [True, False, True, False]
    assert {r["name"] for r in table.table()} == {"tag_a@1", "tag_b@1"}


def test_simple_tag_tournaments_are_the_same_with_workers(runs):
    a, b = runs["tag_a"], runs["tag_b"]
    game = match_game([str(a)])
    entrants = entrants_from([str(a), f"{b}@1"], ["random"], game)
    one, res1 = run_tournament(entrants, game, games=2, seed=4, workers=1)
    two, res2 = run_tournament(entrants, game, games=2, seed=4, workers=2)
    assert res1 == res2 and one.table() == two.table()
    assert one.rating("random") == (10.0, 1.0)


def test_simple_tag_predators_act_with_the_predator_network(runs):
    """In one batch, run a's predators and run b's prey: each slot's actions come from the
    group of its role, and only from the side seated there."""
    game = match_game([str(runs["tag_a"])])
    a, b = load_player(str(runs["tag_a"]), game), load_player(str(runs["tag_b"]), game)
    vec = game.vec(2, autoreset=False)
    try:
        side_a, side_b = a.side(vec, seed=0), b.side(vec, seed=1)
        assert {g.key: g.slots for g in side_a.groups} == {"adversary": (0, 1, 2), "agent": (3,)}
        assert [side_a.policy_for(g.key) for g in side_a.groups] == \
            [a.policies["adversary"], a.policies["agent"]]
        seats = np.array([[0, 1], [1, 0]])  # game 0: a hunts b; game 1: b hunts a
        result = play_games(vec, [side_a, side_b], seats, seed=0)
    finally:
        vec.close()
    assert result.lengths.tolist() == [15, 15] and result.returns.shape == (2, 2)
    assert set(result.scores(seats, 0)) <= {0.0, 0.5, 1.0}
    assert (result.scores(seats, 0) + result.scores(seats, 1) == 1.0).all()


# ---- connect four -------------------------------------------------------------------------------
def test_connect_four_run_in_a_tournament_and_a_gif(runs, tmp_path, capsys):
    run = runs["four"]
    captured, doc = tournament_doc(capsys, ["tournament", str(run), "--bots", "--games", "4",
                                            "--out", str(tmp_path)])
    assert "connect4 (anchor)" in captured.out and "random (anchor)" in captured.out
    assert doc["meta"]["game"] == "connect_four"
    assert doc["meta"]["teams"] == ["player_0", "player_1"]
    assert sorted(doc["ratings"]["anchors"]) == ["connect4", "random"]
    mu = {r["name"]: r["mu"] for r in doc["table"]}
    assert (mu["random"], mu["connect4"]) == (10.0, 20.0)  # the game's anchors
    check_matches(doc, ["four@0", "four@1", "connect4", "random"], 4)
    # the connect-four bot beats random whichever side starts
    (bots,) = [m for m in doc["matches"] if set(m["players"]) == {"connect4", "random"}]
    assert bots["mean"]["connect4"] >= 0.75
    out, steps = watch_gif(capsys, ["watch", "connect4", str(run), "--out",
                                    str(tmp_path / "c4.gif"), "--every", "1"], every=1)
    assert out.startswith("connect4 (player_0) vs four (player_1): connect_four, seed 0\n")
    assert 7 <= steps <= 42  # four in a row takes at least 7 moves; the board has 42 cells
    with Image.open(tmp_path / "c4.gif") as im:
        assert im.n_frames == steps + 1  # a disc more on every frame: none merge


def test_connect_four_match_gifs_during_training(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(runs["four"] / "tb"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()["images"]
    assert tags and all(t.startswith("match/latest_vs_") for t in tags), tags
    image = acc.Images(tags[0])[0]
    assert image.encoded_image_string[:6] == b"GIF89a" and image.step == 2
    assert [s.step for s in acc.Scalars("watch/latest_score")] == [2]
    assert acc.Scalars("watch/latest_score")[0].value in (0.0, 0.5, 1.0)


def test_a_watch_gif_shows_colours_that_appear_after_the_first_frame(tmp_path, capsys):
    gif = tmp_path / "c4.gif"
    assert main(["watch", "connect4", "random", "--game", "connect_four", "--out", str(gif),
                 "--every", "1"]) == 0, capsys.readouterr().err
    with Image.open(gif) as im:
        im.seek(im.n_frames - 1)
        last = np.asarray(im.convert("RGB")).astype(int)
    red = (last[..., 0] > 150) & (last[..., 2] < 120)  # the first player's discs (3 or more)
    assert red.mean() > 0.01


# ---- three teams --------------------------------------------------------------------------
TEAMS3 = ("red", "green", "blue")


class HighestNumber(ParallelEnv):
    """Three teams of one: each names a number 0..4 at once; the highest alone wins (infos
    "winner"; a shared highest is a draw). `render_mode="rgb_array"` draws the numbers."""

    metadata: ClassVar[dict] = {"name": "highest_number_v0", "render_modes": ["rgb_array"]}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.possible_agents = [f"{t}_0" for t in TEAMS3]
        self.agents = []
        self.picked = [0, 0, 0]

    def observation_space(self, agent):
        return spaces.Box(0.0, 1.0, (2,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(5)

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.picked = [0, 0, 0]
        return {a: np.zeros(2, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.picked = [int(actions[a]) for a in self.possible_agents]
        best = max(self.picked)
        winner = TEAMS3[self.picked.index(best)] if self.picked.count(best) == 1 else None
        obs = {a: np.ones(2, np.float32) for a in self.agents}
        done = {a: True for a in self.agents}
        infos = {a: {"winner": winner} for a in self.agents}
        rewards = {a: float(TEAMS3[i] == winner) for i, a in enumerate(self.agents)}
        self.agents = []
        return obs, rewards, done, {a: False for a in done}, infos

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        frame = np.zeros((10, 24, 3), np.uint8)
        for k in range(15):  # a legend of every colour, so the first frame's GIF palette has it
            frame[:2, k, k // 5] = 50 * (k % 5)
        for i, n in enumerate(self.picked):
            frame[2:, 8 * i:8 * i + 8, i] = 50 * n
        return frame


def no_render_mode():
    """A factory that takes no render_mode at all."""
    return HighestNumber()


class Constant:
    def __init__(self, n):
        self.n = n

    def act(self, obs, mask):
        return np.full(len(obs), self.n, np.int64)


def number_bot(name, role, seed=0):
    return Constant({"max": 4, "mid": 2, "min": 0}[name])


BOTS3 = {name: f"{__name__}:number_bot" for name in ("max", "mid", "min")}


@pytest.fixture
def three_teams():
    games.register("highest_number", HighestNumber, "three teams, highest number wins",
                   overwrite=True, bots=BOTS3, anchors={"max": 30.0})
    games.register("highest_number_unrendered", no_render_mode, overwrite=True, bots=BOTS3)
    yield "highest_number"
    from games import registry

    for name in ("highest_number", "highest_number_unrendered"):
        registry._REGISTRY.pop(name, None)
        registry._FACTORIES.pop(name, None)


def test_three_teams_rank_all_places_at_once(three_teams, monkeypatch):
    game = MatchGame(three_teams)
    entrants = entrants_from([], ["random", "max", "mid", "min"], game)
    calls = []
    update_game = RatingTable.update_game

    def spy(self, names, scores):
        calls.append((list(names), list(scores)))
        return update_game(self, names, scores)

    monkeypatch.setattr(RatingTable, "update_game", spy)
    monkeypatch.setattr(RatingTable, "update", lambda *a: pytest.fail("a pairwise update"))
    table, results = run_tournament(entrants, game, games=6, seed=0)
    assert list(results) == [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]  # every group of 3
    assert len(calls) == 4 * 6 and all(len(names) == 3 for names, _ in calls)
    # seats rotate: in every table each member played every team twice, and the scores show
    # who won: max beats everyone, mid beats min, a shared highest number is a draw for all
    maxmidmin = results[(1, 2, 3)]
    assert maxmidmin == [[1.0, 0.0, 0.0]] * 6
    for names, scores in calls:
        assert sorted(scores) in ([0.0, 0.0, 1.0], [0.5, 0.5, 0.5])
    ranked = [r["name"] for r in table.table()]
    assert ranked[0] == "max" and ranked[-1] == "min"
    assert all(not r["anchor"] for r in table.table())  # bots alone: every rating is earned
    # the same tables again: the same results
    assert run_tournament(entrants, game, games=6, seed=0)[1] == results


def test_three_teams_tournament_with_workers(three_teams):
    game = MatchGame(three_teams)
    entrants = entrants_from([], ["random", "max", "mid", "min"], game)  # 4 tables
    _, one = run_tournament(entrants, game, games=2, seed=0, workers=1)
    _, two = run_tournament(entrants, game, games=2, seed=0, workers=2)
    assert one == two


def test_three_teams_cli_tournament_and_too_few_players(three_teams, tmp_path, capsys):
    captured, doc = tournament_doc(capsys, ["tournament", "--game", three_teams, "--bots",
                                            "--games", "3", "--out", str(tmp_path)])
    assert "tournament on highest_number (red vs green vs blue): 4 players, 4 tables of 3 x " \
           "3 games" in captured.err
    assert doc["meta"]["teams"] == list(TEAMS3)
    assert len(doc["matches"]) == 4
    for m in doc["matches"]:
        assert len(m["players"]) == 3 and all(len(s) == 3 for s in m["scores"].values())
    # fewer players than teams: refused before anything is played, in one line
    for argv in (["tournament", "--game", three_teams, "--bots", "max", "min"],
                 ["tournament", "--game", three_teams, "random", "max"]):
        assert main([*argv, "--out", str(tmp_path / "few")]) == 2
        err = capsys.readouterr().err.strip()
        assert "this game has 3 teams: a tournament needs at least 3 participants" in err, err
        assert len(err.splitlines()) == 1
    assert not (tmp_path / "few" / "tournament.json").exists()
    game = MatchGame(three_teams)
    with pytest.raises(ValueError, match="needs at least 3 participants"):
        run_tournament(entrants_from([], ["max", "min"], game), game, games=1, seed=0)


def test_three_teams_watch(three_teams, tmp_path, capsys):
    gif = tmp_path / "three.gif"
    out, steps = watch_gif(capsys, ["watch", "min", "mid", "max", "--game", three_teams,
                                    "--out", str(gif), "--every", "1"], every=1)
    assert out.startswith("min (red) vs mid (green) vs max (blue): highest_number, seed 0\n")
    assert "result: blue (max) wins after 1 steps" in out and steps == 1
    with Image.open(gif) as im:
        assert im.size == (24, 10) and im.n_frames == 2
    # two players: the first plays the first team, the second every other
    assert main(["watch", "max", "random", "--game", three_teams, "--out", str(gif)]) == 0
    assert capsys.readouterr().out.startswith("max (red) vs random (green, blue)")
    # four players for three teams
    assert main(["watch", "max", "mid", "min", "random", "--game", three_teams,
                 "--out", str(tmp_path / "four.gif")]) == 2
    err = capsys.readouterr().err.strip()
    assert "this game has 3 teams (red, green, blue): give one player per team, or two" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "four.gif").exists()


def test_watch_refuses_a_game_that_cannot_render(three_teams, tmp_path, capsys):
    gif = tmp_path / "x.gif"
    assert main(["watch", "min", "mid", "max", "--game", "highest_number_unrendered",
                 "--out", str(gif)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "game 'highest_number_unrendered' cannot render" in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "result:" not in captured.out and not gif.exists()
    # a game without team views: --view is refused
    assert main(["watch", "min", "mid", "max", "--game", three_teams, "--view", "red",
                 "--out", str(gif)]) == 2
    assert "has no team views" in capsys.readouterr().err and not gif.exists()


def test_watch_refuses_a_game_whose_render_gives_no_picture(three_teams, tmp_path, capsys,
                                                          monkeypatch):
    monkeypatch.setattr(HighestNumber, "render", lambda self: None)
    gif = tmp_path / "x.gif"
    assert main(["watch", "min", "mid", "max", "--game", three_teams, "--out", str(gif)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "game 'highest_number' cannot render: render() gave NoneType" in err, err
    assert len(err.splitlines()) == 1 and "result:" not in captured.out and not gif.exists()
    assert not list(tmp_path.glob(".*.tmp"))  # the half-made GIF is gone
