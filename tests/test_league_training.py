"""The league inside training: opponents from the pool, who trains, results, resume."""

import numpy as np
import pytest
import torch

from arena.checkpoints import read_checkpoint
from arena.cli import main
from arena.config import CONFIG_DIR, load_config, to_dict
from arena.learn.learner import PPOLearner
from arena.train import train
from league.pool import OpponentPool

SHORT = ["league.bot_prob=0.0", "game.options.max_ticks=30", "game.num_envs=4", "ppo.chunk_len=10",
         "ppo.chunks_per_update=6", "eval.every=0", "model.hidden=32", "model.lstm_hidden=32"]


def league_learner(tmp_path, *overrides) -> PPOLearner:
    cfg = load_config(CONFIG_DIR / "default.yaml", [*SHORT, *overrides])
    learner = PPOLearner(to_dict(cfg))
    learner.run_dir = tmp_path
    learner.setup("fit")
    return learner


def test_snapshot_games_train_only_the_learner_side_and_swap_at_episode_ends(tmp_path):
    learner = league_learner(tmp_path, "league.latest_prob=0.0")
    learner.snapshot()  # the pool holds one past self: every new episode faces it
    ro = learner.collector.collect()
    (g,) = learner.groups
    d = ro.groups[g.key]
    B, n = 4, len(g.slots)
    valid = d["valid"].numpy().reshape(-1, B, n)  # (L, B, slots)
    starts = d["episode_starts"].numpy().reshape(-1, B, n)[:, :, 0]
    team = np.asarray(learner.collector.vec.slot_team)
    episodes = np.cumsum(starts, axis=0)
    for b in range(B):
        for e in np.unique(episodes[:, b]):
            rows = valid[episodes[:, b] == e, b]  # this episode's steps
            assert (rows == rows[0]).all()  # who trains is fixed within an episode
            trained = team[rows[0]]
            assert len(set(trained.tolist())) == 1  # exactly one side trains ...
            assert rows[0].sum() == n // 2  # ... and it is a whole team
    sides = [team[valid[episodes[:, b] == e, b][0]][0] for b in range(B)
             for e in np.unique(episodes[:, b])]
    assert set(sides) == {0, 1}  # the learner plays both sides over the games
    pool = learner.pools["hero"]
    assert pool.snapshots[0].games == 4 * 2  # 4 games, 60 steps of 30-tick episodes
    assert learner.collector.opponents.metrics()["league/pool_size"] == 1.0


def test_snapshot_opponents_in_play_together_each_act_with_their_own_network(tmp_path):
    """All snapshots in play run in one batched forward (agents/policy_stack.py): each
    game's opponent rows must still be played by that game's snapshot."""
    learner = league_learner(tmp_path, "league.latest_prob=0.0", "game.num_envs=8")
    (g,) = learner.groups
    actor = learner.policy_for(g.key).actor
    favourite = [3, 1, 4, 2, 5]  # snapshot k picks action favourite[k], whatever it sees
    with torch.no_grad():
        actor.weight.zero_()
        for a in favourite:
            actor.bias.zero_()
            actor.bias[a] = 50.0
            learner.snapshot()
    ids = [s.id for s in learner.pools["hero"].snapshots]
    manager = learner.collector.opponents
    B, n = 8, len(g.slots)
    manager.start({g.key: B * n})
    who = np.array([0, 1, 2, 3, 4, 4, 2, 0])  # snapshots in play, some in two games
    manager.snapshot[:] = np.array(ids)[who]
    manager.bot[:] = manager.live[:] = -1
    manager.learner_team[:] = np.arange(B) % 2
    obs = torch.rand(B * n, g.role.obs_dim)
    mask = torch.ones(B * n, g.role.num_actions, dtype=torch.bool)
    starts = torch.zeros(B * n, dtype=torch.bool)
    action = torch.full((B * n,), -1, dtype=torch.int64)
    trains = manager.override(g, obs, mask, starts, action, torch.Generator().manual_seed(0))
    team = np.asarray(learner.collector.vec.slot_team)[list(g.slots)]
    for b in range(B):
        for j in range(n):
            r = b * n + j
            mine = team[j] == manager.learner_team[b]
            assert trains[r] == mine
            assert action[r] == (-1 if mine else favourite[who[b]])
    # the rows of the learner's half of the games (a collector that infers halves)
    action[:] = -1
    manager.override(g, obs[:4 * n], mask[:4 * n], starts[:4 * n], action[:4 * n],
                     torch.Generator().manual_seed(0), slice(0, 4))
    assert [int(action[b * n + j]) for b in range(4) for j in range(n)
            if team[j] != manager.learner_team[b]] == [favourite[who[b]] for b in range(4)
                                                      for j in range(n)
                                                      if team[j] != manager.learner_team[b]]


def test_latest_probability_one_means_pure_self_play(tmp_path):
    learner = league_learner(tmp_path, "league.latest_prob=1.0")
    learner.snapshot()
    ro = learner.collector.collect()
    assert all(d["valid"].all() for d in ro.groups.values())
    assert learner.pools["hero"].snapshots[0].games == 0


def test_resume_keeps_pool_scores_and_training_state(tmp_path):
    overrides = [f"run.root={tmp_path}", "run.name=lg", "league.snapshot_every=2",
                 "league.latest_prob=0.5", "trainer.checkpoint_every=2", "trainer.max_updates=4",
                 "eval.every=2", "eval.games=2", "eval.bots=[random,pusher]"]
    run = train(load_config(CONFIG_DIR / "default.yaml", [*SHORT, *overrides]))
    ratings = read_checkpoint(run)["arena"]["ratings"]["ratings"]
    assert {"update-000002", "update-000004", "random", "pusher"} <= set(ratings)
    assert ratings["random"] == [10.0, 1.0]  # anchors stay put
    saved = read_checkpoint(run)["arena"]["league"]["hero"]
    assert [s["update"] for s in saved["snapshots"]] == [2, 4]
    played = sum(s["games"] for s in saved["snapshots"])
    assert played > 0
    assert main(["train", "--resume", str(run), "trainer.max_updates=6"]) == 0
    pool = OpponentPool.open(run / "league" / "hero")
    assert [s.update for s in pool.snapshots] == [2, 4, 6]
    assert sum(s.games for s in pool.snapshots) >= played
    assert read_checkpoint(run)["arena"]["updates"] == 6
    after = read_checkpoint(run)["arena"]["ratings"]["ratings"]
    assert after["update-000002"] == ratings["update-000002"] and "update-000006" in after
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    assert [s.step for s in acc.Scalars("eval/rating")] == [2, 4, 6]
    # the latest also plays league snapshots (snapshot 0 is taken at update 2, before eval)
    assert [s.step for s in acc.Scalars("eval/win_rate_vs_snapshot/0000")][:1] == [2]
    assert any(name.startswith("snapshot-") for name in after)


def test_a_run_resumes_past_a_damaged_pool_index_and_a_lost_snapshot(tmp_path):
    """The pool's files are outside help: the checkpoint holds the pool's state, so a
    resume rebuilds a damaged pool.json from it; a lost snapshot is left out, not fatal."""
    overrides = [f"run.root={tmp_path}", "run.name=lg", "league.snapshot_every=1",
                 "trainer.checkpoint_every=3", "trainer.max_updates=3", "eval.every=0",
                 "watch.every=0"]
    run = train(load_config(CONFIG_DIR / "default.yaml", [*SHORT, *overrides]))
    hero = run / "league" / "hero"
    (hero / "snapshot-000001.safetensors").unlink()
    (hero / "pool.json").write_bytes(b"\x00" * 10)
    with pytest.warns(RuntimeWarning) as seen:
        assert main(["train", "--resume", str(run), "trainer.max_updates=5"]) == 0
    said = " ".join(str(w.message) for w in seen)
    assert "not a valid pool index" in said and "snapshot-000001.safetensors" in said
    pool = OpponentPool.open(hero)
    assert [s.update for s in pool.snapshots] == [1, 3, 4, 5]
    assert read_checkpoint(run)["arena"]["updates"] == 5


def test_gamma_follows_the_schedule(tmp_path):
    learner = league_learner(tmp_path, "gamma.anneal_updates=100")
    assert abs(learner.gamma() - 0.998) < 1e-12
    learner.updates = 100
    assert abs(learner.gamma() - 0.9997) < 1e-12


def test_match_gif_appears_in_tensorboard_images(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    overrides = [f"run.root={tmp_path}", "run.name=w", "trainer.max_updates=2",
                 "trainer.checkpoint_every=2", "league.snapshot_every=1", "watch.every=1",
                 "watch.frame_every=3"]
    run = train(load_config(CONFIG_DIR / "default.yaml", [*SHORT, *overrides]))
    acc = EventAccumulator(str(run / "tb"), size_guidance={"images": 0})
    acc.Reload()
    tags = acc.Tags()["images"]
    assert tags and all(t.startswith("match/latest_vs_") for t in tags)
    image = acc.Images(tags[0])[0]
    assert image.encoded_image_string[:6] == b"GIF89a"
    assert image.width == image.height == 384
    assert "watch/latest_score" in acc.Tags()["scalars"]
    assert {s.value for s in acc.Scalars("watch/latest_score")} <= {0.0, 0.5, 1.0}


def test_bot_opponents_play_their_side_and_only_the_learner_side_trains(tmp_path):
    from games.moba.bots import make_bot

    learner = league_learner(tmp_path, "league.bot_prob=1.0", "league.bots=[pusher]")
    opp = learner.collector.opponents
    ro = learner.collector.collect()
    (g,) = learner.groups
    d = ro.groups[g.key]
    B, n = 4, len(g.slots)
    valid = d["valid"].numpy().reshape(-1, B, n)
    assert (valid.sum(-1) == n // 2).all()  # every step: exactly one team trains
    # the untrained rows acted as the pusher bot does on the same observation
    obs = d["obs"].numpy().reshape(-1, B, n, d["obs"].shape[-1])
    mask = d["action_mask"].numpy().reshape(-1, B, n, d["action_mask"].shape[-1])
    actions = d["actions"].numpy().reshape(-1, B, n)
    bot = make_bot("pusher", g.role.obs_layout)
    rows = ~valid
    assert (bot(obs[rows], mask[rows]) == actions[rows]).all()
    metrics = opp.metrics()
    assert metrics["league/games_vs_bots_fraction"] == 1.0
    assert 0.0 <= metrics["league/win_rate_vs_bot/pusher"] <= 1.0
    assert "league/win_rate_vs_bot/pusher" not in opp.metrics()  # a window per log call


def test_bot_probability_mixes_bots_snapshots_and_mirror_games(tmp_path):
    learner = league_learner(tmp_path, "league.bot_prob=0.3", "league.bots=[lasthitter,pusher]",
                             "league.latest_prob=0.5")
    learner.snapshot()
    opp = learner.collector.opponents
    kinds = []
    for _ in range(500):
        opp.assign(np.arange(4))
        kinds += ["bot" if bo >= 0 else "snap" if s >= 0 else "mirror"
                  for bo, s in zip(opp.bot, opp.snapshot)]
    freq = {k: kinds.count(k) / len(kinds) for k in ("bot", "snap", "mirror")}
    assert abs(freq["bot"] - 0.3) < 0.03  # 2000 draws: ~3 standard deviations
    assert abs(freq["snap"] - 0.35) < 0.035 and abs(freq["mirror"] - 0.35) < 0.035


def test_league_bots_are_the_games_own():
    # league bots were the MOBA's only; now each game offers `random` and the bots it registers
    import pytest

    from arena.config import ConfigError

    with pytest.raises(ConfigError, match=r"league.bots: expected bots of game 'memory': "
                                          r"\['random'\], got \['pusher'\]"):
        load_config(CONFIG_DIR / "memory.yaml", ["league.bot_prob=0.2", "league.bots=[pusher]"])
    with pytest.raises(ConfigError, match="league.bots: expected bots of game 'moba'"):
        load_config(CONFIG_DIR / "default.yaml", ["league.bots=[nobody]"])
    with pytest.raises(ConfigError, match="league.bots: expected bots of game 'connect_four'"):
        load_config(CONFIG_DIR / "connect_four.yaml", ["league.bots=[pusher]"])
    cfg = load_config(CONFIG_DIR / "simple_tag.yaml",
                      ["league.bot_prob=0.2", "league.bots=[random]"])
    assert cfg.league.bots == ["random"]


def test_switching_the_game_by_override_says_the_config_was_written_for_another():
    """`arena train game.name=X` on a config written for another game: its bots, options and
    reward weights are that game's, one error at a time, and an override cannot remove a key
    of game.options; the first error says so and points to a config of the game's own. Not
    where the game stays the config's."""
    import pytest

    from arena.config import ConfigError

    spec = "pettingzoo:pettingzoo.classic.tictactoe_v3:env"
    with pytest.raises(ConfigError, match=r"league.bots: .*\(default.yaml is written for game "
                                          r"'moba': .* start from a config of its own") as err:
        load_config(CONFIG_DIR / "default.yaml", [f"game.name={spec}"])
    assert f"to train {spec!r}" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(CONFIG_DIR / "default.yaml", ["league.bots=[nobody]"])
    assert "is written for game" not in str(err.value)


def test_bf16_mixed_training_with_snapshot_opponents_keeps_the_lstm_state_in_float32(tmp_path):
    """Under trainer.precision=bf16-mixed (autocast), snapshot opponents play beside the
    learner's rows: the LSTM states the policies return stay in the weights' dtype (an
    autocast LSTM gives bf16, which the opponents' indexed write refused, and which would
    round the learner's memory to bf16 at every step)."""
    run = train(load_config(CONFIG_DIR / "default.yaml", [
        *SHORT, f"run.root={tmp_path}", "run.name=bf16", "trainer.precision=bf16-mixed",
        "league.latest_prob=0.0", "league.snapshot_every=1", "trainer.max_updates=3"]))
    ckpt = read_checkpoint(run)
    assert ckpt["arena"]["updates"] == 3
    pool = OpponentPool.open(run / "league" / "hero")
    assert sum(s.games for s in pool.snapshots) > 0  # snapshots played the learner
