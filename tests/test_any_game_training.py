"""Training on a third-party, turn-based game: evaluation against `random` and the game's own
bot in TensorBoard, its rating on the game's anchors, and the game's bots in the league."""

import numpy as np
from lightning.pytorch.callbacks import Callback

from arena.config import CONFIG_DIR, load_config
from arena.train import train

SHORT = ["game.num_envs=8", "ppo.chunk_len=8", "ppo.chunks_per_update=2", "ppo.update_epochs=1",
         "model.hidden=32", "model.lstm_hidden=32", "trainer.max_updates=2", "eval.every=1",
         "eval.games=4", "league.snapshot_every=1"]


class Metrics(Callback):
    def __init__(self) -> None:
        self.seen: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.seen.append(dict(module.last_metrics))


def test_connect_four_evaluates_against_its_anchors_and_plays_its_bot_in_the_league(tmp_path):
    probe = Metrics()
    cfg = load_config(CONFIG_DIR / "connect_four.yaml",
                      [f"run.root={tmp_path}", "run.name=c4", *SHORT, "league.bot_prob=1.0",
                       "league.bots=[connect4]"])
    train(cfg, callbacks=[probe])
    last = probe.seen[-1]
    for key in ("eval/win_rate_vs_random", "eval/win_rate_vs_connect4", "eval/rating",
                "league/win_rate_vs_bot/connect4"):
        assert key in last, sorted(last)
    assert 0.0 <= last["eval/win_rate_vs_random"] <= 1.0
    # every game faced the bot (seeded, so this is one fixed outcome): an untrained policy loses
    assert last["league/win_rate_vs_bot/connect4"] <= 0.5
    assert (tmp_path / "c4" / "league").is_dir()


def test_game_threads_step_a_third_party_game_in_worker_processes(tmp_path):
    """game.threads=2: the collector's games run in two worker processes (games/procvec.py),
    and training goes on as in one process; the workers are gone afterwards."""
    import multiprocessing as mp

    from games.procvec import ProcVec

    kinds = []

    class Kind(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            kinds.append(type(module.collector.vec))

    cfg = load_config(CONFIG_DIR / "simple_tag.yaml", [
        f"run.root={tmp_path}", "run.name=tag", "game.num_envs=4", "game.threads=2",
        "game.options.max_cycles=10", "ppo.chunk_len=8", "ppo.chunks_per_update=2",
        "ppo.update_epochs=1", "model.hidden=16", "model.lstm_hidden=16",
        "trainer.max_updates=2", "eval.every=0"])
    run = train(cfg, callbacks=[Kind()])
    assert kinds == [ProcVec, ProcVec]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert not [p for p in mp.active_children() if p.is_alive()]


def test_progress_against_a_fixed_panel_of_past_selves(tmp_path):
    """eval.panel_*: the latest policy's score against a fixed panel of its own snapshots,
    one curve that does not move with the opponent mix."""
    from arena.play.evaluate import BotEvaluator

    panel = BotEvaluator(["random"], 4, 0, panel_every=10, panel_size=3).panel
    assert panel(list(range(45))) == [20, 30, 40] and panel([1, 2, 3]) == []
    assert BotEvaluator(["random"], 4, 0, panel_size=0).panel(list(range(45))) == []
    probe = Metrics()
    cfg = load_config(CONFIG_DIR / "connect_four.yaml", [
        f"run.root={tmp_path}", "run.name=panel", *SHORT, "trainer.max_updates=3",
        "eval.panel_every=1", "eval.panel_size=2", "league.bot_prob=0.0"])
    train(cfg, callbacks=[probe])
    last = probe.seen[-1]
    assert 0.0 <= last["eval/win_rate_vs_past_panel"] <= 1.0
    members = [last[f"eval/win_rate_vs_snapshot/{i:04d}"] for i in (1, 2)]
    assert last["eval/worst_vs_past_panel"] == min(members)
    assert last["eval/win_rate_vs_past_panel"] == np.mean(members)
    assert {"eval/win_rate_vs_snapshot/0001", "eval/win_rate_vs_snapshot/0002"} <= set(last)


def test_overlapped_collection_plays_the_league_and_its_bots(tmp_path):
    """game.overlap: the halves of the games step in turn in worker processes while the
    other half is inferred; league snapshots and bots act in both halves, their results
    reach the pool, and the workers are gone afterwards."""
    import multiprocessing as mp

    from league.pool import OpponentPool

    probe = Metrics()
    cfg = load_config(CONFIG_DIR / "simple_tag.yaml", [
        f"run.root={tmp_path}", "run.name=tag", "game.num_envs=8", "game.threads=2",
        "game.overlap=true", "game.options.max_cycles=6", "ppo.chunk_len=8",
        "ppo.chunks_per_update=2", "ppo.update_epochs=1", "model.hidden=16",
        "model.lstm_hidden=16", "trainer.max_updates=4", "eval.every=0",
        "league.snapshot_every=1", "league.latest_prob=0.0", "league.bot_prob=0.3",
        "league.bots=[random]"])
    run = train(cfg, callbacks=[probe])
    last = probe.seen[-1]
    assert last["league/win_rate_vs_bot/random"] >= 0.0
    for role in ("adversary", "agent"):
        pool = OpponentPool.open(run / "league" / role)
        assert sum(s.games for s in pool.snapshots) > 0
    assert not [p for p in mp.active_children() if p.is_alive()]
