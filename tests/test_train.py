"""`arena train` end to end: learning, run directory, resume, bad input."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from arena.checkpoints import CheckpointError, load_learner, read_checkpoint
from arena.cli import main
from arena.config import CONFIG_DIR, load_config
from arena.rundir import TEMPORARY, stale_temporaries
from arena.train import train
from games.vector import make_vec


def memory_accuracy(learner, episodes: int = 256, seed: int = 123) -> float:
    """Greedy play of the trained policy on fresh memory games: fraction answered right."""
    vec = make_vec("memory", episodes, **learner.cfg.game.options)
    (group,) = learner.groups
    policy = learner.policy_for(group.key)
    step = vec.reset(seed=seed)
    state = policy.initial_state(episodes * len(group.slots))
    starts = torch.ones(episodes * len(group.slots), dtype=torch.bool)
    correct = np.zeros(episodes)
    finished = np.zeros(episodes, bool)
    with torch.no_grad():
        while not finished.all():
            obs = torch.from_numpy(step.obs[group.role.name].reshape(-1, group.role.obs_dim))
            mask = torch.from_numpy(step.action_mask[group.role.name].reshape(-1, group.role.num_actions))
            action, _, _, _, state = policy.act(obs, state, starts, mask, deterministic=True)
            step = vec.step(action.view(episodes, -1).numpy())
            starts = torch.zeros_like(starts)
            ended = step.dones & ~finished
            correct[ended] = (step.rewards[ended] > 0).mean(axis=1)
            finished |= ended
    return float(correct.mean())


def memory_run(tmp_path: Path, name: str, *overrides: str) -> Path:
    cfg = load_config(CONFIG_DIR / "memory.yaml",
                      [f"run.root={tmp_path}", f"run.name={name}", *overrides])
    return train(cfg)


def test_memory_game_is_solved_with_the_lstm_and_not_without(tmp_path):
    with_lstm = load_learner(memory_run(tmp_path, "lstm"))
    without = load_learner(memory_run(tmp_path, "ff", "model.use_lstm=false"))
    acc_lstm, acc_ff = memory_accuracy(with_lstm), memory_accuracy(without)
    assert acc_lstm >= 0.95, acc_lstm
    assert acc_ff <= 0.5, acc_ff  # 4 cues: guessing gives 0.25


def test_run_directory_resume_and_tensorboard(tmp_path):
    run = memory_run(tmp_path, "r", "trainer.max_updates=4", "trainer.checkpoint_every=2")
    assert (run / "config.yaml").is_file()
    ckpt = read_checkpoint(run)
    assert ckpt["arena"]["updates"] == 4 and ckpt["optimizer_states"]
    before = load_learner(run)
    # an old checkpoint Lightning no longer tracks (a kill came between writing the newest
    # and removing the oldest) is removed by the next save
    shutil.copyfile(run / "checkpoints" / "update-000002.ckpt",
                    run / "checkpoints" / "update-000000.ckpt")
    # resume: counters, weights and normalisers continue
    assert main(["train", "--resume", str(run), "trainer.max_updates=6"]) == 0
    after = read_checkpoint(run)
    assert after["arena"]["updates"] == 6
    assert after["arena"]["agent_steps"] == 6 * ckpt["arena"]["agent_steps"] // 4
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == \
        ["last.ckpt", "update-000002.ckpt", "update-000004.ckpt", "update-000006.ckpt"]
    old = before.state_dict()
    norm_keys = [k for k in old if k.startswith("value_norms.")]
    assert norm_keys and any(not torch.equal(after["state_dict"][k], old[k]) for k in norm_keys)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))  # one events file per session, read in order
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ("loss/policy_loss", "loss/value_loss", "loss/entropy", "loss/approx_kl",
                "loss/clipfrac", "loss/explained_variance", "loss/grad_norm",
                "perf/agent_steps_per_s", "perf/collect_agent_steps_per_s",
                "perf/learn_agent_steps_per_s", "train/learning_rate", "episode/length"):
        assert tag in tags, tag
    assert [s.step for s in acc.Scalars("loss/policy_loss")] == [1, 2, 3, 4, 5, 6]


def test_resume_after_sigkill(tmp_path):
    cmd = [sys.executable, "-m", "arena", "train", str(CONFIG_DIR / "memory.yaml"),
           f"run.root={tmp_path}", "run.name=k", "trainer.checkpoint_every=2",
           "trainer.max_updates=1000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "k" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not list(ckpts.glob("update-000004.ckpt")):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (ckpts / "last.ckpt").is_file()
    done = read_checkpoint(tmp_path / "k")["arena"]["updates"]
    assert done >= 4
    # no half-written checkpoint: a kill during a save leaves only the save's temporary
    # file beside it (which the resume removes)
    assert all(p.suffix == ".ckpt" or TEMPORARY.match(p.name) for p in ckpts.iterdir())
    assert main(["train", "--resume", str(tmp_path / "k"), f"trainer.max_updates={done + 2}"]) == 0
    assert read_checkpoint(tmp_path / "k")["arena"]["updates"] == done + 2
    assert not stale_temporaries(tmp_path / "k")


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path, capsys):
    run = memory_run(tmp_path, "c", "trainer.max_updates=2", "trainer.checkpoint_every=2")
    for extra in (run / "checkpoints").glob("update-*.ckpt"):
        extra.unlink()  # leave last.ckpt as the run's only checkpoint
    last = run / "checkpoints" / "last.ckpt"
    good = last.read_bytes()
    last.write_bytes(good[: len(good) // 3])
    with pytest.raises(CheckpointError, match="last.ckpt: not a readable checkpoint"):
        load_learner(run)
    assert main(["train", "--resume", str(run), "trainer.max_updates=4"]) == 2
    assert "last.ckpt" in capsys.readouterr().err
    last.write_bytes(good)
    with pytest.raises(CheckpointError, match="for game 'memory', expected 'moba'"):
        load_learner(run, expect_game="moba")
    # a run directory whose config names another game than its checkpoint
    cfg_text = (run / "config.yaml").read_text().replace("num_cues: 4", "num_cues: 3")
    (run / "config.yaml").write_text(cfg_text)
    assert main(["train", "--resume", str(run), "trainer.max_updates=4"]) == 2
    err = capsys.readouterr().err  # no surgery can map the memory game's unnamed features
    assert "observation changes from 6 to 5 features" in err and "config.yaml" in err
    assert not list((run / "checkpoints").glob("surgery-*"))
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "nothing.ckpt")


def test_config_errors_name_key_and_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("ppo:\n  lrr: 0.1\n")
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "ppo.lrr" in err and "did you mean 'ppo.lr'" in err
    assert main(["train", "ppo.lr=fast"]) == 2
    assert "ppo.lr" in capsys.readouterr().err
    assert main(["train", "trainer.max_updates=-3"]) == 2
    assert "trainer.max_updates" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err
    bad.write_text("ppo: [1, 2\n")
    assert main(["train", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_magent_battle_config_trains(tmp_path):
    run = train(load_config(CONFIG_DIR / "magent_battle.yaml", [
        f"run.root={tmp_path}", "run.name=mb", "trainer.max_updates=2", "game.num_envs=2"]))
    learner = load_learner(run)
    assert learner.updates == 2 and [g.key for g in learner.groups] == ["red+blue"]


def test_asymmetric_roles_get_one_network_each(tmp_path):
    cfg = load_config(CONFIG_DIR / "magent_battle.yaml", [
        f"run.root={tmp_path}", "run.name=tag", "trainer.max_updates=2", "game.num_envs=2",
        "game.name=pettingzoo:mpe2.simple_tag_v3:parallel_env"])
    cfg.game.options = {"teams": {"predator": "adversary_", "prey": "agent_"}, "max_cycles": 25}
    learner = load_learner(train(cfg))
    dims = {g.key: (g.role.obs_dim, len(g.slots)) for g in learner.groups}
    assert dims == {"predator": (16, 3), "prey": (14, 1)}
    assert learner.policy_for("predator").obs_dim != learner.policy_for("prey").obs_dim


class _Corrupt(Callback):
    """Update 2 gets nan: in its rollout ("rollout") or in its loss ("loss")."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.params: dict[int, dict[str, torch.Tensor]] = {}
        self.metrics: dict[int, dict[str, float]] = {}

    def on_train_start(self, trainer, module) -> None:
        collect = module.collector.collect
        calls = [0]

        def corrupt_collect():
            ro = collect()
            calls[0] += 1
            if self.where == "rollout" and calls[0] == 2:
                ro.env_rewards[3, 0, 0] = float("nan")
            return ro

        module.collector.collect = corrupt_collect
        if self.where == "loss":
            policy = module.policy_for(module.groups[0].key)
            evaluate = policy.evaluate_actions

            def nan_values(*args, **kwargs):
                logprobs, entropy, values = evaluate(*args, **kwargs)
                if module.updates == 1:  # during the second update
                    values = values * float("nan")
                return logprobs, entropy, values

            policy.evaluate_actions = nan_values

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.params[module.updates] = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self.metrics[module.updates] = dict(module.last_metrics)


@pytest.mark.parametrize("where", ["rollout", "loss"])
def test_nan_rollouts_and_losses_skip_the_update_and_never_reach_the_weights(tmp_path, where):
    probe = _Corrupt(where)
    train(load_config(CONFIG_DIR / "memory.yaml", [
        f"run.root={tmp_path}", "run.name=n", "trainer.max_updates=3", "eval.every=0",
        "game.num_envs=8"]), callbacks=[probe])
    m = probe.metrics
    if where == "rollout":
        assert m[2]["loss/skipped_updates"] == 1.0 and m[1]["loss/skipped_updates"] == 0.0
        assert all(torch.equal(probe.params[1][k], probe.params[2][k]) for k in probe.params[1])
    else:
        steps = m[2]["loss/skipped_steps"]
        assert m[2]["loss/nonfinite_losses"] == steps > 0 and m[1]["loss/nonfinite_losses"] == 0
        params = [k for k in probe.params[1] if "rms" not in k]  # normalisers still learn obs
        assert all(torch.equal(probe.params[1][k], probe.params[2][k]) for k in params)
    assert m[3]["loss/skipped_steps"] == 0.0  # training goes on
    assert all(torch.isfinite(v).all() for v in probe.params[3].values())
    assert any(not torch.equal(probe.params[2][k], probe.params[3][k]) for k in probe.params[3])


@pytest.mark.parametrize("override, key, expected", [
    ("ppo.ent_coef=nan", "ppo.ent_coef", "a finite number, got nan"),
    ("ppo.lr=inf", "ppo.lr", "a finite number, got inf"),
    ("ppo.target_kl=-.inf", "ppo.target_kl", "a finite number, got -inf"),
    ("reward.weights.kills=nan", "reward.weights.kills", "a finite number"),
    ("game.options.x=[1, {a: .inf}]", "game.options.x[1].a", "a finite number"),
    ("reward.weights.new.a=1", "reward.weights.new", "a number, got {'a': 1}"),
    ("eval.bots=[[1]]", "eval.bots[0]", "a string"),
    ("trainer.max_time=1:00:00", "trainer.max_time", "DD:HH:MM:SS"),
    ("trainer.max_time=00:24:00:00", "trainer.max_time", "hours < 24"),
    ("trainer.max_time=00:00:00:00", "trainer.max_time", "longer than zero"),
    ("trainer.precision=fp8", "trainer.precision", "bf16-mixed"),
    ("trainer.accelerator=GPU", "trainer.accelerator", "auto, cpu, cuda, gpu"),
    ("run.name=../../x", "run.name", "a plain folder name"),
    ("run.name=..", "run.name", "a plain folder name"),
    ("run.name=~x", "run.name", "a plain folder name"),
    ("run.name='a\tb'", "run.name", "no control characters"),
    ("run.root=' '", "run.root", "not empty"),
    ("game.options=[1, 2]", "game.options", "bad value"),
    ("ppo..lr=1", "ppo..lr", "not a dotted key"),
    ("ppo.lr=" + "1" * 400, "ppo.lr", "bad value"),
    ("ppo.lr=[", "ppo.lr", "bad value"),
])
def test_config_errors_name_the_setting(override, key, expected):
    from arena.config import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert f"{key}:" in message or f"'{key}'" in message, message
    assert expected in message and len(message.splitlines()) == 1, message


def test_config_accepts_lightning_settings_and_leaves_curve_keys_to_their_user(tmp_path):
    from arena.config import ConfigError

    cfg = load_config(None, ["trainer.max_time=01:23:59:59", "trainer.precision=16",
                             "trainer.accelerator=gpu", f"actors.curve_keys={tmp_path / 'none'}",
                             "run.name=a b", "trainer.max_time=null"])
    assert cfg.trainer.precision == "16" and cfg.actors.curve_keys == str(tmp_path / "none")
    (tmp_path / "file").write_text("")
    for root in (tmp_path / "file", tmp_path / "file" / "runs"):
        with pytest.raises(ConfigError, match=f"run.root: .*{tmp_path / 'file'} is a file"):
            load_config(None, [f"run.root={root}"])


def _fake_clock_and_learner(monkeypatch, max_updates: int):
    """A clock the test moves by hand (time.perf_counter) and the learner attributes the
    progress line reads, at the start of a run."""
    from types import SimpleNamespace

    clock = {"now": 0.0}
    monkeypatch.setattr(time, "perf_counter", lambda: clock["now"])
    module = SimpleNamespace(cfg=SimpleNamespace(trainer=SimpleNamespace(max_updates=max_updates)),
                             updates=0, agent_steps=0, _t_start=0.0, last_metrics={},
                             win_rates={}, paused_seconds=0.0, logger=None)
    return clock, module


def test_the_progress_line_shows_the_recent_rate_not_the_average_since_start(monkeypatch):
    """A slow start (compilation) must not drag the printed rate down for the whole run."""
    import io
    from types import SimpleNamespace

    from arena.learn.callbacks import UpdateProgress

    clock, module = _fake_clock_and_learner(monkeypatch, max_updates=1000)
    trainer = SimpleNamespace(is_global_zero=True)
    out = io.StringIO()
    bar = UpdateProgress(interval=0.0, stream=out, window=60.0)
    clock["now"] = 100.0  # the first update took 100 s (compilation), 1,000 agent-steps
    module.updates, module.agent_steps = 1, 1_000
    bar.on_train_batch_end(trainer, module, None, None, 0)
    for k in range(2, 200):  # then 1 s per update of 10,000 agent-steps
        clock["now"] += 1.0
        module.updates, module.agent_steps = k, module.agent_steps + 10_000
        bar.on_train_batch_end(trainer, module, None, None, 0)
    last = out.getvalue().strip().splitlines()[-1]
    assert "10,000 agent-steps/s" in last, last  # the average since start would be ~6,700
    assert "ETA 0:13:21" in last, last  # 801 updates left at 1 s each


def test_the_first_progress_line_gives_the_first_update_time_and_the_next_leave_it_out(
        monkeypatch):
    """The first update holds the warm-up (numba compiles, first kernels): its rate would
    be a fraction of the run's and its ETA hours too long. Its line says how long it took;
    from the second on, the rate is of the updates after it."""
    import io
    from types import SimpleNamespace

    from arena.learn.callbacks import UpdateProgress

    clock, module = _fake_clock_and_learner(monkeypatch, max_updates=100)
    trainer = SimpleNamespace(is_global_zero=True)
    out = io.StringIO()
    bar = UpdateProgress(interval=0.0, stream=out, window=60.0)
    clock["now"] = 12.5  # start-up and the first update: 12.5 s
    module.updates, module.agent_steps = 1, 10_000
    bar.on_train_batch_end(trainer, module, None, None, 0)
    clock["now"] += 2.0  # then 2 s per update of 10,000 agent-steps
    module.updates, module.agent_steps = 2, 20_000
    bar.on_train_batch_end(trainer, module, None, None, 0)
    first, second = out.getvalue().strip().splitlines()
    assert first == "update 1/100 | 10,000 agent-steps | first update 12.5 s (warm-up included)"
    assert "agent-steps/s" not in first and "ETA" not in first
    assert second == "update 2/100 | 20,000 agent-steps | 5,000 agent-steps/s | ETA 0:03:16"


def test_the_progress_line_leaves_evaluation_pauses_out_of_the_rate_and_counts_them_in_the_eta(
        monkeypatch):
    """An evaluation of 150 s every 20 updates must not show a rate of a few agent-steps/s
    for a minute afterwards (nor an ETA of hours); the evaluations still to come are in the
    ETA at their last duration."""
    import io
    from types import SimpleNamespace

    from arena.learn.callbacks import Evaluation
    from arena.learn.callbacks import UpdateProgress

    clock, module = _fake_clock_and_learner(monkeypatch, max_updates=100)

    def evaluator(_):
        clock["now"] += 150.0
        return {"eval/win_rate_vs_random": 0.5}

    evaluation = Evaluation(evaluator, every=20)
    out = io.StringIO()
    bar = UpdateProgress(interval=0.0, stream=out, window=60.0)
    trainer = SimpleNamespace(is_global_zero=True, callbacks=[evaluation, bar])
    lines = {}
    for k in range(1, 26):  # 2 s per update of 10,000 agent-steps
        clock["now"] += 2.0
        module.updates, module.agent_steps = k, module.agent_steps + 10_000
        for cb in trainer.callbacks:
            cb.on_train_batch_end(trainer, module, None, None, 0)
        lines[k] = out.getvalue().strip().splitlines()[-1]
    for k in (19, 20, 21, 25):
        assert "5,000 agent-steps/s" in lines[k], lines[k]
    assert "ETA 0:02:42" in lines[19], lines[19]  # 81 updates at 2 s; no evaluation timed yet
    # 80 updates at 2 s + 4 evaluations (40, 60, 80, 100) at 150 s
    assert "ETA 0:12:40" in lines[20], lines[20]
    assert "ETA 0:12:30" in lines[25], lines[25]  # 75 updates at 2 s + 4 at 150 s
    assert module.paused_seconds == 150.0 and evaluation.last_seconds == 150.0


def test_match_gif_settings_a_game_cannot_take_are_refused_before_training(capsys):
    """watch.max_ticks shortens GIF matches of games with a max_ticks option; another game
    is refused at the check, naming the setting, before anything is written."""
    connect_four = str(CONFIG_DIR / "connect_four.yaml")
    assert main(["train", "--check", connect_four, "watch.every=5", "watch.max_ticks=10"]) == 2
    err = capsys.readouterr().err
    assert "watch.max_ticks: game 'connect_four' takes no option max_ticks" in err
    assert main(["train", "--check", connect_four, "watch.every=5", "watch.view=radiant"]) == 2
    assert "watch.view" in capsys.readouterr().err
    assert main(["train", "--check", "watch.every=5", "watch.max_ticks=100"]) == 0
