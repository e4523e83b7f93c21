"""Games stepped in worker processes over shared memory (games/procvec.py): exactly the
in-process results per seed, errors that name the game, and no processes left behind."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import needs_magent2, needs_mpe2
from test_registry import clean_registry  # noqa: F401 - a fixture, used by name
from test_vector import (
    BATTLE,
    BATTLE_TEAMS,
    TAG,
    TAG_TEAMS,
    chase,
    copy_step,
    random_legal,
)

import games
from games.memory import MemoryGame
from games.procvec import ProcVec, WorkerError
from games.vector import AECVec, ParallelVec, make_vec

CONNECT_FOUR = "pettingzoo:pettingzoo.classic.connect_four_v3:env"
B, WORKERS = 5, 2  # an uneven split: games 0..1 and 2..4



def assert_same(a: dict, b: dict, where: str) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (where, k)
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{where}: {k}")


def lockstep(ref, vec, seed: int, steps: int, policy_seed: int = 0,
             halves: bool = False, policy=random_legal) -> list[dict]:
    """Step both vecs with the same random legal actions (`policy(vec, step, rng)`); every
    field equal at every step. `halves`: step vec's two halves with step_async/wait (the
    overlapped collector's way) every other step."""
    rng = np.random.default_rng(policy_seed)
    st_ref, st = ref.reset(seed=seed), vec.reset(seed=seed)
    trace = [copy_step(st)]
    assert_same(copy_step(st_ref), trace[-1], "reset")
    for t in range(steps):
        actions = policy(ref, st_ref, rng)
        st_ref = ref.step(actions)
        if halves and t % 2:
            h0, h1 = vec.game_groups(2)
            vec.step_async(actions[h0], h0)  # its own rows only ...
            vec.step_async(actions, h1)      # ... or the whole batch's
            vec.wait(h1)
            vec.wait(h0)
            st = vec.view(slice(None))
        else:
            st = vec.step(actions)
        trace.append(copy_step(st))
        assert_same(copy_step(st_ref), trace[-1], f"step {t}")
    return trace


def same_metadata(ref, vec) -> None:
    assert isinstance(vec, ProcVec) and vec.workers == WORKERS
    assert [(s.start, s.stop) for s in vec.game_slices] == [(0, 2), (2, 5)]
    for k in ("num_games", "num_slots", "slot_agents", "team_names", "roles", "event_names"):
        assert getattr(vec, k) == getattr(ref, k), k
    np.testing.assert_array_equal(vec.slot_team, ref.slot_team)
    np.testing.assert_array_equal(vec.slot_role, ref.slot_role)


def no_children(vec: ProcVec, procs: list) -> None:
    assert not any(p.is_alive() for p in procs)
    assert not (set(mp.active_children()) & set(procs))


@needs_mpe2
def test_parallel_game_with_truncation_equals_in_process():
    kw = dict(teams=TAG_TEAMS, max_cycles=6, continuous_actions=False)
    ref = make_vec(TAG, B, **kw)
    with make_vec(TAG, B, threads=WORKERS, **kw) as vec:
        procs = list(vec._procs)
        same_metadata(ref, vec)
        trace = lockstep(ref, vec, seed=11, steps=20, halves=True)
        assert sum(int(x["dones"].sum()) for x in trace) >= 3 * B  # three episode ends each
        assert sum(int(x["truncated"].sum()) for x in trace) > 0
        # the same seed replays the same run, another seed gives another
        again = lockstep(ref, vec, seed=11, steps=20)
        for t, (x, y) in enumerate(zip(trace, again)):
            assert_same(x, y, f"replay step {t}")
        other = copy_step(vec.reset(seed=12))
        assert not np.array_equal(other["obs/predator"], trace[0]["obs/predator"])
    no_children(vec, procs)


def test_turn_based_game_equals_in_process():
    ref = make_vec(CONNECT_FOUR, B)
    assert isinstance(ref, AECVec)
    vec = make_vec(CONNECT_FOUR, B, threads=WORKERS)
    procs = list(vec._procs)
    try:
        same_metadata(ref, vec)
        assert vec.kind == "AECVec"
        trace = lockstep(ref, vec, seed=5, steps=60, policy_seed=1)
        assert sum(int(x["dones"].sum()) for x in trace) >= 2 * B
        assert {int(w) for x in trace for w in x["winners"][x["dones"]]} >= {0, 1}
    finally:
        vec.close()
        vec.close()  # idempotent
    no_children(vec, procs)
    with pytest.raises(RuntimeError, match="closed"):
        vec.step(np.zeros((B, vec.num_slots), np.int64))


def chase_or_random(vec, st, rng) -> np.ndarray:
    """magent2 battle: half the soldiers chase the enemy (so some die), half act at random."""
    actions = random_legal(vec, st, rng)
    obs = st.obs["red+blue"].reshape(vec.num_games, vec.num_slots, 13, 13, 5)
    forward = np.where(vec.slot_team == 0, 1, -1)
    for b, s in zip(*np.nonzero(rng.random(actions.shape) < 0.5)):
        actions[b, s] = chase(obs[b, s], forward[s])
    return actions


@needs_magent2
def test_game_with_dying_agents_equals_in_process():
    kw = dict(teams=BATTLE_TEAMS, map_size=12, max_cycles=30)
    ref = make_vec(BATTLE, B, **kw)
    assert isinstance(ref, ParallelVec)
    with make_vec(BATTLE, B, threads=WORKERS, **kw) as vec:
        same_metadata(ref, vec)
        trace = lockstep(ref, vec, seed=2, steps=65, policy_seed=3, halves=True,
                         policy=chase_or_random)
    assert sum(int(x["dones"].sum()) for x in trace) >= 2 * B
    # agents died: some slot left its game before the episode's end
    left = sum(int((a["next_active"] & ~b["next_active"] & ~b["dones"][:, None]).sum())
               for a, b in zip(trace, trace[1:]))
    assert left > 0


def test_game_offset_replays_the_global_games_in_process():
    """The seeding ProcVec relies on, without processes: games 2..4 of a batch of 5."""
    kw = dict(length=3)
    whole, tail = make_vec("memory", 5, **kw), make_vec("memory", 3, game_offset=2, **kw)
    a, b = copy_step(whole.reset(seed=7)), copy_step(tail.reset(seed=7))
    for t in range(7):  # two automatic resets: hashed seeds follow the global index too
        assert_same({k: v[2:] for k, v in a.items()}, b, f"step {t}")
        acts = np.ones((5, whole.num_slots), np.int64)
        a, b = copy_step(whole.step(acts)), copy_step(tail.step(acts[2:]))
    with pytest.raises(ValueError, match="game_offset"):
        make_vec("memory", 2, game_offset=-1)
    with pytest.raises(ValueError, match=r"buffer rewards must be an array of shape \(3, 2\)"):
        st = tail.reset(seed=0)
        tail._bind_buffers(dataclasses.replace(st, rewards=np.zeros((2, 2), np.float32)))


# -- errors -------------------------------------------------------------------------------
class BoomGame(MemoryGame):
    """The memory game, except that the episode reset with seed `fuse` raises at its
    second step (module level: workers import it by reference)."""

    def __init__(self, fuse: int = -1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fuse, self.seed = fuse, None

    def reset(self, seed=None, options=None):
        self.seed = seed
        return super().reset(seed=seed, options=options)

    def step(self, actions):
        if self.seed == self.fuse and self._t == 1:
            raise KeyError("boom: the fuse burnt down")
        return super().step(actions)


class StickyGame(MemoryGame):
    """The memory game, except that a reset also depends on how many steps the instance has
    played in its life (as knights_archers_zombies' does): a step played before the first
    reset (the event probe's) changes the game (module level: workers import it)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lifetime = 0

    def reset(self, seed=None, options=None):
        return super().reset(seed=None if seed is None else seed + 1000 * self.lifetime,
                             options=options)

    def step(self, actions):
        self.lifetime += 1
        return super().step(actions)


def test_a_game_whose_reset_remembers_the_probe_equals_in_process(clean_registry):  # noqa: F811
    """The event names are probed by one step of game 0 only, as in one process; the other
    workers take them from worker 0 and count the events in their own games."""
    games.register("procvec_sticky", StickyGame, "reset remembers earlier steps")
    kw = {"length": 2, "num_cues": 4}
    for workers in (2, 3):
        ref = make_vec("procvec_sticky", B, **kw)  # fresh: its games remember their steps
        assert ref.event_names == ("correct",)  # probed
        with make_vec("procvec_sticky", B, threads=workers, **kw) as vec:
            assert vec.event_names == ref.event_names and vec.workers == workers
            trace = lockstep(ref, vec, seed=5, steps=9, policy_seed=1)
            assert trace[-1]["events"].shape == (B, vec.num_slots, 1)
            assert sum(float(x["events"][2:].sum()) for x in trace) > 0  # counted past worker 0
    # and the probe does change such a game: an unprobed batch of it plays otherwise
    probed = make_vec("procvec_sticky", B, **kw)
    unprobed = make_vec("procvec_sticky", B, event_names=("correct",), **kw)
    a, b = copy_step(probed.reset(seed=5)), copy_step(unprobed.reset(seed=5))
    assert not np.array_equal(a["obs/red+blue"][0], b["obs/red+blue"][0])
    np.testing.assert_array_equal(a["obs/red+blue"][1:], b["obs/red+blue"][1:])


def test_split_halves_are_the_same_games_whatever_the_workers():
    for workers, slices in ((2, [(0, 2), (2, 5)]), (3, [(0, 2), (2, 3), (3, 5)]),
                            (4, [(0, 1), (1, 2), (2, 3), (3, 5)]),
                            (5, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)])):
        with make_vec("memory", B, threads=workers, split=2, length=2) as vec:
            assert [(s.start, s.stop) for s in vec.game_slices] == slices, workers
            assert vec.game_groups(2) == [slice(0, 2), slice(2, 5)]
    with make_vec("memory", B, threads=3, length=2) as vec:  # no split: sizes 1, 2, 2
        assert [(s.start, s.stop) for s in vec.game_slices] == [(0, 1), (1, 3), (3, 5)]
        assert vec.game_groups(2) == [slice(0, 1), slice(1, 5)]
    with pytest.raises(ValueError, match=r"split must be an int in 1..workers=2, got 3"):
        make_vec("memory", B, threads=2, split=3)
    with pytest.raises(ValueError, match="split=2 needs threads >= 2"):
        make_vec("memory", B, split=2)


def test_worker_error_names_the_game_and_shuts_down(clean_registry):  # noqa: F811
    games.register("procvec_boom", BoomGame, "raises in one game")
    vec = make_vec("procvec_boom", B, threads=WORKERS, fuse=103, length=8)  # game 3
    procs = list(vec._procs)
    st = vec.reset(seed=100)
    zeros = np.zeros((B, vec.num_slots), np.int64)
    bad = zeros.copy()
    bad[4, 0] = 9
    with pytest.raises(ValueError, match=r"action 9 of game 4 slot 0 \('red_0'\)"):
        vec.step(bad)  # checked in the parent (same message as in-process), no worker harmed
    vec.step(zeros)
    vec.step_async(zeros[2:], slice(2, 5))
    with pytest.raises(RuntimeError, match="still stepping"):
        vec.step_async(zeros, slice(2, 5))
    with pytest.raises(ValueError, match="whole workers"):
        vec.wait(slice(1, 5))
    with pytest.raises(WorkerError) as info:
        vec.wait(slice(2, 5))
    err = info.value
    assert (err.game, err.worker, err.exc_type) == (3, 1, "KeyError")
    msg = str(err)
    assert "game 3 (worker 1, games 2..4) raised KeyError" in msg and "fuse burnt" in msg
    assert "Traceback" in msg and "in step" in msg  # the worker's own traceback text
    assert st is not None
    no_children(vec, procs)
    with pytest.raises(RuntimeError, match="closed"):
        vec.reset(seed=0)


def test_bad_options_and_routing(monkeypatch):
    with pytest.raises(WorkerError, match="worker 0 .*length"):
        make_vec("memory", 3, threads=2, length=0)  # fails in every worker: one error
    assert not mp.active_children()
    with pytest.raises(ValueError, match="threads"):
        make_vec("memory", 3, threads=0)
    assert type(make_vec("memory", 3, threads=1)) is ParallelVec
    seen = {}

    class FakeMoba:
        def __init__(self, num_games, **kwargs):
            seen.update(kwargs, num_games=num_games)

    monkeypatch.setattr("games.moba.vec.MobaVec", FakeMoba)
    make_vec("moba", 4, threads=3, team_size=1)  # the MOBA's threads: MobaCore's own
    assert seen == {"threads": 3, "team_size": 1, "num_games": 4}


def test_workers_ignore_sigint_and_exit_with_their_parent(tmp_path):
    with make_vec("memory", 3, threads=3, length=3) as vec:
        os.kill(vec._procs[0].pid, signal.SIGINT)
        vec.reset(seed=0)
        dones = [vec.step(np.ones((3, vec.num_slots), np.int64)).dones.copy()
                 for _ in range(4)]
        assert [d.all() for d in dones] == [False, False, True, False]
    # a parent killed outright (no close, no atexit): its workers see the pipe close
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys
        from games.vector import make_vec
        if __name__ == "__main__":
            vec = make_vec("memory", 2, threads=2)
            vec.reset(seed=0)
            print(*[p.pid for p in vec._procs], flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=60)
    pids = [int(x) for x in out.stdout.split()]
    assert len(pids) == 2, out.stderr

    def running(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 15
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(running, pids))


def test_a_game_error_in_an_overlapped_collection_is_the_error_seen(clean_registry):  # noqa: F811
    """While one half of the games steps and the other is inferred, a game that raises
    comes back as its WorkerError (not as a later complaint about the closed batch), and
    the collector's torch threads are as they were."""
    import torch

    from arena.config import CONFIG_DIR, load_config
    from arena.learn.networks import build_policy, policy_groups
    from arena.learn.rollout import Collector

    games.register("procvec_boom", BoomGame, "raises in one game")
    cfg = load_config(CONFIG_DIR / "memory.yaml", ["model.hidden=8", "model.lstm_hidden=8"])
    vec = make_vec("procvec_boom", 4, threads=2, fuse=3, length=8)  # game 3, second step
    groups = policy_groups(vec, False)
    policies = {g.key: build_policy(g.role, cfg) for g in groups}
    collector = Collector(vec, policies, groups, chunk_len=4, num_chunks=1, seed=0,
                          overlap=True)
    threads = torch.get_num_threads()
    with pytest.raises(WorkerError, match="game 3 .* raised KeyError"):
        collector.collect()
    assert torch.get_num_threads() == threads
    no_children(vec, list(vec._procs))


def test_a_killed_worker_is_named_whether_it_dies_before_or_during_a_step():
    for before in (True, False):
        vec = make_vec("memory", B, threads=WORKERS, length=3)
        procs = list(vec._procs)
        vec.reset(seed=0)
        acts = np.zeros((B, vec.num_slots), np.int64)
        if before:  # gone before the step is sent: the send itself fails
            os.kill(procs[1].pid, signal.SIGKILL)
            procs[1].join(10)
            with pytest.raises(WorkerError, match=r"worker 1 \(games 2..4\) died before it "
                                                  r"could step \(exit code -9\)"):
                vec.step(acts)
        else:  # killed while its games step: its answer never comes (or, had it answered
            # first, the next step's command cannot be sent)
            vec.step_async(acts)
            os.kill(procs[1].pid, signal.SIGKILL)
            with pytest.raises(WorkerError, match=r"worker 1 \(games 2..4\) died"):
                vec.wait()
                procs[1].join(10)
                vec.step(acts)
        no_children(vec, procs)


def test_a_script_without_the_main_guard_is_told_what_it_lacks(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text("from games.vector import make_vec\n"
                      "vec = make_vec('memory', 4, threads=2)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode != 0
    assert "died while trying to build its games" in out.stderr
    assert 'needs `if __name__ == "__main__":`' in out.stderr
