"""The league link: how a process that is not rank 0 reaches rank 0's league and control
socket — actors (arena/scale/actors.py) and the learner's other DDP ranks
(arena/learn/learner.py).

`ControlClient` makes bounded requests (JSON + raw arrays, never pickles) to a learner's
control socket; `PoolMirror` is a read-only view of one role's pool on rank 0 (sampling as
in `OpponentPool`, snapshot weights fetched by id and cached, results queued for rank 0);
`sync_league` sends the queued results and takes rank 0's current index. Rank 0 serves the
requests with `arena.scale.actors.ControlServer`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np
import torch
import zmq

from arena.scale.transport import Secure
from arena.scale.wire import WireError, decode, encode
from league.pool import OpponentPool, PoolError, arch_from_bytes, entries_from_state


class ActorError(RuntimeError):
    """An actor cannot go on (no learner, refused, learner gone); the message says why."""


# ---- requests over the control socket --------------------------------------------------------
class ControlClient:
    """REQ to a learner's control socket, rebuilt after a timeout (the lazy-pirate pattern:
    a REQ socket that missed its reply cannot send again)."""

    def __init__(self, context: zmq.Context, endpoint: str, secure: Secure | None,
                 timeout_s: float, gone: Callable[[], bool] | None = None) -> None:
        self.context, self.endpoint, self.secure, self.timeout_s = context, endpoint, secure, timeout_s
        self.gone = gone  # True once waiting is pointless (an actor whose learner died)
        self.socket: zmq.Socket | None = None

    def _connect(self) -> zmq.Socket:
        if self.socket is None:
            self.socket = self.context.socket(zmq.REQ)
            self.socket.setsockopt(zmq.LINGER, 0)
            if self.secure is not None:
                self.secure(self.socket)
            self.socket.connect(self.endpoint)
        return self.socket

    def request(self, kind: str, meta: dict[str, Any], timeout_s: float | None = None
                ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        sock = self._connect()
        timeout = self.timeout_s if timeout_s is None else timeout_s
        # a REQ send blocks while no connection is up (a CURVE handshake the learner refused
        # leaves none): bounded like the wait for the answer
        # in short tries, so that `gone` is asked while it waits
        deadline = time.monotonic() + timeout
        sock.setsockopt(zmq.SNDTIMEO, max(int(min(timeout, 0.2) * 1000), 1))
        message = encode(kind, meta, {})
        sent = answered = False
        while not answered and (left := deadline - time.monotonic()) > 0:
            if self.gone is not None and self.gone():
                self.close()
                raise ActorError(f"the learner at {self.endpoint} is gone")
            if not sent:
                try:
                    sock.send_multipart(message)
                    sent = True
                except zmq.Again:
                    continue
            answered = bool(sock.poll(int(min(left, 0.2) * 1000) + 1, zmq.POLLIN))
        if not answered:
            self.close()
            raise ActorError(f"no answer from the learner at {self.endpoint} within {timeout:g} s "
                             f"(is it running with actors enabled? with CURVE on, does this "
                             f"actor hold an authorised key?)")
        try:
            reply_kind, reply_meta, arrays = decode(sock.recv_multipart())
        except WireError as exc:
            raise ActorError(f"{self.endpoint}: malformed reply ({exc})") from None
        if reply_kind == "error":
            raise ActorError(f"{self.endpoint}: {reply_meta.get('reason', 'refused')}")
        return reply_meta, arrays

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None


class PoolMirror(OpponentPool):
    """An actor's (or a DDP rank's) read-only view of a role's pool on rank 0: sampling as in
    OpponentPool, the index synced over the control socket, weights fetched by id and
    cached, results queued for rank 0, which alone updates qualities and writes files."""

    def __init__(self, role: str, client: ControlClient, **settings: Any) -> None:
        super().__init__(f"<league '{role}' at {client.endpoint}>", **settings)
        self.role = role
        self.client = client
        self.pending: list[list[Any]] = []

    def sync(self, state: dict[str, Any]) -> None:
        snapshots, next_id = entries_from_state(state)
        if next_id < self._next_id:  # the learner went back to an older checkpoint
            self._cache.clear()
            self._archs.clear()
        self._snapshots, self._next_id = snapshots, next_id

    def load_state_dict(self, state: Mapping[str, Any], *, strict: bool = False) -> None:
        """A resumed rank's mirror takes the checkpoint's index as rank 0's pool does; the
        files are rank 0's (its pool checks them), none are here to check or remove."""
        try:
            self.sync(dict(state))
        except (ValueError, KeyError, TypeError) as exc:
            raise PoolError(f"{self.directory}: not a valid pool state ({exc})") from None

    def record(self, snapshot_id: int, latest_score: float) -> None:
        self.pending.append([self.role, int(snapshot_id), float(latest_score)])

    def save_index(self) -> None:
        return None

    def load_weights(self, snapshot_id: int) -> dict[str, torch.Tensor]:
        from safetensors.torch import load as st_load

        if snapshot_id not in self._cache:
            _, arrays = self.client.request("snapshot", {"role": self.role, "id": int(snapshot_id)})
            data = arrays["weights"].tobytes()
            self._cache[snapshot_id] = st_load(data)
            self._archs[snapshot_id] = arch_from_bytes(data, f"{self.directory} #{snapshot_id}")
            while len(self._cache) > max(self._cache_size, 1):
                self._cache.popitem(last=False)
        self._cache.move_to_end(snapshot_id)
        return dict(self._cache[snapshot_id])

    def _read_arch(self, snapshot_id: int) -> dict[str, Any] | None:
        self.load_weights(snapshot_id)  # the architecture comes with the weights' file
        return self._archs.get(snapshot_id)


def sync_league(client: ControlClient, pools: dict[str, PoolMirror]) -> None:
    """Send the results queued in `pools` to rank 0 and take its pools' current index."""
    results = [r for pool in pools.values() for r in pool.pending]
    meta, _ = client.request("league", {"results": results})
    for pool in pools.values():
        pool.pending.clear()
        state = meta.get("pools", {}).get(pool.role)
        if state is not None:
            pool.sync(state)
