"""Actors: rollout collection in processes apart from the learner (OpenAI Five's Rapid).

Each learner rank with `actors.num_workers > 0` (or `actors.listen`) runs an `ActorService`:

    control   REP   hello (config, ports, seed, actor id), league state, snapshot weights
    rollouts  PULL  one wire message per rollout (arena/scale/wire.py), bounded queue (HWM)
    weights   PUB   the policies' weights as safetensors, newest only (CONFLATE at actors)

An actor (`run_actor`, the same code for the local processes the `Supervisor` starts and
for `arena actor --connect tcp://HOST:PORT`) asks for the config, builds the game batch,
CPU policies and the league opponents, then loops: take the newest weights, collect a
rollout with `arena.learn.rollout.Collector` (the very code in-process collection runs), push it.
Snapshot opponents are fetched by id from rank 0's control socket and cached; results
against them travel back with the next league request. Nothing is pickled anywhere: JSON
headers, raw numpy buffers and safetensors bytes only.

The learner's `ActorCollector` takes `rollouts_per_update` rollouts per update, drops (and
counts) malformed ones and those made with weights more than `max_staleness` updates old,
restarts local actors that died, and republishes the weights while it waits so a late
(or restarted) actor gets them. A killed actor loses only the rollout it was collecting;
zmq delivers whole messages or nothing.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import zmq

from arena.learn.rollout import TORCH_DTYPES, Rollout, RolloutSpec, join_dim
from arena.memory import keep_freed_memory
from arena.scale.league_link import ActorError, ControlClient, PoolMirror, sync_league
from arena.scale.transport import (
    ChunkReceiver,
    ChunkSender,
    CurveKeys,
    Dropped,
    Secure,
    WeightsPublisher,
    WeightsSubscriber,
    _bind,
    encode_weights,
)
from arena.scale.wire import WireError, decode, encode
from league.pool import snapshot_file

STOP_VERSION = -1  # a weights message with this version tells actors the run is over
HELLO_TIMEOUT_S = 30.0


# ---- rollouts on the wire ------------------------------------------------------------------
# The fields and their shapes are the rollout schema (arena/learn/rollout.py: GROUP_FIELDS,
# SHARED_FIELDS, RolloutSpec); a rollout travels as `Rollout.arrays()`.


def rollout_arrays(ro: Rollout) -> dict[str, np.ndarray]:
    return ro.arrays()


def _int(meta: dict, key: str, low: int = 0) -> int:
    value = meta.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise WireError(f"meta {key!r}: expected an int >= {low}, got {value!r}"[:200])
    return value


def check_rollout(meta: dict[str, Any], arrays: dict[str, np.ndarray], spec: RolloutSpec
                  ) -> tuple[int, int, float, dict[str, tuple[float, int]]]:
    """(policy version, actor id, seconds, bot results) of a decoded message; WireError if
    it is not exactly a rollout of `spec` (names, dtypes, shapes, metadata)."""
    version, actor = _int(meta, "version"), _int(meta, "actor")
    seconds = meta.get("seconds")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds >= 0:
        raise WireError(f"meta 'seconds': expected a number >= 0, got {seconds!r}"[:200])
    bots = meta.get("bots", {})
    if not isinstance(bots, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and len(v) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            for k, v in bots.items()):
        raise WireError("meta 'bots': expected {name: [score, games]}")
    expected = spec.expected()
    episodes = {"episodes/winners", "episodes/lengths"}
    if set(arrays) != set(expected) | episodes:
        missing = sorted(set(expected) | episodes - set(arrays))
        extra = sorted(set(arrays) - set(expected) - episodes)
        raise WireError(f"rollout arrays differ: missing {missing[:4]}, unexpected {extra[:4]}")
    for name, (dtype, shape) in expected.items():
        a = arrays[name]
        if str(a.dtype) != dtype or a.shape != shape:
            raise WireError(f"{name}: {a.dtype}{list(a.shape)}, expected {dtype}{list(shape)}")
    w, lengths = arrays["episodes/winners"], arrays["episodes/lengths"]
    if w.dtype != np.int64 or lengths.dtype != np.int64 or w.ndim != 1 or w.shape != lengths.shape:
        raise WireError("episodes: expected two int64 vectors of one length")
    return version, actor, float(seconds), {k: (float(v[0]), int(v[1])) for k, v in bots.items()}


def assemble_rollouts(messages: list[dict[str, np.ndarray]], spec: RolloutSpec,
                      device: torch.device | str = "cpu") -> Rollout:
    """Checked messages (their arrays still in the received frames) side by side as one
    rollout: each array is copied once, straight into its slice of the batch (on `device`:
    the copy is the move)."""
    device = torch.device(device)
    shapes = spec.shapes(len(messages))
    shared: dict[str, np.ndarray] = {}
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for name, (dtype, shape) in shapes.items():
        dim = join_dim(name)
        if "/" not in name:
            shared[name] = np.concatenate([m[name] for m in messages], axis=dim)
            continue
        key, field_name = name.rsplit("/", 1)
        dest = torch.empty(shape, dtype=TORCH_DTYPES[dtype], device=device)
        step = shape[dim] // len(messages)
        for i, m in enumerate(messages):
            dest.narrow(dim, i * step, step).copy_(_as_tensor(m[name]))
        groups.setdefault(key, {})[field_name] = dest
    winners = np.concatenate([m["episodes/winners"] for m in messages])
    lengths = np.concatenate([m["episodes/lengths"] for m in messages])
    return Rollout(groups, shared["env_rewards"], shared["events"], shared["active"],
                   shared["ticks"], shared["alive"], {"winners": winners, "lengths": lengths},
                   int(shared["active"].sum()))


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over a received (read-only) buffer, without copying it."""
    import warnings

    with warnings.catch_warnings():  # the frame is only read (the copy's source)
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def decode_rollout(meta: dict[str, Any], arrays: dict[str, np.ndarray], spec: RolloutSpec,
                   device: torch.device | str = "cpu") -> tuple[Rollout, int, int]:
    """(rollout, policy version, actor id) from one decoded message; WireError if it is not
    exactly a rollout of `spec`."""
    version, actor, seconds, bots = check_rollout(meta, arrays, spec)
    ro = assemble_rollouts([arrays], spec, device)
    ro.seconds, ro.bot_results = seconds, bots
    return ro, version, actor


# ---- the learner's side ------------------------------------------------------------------------
class ControlServer:
    """The learner's REP socket, served by a thread: hello, league index, snapshot weights.
    Bad requests get an error reply and are counted; the thread never dies on one."""

    def __init__(self, context: zmq.Context, address: str, secure: Secure | None,
                 hello: Callable[[dict], dict], league_dir: Path | None) -> None:
        self.context, self.secure, self.hello, self.league_dir = context, secure, hello, league_dir
        self.league_state: dict[str, Any] | None = None  # swapped whole by the learner
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        self.dropped = Dropped()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.address = ""
        self._thread = threading.Thread(target=self._serve, args=(address,), daemon=True,
                                        name="arena-control")
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error

    def _serve(self, address: str) -> None:
        sock = self.context.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            if self.secure is not None:
                self.secure(sock)
            self.address = _bind(sock, address)
        except (zmq.ZMQError, ValueError) as exc:
            self._error = exc
            self._ready.set()
            sock.close()
            return
        self._ready.set()
        while not self._stop.is_set():
            if not sock.poll(100, zmq.POLLIN):
                continue
            frames = sock.recv_multipart()
            try:
                kind, meta, _ = decode(frames)
                reply = self._handle(kind, meta)
            except WireError as exc:
                self.dropped.add(str(exc))
                reply = encode("error", {"reason": str(exc)[:300]}, {})
            except Exception as exc:  # noqa: BLE001 - a reply must go out whatever happened
                reply = encode("error", {"reason": f"{type(exc).__name__}: {exc}"[:300]}, {})
            sock.send_multipart(reply)
        sock.close()

    def _handle(self, kind: str, meta: dict[str, Any]) -> list:
        if kind == "hello":
            return encode("hello", self.hello(meta), {})
        if kind == "league":
            if self.league_state is None:
                raise WireError("this learner rank serves no league (ask rank 0)")
            results = meta.get("results")
            if not isinstance(results, list) or len(results) > 100_000:
                raise WireError("league: 'results' must be a list")
            for r in results:
                if not (isinstance(r, list) and len(r) == 3 and isinstance(r[0], str)
                        and isinstance(r[1], int) and not isinstance(r[1], bool)
                        and r[2] in (0, 0.5, 1) and r[0] in self.league_state):
                    raise WireError(f"league: bad result {r!r}"[:200])
            for r in results:
                self.results.put((r[0], r[1], float(r[2])))
            return encode("league", {"pools": self.league_state}, {})
        if kind == "snapshot":
            role, sid = meta.get("role"), meta.get("id")
            if self.league_dir is None or self.league_state is None or role not in self.league_state \
                    or not isinstance(sid, int) or isinstance(sid, bool) or sid < 0:
                raise WireError(f"snapshot: no snapshot {sid!r} of role {role!r} here"[:200])
            path = self.league_dir / role / snapshot_file(sid)
            if not path.is_file():
                raise WireError(f"snapshot {sid} of role {role!r} is not in the pool")
            data = np.frombuffer(path.read_bytes(), np.uint8)
            return encode("snapshot", {"role": role, "id": sid}, {"weights": data})
        raise WireError(f"unexpected request kind {kind!r}")

    def drain_results(self) -> list[tuple[str, int, float]]:
        out = []
        while True:
            try:
                out.append(self.results.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process as soon as its parent (`parent`, the learner)
    dies, SIGKILL included (Linux: PR_SET_PDEATHSIG); exit at once if it is gone already.

    Without it an orphaned actor notices its learner is gone only between rollouts (it
    polls its parent pid), which under load is tens of seconds of CPU taken from the
    learner resumed in its place. The polling stays as the fallback elsewhere. The signal
    follows the parent *thread* that started the process: the Supervisor starts actors
    from the learner's main thread (setup and the collect loop), which lives as long as
    the learner."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # no libc prctl: rely on the polling
            pass
    if os.getppid() != parent:  # died before the signal was armed
        os._exit(0)


def _local_actor(endpoint: str, actor_id: int, keys: str | None, threads: int, parent: int,
                 game: str) -> None:
    """Entry point of a supervised actor process. `game` is the learner's own game spec,
    handed over in the process arguments (not the network), so the actor trusts exactly it."""
    from arena.trust import allow_games

    die_with_parent(parent)
    allow_games([game])
    try:
        run_actor(endpoint, actor_id=actor_id, keys=keys, threads=threads, parent_pid=parent)
    except ActorError as exc:
        print(f"actor {actor_id}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


class Supervisor:
    """Starts the local actor processes and restarts any that died (SIGKILL included).
    `game` is the learner's game spec: its actors may build it even where only the
    learner's user trusts it."""

    def __init__(self, endpoint: str, num: int, keys: str | None, threads: int, game: str,
                 max_restarts: int = 1000) -> None:
        self.endpoint, self.keys, self.threads, self.game = endpoint, keys, threads, game
        self.max_restarts = max_restarts
        self.context = mp.get_context("spawn")
        self.processes: dict[int, mp.process.BaseProcess] = {}
        self.restarts = 0
        for i in range(num):
            self._spawn(i)

    def _spawn(self, i: int) -> None:
        p = self.context.Process(target=_local_actor, name=f"arena-actor-{i}", daemon=True,
                                 args=(self.endpoint, i, self.keys, self.threads, os.getpid(),
                                       self.game))
        p.start()
        self.processes[i] = p

    def check(self) -> list[tuple[int, int | None]]:
        """Restart dead actors; returns (actor id, exit code) of each one restarted."""
        dead = [(i, p.exitcode) for i, p in self.processes.items() if not p.is_alive()]
        for i, code in dead:
            self.restarts += 1
            if self.restarts > self.max_restarts:
                raise ActorError(f"actors died {self.restarts} times; giving up (last: actor "
                                 f"{i}, exit code {code})")
            print(f"actor {i} died (exit code {code}); restarting it", file=sys.stderr, flush=True)
            self._spawn(i)
        return dead

    def close(self) -> None:
        for p in self.processes.values():
            if p.is_alive():
                p.terminate()
        for p in self.processes.values():
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(1)


class ActorService:
    """One learner rank's sockets, control thread and local actors."""

    def __init__(self, config: dict[str, Any], rank: int, league_dir: Path | None,
                 league_endpoint: str | None, games_per_actor: int, per_version: int = 1,
                 life: int = 0) -> None:
        from arena.config import ConfigError, config_from_dict

        cfg = config_from_dict(config)
        a = cfg.actors
        if a.curve_keys and not (Path(a.curve_keys) / "server.key_secret").is_file():
            what = "holds no server.key_secret" if Path(a.curve_keys).is_dir() else \
                "is not a directory"
            raise ConfigError(f"actors.curve_keys: {a.curve_keys} {what}; the learner needs "
                              f"the folder made by `arena keys {a.curve_keys}`")
        # actors get the config without the learner's key folder: they use their own --keys
        self.config = {**config, "actors": {**config.get("actors", {}), "curve_keys": None}}
        self.rank, self.games = rank, games_per_actor
        self.per_version = per_version
        self.life = life  # the learner's start of this run: actor seeds differ after a resume
        self.context = zmq.Context()
        self.keys = CurveKeys(Path(a.curve_keys)) if a.curve_keys else None
        self.auth = self.keys.authenticator(self.context) if self.keys else None
        secure = self.keys.server if self.keys else None
        port = a.port + rank if a.port else "*"
        self.league_endpoint = league_endpoint  # None: this rank serves the league itself
        self._next_remote = a.num_workers
        self._incarnation = 0
        self._lock = threading.Lock()
        opened: list[Any] = []
        try:
            key = "actors.host"  # the first two sockets take any free port
            self.rollouts = ChunkReceiver(self.context, f"tcp://{a.host}:*", hwm=a.queue,
                                          secure=secure)
            opened.append(self.rollouts)
            self.weights = WeightsPublisher(self.context, f"tcp://{a.host}:*", secure=secure)
            opened.append(self.weights)
            key = "actors.port" if a.port else "actors.host"
            self.control = ControlServer(self.context, f"tcp://{a.host}:{port}", secure,
                                         self._hello, league_dir)
        except (zmq.ZMQError, ValueError) as exc:  # address in use, not an interface, ...
            for sock in opened:
                sock.close()
            if self.auth is not None:
                self.auth.stop()
            self.context.destroy(linger=0)
            raise ConfigError(f"{key}: the learner cannot listen on {a.host}:{port}: {exc} "
                              f"(actors.host={a.host}, actors.port={a.port})") from None
        self.endpoint = self.control.address
        self.supervisor = Supervisor(self.connect_endpoint, a.num_workers, a.curve_keys,
                                     a.threads, cfg.game.name) if a.num_workers else None

    @property
    def connect_endpoint(self) -> str:
        """Where actors on this machine connect (0.0.0.0 binds all interfaces)."""
        return self.endpoint.replace("0.0.0.0", "127.0.0.1")

    def _port(self, address: str) -> int:
        return int(address.rsplit(":", 1)[1])

    def _hello(self, meta: dict[str, Any]) -> dict[str, Any]:
        actor = meta.get("actor")
        with self._lock:
            if not isinstance(actor, int) or isinstance(actor, bool) or actor < 0:
                actor = self._next_remote
                self._next_remote += 1
            self._incarnation += 1
            incarnation = self._incarnation
        seed = int(self.config["run"]["seed"]) + 1_000_003 * (self.rank + 1) + 7919 * actor \
            + 104_729 * incarnation + 15_485_863 * self.life
        return {"config": self.config, "actor": actor, "seed": seed,
                "rollouts_port": self._port(self.rollouts.address),
                "weights_port": self._port(self.weights.address),
                "league": self.league_endpoint or "self", "num_envs": self.games,
                "rollouts_per_version": self.per_version}

    def close(self) -> None:
        """Tell actors to stop, stop local ones, close every socket (idempotent). Sockets
        others made on `self.context` must be closed first, or term() waits for them."""
        if self.context.closed:
            return
        try:
            self.weights.send(encode_weights({}, STOP_VERSION, 0.0))
        except zmq.ZMQError:
            pass
        if self.supervisor is not None:
            self.supervisor.close()
        self.control.close()
        self.rollouts.close()
        self.weights.socket.close(linger=2000)  # let the stop message reach remote actors
        if self.auth is not None:
            self.auth.stop()
        self.context.term()


class ActorCollector:
    """The learner's collector when actors collect: `collect()` returns the next update's
    batch, made of `need` rollouts from any actors, side by side."""

    def __init__(self, service: ActorService, spec: RolloutSpec, need: int, max_staleness: int,
                 timeout_s: float, version: Callable[[], int],
                 weights: Callable[[], tuple[dict[str, torch.Tensor], float]],
                 device: torch.device | str = "cpu") -> None:
        self.service, self.spec, self.need = service, spec, need
        self.max_staleness, self.timeout_s = max_staleness, timeout_s
        self.version, self.weights = version, weights
        self.device = torch.device(device)
        self.opponents = None
        self.dropped_stale = 0
        self.dropped_bad = 0
        self.lost_rollouts = 0  # in-flight rollouts of actors that died
        self._stats: dict[str, float] = {}
        self._published = -1
        self._frame = b""  # the encoded weights of version `_published`
        self._last_publish = 0.0

    def publish(self, force: bool = False) -> None:
        """Send the weights of a new version; with `force`, re-send the current ones (the
        message is encoded once per version)."""
        version = self.version()
        if version != self._published:
            tensors, gamma = self.weights()
            self._frame = encode_weights(tensors, version, gamma)
            self._published = version
        elif not force:
            return
        self.service.weights.send(self._frame)
        self._last_publish = time.monotonic()

    def collect(self) -> Rollout:
        t0 = time.perf_counter()
        self.publish()
        got: list[dict[str, np.ndarray]] = []  # checked messages, arrays still in their frames
        staleness: list[int] = []
        bots: dict[str, list[float]] = {}
        bytes0 = self.service.rollouts.bytes_received
        last_progress = waiting_since = time.monotonic()
        timeout_ms = 100
        while True:
            if len(got) >= self.need:
                # Rollouts already waiting beyond this update's need are taken too, and the
                # freshest `need` kept: otherwise every extra rollout (an actor granted one
                # more while the learner waited, see `publish`) would stay queued for good and
                # every later update would train on data one version older than it could.
                timeout_ms = 0
            if self.service.supervisor is not None:
                self.lost_rollouts += len(self.service.supervisor.check())
            # Re-send the weights once this update has waited a second (for actors that
            # joined or restarted since), never merely because the learner paused since it
            # sent them (an evaluation): the rollout it waits for is here already, and the
            # re-send would grant the idle actor one more of the old version, which would
            # keep every later update one version stale.
            if timeout_ms and time.monotonic() - max(self._last_publish, waiting_since) > 1.0:
                self.publish(force=True)
            item = self.service.rollouts.receive(timeout_ms=timeout_ms)
            if item is None:
                if timeout_ms == 0:
                    break
                if time.monotonic() - last_progress > self.timeout_s:
                    raise ActorError(f"no rollout from any actor for {self.timeout_s:g} s "
                                     f"(actors.timeout_s); actors connect to "
                                     f"{self.service.connect_endpoint}")
                continue
            last_progress = time.monotonic()
            meta, arrays = item
            try:
                version, _, _, results = check_rollout(meta, arrays, self.spec)
            except WireError as exc:
                self.dropped_bad += 1
                self.service.rollouts.dropped.add(str(exc))
                continue
            stale = self.version() - version
            if stale > self.max_staleness or stale < 0:
                self.dropped_stale += 1
                continue
            got.append(arrays)
            staleness.append(stale)
            for name, (score, games) in results.items():
                b = bots.setdefault(name, [0.0, 0])
                b[0] += score
                b[1] += games
        if len(got) > self.need:  # stable: among equally fresh ones, the first to arrive
            keep = sorted(sorted(range(len(got)), key=staleness.__getitem__)[:self.need])
            self.dropped_stale += len(got) - self.need
            got, staleness = [got[i] for i in keep], [staleness[i] for i in keep]
        rollout = assemble_rollouts(got, self.spec, self.device)
        seconds = time.perf_counter() - t0
        rollout.seconds = seconds
        nbytes = self.service.rollouts.bytes_received - bytes0
        self._stats = {
            "actors/staleness_mean": float(np.mean(staleness)),
            "actors/staleness_max": float(np.max(staleness)),
            "actors/dropped_stale": float(self.dropped_stale),
            "actors/dropped_malformed": float(self.service.rollouts.dropped.count),
            "actors/restarts": float(self.service.supervisor.restarts
                                     if self.service.supervisor else 0),
            "actors/lost_rollouts": float(self.lost_rollouts),
            "actors/rollouts_per_update": float(len(got)),
            "perf/transport_mb_per_s": nbytes / 2**20 / max(seconds, 1e-9),
            **{f"league/win_rate_vs_bot/{k}": v[0] / v[1] for k, v in bots.items() if v[1]},
        }
        return rollout

    def metrics(self) -> dict[str, float]:
        return dict(self._stats)

    def close(self) -> None:
        """Nothing to release: the learner owns the service and closes it."""


# ---- the actor -----------------------------------------------------------------------------------
def run_actor(endpoint: str, actor_id: int | None = None, keys: str | None = None,
              threads: int = 1, parent_pid: int | None = None,
              max_rollouts: int | None = None, hello_timeout_s: float = HELLO_TIMEOUT_S) -> int:
    """Collect rollouts for the learner at `endpoint` until it stops (or `max_rollouts`);
    returns the number of rollouts sent. The learner's config is not this machine's: its
    game must be one this process trusts (arena/trust.py), or ActorError before anything
    is built."""
    from arena.config import ConfigError, config_from_dict
    from arena.learn.networks import (
        build_policy,
        group_module_key,
        policy_groups,
        pool_settings,
    )
    from arena.learn.opponents import OpponentManager, group_weights
    from arena.learn.rollout import Collector, collection_vec
    from arena.trust import check_config_game
    from games.registry import UntrustedGameError

    torch.set_num_threads(threads)
    keep_freed_memory()  # arena/memory.py: large tensors reuse freed memory
    context = zmq.Context()
    secure = CurveKeys(Path(keys)).client if keys else None
    def learner_gone() -> bool:  # a local actor's parent (the learner) died
        return parent_pid is not None and os.getppid() != parent_pid

    control = ControlClient(context, endpoint, secure, timeout_s=HELLO_TIMEOUT_S,
                            gone=learner_gone)
    try:
        hello, _ = control.request("hello", {"actor": actor_id}, timeout_s=hello_timeout_s)
        try:
            check_config_game(hello["config"], source=f"the learner at {endpoint}")
            cfg = config_from_dict(hello["config"])
        except (KeyError, TypeError, ConfigError, UntrustedGameError) as exc:
            raise ActorError(f"refusing the learner's config: {exc}") from None
        host = endpoint.rsplit(":", 1)[0]
        sender = ChunkSender(context, f"{host}:{hello['rollouts_port']}", hwm=2, secure=secure,
                             timeout_ms=500)
        subscriber = WeightsSubscriber(context, f"{host}:{hello['weights_port']}", secure=secure)
        stop_seen = False
        early: list[tuple[int, float, dict[str, torch.Tensor]]] = []  # weights taken by `stopped`

        def stopped() -> bool:
            """The learner is gone or said stop. Asked while a request to a control socket
            waits: rank 0 stops answering once it has finished, and the stop message comes
            on the weights channel (a weights message read here waits in `early`)."""
            nonlocal stop_seen
            if not stop_seen and not learner_gone():
                msg = subscriber.latest(0)
                if msg is not None and msg[0] == STOP_VERSION:
                    stop_seen = True
                elif msg is not None:
                    early[:] = [msg]
            return stop_seen or learner_gone()

        control.gone = stopped
        league = None
        if cfg.league.enabled:
            league = control if hello["league"] == "self" else \
                ControlClient(context, hello["league"], secure, timeout_s=HELLO_TIMEOUT_S,
                              gone=stopped)
        actor = int(hello["actor"])
        if mp.current_process().daemon and cfg.game.threads > 1:
            # a learner's own actor processes are daemons, which cannot start game workers;
            # they are parallel already, one process each
            cfg.game.threads = 1
        vec = collection_vec(cfg, int(hello["num_envs"]))
        groups = policy_groups(vec, cfg.model.per_agent_weights)
        roles = {g.key: g.role for g in groups}
        policies = {g.key: build_policy(g.role, cfg).eval() for g in groups}
        pools: dict[str, PoolMirror] = {}
        opponents = None
        if league is not None:
            lg = cfg.league
            pools = {role: PoolMirror(role, league, **pool_settings(cfg))
                     for role in sorted({g.role.name for g in groups})}
            opponents = OpponentManager(vec, groups, pools,
                                        build=lambda key: build_policy(roles[key], cfg),
                                        module_key=group_module_key, seed=int(hello["seed"]) + 5,
                                        device=torch.device("cpu"), bots=list(lg.bots),
                                        bot_prob=lg.bot_prob, game=cfg.game.name)
        collector = Collector(vec, policies, groups, cfg.ppo.chunk_len, cfg.ppo.chunks_per_update,
                              seed=int(hello["seed"]), device="cpu", opponents=opponents,
                              overlap=cfg.game.overlap and cfg.game.threads > 1)
        version: int | None = None
        last_weights = time.monotonic()
        sent = 0
        # Flow control: `per_version` rollouts per weights version, and `actors.ahead` more
        # at most: with 0 an actor waits for the weights its rollout trains (an update learns
        # from its own policy's rollouts, as in-process); with 1 it collects its next rollout
        # while the learner trains on its last one (collection and update overlap; staleness
        # 1). Never further ahead: the learner's queue does not fill with stale rollouts.
        # The learner re-sends the current weights while it waits for rollouts; that grants
        # one more only to an actor idle for longer than its own collection takes (a rollout
        # of it was lost, or an actor died), not to one that merely finished first.
        per_version = max(int(hello.get("rollouts_per_version", 1)), 1)
        credit = 0
        idle_since = time.monotonic()  # when this actor last finished (or began waiting)
        collect_seconds = 0.0

        def take_weights(timeout_ms: int) -> bool:
            """Load the newest weights if any came; False once the learner said stop."""
            nonlocal version, last_weights, credit
            if stop_seen:
                return False
            msg = subscriber.latest(0 if early else timeout_ms) or (early[0] if early else None)
            early.clear()
            if msg is None:
                return True
            v, _, tensors = msg
            if v == STOP_VERSION:
                return False
            last_weights = time.monotonic()
            if v != version:  # never more than `actors.ahead` rollouts ahead
                credit = per_version + cfg.actors.ahead if version is None else \
                    min(credit + per_version, per_version + cfg.actors.ahead)
                for g in groups:
                    policies[g.key].load_state_dict(group_weights(tensors, group_module_key(g.key)))
                version = v
            elif credit == 0 and time.monotonic() - idle_since > max(1.0, collect_seconds):
                credit = 1
            return True

        def alive() -> bool:
            if learner_gone():
                return False
            if time.monotonic() - last_weights > cfg.actors.timeout_s:
                raise ActorError(f"no weights from the learner at {endpoint} for "
                                 f"{cfg.actors.timeout_s:g} s")
            return True

        while max_rollouts is None or sent < max_rollouts:
            if not take_weights(0 if credit else 200) or not alive():
                break
            if version is None or credit == 0:
                continue
            try:
                if pools:
                    sync_league(league, pools)
                ro = collector.collect()  # may fetch snapshots from rank 0
            except ActorError:
                if stop_seen:  # rank 0 finished while this actor waited for it
                    break
                raise
            bots = opponents.take_bot_results() if opponents is not None else {}
            meta = {"actor": actor, "version": version, "seconds": ro.seconds,
                    "bots": {k: [s, g] for k, (s, g) in bots.items()}}
            arrays = rollout_arrays(ro)
            while not sender.send(meta, arrays):  # the learner's queue is full: wait
                if not take_weights(0) or not alive():
                    return sent
            sent += 1
            credit -= 1
            idle_since, collect_seconds = time.monotonic(), ro.seconds
        return sent
    finally:
        control.close()
        context.destroy(linger=0)
