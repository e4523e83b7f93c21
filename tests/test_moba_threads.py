"""The multi-threaded MOBA core gives exactly the one-thread results, per seed."""

import os

import numba
import numpy as np
import pytest

from games.moba import MobaCore
from games.moba.layout import NUM_MOVES
from games.moba.vec import MobaVec
from games.vector import make_vec

B = 7  # not divisible by 2 or 3 threads: chunks of unequal size
_OUTPUTS = ("obs", "action_mask", "rewards", "dones", "winners", "lengths", "events",
            "vis", "ent_idx")


@pytest.fixture(autouse=True, scope="module")
def _sleeping_worker_threads():
    """The results do not depend on numba's threading layer. workqueue's threads sleep
    between calls and keep this file fast on a busy machine, where OpenMP's spinning ones
    stall every call (72 s against 5 s at load 7). Only takes effect before numba's pool
    starts, and not when the user chose a layer."""
    before = numba.config.THREADING_LAYER
    if before == "default" and not os.environ.get("NUMBA_THREADING_LAYER"):
        numba.config.THREADING_LAYER = "workqueue"
    yield
    numba.config.THREADING_LAYER = before


def _assert_same(a: MobaCore, b: MobaCore, where: str) -> None:
    sa, sb = a.get_state(), b.get_state()
    for name in sa:
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=f"{where}: state {name}")
    for name in _OUTPUTS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name),
                                      err_msg=f"{where}: {name}")


def _pair(threads: int, **kwargs) -> tuple[MobaCore, MobaCore]:
    return (MobaCore(num_games=B, threads=1, **kwargs),
            MobaCore(num_games=B, threads=threads, **kwargs))


def _actions(core: MobaCore, rng: np.ndarray) -> np.ndarray:
    """Random legal actions (`sample_actions`); every other hero fights whatever it may
    attack and otherwise walks towards the enemy base, so that heroes meet and die."""
    actions = core.sample_actions(rng)
    mask = core.action_mask[:, ::2]
    fight = mask[:, :, 1 + NUM_MOVES:1 + NUM_MOVES + 2 * core.config.num_visible]
    walk = np.where(mask[:, :, 2] == 1, 2, actions[:, ::2])
    actions[:, ::2] = np.where(fight.any(-1), 1 + NUM_MOVES + fight.argmax(-1), walk)
    return actions


# every pair of team size and autoreset; 2 and 3 threads for B=7 (uneven chunks)
@pytest.mark.parametrize("team_size,autoreset,threads", [
    (1, True, 2), (1, False, 3), (3, True, 3), (3, False, 2), (5, True, 2), (5, False, 3)])
def test_threads_equal_one_thread_every_step(team_size, autoreset, threads):
    # a small map and short games: heroes fight and die, games end (and restart)
    one, many = _pair(threads, autoreset=autoreset, team_size=team_size, lanes=3,
                      map_size=32.0, max_ticks=100)
    assert many.threads == threads and one.threads == 1
    before = numba.get_num_threads()
    dones = damage = 0.0
    for seed in (team_size * 100 + threads, 12345 + int(autoreset)):
        ra, rb = one.reset(seed=seed), many.reset(seed=seed)
        _assert_same(one, many, f"reset seed {seed}")
        rng_a, rng_b = one.new_rng_state(seed + 1), many.new_rng_state(seed + 1)
        for t in range(210):
            act_a, act_b = _actions(one, rng_a), _actions(many, rng_b)
            np.testing.assert_array_equal(act_a, act_b, err_msg=f"seed {seed} tick {t}")
            np.testing.assert_array_equal(rng_a, rng_b)
            if t % 37 == 5:  # an illegal action now and then
                act_a[0, 0] = act_b[0, 0] = 10_000
            ra, rb = one.step(act_a), many.step(act_b)
            _assert_same(one, many, f"seed {seed} tick {t}")
            for field in ("obs", "action_mask", "rewards", "dones", "winners", "lengths",
                          "events"):
                np.testing.assert_array_equal(getattr(ra, field), getattr(rb, field))
            dones += ra.dones.sum()
            damage += ra.events[..., list(one.event_names).index("damage_dealt")].sum()
    assert numba.get_num_threads() == before  # the caller's setting is restored
    assert dones > 0 and damage > 0  # games ended, heroes fought


@pytest.mark.parametrize("threads", [2, 3])
def test_partial_reset_and_observe(threads):
    one, many = _pair(threads, team_size=3, lanes=3, max_ticks=200)
    for core in (one, many):
        core.reset(seed=3)
        rng = core.new_rng_state(4)
        for _ in range(40):
            core.step(core.sample_actions(rng))
    _assert_same(one, many, "before")
    for games, seed in (([5, 1, 2], 9), ([4, 4, 0], 11), ([6], None), ([], 1)):
        seeds = seed if seed is not None else np.array([77], np.uint64)
        one.reset(seed=seeds, games=np.array(games, np.int64))
        many.reset(seed=seeds, games=np.array(games, np.int64))
        _assert_same(one, many, f"reset {games}")
    state = one.get_state()
    state["unit_f"][0, :, :3] += 1.5  # edit positions, then observe
    one.set_state(state)
    many.set_state(state)
    one.observe()
    many.observe()
    _assert_same(one, many, "observe")


def test_more_threads_than_numba_allows_is_clamped_and_correct():
    limit = numba.config.NUMBA_NUM_THREADS
    one, many = _pair(limit + 3, team_size=3, lanes=3, max_ticks=60)
    assert many.threads == limit + 3 and many.numba_threads == limit
    assert many.scratch_f.shape[0] == min(limit + 3, B)
    one.reset(seed=1)
    many.reset(seed=1)
    rng = one.new_rng_state(2)
    for _ in range(80):
        actions = one.sample_actions(rng)
        one.step(actions)
        many.step(actions)
        _assert_same(one, many, "clamped")
    # a batch smaller than the thread count: one chunk per game
    small = MobaCore(num_games=2, threads=4, team_size=1)
    assert small.scratch_f.shape[0] == 2
    small.reset(seed=0)


@pytest.mark.parametrize("threads", [0, -1, 1.5, 2.0, True, "2", None])
def test_bad_threads_rejected(threads):
    with pytest.raises(ValueError, match="threads"):
        MobaCore(num_games=2, threads=threads)


def test_vec_passes_threads_through():
    vecs = [MobaVec(B, team_size=3, lanes=3, max_ticks=60),
            MobaVec(B, threads=2, team_size=3, lanes=3, max_ticks=60),
            make_vec("moba", B, threads=3, team_size=3, lanes=3, max_ticks=60)]
    assert [v.core.threads for v in vecs] == [1, 2, 3]
    steps = [v.reset(seed=5) for v in vecs]
    rng = vecs[0].core.new_rng_state(6)
    for _ in range(90):
        actions = vecs[0].core.sample_actions(rng)
        steps = [v.step(actions) for v in vecs]
        for s in steps[1:]:
            np.testing.assert_array_equal(s.obs["hero"], steps[0].obs["hero"])
            np.testing.assert_array_equal(s.rewards, steps[0].rewards)
            np.testing.assert_array_equal(s.dones, steps[0].dones)
            np.testing.assert_array_equal(s.winners, steps[0].winners)
        for v in vecs[1:]:
            _assert_same(vecs[0].core, v.core, "vec")

