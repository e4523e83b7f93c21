"""The actor/learner wire format: exact round trips, and nothing malformed gets through."""

import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.scale.wire import MAX_MESSAGE_BYTES, WireError, decode, encode


def sample_arrays():
    rng = np.random.default_rng(0)
    return {"obs": rng.standard_normal((16, 4, 264)).astype(np.float32),
            "actions": rng.integers(0, 34, (16, 4)),
            "mask": rng.random((16, 4, 34)) > 0.5,
            "empty": np.zeros((0, 3), np.float32)}


def test_round_trip_is_exact():
    arrays = sample_arrays()
    frames = encode("rollout", {"actor": 3, "policy_version": 17}, arrays)
    kind, meta, got = decode([bytes(f) for f in frames], expect_kind="rollout")
    assert kind == "rollout" and meta == {"actor": 3, "policy_version": 17}
    for name, value in arrays.items():
        assert got[name].dtype == value.dtype and np.array_equal(got[name], value)


@pytest.mark.parametrize("mutate, match", [
    (lambda f: [b"not json"] + f[1:], "not JSON"),
    (lambda f: [json.dumps({"schema": 2, "kind": "rollout", "meta": {}, "arrays": []}).encode()], "schema"),
    (lambda f: f[:-1], "lists 4 arrays"),
    (lambda f: f[:1] + [bytes(f[1])[:-4]] + f[2:], "bytes for shape"),
    (lambda f: [f[0].replace(b'"float32"', b'"object"', 1)] + f[1:], "not allowed"),
    (lambda f: [pickle.dumps({"evil": 1})], "not JSON"),
    (lambda f: [], "empty"),
])
def test_malformed_messages_are_refused(mutate, match):
    frames = [bytes(f) for f in encode("rollout", {}, sample_arrays())]
    with pytest.raises(WireError, match=match):
        decode(mutate(frames))


def test_wrong_kind_and_oversize_are_refused():
    frames = encode("weights", {}, {})
    with pytest.raises(WireError, match="kind"):
        decode(frames, expect_kind="rollout")
    header = json.dumps({"schema": 1, "kind": "rollout", "meta": {},
                         "arrays": [{"name": "x", "dtype": "uint8", "shape": [MAX_MESSAGE_BYTES + 1]}]})
    with pytest.raises(WireError, match="exceeds"):
        decode([header.encode(), bytes(MAX_MESSAGE_BYTES + 1)])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=0, max_size=5))
def test_fuzzed_bytes_only_ever_raise_wire_errors(frames):
    try:
        decode(frames)
    except WireError:
        pass


header_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(header=st.fixed_dictionaries({"schema": st.sampled_from([1, 1, 2, "1"]),
                                     "kind": st.sampled_from(["rollout", "weights", "x"]),
                                     "meta": header_values, "arrays": header_values}),
       buffers=st.lists(st.binary(max_size=64), max_size=3))
def test_fuzzed_headers_only_ever_raise_wire_errors(header, buffers):
    try:
        kind, meta, arrays = decode([json.dumps(header).encode(), *buffers])
    except WireError:
        return
    assert kind in ("rollout", "weights") and isinstance(meta, dict)
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
