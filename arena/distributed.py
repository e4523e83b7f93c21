"""What the learner's ranks share under DDP, done by hand where PPO needs it.

Gradients are DDP's: PPO runs several backward passes per training step, and Lightning
prepares DDP's reducer before each `manual_backward`, so every one is averaged over ranks
(tests/test_distributed.py checks it step by step). What DDP does not cover is the moments
behind the learner's running statistics - observation and value normalisers and the
per-minibatch advantage normalisation: the learner merges those across ranks here, so a DDP
run computes what one device would on the global batch. Every function here is a no-op when
there is one process.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum of `x` over ranks (a new tensor; `x` itself is left alone)."""
    if world_size() == 1:
        return x
    out = x.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def broadcast_text(text: str, src: int = 0) -> str:
    """`text` of rank `src` on every rank (UTF-8 bytes in a tensor: nothing is pickled)."""
    if world_size() == 1:
        return text
    device = torch.device("cuda", torch.cuda.current_device()) \
        if dist.get_backend() == "nccl" else torch.device("cpu")
    data = torch.tensor(list(text.encode()), dtype=torch.uint8, device=device)
    size = torch.tensor([data.numel()], dtype=torch.int64, device=device)
    dist.broadcast(size, src)
    buf = data if dist.get_rank() == src else torch.zeros(int(size), dtype=torch.uint8, device=device)
    dist.broadcast(buf, src)
    return bytes(buf.cpu().tolist()).decode()
