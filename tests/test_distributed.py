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
