"""PPO maths against numbers worked out by hand: GAE, clipped losses, masks, normalisers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents.normalize import RunningMeanStd, ValueNorm
from agents.ppo import (
    chunk_minibatches,
    chunks_to_replay,
    compute_gae,
    explained_variance,
    ppo_loss,
)

f64 = torch.float64


def t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=f64)


# ---- GAE ----------------------------------------------------------------------------------

def gae_case():
    # Two agents (columns), three steps (rows). gamma 0.9, lambda 0.8 (gamma*lambda = 0.72).
    # Agent 0: its episode ends at t=1, a new one starts at t=2 and runs past the chunk,
    #          bootstrapped from last_value 2.0.
    # Agent 1: its episode ends at the chunk's last step: last_value 5.0 must be ignored.
    rewards = t([[1.0, 0.0], [2.0, 0.0], [3.0, 1.0]])
    values = t([[0.5, 0.2], [1.0, 0.4], [1.5, 0.6]])
    dones = torch.tensor([[False, False], [True, False], [False, True]])
    last_values = t([2.0, 5.0])
    return rewards, values, dones, last_values


def test_gae_by_hand():
    rewards, values, dones, last_values = gae_case()
    advantages, returns = compute_gae(rewards, values, dones, last_values, gamma=0.9, gae_lambda=0.8)
    # Agent 0:
    #   t=2: delta = 3 + 0.9*2.0 - 1.5 = 3.3                     A = 3.3
    #   t=1: done -> delta = 2 - 1.0 = 1.0                       A = 1.0   (nothing from t=2)
    #   t=0: delta = 1 + 0.9*1.0 - 0.5 = 1.4                     A = 1.4 + 0.72*1.0 = 2.12
    # Agent 1:
    #   t=2: done -> delta = 1 - 0.6 = 0.4                       A = 0.4
    #   t=1: delta = 0 + 0.9*0.6 - 0.4 = 0.14                    A = 0.14 + 0.72*0.4 = 0.428
    #   t=0: delta = 0 + 0.9*0.4 - 0.2 = 0.16                    A = 0.16 + 0.72*0.428 = 0.46816
    expected_adv = t([[2.12, 0.46816], [1.0, 0.428], [3.3, 0.4]])
    # returns = A + V
    expected_ret = t([[2.62, 0.66816], [2.0, 0.828], [4.8, 1.0]])
    torch.testing.assert_close(advantages, expected_adv, rtol=0, atol=1e-12)
    torch.testing.assert_close(returns, expected_ret, rtol=0, atol=1e-12)


def test_gae_lambda_one_is_discounted_return_and_gamma_tensor():
    rewards, values, dones, last_values = gae_case()
    # lambda = 1: returns are discounted sums of rewards (+ bootstrap where the episode runs on).
    # Agent 0: t=2: 3 + 0.9*2 = 4.8; t=1: 2 (done); t=0: 1 + 0.9*2 = 2.8.
    # Agent 1: t=2: 1; t=1: 0.9*1 = 0.9; t=0: 0.81.
    _, returns = compute_gae(rewards, values, dones, last_values, gamma=0.9, gae_lambda=1.0)
    torch.testing.assert_close(returns, t([[2.8, 0.81], [2.0, 0.9], [4.8, 1.0]]), rtol=0, atol=1e-12)
    # gamma as a tensor (per agent) gives the same as the float.
    adv_f, ret_f = compute_gae(rewards, values, dones, last_values, gamma=0.9, gae_lambda=0.8)
    adv_t, ret_t = compute_gae(rewards, values, dones, last_values, gamma=t([0.9, 0.9]), gae_lambda=0.8)
    torch.testing.assert_close(adv_f, adv_t)
    torch.testing.assert_close(ret_f, ret_t)


# ---- the PPO loss -------------------------------------------------------------------------

def loss_case():
    # ratio = exp(new - old): 1.1 (inside the clip range), 1.5 (above), 0.5 (below), 1.5 (above)
    old_logprobs = t([-1.0, -1.0, -1.0, -1.0])
    new_logprobs = old_logprobs + torch.log(t([1.1, 1.5, 0.5, 1.5]))
    advantages = t([1.0, 1.0, -1.0, -2.0])
    old_values = t([1.0, 1.0, 1.0, 0.0])
    new_values = t([1.1, 1.5, 1.5, -1.0])
    returns = t([2.0, 2.0, 1.0, 0.5])
    entropy = t([1.0, 0.5, 0.25, 0.25])
    return new_logprobs, old_logprobs, entropy, new_values, old_values, advantages, returns


def test_gae_turn_based_credits_waiting_rewards_to_the_own_last_action():
    """Two players alternate (A acts at t = 0, 2; B at t = 1, 3). B wins on its move at t = 3:
    +1 for B, and A's -1 arrives on that move while A waits; the game ends there."""
    g, lam = 0.9, 0.8
    # columns: A, B
    rewards = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [-1.0, 1.0]])
    values = torch.tensor([[0.1, 9.0], [7.0, 0.2], [0.3, 9.0], [7.0, 0.4]])  # 9, 7: waiting
    dones = torch.tensor([[0, 0], [0, 0], [0, 0], [1, 1]], dtype=torch.bool)
    valid = torch.tensor([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=torch.bool)
    last = torch.tensor([5.0, 5.0])  # after the end: never used
    adv, ret = compute_gae(rewards, values, dones, last, g, lam, valid=valid)
    a2 = -1.0 - 0.3                      # A's last move: the -1 it got while waiting, terminal
    a0 = 0.0 + g * 0.3 - 0.1 + g * lam * a2
    b3 = 1.0 - 0.4
    b1 = 0.0 + g * 0.4 - 0.2 + g * lam * b3
    expected = torch.tensor([[a0, 0.0], [0.0, b1], [a2, 0.0], [0.0, b3]])
    assert torch.allclose(adv, expected, atol=1e-6)
    assert torch.allclose(ret[valid], (expected + values)[valid], atol=1e-6)
    # every step an action: the same as plain GAE
    full = torch.ones_like(valid)
    assert torch.allclose(compute_gae(rewards, values, dones, last, g, lam, valid=full)[0],
                          compute_gae(rewards, values, dones, last, g, lam)[0])


def test_gae_bootstraps_a_truncated_end_from_the_final_value():
    g, lam = 0.9, 0.95
    rewards = torch.tensor([[1.0], [1.0], [1.0]])
    values = torch.tensor([[2.0], [3.0], [4.0]])
    dones = torch.tensor([[0], [1], [0]], dtype=torch.bool)  # cut off after t = 1
    last = torch.tensor([6.0])
    final = torch.tensor([[0.0], [10.0], [0.0]])  # V(observation at the cut)
    adv, _ = compute_gae(rewards, values, dones, last, g, lam, final_values=final)
    a2 = 1.0 + g * 6.0 - 4.0
    a1 = 1.0 + g * 10.0 - 3.0            # bootstrapped from the cut, not from t = 2
    a0 = 1.0 + g * 3.0 - 2.0 + g * lam * a1
    assert torch.allclose(adv[:, 0], torch.tensor([a0, a1, a2]), atol=1e-6)
    terminal, _ = compute_gae(rewards, values, dones, last, g, lam)
    assert terminal[1, 0] == pytest.approx(1.0 - 3.0)  # the same end read as terminal


def test_clipped_losses_by_hand():
    new_lp, old_lp, entropy, new_v, old_v, adv, ret = loss_case()
    new_lp.requires_grad_(True)
    valid = torch.ones(4, dtype=torch.bool)
    loss, m = ppo_loss(new_lp, old_lp, entropy, new_v, old_v, adv, ret, valid, clip_coef=0.2,
                       clip_vloss=True, vf_clip_coef=0.2, ent_coef=0.01, vf_coef=0.5, norm_adv=False)
    # policy: max(-A*r, -A*clip(r, 0.8, 1.2)) per entry
    #   1: A=+1 r=1.1 -> max(-1.1, -1.1) = -1.1   (inside)
    #   2: A=+1 r=1.5 -> max(-1.5, -1.2) = -1.2   (clipped: no gain beyond 1.2)
    #   3: A=-1 r=0.5 -> max( 0.5,  0.8) =  0.8   (clipped)
    #   4: A=-2 r=1.5 -> max( 3.0,  2.4) =  3.0   (pessimistic: the unclipped loss)
    #   mean = (-1.1 - 1.2 + 0.8 + 3.0) / 4 = 0.375
    assert m["policy_loss"] == pytest.approx(0.375, abs=1e-12)
    # value: 0.5 * max((v-R)^2, (v_old + clip(v - v_old, +-0.2) - R)^2)
    #   1: v=1.1 (inside)            -> 0.81
    #   2: v=1.5 -> clipped 1.2, R=2 -> max(0.25, 0.64) = 0.64
    #   3: v=1.5 -> clipped 1.2, R=1 -> max(0.25, 0.04) = 0.25
    #   4: v=-1  -> clipped -0.2, R=0.5 -> max(2.25, 0.49) = 2.25
    #   0.5 * (0.81 + 0.64 + 0.25 + 2.25) / 4 = 0.49375
    assert m["value_loss"] == pytest.approx(0.49375, abs=1e-12)
    assert m["entropy"] == pytest.approx(0.5, abs=1e-12)
    # loss = 0.375 - 0.01 * 0.5 + 0.5 * 0.49375
    assert loss.item() == pytest.approx(0.616875, abs=1e-12)
    assert m["clipfrac"] == pytest.approx(0.75)  # entries 2, 3, 4 have |r - 1| > 0.2
    # approx_kl = mean((r-1) - log r): 0.1-ln1.1, 0.5-ln1.5, -0.5-ln0.5, 0.5-ln1.5
    #   = 0.0046898 + 0.0945349 + 0.1931472 + 0.0945349 = 0.3869068 -> / 4
    assert m["approx_kl"] == pytest.approx(0.0967267, abs=1e-7)
    # old_approx_kl = mean(-log r) = -(0.0953102 + 0.4054651 - 0.6931472 + 0.4054651) / 4
    assert m["old_approx_kl"] == pytest.approx(-0.0532733, abs=1e-7)
    # The clipped entries (2, 3) get no policy gradient; d/dlogp of -A*r is -A*r / 4.
    loss.backward()
    torch.testing.assert_close(new_lp.grad, t([-1.1 / 4, 0.0, 0.0, 2 * 1.5 / 4]), rtol=0, atol=1e-12)


def test_unclipped_value_loss_by_hand():
    new_lp, old_lp, entropy, new_v, old_v, adv, ret = loss_case()
    _, m = ppo_loss(new_lp, old_lp, entropy, new_v, old_v, adv, ret, torch.ones(4, dtype=torch.bool),
                    clip_coef=0.2, clip_vloss=False, vf_clip_coef=0.2, ent_coef=0.0, vf_coef=1.0,
                    norm_adv=False)
    # 0.5 * (0.81 + 0.25 + 0.25 + 2.25) / 4
    assert m["value_loss"] == pytest.approx(0.445, abs=1e-12)


def test_invalid_entries_change_nothing():
    g = torch.Generator().manual_seed(0)
    shape = (6, 5)
    valid = torch.rand(shape, generator=g) > 0.4

    def inputs():
        return [torch.randn(shape, generator=g, dtype=f64) for _ in range(7)]

    a = inputs()
    b = [x.clone() for x in a]
    other = inputs()
    for i, (x, y) in enumerate(zip(b, other)):
        x[~valid] = y[~valid]  # different numbers at invalid entries
    b[1][~valid] = float("nan")  # even garbage in the stored data
    b[6][~valid] = float("inf")

    results = []
    for xs in (a, b):
        new_lp, old_lp, ent, new_v, old_v, adv, ret = xs
        for x in (new_lp, ent, new_v):
            x.requires_grad_(True)
        loss, m = ppo_loss(new_lp, old_lp, ent, new_v, old_v, adv, ret, valid, clip_coef=0.2,
                           clip_vloss=True, vf_clip_coef=0.2, ent_coef=0.01, vf_coef=0.5, norm_adv=True)
        loss.backward()
        results.append((loss.detach(), m, [x.grad for x in (new_lp, ent, new_v)]))
    (loss_a, m_a, grads_a), (loss_b, m_b, grads_b) = results
    torch.testing.assert_close(loss_a, loss_b)
    assert m_a == pytest.approx(m_b)
    for ga, gb in zip(grads_a, grads_b):
        assert torch.isfinite(gb).all()
        torch.testing.assert_close(ga, gb)
        assert (ga[~valid] == 0).all()


def test_advantage_normalisation_over_valid_only():
    valid = torch.tensor([True, True, True, False])
    adv = t([1.0, 2.0, 3.0, 100.0])
    new_lp = torch.zeros(4, dtype=f64, requires_grad=True)
    zeros = torch.zeros(4, dtype=f64)
    loss, m = ppo_loss(new_lp, zeros, zeros, zeros, zeros, adv, zeros, valid, clip_coef=0.2,
                       clip_vloss=True, vf_clip_coef=0.2, ent_coef=0.0, vf_coef=0.0, norm_adv=True)
    # Valid advantages 1, 2, 3: mean 2, unbiased std 1 -> normalised -1, 0, 1; ratio = 1, so
    # pg_loss = mean(-A_norm) = 0 and d pg_loss / d logp = -A_norm / 3 on the valid entries.
    assert m["policy_loss"] == pytest.approx(0.0, abs=1e-12)
    loss.backward()
    torch.testing.assert_close(new_lp.grad, t([1 / 3, 0.0, -1 / 3, 0.0]), rtol=0, atol=1e-7)


def test_explained_variance():
    y_true = t([1.0, 2.0, 3.0, 4.0, 50.0])
    y_pred = t([1.0, 2.0, 3.0, 5.0, -7.0])
    valid = torch.tensor([True, True, True, True, False])
    # residuals 0, 0, 0, -1: Var = 0.25 - 0.0625 = 0.1875; Var[y] = 1.25 -> 1 - 0.15
    assert explained_variance(y_pred, y_true, valid) == pytest.approx(0.85)
    assert explained_variance(y_true, y_true, valid) == pytest.approx(1.0)
    assert math.isnan(explained_variance(y_pred, torch.ones(5, dtype=f64), valid))


def test_chunk_minibatches():
    mbs = chunk_minibatches(10, 3, torch.Generator().manual_seed(1))
    assert len(mbs) == 3 and sorted(len(mb) for mb in mbs) == [3, 3, 4]
    assert sorted(torch.cat(mbs).tolist()) == list(range(10))  # every chunk exactly once
    again = chunk_minibatches(10, 3, torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(mbs, again))
    with pytest.raises(ValueError):
        chunk_minibatches(2, 3, None)


def test_chunks_to_replay_keeps_the_chunks_with_a_valid_step_in_minibatch_order():
    live = torch.tensor([False, True, False, False, True, True])
    assert chunks_to_replay(torch.tensor([5, 0, 1, 3]), live, multiple=1).tolist() == [5, 1]
    # none with a valid step: the first chunk alone (the minibatch still replays something)
    assert chunks_to_replay(torch.tensor([3, 0, 2]), live, multiple=1).tolist() == [3]
    assert chunks_to_replay(torch.tensor([4, 1]), live, multiple=1).tolist() == [4, 1]


def test_chunks_to_replay_tops_up_with_dead_chunks_to_a_multiple_in_minibatch_order():
    live = torch.zeros(40, dtype=torch.bool)
    live[[3, 7, 11, 20, 21, 30, 31, 32, 33, 39]] = True
    mb = torch.arange(39, -1, -1)  # every chunk, last first
    # 10 live -> 16: the 6 first dead chunks of the minibatch join, minibatch order kept
    assert chunks_to_replay(mb, live, multiple=8).tolist() == [
        39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 21, 20, 11, 7, 3]
    assert chunks_to_replay(torch.arange(12, 24), live).tolist() == [
        12, 13, 14, 15, 16, 17, 20, 21]
    # never more than the minibatch
    assert chunks_to_replay(torch.tensor([5, 0, 1, 3]), live).tolist() == [5, 0, 1, 3]
    # none live: one multiple of dead chunks
    assert chunks_to_replay(torch.arange(12, 20), torch.zeros(40, dtype=torch.bool),
                            multiple=4).tolist() == [12, 13, 14, 15]
    # already a multiple: nothing added
    assert chunks_to_replay(torch.arange(0, 12), live, multiple=3).tolist() == [3, 7, 11]


# ---- normalisers --------------------------------------------------------------------------

def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    rms = RunningMeanStd((3,))
    batches = [rng.normal([1.0, -5.0, 100.0], [0.1, 2.0, 30.0], size=(n, 3)) for n in (1, 7, 50, 3)]
    for i, batch in enumerate(batches):
        rms.update(torch.as_tensor(batch, dtype=torch.float32 if i % 2 else torch.float64))
        seen = np.concatenate([b if j % 2 == 0 else b.astype(np.float32).astype(np.float64)
                               for j, b in enumerate(batches[: i + 1])])
        # float64 batches are merged exactly; a float32 batch is reduced in float32
        tol = 1e-10 if i == 0 else 1e-5
        np.testing.assert_allclose(rms.mean.numpy(), seen.mean(0), rtol=tol)
        np.testing.assert_allclose(rms.var.numpy(), seen.var(0), rtol=tol * 10, atol=1e-12)
        assert rms.count.item() == len(seen)
    assert rms.mean.dtype == torch.float64
    x = torch.tensor([[1.0, -5.0, 1e6]])
    z = rms.normalize(x)
    assert z.dtype == torch.float32 and z[0, 2] == 5.0  # clipped
    assert set(rms.state_dict()) == {"mean", "var", "count"}


def test_value_norm_round_trip_and_estimates():
    rng = np.random.default_rng(1)
    v = torch.as_tensor(rng.normal(size=20))
    for beta in (0.99999, None):
        vn = ValueNorm(beta=beta)
        torch.testing.assert_close(vn.normalize(v), v)  # identity before any update
        data = [rng.normal(3.0, 2.0, size=n) for n in (10, 40)]
        for d in data:
            vn.update(torch.as_tensor(d))
        torch.testing.assert_close(vn.denormalize(vn.normalize(v)), v)
        torch.testing.assert_close(vn.normalize(vn.denormalize(v)), v)
    # beta=None: the plain running mean/var of everything seen.
    all_d = np.concatenate(data)
    mean, var = vn.mean_var()
    assert mean.item() == pytest.approx(all_d.mean()) and var.item() == pytest.approx(all_d.var())
    # beta = 0.5, by hand: batches [1, 3] (mean 2, mean sq 5) then [5] (mean 5, mean sq 25).
    #   running_mean = 0.5*(0.5*2) + 0.5*5 = 3.0; running_mean_sq = 0.5*(0.5*5) + 0.5*25 = 13.75
    #   debias = 0.5*0.5 + 0.5 = 0.75 -> mean = 4, mean_sq = 18.333.., var = 7/3
    vn = ValueNorm(beta=0.5)
    vn.update(t([1.0, 3.0]))
    vn.update(t([5.0]))
    mean, var = vn.mean_var()
    assert mean.item() == pytest.approx(4.0) and var.item() == pytest.approx(7 / 3)
    assert vn.normalize(t([4.0 + math.sqrt(7 / 3)])).item() == pytest.approx(1.0)
