"""Several machines: the two-node rehearsal in network namespaces
(benchmarks/multihost_rehearsal.py) and the fixes it led to: each rank names its actor
address by its own host, gloo gets an interface other machines reach, and a remote actor
stops cleanly when rank 0 has finished while it waited for it."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from arena.config import load_config, to_dict
from arena.scale import distributed
from arena.scale.actors import STOP_VERSION, ActorService, run_actor
from arena.scale.transport import encode_weights

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "multihost_rehearsal.py"
sys.path.insert(0, str(SCRIPT.parent))
import multihost_rehearsal as rehearsal

CANNOT = rehearsal.probe()  # None where namespaces can be made (root, `ip`, netns works)
needs_netns = pytest.mark.skipif(CANNOT is not None, reason=f"multihost rehearsal: {CANNOT}")


def _our_namespaces(pid: int) -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                             check=False).stdout
    return re.findall(rf"^({rehearsal.PREFIX}-{pid}-\S+)", listing, re.MULTILINE)


# ---- the rehearsal -------------------------------------------------------------------------
@pytest.mark.slow
@needs_netns
def test_two_node_rehearsal_passes_and_leaves_nothing_behind():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--updates", "4"], capture_output=True,
                          text=True, timeout=900, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "multihost rehearsal PASSED" in out
    for check in ("each rank prints an actor address on its own host",
                  "actors with a foreign key or no key are refused",
                  "both nodes' torchrun exited 0", "remote actors sent",
                  "one run directory", "2 ranks x 4 updates", "games against them"):
        assert check in out, check
    pid = re.search(r"namespace arena-mh-(\d+)-n0", out).group(1)
    assert _our_namespaces(int(pid)) == []


@pytest.mark.slow
@needs_netns
def test_interrupted_rehearsal_tears_everything_down():
    proc = subprocess.Popen([sys.executable, str(SCRIPT)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = []
    for line in proc.stdout:  # until both learners run
        lines.append(line)
        if "started learner-node1" in line:
            break
    assert _our_namespaces(proc.pid), "".join(lines)
    started = re.findall(r"learner-node\d in \S+ \(pid (\d+)\)", "".join(lines))
    learner_pids = [int(m) for m in started]
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, "".join(lines) + rest
    assert "interrupted" in rest and "namespaces" in rest
    assert _our_namespaces(proc.pid) == []
    for pid in learner_pids:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0


def test_the_rehearsal_says_why_it_cannot_run(monkeypatch, capsys):
    monkeypatch.setattr(rehearsal, "probe", lambda: "needs root (ip netns add)")
    assert rehearsal.main([]) == 2
    assert "cannot run here: needs root" in capsys.readouterr().err


# ---- each rank names its own host ---------------------------------------------------------------
@needs_netns
def test_a_wildcard_endpoint_is_named_by_this_nodes_address_not_the_masters():
    """Was: MASTER_ADDR for every rank, so rank 1 told actors to connect to rank 0's host."""
    net = rehearsal.Network(f"{rehearsal.PREFIX}-{os.getpid()}")
    try:
        net.open()
        code = ("from arena.scale.distributed import reachable_endpoint as r; "
                "print(r('tcp://0.0.0.0:5000'), r('tcp://10.9.9.9:7'))")
        for host in range(2):
            out = subprocess.run(
                ["ip", "netns", "exec", net.hosts[host], "env", f"PYTHONPATH={ROOT}",
                 f"MASTER_ADDR={rehearsal.NODES[0]}", "MASTER_PORT=29511",
                 sys.executable, "-c", code], capture_output=True, text=True, check=True)
            assert out.stdout.split() == [f"tcp://{rehearsal.NODES[host]}:5000", "tcp://10.9.9.9:7"]
    finally:
        net.close()
    assert _our_namespaces(os.getpid()) == []


def test_a_wildcard_endpoint_on_one_machine_is_named_by_the_route_to_master(monkeypatch):
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    assert distributed.reachable_endpoint("tcp://0.0.0.0:5000") == "tcp://127.0.0.1:5000"
    assert distributed.reachable_endpoint("tcp://127.0.0.1:6") == "tcp://127.0.0.1:6"
    assert distributed.reachable_endpoint("tcp://10.0.0.0:7") == "tcp://10.0.0.0:7"


# ---- gloo's interface ---------------------------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIOCGIFADDR is Linux's")
def test_interface_of_finds_the_interface_holding_an_address():
    assert distributed.interface_of("127.0.0.1") == "lo"
    assert distributed.interface_of("203.0.113.77") is None  # an address no interface holds


def test_gloo_interface_is_chosen_only_across_machines_when_the_hostname_is_loopback(monkeypatch):
    """Was: gloo advertised the hostname's 127.0.x.x and rank 1 failed in connectFullMesh."""
    env = {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1", "MASTER_ADDR": "10.1.2.1"}
    for k in ("GLOO_SOCKET_IFNAME", "SLURM_NNODES", "SLURM_JOB_NUM_NODES", "NODE_RANK"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(distributed, "node_address", lambda: "10.1.2.3")
    monkeypatch.setattr(distributed, "interface_of", lambda a: {"10.1.2.3": "eth7"}.get(a))
    resolves = {"to": "127.0.1.1"}
    monkeypatch.setattr(distributed.socket, "gethostbyname", lambda name: resolves["to"])

    note = distributed.choose_gloo_interface()
    assert os.environ["GLOO_SOCKET_IFNAME"] == "eth7" and "eth7 (10.1.2.3)" in note
    assert distributed.choose_gloo_interface() is None  # set already: left alone
    assert os.environ["GLOO_SOCKET_IFNAME"] == "eth7"

    monkeypatch.delenv("GLOO_SOCKET_IFNAME")
    resolves["to"] = "10.1.2.3"  # the hostname names a reachable address: gloo is fine
    assert distributed.choose_gloo_interface() is None and "GLOO_SOCKET_IFNAME" not in os.environ
    resolves["to"] = "127.0.1.1"
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # one machine: loopback is right
    assert distributed.choose_gloo_interface() is None and "GLOO_SOCKET_IFNAME" not in os.environ
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("SLURM_NNODES", "3")  # SLURM over 3 machines
    assert distributed.choose_gloo_interface() is not None


# ---- a remote actor when rank 0 has finished ----------------------------------------------------
def test_actor_waiting_on_a_finished_rank_zero_stops_cleanly_on_the_stop_message(tmp_path):
    """Was: a remote actor in a league request when rank 0 closed its control socket
    ignored the stop message on the weights channel and failed 30 s later (exit 2)."""
    from arena.learn.learner import PPOLearner
    from league.pool import OpponentPool

    cfg = load_config(None, [
        "game.options.team_size=1", "game.options.max_ticks=16", "game.num_envs=2",
        "ppo.chunk_len=8", "ppo.chunks_per_update=2", "model.hidden=32", "model.lstm_hidden=32",
        "actors.listen=true", "trainer.num_threads=1", f"run.root={tmp_path}"])
    league = tmp_path / "league"
    service = ActorService(to_dict(cfg), 0, league, None, 2, per_version=1)
    service.control.league_state = {"hero": OpponentPool(league / "hero").state_dict()}
    weights, gamma = PPOLearner(to_dict(cfg)).actor_weights()
    outcome: list = []

    def actor() -> None:
        try:
            outcome.append(run_actor(service.endpoint, hello_timeout_s=10))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            outcome.append(exc)

    thread = threading.Thread(target=actor, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while service.rollouts.receive(timeout_ms=300) is None:  # the first rollout
            assert time.monotonic() < deadline and thread.is_alive(), outcome
            service.weights.publish(weights, 0, gamma)
        service.control.close()  # rank 0 has finished: nobody answers the league requests
        for _ in range(5):  # a new version: the actor asks the (silent) league, and waits
            service.weights.publish(weights, 1, gamma)
            time.sleep(0.3)
        t0 = time.monotonic()
        service.weights.send(encode_weights({}, STOP_VERSION, 0.0))
        thread.join(15)
        assert not thread.is_alive(), "the actor is still waiting for rank 0"
        assert len(outcome) == 1 and isinstance(outcome[0], int) and outcome[0] >= 1, outcome
        assert time.monotonic() - t0 < 10
    finally:
        service.close()
