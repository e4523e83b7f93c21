"""Training throughput of the default config: end to end, and the model-only limit.

    python benchmarks/train_throughput.py [--warmup 3] [--updates 10] [--actors 0,1,2]
                                          [key=value ...]

End to end: agent-steps per second of `arena train` on configs/default.yaml (evaluation
off), measured over `--updates` updates after `--warmup` (numba compiles on first use).
Model-only limit: the same neural-network work on the same batch shapes with no game —
one policy forward (with action sampling) per collected step on recorded observations,
then the PPO update on the recorded rollout. Their ratio is the share of time that goes
into the network; the target is >= 0.6 (game, copying and Python overhead at most 40%).

With `--actors N,...`, end to end again with `actors.num_workers=N` for each N > 0 (actor
processes collect while the learner trains; each update takes N rollouts), with the
rollout bytes the learner received per second of waiting (transport MB/s). On a GPU:
`trainer.accelerator=gpu trainer.precision=bf16-mixed`.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from lightning.pytorch.callbacks import Callback

from agents.policy import masked_categorical
from arena.config import CONFIG_DIR, load_config


def model_only_seconds(learner, rollout) -> tuple[float, float]:
    """(forward seconds for collection, update seconds) on a recorded rollout."""
    T = rollout.env_rewards.shape[0]
    start = time.perf_counter()
    with torch.no_grad():
        for g in learner.groups:
            d = rollout.groups[g.key]
            policy = learner.policy_for(g.key)
            state = policy.initial_state(d["obs"].shape[1], learner.device)
        for t in range(T):
            for g in learner.groups:
                d = rollout.groups[g.key]
                logits, _, state = learner.policy_for(g.key).step(
                    d["obs"][t], state, d["episode_starts"][t], d["action_mask"][t])
                masked_categorical(logits, d["action_mask"][t]).sample()
    forward = time.perf_counter() - start
    start = time.perf_counter()
    learner.ppo_update(rollout)
    return forward, time.perf_counter() - start


def transport_mb_per_s(learner, rollout, count: int = 30) -> tuple[float, float]:
    """(MB/s, MB per message) of rollouts over loopback pyzmq, as actors send them: encode
    on one thread, receive and fully decode (arena.actors.decode_rollout) on this one."""
    import threading

    import zmq

    from arena.actors import decode_rollout, rollout_arrays
    from arena.transport import ChunkReceiver, ChunkSender

    ctx = zmq.Context()
    rx = ChunkReceiver(ctx, hwm=4)
    tx = ChunkSender(ctx, rx.address, hwm=4)
    spec = learner.rollout_spec(rollout.env_rewards.shape[1])
    meta = {"actor": 0, "version": 0, "seconds": 0.0, "bots": {}}
    size = sum(a.nbytes for a in rollout_arrays(rollout).values()) / 2**20
    sender = threading.Thread(target=lambda: [tx.send(meta, rollout_arrays(rollout))
                                              for _ in range(count)])
    start = time.perf_counter()
    sender.start()
    for _ in range(count):
        got = rx.receive(timeout_ms=30_000)
        assert got is not None, "no message within 30 s"
        decode_rollout(*got, spec)
    seconds = time.perf_counter() - start
    sender.join()
    tx.close()
    rx.close()
    ctx.term()
    return count * size / seconds, size


class Probe(Callback):
    def __init__(self, warmup: int, updates: int, model_only: bool = True) -> None:
        self.warmup, self.updates, self.with_model_only = warmup, updates, model_only
        self.marks: list[tuple[float, int]] = []
        self.transport: list[float] = []
        self.model_only: tuple[float, float, int] | None = None
        self.transport_rate: tuple[float, float] | None = None

    def on_train_batch_end(self, trainer, learner, outputs, batch, batch_idx) -> None:
        self.marks.append((time.perf_counter(), learner.agent_steps))
        if learner.updates > self.warmup and "perf/transport_mb_per_s" in learner.last_metrics:
            self.transport.append(learner.last_metrics["perf/transport_mb_per_s"])
        if learner.updates == self.warmup + self.updates:
            trainer.should_stop = True
            if not self.with_model_only:
                return
            rollout = learner.collector.collect()
            forward, update = model_only_seconds(learner, rollout)
            self.model_only = (forward, update, rollout.agent_steps)
            self.transport_rate = transport_mb_per_s(learner, rollout)


def end_to_end(probe: Probe) -> float:
    (t0, s0), (t1, s1) = probe.marks[probe.warmup - 1], probe.marks[probe.warmup + probe.updates - 1]
    return (s1 - s0) / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--actors", default="", metavar="N,...",
                        help="also measure with this many actor processes, e.g. 1,2")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. game.num_envs=64")
    args = parser.parse_args()
    from arena.train import train

    with tempfile.TemporaryDirectory() as root:
        cfg = load_config(CONFIG_DIR / "default.yaml", [
            f"run.root={root}", "run.name=throughput", "eval.every=0",
            f"trainer.max_updates={args.warmup + args.updates + 1}", *args.overrides])
        probe = Probe(args.warmup, args.updates)
        train(cfg, callbacks=[probe])
    e2e = end_to_end(probe)
    forward, update, steps = probe.model_only
    model = steps / (forward + update)
    g = cfg.game
    print(f"config: {g.name} {dict(g.options)}, {g.num_envs} games, "
          f"{cfg.ppo.chunk_len * cfg.ppo.chunks_per_update} steps per rollout, "
          f"torch threads {torch.get_num_threads()}")
    print(f"end to end        {e2e:12,.0f} agent-steps/s  (over {args.updates} updates)")
    print(f"model-only limit  {model:12,.0f} agent-steps/s  "
          f"(forward {forward:.2f} s + update {update:.2f} s per {steps:,} agent-steps)")
    print(f"ratio             {e2e / model:12.2f}  (target >= 0.60)", flush=True)
    rate, size = probe.transport_rate
    print(f"transport         {rate:12,.0f} MB/s  (loopback pyzmq, {size:.1f} MB rollouts, "
          f"encode + send + receive + decode)", flush=True)
    for n in [int(x) for x in args.actors.split(",") if x.strip()]:
        if n == 0:
            continue
        with tempfile.TemporaryDirectory() as root:
            cfg = load_config(CONFIG_DIR / "default.yaml", [
                f"run.root={root}", "run.name=throughput", "eval.every=0",
                f"trainer.max_updates={args.warmup + args.updates + 1}",
                f"actors.num_workers={n}", *args.overrides])
            probe = Probe(args.warmup, args.updates, model_only=False)
            train(cfg, callbacks=[probe])
        mb = sum(probe.transport) / max(len(probe.transport), 1)
        print(f"{n} actor process{'es' if n > 1 else '  '}  {end_to_end(probe):10,.0f} "
              f"agent-steps/s  (transport {mb:,.1f} MB/s while the learner waited)", flush=True)


if __name__ == "__main__":
    main()
