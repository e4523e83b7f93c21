"""The wire format between actors and the learner: a JSON header and raw numpy buffers.

A message is a list of frames (one pyzmq multipart message): frame 0 is a small UTF-8 JSON
header, frames 1..n are the arrays' raw bytes, sent without copying. Nothing is ever
unpickled: the decoder parses JSON, checks every field against the schema (version, kind,
array names, dtypes from a short allow-list, shapes, byte counts, total size) and builds
arrays with `np.frombuffer`. Anything else raises `WireError`, so a learner can count and
drop a bad message and carry on.

Weights go the other way as one frame of safetensors bytes after the header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SCHEMA = 1
KINDS = ("rollout", "weights", "hello", "league", "snapshot", "error")
DTYPES = ("float32", "float64", "int64", "int32", "int8", "uint8", "bool")
MAX_MESSAGE_BYTES = 512 * 2**20
MAX_HEADER_BYTES = 64 * 2**10
MAX_ARRAYS = 256
MAX_DIMS = 8
_NAME = re.compile(r"^[A-Za-z0-9_./:+-]{1,128}$")


class WireError(ValueError):
    """A message that does not follow the wire format; the receiver drops it."""


def encode(kind: str, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> list:
    """Frames of a message: the header (kind, meta, array specs) and each array's buffer."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    specs, frames = [], []
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        if str(array.dtype) not in DTYPES:
            raise ValueError(f"array {name!r}: dtype {array.dtype} is not sendable ({DTYPES})")
        specs.append({"name": name, "dtype": str(array.dtype), "shape": list(array.shape)})
        frames.append(memoryview(array).cast("B") if array.size else b"")
    header = {"schema": SCHEMA, "kind": kind, "meta": dict(meta), "arrays": specs}
    return [json.dumps(header, separators=(",", ":")).encode()] + frames


def decode(frames: Sequence[Any], expect_kind: str | None = None
           ) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """(kind, meta, arrays) of a message; `WireError` for anything malformed."""
    if not isinstance(frames, Sequence) or len(frames) == 0:
        raise WireError("empty message")
    if len(frames) > MAX_ARRAYS + 1:
        raise WireError(f"too many frames: {len(frames)}")
    raw = [bytes(f) if not isinstance(f, (bytes, bytearray, memoryview)) else f for f in frames]
    sizes = [memoryview(f).nbytes for f in raw]
    if sum(sizes) > MAX_MESSAGE_BYTES:
        raise WireError(f"message of {sum(sizes)} bytes exceeds {MAX_MESSAGE_BYTES}")
    if sizes[0] > MAX_HEADER_BYTES:
        raise WireError(f"header of {sizes[0]} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = json.loads(bytes(raw[0]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WireError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WireError("header is not a JSON object")
    if header.get("schema") != SCHEMA:
        raise WireError(f"schema {header.get('schema')!r}, expected {SCHEMA}")
    kind = header.get("kind")
    if kind not in KINDS or (expect_kind is not None and kind != expect_kind):
        raise WireError(f"kind {kind!r}, expected {expect_kind or KINDS}")
    meta = header.get("meta")
    specs = header.get("arrays")
    if not isinstance(meta, dict) or not isinstance(specs, list):
        raise WireError("header needs 'meta' (object) and 'arrays' (list)")
    if len(specs) != len(raw) - 1:
        raise WireError(f"header lists {len(specs)} arrays, message has {len(raw) - 1}")
    arrays: dict[str, np.ndarray] = {}
    for spec, buf, size in zip(specs, raw[1:], sizes[1:]):
        if not isinstance(spec, dict) or set(spec) != {"name", "dtype", "shape"}:
            raise WireError(f"bad array spec {spec!r}")
        name, dtype, shape = spec["name"], spec["dtype"], spec["shape"]
        if not isinstance(name, str) or not _NAME.match(name) or name in arrays:
            raise WireError(f"bad or repeated array name {name!r}")
        if dtype not in DTYPES:
            raise WireError(f"array {name!r}: dtype {dtype!r} not allowed")
        if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31 for d in shape):
            raise WireError(f"array {name!r}: bad shape {shape!r}")
        expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if expected != size:
            raise WireError(f"array {name!r}: {size} bytes for shape {shape} of {dtype}")
        arrays[name] = np.frombuffer(buf, dtype=dtype).reshape(shape) if size else \
            np.zeros(shape, dtype)
    return kind, meta, arrays
