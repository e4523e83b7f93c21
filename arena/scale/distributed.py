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

import os
import socket

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


def node_address() -> str:
    """This host's address as the launch's other nodes reach it: the local end of the route
    to MASTER_ADDR (set by torchrun, SLURM or Lightning; working it out sends no packet),
    else the hostname. MASTER_ADDR itself names only rank 0's host."""
    master = os.environ.get("MASTER_ADDR")
    if master:
        try:
            port = int(os.environ.get("MASTER_PORT") or 29500)
            family, kind, proto, _, target = socket.getaddrinfo(
                master, port, type=socket.SOCK_DGRAM)[0]
            with socket.socket(family, kind, proto) as probe:
                probe.connect(target)  # UDP: picks the route and the local address only
                return str(probe.getsockname()[0])
        except (OSError, ValueError):
            pass
    return socket.gethostname()


def reachable_endpoint(endpoint: str) -> str:
    """`endpoint` as other hosts can use it: a wildcard bind (0.0.0.0) named by this host's
    address (`node_address`); any other endpoint as it is."""
    scheme, sep, rest = endpoint.rpartition("://")
    host, colon, port = rest.rpartition(":")
    if host != "0.0.0.0":
        return endpoint
    address = node_address()
    return f"{scheme}{sep}{f'[{address}]' if ':' in address else address}{colon}{port}"


def spans_nodes() -> bool:
    """Whether this process belongs to a launch over several machines, from the launcher's
    environment: torchrun (WORLD_SIZE > LOCAL_WORLD_SIZE), SLURM (SLURM_NNODES > 1), or a
    launch by hand with NODE_RANK set on each machine."""
    env = os.environ
    try:
        if "LOCAL_WORLD_SIZE" in env and \
                int(env.get("WORLD_SIZE", "1")) > int(env["LOCAL_WORLD_SIZE"]):
            return True
        if int(env.get("SLURM_NNODES") or env.get("SLURM_JOB_NUM_NODES") or 1) > 1:
            return True
    except ValueError:
        return False
    return bool(env.get("NODE_RANK")) and "LOCAL_WORLD_SIZE" not in env


def interface_of(address: str) -> str | None:
    """The network interface holding the IPv4 `address` (Linux), or None."""
    import fcntl
    import struct

    siocgifaddr = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                raw = fcntl.ioctl(s.fileno(), siocgifaddr, struct.pack("256s", name.encode()[:15]))
            except OSError:  # no IPv4 address on it
                continue
            if socket.inet_ntoa(raw[20:24]) == address:
                return name
    return None


def _is_loopback(address: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def choose_gloo_interface() -> str | None:
    """Before a multi-machine launch starts gloo: gloo tells the other ranks the address its
    hostname resolves to, and a hostname that resolves to a loopback address (Debian and
    Ubuntu's `127.0.1.1 host` line, 127.0.0.1 in many containers) sends every other machine
    to itself ("Gloo connectFullMesh failed ... Connection refused, remote=[127.0.0.1]").
    Then, unless GLOO_SOCKET_IFNAME is set already, it is set to the interface that holds
    `node_address()` (the route to MASTER_ADDR). Returns a line saying what was set, or None
    when nothing needed to change."""
    if "GLOO_SOCKET_IFNAME" in os.environ or not spans_nodes():
        return None
    hostname = socket.gethostname()
    try:
        resolved = socket.gethostbyname(hostname)
    except OSError:
        resolved = ""
    if resolved and not _is_loopback(resolved):
        return None
    address = node_address()
    name = interface_of(address) if not _is_loopback(address) else None
    if name is None:
        return None
    os.environ["GLOO_SOCKET_IFNAME"] = name
    return (f"hostname {hostname} resolves to {resolved or 'nothing'}, which other machines "
            f"cannot reach: gloo uses {name} ({address}), the interface towards MASTER_ADDR "
            f"(set GLOO_SOCKET_IFNAME to choose another)")
