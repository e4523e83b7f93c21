"""arena/memory.py: training processes keep freed memory for the next large tensor."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

# An update's pattern of large tensors, eight times; prints the page faults of each round.
PROBE = """
import resource, sys, torch
from arena.memory import keep_freed_memory
on = keep_freed_memory() if sys.argv[1] == "on" else False
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = torch.empty(10 << 20).fill_(1.0)       # 40 MiB, kept through the round
    for _ in range(4):
        torch.empty(3 << 20).fill_(2.0)        # 12 MiB each, made and dropped
    b = torch.empty(10 << 20).fill_(3.0)
    del a, b
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(on, *faults)
"""


def probe(mode: str, **env: str) -> tuple[bool, list[int]]:
    clean = {k: v for k, v in os.environ.items()
             if not (k.startswith("MALLOC_") or k in ("GLIBC_TUNABLES",
                                                      "ARENA_KEEP_FREED_MEMORY"))}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env={**clean, **env},
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0] == "True", [int(x) for x in out[1:]]


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc's malloc only")
def test_large_tensors_reuse_freed_memory_once_the_heap_has_grown():
    on, faults_on = probe("on")
    off, faults_off = probe("off")
    assert on and not off
    round_pages = (2 * 40 + 4 * 12) * 2**20 // os.sysconf("SC_PAGE_SIZE")
    assert min(faults_off[-3:]) > round_pages // 4  # glibc's default: fresh pages each time
    assert max(faults_on[-3:]) < round_pages // 20  # kept: later rounds reuse the memory


def test_the_users_own_malloc_settings_win():
    assert probe("on", ARENA_KEEP_FREED_MEMORY="0")[0] is False
    assert probe("on", MALLOC_ARENA_MAX_="2")[0] is False
    assert probe("on", GLIBC_TUNABLES="glibc.malloc.trim_threshold=1")[0] is False
