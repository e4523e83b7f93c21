"""PPO maths: GAE(lambda), the clipped PPO loss, explained variance, recurrent minibatches.

Read top to bottom, as in CleanRL's ppo.py; names follow the PPO paper and CleanRL
(advantages, returns, logratio, ratio, clipfrac, approx_kl).

Layout: tensors are (T, N) - time by agent slot - as stored in a trajectory chunk. `valid`
(same shape, bool) is False for slots with no real step behind them (padding, agents that
had left the game); such entries contribute nothing to any loss, mean or metric.

Value normalisation (agents/normalize.ValueNorm), when used: the value head predicts in
normalised units. Denormalise values before `compute_gae`; give `ppo_loss` new values,
old values and returns all in normalised units (`value_norm.normalize(returns)`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from agents.policy import ROW_MULTIPLE  # a chunk is one row of the LSTM's batch


# ---- GAE ----------------------------------------------------------------------------------

def compute_gae(rewards: Tensor, values: Tensor, dones: Tensor, last_values: Tensor,
                gamma: float | Tensor, gae_lambda: float, valid: Tensor | None = None,
                final_values: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over a chunk of T steps for N agents.

    rewards, values, dones: (T, N); last_values: (N,), the value of the observation after
    the chunk's last step. `dones[t]` means the agent's episode ended at step t: the step
    t+1 (if any) belongs to a new episode, so nothing is bootstrapped across it.
    `gamma` may be a float or a tensor broadcastable to (N,) (e.g. a per-agent gamma).

        delta_t = r_t + gamma * V_{t+1} * (1 - done_t) - V_t
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}
        returns = A + V          (the value targets, TD(lambda) returns)

    `valid` (T, N) bool marks the steps where the agent acted. In a turn-based game an
    agent waits while others move: a step where it did not act is skipped, its reward (the
    loser's -1 arrives on the winner's move) is credited to the agent's own previous action,
    and V_{t+1} is the value at its next action, so time is counted in the agent's own
    decisions. Its advantage there is 0. None: every step is an action (standard GAE).

    `final_values` (T, N): where an episode was cut off by a time limit at step t (done_t,
    not a terminal state), the value of the observation at the cut: it is bootstrapped
    instead of 0. None or 0 elsewhere: the end is terminal.
    """
    # On the host, in numpy, whatever the tensors' device: a step is a handful of operations
    # on N numbers, where a tensor operation's fixed cost (a few microseconds on the CPU, a
    # kernel launch on a GPU) would be most of the time; the arrays are small.
    dev, dtype = rewards.device, rewards.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32

    def host(x: Tensor, kind: torch.dtype = work) -> np.ndarray:
        return x.detach().to("cpu", kind).numpy()

    T = rewards.shape[0]
    rewards_, values_ = host(rewards), host(values)
    done_all = host(dones, torch.bool)
    acted_all = None if valid is None else host(valid, torch.bool)
    finals = None if final_values is None else host(final_values)
    gamma_ = (host(gamma) if isinstance(gamma, Tensor) else np.asarray(gamma)).astype(rewards_.dtype)
    decay = (gamma_ * rewards_.dtype.type(gae_lambda)).astype(rewards_.dtype)
    zeros = np.zeros_like(rewards_[0])
    advantages = np.zeros_like(rewards_)
    next_values = host(last_values)
    next_advantages = zeros
    pending = zeros  # rewards since the agent's next action (waiting steps)
    for t in reversed(range(T)):
        # an episode that ends at t: nothing after t is bootstrapped
        done = done_all[t]
        boot = zeros if finals is None else finals[t]
        next_values = np.where(done, boot, next_values)
        next_advantages = np.where(done, zeros, next_advantages)
        pending = np.where(done, zeros, pending)
        reward = pending + rewards_[t]
        delta = reward + gamma_ * next_values - values_[t]
        advantage = delta + decay * next_advantages
        if acted_all is None:
            advantages[t] = advantage
            next_values, next_advantages, pending = values_[t], advantage, zeros
        else:
            acted = acted_all[t]
            advantages[t] = np.where(acted, advantage, zeros)
            next_values = np.where(acted, values_[t], next_values)
            next_advantages = np.where(acted, advantage, next_advantages)
            pending = np.where(acted, zeros, reward)
    returns = advantages + values_
    return (torch.from_numpy(advantages).to(dev, dtype), torch.from_numpy(returns).to(dev, dtype))


# ---- the PPO loss -------------------------------------------------------------------------

def masked_mean(x: Tensor, valid: Tensor) -> Tensor:
    """Mean of x over the valid entries (0 when none is valid)."""
    return torch.where(valid, x, 0.0).sum() / valid.sum().clamp(min=1)


def ppo_loss(new_logprobs: Tensor, old_logprobs: Tensor, entropy: Tensor, new_values: Tensor,
             old_values: Tensor, advantages: Tensor, returns: Tensor, valid: Tensor, *,
             clip_coef: float = 0.2, clip_vloss: bool = True, vf_clip_coef: float = 0.2,
             ent_coef: float = 0.01, vf_coef: float = 0.5, norm_adv: bool = True,
             reduce: Callable[[Tensor], Tensor] | None = None,
             ) -> tuple[Tensor, dict[str, float]]:
    """The clipped PPO objective on one minibatch (any shape; all tensors alike).

    new_* and entropy come from the network now (with gradients); old_* were stored by the
    actors; advantages and returns come from `compute_gae`. Returns the scalar loss to
    minimise and python-float metrics: policy_loss, value_loss, entropy, approx_kl,
    old_approx_kl, clipfrac. `reduce` (a sum over DDP ranks) makes the advantage
    normalisation use the moments of the global minibatch, as one device would.
    """
    valid = valid.bool()
    # Entries that are not valid may hold anything (even nan/inf): replace the stored data
    # there by harmless numbers, so that neither the loss nor its gradient can see them.
    old_logprobs = torch.where(valid, old_logprobs, new_logprobs.detach())
    old_values = torch.where(valid, old_values, new_values.detach())
    advantages = torch.where(valid, advantages, 0.0)
    returns = torch.where(valid, returns, new_values.detach())

    # Advantage normalisation, per minibatch and over the valid entries only
    # (unbiased std, as torch.std in CleanRL).
    if norm_adv and reduce is None:
        n = valid.sum().clamp(min=1)
        adv_mean = advantages.sum() / n
        adv_var = torch.where(valid, (advantages - adv_mean) ** 2, 0.0).sum() / (n - 1).clamp(min=1)
    elif norm_adv:  # the same moments over every rank's minibatch (one small all-reduce)
        a = advantages.double()
        n, total, total_sq = reduce(torch.stack([valid.sum().double(), a.sum(), (a**2).sum()]))
        n = n.clamp(min=1)
        adv_mean = (total / n).to(advantages.dtype)
        adv_var = ((total_sq - n * (total / n) ** 2) / (n - 1).clamp(min=1)).clamp(min=0)
        adv_var = adv_var.to(advantages.dtype)
    if norm_adv:
        advantages = torch.where(valid, (advantages - adv_mean) / (adv_var.sqrt() + 1e-8), 0.0)

    # Policy loss: the clipped surrogate, as a loss (negated), pessimistic of the two.
    logratio = new_logprobs - old_logprobs
    ratio = logratio.exp()
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
    pg_loss = masked_mean(torch.max(pg_loss1, pg_loss2), valid)

    # Value loss: squared error, optionally clipped around the old prediction (CleanRL).
    v_loss_unclipped = (new_values - returns) ** 2
    if clip_vloss:
        v_clipped = old_values + torch.clamp(new_values - old_values, -vf_clip_coef, vf_clip_coef)
        v_loss_clipped = (v_clipped - returns) ** 2
        v_loss = 0.5 * masked_mean(torch.max(v_loss_unclipped, v_loss_clipped), valid)
    else:
        v_loss = 0.5 * masked_mean(v_loss_unclipped, valid)

    entropy_loss = masked_mean(entropy, valid)
    loss = pg_loss - ent_coef * entropy_loss + vf_coef * v_loss

    with torch.no_grad():
        # http://joschu.net/blog/kl-approx.html
        old_approx_kl = masked_mean(-logratio, valid)
        approx_kl = masked_mean((ratio - 1) - logratio, valid)
        clipfrac = masked_mean(((ratio - 1.0).abs() > clip_coef).to(ratio.dtype), valid)
        names = ("policy_loss", "value_loss", "entropy", "approx_kl", "old_approx_kl", "clipfrac")
        values = torch.stack([pg_loss, v_loss, entropy_loss, approx_kl, old_approx_kl, clipfrac])
        metrics = dict(zip(names, values.detach().double().tolist()))  # one host sync
    return loss, metrics


def explained_variance(y_pred: Tensor, y_true: Tensor, valid: Tensor | None = None) -> float:
    """1 - Var[y_true - y_pred] / Var[y_true] over valid entries; nan when Var[y_true] = 0.

    1 = perfect value predictions, 0 = no better than a constant, < 0 = worse.
    """
    if valid is not None:
        y_pred, y_true = y_pred[valid.bool()], y_true[valid.bool()]
    y_pred, y_true = y_pred.double().flatten(), y_true.double().flatten()
    if y_true.numel() == 0:
        return float("nan")
    var_y = y_true.var(unbiased=False)
    if var_y == 0:
        return float("nan")
    return float(1.0 - (y_true - y_pred).var(unbiased=False) / var_y)


# ---- recurrent minibatches ----------------------------------------------------------------

def chunk_minibatches(num_chunks: int, num_minibatches: int,
                      generator: torch.Generator | None = None) -> list[Tensor]:
    """Shuffle chunk indices and split them into `num_minibatches` near-equal minibatches.

    A minibatch is a set of whole chunks, so each sequence is replayed from its stored LSTM
    state through all its steps (truncated BPTT); steps of one chunk are never split.
    """
    if not 1 <= num_minibatches <= num_chunks:
        raise ValueError(f"num_minibatches must lie in 1..num_chunks ({num_chunks}), "
                         f"got {num_minibatches}")
    perm = torch.randperm(num_chunks, generator=generator)
    return list(torch.tensor_split(perm, num_minibatches))


def chunks_to_replay(minibatch: Tensor, live: Tensor, multiple: int = ROW_MULTIPLE) -> Tensor:
    """The chunks of `minibatch` (chunk indices) that have a valid step (`live`, one bool
    per chunk), in minibatch order, topped up with its first chunks that have none to a
    multiple of `multiple` chunks (or to the whole minibatch, if smaller). So every
    minibatch, on every DDP rank, replays something, and a chunk without a valid step adds
    exactly nothing.

    A chunk where the agent never acted (dead, gone, not yet in the game, played by a
    league opponent) adds nothing to any loss, mean or metric, yet costs a full forward and
    backward: where agents die for good (battles of many soldiers) that is half of all
    chunks late in a run. Filtering each minibatch drawn over all chunks, rather than
    drawing minibatches over the live chunks only, keeps the minibatches PPO would have
    drawn: the update is the one that replays every chunk, up to float rounding.

    Why the top-up: the number of live chunks changes from minibatch to minibatch, and
    oneDNN (the CPU's bf16/AMX matmuls and its LSTM) builds a kernel for every new shape:
    measured here, a bf16 matmul of a shape not seen before took 5.6 ms against 0.7 ms for
    one seen before. Sizes in steps of `multiple` chunks leave few shapes, whose kernels
    are all built after a few updates, for a few percent of extra rows.
    """
    keep = live[minibatch]
    n_live = int(keep.sum())
    want = min(-(-max(n_live, 1) // multiple) * multiple, minibatch.numel())
    if want > n_live:
        dead = ~keep
        keep = keep | (dead & (dead.cumsum(0) <= want - n_live))
    return minibatch[keep]
