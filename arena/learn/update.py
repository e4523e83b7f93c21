"""One PPO update of every policy group on one rollout, as a plain function.

`ppo_update` is the whole update, top to bottom as in CleanRL: GAE(λ) per group (with
value normalisation and truncation bootstraps), then `update_epochs` epochs of minibatches
of whole chunks, each replayed from its stored LSTM state, the clipped surrogate, value and
entropy losses summed over the groups, one optimiser step per minibatch (skipped, never
applied, when the loss or gradient is not finite), an optional KL early stop, and the
observation statistics moved after the last epoch. It takes the networks, the optimiser
and the settings as arguments and returns the metrics, so a test can call it without a
Trainer; the LightningModule (arena/learn/learner.py) only passes it its parts: its optimiser,
`manual_backward` (Lightning's DDP and precision hooks) and, under DDP, the all-reduce.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from agents.ppo import (
    chunk_minibatches,
    chunks_to_replay,
    compute_gae,
    explained_variance,
    ppo_loss,
)

Reduce = Callable[[torch.Tensor], torch.Tensor]


def make_adam(params: Any, lr: float) -> torch.optim.Adam:
    """PPO's Adam (eps 1e-5, as CleanRL), fused where this torch and device have it: one
    kernel for all parameters (the CPU too, since torch 2.4), 2.5x faster steps than the
    per-parameter loop and the same update up to float rounding; else the loop."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, eps=1e-5, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr, eps=1e-5)


def ppo_update(groups: Sequence[Any], policies: Mapping[str, Any], value_norms: Mapping[str, Any],
               ro: Any, rewards: np.ndarray, optimizer: torch.optim.Optimizer, *, ppo: Any,
               gamma: float, lr: float, generator: torch.Generator,
               device: torch.device | str = "cpu",
               backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
               reduce: Reduce | None = None) -> dict[str, float]:
    """Update `policies` (group key -> RecurrentPolicy) in place on rollout `ro` with the
    shaped `rewards` (L, B, S). `value_norms`: group key -> ValueNorm; `ppo`: the config's
    ppo section; `generator` draws the minibatches; `reduce` sums a tensor over DDP ranks
    (None: one process). Returns the metrics (loss/*, train/learning_rate, train/gamma)."""
    p = ppo
    dev = torch.device(device)
    # A rollout holding nan/inf (a broken game, a bad actor) would poison the normalisers
    # and the weights: skip the whole update, on every rank alike, and log it.
    # (a sum is nan/inf exactly when an element is, short of overflow: one cheap reduction)
    finite = torch.isfinite(torch.stack([d[k].sum() for d in ro.groups.values()
                                         for k in ("obs", "values", "logprobs", "last_values",
                                                   "final_values")])).all()
    bad = (~finite).double().reshape(1) + float(not np.isfinite(rewards).all())
    if float((reduce(bad) if reduce is not None else bad)[0]) > 0:  # one host sync
        return {"loss/skipped_updates": 1.0, "loss/epochs": 0.0, "loss/optimizer_steps": 0.0,
                "train/gamma": float(gamma),
                "train/learning_rate": lr}
    L_, B, _ = ro.env_rewards.shape
    T = p.chunk_len
    K = L_ // T
    data: dict[str, dict[str, torch.Tensor]] = {}
    prenormalized: dict[str, bool] = {}  # group key -> its rollout's obs normalised once
    ev_pred, ev_true = [], []
    replayed = chunks = 0
    live: dict[str, torch.Tensor] = {}  # group key -> (K*n,) bool: the chunk has a valid step
    for g in groups:
        d = ro.groups[g.key]
        n = B * len(g.slots)
        vn = value_norms[g.key]
        group_rewards = torch.from_numpy(
            np.ascontiguousarray(rewards[:, :, list(g.slots)]).reshape(L_, n)).to(dev)
        values, last = d["values"], d["last_values"]
        raw_values = vn.denormalize(values) if p.value_norm else values
        raw_last = vn.denormalize(last) if p.value_norm else last
        final = d["final_values"]
        raw_final = torch.where(d["truncated"], vn.denormalize(final), 0.0) \
            if p.value_norm else final
        valid = d["valid"]
        advantages, returns = compute_gae(group_rewards, raw_values, d["agent_dones"], raw_last,
                                          gamma, p.gae_lambda, valid=valid,
                                          final_values=raw_final)
        if p.value_norm:
            vn.update(returns[valid], reduce)
            targets = vn.normalize(returns)
        else:
            targets = returns
        ev_pred.append(values[valid])
        ev_true.append(targets[valid])

        def seq(x: torch.Tensor) -> torch.Tensor:
            """(L, n, ...) -> (T, K*n, ...): chunks as columns."""
            rest = x.shape[2:]
            return x.reshape(K, T, n, *rest).transpose(0, 1).reshape(T, K * n, *rest)

        # Observations chunk-major, (K*n, T, D): a minibatch's chunks are then whole
        # contiguous blocks, gathered at memory speed (the largest copy of the update; the
        # networks read the minibatch as its (T, N, D) transpose). Normalised once for
        # every epoch (their statistics move only after the last one) in the same pass,
        # where the encoder does not read the raw ones too.
        policy = policies[g.key]
        prenormalized[g.key] = not policy.reads_raw_obs
        raw = d["obs"].reshape(K, T, n, -1).transpose(1, 2)  # (K, n, T, D), a view
        if prenormalized[g.key]:
            raw = raw.to(policy.actor.weight.dtype)
            obs = policy.normalize_obs(raw, out=torch.empty(raw.shape, dtype=raw.dtype,
                                                            device=raw.device))
        else:
            obs = raw.contiguous()
        obs = obs.view(K * n, T, -1)
        data[g.key] = {
            "obs": obs, "action_mask": seq(d["action_mask"]),
            "actions": seq(d["actions"]), "logprobs": seq(d["logprobs"]),
            "values": seq(values), "advantages": seq(advantages), "targets": seq(targets),
            "episode_starts": seq(d["episode_starts"]), "valid": seq(valid),
            "h0": d["state_h"].reshape(K * n, -1), "c0": d["state_c"].reshape(K * n, -1),
        }
        # chunks with a valid step (on the CPU, where the minibatches are drawn): only
        # those are replayed (agents/ppo.chunks_to_replay)
        live[g.key] = data[g.key]["valid"].any(0).cpu()
        replayed += int(live[g.key].sum())
        chunks += K * n

    opt = optimizer
    for group in opt.param_groups:
        group["lr"] = lr
    params = [q for g in groups for q in policies[g.key].parameters() if q.requires_grad]
    sums: dict[str, float] = {}
    count = stepped = nonfinite_losses = 0
    epochs_done = 0
    for _ in range(p.update_epochs):
        perms = {k: chunk_minibatches(v["h0"].shape[0], p.num_minibatches, generator)
                 for k, v in data.items()}
        epoch_kl = []
        for i in range(p.num_minibatches):
            total = torch.zeros((), device=dev)
            for g in groups:
                d = data[g.key]
                idx = perms[g.key][i]
                if idx.numel() == 0:
                    continue
                idx = chunks_to_replay(idx, live[g.key]).to(dev)
                # index_select copies whole rows; about twice as fast as v[:, idx] on the CPU
                mb = {k: v.index_select(0 if k in ("h0", "c0", "obs") else 1, idx)
                      for k, v in d.items()}
                new_logprobs, entropy, new_values = policies[g.key].evaluate_actions(
                    mb["obs"].transpose(0, 1), (mb["h0"], mb["c0"]), mb["episode_starts"],
                    mb["action_mask"], mb["actions"], normalized=prenormalized[g.key],
                    valid=mb["valid"])
                loss, m = ppo_loss(
                    new_logprobs, mb["logprobs"], entropy, new_values, mb["values"],
                    mb["advantages"], mb["targets"], mb["valid"], clip_coef=p.clip_coef,
                    clip_vloss=p.clip_vloss, vf_clip_coef=p.vf_clip_coef, ent_coef=p.ent_coef,
                    vf_coef=p.vf_coef, norm_adv=p.norm_adv, reduce=reduce)
                total = total + loss
                for k, v in m.items():
                    sums[k] = sums.get(k, 0.0) + v / len(groups)
                epoch_kl.append(m["approx_kl"])
            opt.zero_grad()
            nonfinite_losses += int(not bool(torch.isfinite(total)))
            # Every rank runs its backward (Lightning prepares DDP's reducer before each
            # one, so gradients are averaged at every step); a nan/inf loss on any rank
            # makes the averaged gradient non-finite everywhere, so all ranks skip alike.
            backward(total)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, p.max_grad_norm)
            if not torch.isfinite(grad_norm):
                opt.zero_grad()  # a non-finite loss or gradient never reaches the weights
                sums["skipped_steps"] = sums.get("skipped_steps", 0.0) + 1.0
            else:
                opt.step()
                sums["grad_norm"] = sums.get("grad_norm", 0.0) + float(grad_norm)
                stepped += 1
            count += 1
        epochs_done += 1
        if p.target_kl is not None and epoch_kl:
            kl = torch.tensor([float(np.sum(epoch_kl)), float(len(epoch_kl))], dtype=torch.float64)
            kl = reduce(kl.to(dev)) if reduce is not None else kl
            if float(kl[0] / kl[1]) > p.target_kl:  # the same decision on every rank
                break
    # observation statistics move only between updates (see RecurrentPolicy.update_obs_norm)
    for g in groups:
        d = ro.groups[g.key]
        policies[g.key].update_obs_norm(d["obs"], d["valid"], reduce)

    metrics = {f"loss/{k}": v / max(count, 1) for k, v in sums.items()
               if k not in ("skipped_steps", "grad_norm")}
    if stepped:
        metrics["loss/grad_norm"] = sums["grad_norm"] / stepped
    metrics["loss/skipped_steps"] = sums.get("skipped_steps", 0.0)
    metrics["loss/optimizer_steps"] = float(stepped)
    metrics["loss/skipped_updates"] = 0.0
    metrics["loss/nonfinite_losses"] = float(nonfinite_losses)
    metrics["loss/explained_variance"] = explained_variance(torch.cat(ev_pred), torch.cat(ev_true))
    metrics["loss/epochs"] = float(epochs_done)
    metrics["loss/replayed_chunks"] = replayed / max(chunks, 1)
    metrics["train/learning_rate"] = lr
    metrics["train/gamma"] = float(gamma)
    return metrics
