"""pyzmq channels on loopback: chunks arrive intact, bad messages are dropped and counted,
actors keep only the newest weights."""

import time

import numpy as np
import pytest
import torch
import zmq

from arena.scale.transport import (
    ChunkReceiver,
    ChunkSender,
    WeightsPublisher,
    WeightsSubscriber,
    decode_weights,
    encode_weights,
)
from arena.scale.wire import WireError


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.term()


def test_chunks_round_trip_and_bad_messages_are_counted(context):
    receiver = ChunkReceiver(context)
    assert receiver.address.startswith("tcp://127.0.0.1:")  # loopback unless told otherwise
    sender = ChunkSender(context, receiver.address)
    raw = context.socket(zmq.PUSH)
    raw.connect(receiver.address)
    obs = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    try:
        raw.send_multipart([b"\x80\x03}q\x00."])  # a pickle: refused, never loaded
        raw.send_multipart([b'{"schema": 1, "kind": "rollout", "meta": {}, "arrays": [1]}'])
        sender.send({"actor": 1, "policy_version": 5}, {"obs": obs})
        got = receiver.receive(timeout_ms=5000)
        assert got is not None
        meta, arrays = got
        assert meta == {"actor": 1, "policy_version": 5}
        np.testing.assert_array_equal(arrays["obs"], obs)
        # connections are fair-queued: the bad messages may come before or after the good one
        deadline = time.time() + 10
        while receiver.dropped.count < 2 and time.time() < deadline:
            assert receiver.receive(timeout_ms=100) is None
        assert receiver.dropped.count == 2 and receiver.dropped.last_reason
    finally:
        raw.close(linger=0)
        sender.close()
        receiver.close()


def test_weights_round_trip_and_conflation(context):
    publisher = WeightsPublisher(context)
    subscriber = WeightsSubscriber(context, publisher.address)
    try:
        deadline = time.time() + 10
        while subscriber.latest(timeout_ms=50) is None:  # wait for the subscription to join
            assert time.time() < deadline
            publisher.publish({"w": torch.zeros(3)}, 0, 0.998)
        for version in range(1, 6):
            publisher.publish({"w": torch.full((3,), float(version))}, version, 0.998)
        seen = []
        while time.time() < deadline and (not seen or seen[-1][0] != 5):
            got = subscriber.latest(timeout_ms=100)
            if got is not None:
                seen.append(got)
        version, gamma, tensors = seen[-1]
        assert version == 5 and gamma == 0.998 and torch.equal(tensors["w"], torch.full((3,), 5.0))
        assert len(seen) < 5  # older versions were dropped, not queued
    finally:
        subscriber.close()
        publisher.close()


@pytest.mark.parametrize("frame, match", [
    (b"", "too short"), (b"\xff\xff\x00\x00{}", "impossible"),
    (b"\x02\x00\x00\x00{}", "not a weights header"),
])
def test_bad_weights_frames(frame, match):
    with pytest.raises(WireError, match=match):
        decode_weights(frame)
    good = encode_weights({"w": torch.ones(2)}, 1, 0.99)
    with pytest.raises(WireError, match="safetensors"):
        decode_weights(good[:-3])
