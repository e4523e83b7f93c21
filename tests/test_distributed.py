"""Data-parallel learners: a 2-rank CPU DDP run (gloo) applies, at every optimizer step, the
gradient one device computes on the same global batch."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file


SCRIPT = Path(__file__).with_name("ddp_grad_check.py")


def run(out: Path, mode: str) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(out), mode], capture_output=True,
                          text=True, timeout=600, cwd=SCRIPT.parent.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_two_rank_ddp_gradients_match_one_device_on_the_global_batch(tmp_path):
    run(tmp_path, "ddp")
    run(tmp_path, "single")
    for step in (1, 2):  # the second step's backward is one DDP's own reducer would not sync
        rank0 = load_file(str(tmp_path / f"ddp-rank0-step{step}.safetensors"))
        rank1 = load_file(str(tmp_path / f"ddp-rank1-step{step}.safetensors"))
        single = load_file(str(tmp_path / f"single-rank0-step{step}.safetensors"))
        assert set(rank0) == set(single) and len(single) > 10
        for name, g in single.items():
            assert np.array_equal(rank0[name], rank1[name]), name  # ranks step alike
            scale = max(float(np.abs(g).max()), 1e-6)
            assert np.abs(rank0[name] - g).max() <= 1e-4 * scale, (step, name)
    assert not (tmp_path / "ddp" / "league").exists()  # league off in this check
    # only rank 0 writes the run directory's checkpoints
    assert sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()) == \
        ["last.ckpt", "update-000001.ckpt"]


@pytest.mark.parametrize("actors", [0, 1])
def test_torchrun_two_ranks_share_rank_zeros_league(tmp_path, actors):
    """`torchrun` launch (as on several nodes, here 2 CPU ranks on one): rank 1 plays the
    snapshots rank 0 adds and its results reach rank 0's pool; one run directory, one
    'run finished' line, global agent-step counts; with an actor per rank as well, and
    every process exits at the end."""
    import json
    import shutil

    from arena.checkpoints import read_checkpoint

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    updates = 6
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "arena", "train",
         "game.options.team_size=1", "game.options.max_ticks=16", "game.num_envs=4",
         "ppo.chunk_len=8", "ppo.chunks_per_update=2", "eval.every=0", "watch.every=0",
         "model.hidden=32", "model.lstm_hidden=32", "trainer.num_threads=1",
         "trainer.devices=2", "league.snapshot_every=1", "league.latest_prob=0.0",
         "league.bot_prob=0", f"trainer.max_updates={updates}", f"trainer.checkpoint_every={updates}",
         f"actors.num_workers={actors}", f"run.root={tmp_path}", "run.name=t"],
        capture_output=True, text=True, timeout=600, cwd=SCRIPT.parent.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run finished") == 1
    state = read_checkpoint(tmp_path / "t")["arena"]
    assert state["updates"] == updates
    assert state["agent_steps"] == updates * 2 * 4 * 2 * 16  # both ranks' steps
    pool = json.loads((tmp_path / "t" / "league" / "hero" / "pool.json").read_text())
    assert [s["update"] for s in pool["snapshots"]] == list(range(1, updates + 1))
    if not actors:  # rank 0 alone finishes at most 4 games per update vs snapshots, from update 3
        assert sum(s["games"] for s in pool["snapshots"]) > 4 * (updates - 2)
    else:  # actors lag one update behind, but their results reach the pool too
        assert sum(s["games"] for s in pool["snapshots"]) > 0


def test_ddp_without_a_run_name_writes_one_run_directory(tmp_path):
    """Lightning starts rank 1 by running the same command again; it must take rank 0's
    run directory, not make its own <game>-<time> folder."""
    from arena.config import CONFIG_DIR

    proc = subprocess.run(
        [sys.executable, "-m", "arena", "train", str(CONFIG_DIR / "memory.yaml"),
         "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_updates=2",
         "trainer.num_threads=1", "game.num_envs=8", f"run.root={tmp_path}"],
        capture_output=True, text=True, timeout=600, cwd=SCRIPT.parent.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = list(tmp_path.iterdir())
    assert run.name.startswith("memory-") and (run / "checkpoints" / "last.ckpt").is_file()


def test_a_surgery_on_resume_under_ddp(tmp_path):
    """`arena train --resume RUN model.lstm_hidden=48 trainer.devices=2`: both ranks start
    from the one transferred checkpoint (rank 1 computes the same transfer, writes nothing),
    the run trains on with the wider networks, the surgery is recorded once, and rank 1's
    league mirror takes the checkpoint's pool as it is (its files are rank 0's)."""
    import json

    import torch

    from arena.checkpoints import read_checkpoint

    small = ["game.options.team_size=1", "game.options.max_ticks=16", "game.num_envs=4",
             "ppo.chunk_len=8", "ppo.chunks_per_update=2", "eval.every=0", "watch.every=0",
             "model.hidden=32", "model.lstm_hidden=32", "trainer.num_threads=1",
             "league.snapshot_every=1", f"run.root={tmp_path}", "run.name=s"]
    first = subprocess.run([sys.executable, "-m", "arena", "train", *small,
                            "trainer.max_updates=2"],
                           capture_output=True, text=True, timeout=600, cwd=SCRIPT.parent.parent)
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "s"
    proc = subprocess.run([sys.executable, "-m", "arena", "train", "--resume", str(run),
                           "model.lstm_hidden=48", "trainer.accelerator=cpu", "trainer.devices=2",
                           "trainer.max_updates=4"],
                          capture_output=True, text=True, timeout=600, cwd=SCRIPT.parent.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run finished") == 1
    assert "missing" not in proc.stderr, proc.stderr[-3000:]
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["last.ckpt", "surgery-000002.ckpt", "update-000002.ckpt",
                           "update-000004.ckpt"]
    state = read_checkpoint(run)
    assert state["arena"]["updates"] == 4
    assert [s["update"] for s in state["arena"]["surgeries"]] == [2]
    lstm = [t for k, t in state["state_dict"].items() if k.endswith("lstm.weight_hh_l0")]
    assert lstm and all(t.shape == (4 * 48, 48) for t in lstm)
    assert all(torch.isfinite(t).all() for t in state["state_dict"].values()
               if t.is_floating_point())
    history = [json.loads(line) for line in (run / "config_history.jsonl").read_text().splitlines()]
    assert [h["how"] for h in history] == ["new", "surgery"]
    pool = json.loads((run / "league" / "hero" / "pool.json").read_text())
    assert [s["update"] for s in pool["snapshots"]] == [1, 2, 3, 4]


@pytest.mark.parametrize("rank", [0, 1])
def test_a_sigterm_on_one_ddp_rank_stops_every_rank_at_one_update_with_a_checkpoint(tmp_path,
                                                                                    rank):
    """The signal reaches one rank after its stop check, where Lightning would raise on that
    rank alone (leaving the other waiting in a collective): every rank stops at the next
    update instead, rank 0 saves it, one line says so, and nothing is left running."""
    from arena.checkpoints import recorded_update

    script = SCRIPT.with_name("ddp_sigterm_check.py")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path), "2", str(rank)],
                          capture_output=True, text=True, timeout=300, cwd=SCRIPT.parent.parent,
                          check=False)
    assert proc.returncode == 143, proc.stderr[-3000:]
    lines = [x for x in proc.stderr.splitlines() if "stopped by SIGTERM" in x]
    assert len(lines) == 1 and "at update 3 of 100000; saved " in lines[0], proc.stderr[-3000:]
    assert recorded_update(tmp_path / "d" / "checkpoints" / "last.ckpt") == 3
