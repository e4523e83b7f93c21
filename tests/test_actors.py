"""Actors over pyzmq: end-to-end training with actor processes, an actor killed mid-run, the
learner killed mid-run, malformed rollouts, CURVE authentication."""

import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lightning.pytorch.callbacks import Callback
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from arena.checkpoints import read_checkpoint
from arena.config import load_config, to_dict
from arena.learn.callbacks import ThreadChoice
from arena.learn.learner import PPOLearner, learner_threads
from arena.learn.rollout import Collector
from arena.rundir import TEMPORARY, stale_temporaries
from arena.scale.actors import ActorService, decode_rollout, rollout_arrays, run_actor
from arena.scale.league_link import ActorError, ControlClient
from arena.scale.transport import ChunkSender, CurveKeys, create_keys
from arena.scale.wire import WireError
from arena.train import train
from games.vector import make_vec
from league.pool import OpponentPool

SMALL = ["game.options.team_size=1", "game.options.max_ticks=16", "game.num_envs=4",
         "ppo.chunk_len=8", "ppo.chunks_per_update=2", "eval.every=0", "watch.every=0",
         "model.hidden=32", "model.lstm_hidden=32", "trainer.num_threads=1"]


def scalars(run: Path, tag: str) -> list[float]:
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    return [e.value for e in acc.Scalars(tag)]


def test_two_actor_processes_train_end_to_end_with_the_league(tmp_path):
    cfg = load_config(None, [*SMALL, "actors.num_workers=2", "trainer.max_updates=4",
                             "trainer.checkpoint_every=2", "league.snapshot_every=1",
                             "league.latest_prob=0.0", f"run.root={tmp_path}", "run.name=a",
                             # every rollout made with the newest weights and league: games
                             # against snapshots are played, and reported, before the end
                             # however slow the machine (with staleness allowed, a loaded
                             # machine can train on rollouts all made before snapshot 1)
                             "actors.max_staleness=0"])
    run = train(cfg)
    state = read_checkpoint(run)["arena"]
    assert state["updates"] == 4
    # 2 rollouts per update, each 4 games x 2 heroes x 16 steps
    assert state["agent_steps"] == 4 * 2 * 4 * 2 * 16
    assert scalars(run, "actors/rollouts_per_update") == [2.0] * 4
    assert max(scalars(run, "actors/staleness_max")) <= cfg.actors.max_staleness
    pool = OpponentPool.open(run / "league" / "hero")
    assert [s.update for s in pool.snapshots] == [1, 2, 3, 4]
    # actors played the snapshots (latest_prob 0) and their results reached rank 0's pool
    assert sum(s.games for s in pool.snapshots) > 0


class KillActor(Callback):
    def __init__(self) -> None:
        self.killed: int | None = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if module.updates == 2 and self.killed is None:
            self.killed = module.service.supervisor.processes[0].pid
            os.kill(self.killed, signal.SIGKILL)


def test_a_killed_actor_is_restarted_and_training_goes_on(tmp_path):
    cfg = load_config(None, [*SMALL, "actors.num_workers=2", "trainer.max_updates=6",
                             "trainer.checkpoint_every=3", "league.enabled=false",
                             f"run.root={tmp_path}", "run.name=k"])
    killer = KillActor()
    run = train(cfg, callbacks=[killer])
    assert killer.killed is not None
    assert read_checkpoint(run)["arena"]["updates"] == 6
    assert scalars(run, "actors/restarts")[-1] >= 1
    assert scalars(run, "actors/lost_rollouts")[-1] >= 1  # the killed actor's rollout in flight


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


class Pause(Callback):
    """A pause of the learner between updates, as an evaluation or a match GIF makes one."""

    def __init__(self, at: int, seconds: float) -> None:
        self.at, self.seconds = at, seconds

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if module.updates == self.at:
            time.sleep(self.seconds)


def test_a_pause_of_the_learner_does_not_put_actors_one_rollout_ahead(tmp_path):
    """In lock-step (`actors.ahead=0`) every update trains on rollouts of its own weights,
    also after the learner paused for longer than a rollout takes: its rollout is waiting
    then, and re-sending the weights for it would grant the idle actor one more rollout of
    the old version, one update stale for the rest of the run."""
    cfg = load_config(None, [*SMALL, "actors.num_workers=1", "trainer.max_updates=6",
                             "league.enabled=false", f"run.root={tmp_path}", "run.name=p"])
    run = train(cfg, callbacks=[Pause(at=2, seconds=3.0)])
    assert scalars(run, "actors/staleness_max") == [0.0] * 6
    assert scalars(run, "actors/dropped_stale") == [0.0] * 6


def test_learner_threads_leave_the_cores_of_actors_that_collect_ahead():
    def threads(available: int, *overrides: str) -> int:
        return learner_threads(load_config(None, list(overrides)), available)

    assert threads(8) == 8  # in-process collection: every core
    assert threads(8, "actors.num_workers=2") == 8  # in step: actors wait while it updates
    assert threads(8, "actors.num_workers=2", "actors.ahead=1") == 6
    assert threads(8, "actors.num_workers=2", "actors.ahead=1", "actors.threads=3") == 2
    assert threads(2, "actors.num_workers=4", "actors.ahead=1") == 1  # never below one
    assert threads(8, "actors.num_workers=2", "actors.ahead=1", "trainer.num_threads=5") == 5


class Threads(Callback):
    def __init__(self) -> None:
        self.seen: set[int] = set()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.seen.add(torch.get_num_threads())


def test_an_actor_collecting_ahead_gets_a_core_and_the_threads_are_given_back(tmp_path):
    small = [o for o in SMALL if not o.startswith("trainer.num_threads")]
    cfg = load_config(None, [*small, "actors.num_workers=1", "actors.ahead=1",
                             "trainer.max_updates=2", "league.enabled=false",
                             f"run.root={tmp_path}", "run.name=t"])
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        seen = Threads()
        train(cfg, callbacks=[seen])
        assert seen.seen == {2}
        assert torch.get_num_threads() == 3  # the process's own setting again
        # long enough for ThreadChoice to try both counts
        seen = Threads()
        trial = ThreadChoice().trial_updates
        train(load_config(None, [*small, "actors.num_workers=1", "actors.ahead=1",
                                 f"trainer.max_updates={trial + 1}", "league.enabled=false",
                                 f"run.root={tmp_path}", "run.name=u"]), callbacks=[seen])
        assert seen.seen == {2, 3}
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_thread_choice_keeps_the_thread_count_that_trained_faster(monkeypatch):
    """Blocks of updates on each candidate; a block's first update (whose rollout was
    collected beside the block before) and the learner's pauses do not count."""
    from types import SimpleNamespace

    clock = {"now": 0.0}
    monkeypatch.setattr(time, "perf_counter", lambda: clock["now"])
    threads = {"now": 1}
    monkeypatch.setattr(torch, "set_num_threads", lambda n: threads.update(now=n))
    trainer = SimpleNamespace(is_global_zero=False)

    def run(seconds_per_update: dict[int, float], transition: float = 0.0) -> ThreadChoice:
        module = SimpleNamespace(thread_candidates=(1, 2), agent_steps=0, paused_seconds=0.0)
        choice = ThreadChoice(warmup=2, block=3, rounds=2)
        threads["now"], last = 1, 1
        for update in range(1, choice.trial_updates + 4):
            took = seconds_per_update[threads["now"]]
            if threads["now"] != last:  # the first update after a switch: anything
                took += transition
            last = threads["now"]
            if update == 10:  # an evaluation paused this update for a long time
                module.paused_seconds += 50.0
                took += 50.0
            clock["now"] += took
            module.agent_steps += 1000
            choice.on_train_batch_end(trainer, module)
        return choice

    faster_on_two = run({1: 2.0, 2: 1.0}, transition=30.0)
    assert faster_on_two.chosen == 2 and threads["now"] == 2
    assert faster_on_two.seconds == {1: [0.002] * 4, 2: [0.001] * 4}
    faster_on_one = run({1: 1.0, 2: 1.5}, transition=30.0)
    assert faster_on_one.chosen == 1 and threads["now"] == 1
    # a learner without candidates (num_threads set, no actors ahead) is left alone
    choice = ThreadChoice()
    threads["now"] = 7
    choice.on_train_batch_end(trainer, SimpleNamespace(thread_candidates=None))
    assert threads["now"] == 7 and choice.chosen is None


def test_learner_killed_mid_run_resumes_with_league_and_its_actors_exit(tmp_path):
    cmd = [sys.executable, "-m", "arena", "train", *SMALL, "actors.num_workers=1",
           "league.snapshot_every=2", "trainer.checkpoint_every=2", "trainer.max_updates=1000",
           f"run.root={tmp_path}", "run.name=r"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "r" / "checkpoints"
    deadline = time.time() + 180
    while time.time() < deadline and not list(ckpts.glob("update-000004.ckpt")):
        time.sleep(0.2)
    actors = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert actors, "the learner had no actor process"
    deadline = time.time() + 30  # orphaned actors notice their learner is gone and exit
    while time.time() < deadline and any(Path(f"/proc/{a}").exists() and
                                         "Z" not in Path(f"/proc/{a}/stat").read_text().split()[2]
                                         for a in actors):
        time.sleep(0.2)
    assert not any(Path(f"/proc/{a}").exists() and
                   "Z" not in Path(f"/proc/{a}/stat").read_text().split()[2] for a in actors)
    state = read_checkpoint(tmp_path / "r")["arena"]
    done = state["updates"]
    assert done >= 4
    # no half-written checkpoint: a kill during a save leaves only the save's temporary
    # file beside it (which the resume removes)
    assert all(p.suffix == ".ckpt" or TEMPORARY.match(p.name) for p in ckpts.iterdir())
    saved = [s["update"] for s in state["league"]["hero"]["snapshots"]]
    resume = subprocess.run([sys.executable, "-m", "arena", "train", "--resume",
                             str(tmp_path / "r"), f"trainer.max_updates={done + 2}"],
                            capture_output=True, text=True, timeout=300)
    assert resume.returncode == 0, resume.stderr[-2000:]
    after = read_checkpoint(tmp_path / "r")["arena"]
    assert after["updates"] == done + 2
    assert not stale_temporaries(tmp_path / "r")
    assert after["agent_steps"] > state["agent_steps"]
    kept = [s["update"] for s in after["league"]["hero"]["snapshots"]]
    assert kept[:len(saved)] == saved and kept[-1] == done + 2  # the league went on


# ---- messages ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def listening(tmp_path_factory):
    """A learner serving actors (listen, no local ones), plus a valid rollout for it."""
    root = tmp_path_factory.mktemp("listen")
    cfg = load_config(None, [*SMALL, "actors.listen=true", "league.enabled=false",
                             "actors.timeout_s=20", f"run.root={root}"])
    learner = PPOLearner(to_dict(cfg))
    learner.setup("fit")
    vec = make_vec("moba", cfg.game.num_envs, **cfg.game.options)
    collector = Collector(vec, {g.key: learner.policy_for(g.key) for g in learner.groups},
                          learner.groups, cfg.ppo.chunk_len, cfg.ppo.chunks_per_update, seed=3)
    good = collector.collect()
    yield learner, good
    collector.close()
    learner.teardown("fit")


def test_malformed_and_stale_rollouts_are_dropped_and_counted(listening):
    learner, good = listening
    service, coll = learner.service, learner.collector
    host = service.endpoint.rsplit(":", 1)[0]
    port = service.rollouts.address.rsplit(":", 1)[1]
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.PUSH)
    raw.connect(f"{host}:{port}")
    sender = ChunkSender(ctx, f"{host}:{port}")
    arrays = rollout_arrays(good)
    meta = {"actor": 9, "version": 0, "seconds": 1.0, "bots": {}}
    raw.send(pickle.dumps({"evil": object.__new__(object)}))  # a pickle is never loaded
    short = dict(arrays)
    short["hero/obs"] = arrays["hero/obs"][:, :, :-1]
    sender.send(meta, short)  # a wrong shape
    missing = {k: v for k, v in arrays.items() if k != "ticks"}
    sender.send(meta, missing)  # an array missing
    sender.send({**meta, "version": "0"}, arrays)  # bad metadata
    learner.updates = 10
    sender.send({**meta, "version": 2}, arrays)  # 8 updates old > max_staleness 4
    sender.send({**meta, "version": 9}, arrays)  # fine: 1 update old
    before = service.rollouts.dropped.count
    ro = coll.collect()
    assert ro.agent_steps == int(good.active.sum())
    assert np.array_equal(ro.groups["hero"]["obs"].numpy(), good.groups["hero"]["obs"].numpy())
    assert service.rollouts.dropped.count - before == 4
    assert coll.dropped_stale == 1
    assert coll.metrics()["actors/staleness_max"] == 1.0
    raw.close(linger=0)
    sender.close()


def test_rollouts_beyond_an_updates_need_do_not_queue_up(listening):
    """Rollouts already waiting when an update has what it needs are taken as well and the
    freshest kept: an older extra must not stay queued, or every later update would train
    on data one version older than it could (the drift a pause used to cause)."""
    learner, good = listening
    service, coll = learner.service, learner.collector
    host = service.endpoint.rsplit(":", 1)[0]
    sender = ChunkSender(zmq.Context.instance(),
                         f"{host}:{service.rollouts.address.rsplit(':', 1)[1]}")
    arrays = rollout_arrays(good)
    learner.updates = 20
    dropped = coll.dropped_stale
    for version in (18, 20, 19):  # need is 1: the one of version 20 trains
        sender.send({"actor": 1, "version": version, "seconds": 1.0, "bots": {}}, arrays)
    time.sleep(1.5)  # all three are at the learner (one connection: in order)
    coll.collect()
    assert coll.metrics()["actors/staleness_max"] == 0.0
    assert coll.dropped_stale - dropped == 2
    assert service.rollouts.receive(timeout_ms=200) is None  # none left for the next update
    sender.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_rollout_decoder_raises_only_wire_errors_under_fuzzing(listening, data):
    learner, good = listening
    arrays = rollout_arrays(good)
    meta: dict = {"actor": 0, "version": 0, "seconds": 1.0, "bots": {}}
    names = sorted(arrays)
    for _ in range(data.draw(st.integers(1, 3))):
        how = data.draw(st.sampled_from(["drop", "dtype", "shape", "meta", "extra", "bots"]))
        name = data.draw(st.sampled_from(names))
        if how == "drop":
            arrays.pop(name, None)
        elif how == "dtype" and name in arrays:
            arrays[name] = arrays[name].astype(data.draw(st.sampled_from(
                [np.float64, np.int32, np.uint8, np.bool_])))
        elif how == "shape" and name in arrays and arrays[name].size:
            arrays[name] = arrays[name].reshape(-1)[:data.draw(st.integers(0, arrays[name].size))]
        elif how == "meta":
            key = data.draw(st.sampled_from(["actor", "version", "seconds"]))
            meta[key] = data.draw(st.one_of(st.none(), st.text(max_size=3), st.integers(-5, 5),
                                            st.floats(allow_nan=True), st.booleans()))
        elif how == "extra":
            arrays[data.draw(st.text("abc/", min_size=1, max_size=6))] = np.zeros(2, np.float32)
        else:
            meta["bots"] = data.draw(st.one_of(
                st.none(), st.dictionaries(st.text(max_size=3), st.lists(st.integers(), max_size=3))))
    try:
        ro, _, _ = decode_rollout(meta, arrays, learner.collector.spec)
    except WireError:
        return
    assert ro.agent_steps == int(ro.active.sum())  # whatever passed is a whole, valid rollout


# ---- CURVE -----------------------------------------------------------------------------------
def test_curve_refuses_actors_without_an_authorised_key(tmp_path):
    keys = create_keys(tmp_path / "keys")
    other = create_keys(tmp_path / "other")
    with pytest.raises(ValueError, match="already holds"):
        create_keys(tmp_path / "keys")
    wrong = tmp_path / "wrong"  # the right server key, a client key the learner never saw
    wrong.mkdir()
    shutil.copy(keys.directory / "server.key", wrong / "server.key")
    shutil.copy(other.directory / "client.key_secret", wrong / "client.key_secret")
    cfg = load_config(None, [*SMALL, "actors.listen=true", "league.enabled=false",
                             f"actors.curve_keys={keys.directory}"])
    service = ActorService(to_dict(cfg), 0, None, None, 4)
    ctx = zmq.Context.instance()
    try:
        ok = ControlClient(ctx, service.endpoint, CurveKeys(keys.directory).client, timeout_s=10)
        meta, _ = ok.request("hello", {"actor": None})
        # the learner keeps its key folder to itself: actors use their own --keys
        assert meta["num_envs"] == 4 and meta["config"]["actors"]["curve_keys"] is None
        ok.close()
        for secure in (None, CurveKeys(wrong).client):
            client = ControlClient(ctx, service.endpoint, secure, timeout_s=1.0)
            with pytest.raises(ActorError, match="no answer"):
                client.request("hello", {"actor": None})
        # nor can an unauthenticated actor push rollouts: nothing reaches the learner
        host = service.endpoint.rsplit(":", 1)[0]
        plain = ChunkSender(ctx, f"{host}:{service.rollouts.address.rsplit(':', 1)[1]}",
                            timeout_ms=200)
        plain.send({"actor": 0, "version": 0, "seconds": 0.0}, {})
        assert service.rollouts.receive(timeout_ms=500) is None
        plain.close()
        with pytest.raises(ActorError, match="CURVE"):
            run_actor(service.endpoint, max_rollouts=1, hello_timeout_s=1.0)  # no keys
    finally:
        service.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_arena_actor_joins_a_listening_learner_with_curve_keys(tmp_path):
    from arena.cli import main

    assert main(["keys", str(tmp_path / "keys")]) == 0
    port = _free_port()
    learner = subprocess.Popen(
        [sys.executable, "-m", "arena", "train", *SMALL, "actors.listen=true",
         f"actors.port={port}", f"actors.curve_keys={tmp_path / 'keys'}", "actors.timeout_s=120",
         "trainer.max_updates=3", "trainer.checkpoint_every=3", f"run.root={tmp_path}",
         "run.name=l"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    actor = subprocess.run(
        [sys.executable, "-m", "arena", "actor", "--connect", f"tcp://127.0.0.1:{port}",
         "--keys", str(tmp_path / "keys"), "--timeout", "60"],
        capture_output=True, text=True, timeout=300)
    out, err = learner.communicate(timeout=300)
    assert learner.returncode == 0, err[-2000:]
    assert f"arena actor --connect tcp://127.0.0.1:{port}" in err  # the learner says where
    assert actor.returncode == 0, actor.stderr[-2000:]
    assert "the learner stopped; " in actor.stderr
    assert read_checkpoint(tmp_path / "l")["arena"]["updates"] == 3


def test_multi_node_league_needs_a_reachable_host():
    from arena.config import ConfigError

    with pytest.raises(ConfigError, match="actors.host: expected an address other nodes reach"):
        load_config(None, ["trainer.num_nodes=2"])
    assert load_config(None, ["trainer.num_nodes=2", "actors.host=0.0.0.0"]).actors.host == "0.0.0.0"
    assert load_config(None, ["trainer.num_nodes=2", "league.enabled=false"]).trainer.num_nodes == 2


def test_actor_seeds_differ_between_the_lives_of_a_run(listening, tmp_path):
    """A resumed learner's actors must not replay the first life's games: the seed an actor
    is given depends on how many starts the run has had (its config history)."""
    from arena.rundir import HISTORY, starts_recorded

    learner, _ = listening
    service = learner.service
    incarnation, life = service._incarnation, service.life

    def seed() -> int:  # actor 0's seed at the same incarnation
        service._incarnation = incarnation
        return service._hello({"actor": 0})["seed"]

    first = seed()
    assert seed() == first
    assert starts_recorded(None) == 0 and starts_recorded(tmp_path) == 0
    (tmp_path / HISTORY).write_text('{"update": 0}\n{"update": 25}\n')
    assert starts_recorded(tmp_path) == 2
    try:
        service.life = 2
        assert seed() != first
    finally:
        service.life = life
