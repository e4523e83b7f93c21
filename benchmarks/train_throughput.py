"""Training throughput of the default config: end to end, and the model-only limit.

    python benchmarks/train_throughput.py [--warmup 3] [--updates 10] [key=value ...]

End to end: agent-steps per second of `arena train` on configs/default.yaml (evaluation
off), measured over `--updates` updates after `--warmup` (numba compiles on first use).
Model-only limit: the same neural-network work on the same batch shapes with no game —
one policy forward (with action sampling) per collected step on recorded observations,
then the PPO update on the recorded rollout. Their ratio is the share of time that goes
into the network; the target is >= 0.6 (game, copying and Python overhead at most 40%).
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


class Probe(Callback):
    def __init__(self, warmup: int, updates: int) -> None:
        self.warmup, self.updates = warmup, updates
        self.marks: list[tuple[float, int]] = []
        self.model_only: tuple[float, float, int] | None = None

    def on_train_batch_end(self, trainer, learner, outputs, batch, batch_idx) -> None:
        self.marks.append((time.perf_counter(), learner.agent_steps))
        if learner.updates == self.warmup + self.updates:
            rollout = learner.collector.collect()
            forward, update = model_only_seconds(learner, rollout)
            self.model_only = (forward, update, rollout.agent_steps)
            trainer.should_stop = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. game.num_envs=64")
    args = parser.parse_args()
    from arena.train import train

    with tempfile.TemporaryDirectory() as root:
        cfg = load_config(CONFIG_DIR / "default.yaml", [
            f"run.root={root}", "run.name=throughput", "eval.every=0",
            f"trainer.max_updates={args.warmup + args.updates + 1}", *args.overrides])
        probe = Probe(args.warmup, args.updates)
        train(cfg, callbacks=[probe])
    (t0, s0), (t1, s1) = probe.marks[args.warmup - 1], probe.marks[args.warmup + args.updates - 1]
    e2e = (s1 - s0) / (t1 - t0)
    forward, update, steps = probe.model_only
    model = steps / (forward + update)
    g = cfg.game
    print(f"config: {g.name} {dict(g.options)}, {g.num_envs} games, "
          f"{cfg.ppo.chunk_len * cfg.ppo.chunks_per_update} steps per rollout, "
          f"torch threads {torch.get_num_threads()}")
    print(f"end to end        {e2e:12,.0f} agent-steps/s  (over {args.updates} updates)")
    print(f"model-only limit  {model:12,.0f} agent-steps/s  "
          f"(forward {forward:.2f} s + update {update:.2f} s per {steps:,} agent-steps)")
    print(f"ratio             {e2e / model:12.2f}  (target >= 0.60)")


if __name__ == "__main__":
    main()
