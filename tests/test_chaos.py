"""The chaos run (benchmarks/chaos.py): its checks on crafted run directories and counter
histories (fast), the fixes it led to (atomic checkpoints, temporaries of killed writes
removed on resume), and one short chaos run with kills of the learner and an actor (slow)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from arena.checkpoints import AtomicCheckpointIO, read_checkpoint
from arena.config import load_config, to_dict
from arena.learn.learner import PPOLearner
from arena.rundir import remove_stale_temporaries, stale_temporaries
from arena.train import train
from games.files import atomic_write_bytes
from league.pool import OpponentPool

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("chaos", ROOT / "benchmarks" / "chaos.py")
chaos = importlib.util.module_from_spec(_spec)
sys.modules["chaos"] = chaos  # its dataclasses look their module up
_spec.loader.exec_module(chaos)

SMALL = ["game.options.team_size=1", "game.options.max_ticks=16", "game.num_envs=4",
         "ppo.chunk_len=8", "ppo.chunks_per_update=2", "eval.every=0", "watch.every=0",
         "model.hidden=32", "model.lstm_hidden=32", "trainer.num_threads=1"]


# ---- counters ------------------------------------------------------------------------------
def life(index, progress, resumed_from=None, history=None, killed=True):
    """A learner life as the chaos run records it (asdict(Life)); progress: (update, steps)."""
    return {"index": index, "pid": 100 + index, "started": 0.0, "resumed_from": resumed_from,
            "history_update": history, "progress": [(float(u), u, s) for u, s in progress],
            "restarts": [], "ended": None, "exit_code": None, "killed": killed}


def ckpt(update, steps, name="last.ckpt"):
    return {"file": name, "update": update, "agent_steps": steps}


K = 100  # agent-steps per update in these histories


def good_history():
    """Killed at update 13 (checkpoint 10), resumed from 10, redid 11..13, stopped at 22."""
    return [life(0, [(u, u * K) for u in range(1, 14)], history=0),
            life(1, [(u, u * K) for u in range(11, 22)], ckpt(10, 10 * K), history=10,
                 killed=False)]


def test_counters_of_a_run_with_a_resume_pass_and_count_the_redone_updates():
    failures, summary = chaos.check_counters(good_history(), ckpt(22, 22 * K), every=5,
                                             max_steps=K)
    assert failures == []
    assert summary["updates_redone"] == 3 and summary["updates_done"] == 25
    assert summary["final_update"] == 22 and summary["agent_steps_per_update"] == K


def test_a_line_skipped_before_the_kill_counts_the_checkpoint_as_the_life_s_end():
    lives = [life(0, [(1, K), (2, 2 * K), (3, 3 * K)], history=0),  # update 4, 5 not shown
             life(1, [(6, 6 * K)], ckpt(5, 5 * K), history=5, killed=False)]
    failures, summary = chaos.check_counters(lives, ckpt(6, 6 * K), every=5, max_steps=K)
    assert failures == [] and summary["updates_redone"] == 0 and summary["updates_done"] == 6


def test_a_counter_jump_is_caught():
    lives = good_history()
    lives[1]["progress"][4] = (0.0, 15, 15 * K + 7 * K)  # agent-steps jump ahead
    failures, _ = chaos.check_counters(lives, ckpt(22, 22 * K), every=5, max_steps=K)
    assert any("agent-steps went from" in f for f in failures)


def test_a_counter_reset_is_caught():
    lives = good_history()
    lives[1]["progress"][3] = (0.0, 3, 3 * K)  # the update count starts over
    failures, _ = chaos.check_counters(lives, ckpt(22, 22 * K), every=5, max_steps=K)
    assert any("update went from" in f for f in failures)


def test_a_resume_from_an_older_checkpoint_than_the_newest_written_is_caught():
    lives = good_history()
    lives[1]["resumed_from"] = ckpt(5, 5 * K, "update-000005.ckpt")  # 10 had been written
    lives[1]["history_update"] = 5
    lives[1]["progress"] = [(0.0, u, u * K) for u in range(6, 22)]
    failures, _ = chaos.check_counters(lives, ckpt(22, 22 * K), every=5, max_steps=K)
    assert any("checkpoint of update 10 had been written" in f for f in failures)


def test_a_resume_that_did_not_start_from_the_checkpoint_is_caught():
    lives = good_history()
    lives[1]["history_update"] = 0  # the learner started over instead of resuming
    failures, _ = chaos.check_counters(lives, ckpt(22, 22 * K), every=5, max_steps=K)
    assert any("config_history.jsonl says it started at update 0" in f for f in failures)


def test_a_final_checkpoint_behind_the_last_progress_is_caught():
    failures, _ = chaos.check_counters(good_history(), ckpt(20, 20 * K), every=5, max_steps=K)
    assert any("the final checkpoint holds update 20" in f for f in failures)


def test_the_bound_on_agent_steps_per_update_comes_from_the_config():
    cfg = to_dict(load_config(None, [*SMALL, "actors.num_workers=2", "actors.num_envs=3"]))
    # 2 rollouts x 3 games x 16 steps x 2 agents
    assert chaos.steps_per_update_bound(cfg, num_agents=2) == 2 * 3 * 16 * 2


# ---- files and pools -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished tiny run (in-process, 3 updates, league snapshots) to copy and damage."""
    root = tmp_path_factory.mktemp("chaos")
    cfg = load_config(None, [*SMALL, "trainer.max_updates=3", "trainer.checkpoint_every=1",
                             "league.snapshot_every=1", f"run.root={root}", "run.name=r"])
    return train(cfg)


def copy_run(run: Path, dest: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, dest / "run"))


def test_a_whole_run_reads_back(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    failures, counts = chaos.check_files(run)
    assert failures == []
    assert counts[".ckpt"] >= 2 and counts[".safetensors"] == 3 and counts[".json"] == 1
    from arena.checkpoints import load_learner

    failures, sizes = chaos.check_pools(run, load_learner(run))
    assert failures == [] and sizes == {"hero": 3}


def test_a_truncated_json_a_broken_checkpoint_and_a_stray_temporary_are_caught(tiny_run,
                                                                               tmp_path):
    run = copy_run(tiny_run, tmp_path)
    index = run / "league" / "hero" / "pool.json"
    index.write_bytes(index.read_bytes()[:-20])
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    (run / "league" / "hero" / ".pool.json.ab12cd_9.tmp").write_bytes(b"{")
    failures, _ = chaos.check_files(run)
    text = "\n".join(failures)
    assert "league/hero/pool.json: does not read back" in text
    assert "checkpoints/last.ckpt: does not read back" in text
    assert ".pool.json.ab12cd_9.tmp: a temporary file" in text
    assert len(failures) == 3


def test_a_missing_or_foreign_snapshot_is_caught(tiny_run, tmp_path):
    from safetensors.torch import save_file

    from arena.checkpoints import load_learner

    run = copy_run(tiny_run, tmp_path)
    pool = run / "league" / "hero"
    (pool / "snapshot-000000.safetensors").unlink()
    save_file({"policies.hero.x": torch.zeros(3)}, str(pool / "snapshot-000001.safetensors"))
    failures, _ = chaos.check_pools(run, load_learner(run))
    assert len(failures) == 2
    assert "snapshot-000000.safetensors: snapshot 0 does not load" in failures[0]
    assert "snapshot-000001.safetensors: snapshot 1 does not load" in failures[1]


# ---- the fixes -----------------------------------------------------------------------------
def test_checkpoints_are_written_beside_their_file_and_a_failed_write_keeps_the_old_one(
        tmp_path, monkeypatch):
    """Lightning's own save writes to the system temp folder and moves the file (a copy
    across file systems: a kill mid-copy leaves half a checkpoint). AtomicCheckpointIO
    writes beside the file and renames."""
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"arena": {"updates": 1}, "w": torch.ones(4)}, path)
    assert torch.load(path, weights_only=True)["arena"]["updates"] == 1
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    seen = []

    def failing_replace(src, dst):  # the writer dies between the write and the rename
        seen.append(Path(src))
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        io.save_checkpoint({"arena": {"updates": 2}, "w": torch.zeros(4)}, path)
    assert seen and seen[0].parent == path.parent  # the temporary was beside the checkpoint
    assert list(system_tmp.iterdir()) == []
    assert torch.load(path, weights_only=True)["arena"]["updates"] == 1  # the old one, whole


KILLED_WRITE = """
import os, signal, sys
from games.files import atomic_write_bytes
os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)  # killed before the rename
atomic_write_bytes(sys.argv[1], b"new")
"""


@pytest.mark.filterwarnings("ignore:The dirpath has changed")  # a copied run
def test_a_write_killed_before_its_rename_leaves_a_temporary_that_a_resume_removes(tiny_run,
                                                                                   tmp_path):
    run = copy_run(tiny_run, tmp_path)
    index = run / "league" / "hero" / "pool.json"
    before = index.read_bytes()
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(index)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -signal.SIGKILL
    assert index.read_bytes() == before  # the old index, whole
    left = stale_temporaries(run)
    assert [p.parent for p in left] == [index.parent] and left[0].name.startswith(".pool.json.")
    assert remove_stale_temporaries(tmp_path / "elsewhere") == []
    done = read_checkpoint(run)["arena"]["updates"]
    cfg = load_config(run / "config.yaml", [f"trainer.max_updates={done + 1}"])
    train(cfg, resume=run)
    assert stale_temporaries(run) == []
    assert read_checkpoint(run)["arena"]["updates"] == done + 1
    assert chaos.check_files(run)[0] == []


# ---- a short chaos run ---------------------------------------------------------------------
@pytest.mark.slow
def test_a_short_chaos_run_kills_the_learner_and_an_actor_and_passes_its_checks(tmp_path,
                                                                                 capsys):
    """Tiny MOBA (1v1, 16 ticks): its games end by net worth, so no policy beats random
    there; the strength check is left to the full run (--target 0 here)."""
    code = chaos.main([*SMALL, "league.snapshot_every=2", "trainer.checkpoint_every=2",
                       "--minutes", "1.5", "--kill-every", "15-30", "--seed", "3",
                       "--learner-share", "0.5", "--eval-games", "8", "--target", "0",
                       "--root", str(tmp_path), "--name", "c"])
    out = capsys.readouterr().out
    assert code == 0, out
    kills = [json.loads(line) for line in
             (tmp_path / "c-chaos" / "kills.jsonl").read_text().splitlines()]
    victims = {k["victim"] for k in kills}
    assert victims == {"learner", "actor"}, kills
    for k in kills:
        if k["victim"] == "learner":
            assert k["children_at_kill"] and k["children_left"] == []
            assert k["resumed_from"]["update"] >= 2
        else:
            assert k["replaced_by"]
    report = json.loads((tmp_path / "c-chaos" / "report.json").read_text())
    assert not any(report["failures"].values())
    assert report["summary"]["final_update"] == read_checkpoint(tmp_path / "c")["arena"]["updates"]
    assert "chaos: all checks passed" in out


ARMED_CHILD = """
import os, sys, time
from arena.scale.actors import die_with_parent
die_with_parent(os.getppid())
print(os.getpid(), flush=True)
time.sleep(120)
"""
PARENT = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", sys.argv[1]])
time.sleep(120)
"""


def test_an_actor_dies_with_its_learner_at_once():
    """A local actor arms PR_SET_PDEATHSIG: when its learner is SIGKILLed the kernel kills it
    too, instead of it finishing the rollout it is making (tens of seconds under load)."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, ARMED_CHILD], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    child = int(parent.stdout.readline())  # printed once armed
    assert chaos.alive(child)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert chaos.wait_gone([child], 5.0) == []
