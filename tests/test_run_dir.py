"""Run directories that cannot be mixed up, and honest exits: each defect tested the way it
was found (two real processes for the lock, a real SIGTERM/SIGINT to a real run)."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from test_registry import clean_registry  # noqa: F401 - a fixture, used by name

import games
from arena.checkpoints import latest_in_run, read_checkpoint, recorded_update
from arena.cli import main
from arena.config import CONFIG_DIR, ConfigError, load_config
from arena.learn.learner import TrainingDiverged
from arena.train import TrainingStopped, train
from games.memory import MemoryGame

MEMORY = str(CONFIG_DIR / "memory.yaml")
FAST = ["game.num_envs=8", "ppo.update_epochs=1", "model.hidden=16", "model.lstm_hidden=16"]
LEAGUE = ["game.options.teams=2", "league.enabled=true", "league.snapshot_every=1"]


def run_memory(root: Path, name: str, *overrides: str) -> Path:
    return train(load_config(MEMORY, [f"run.root={root}", f"run.name={name}", *FAST,
                                      *overrides]))


def arena_process(*args: str, stderr=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "arena", *args], stdout=subprocess.DEVNULL,
                            stderr=stderr, text=True)


def wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def newest_update(run: Path) -> int:
    ckpt = latest_in_run(run)
    return -1 if ckpt is None else (recorded_update(ckpt) or -1)


# ---- one process per run ------------------------------------------------------------------
def test_a_second_resume_of_a_running_run_is_refused_naming_the_holder(tmp_path):
    run = run_memory(tmp_path, "r", "trainer.max_updates=2", "trainer.checkpoint_every=1")
    first = arena_process("train", "--resume", str(run), "trainer.max_updates=100000",
                          "trainer.checkpoint_every=1")
    try:
        wait_for(lambda: newest_update(run) >= 3)  # the first one is training
        second = subprocess.run([sys.executable, "-m", "arena", "train", "--resume", str(run),
                                 "trainer.max_updates=100000"], capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 2
        assert f"pid {first.pid}" in second.stderr and "another process" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        first.kill()
        first.wait()
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert not [n for n in names if "-v" in n], names  # nothing interleaved
    # the kernel dropped the dead holder's lock: the run resumes
    done = newest_update(run)
    assert main(["train", "--resume", str(run), f"trainer.max_updates={done + 1}"]) == 0


def test_a_new_run_over_a_directory_holding_a_run_is_refused(tmp_path, capsys):
    run = run_memory(tmp_path, "old", "trainer.max_updates=2", "trainer.checkpoint_every=1")
    (run / "checkpoints" / "last.ckpt").unlink()  # checkpoints, but no last.ckpt
    config = (run / "config.yaml").read_text()
    assert main(["train", MEMORY, f"run.root={tmp_path}", "run.name=old",
                 "model.hidden=32"]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err
    assert (run / "config.yaml").read_text() == config
    # an empty folder of that name is fine
    (tmp_path / "empty").mkdir()
    assert main(["train", MEMORY, f"run.root={tmp_path}", "run.name=empty", *FAST,
                 "trainer.max_updates=1"]) == 0


def test_run_name_cannot_leave_run_root(tmp_path, capsys):
    root = tmp_path / "root"
    assert main(["train", MEMORY, f"run.root={root}", "run.name=../../escaped",
                 "trainer.max_updates=1"]) == 2
    assert "run.name" in capsys.readouterr().err
    assert not (tmp_path.parent / "escaped").exists() and not root.exists()


# ---- the newest checkpoint, and one current last.ckpt ---------------------------------------
def test_newest_checkpoint_is_chosen_by_the_update_inside(tmp_path):
    run = run_memory(tmp_path, "n", "trainer.max_updates=4", "trainer.checkpoint_every=2")
    folder = run / "checkpoints"
    base = torch.load(folder / "update-000004.ckpt", weights_only=True)
    for update in (999_999, 1_000_000):
        base["arena"]["updates"] = update
        torch.save(base, folder / f"update-{update:06d}.ckpt")
    # names sort "update-1000000" < "update-999999"; a "-v1" copy sorts after both
    (folder / "update-000002.ckpt").rename(folder / "update-999999-v1.ckpt")
    assert latest_in_run(run) == folder / "update-1000000.ckpt"
    (folder / "update-1000000.ckpt").write_bytes(b"garbage")  # unreadable: not a candidate
    assert latest_in_run(run) == folder / "update-999999.ckpt"


def test_after_resume_one_last_checkpoint_holds_the_newest_update(tmp_path):
    run = run_memory(tmp_path, "l", "trainer.max_updates=2", "trainer.checkpoint_every=2")
    assert main(["train", "--resume", str(run), "trainer.max_updates=4"]) == 0
    assert main(["train", "--resume", str(run), "trainer.max_updates=6"]) == 0
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["last.ckpt", "update-000002.ckpt", "update-000004.ckpt",
                     "update-000006.ckpt"], names
    assert recorded_update(run / "checkpoints" / "last.ckpt") == 6


def test_larger_checkpoint_every_on_resume_still_trains_to_max_updates(tmp_path, capsys):
    run = run_memory(tmp_path, "e", "trainer.max_updates=4", "trainer.checkpoint_every=2")
    assert main(["train", "--resume", str(run), "trainer.max_updates=7",
                 "trainer.checkpoint_every=5"]) == 0
    assert "update 7 of 7" in capsys.readouterr().out
    assert read_checkpoint(run)["arena"]["updates"] == 7
    assert (run / "checkpoints" / "update-000005.ckpt").is_file()


# ---- the config is written only once a run has started; its history is kept -----------------
def test_failed_and_no_op_resumes_leave_the_config_as_it_was(tmp_path, capsys):
    run = run_memory(tmp_path, "c", "trainer.max_updates=2", "trainer.checkpoint_every=2")
    config = (run / "config.yaml").read_text()
    history = (run / "config_history.jsonl").read_text()
    # a network change that cannot keep what the network computes (a shrink; growing is a
    # surgery, tests/test_surgery.py)
    assert main(["train", "--resume", str(run), "model.hidden=8", "trainer.max_updates=4"]) == 2
    err = capsys.readouterr().err
    assert "config.yaml" in err and "cannot resume from this checkpoint" not in err
    assert "model.hidden shrinks from 16 to 8" in err
    assert not list((run / "checkpoints").glob("surgery-*"))
    # nothing to train
    assert main(["train", "--resume", str(run), "trainer.max_updates=2"]) == 2
    err = capsys.readouterr().err
    assert "nothing to train" in err and "update 2" in err and "trainer.max_updates" in err
    assert (run / "config.yaml").read_text() == config
    assert (run / "config_history.jsonl").read_text() == history
    # a plain resume still works, and the history records each start
    assert main(["train", "--resume", str(run), "trainer.max_updates=3"]) == 0
    lines = [json.loads(x) for x in (run / "config_history.jsonl").read_text().splitlines()]
    assert [(x["how"], x["update"]) for x in lines] == [("new", 0), ("resume", 2)]
    assert lines[1]["overrides"] == ["trainer.max_updates=3"]
    assert lines[1]["config"]["trainer"]["max_updates"] == 3
    assert "max_updates: 3" in (run / "config.yaml").read_text()


# ---- resume errors name the real culprit ---------------------------------------------------
@pytest.fixture(scope="module")
def league_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("league")
    return run_memory(root, "lg", *LEAGUE, "trainer.max_updates=2", "trainer.checkpoint_every=2")


def copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


@pytest.mark.parametrize("fault", ["pool.json", "missing snapshot"])
def test_league_files_lost_or_damaged_are_named_and_the_resume_goes_on(league_run, tmp_path,
                                                                      fault):
    """The checkpoint holds the pool's state: a damaged pool.json is rebuilt from it, a lost
    snapshot file is left out of the pool; either is named in a warning."""
    run = copy_run(league_run, tmp_path / "copy")
    pool = next((run / "league").iterdir())
    snapshot = sorted(pool.glob("snapshot-*.safetensors"))[0]
    if fault == "pool.json":
        (pool / "pool.json").write_text("{not json")
        culprit = "pool.json"
    else:
        snapshot.unlink()
        culprit = snapshot.name
    with pytest.warns(RuntimeWarning, match=culprit):
        assert main(["train", "--resume", str(run), "trainer.max_updates=4"]) == 0


def test_an_unreadable_snapshot_is_named_not_blamed_on_the_checkpoint(league_run, tmp_path,
                                                                     capsys):
    run = copy_run(league_run, tmp_path / "copy")
    pool = next((run / "league").iterdir())
    snapshot = sorted(pool.glob("snapshot-*.safetensors"))[0]
    snapshot.write_bytes(b"\x00" * 64)
    code = main(["train", "--resume", str(run), "trainer.max_updates=4"])
    err = capsys.readouterr().err
    assert code != 0
    assert snapshot.name in err, err
    assert "cannot resume from this checkpoint" not in err


def test_a_crash_after_restoring_is_not_blamed_on_the_checkpoint(tmp_path):
    run = run_memory(tmp_path, "x", "trainer.max_updates=2", "trainer.checkpoint_every=2")

    class Boom(Callback):
        def on_train_batch_end(self, *args) -> None:
            raise RuntimeError("the game crashed")

    cfg = load_config(run / "config.yaml", ["trainer.max_updates=4"])
    with pytest.raises(RuntimeError, match="the game crashed"):
        train(cfg, resume=run, callbacks=[Boom()])


# ---- file modes -----------------------------------------------------------------------------
def test_league_config_and_checkpoints_share_ordinary_permissions(league_run):
    mask = os.umask(0o022)
    os.umask(mask)
    expected = 0o666 & ~mask
    files = [league_run / "config.yaml", league_run / "config_history.jsonl",
             *league_run.glob("league/*/*"), *league_run.glob("checkpoints/*.ckpt")]
    modes = {str(p.relative_to(league_run)): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert len(modes) >= 5 and set(modes.values()) == {expected}, modes


# ---- honest exits ---------------------------------------------------------------------------
@pytest.mark.parametrize("signame,code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_stop_signal_saves_the_update_and_says_how_to_resume(tmp_path, signame, code):
    run = tmp_path / "s"
    log = tmp_path / "stderr.txt"
    with log.open("w") as stream:
        proc = arena_process("train", MEMORY, f"run.root={tmp_path}", "run.name=s", *FAST,
                             "trainer.max_updates=100000", "trainer.checkpoint_every=100000",
                             "trainer.checkpoint_minutes=null", stderr=stream)
        # the first checkpoint is the signal's own: wait until an update has finished (its
        # progress line is printed), however slow the machine is, then signal
        wait_for(lambda: "update 1/100000" in log.read_text())
        proc.send_signal(getattr(signal, signame))
        proc.wait(timeout=120)
    err = log.read_text()
    assert proc.returncode == code, err
    assert f"stopped by {signame} at update" in err and f"--resume {run}" in err
    assert "of 100000; saved " in err
    stopped = int(err.split("at update ")[1].split()[0])
    assert 1 <= stopped < 100000
    assert recorded_update(run / "checkpoints" / "last.ckpt") == stopped
    assert main(["train", "--resume", str(run), f"trainer.max_updates={stopped + 2}"]) == 0
    assert read_checkpoint(run)["arena"]["updates"] == stopped + 2


@pytest.mark.parametrize("at", [1, 2])
def test_a_sigterm_after_the_stop_check_stops_at_the_next_update_with_a_checkpoint(tmp_path, at):
    """The signal lands while the callbacks after the stop check run (the progress line's
    place), where Lightning's own handling would raise at the end of that update without
    its checkpoint: the run finishes the next update, saves it, and the resume goes on."""
    class TermAfterCheck(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if pl_module.updates == at:
                os.kill(os.getpid(), signal.SIGTERM)

    cfg = load_config(MEMORY, [f"run.root={tmp_path}", "run.name=t", *FAST,
                               "trainer.max_updates=50", "trainer.checkpoint_every=1000",
                               "trainer.checkpoint_minutes=null"])
    old = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(TrainingStopped) as stopped:
            train(cfg, callbacks=[TermAfterCheck()])
        restored = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, old)
    run = tmp_path / "t"
    assert stopped.value.exit_code == 143 and stopped.value.update == at + 1
    assert f"at update {at + 1} of 50; saved " in str(stopped.value)
    assert recorded_update(run / "checkpoints" / "last.ckpt") == at + 1
    assert restored is old  # the handlers are put back
    assert main(["train", "--resume", str(run), f"trainer.max_updates={at + 3}"]) == 0
    assert read_checkpoint(run)["arena"]["updates"] == at + 3


def test_a_run_whose_steps_are_all_skipped_stops_with_an_error(tmp_path):
    class NanLoss(Callback):
        def on_train_start(self, trainer, module) -> None:
            policy = module.policy_for(module.groups[0].key)
            evaluate = policy.evaluate_actions

            def nan_values(*args, **kwargs):
                logprobs, entropy, values = evaluate(*args, **kwargs)
                return logprobs, entropy, values * float("nan")

            policy.evaluate_actions = nan_values

    cfg = load_config(MEMORY, [f"run.root={tmp_path}", "run.name=d", *FAST,
                               "trainer.max_updates=50"])
    with pytest.raises(TrainingDiverged, match="last 3 updates took no optimiser step"):
        train(cfg, callbacks=[NanLoss()])


def test_game_errors_exit_2_and_leave_no_run_directory(tmp_path, capsys):
    for override, key in (("game.name=no_such_game", "game.name"),
                          ("game.options.num_cues=-3", "game.options"),
                          ("game.options.colour=blue", "game.options")):
        assert main(["train", MEMORY, f"run.root={tmp_path}", "run.name=g", override]) == 2
        err = capsys.readouterr().err
        assert key in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "g").exists()


def test_trainer_settings_lightning_refuses_name_the_setting(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: trainer.accelerator=gpu is valid here")
    assert main(["train", MEMORY, f"run.root={tmp_path}", "run.name=t",
                 "trainer.accelerator=gpu"]) == 2
    err = capsys.readouterr().err
    assert "trainer" in err and "accelerator=gpu" in err
    assert not (tmp_path / "t").exists()


def test_check_validates_without_writing(tmp_path, capsys):
    assert main(["train", "--check", MEMORY, f"run.root={tmp_path}", "run.name=c"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("config OK: game memory") and str(tmp_path / "c") in out
    assert not (tmp_path / "c").exists()
    assert main(["train", "--check", MEMORY, "ppo.ent_coef=nan"]) == 2
    assert "ppo.ent_coef" in capsys.readouterr().err


def test_max_time_says_why_the_run_ended(tmp_path, capsys):
    assert main(["train", MEMORY, f"run.root={tmp_path}", "run.name=m", *FAST,
                 "trainer.max_updates=100000", "trainer.max_time=00:00:00:03"]) == 0
    out = capsys.readouterr().out
    assert "by trainer.max_time=00:00:00:03" in out
    assert 1 <= read_checkpoint(tmp_path / "m")["arena"]["updates"] < 100000


def test_resume_checks_raise_config_errors_before_touching_the_run(tmp_path):
    with pytest.raises(ConfigError, match="not a run directory"):
        train(load_config(MEMORY), resume=tmp_path / "nothing")


def test_a_taken_actors_port_names_the_setting(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["train", MEMORY, f"run.root={tmp_path}", "run.name=p", *FAST,
                     "actors.listen=true", f"actors.port={port}", "trainer.max_updates=1"])
    err = capsys.readouterr().err
    assert code == 2 and f"actors.port: the learner cannot listen on 127.0.0.1:{port}" in err


def test_time_based_checkpoints_bound_what_a_kill_loses(tmp_path):
    run = run_memory(tmp_path, "tm", "trainer.max_updates=3", "trainer.checkpoint_every=1000",
                     "trainer.checkpoint_minutes=0.0001")
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["last.ckpt", "update-000001.ckpt", "update-000002.ckpt",
                     "update-000003.ckpt"], names


class FailsAfterSteps(MemoryGame):
    """The memory game, except that an instance raises at its `fuse`-th step in its life
    (module level: a worker process imports it by reference)."""

    def __init__(self, fuse: int = 10**9, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fuse, self.lifetime = fuse, 0

    def step(self, actions):
        self.lifetime += 1
        if self.lifetime == self.fuse:
            raise KeyError("the game broke")
        return super().step(actions)


def test_a_game_that_fails_while_collecting_leaves_its_last_update_saved(
        tmp_path, capsys, clean_registry):  # noqa: F811
    """A game's error while a rollout is collected stops the run with that error, after
    checkpointing the last finished update (nothing is lost); the run resumes from it."""
    games.register("fails_after", FailsAfterSteps, "raises after some steps")
    length = 8 * 2  # memory.yaml: chunk_len x chunks_per_update steps per rollout
    run = tmp_path / "f"
    args = ["train", MEMORY, f"run.root={tmp_path}", "run.name=f", *FAST,
            "game.name=fails_after", f"game.options.fuse={3 * length + 2}",
            "trainer.max_updates=50", "trainer.checkpoint_every=1000",
            "trainer.checkpoint_minutes=null"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "arena train: error: KeyError: 'the game broke' (ARENA_DEBUG=1" in err, err
    assert f"saved {run / 'checkpoints' / 'last.ckpt'} (update 3)" in err
    assert f"arena train --resume {run}" in err
    assert recorded_update(run / "checkpoints" / "last.ckpt") == 3
    assert main(["train", "--resume", str(run), "trainer.max_updates=5",
                 "game.options.fuse=1000000000"]) == 0
    assert read_checkpoint(run)["arena"]["updates"] == 5


def test_an_error_inside_an_update_saves_nothing(tmp_path, capsys):
    """An update that fails half-way may have stepped some weights: no checkpoint of it."""
    class BrokenUpdate(Callback):
        def on_train_start(self, trainer, module) -> None:
            module.ppo_update = lambda rollout: (_ for _ in ()).throw(RuntimeError("bad step"))

    cfg = load_config(MEMORY, [f"run.root={tmp_path}", "run.name=u", *FAST,
                               "trainer.max_updates=5", "trainer.checkpoint_minutes=null"])
    with pytest.raises(RuntimeError, match="bad step"):
        train(cfg, callbacks=[BrokenUpdate()])
    assert not (tmp_path / "u" / "checkpoints" / "last.ckpt").exists()
    assert "saved" not in capsys.readouterr().err
