"""Third-party games stepped in worker processes that write into shared-memory batches.

`ProcVec(name, B, workers=W)` (what `make_vec(name, B, threads=W)` gives for any game but
the MOBA) is the `VecGame` of `games.vector` with its Python loop over games split over W
child processes, as EnvPool and PufferLib do. Worker k runs an ordinary in-process
`ParallelVec`/`AECVec` over a contiguous slice of the games (`game_slices[k]`, sizes
differing by at most one) built with `game_offset` = the slice's first game, so every game
is seeded by its global index: for the same seed and actions, every `VecStep` field equals
the in-process batch's exactly, at every step.

Shared memory. The parent allocates one `multiprocessing.shared_memory` block holding
every array of the `VecStep` (obs/action_mask/final_obs/final_mask per role, rewards,
dones, active, next_active, winners, lengths, events, alive, truncated) plus the (B, S)
int64 actions, each array 64-byte aligned with the game axis first. A worker binds its
slice `[lo:hi]` of every array as its vec's own buffers (`_EnvVec._bind_buffers`), so the
games write their results straight into the parent's batch; the parent writes the actions
there too. Only tiny command tuples cross the per-worker `Pipe`: ("reset", seed),
("step",), ("close",); a worker answers ("ok",) or an error report.

Overlap. `step(actions)` and `reset(seed)` block until every worker is done. To infer one
part of the batch while another steps, use `step_async(actions, games)` and
`wait(games)` with `games` a slice of whole workers' games, e.g. the halves
`game_groups(2)` (needs W >= 2). With `split=2` the workers are laid out so that the halves
are games [0, B//2) and [B//2, B) whatever W is (so an overlapped collection, whose random
draws follow its halves, gives the same rollouts with any number of workers)::

    h0, h1 = vec.game_groups(2)
    st = vec.reset(seed)
    vec.step_async(policy(st, h0), h0)       # half 0 steps in its workers ...
    vec.step_async(policy(st, h1), h1)       # ... while half 1 is inferred
    while True:
        st0 = vec.wait(h0)                   # VecStep of half 0's rows only
        vec.step_async(policy(st0, h0), h0)  # half 0 steps while half 1 is inferred
        st1 = vec.wait(h1)
        vec.step_async(policy(st1, h1), h1)

`wait(games)` returns views of those games' rows (`view(games)`); rows of games still
stepping must not be read. Each game sees the same actions as in a plain `step`, so the
results are the in-process ones. Not thread-safe: drive a `ProcVec` from one thread.

Errors and shutdown. A game that raises inside a worker comes back as one `WorkerError`
naming the game's global index, the worker and the worker's traceback text; the vec is
closed then (its games are in an unknown state). A worker that dies raises `WorkerError`
too. `close()` (also on `with` exit, garbage collection and interpreter exit, through a
`weakref.finalize`) asks every worker to stop, terminates any that do not, and unlinks the
shared memory. Workers ignore SIGINT (the parent handles Ctrl-C) and exit when their pipe
closes, so they also go away if the parent is killed (and the resource tracker then
unlinks the shared memory).

Workers are started with the "spawn" (default) or "forkserver" context, safe with torch
loaded in the parent; a script that builds a `ProcVec` needs the usual
`if __name__ == "__main__":` guard. A daemonic process (e.g. a multiprocessing worker
started with daemon=True) cannot start workers. Game options are pickled to the workers
once; a game registered in this process with a callable factory must be importable by
reference (a module-level function or class). Workers get `OMP_NUM_THREADS=1` (magent2
otherwise starts cpu_count // 2 OpenMP threads in each) unless `worker_env` says otherwise.
"""

from __future__ import annotations

import multiprocessing as mp
import numbers
import os
import signal
import sys
import traceback
import weakref
from collections.abc import Mapping, Sequence
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from games.vector import VecGame, VecStep, _check_num_games, _check_seed

__all__ = ["ProcVec", "WorkerError"]

CONTEXTS = ("spawn", "forkserver")
DEFAULT_WORKER_ENV = {"OMP_NUM_THREADS": "1"}
_ALIGN = 64
_JOIN_TIMEOUT_S = 5.0
# VecStep fields held per role (dicts), and the plain arrays, in layout order
_ROLE_FIELDS = ("obs", "action_mask", "final_obs", "final_mask")
_FIELDS = ("rewards", "dones", "active", "next_active", "winners", "lengths", "events",
           "alive", "truncated")


class WorkerError(RuntimeError):
    """A game (or the worker running it) failed in a worker process.

    `game`: the global index of the game that raised (None: not inside one game's step,
    e.g. while the worker built its games, or the worker died); `worker`: the worker's
    index; `exc_type`: the name of the exception's type in the worker; `worker_traceback`:
    the worker's traceback text (also in the message)."""

    def __init__(self, message: str, *, worker: int, game: int | None = None,
                 exc_type: str | None = None, worker_traceback: str = "") -> None:
        super().__init__(message)
        self.worker, self.game = worker, game
        self.exc_type, self.worker_traceback = exc_type, worker_traceback


class _SharedMemory(shared_memory.SharedMemory):
    """Tolerates being dropped while arrays over it are still alive (a caller kept a view
    past close()): the mapping then lives as long as they do."""

    def __del__(self) -> None:
        try:
            self.close()
        except (OSError, BufferError):
            pass


def _layout(roles: Sequence[Any], S: int, E: int) -> list[tuple[str, str | None, tuple, Any]]:
    """(field, role or None, per-game shape, dtype) of every shared array, in order."""
    out: list[tuple[str, str | None, tuple, Any]] = []
    for field in _ROLE_FIELDS:
        obs_like = field in ("obs", "final_obs")
        for r in roles:
            out.append((field, r.name, (len(r.slots), r.obs_dim if obs_like else r.num_actions),
                        np.float32 if obs_like else np.bool_))
    shapes = {"rewards": ((S,), np.float32), "dones": ((), np.bool_),
              "active": ((S,), np.bool_), "next_active": ((S,), np.bool_),
              "winners": ((), np.int64), "lengths": ((), np.int64),
              "events": ((S, E), np.float32), "alive": ((S,), np.bool_),
              "truncated": ((S,), np.bool_)}
    out += [(f, None, *shapes[f]) for f in _FIELDS]
    out.append(("actions", None, (S,), np.int64))
    return out


def _views(buf: memoryview, layout: list, B: int) -> dict[tuple[str, str | None], np.ndarray]:
    """The arrays of `layout` for B games laid out one after another in `buf`."""
    arrays, offset = {}, 0
    for field, role, shape, dtype in layout:
        shape = (B, *shape)
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        arrays[field, role] = np.ndarray(shape, dtype, buffer=buf, offset=offset)
        offset += -(-nbytes // _ALIGN) * _ALIGN
    return arrays


def _nbytes(layout: list, B: int) -> int:
    return sum(-(-int(np.prod((B, *shape))) * np.dtype(dt).itemsize // _ALIGN) * _ALIGN
               for _, _, shape, dt in layout)


def _as_step(arrays: Mapping[tuple[str, str | None], np.ndarray], rows: slice) -> VecStep:
    """A VecStep of the given rows (games) of the shared arrays."""
    per_role: dict[str, dict[str, np.ndarray]] = {f: {} for f in _ROLE_FIELDS}
    for (field, role), arr in arrays.items():
        if role is not None:
            per_role[field][role] = arr[rows]
    return VecStep(**per_role, **{f: arrays[f, None][rows] for f in _FIELDS})


# -- the worker process ---------------------------------------------------------------------
def _failing_game(exc: BaseException, vec: Any) -> int | None:
    """The (local) game index the vec's loop was at when `exc` was raised, if any."""
    b, tb = None, exc.__traceback__
    while tb is not None:
        loc = tb.tb_frame.f_locals
        if loc.get("self") is vec and isinstance(loc.get("b"), numbers.Integral):
            b = int(loc["b"])  # innermost wins
        tb = tb.tb_next
    return b


def _error_report(exc: BaseException, vec: Any) -> tuple:
    local = _failing_game(exc, vec) if vec is not None else None
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ("error", local, type(exc).__name__, str(exc), text)


def _register_in_worker(registration: tuple | None) -> None:
    """Register the game as the parent had it (a game registered at run time, e.g. by a
    test or a plugin, is unknown to a fresh interpreter)."""
    if registration is None:
        return
    from games import registry

    spec, factory = registration
    if registry._REGISTRY.get(spec.name) == spec:
        return
    registry.register(spec.name, factory, spec.description, overwrite=True,
                      bots=spec.bots, anchors=spec.anchors, renderer=spec.renderer,
                      vectorizer=spec.vectorizer, panel=spec.panel)


def _worker_main(conn: Any, index: int, lo: int, hi: int, name: str,
                 kwargs: dict[str, Any], registration: tuple | None,
                 env: dict[str, str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ.update(env)
    vec = shm = actions = None
    try:
        try:
            _register_in_worker(registration)
            from games.vector import make_vec

            # The event names are probed on game 0 alone (worker 0's first game), as in one
            # process: a probe plays a step, and a game whose reset does not undo all of it
            # would then differ from the in-process batch. The others take worker 0's names
            # when they attach.
            defer = lo > 0 and kwargs.get("event_names") is None
            vec = make_vec(name, hi - lo, game_offset=lo,
                           **({**kwargs, "event_names": ()} if defer else kwargs))
            if "torch" in sys.modules:  # a game that uses torch: one thread per worker
                sys.modules["torch"].set_num_threads(1)
            conn.send(("ready", {
                "kind": type(vec).__name__, "slot_agents": list(vec.slot_agents),
                "slot_team": vec.slot_team.tolist(), "team_names": list(vec.team_names),
                "roles": list(vec.roles), "slot_role": vec.slot_role.tolist(),
                "event_names": tuple(vec.event_names)}))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent
            conn.send(_error_report(exc, vec))
            return
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                return
            cmd = msg[0]
            if cmd == "close":
                return
            try:
                if cmd == "step":
                    vec.step(actions)
                elif cmd == "reset":
                    vec.reset(seed=msg[1])
                elif cmd == "attach":
                    _, shm_name, layout, B, event_names = msg
                    if defer:
                        vec._set_event_names(event_names)
                    shm = _SharedMemory(name=shm_name)
                    arrays = {k: a[lo:hi] for k, a in _views(shm.buf, layout, B).items()}
                    actions = arrays.pop(("actions", None))
                    vec._bind_buffers(_as_step(arrays, slice(None)))
                    del arrays
                else:
                    raise ValueError(f"unknown command {cmd!r}")
                conn.send(("ok",))
            except Exception as exc:  # noqa: BLE001
                conn.send(_error_report(exc, vec))
    except (BrokenPipeError, EOFError, OSError):  # the parent is gone mid-reply
        return
    finally:
        try:
            if vec is not None:
                vec.close()
        except Exception:  # noqa: BLE001 - exiting anyway
            pass
        vec = actions = None
        conn.close()


# -- shutdown (shared by close() and the finalizer; holds no reference to the vec) -------
def _shutdown(procs: list, conns: list, shm_box: list) -> None:
    for conn in conns:
        try:
            conn.send(("close",))
        except (OSError, ValueError):
            pass
    for p in procs:
        p.join(_JOIN_TIMEOUT_S)
        if p.is_alive():
            p.terminate()
            p.join(1.0)
        if p.is_alive():  # pragma: no cover - SIGTERM ignored
            p.kill()
            p.join(1.0)
    for conn in conns:
        conn.close()
    for shm in shm_box:
        try:
            shm.close()
        except BufferError:  # a caller still holds views: the mapping outlives them
            pass
        try:
            shm.unlink()
        except FileNotFoundError:
            pass
    procs.clear()
    conns.clear()
    shm_box.clear()


# ==========================================================================================
class ProcVec(VecGame):
    """`num_games` games called `name`, stepped in `workers` processes over shared memory.

    kwargs: game options and the vec options of `make_vec` (roles, event_names, outcome,
    autoreset). `context`: "spawn" or "forkserver". `worker_env`: environment variables set
    in each worker before it builds its games (default `OMP_NUM_THREADS=1`).
    """

    def __init__(self, name: str, num_games: int, workers: int = 2, *,
                 context: str = "spawn", worker_env: Mapping[str, str] | None = None,
                 split: int = 1, **kwargs: Any) -> None:
        where = self._where = f"ProcVec({name!r})"
        B = _check_num_games(where, num_games)
        if name == "moba":
            raise ValueError(f"{where}: the MOBA is batched already; use "
                             "make_vec('moba', num_games, threads=N) for its threads")
        if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) \
                or workers < 1:
            raise ValueError(f"{where}: workers must be an int >= 1, got {workers!r}")
        if context not in CONTEXTS:
            raise ValueError(f"{where}: context must be one of {list(CONTEXTS)}, got {context!r}")
        if "threads" in kwargs or "game_offset" in kwargs:
            raise ValueError(f"{where}: threads/game_offset are set by ProcVec itself")
        if mp.current_process().daemon:
            raise RuntimeError(
                f"{where}: a daemonic process cannot start worker processes; build the vec "
                "with threads=1 there, or start this process with daemon=False")
        W = min(int(workers), B)
        if isinstance(split, bool) or not isinstance(split, numbers.Integral) \
                or not 1 <= split <= W:
            raise ValueError(f"{where}: split must be an int in 1..workers={W}, got {split!r}")
        # `split` equal groups of games (k*B//split), each over its share of the workers
        # (k*W//split, at most one per game), so that game_groups(split) are the same games
        # whatever W is
        bounds = [0]
        for k in range(split):
            g0, g1 = k * B // split, (k + 1) * B // split
            w = min((k + 1) * W // split - k * W // split, g1 - g0)
            bounds += [g0 + j * (g1 - g0) // w for j in range(1, w + 1)]
        W = len(bounds) - 1
        self.name, self.num_games, self.workers, self.split = name, B, W, split
        self.outcome = kwargs.get("outcome", "reward")
        self.autoreset = bool(kwargs.get("autoreset", True))
        self.game_slices = [slice(bounds[k], bounds[k + 1]) for k in range(W)]
        env = dict(DEFAULT_WORKER_ENV if worker_env is None else worker_env)

        self._procs: list[Any] = []
        self._conns: list[Any] = []
        self._shm_box: list[_SharedMemory] = []
        self._closed = False
        self._pending: set[int] = set()  # workers with a command not answered yet
        self._base_seed: int | None = None
        self._finalizer = weakref.finalize(self, _shutdown, self._procs, self._conns,
                                           self._shm_box)
        try:
            self._start(mp.get_context(context), kwargs, env)
        except BaseException:
            self.close()
            raise

    # -- start ------------------------------------------------------------------------------
    def _registration(self) -> tuple | None:
        from games import registry

        spec = registry._REGISTRY.get(self.name)
        if spec is None:
            return None
        return spec, registry._FACTORIES.get(self.name, spec.factory_path)

    def _start(self, ctx: Any, kwargs: dict[str, Any], env: dict[str, str]) -> None:
        registration = self._registration()
        for k, sl in enumerate(self.game_slices):
            parent, child = ctx.Pipe(duplex=True)
            p = ctx.Process(target=_worker_main, name=f"procvec-{k}", daemon=True,
                            args=(child, k, sl.start, sl.stop, self.name, kwargs,
                                  registration, env))
            try:
                p.start()
            except Exception as exc:
                parent.close()
                child.close()
                raise ValueError(
                    f"{self._where}: cannot start worker {k}: {type(exc).__name__}: {exc} "
                    "(game options, and a game registered with a callable, must be "
                    "picklable by reference)") from exc
            child.close()  # the worker holds the only other end: it sees us go
            self._procs.append(p)
            self._conns.append(parent)
        self._pending.update(range(self.workers))
        metas = self._collect(range(self.workers), "build its games")
        first = metas[0]
        for k, m in enumerate(metas[1:], 1):
            if kwargs.get("event_names") is None:  # worker 0's, given to the others at attach
                m = {**m, "event_names": first["event_names"]}
            if m != first:
                diff = sorted(f for f in first if first[f] != m[f])
                raise RuntimeError(f"{self._where}: worker {k} built games that differ from "
                                   f"worker 0's in {diff}")
        self.kind = first["kind"]
        self.slot_agents = first["slot_agents"]
        self.num_slots = S = len(self.slot_agents)
        self.slot_team = np.array(first["slot_team"], np.int64)
        self.team_names = first["team_names"]
        self.roles = first["roles"]
        self.slot_role = np.array(first["slot_role"], np.int64)
        self.event_names = first["event_names"]
        self._slot_n = np.array([self.roles[r].num_actions for r in self.slot_role], np.int64)

        layout = _layout(self.roles, S, len(self.event_names))
        shm = _SharedMemory(create=True, size=max(_nbytes(layout, self.num_games), 1))
        self._shm_box.append(shm)
        self._arrays = _views(shm.buf, layout, self.num_games)
        self._actions = self._arrays.pop(("actions", None))
        self._views: dict[tuple[int, int], VecStep] = {}
        self._step_result = self.view(slice(0, self.num_games))
        for k in range(self.workers):
            self._send(k, ("attach", shm.name, layout, self.num_games, self.event_names),
                       "attach the shared memory")
        self._pending.update(range(self.workers))
        self._collect(range(self.workers), "attach the shared memory")

    # -- commands ---------------------------------------------------------------------------
    def _collect(self, workers: Sequence[int] | range, doing: str) -> list[Any]:
        """Answers of `workers` (pending ones), in order; the first failure closes the vec
        and raises one WorkerError (the lowest failing game first)."""
        answers, failures = [], []
        for k in workers:
            try:
                msg = self._conns[k].recv()
            except (EOFError, OSError):
                hint = "" if doing != "build its games" else (
                    "; its own output above says why. A worker starts by importing the "
                    "main script again: a script that builds the games at import needs "
                    "`if __name__ == \"__main__\":` around that")
                failures.append(self._died(k, f"while trying to {doing}", hint))
                self._pending.discard(k)
                continue
            self._pending.discard(k)
            if msg[0] == "error":
                _, local, exc_type, text, tb = msg
                game = None if local is None else self.game_slices[k].start + local
                at = f"game {game} (worker {k}, games {self._games_text(k)})" \
                    if game is not None else f"worker {k} (games {self._games_text(k)})"
                failures.append(WorkerError(
                    f"{self._where}: {at} raised {exc_type} while trying to {doing}: {text}\n"
                    f"--- worker {k} traceback ---\n{tb}", worker=k, game=game,
                    exc_type=exc_type, worker_traceback=tb))
            else:
                answers.append(msg[1] if len(msg) > 1 else None)
        if failures:
            self.close()
            failures.sort(key=lambda e: (e.game is None, e.game or 0, e.worker))
            raise failures[0]
        return answers

    def _send(self, k: int, msg: tuple, doing: str) -> None:
        """Send worker k a command; a worker that is gone (killed, crashed) closes the vec
        and raises a WorkerError, as when its answer does not come."""
        try:
            self._conns[k].send(msg)
        except (BrokenPipeError, EOFError, OSError):
            err = self._died(k, f"before it could {doing}")
            self.close()
            raise err from None

    def _died(self, k: int, when: str, hint: str = "") -> WorkerError:
        """The error for worker k, found gone `when` (its exit code once it is reaped)."""
        p = self._procs[k]
        p.join(1.0)
        return WorkerError(f"{self._where}: worker {k} (games {self._games_text(k)}) died "
                           f"{when} (exit code {p.exitcode}){hint}", worker=k)

    def _games_text(self, k: int) -> str:
        sl = self.game_slices[k]
        return f"{sl.start}..{sl.stop - 1}"

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise RuntimeError(f"{self._where}.{what}: the vec is closed")

    def _workers_of(self, games: slice | None, what: str) -> tuple[slice, list[int]]:
        """The normalized game slice and the workers whose games make it up exactly."""
        if games is None:
            return slice(0, self.num_games), list(range(self.workers))
        if not isinstance(games, slice) or games.step not in (None, 1):
            raise TypeError(f"{self._where}.{what}: games must be a slice of whole workers' "
                            f"games, got {games!r}")
        lo, hi, _ = games.indices(self.num_games)
        ks = [k for k, sl in enumerate(self.game_slices) if lo <= sl.start and sl.stop <= hi]
        if not ks or self.game_slices[ks[0]].start != lo or self.game_slices[ks[-1]].stop != hi:
            raise ValueError(
                f"{self._where}.{what}: games {lo}..{hi - 1} do not cover whole workers; "
                f"the workers' games are {[(s.start, s.stop) for s in self.game_slices]} "
                "(see game_groups())")
        return slice(lo, hi), ks

    def game_groups(self, parts: int = 2) -> list[slice]:
        """The games split into `parts` contiguous slices of whole workers (the halves of
        an overlapped collector for parts=2); needs parts <= workers. With parts equal to
        the `split` the vec was built with: games k*B//parts to (k+1)*B//parts."""
        if isinstance(parts, bool) or not isinstance(parts, numbers.Integral) \
                or not 1 <= parts <= self.workers:
            raise ValueError(f"{self._where}.game_groups: parts must be an int in "
                             f"1..workers={self.workers}, got {parts!r}")
        if parts == self.split:  # whole workers by construction
            B = self.num_games
            return [slice(k * B // parts, (k + 1) * B // parts) for k in range(parts)]
        cut = [k * self.workers // parts for k in range(parts + 1)]
        return [slice(self.game_slices[cut[i]].start, self.game_slices[cut[i + 1] - 1].stop)
                for i in range(parts)]

    def view(self, games: slice) -> VecStep:
        """A VecStep of views of the given games' rows (valid until they step again)."""
        self._check_open("view")
        lo, hi, _ = games.indices(self.num_games)
        v = self._views.get((lo, hi))
        if v is None:
            v = self._views[lo, hi] = _as_step(self._arrays, slice(lo, hi))
        return v

    # -- the VecGame API --------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> VecStep:
        self._check_open("reset")
        if self._pending:
            self.wait()
        base = _check_seed(type(self).__name__, seed)  # one seed for the whole batch
        for k in range(self.workers):
            self._send(k, ("reset", base), "reset")
        self._pending.update(range(self.workers))
        self._collect(range(self.workers), "reset")
        self._base_seed = base
        return self._step_result

    def step(self, actions: np.ndarray) -> VecStep:
        self.step_async(actions)
        return self.wait()

    def step_async(self, actions: np.ndarray, games: slice | None = None) -> None:
        """Start stepping `games` (default all; a slice of whole workers' games) with
        `actions`, (num_games, S) or just those games' (n, S) rows; returns at once.
        Collect the result with `wait(games)`."""
        self._check_open("step")
        if self._base_seed is None:
            raise RuntimeError(f"{self._where}.step called before reset()")
        sl, ks = self._workers_of(games, "step_async")
        busy = [k for k in ks if k in self._pending]
        if busy:
            raise RuntimeError(f"{self._where}.step_async: games of workers {busy} are still "
                               "stepping; wait() for them first")
        n = sl.stop - sl.start
        actions = np.asarray(actions)
        if actions.ndim == 2 and actions.shape[0] == self.num_games and n != self.num_games:
            actions = actions[sl]
        actions = self._check_actions_rows(actions, n)
        live = self._arrays["next_active", None][sl]
        bad = live & ((actions < 0) | (actions >= self._slot_n))
        if bad.any():
            b, s = map(int, np.argwhere(bad)[0])
            raise ValueError(
                f"{self._where}.step: action {int(actions[b, s])} of game {sl.start + b} "
                f"slot {s} ({self.slot_agents[s]!r}) is outside 0..{self._slot_n[s] - 1}")
        np.copyto(self._actions[sl], actions, casting="unsafe")
        for k in ks:
            self._send(k, ("step",), "step")
            self._pending.add(k)

    def _check_actions_rows(self, actions: np.ndarray, n: int) -> np.ndarray:
        from games.actions import as_action_batch

        return as_action_batch(type(self).__name__, actions, (n, self.num_slots),
                               "(games, num_slots)" if n != self.num_games
                               else "(num_games, num_slots)")

    def wait(self, games: slice | None = None) -> VecStep:
        """Wait for the workers of `games` (default: every worker with a step in flight)
        and return a VecStep of `games`' rows (default: the whole batch)."""
        self._check_open("wait")
        if games is None:
            ks = sorted(self._pending)
            result = self._step_result
        else:
            sl, ks = self._workers_of(games, "wait")
            ks = [k for k in ks if k in self._pending]
            result = self.view(sl)
        self._collect(ks, "step")
        return result

    def close(self) -> None:
        """Stop the workers and free the shared memory (idempotent)."""
        self._closed = True
        self._pending.clear()
        self._views = {}
        self.__dict__.pop("_arrays", None)
        self.__dict__.pop("_actions", None)
        self.__dict__.pop("_step_result", None)
        self._finalizer()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.workers} workers"
        return f"ProcVec({self.name!r}, num_games={self.num_games}, {state})"
