"""Chaos run: training with actor processes while a random actor or the learner is SIGKILLed
every 1-3 minutes; at the end, checks that the run survived all of it.

    python benchmarks/chaos.py [CONFIG] [--minutes 20] [--kill-every 60-180] [--seed 0]
                               [--workers 2] [--learner-share 0.5] [--eval-games 100]
                               [--target 0.95] [--root runs] [--name NAME] [key=value ...]

Trains CONFIG (default configs/default.yaml) with `actors.num_workers=--workers` actor
processes as `python -m arena train` in runs/NAME (default chaos-<date>-<time>). From the
first update on (start-up is not counted in `--minutes`), every
`--kill-every` seconds (uniform between MIN and MAX, seeded) a victim is SIGKILLed: the
learner with probability `--learner-share`, else an actor drawn uniformly. After a learner
kill, its actors must exit by themselves (the orphan check), and the run goes on with
`python -m arena train --resume RUN_DIR`; after an actor kill, the learner must start a new
actor in its place. The next kill waits until the run has recovered (a new progress line
after a resume; a new actor). At `--minutes` the learner is stopped with SIGTERM (a clean
stop: it saves a checkpoint and exits 143), then the checks run:

  counters   every resume starts from the newest checkpoint at the kill (the update in
             config_history.jsonl is that checkpoint's), which is never older than the
             last `checkpoint_every` multiple the learner had passed; updates and
             agent-steps only go forward within a learner's life, and no update adds more
             agent-steps than one update's rollouts hold (no reset, no jump); the final
             checkpoint holds the last life's counters. Work lost to kills is the updates
             redone: last update seen before each learner kill minus the update resumed from
             (a lower bound: progress lines come every 5 s at most).
  processes  no actor (or other child) of a killed learner outlives it by more than
             `--orphan-grace` s; a killed actor is replaced within `--restart-grace` s;
             nothing of the run is left running at the end.
  pools      every snapshot in every league/<role>/pool.json exists, loads (safetensors)
             and fits the run's networks (strict load_state_dict).
  files      every *.json / *.jsonl line / *.yaml parses, every *.ckpt reads with
             torch.load(weights_only=True) and holds Arena counters, every *.safetensors
             loads, and no temporary file of an atomic write is left (a killed write can
             leave one; `arena train --resume` removes them, and the run ends with a clean
             stop). TensorBoard event files are append-only logs (a killed write may cut
             their last record, which readers skip): not checked.
  strength   the final checkpoint beats `random` in >= `--target` of `--eval-games` games
             (seeded; each team in turn), through the project's evaluator.

Everything is logged in RUN_DIR-chaos/: kills.jsonl (time, victim, pid, the update at the
kill, the newest checkpoint then, the checkpoint the resume started from, recovery),
learner-N.log (each life's output) and report.json. Exit status 0 when every check passes,
1 otherwise. A progress line every 30 s: elapsed, kills, update, rate.

Config overrides given by default (each can be given again): actors.num_workers, and
actors.num_envs = game.num_envs / workers (so an update trains on as many games as the
in-process default config does), trainer.checkpoint_every=5 (a learner killed every few
minutes would otherwise lose up to 25 updates each time), trainer.num_threads=1,
actors.threads=1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/chaos.py` from anywhere
    sys.path.insert(0, str(ROOT))

PROGRESS = re.compile(r"^update (\d+)/(\d+) \| ([\d,]+) agent-steps")
RESTARTED = re.compile(r"^actor (\d+) died \(exit code (-?\d+|None)\); restarting it")


# ---- processes -----------------------------------------------------------------------------
def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name may hold spaces and parentheses
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """Running (a zombie has exited: only its exit status waits to be collected)."""
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def children(pid: int) -> list[int]:
    """Live child processes of `pid`."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] == pid and st[0] not in ("Z", "X"):
                out.append(int(entry.name))
    return sorted(out)


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return sorted(out)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def actor_pids(learner: int) -> list[int]:
    """The learner's actor processes: its children started by multiprocessing's spawn (the
    Supervisor's; multiprocessing's resource tracker is a child too, but no actor)."""
    return [p for p in children(learner) if "spawn_main" in cmdline(p)]


def wait_gone(pids: list[int], seconds: float) -> list[int]:
    """Wait up to `seconds` for every pid to exit; the ones still running."""
    deadline = time.monotonic() + seconds
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.2)


# ---- the learner, one life at a time -------------------------------------------------------
@dataclass
class Life:
    """One learner process: how it started and the counters its progress lines showed."""

    index: int
    pid: int
    started: float  # seconds since the chaos run began
    resumed_from: dict[str, Any] | None  # the newest checkpoint when it was started
    history_update: int | None = None  # the update config_history.jsonl recorded for it
    progress: list[tuple[float, int, int]] = field(default_factory=list)  # (t, update, steps)
    restarts: list[tuple[float, int]] = field(default_factory=list)  # (t, actor id) it logged
    ended: float | None = None
    exit_code: int | None = None
    killed: bool = False


class Learner:
    """A running `python -m arena train` whose output goes to a log file and is parsed."""

    def __init__(self, life: Life, proc: subprocess.Popen, log: Path, t0: float) -> None:
        self.life, self.proc, self.t0 = life, proc, t0
        self.lines: list[str] = []
        self._log = open(log, "w")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, args: list[str], index: int, resumed_from: dict[str, Any] | None,
              log: Path, t0: float) -> Learner:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(  # the learner and its actors run this checkout
            [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        env.setdefault("PYTHONUNBUFFERED", "1")
        proc = subprocess.Popen([sys.executable, "-m", "arena", "train", *args], cwd=ROOT,
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        life = Life(index, proc.pid, time.monotonic() - t0, resumed_from)
        return cls(life, proc, log, t0)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._log.write(line)
            self._log.flush()
            line = line.rstrip("\n")
            self.lines.append(line)
            now = time.monotonic() - self.t0
            m = PROGRESS.match(line)
            if m:
                self.life.progress.append((now, int(m.group(1)), int(m.group(3).replace(",", ""))))
            m = RESTARTED.match(line)
            if m:
                self.life.restarts.append((now, int(m.group(1))))
        self._log.close()

    def running(self) -> bool:
        return self.proc.poll() is None

    def finish(self, killed: bool) -> None:
        self.life.exit_code = self.proc.wait()
        self._thread.join(10)
        self.life.ended = time.monotonic() - self.t0
        self.life.killed = killed

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.lines[-n:])


# ---- checkpoints and counters --------------------------------------------------------------
def newest_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The checkpoint a resume would start from now: file, update, agent-steps."""
    from arena.checkpoints import latest_in_run, read_checkpoint

    path = latest_in_run(run_dir)
    if path is None:
        return None
    state = read_checkpoint(path)["arena"]
    return {"file": path.name, "update": int(state["updates"]),
            "agent_steps": int(state["agent_steps"])}


def history_updates(run_dir: Path) -> list[int]:
    """The update each start of the run took effect at (config_history.jsonl)."""
    path = run_dir / "config_history.jsonl"
    if not path.is_file():
        return []
    return [int(json.loads(line)["update"]) for line in path.read_text().splitlines() if line]


def steps_per_update_bound(config: dict[str, Any], num_agents: int) -> int:
    """The most agent-steps one update can add: every agent of every game of every rollout
    it takes, for every step of the rollout."""
    a, p = config["actors"], config["ppo"]
    games = a.get("num_envs") or config["game"]["num_envs"]
    rollouts = a.get("rollouts_per_update") or max(int(a.get("num_workers") or 0), 1)
    return rollouts * games * p["chunk_len"] * p["chunks_per_update"] * num_agents


def check_counters(lives: list[dict[str, Any]], final: dict[str, Any], every: int,
                   max_steps: int) -> tuple[list[str], dict[str, int]]:
    """The counter checks over the lives of a run (dicts as `asdict(Life)`, oldest first;
    `final` the newest checkpoint after the clean stop). Returns (failures, summary).

    A life ends at the higher of its last progress line and the checkpoint the next life
    resumed from (a line may be skipped: they come every 5 s at most); the last life ends
    at the final checkpoint. Updates redone = a killed life's end - the next life's start."""
    failures: list[str] = []
    starts = [(0, 0) if life["resumed_from"] is None else
              (int(life["resumed_from"]["update"]), int(life["resumed_from"]["agent_steps"]))
              for life in lives]
    done = redone = 0
    for i, life in enumerate(lives):
        u0, s0 = starts[i]
        if i == 0 and life["resumed_from"] is not None:
            failures.append("life 0 started from a checkpoint: the run was not new")
        if i > 0 and life["resumed_from"] is None:
            failures.append(f"life {i}: started without a checkpoint to resume from")
        if life["history_update"] is not None and life["history_update"] != u0:
            failures.append(f"life {i}: config_history.jsonl says it started at update "
                            f"{life['history_update']}, the newest checkpoint held {u0}")
        if u0 > 0 and not 0 < s0 <= u0 * max_steps:
            failures.append(f"life {i}: checkpoint of update {u0} holds {s0} agent-steps "
                            f"(expected 1..{u0 * max_steps})")
        pu, ps = u0, s0
        for _, u, s in life["progress"]:  # forward only, and no jump
            if u <= pu:
                failures.append(f"life {i}: update went from {pu} to {u}")
            elif not 0 < s - ps <= (u - pu) * max_steps:
                failures.append(f"life {i}: agent-steps went from {ps} to {s} over updates "
                                f"{pu}->{u} (at most {max_steps} per update)")
            pu, ps = max(pu, u), s
        if i + 1 < len(lives):
            nu, ns = starts[i + 1]
            owed = (pu - 1) // every * every if pu > 0 else 0  # written before update pu began
            if nu < owed:
                failures.append(f"life {i + 1}: resumed from update {nu}, but the checkpoint "
                                f"of update {owed} had been written (life {i} showed update {pu})")
            if nu < u0:
                failures.append(f"life {i + 1}: resumed from update {nu}, before life {i}'s "
                                f"start ({u0})")
            elif nu > pu and not 0 < ns - ps <= (nu - pu) * max_steps:
                failures.append(f"life {i + 1}: resumed with {ns} agent-steps at update {nu}; "
                                f"life {i} showed {ps} at update {pu}")
            end = max(pu, nu)
            redone += end - nu
        else:
            if final["update"] < pu or (final["update"] == pu and final["agent_steps"] != ps) \
                    or (final["update"] > pu and not 0 < final["agent_steps"] - ps
                        <= (final["update"] - pu) * max_steps):
                failures.append(f"the final checkpoint holds update {final['update']} with "
                                f"{final['agent_steps']} agent-steps; the last life showed "
                                f"update {pu} with {ps}")
            end = final["update"]
        done += end - u0
    if done - redone != final["update"]:
        failures.append(f"updates do not add up: {done} done - {redone} redone != "
                        f"{final['update']} in the final checkpoint")
    # agent-steps per update is one number in a game where every agent always acts (MOBA):
    # then every counter pair must sit on that line
    k, rem = divmod(final["agent_steps"], max(final["update"], 1))
    pairs = [(u, s) for life in lives for _, u, s in life["progress"]] + \
        [st for st, life in zip(starts, lives) if life["resumed_from"]]
    exact = rem == 0 and bool(pairs) and all(s == u * k for u, s in pairs)
    summary = {"final_update": final["update"], "final_agent_steps": final["agent_steps"],
               "updates_done": done, "updates_redone": redone,
               "agent_steps_per_update": k if exact else -1}
    return failures, summary


# ---- files and pools -----------------------------------------------------------------------
def check_files(run_dir: Path) -> tuple[list[str], dict[str, int]]:
    """Every file of the run reads back whole (see the module docstring); (failures, counts)."""
    import yaml
    from safetensors.torch import load_file

    from arena.checkpoints import CheckpointError, read_checkpoint
    from arena.rundir import TEMPORARY

    failures: list[str] = []
    counts: dict[str, int] = {}
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(run_dir)
        kind = path.suffix or path.name
        try:
            if TEMPORARY.match(path.name):
                failures.append(f"{rel}: a temporary file of an atomic write was left behind")
                continue
            if path.suffix == ".json":
                json.loads(path.read_bytes())
            elif path.suffix == ".jsonl":
                for n, line in enumerate(path.read_text().splitlines(), 1):
                    try:
                        json.loads(line)
                    except ValueError as exc:
                        raise ValueError(f"line {n}: {exc}") from None
            elif path.suffix in (".yaml", ".yml"):
                yaml.safe_load(path.read_text())
            elif path.suffix == ".ckpt":
                int(read_checkpoint(path)["arena"]["updates"])
            elif path.suffix == ".safetensors":
                load_file(str(path), device="cpu")
            elif path.name.startswith("events.out.tfevents") or path.name == ".lock":
                pass  # append-only TensorBoard logs; the lock file holds only a pid
            else:
                failures.append(f"{rel}: an unexpected file in the run")
                continue
            counts[kind] = counts.get(kind, 0) + 1
        except (CheckpointError, ValueError, KeyError, TypeError, OSError,
                yaml.YAMLError, Exception) as exc:  # noqa: BLE001 - whatever fails to read
            failures.append(f"{rel}: does not read back ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})")
    return failures, counts


def check_pools(run_dir: Path, learner: Any) -> tuple[list[str], dict[str, int]]:
    """Every snapshot every pool index lists exists, loads and fits `learner`'s networks."""
    from safetensors.torch import load_file

    from arena.learn.networks import group_module_key
    from arena.learn.opponents import group_weights
    from league.pool import INDEX, entries_from_state

    failures: list[str] = []
    sizes: dict[str, int] = {}
    indexes = sorted((run_dir / "league").glob(f"*/{INDEX}"))
    if learner.cfg.league.enabled and not indexes:
        failures.append("league: no pool.json in the run")
    for index in indexes:
        role = index.parent.name
        groups = [g for g in learner.groups if g.role.name == role]
        if not groups:
            failures.append(f"{index}: role {role!r} has no network in the run")
            continue
        try:
            snapshots, _ = entries_from_state(json.loads(index.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            failures.append(f"{index}: not a valid pool index ({exc})")
            continue
        sizes[role] = len(snapshots)
        for snap in snapshots:
            path = index.parent / snap.file
            try:
                weights = load_file(str(path), device="cpu")
                for g in groups:  # strict: every key, every shape
                    learner.policy_for(g.key).load_state_dict(
                        group_weights(weights, group_module_key(g.key)))
            except Exception as exc:  # noqa: BLE001 - missing, unreadable or not fitting
                failures.append(f"{path}: snapshot {snap.id} does not load into the run's "
                                f"network ({type(exc).__name__}: {str(exc).splitlines()[0]})")
    return failures, sizes


def win_rate_vs_random(checkpoint: Path, games: int, seed: int) -> float:
    """The checkpoint's score against `random` (win 1, draw 0.5) over `games` games, each
    team in turn, through the project's evaluator."""
    from arena.checkpoints import load_learner
    from arena.play.evaluate import play_vs_bots
    from games.registry import RANDOM_BOT

    learner = load_learner(checkpoint)
    per_side = max(1, math.ceil(games / max(len(learner.team_names), 1)))
    return float(play_vs_bots(learner, [RANDOM_BOT], per_side, seed)[RANDOM_BOT].mean())


# ---- the run -------------------------------------------------------------------------------
def parse_span(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MIN-MAX seconds, e.g. 60-180") \
            from None
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 < MIN <= MAX")
    return lo, hi


class Chaos:
    """The chaos run: starts the learner, kills on schedule, resumes, logs, checks."""

    def __init__(self, args: argparse.Namespace, say: Callable[[str], None] = print) -> None:
        self.args, self.say = args, say
        self.rng = random.Random(args.seed)
        name = args.name or f"chaos-{datetime.now():%Y%m%d-%H%M%S}"
        self.run_dir = Path(args.root).expanduser().resolve() / name
        self.out = self.run_dir.with_name(self.run_dir.name + "-chaos")
        self.kills: list[dict[str, Any]] = []
        self.lives: list[Life] = []
        self.failures: list[str] = []
        self.seen: set[int] = set()  # every process of the run ever seen (learners, actors)
        self.t0 = time.monotonic()
        self.learner: Learner | None = None
        self.chaos_start = (0.0, 0)  # (time, update) of the first update: the kills begin

    def now(self) -> float:
        return time.monotonic() - self.t0

    def first_args(self) -> list[str]:
        a = self.args
        from arena.config import load_config

        base = load_config(a.config, [])
        per_actor = max(1, base.game.num_envs // a.workers)
        defaults = [f"actors.num_workers={a.workers}", f"actors.num_envs={per_actor}",
                    "trainer.checkpoint_every=5", "trainer.num_threads=1", "actors.threads=1"]
        return [*([a.config] if a.config else []), *defaults, *a.overrides,
                f"run.root={self.run_dir.parent}", f"run.name={self.run_dir.name}"]

    def start_learner(self, resume: dict[str, Any] | None) -> None:
        index = len(self.lives)
        args = ["--resume", str(self.run_dir)] if resume is not None or index else \
            self.first_args()
        self.learner = Learner.start(args, index, resume, self.out / f"learner-{index}.log",
                                     self.t0)
        self.lives.append(self.learner.life)
        self.seen.add(self.learner.life.pid)
        how = f"resumed from {resume['file']} (update {resume['update']})" if resume else "new"
        self.say(f"[{_mmss(self.now())}] learner life {index} pid {self.learner.life.pid}: {how}")

    def log_kill(self, record: dict[str, Any]) -> None:
        self.kills.append(record)
        with open(self.out / "kills.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        self.say(f"[{_mmss(self.now())}] kill at {_mmss(record['t'])}: {record['victim']} pid {record['pid']} at update "
                 f"{record['update_at_kill']}: {record['recovery']}")

    def last_update(self) -> tuple[int, int]:
        progress = self.learner.life.progress
        return (progress[-1][1], progress[-1][2]) if progress else (-1, -1)

    def wait_recovered(self, since: int) -> None:
        """Until the current learner shows a progress line past `since` lines, or fails."""
        deadline = time.monotonic() + self.args.restart_grace
        while len(self.learner.life.progress) <= since:
            if not self.learner.running():
                self.learner.finish(killed=False)
                raise RuntimeError(f"learner life {self.learner.life.index} exited with "
                                   f"{self.learner.life.exit_code}:\n{self.learner.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"learner life {self.learner.life.index} showed no progress "
                                   f"for {self.args.restart_grace:g} s:\n{self.learner.tail()}")
            time.sleep(0.2)

    def kill_learner(self) -> None:
        life = self.learner.life
        kids = descendants(life.pid)
        self.seen.update(kids)
        update, steps = self.last_update()
        t = self.now()
        os.kill(life.pid, signal.SIGKILL)
        self.say(f"[{_mmss(t)}] SIGKILL learner pid {life.pid} (last progress: update {update})")
        self.learner.finish(killed=True)
        at_kill = newest_checkpoint(self.run_dir)
        left = wait_gone(kids, self.args.orphan_grace)
        if left:
            self.failures.append(f"learner kill at {_mmss(t)}: its processes {left} still ran "
                                 f"{self.args.orphan_grace:g} s later ({[cmdline(p)[:80] for p in left]})")
            for pid in left:  # do not let them disturb the rest of the run
                _kill(pid)
        gone_after = self.now() - t
        self.start_learner(at_kill)
        self.wait_recovered(0)
        history = history_updates(self.run_dir)
        self.learner.life.history_update = history[-1] if history else None
        self.seen.update(descendants(self.learner.life.pid))
        self.log_kill({
            "t": round(t, 1), "victim": "learner", "pid": life.pid, "life": life.index,
            "update_at_kill": max(update, at_kill["update"] if at_kill else 0),
            "last_progress": [update, steps], "checkpoint_at_kill": at_kill,
            "resumed_from": at_kill, "children_at_kill": kids, "children_left": left,
            "children_gone_s": round(gone_after, 1),
            "redone_updates": max(update - at_kill["update"], 0) if at_kill else None,
            "recovery": f"{len(kids)} children gone after {gone_after:.1f} s, resumed from "
                        f"{at_kill['file'] if at_kill else None} (update "
                        f"{at_kill['update'] if at_kill else None}), first update after "
                        f"{self.learner.life.progress[0][0] - t:.0f} s",
        })

    def kill_actor(self) -> None:
        life = self.learner.life
        actors = actor_pids(life.pid)
        if not actors:
            self.say(f"[{_mmss(self.now())}] no actor to kill (learner pid {life.pid})")
            return
        victim = self.rng.choice(actors)
        self.seen.update(actors)
        update, _ = self.last_update()
        at_kill = newest_checkpoint(self.run_dir)
        t = self.now()
        logged = len(life.restarts)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + self.args.restart_grace
        new: list[int] = []
        while time.monotonic() < deadline and self.learner.running():
            new = [p for p in actor_pids(life.pid) if p not in actors]
            if new and len(life.restarts) > logged:
                break
            time.sleep(0.2)
        recovered = bool(new) and len(life.restarts) > logged
        if not recovered:
            self.failures.append(f"actor kill at {_mmss(t)} (pid {victim}): no new actor within "
                                 f"{self.args.restart_grace:g} s")
        self.seen.update(new)
        self.log_kill({
            "t": round(t, 1), "victim": "actor", "pid": victim, "life": life.index,
            "update_at_kill": update, "checkpoint_at_kill": at_kill, "resumed_from": None,
            "replaced_by": new, "replaced_after_s": round(self.now() - t, 1),
            "recovery": (f"replaced by pid {new[0]} after {self.now() - t:.1f} s"
                         if recovered else "NOT replaced"),
        })

    def progress_line(self) -> None:
        kills = len(self.kills)
        by = sum(k["victim"] == "learner" for k in self.kills)
        update, steps = self.last_update()
        t_start, u_start = self.chaos_start
        minutes = max((self.now() - t_start) / 60, 1e-9)
        redone = sum(k.get("redone_updates") or 0 for k in self.kills)
        self.say(f"[{_mmss(self.now())}] chaos | kills {kills} (learner {by}, actor {kills - by}) "
                 f"| update {update} | {steps:,} agent-steps | "
                 f"{(update - u_start) / minutes:.1f} updates/min net, "
                 f"{(update - u_start + redone) / minutes:.1f} with the {redone} redone")

    def run(self) -> int:
        a = self.args
        if self.run_dir.exists():
            raise SystemExit(f"{self.run_dir} exists; give another --name")
        self.out.mkdir(parents=True)
        (self.out / "kills.jsonl").write_text("")
        self.say(f"chaos run: {self.run_dir} for {a.minutes:g} min, a kill every "
                 f"{a.kill_every[0]:g}-{a.kill_every[1]:g} s (seed {a.seed}); log in {self.out}")
        try:
            self.start_learner(None)
            self.wait_recovered(0)
            history = history_updates(self.run_dir)
            self.learner.life.history_update = history[-1] if history else None
            end = self.now() + a.minutes * 60  # the chaos lasts --minutes from the first update
            self.chaos_start = (self.now(), self.last_update()[0])
            self.say(f"[{_mmss(self.now())}] first update: the kills begin")
            next_kill = self.now() + self.rng.uniform(*a.kill_every)
            next_line = self.now() + 30
            while self.now() < end:
                if not self.learner.running():
                    self.learner.finish(killed=False)
                    raise RuntimeError(f"learner life {self.learner.life.index} exited with "
                                       f"{self.learner.life.exit_code}:\n{self.learner.tail()}")
                self.seen.update(descendants(self.learner.life.pid))
                if self.now() >= next_kill:
                    # no learner kill before the first checkpoint: there would be nothing to
                    # resume (the draw is made anyway, so the schedule stays seeded)
                    if self.rng.random() < a.learner_share and \
                            newest_checkpoint(self.run_dir) is not None:
                        self.kill_learner()
                    else:
                        self.kill_actor()
                    next_kill = self.now() + self.rng.uniform(*a.kill_every)
                if self.now() >= next_line:
                    self.progress_line()
                    next_line = self.now() + 30  # not a burst after a long recovery
                time.sleep(0.5)
            self.stop()
        except BaseException:
            self.cleanup()
            raise
        return self.check()

    def stop(self) -> None:
        """The clean end: SIGTERM, the learner saves and exits 143; its actors exit."""
        life = self.learner.life
        kids = descendants(life.pid)
        self.seen.update(kids)
        self.say(f"[{_mmss(self.now())}] stopping the learner (SIGTERM)")
        self.learner.proc.send_signal(signal.SIGTERM)
        try:
            self.learner.proc.wait(self.args.stop_grace)
        except subprocess.TimeoutExpired:
            self.failures.append(f"the learner did not stop within {self.args.stop_grace:g} s "
                                 f"of SIGTERM")
            _kill(life.pid)
        self.learner.finish(killed=False)
        if life.exit_code != 128 + signal.SIGTERM:
            self.failures.append(f"the learner exited with {life.exit_code} after SIGTERM "
                                 f"(expected {128 + signal.SIGTERM}):\n{self.learner.tail()}")
        left = wait_gone(kids, self.args.orphan_grace)
        if left:
            self.failures.append(f"after the clean stop, processes {left} still ran")

    def cleanup(self) -> None:
        """On a failure of the chaos run itself: nothing of the run may stay running."""
        for pid in sorted(self.seen | set(descendants(os.getpid()))):
            if pid != os.getpid() and alive(pid):
                _kill(pid)

    def check(self) -> int:
        from arena.checkpoints import latest_in_run, load_learner

        a = self.args
        left = [p for p in self.seen if alive(p)]
        if left:
            self.failures.append(f"processes of the run still running at the end: {left}")
            self.cleanup()
        final = newest_checkpoint(self.run_dir)
        learner = load_learner(latest_in_run(self.run_dir))
        lives = [asdict(life) for life in self.lives]
        max_steps = steps_per_update_bound(learner.hparams["config"], len(learner.slot_agents))
        counters, summary = check_counters(lives, final, learner.cfg.trainer.checkpoint_every,
                                           max_steps)
        pools, sizes = check_pools(self.run_dir, learner)
        files, counts = check_files(self.run_dir)
        rate = win_rate_vs_random(latest_in_run(self.run_dir), a.eval_games, a.seed + 99)
        strength = [] if rate >= a.target else [
            f"the final policy scores {rate:.3f} against random (target {a.target})"]
        restarts = sum(len(life.restarts) for life in self.lives)
        results = {"counters": counters, "processes": list(self.failures), "pools": pools,
                   "files": files, "strength": strength}
        by = sum(k["victim"] == "learner" for k in self.kills)
        self.say("")
        self.say(f"chaos run {self.run_dir}: {_mmss(self.now())} wall, {len(self.kills)} kills "
                 f"(learner {by}, actor {len(self.kills) - by}), {len(self.lives)} learner lives, "
                 f"{restarts} actor restarts logged by the learner")
        self.say(f"  final: update {summary['final_update']}, {summary['final_agent_steps']:,} "
                 f"agent-steps ({final['file']}); updates done {summary['updates_done']}, "
                 f"redone after kills {summary['updates_redone']} (work lost, a lower bound)"
                 + (f"; agent-steps = updates x {summary['agent_steps_per_update']} throughout"
                    if summary["agent_steps_per_update"] > 0 else ""))
        self.say(f"  pools: {sizes}; files read back: {counts}")
        self.say(f"  final policy vs random: {rate:.3f} over {a.eval_games} games "
                 f"(target {a.target})")
        for name, fails in results.items():
            self.say(f"  {name:10s} {'OK' if not fails else 'FAILED'}")
            for f in fails[:20]:
                self.say(f"      {f}")
        report = {"run_dir": str(self.run_dir), "args": {**vars(a), "kill_every": a.kill_every},
                  "kills": self.kills, "lives": lives, "summary": summary, "pools": sizes,
                  "files": counts, "win_rate_vs_random": rate, "failures": results}
        from games.files import atomic_write_bytes

        atomic_write_bytes(self.out / "report.json", json.dumps(report, indent=1).encode())
        ok = not any(results.values())
        self.say("chaos: all checks passed" if ok else "chaos: CHECKS FAILED")
        return 0 if ok else 1


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _mmss(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", default=None,
                   help="config file (default configs/default.yaml); key=value overrides follow")
    p.add_argument("overrides", nargs="*", help="config overrides key=value")
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--kill-every", type=parse_span, default=(60.0, 180.0), metavar="MIN-MAX",
                   help="seconds between kills, uniform (default 60-180)")
    p.add_argument("--seed", type=int, default=0, help="kill schedule and victims; run.seed too")
    p.add_argument("--workers", type=int, default=2, help="actor processes (>= 2)")
    p.add_argument("--learner-share", type=float, default=0.5,
                   help="chance that a kill takes the learner rather than an actor")
    p.add_argument("--eval-games", type=int, default=100)
    p.add_argument("--target", type=float, default=0.95, help="score against random to reach")
    p.add_argument("--root", default="runs")
    p.add_argument("--name", default=None)
    p.add_argument("--orphan-grace", type=float, default=60.0,
                   help="seconds a killed learner's actors may take to exit")
    p.add_argument("--restart-grace", type=float, default=180.0,
                   help="seconds to recover from a kill (new actor, resumed learner's progress)")
    p.add_argument("--stop-grace", type=float, default=300.0,
                   help="seconds the learner may take to stop after SIGTERM")
    args = p.parse_args(argv)
    if args.config is not None and "=" in args.config and not os.path.exists(args.config):
        args.overrides.insert(0, args.config)
        args.config = None
    if args.workers < 2:
        p.error("--workers: at least 2 actor processes")
    if not any(o.startswith("run.seed=") for o in args.overrides):
        args.overrides.append(f"run.seed={args.seed}")
    return args


def main(argv: list[str] | None = None) -> int:
    return Chaos(parse_args(argv), say=lambda s: print(s, flush=True)).run()


if __name__ == "__main__":
    sys.exit(main())
