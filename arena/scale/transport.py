"""pyzmq channels between actors and the learner (OpenAI Five's Rapid: rollout workers apart
from the optimizer, new weights published to them).

    actors  --PUSH-->  learner    trajectory chunks: arena/scale/wire.py multipart messages
    learner --PUB--->  actors     weights: one frame, header + safetensors bytes; the
                                  subscriber keeps only the newest (ZMQ_CONFLATE)

Sockets bind to 127.0.0.1 unless told otherwise. Receivers never raise on a bad message:
they count it, remember why, and drop it.

Security: with CurveZMQ (`CurveKeys`, made by `arena keys DIR`) every learner socket is a
CURVE server that accepts only the client public keys in DIR/authorized/, and traffic is
encrypted; an actor without an authorised key never completes the handshake, so the learner
never sees a byte from it.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
import zmq
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from arena.scale.wire import MAX_MESSAGE_BYTES, WireError, decode, encode

LOOPBACK = "tcp://127.0.0.1"
_LEN = struct.Struct("<I")


Secure = Callable[[zmq.Socket], None]  # applied to a socket before it binds or connects


class KeysError(ValueError):
    """Missing or unreadable CURVE keys; the message names the file."""


@dataclass(frozen=True)
class CurveKeys:
    """CurveZMQ keys from `arena keys DIR`.

    DIR/server.key, DIR/server.key_secret      the learner's key pair
    DIR/client.key, DIR/client.key_secret      an actor's key pair
    DIR/authorized/*.key                       client public keys the learner accepts

    A learner needs server.key_secret and authorized/; an actor needs server.key (public)
    and client.key_secret. Copy only those to each machine.
    """

    directory: Path

    def server(self, socket: zmq.Socket) -> None:
        public, secret = _load_certificate(self.directory / "server.key_secret", secret=True)
        socket.curve_publickey, socket.curve_secretkey = public, secret
        socket.curve_server = True

    def client(self, socket: zmq.Socket) -> None:
        server_public, _ = _load_certificate(self.directory / "server.key", secret=False)
        public, secret = _load_certificate(self.directory / "client.key_secret", secret=True)
        socket.curve_publickey, socket.curve_secretkey = public, secret
        socket.curve_serverkey = server_public

    def authenticator(self, context: zmq.Context):
        """Started ZAP handler that lets in only the authorised client keys (stop() it)."""
        from zmq.auth.thread import ThreadAuthenticator

        authorized = self.directory / "authorized"
        if not authorized.is_dir() or not any(authorized.glob("*.key")):
            raise KeysError(f"{authorized}: no authorised client keys (*.key); "
                            f"make them with `arena keys {self.directory}`")
        auth = ThreadAuthenticator(context)
        auth.start()
        auth.configure_curve(domain="*", location=str(authorized))
        return auth


def _load_certificate(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth

    if not path.is_file():
        raise KeysError(f"{path}: missing CURVE key file (make keys with `arena keys DIR`)")
    try:
        public, secret_key = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as exc:
        raise KeysError(f"{path}: not a CURVE key file ({exc})") from None
    if secret and not secret_key:
        raise KeysError(f"{path}: holds no secret key")
    return public, secret_key


def create_keys(directory: str | Path) -> CurveKeys:
    """Write a learner key pair, an actor key pair and the authorised-clients folder.

    An empty name is refused rather than read as the current folder: secret keys land only
    where they were asked for."""
    import zmq.auth

    if isinstance(directory, str) and not directory.strip():
        raise KeysError(f"keys folder: expected a folder name such as keys/, got {directory!r}")
    directory = Path(directory)
    names = ("server.key", "server.key_secret", "client.key", "client.key_secret")
    existing = [n for n in names if (directory / n).exists()]
    if existing:
        raise KeysError(f"{directory}: already holds {', '.join(existing)}; not overwriting keys")
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        zmq.auth.create_certificates(tmp, "server")
        zmq.auth.create_certificates(tmp, "client")
        (directory / "authorized").mkdir(exist_ok=True)
        shutil.copy(Path(tmp) / "client.key", directory / "authorized" / "client.key")
        for name in names:
            Path(tmp, name).replace(directory / name)
    for name in ("server.key_secret", "client.key_secret"):
        (directory / name).chmod(0o600)
    return CurveKeys(directory)


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

    def __init__(self, context: zmq.Context, address: str = f"{LOOPBACK}:*", hwm: int = 64,
                 secure: Secure | None = None) -> None:
        self.socket = context.socket(zmq.PULL)
        if secure is not None:
            secure(self.socket)
        self.bytes_received = 0
        self.socket.setsockopt(zmq.RCVHWM, hwm)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self.address = _bind(self.socket, address)
        self.dropped = Dropped()

    def receive(self, timeout_ms: int = 0) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """The next valid chunk (meta, arrays), or None if none arrives in time (a malformed
        message is dropped and counted, and the wait goes on until the timeout)."""
        deadline = time.monotonic() + timeout_ms / 1000.0
        while self.socket.poll(timeout_ms, zmq.POLLIN):
            frames = self.socket.recv_multipart(copy=False)
            self.bytes_received += sum(len(f) for f in frames)
            try:
                _, meta, arrays = decode([f.buffer for f in frames], expect_kind="rollout")
                return meta, arrays
            except WireError as exc:
                self.dropped.add(str(exc))
                if timeout_ms > 0:  # -1 waits for ever; 0 only takes what is there
                    timeout_ms = max(int((deadline - time.monotonic()) * 1000), 0)
        return None

    def close(self) -> None:
        self.socket.close(linger=0)


class ChunkSender:
    """An actor's end of the chunk channel: PUSH, blocking when the learner's queue is full."""

    def __init__(self, context: zmq.Context, address: str, hwm: int = 8,
                 secure: Secure | None = None, timeout_ms: int = -1) -> None:
        self.socket = context.socket(zmq.PUSH)
        if secure is not None:
            secure(self.socket)
        self.socket.setsockopt(zmq.SNDHWM, hwm)
        self.socket.setsockopt(zmq.SNDTIMEO, timeout_ms)
        self.socket.connect(address)

    def send(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bool:
        """Queue one rollout; False if the learner's queue stayed full for `timeout_ms`."""
        try:
            self.socket.send_multipart(encode("rollout", meta, arrays), copy=False)
        except zmq.Again:
            return False
        return True

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
    def __init__(self, context: zmq.Context, address: str = f"{LOOPBACK}:*",
                 secure: Secure | None = None) -> None:
        self.socket = context.socket(zmq.PUB)
        if secure is not None:
            secure(self.socket)
        self.address = _bind(self.socket, address)

    def publish(self, weights: Mapping[str, torch.Tensor], version: int, gamma: float) -> None:
        self.send(encode_weights(weights, version, gamma))

    def send(self, frame: bytes) -> None:
        """An already encoded weights message (re-sending one costs no encoding)."""
        self.socket.send(frame, copy=False)

    def close(self) -> None:
        self.socket.close(linger=0)


class WeightsSubscriber:
    """Keeps only the newest weights message (CONFLATE): actors never fall behind a queue."""

    def __init__(self, context: zmq.Context, address: str, secure: Secure | None = None) -> None:
        self.socket = context.socket(zmq.SUB)
        if secure is not None:
            secure(self.socket)
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
