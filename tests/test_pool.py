"""The opponent pool: sampling frequencies, quality updates, PFSP, storage."""

import json
import os

import numpy as np
import pytest
import torch

from league.pool import EmptyPoolError, OpponentPool, PoolError, Snapshot


def weights(seed: int):
    g = torch.Generator().manual_seed(seed)
    return {"policies.hero.actor.weight": torch.randn(4, 3, generator=g),
            "policies.hero.obs_rms.count": torch.tensor(7.0 + seed, dtype=torch.float64)}


def filled(tmp_path, n=3, **kw) -> OpponentPool:
    pool = OpponentPool(tmp_path / "pool", **kw)
    for i in range(n):
        pool.add(weights(i), update=10 * (i + 1), agent_steps=1000 * (i + 1))
    return pool


def softmax(q):
    e = np.exp(np.asarray(q, np.float64) - np.max(q))
    return e / e.sum()


# ---- sampling ---------------------------------------------------------------------------------
def test_latest_eighty_percent_past_by_softmax_of_quality(tmp_path):
    pool = filled(tmp_path, n=4)
    qs = (0.0, -1.0, 0.5, -0.3)
    for snap, q in zip(pool.snapshots, qs):
        snap.quality = q
    expected = softmax(qs)
    np.testing.assert_allclose(pool.probabilities(), expected, rtol=1e-12)
    rng = np.random.default_rng(0)
    draws = [pool.sample(rng) for _ in range(20_000)]
    latest = sum(d is None for d in draws) / len(draws)
    assert latest == pytest.approx(0.8, abs=0.01)
    assert 1 - latest == pytest.approx(0.2, abs=0.01)
    past = np.array([d.id for d in draws if d is not None])
    counts = np.bincount(past, minlength=4)
    chi2 = float((((counts - len(past) * expected) ** 2) / (len(past) * expected)).sum())
    assert chi2 < 16.27  # 99.9 % quantile of chi-square with 3 degrees of freedom
    np.testing.assert_allclose(counts / len(past), expected, atol=0.02)


def test_sample_snapshot_never_returns_the_latest(tmp_path):
    pool = filled(tmp_path, n=2)
    rng = np.random.default_rng(3)
    assert all(isinstance(pool.sample_snapshot(rng), Snapshot) for _ in range(200))


@pytest.mark.parametrize("prob, expect_latest", [(1.0, True), (0.0, False)])
def test_latest_prob_extremes(tmp_path, prob, expect_latest):
    pool = filled(tmp_path, n=2, latest_prob=prob)
    rng = np.random.default_rng(2)
    assert all((pool.sample(rng) is None) == expect_latest for _ in range(500))


def test_empty_pool_always_plays_the_latest(tmp_path):
    pool = OpponentPool.open(tmp_path / "nothing", latest_prob=0.0)
    assert len(pool) == 0 and pool.probabilities().shape == (0,)
    rng = np.random.default_rng(1)
    assert all(pool.sample(rng) is None for _ in range(100))
    with pytest.raises(EmptyPoolError, match="empty"):
        pool.sample_snapshot(rng)
    assert issubclass(EmptyPoolError, PoolError) and issubclass(PoolError, ValueError)
    assert not (tmp_path / "nothing").exists()  # opening writes nothing


# ---- quality scores -------------------------------------------------------------------------
def test_quality_update_by_hand(tmp_path):
    pool = filled(tmp_path, eta=0.01)
    for snap, q in zip(pool.snapshots, (0.0, 0.2, 0.4)):
        snap.quality = q
    p = softmax([0.0, 0.2, 0.4])
    pool.record(1, 1.0)  # the latest beat snapshot 1
    assert pool.snapshots[1].quality == pytest.approx(0.2 - 0.01 / (3 * p[1]), rel=1e-12)
    assert [s.quality for s in pool.snapshots][::2] == [0.0, 0.4]  # the others unchanged
    # a second win uses the probabilities as they are now
    p2 = softmax([s.quality for s in pool.snapshots])
    q1 = pool.snapshots[1].quality
    pool.record(1, 1.0)
    assert pool.snapshots[1].quality == pytest.approx(q1 - 0.01 / (3 * p2[1]), rel=1e-12)
    before = [s.quality for s in pool.snapshots]
    pool.record(0, 0.0)  # a loss
    pool.record(2, 0.5)  # a draw
    assert [s.quality for s in pool.snapshots] == before  # losses and draws change nothing
    assert [(s.games, s.score) for s in pool.snapshots] == [(1, 0.0), (2, 2.0), (1, 0.5)]
    assert pool.win_rates() == {0: 0.0, 1: 1.0, 2: 0.5}


def test_new_snapshot_enters_at_max_quality(tmp_path):
    pool = OpponentPool(tmp_path / "pool")
    assert pool.add(weights(0), update=1, agent_steps=10).quality == 0.0  # the first: 0
    pool.add(weights(1), update=2, agent_steps=20)
    pool.snapshots[0].quality, pool.snapshots[1].quality = -0.7, 0.4
    assert pool.add(weights(2), update=3, agent_steps=30).quality == 0.4
    pool.snapshots[1].quality = -2.0
    assert pool.add(weights(3), update=4, agent_steps=40).quality == 0.4
    assert [s.id for s in pool.snapshots] == [0, 1, 2, 3]


def test_frequently_beaten_snapshots_are_drawn_less(tmp_path):
    pool = filled(tmp_path, n=3, eta=0.05)
    rng = np.random.default_rng(4)
    for _ in range(300):  # the latest always beats snapshot 0 and never the others
        snap = pool.sample_snapshot(rng)
        pool.record(snap.id, 1.0 if snap.id == 0 else 0.0)
    p = pool.probabilities()
    assert p[0] < 0.1 < p[1] and p[2] > 0.1
    assert np.all(np.isfinite([s.quality for s in pool.snapshots]))


@pytest.mark.parametrize("weighting", ["hard", "var"])
def test_pfsp_probabilities_by_hand(tmp_path, weighting):
    pool = filled(tmp_path, n=4, sampler="pfsp", pfsp_weighting=weighting, pfsp_p=2.0)
    results = ((4, 3.0), (4, 1.0), (0, 0.0), (2, 2.0))  # (games, score) of the latest
    for snap, (games, score) in zip(pool.snapshots, results):
        snap.games, snap.score = games, score
    x = np.array([0.75, 0.25, 0.5, 1.0])  # an unplayed snapshot counts as 0.5
    f = (1 - x) ** 2 if weighting == "hard" else x * (1 - x)
    f = f + 1e-3  # none is ruled out, not even the one always beaten
    np.testing.assert_allclose(pool.probabilities(), f / f.sum(), rtol=1e-12)
    assert pool.probabilities()[3] > 0
    if weighting == "hard":  # the hardest opponent (x = 0.25) is the likeliest
        assert int(np.argmax(pool.probabilities())) == 1
    else:  # the most even match-up (x = 0.5) is the likeliest
        assert int(np.argmax(pool.probabilities())) == 2


def test_pfsp_sampling_frequencies_and_quality_kept(tmp_path):
    pool = filled(tmp_path, n=3, sampler="pfsp", pfsp_p=1.0)
    pool.snapshots[0].games, pool.snapshots[0].score = 10, 9.0
    pool.snapshots[0].quality = pool.snapshots[1].quality = pool.snapshots[2].quality = 0.0
    rng = np.random.default_rng(5)
    ids = np.array([pool.sample_snapshot(rng).id for _ in range(20_000)])
    np.testing.assert_allclose(np.bincount(ids, minlength=3) / len(ids), pool.probabilities(),
                               atol=0.015)
    # the quality scores are still kept (they choose what max_snapshots drops)
    pool.record(2, 1.0)
    assert pool.snapshots[2].quality == pytest.approx(-0.01 / (3 * (1 / 3)))


# ---- storage ----------------------------------------------------------------------------------
def test_weights_round_trip_exactly(tmp_path):
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    w = {
        "f32": torch.randn(5, 2), "f64": torch.randn(3, dtype=torch.float64),
        "f16": torch.randn(2, 2).half(), "bf16": torch.randn(4).bfloat16(),
        "i64": torch.tensor([1, -2, 2**40]), "i32": torch.tensor([[3]], dtype=torch.int32),
        "u8": torch.tensor([0, 255], dtype=torch.uint8), "bool": torch.tensor([True, False]),
        "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 3),
        "transposed": base.t(), "tied.a": base, "tied.b": base,  # shared memory is fine
        "grad": torch.ones(2, requires_grad=True),
    }
    pool = OpponentPool(tmp_path / "pool")
    snap = pool.add(w, update=3, agent_steps=30)
    base.add_(100.0)  # the snapshot is a copy, frozen at add()
    again = OpponentPool.open(tmp_path / "pool").load_weights(snap.id)
    assert set(again) == set(w)
    for name, value in w.items():
        got = again[name]
        expect = value.detach() - 100.0 if name in ("transposed", "tied.a", "tied.b") else value
        assert got.dtype == value.dtype and got.shape == value.shape, name
        assert got.device.type == "cpu" and not got.requires_grad
        assert torch.equal(got, expect.detach()), name


def test_load_weights_cache_and_errors(tmp_path):
    pool = filled(tmp_path, n=3, cache=1)
    for sid in (0, 1, 0, 2):
        got = pool.load_weights(sid)
        assert torch.equal(got["policies.hero.actor.weight"],
                           weights(sid)["policies.hero.actor.weight"])
    got.clear()  # the caller's dict is its own
    assert len(pool.load_weights(2)) == 2
    with pytest.raises(PoolError, match="no snapshot 9"):
        pool.load_weights(9)
    (tmp_path / "pool" / "snapshot-000001.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(PoolError, match="snapshot-000001.safetensors"):
        pool.load_weights(1)


def test_files_and_no_temp_files_left(tmp_path):
    pool = filled(tmp_path, n=3)
    pool.record(0, 1.0)
    pool.save_index()
    assert sorted(os.listdir(tmp_path / "pool")) == [
        "pool.json", "snapshot-000000.safetensors", "snapshot-000001.safetensors",
        "snapshot-000002.safetensors"]
    assert [s.file for s in pool.snapshots] == [
        "snapshot-000000.safetensors", "snapshot-000001.safetensors",
        "snapshot-000002.safetensors"]
    index = json.loads((tmp_path / "pool" / "pool.json").read_text())
    assert index["settings"]["latest_prob"] == 0.8 and index["next_id"] == 3
    with pytest.raises(TypeError, match="weights"):
        pool.add({"x": np.zeros(3)}, update=1, agent_steps=1)
    with pytest.raises(ValueError, match="weights"):
        pool.add({}, update=1, agent_steps=1)
    assert len(os.listdir(tmp_path / "pool")) == 4 and len(pool) == 3


def test_reopen_gives_the_same_pool(tmp_path):
    pool = filled(tmp_path, eta=0.02)
    pool.record(2, 1.0)
    pool.record(0, 0.5)
    pool.record(0, 0.0)
    pool.save_index()  # results are written with the index (the learner does it per update)
    again = OpponentPool.open(tmp_path / "pool", eta=0.02)
    assert again.snapshots == pool.snapshots  # ids, updates, files, qualities, scores
    assert [s.quality for s in again.snapshots] == [s.quality for s in pool.snapshots]
    assert again.next_id == 3
    np.testing.assert_array_equal(again.probabilities(), pool.probabilities())
    # and it carries on where it was
    assert again.add(weights(7), update=40, agent_steps=4000).id == 3
    assert OpponentPool.open(tmp_path / "pool").snapshots == again.snapshots


def test_state_dict_round_trip(tmp_path):
    pool = filled(tmp_path, n=3)
    pool.record(1, 1.0)
    pool.record(2, 0.5)
    state = json.loads(json.dumps(pool.state_dict()))  # JSON-able, exactly
    saved = [Snapshot(**vars(s)) for s in pool.snapshots]
    pool.record(0, 1.0)
    pool.record(1, 1.0)
    pool.add(weights(5), update=50, agent_steps=5000)
    assert (tmp_path / "pool" / "snapshot-000003.safetensors").is_file()
    pool.load_state_dict(state)
    assert pool.snapshots == saved and pool.next_id == 3
    # the file of the snapshot added after that state is gone with it (no pool lists it)
    assert sorted(p.name for p in (tmp_path / "pool").glob("*.safetensors")) == \
        [f"snapshot-00000{i}.safetensors" for i in range(3)]
    assert OpponentPool.open(tmp_path / "pool").snapshots == saved  # index written too
    # the next snapshot takes the same id an uninterrupted run would have given it
    assert pool.add(weights(6), update=40, agent_steps=4000).id == 3
    assert torch.equal(pool.load_weights(3)["policies.hero.actor.weight"],
                       weights(6)["policies.hero.actor.weight"])


def test_state_dict_with_a_dropped_snapshot(tmp_path):
    pool = filled(tmp_path, n=3)
    state = pool.state_dict()
    (tmp_path / "pool" / "snapshot-000000.safetensors").unlink()  # dropped after that state
    with pytest.raises(PoolError, match="snapshot-000000.safetensors"):
        pool.load_state_dict(state, strict=True)
    with pytest.warns(RuntimeWarning, match="snapshot-000000.safetensors"):
        pool.load_state_dict(state)
    assert [s.id for s in pool.snapshots] == [1, 2]
    with pytest.raises(PoolError, match="not a valid pool state"):
        pool.load_state_dict({"snapshots": "nope"})


def test_errors_name_the_file(tmp_path):
    pool = filled(tmp_path)
    index = tmp_path / "pool" / "pool.json"
    good = index.read_text()
    for bad in (good[: len(good) // 2], "", "[1, 2]", '{"snapshots": [{"id": 0}]}',
                good.replace('"snapshot-000001.safetensors"', '"../outside.safetensors"'),
                good.replace('"id": 2', '"id": 1')):
        index.write_text(bad)
        with pytest.raises(PoolError, match="pool.json"):
            OpponentPool.open(tmp_path / "pool")
    index.write_text(good)
    (tmp_path / "pool" / pool.snapshots[1].file).unlink()
    with pytest.warns(RuntimeWarning, match="snapshot-000001.safetensors"):  # named, left out
        OpponentPool.open(tmp_path / "pool")
    (tmp_path / "file").write_text("x")
    with pytest.raises(PoolError, match="not a directory"):
        OpponentPool.open(tmp_path / "file")


def test_max_snapshots_drops_the_oldest_lowest_quality(tmp_path):
    pool = filled(tmp_path, n=3, max_snapshots=3)
    pool.snapshots[1].quality = -5.0
    pool.add(weights(3), update=40, agent_steps=4000)
    assert [s.id for s in pool.snapshots] == [0, 2, 3]
    assert not (tmp_path / "pool" / "snapshot-000001.safetensors").exists()
    assert [s.id for s in OpponentPool.open(tmp_path / "pool").snapshots] == [0, 2, 3]
    # equal qualities: the oldest goes
    pool.add(weights(4), update=50, agent_steps=5000)
    assert [s.id for s in pool.snapshots] == [2, 3, 4]
    assert sorted(os.listdir(tmp_path / "pool")) == [
        "pool.json", "snapshot-000002.safetensors", "snapshot-000003.safetensors",
        "snapshot-000004.safetensors"]
    # games still playing a dropped snapshot can finish: weights kept, results ignored
    assert torch.equal(pool.load_weights(1)["policies.hero.actor.weight"],
                       weights(1)["policies.hero.actor.weight"])
    pool.record(1, 1.0)
    assert 1 not in pool.win_rates()
    with pytest.raises(PoolError, match="no snapshot 17"):
        pool.record(17, 1.0)


@pytest.mark.parametrize("kwargs, field", [
    ({"latest_prob": 1.5}, "latest_prob"), ({"sampler": "elo"}, "sampler"),
    ({"eta": 0.0}, "eta"), ({"pfsp_weighting": "easy"}, "pfsp_weighting"),
    ({"pfsp_p": -1.0}, "pfsp_p"), ({"max_snapshots": 0}, "max_snapshots"),
])
def test_bad_settings_name_the_setting(tmp_path, kwargs, field):
    with pytest.raises(ValueError, match=field):
        OpponentPool(tmp_path / "pool", **kwargs)


def test_record_checks_the_score(tmp_path):
    pool = filled(tmp_path, n=1)
    with pytest.raises(ValueError, match="latest_score"):
        pool.record(0, 2.0)
    assert pool.snapshots[0].games == 0


def test_a_lost_snapshot_file_is_left_out_with_a_warning(tmp_path):
    pool = filled(tmp_path, 3)
    (pool.directory / pool.snapshots[1].file).unlink()
    with pytest.warns(RuntimeWarning, match=r"snapshot-000001\.safetensors; left out"):
        again = OpponentPool.open(tmp_path / "pool")
    assert [s.id for s in again.snapshots] == [0, 2]
    again.save_index()  # the index on disk lists what is there again
    assert [s["id"] for s in json.loads(again.index_path.read_text())["snapshots"]] == [0, 2]
    assert again.add(weights(9), update=40, agent_steps=4000).id == 3  # ids are not reused


def test_a_damaged_index_is_an_error_unless_a_checkpoint_can_rebuild_it(tmp_path):
    pool = filled(tmp_path, 2)
    state = pool.state_dict()
    pool.index_path.write_text("{not json")
    with pytest.raises(PoolError, match=r"pool\.json: not a valid pool index"):
        OpponentPool.open(tmp_path / "pool")
    with pytest.warns(RuntimeWarning, match="starts from the state a resumed run's checkpoint"):
        again = OpponentPool.open(tmp_path / "pool", recover=True)
    assert len(again) == 0
    again.load_state_dict(state)  # what a resume does with the checkpoint's pool state
    assert [s.id for s in again.snapshots] == [0, 1]
    assert json.loads(again.index_path.read_text())["next_id"] == 2
