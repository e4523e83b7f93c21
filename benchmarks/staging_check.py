"""Check that the collector's copies to the device deliver every step's observations intact.

    python benchmarks/staging_check.py [--device cuda] [--games 256] [--rollouts 3]

On a GPU the collector copies each step's observations and masks through reused pinned
host buffers with non-blocking transfers (arena/play/runner.HostStaging). A buffer
overwritten while its transfer is still in flight would corrupt the recorded rollout
without any error. This collects a few rollouts of the MOBA on `--device`, then replays the
recorded actions in a fresh batch of the same games on the CPU and compares, step by step,
the observations and masks the rollout recorded with the ones the games produce: they must
be equal exactly. Prints one line per rollout and exits 1 on a mismatch. Runs on the CPU
too (a check of the check).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from arena.config import CONFIG_DIR, load_config
from arena.learn.networks import build_policy, policy_groups
from arena.learn.rollout import Collector, collection_vec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--games", type=int, default=256)
    ap.add_argument("--rollouts", type=int, default=3)
    args = ap.parse_args()
    cfg = load_config(CONFIG_DIR / "default.yaml", [f"game.num_envs={args.games}"])
    device = torch.device(args.device)
    vec = collection_vec(cfg, args.games)
    replay = collection_vec(cfg, args.games)
    groups = policy_groups(vec, cfg.model.per_agent_weights)
    torch.manual_seed(0)
    policies = {g.key: build_policy(g.role, cfg).to(device).eval() for g in groups}
    collector = Collector(vec, policies, groups, cfg.ppo.chunk_len, cfg.ppo.chunks_per_update,
                          seed=0, device=device)
    step = replay.reset(seed=collector.seed)
    actions = np.zeros((replay.num_games, replay.num_slots), np.int64)
    bad = 0
    for r in range(args.rollouts):
        t0 = time.perf_counter()
        ro = collector.collect()
        seconds = time.perf_counter() - t0
        recorded = {g.key: {k: ro.groups[g.key][k].cpu().numpy()
                            for k in ("obs", "action_mask", "actions")} for g in groups}
        mismatches = 0
        for t in range(ro.active.shape[0]):
            for g in groups:
                n = len(g.slots)
                for name, arrays in (("obs", step.obs), ("action_mask", step.action_mask)):
                    want = arrays[g.role.name][:, list(g.role_columns)].reshape(-1, arrays[
                        g.role.name].shape[-1])
                    if not np.array_equal(recorded[g.key][name][t], want):
                        mismatches += 1
                actions[:, list(g.slots)] = recorded[g.key]["actions"][t].reshape(-1, n)
            step = replay.step(actions)
        bad += mismatches
        print(f"rollout {r + 1}: {ro.active.shape[0]} steps of {args.games} games on {device}, "
              f"{ro.agent_steps / seconds:,.0f} agent-steps/s; "
              + ("observations and masks as the games made them"
                 if not mismatches else f"{mismatches} step arrays differ from the games'"),
              flush=True)
    vec.close()
    replay.close()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
