"""Process-wide memory settings for the processes that train (learner ranks, actors).

Why: PyTorch allocates CPU tensors with `posix_memalign`, and glibc serves an aligned
allocation of more than its mmap threshold (128 KiB, raised only to the size of the last
freed block) with fresh pages from the kernel and unmaps them on free. So every large tensor
of every update - a rollout's buffers, its observations laid out for the epochs, the
observation statistics' temporaries - is page-faulted in (and zeroed by the kernel) again
each time it is made: about 40,000 page faults per update on the third-party setting of
benchmarks/train_throughput.py, some 30 ms. Raising the mmap threshold and the trim
threshold keeps freed memory in the process: once the heap has grown (a few updates), the
next tensor of a size reuses it (no page faults), as jemalloc or tcmalloc would. The cost:
the process keeps the memory of its peak rather than handing it back between updates.

Left alone where the user chose: `ARENA_KEEP_FREED_MEMORY=0`, any `MALLOC_*_` or
`GLIBC_TUNABLES` setting in the environment, and any C library other than glibc.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 1 << 30  # allocations below 1 GiB come from (and go back to) the heap
TRIM_THRESHOLD = (1 << 31) - 1  # never shrink the heap (an int parameter: its largest value)
OPT_OUT = "ARENA_KEEP_FREED_MEMORY"

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep and reuse freed memory (see the module docstring); True
    when the setting is in effect in this process. Idempotent."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get(OPT_OUT, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if "GLIBC_TUNABLES" in os.environ or any(k.startswith("MALLOC_") and k.endswith("_")
                                             for k in os.environ):
        return False  # the user tuned malloc themselves
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
