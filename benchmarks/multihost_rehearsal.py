#!/usr/bin/env python
"""A two-node Arena run rehearsed on one machine with Linux network namespaces (run as root).

    namespace   address       what runs there
    <p>-n0      10.77.0.1/24  torchrun --node-rank 0 (rank 0: run directory, league, actors' port P)
    <p>-n1      10.77.0.2/24  torchrun --node-rank 1 (rank 1: its own actors' port P+1)
    <p>-n2      10.77.0.3/24  `arena actor --connect ...` for each rank, and actors with wrong keys
    <p>-sw      -             a bridge joining the three (veth pairs), nothing else

The addresses exist only inside the namespaces, so anything bound to 127.0.0.1 or named by
a loopback address is unreachable from the other "hosts", as on real machines. Learners use
gloo on CPU (`trainer.num_nodes=2`), serve actors only (`actors.listen=true`,
`actors.num_workers=0`) on 0.0.0.0 with CurveZMQ keys, and every rollout comes from the
remote actors in the third namespace, which connect to the addresses the ranks print.

Checks: both nodes' torchrun exit 0; rank 0 prints one "run finished"; the last checkpoint
holds `trainer.max_updates` updates and the agent-steps of both ranks' remote rollouts;
TensorBoard has `actors/rollouts_per_update` at every update; each remote actor sent
rollouts and stopped when the learner did; one run directory (nothing else under the
root); actors with a foreign key or no key are refused. Everything (processes, namespaces
and with them the veths and the bridge) is removed at the end, on failure and on Ctrl-C.

    sudo PYTHONPATH=$PWD python benchmarks/multihost_rehearsal.py [--updates 4] [--keep DIR]

Exit status 0 when every check passed, 1 when one failed, 2 when it cannot run here, 130
when interrupted (SIGINT or SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "arena-mh"
NODES = ("10.77.0.1", "10.77.0.2")
CLIENT = "10.77.0.3"
ACTOR_PORT = 47000  # rank r listens on ACTOR_PORT + r
MASTER_PORT = 29511
RUN_NAME = "rehearsal"
CONNECT_LINE = re.compile(r"rank (\d+): actors connect with `arena actor --connect (tcp://\S+)`")


class CannotRun(RuntimeError):
    """This machine cannot host the rehearsal (not root, no `ip`, no namespaces)."""


class Failed(RuntimeError):
    """A check failed; the message says which."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` failed ({proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()}")
    return proc


def probe() -> str | None:
    """Why the rehearsal cannot run here, or None when it can (a namespace is made and
    removed to find out)."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root (ip netns add)"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2)"
    name = f"{PREFIX}-probe-{os.getpid()}"
    made = sh("ip", "netns", "add", name, check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    try:
        veth = sh("ip", "link", "add", "vp0", "netns", name, "type", "veth", "peer", "name",
                  "vp1", "netns", name, check=False)
        if veth.returncode != 0:
            return f"cannot make a veth pair in a namespace: {veth.stderr.strip()}"
    finally:
        sh("ip", "netns", "del", name, check=False)
    return None


# ---- the network ------------------------------------------------------------------------------
class Network:
    """Three "hosts" (namespaces n0, n1, n2) on one bridge in a fourth (sw). `close` kills
    every process still in them and deletes them (their veths and the bridge go too)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.hosts = [f"{prefix}-n{i}" for i in range(3)]
        self.switch = f"{prefix}-sw"
        self.made: list[str] = []

    def address(self, host: int) -> str:
        return (*NODES, CLIENT)[host]

    def open(self) -> None:
        for ns in (self.switch, *self.hosts):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.switch, "link", "set", "br0", "up")
        for i, ns in enumerate(self.hosts):
            # made straight inside the namespaces: nothing appears in the root namespace
            sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name",
               f"port{i}", "netns", self.switch)
            sh("ip", "-n", self.switch, "link", "set", f"port{i}", "master", "br0")
            sh("ip", "-n", self.switch, "link", "set", f"port{i}", "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")

    def pids(self) -> list[int]:
        out: list[int] = []
        for ns in self.made:
            proc = sh("ip", "netns", "pids", ns, check=False)
            out += [int(p) for p in proc.stdout.split() if p.isdigit()]
        return out

    def close(self) -> None:
        """Kill what still runs in the namespaces (all started by this script), delete them."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while pids and time.monotonic() < deadline and self.pids():
                time.sleep(0.1)
        for ns in reversed(self.made):
            sh("ip", "netns", "del", ns, check=False)
        self.made = []


def remove_stale_namespaces() -> None:
    """Namespaces left by a rehearsal that was SIGKILLed (its pid is in their names)."""
    listing = sh("ip", "netns", "list", check=False).stdout
    for name in re.findall(rf"^({PREFIX}-(\d+)-\S+)", listing, re.MULTILINE):
        ns, pid = name
        if not Path(f"/proc/{pid}").exists():
            log(f"removing {ns}, left by a rehearsal (pid {pid}) that no longer runs")
            for p in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(p), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)


# ---- processes ----------------------------------------------------------------------------------
class Proc:
    """A command in a namespace, its output in a file."""

    def __init__(self, name: str, ns: str, argv: list[str], logdir: Path, cwd: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.ns = name, ns
        self.expected_exit = 0
        self.log_path = logdir / f"{name}.log"
        env_args = [f"{k}={v}" for k, v in {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                                              "PYTHONUNBUFFERED": "1", **(env or {})}.items()]
        self.argv = argv
        command = ["ip", "netns", "exec", ns, "env", *env_args, *argv]
        self._out = open(self.log_path, "w")
        self.popen = subprocess.Popen(command, stdout=self._out, stderr=subprocess.STDOUT,
                                      cwd=cwd, start_new_session=True)
        log(f"started {name} in {ns} (pid {self.popen.pid}): {' '.join(argv)}")

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failed(f"{self.name} did not finish within {timeout:g} s; its log ends:\n"
                         f"{tail(self.text())}") from None

    def stop(self) -> None:
        if self.popen.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(5)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._out.close()


def tail(text: str, lines: int = 25) -> str:
    """The last lines of a log, after its error lines (torchrun ends with its own summary)."""
    all_lines = text.splitlines()
    errors = [line for line in all_lines[:-lines] if ": error: " in line][-3:]
    return "\n".join("    | " + line for line in [*errors, *all_lines[-lines:]])


def torchrun() -> list[str]:
    script = Path(sys.executable).with_name("torchrun")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "torch.distributed.run"]


def arena(*args: str) -> list[str]:
    return [sys.executable, "-m", "arena", *args]


def learner_settings(updates: int, keys: Path, run_root: Path) -> list[str]:
    return ["game.options.team_size=1", "game.options.max_ticks=10", "game.num_envs=2",
            "ppo.chunk_len=8", "ppo.chunks_per_update=2", "ppo.update_epochs=1",
            "ppo.num_minibatches=1",
            "model.hidden=32", "model.lstm_hidden=32", "eval.every=0", "watch.every=0",
            "league.snapshot_every=1", "league.latest_prob=0.0", "league.bot_prob=0",
            "trainer.num_threads=1", "trainer.accelerator=cpu",
            "trainer.num_nodes=2", "trainer.devices=1", f"trainer.max_updates={updates}",
            f"trainer.checkpoint_every={updates}", "actors.listen=true", "actors.num_workers=0",
            "actors.host=0.0.0.0", f"actors.port={ACTOR_PORT}", f"actors.curve_keys={keys}",
            "actors.timeout_s=180", f"run.root={run_root}", f"run.name={RUN_NAME}"]


# ---- the rehearsal -------------------------------------------------------------------------------
def wait_for_connect_lines(learners: list[Proc], timeout: float) -> dict[int, str]:
    """Rank -> the endpoint it printed for actors."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found: dict[int, str] = {}
        for p in learners:
            for rank, endpoint in CONNECT_LINE.findall(p.text()):
                found[int(rank)] = endpoint
        if len(found) == len(learners):
            return found
        for p in learners:
            if p.popen.poll() is not None:
                raise Failed(f"{p.name} exited ({p.popen.returncode}) before serving actors:\n"
                             f"{tail(p.text())}")
        time.sleep(0.5)
    raise Failed(f"the ranks did not print where actors connect within {timeout:g} s:\n" +
                 "\n".join(f"  {p.name}:\n{tail(p.text(), 10)}" for p in learners))


def scalars(tb_dir: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags().get("scalars", []):
        return []
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def rehearse(work: Path, updates: int, timeout: float, gloo_ifname: str | None = None) -> list[str]:
    """Run it; the list of checks that passed (Failed on the first that does not)."""
    from arena.checkpoints import latest_in_run, read_checkpoint

    passed: list[str] = []

    def ok(what: str) -> None:
        passed.append(what)
        log(f"PASS  {what}")

    logs, run_root = work / "logs", work / "runs"
    logs.mkdir()
    keys, foreign, actor_keys = work / "keys", work / "foreign-keys", work / "actor-keys"
    for d in (keys, foreign):
        made = subprocess.run(arena("keys", str(d)), capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        if made.returncode != 0:
            raise Failed(f"arena keys {d}: {made.stderr.strip()}")
    actor_keys.mkdir()  # what an actor machine gets: the learner's public key, its own pair
    for name in ("server.key", "client.key", "client.key_secret"):
        shutil.copy(keys / name, actor_keys / name)
    shutil.copy(keys / "server.key", foreign / "server.key")  # knows the learner, not known
    log(f"keys: learner {keys}, actor {actor_keys}, foreign actor {foreign}")

    net = Network(f"{PREFIX}-{os.getpid()}")
    procs: list[Proc] = []
    try:
        net.open()
        for i, ns in enumerate(net.hosts):
            log(f"host {i}: namespace {ns}, eth0 {net.address(i)}/24 on bridge br0 in {net.switch}")
        for i, ns in enumerate(net.hosts):  # every host reaches every other
            for j in range(3):
                check = sh("ip", "netns", "exec", ns, sys.executable, "-c",
                           "import socket,sys; s=socket.socket(); s.settimeout(3); "
                           "r=s.connect_ex((sys.argv[1], 9)); sys.exit(0 if r in (0, 111) else r)",
                           net.address(j), check=False)
                if check.returncode != 0:  # 111: refused (nothing on port 9) = reachable
                    raise Failed(f"host {i} cannot reach {net.address(j)}: {check.stderr}")
        ok("three hosts joined by a bridge, each reaches the others' addresses")

        settings = learner_settings(updates, keys, run_root)
        learners = []
        for node, ns in enumerate(net.hosts[:2]):
            cwd = work / f"node{node}"
            cwd.mkdir()
            learners.append(Proc(
                f"learner-node{node}", ns,
                [*torchrun(), "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(node),
                 "--master-addr", NODES[0], "--master-port", str(MASTER_PORT),
                 "-m", "arena", "train", *settings],
                logs, cwd, env={"GLOO_SOCKET_IFNAME": gloo_ifname} if gloo_ifname else None))
        procs += learners
        endpoints = wait_for_connect_lines(learners, timeout=min(timeout, 240))
        for p in learners:
            for line in p.text().splitlines():
                if "gloo uses" in line:
                    log(f"{p.name}: {line}")
        for rank, endpoint in sorted(endpoints.items()):
            log(f"rank {rank} says: actors connect to {endpoint}")
        expected = {r: f"tcp://{NODES[r]}:{ACTOR_PORT + r}" for r in range(2)}
        if endpoints != expected:
            raise Failed(f"the ranks print {endpoints}, but actors on other hosts reach them "
                         f"at {expected}")
        ok("each rank prints an actor address on its own host")

        # actors the learner must refuse: a key it does not know, and no key at all
        bad = [Proc("actor-foreign-key", net.hosts[2],
                    arena("actor", "--connect", endpoints[0], "--keys", str(foreign),
                          "--timeout", "6"), logs, work),
               Proc("actor-no-key", net.hosts[2],
                    arena("actor", "--connect", endpoints[0], "--timeout", "6"), logs, work)]
        procs += bad
        for p in bad:
            code = p.wait(120)
            if code != 2 or "no answer from the learner" not in p.text():
                raise Failed(f"{p.name} was not refused (exit {code}):\n{tail(p.text())}")
            p.expected_exit = code
            log(f"{p.name} exited {code}: {p.text().strip().splitlines()[-1]}")
        ok("actors with a foreign key or no key are refused (no answer, exit 2)")

        actors = [Proc(f"actor-rank{rank}", net.hosts[2],
                       arena("actor", "--connect", endpoint, "--keys", str(actor_keys),
                             "--timeout", "60"), logs, work)
                  for rank, endpoint in sorted(endpoints.items())]
        procs += actors
        codes = [p.wait(timeout) for p in learners]
        for p, code in zip(learners, codes):
            if code != 0:
                raise Failed(f"{p.name} exited {code}:\n{tail(p.text(), 40)}")
        ok("both nodes' torchrun exited 0")
        finished = [[line for line in p.text().splitlines() if line.startswith("run finished")]
                    for p in learners]
        if len(finished[0]) != 1 or finished[1]:
            raise Failed(f"expected one 'run finished' line, from node 0: {finished}")
        ok(f"rank 0 reports: {finished[0][0]}")
        sent = []
        for p in actors:
            code = p.wait(60)
            m = re.search(r"the learner stopped; (\d+) rollouts sent", p.text())
            if code != 0 or m is None or int(m.group(1)) < updates:
                raise Failed(f"{p.name} (exit {code}) did not serve its rank to the end:\n"
                             f"{tail(p.text())}")
            sent.append(int(m.group(1)))
        ok(f"remote actors sent {sent} rollouts and stopped with the learner")

        runs = sorted(p.name for p in run_root.iterdir())
        if runs != [RUN_NAME]:
            raise Failed(f"expected one run directory {run_root / RUN_NAME}, found {runs}")
        for node in range(2):  # nothing written relative to a node's working directory
            if any((work / f"node{node}").iterdir()):
                raise Failed(f"node {node} wrote into its working directory: "
                             f"{sorted(os.listdir(work / f'node{node}'))}")
        run_dir = run_root / RUN_NAME
        ok(f"one run directory: {run_dir}")

        state = read_checkpoint(latest_in_run(run_dir))["arena"]
        games, agents, steps = 2, 2, 16  # game.num_envs, 1v1, chunk_len * chunks
        expected_steps = updates * 2 * games * agents * steps
        if state["updates"] != updates or state["agent_steps"] != expected_steps:
            raise Failed(f"checkpoint: updates {state['updates']}, agent-steps "
                         f"{state['agent_steps']}; expected {updates} and "
                         f"{expected_steps} (both ranks)")
        ok(f"checkpoint: {state['updates']} updates, {state['agent_steps']} agent-steps "
           f"(2 ranks x {updates} updates x {games} games x {agents} agents x {steps} steps)")
        per_update = scalars(run_dir / "tb", "actors/rollouts_per_update")
        staleness = scalars(run_dir / "tb", "actors/staleness_max")
        if len(per_update) < updates or any(v != 1 for _, v in per_update):
            raise Failed(f"TensorBoard actors/rollouts_per_update: {per_update}; expected one "
                         f"actor rollout in each of {updates} updates")
        ok(f"TensorBoard: actors/rollouts_per_update {[v for _, v in per_update]}, "
           f"actors/staleness_max {[v for _, v in staleness]}")
        pool_file = run_dir / "league" / "hero" / "pool.json"
        pool = json.loads(pool_file.read_text()) if pool_file.is_file() else {"snapshots": []}
        played = sum(s["games"] for s in pool["snapshots"])
        if len(pool["snapshots"]) != updates or played == 0:
            raise Failed(f"{pool_file}: {len(pool['snapshots'])} snapshots, {played} games "
                         f"against them; expected {updates} and some games (the remote actors "
                         f"fetch snapshots from rank 0 and report their results)")
        ok(f"league on rank 0: {len(pool['snapshots'])} snapshots, {played} games against them "
           f"played by the remote actors and reported to rank 0")
        return passed
    except Failed:
        for p in procs:
            if p.popen.poll() != p.expected_exit:
                log(f"log of {p.name} (exit {p.popen.poll()}):\n{tail(p.text(), 15)}")
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not stop teardown
            signal.signal(sig, signal.SIG_IGN)
        for p in procs:
            p.stop()
        left = net.pids()
        net.close()
        log(f"teardown: processes stopped ({len(left)} still in the namespaces were killed), "
            f"namespaces {', '.join([net.switch, *net.hosts])} deleted")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=4, help="trainer.max_updates (default 4)")
    parser.add_argument("--timeout", type=float, default=480.0,
                        help="seconds the learners may take (default 480)")
    parser.add_argument("--gloo-ifname", metavar="IF", default=None,
                        help="set GLOO_SOCKET_IFNAME for the learners (default: unset, as "
                             "arena train chooses)")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="work in DIR (created; logs, keys and the run stay) instead of a "
                             "temporary folder that is removed")
    args = parser.parse_args(argv)
    reason = probe()
    if reason is not None:
        print(f"multihost rehearsal: cannot run here: {reason}", file=sys.stderr)
        return 2
    remove_stale_namespaces()

    def interrupted(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupted)
    t0 = time.monotonic()
    if args.keep:
        work = Path(args.keep).resolve()
        work.mkdir(parents=True, exist_ok=False)
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="arena-multihost-")
        work = Path(cleanup.name)
    log(f"work folder {work}; code {ROOT}; {args.updates} updates")
    try:
        passed = rehearse(work, args.updates, args.timeout, args.gloo_ifname)
    except Failed as exc:
        log(f"FAIL  {exc}")
        log(f"multihost rehearsal FAILED after {time.monotonic() - t0:.0f} s")
        return 1
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc or 'SIGINT'}); everything was torn down")
        return 130
    finally:
        if cleanup is not None:
            cleanup.cleanup()
    log(f"multihost rehearsal PASSED: {len(passed)} checks in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
