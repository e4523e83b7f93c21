"""Training on a third-party, turn-based game: evaluation against `random` and the game's own
bot in TensorBoard, its rating on the game's anchors, and the game's bots in the league."""

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
