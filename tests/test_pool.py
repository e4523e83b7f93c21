"""The opponent pool: sampling frequencies, quality updates, PFSP, storage."""

import json

import numpy as np
import pytest
import torch

from league.pool import OpponentPool, PoolError


def weights(seed: int):
    g = torch.Generator().manual_seed(seed)
    return {"policies.hero.actor.weight": torch.randn(4, 3, generator=g),
            "policies.hero.obs_rms.count": torch.tensor(7.0, dtype=torch.float64)}


def filled(tmp_path, n=3, **kw) -> OpponentPool:
    pool = OpponentPool(tmp_path / "pool", **kw)
    for i in range(n):
        pool.add(weights(i), update=10 * (i + 1), agent_steps=1000 * (i + 1))
    return pool


def test_latest_eighty_percent_past_by_softmax_of_quality(tmp_path):
    pool = filled(tmp_path)
    for snap, q in zip(pool.snapshots, (0.0, -1.0, 0.5)):
        snap.quality = q
    rng = np.random.default_rng(0)
    draws = [pool.sample(rng) for _ in range(40_000)]
    latest = sum(d is None for d in draws) / len(draws)
    assert latest == pytest.approx(0.8, abs=0.01)
    past = np.array([d.id for d in draws if d is not None])
    freq = np.bincount(past, minlength=3) / len(past)
    expected = np.exp([0.0, -1.0, 0.5]) / np.exp([0.0, -1.0, 0.5]).sum()
    np.testing.assert_allclose(freq, expected, atol=0.015)
    np.testing.assert_allclose(pool.probabilities(), expected)


def test_quality_update_by_hand(tmp_path):
    pool = filled(tmp_path, eta=0.01)
    for snap, q in zip(pool.snapshots, (0.0, 0.2, 0.4)):
        snap.quality = q
    p = np.exp([0.0, 0.2, 0.4]) / np.exp([0.0, 0.2, 0.4]).sum()
    pool.record(1, 1.0)  # the latest beat snapshot 1
    assert pool.snapshots[1].quality == pytest.approx(0.2 - 0.01 / (3 * p[1]))
    before = [s.quality for s in pool.snapshots]
    pool.record(0, 0.0)
    pool.record(2, 0.5)
    assert [s.quality for s in pool.snapshots] == before  # losses and draws change nothing
    assert pool.win_rates() == {0: 0.0, 1: 1.0, 2: 0.5}
    # a new snapshot enters at max(q)
    new = pool.add(weights(9), update=40, agent_steps=4000)
    assert new.quality == pytest.approx(0.4)


@pytest.mark.parametrize("weighting", ["hard", "var"])
def test_pfsp_probabilities_by_hand(tmp_path, weighting):
    pool = filled(tmp_path, sampler="pfsp", pfsp_weighting=weighting, pfsp_p=2.0)
    for snap, (games, score) in zip(pool.snapshots, ((4, 3.0), (4, 1.0), (0, 0.0))):
        snap.games, snap.score = games, score
    x = np.array([0.75, 0.25, 0.5])  # unplayed snapshots count as 0.5
    f = (1 - x) ** 2 if weighting == "hard" else x * (1 - x)
    f = f + 1e-3
    np.testing.assert_allclose(pool.probabilities(), f / f.sum())
    q = [s.quality for s in pool.snapshots]
    pool.record(0, 1.0)
    assert [s.quality for s in pool.snapshots] == q  # PFSP leaves quality alone


def test_storage_round_trip_and_reopen(tmp_path):
    pool = filled(tmp_path)
    pool.record(2, 1.0)
    for snap in pool.snapshots:
        for name, value in weights(snap.id).items():
            got = pool.load_weights(snap.id)[name]
            assert got.dtype == value.dtype and torch.equal(got, value)
    pool.save_index()  # results are written with the index (the learner does it per update)
    again = OpponentPool.open(tmp_path / "pool")
    assert again.snapshots == pool.snapshots
    assert not list((tmp_path / "pool").glob("*.tmp"))
    # the state saved in a checkpoint brings the pool back to that moment
    state = json.loads(json.dumps(pool.state_dict()))
    pool.record(0, 1.0)
    pool.add(weights(5), update=50, agent_steps=5000)
    pool.load_state_dict(state)
    assert pool.snapshots == again.snapshots
    assert OpponentPool.open(tmp_path / "pool").snapshots == again.snapshots


def test_errors_name_the_file(tmp_path):
    pool = filled(tmp_path)
    index = tmp_path / "pool" / "pool.json"
    good = index.read_text()
    index.write_text(good[: len(good) // 2])
    with pytest.raises(PoolError, match="pool.json"):
        OpponentPool.open(tmp_path / "pool")
    index.write_text(good)
    (tmp_path / "pool" / pool.snapshots[1].file).unlink()
    with pytest.raises(PoolError, match="snapshot-000001.safetensors"):
        OpponentPool.open(tmp_path / "pool")


def test_empty_pool_always_plays_the_latest(tmp_path):
    pool = OpponentPool.open(tmp_path / "nothing")
    rng = np.random.default_rng(1)
    assert all(pool.sample(rng) is None for _ in range(100))
    with pytest.raises(PoolError, match="empty"):
        pool.sample_snapshot(rng)


def test_max_snapshots_drops_the_weakest_older_one(tmp_path):
    pool = filled(tmp_path, n=3, max_snapshots=3)
    pool.snapshots[1].quality = -5.0
    pool.add(weights(3), update=40, agent_steps=4000)
    assert [s.id for s in pool.snapshots] == [0, 2, 3]
    assert not (tmp_path / "pool" / "snapshot-000001.safetensors").exists()
