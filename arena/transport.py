"""pyzmq channels between actors and the learner (OpenAI Five's Rapid: rollout workers apart
from the optimizer, new weights published to them).

    actors  --PUSH-->  learner    trajectory chunks: arena/wire.py multipart messages
    learner --PUB--->  actors     weights: one frame, header + safetensors bytes; the
                                  subscriber keeps only the newest (ZMQ_CONFLATE)

Sockets bind to 127.0.0.1 unless told otherwise. Receivers never raise on a bad message:
they count it, remember why, and drop it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
import zmq
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from arena.wire import MAX_MESSAGE_BYTES, WireError, decode, encode

LOOPBACK = "tcp://127.0.0.1"
_LEN = struct.Struct("<I")


def _bind(socket: zmq.Socket, address: str) -> str:
    """Bind; "tcp://HOST:*" picks a free port. Returns the address actually bound."""
    if address.endswith(":*"):
        port = socket.bind_to_random_port(address[:-2])
        return f"{address[:-2]}:{port}"
    socket.bind(address)
    return address


@dataclass
class Dropped:
    """Bad messages seen by a receiver: how many, and the last reason."""

    count: int = 0
    last_reason: str = ""
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str) -> None:
        self.count += 1
        self.last_reason = reason
        key = reason.split(":")[0][:60]
        self.reasons[key] = self.reasons.get(key, 0) + 1


class ChunkReceiver:
    """The learner's end of the chunk channel: a PULL socket with a bounded queue."""

    def __init__(self, context: zmq.Context, address: str = f"{LOOPBACK}:*", hwm: int = 64) -> None:
        self.socket = context.socket(zmq.PULL)
        self.socket.setsockopt(zmq.RCVHWM, hwm)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.address = _bind(self.socket, address)
        self.dropped = Dropped()

    def receive(self, timeout_ms: int = 0) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """The next valid chunk (meta, arrays), or None if none arrives in time."""
        while self.socket.poll(timeout_ms, zmq.POLLIN):
            frames = self.socket.recv_multipart(copy=False)
            try:
                _, meta, arrays = decode([f.buffer for f in frames], expect_kind="rollout")
                return meta, arrays
            except WireError as exc:
                self.dropped.add(str(exc))
                timeout_ms = 0
        return None

    def close(self) -> None:
        self.socket.close(linger=0)


class ChunkSender:
    """An actor's end of the chunk channel: PUSH, blocking when the learner's queue is full."""

    def __init__(self, context: zmq.Context, address: str, hwm: int = 8) -> None:
        self.socket = context.socket(zmq.PUSH)
        self.socket.setsockopt(zmq.SNDHWM, hwm)
        self.socket.connect(address)

    def send(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.socket.send_multipart(encode("rollout", meta, arrays), copy=False)

    def close(self) -> None:
        self.socket.close(linger=0)


def encode_weights(weights: Mapping[str, torch.Tensor], version: int, gamma: float) -> bytes:
    """One frame: little-endian header length, JSON header, safetensors bytes."""
    header = json.dumps({"schema": 1, "kind": "weights", "version": int(version),
                         "gamma": float(gamma)}).encode()
    body = st_save({k: v.detach().cpu().contiguous() for k, v in weights.items()})
    return _LEN.pack(len(header)) + header + body


def decode_weights(frame: bytes) -> tuple[int, float, dict[str, torch.Tensor]]:
    """(version, gamma, tensors); WireError for anything malformed."""
    if len(frame) < _LEN.size:
        raise WireError("weights message too short")
    (n,) = _LEN.unpack_from(frame)
    if n > 4096 or _LEN.size + n > len(frame):
        raise WireError(f"weights header length {n} is impossible")
    try:
        header = json.loads(bytes(frame[_LEN.size:_LEN.size + n]).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"weights header is not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("schema") != 1 or header.get("kind") != "weights":
        raise WireError(f"not a weights header: {header!r}"[:200])
    version, gamma = header.get("version"), header.get("gamma")
    if not isinstance(version, int) or isinstance(version, bool) or \
            not isinstance(gamma, (int, float)) or isinstance(gamma, bool):
        raise WireError("weights header needs an int version and a number gamma")
    try:
        tensors = st_load(bytes(frame[_LEN.size + n:]))
    except Exception as exc:  # safetensors raises its own error types for bad bytes
        raise WireError(f"weights are not safetensors: {exc}") from None
    return version, float(gamma), tensors


class WeightsPublisher:
    def __init__(self, context: zmq.Context, address: str = f"{LOOPBACK}:*") -> None:
        self.socket = context.socket(zmq.PUB)
        self.address = _bind(self.socket, address)

    def publish(self, weights: Mapping[str, torch.Tensor], version: int, gamma: float) -> None:
        self.socket.send(encode_weights(weights, version, gamma), copy=False)

    def close(self) -> None:
        self.socket.close(linger=0)


class WeightsSubscriber:
    """Keeps only the newest weights message (CONFLATE): actors never fall behind a queue."""

    def __init__(self, context: zmq.Context, address: str) -> None:
        self.socket = context.socket(zmq.SUB)
        self.socket.setsockopt(zmq.CONFLATE, 1)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        self.socket.connect(address)
        self.dropped = Dropped()

    def latest(self, timeout_ms: int = 0) -> tuple[int, float, dict[str, torch.Tensor]] | None:
        if not self.socket.poll(timeout_ms, zmq.POLLIN):
            return None
        frame = self.socket.recv()
        try:
            return decode_weights(frame)
        except WireError as exc:
            self.dropped.add(str(exc))
            return None

    def close(self) -> None:
        self.socket.close(linger=0)
