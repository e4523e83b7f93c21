"""PolicyStack: frozen policies of one architecture played in one forward pass give each
policy's own numbers, whichever slots their rows sit in."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.policy import EntityLayout, RecurrentPolicy
from agents.policy_stack import PolicyStack, architecture


def policy(entity: bool, use_lstm: bool = True, seed: int = 0, lstm_hidden: int = 24,
           normalize_obs: bool = True) -> RecurrentPolicy:
    torch.manual_seed(seed)
    lay = EntityLayout(10, 6, 5) if entity else None
    p = RecurrentPolicy(40 if entity else 17, 7, hidden=32, lstm_hidden=lstm_hidden,
                        use_lstm=use_lstm, entity_layout=lay,
                        normalize_obs=normalize_obs).double()
    p.update_obs_norm(torch.randn(200, p.obs_dim, dtype=torch.float64) * 3 + seed)
    return p.eval()


def batch(p: RecurrentPolicy, n: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, p.obs_dim, generator=g, dtype=torch.float64) * 4
    if p.entity_layout is not None:  # presence flags, some rows with no entity at all
        obs[:, 10::5] = (torch.rand(n, 6, generator=g) > 0.5).double()
        obs[0, 10::5] = 0.0
    h = torch.randn(n, p.lstm_hidden, generator=g, dtype=torch.float64)
    c = torch.randn(n, p.lstm_hidden, generator=g, dtype=torch.float64)
    starts = torch.rand(n, generator=g) > 0.6
    mask = torch.rand(n, 7, generator=g) > 0.3
    mask[:, 0] = True
    return obs, (h, c), starts, mask


@pytest.mark.parametrize("entity", [False, True])
@pytest.mark.parametrize("use_lstm", [True, False])
@pytest.mark.parametrize("normalize_obs", [True, False])
def test_a_stack_gives_each_policys_own_step(entity, use_lstm, normalize_obs):
    policies = [policy(entity, use_lstm, seed=k, normalize_obs=normalize_obs) for k in range(5)]
    stack = PolicyStack(policies[0], capacity=2)  # grows to hold all five at once
    which = np.array([3, 0, 3, 4, 1, 1, 3, 2, 0, 4, 4, 4, 2])  # rows of any policy, any order
    slots = stack.slots(which.tolist(), lambda k: policies[k])
    assert stack.capacity >= 5
    obs, (h, c), starts, mask = batch(policies[0], len(which))
    logits, (nh, nc) = stack.step(slots, obs, (h, c), starts, mask)
    assert logits.shape == (len(which), 7) and nh.shape == h.shape
    for n, k in enumerate(which):
        want, _, (wh, wc) = policies[k].step(obs[n:n + 1], (h[n:n + 1], c[n:n + 1]),
                                             starts[n:n + 1], mask[n:n + 1])
        torch.testing.assert_close(logits[n], want[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(nh[n], wh[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(nc[n], wc[0], rtol=0, atol=1e-12)
    # illegal actions are masked as the policy masks them
    assert (logits[~mask] == torch.finfo(logits.dtype).min).all()
    # no row at all: nothing to play
    none, (h0, _) = stack.step(slots[:0], obs[:0], (h[:0], c[:0]), starts[:0], mask[:0])
    assert none.shape == (0, 7) and h0.shape == (0, policies[0].lstm_hidden)


def test_float32_stack_matches_within_rounding_and_rows_of_one_slot_alone():
    policies = [policy(True, seed=k).float() for k in range(3)]
    stack = PolicyStack(policies[0])
    which = [2, 2, 2]
    obs, (h, c), starts, mask = batch(policies[0], 3)
    obs, h, c = obs.float(), h.float(), c.float()
    logits, (nh, _) = stack.step(stack.slots(which, lambda k: policies[k]), obs, (h, c), starts,
                                 mask)
    want, _, (wh, _) = policies[2].step(obs, (h, c), starts, mask)
    torch.testing.assert_close(logits, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(nh, wh, rtol=1e-5, atol=1e-5)
    assert nh.dtype == torch.float32 and logits.dtype == torch.float32


def test_slots_keep_the_policies_in_play_and_reuse_the_least_recently_used():
    policies = {k: policy(False, seed=k) for k in range(6)}
    loads: list[int] = []

    def load(k):
        loads.append(k)
        return policies[k]

    stack = PolicyStack(policies[0], capacity=3)
    a = stack.slots([0, 1, 0, 2], load)
    assert loads == [0, 1, 2] and a[0] == a[2] and len(set(a.tolist())) == 3
    assert stack.slots([1, 0], load).tolist() == [a[1], a[0]] and loads == [0, 1, 2]  # held
    b = stack.slots([3], load)  # takes the slot of 2, the least recently used
    assert loads[-1] == 3 and b[0] == a[3] and stack.capacity == 3
    c = stack.slots([4, 5, 3, 0], load)  # four in play at once: more slots
    assert stack.capacity >= 4 and len(set(c.tolist())) == 4
    obs, state, starts, mask = batch(policies[0], 4)
    logits, _ = stack.step(c, obs, state, starts, mask)
    for n, k in enumerate([4, 5, 3, 0]):  # the slots hold what their keys name
        want, _, _ = policies[k].step(obs[n:n + 1], (state[0][n:n + 1], state[1][n:n + 1]),
                                      starts[n:n + 1], mask[n:n + 1])
        torch.testing.assert_close(logits[n], want[0], rtol=0, atol=1e-12)


def test_a_stack_refuses_a_policy_of_another_architecture():
    stack = PolicyStack(policy(False))
    narrower = policy(False, lstm_hidden=16)
    assert architecture(narrower) != stack.arch
    with pytest.raises(ValueError, match="architecture"):
        stack.slots(["narrow"], lambda k: narrower)



def test_the_same_rows_after_a_slot_is_reloaded_or_the_stack_grows_play_the_new_policies():
    """`step` keeps how it lays out the rows of a slot array it has seen (a league plays the
    same slots at every step of an episode): a slot given to another policy, or slots moved
    to new tensors when the stack grows, must still play what the slots hold now."""
    policies = {k: policy(True, seed=k) for k in range(6)}
    stack = PolicyStack(policies[0], capacity=2)
    obs, state, starts, mask = batch(policies[0], 5)

    def plays(keys):
        slots = stack.slots(keys, lambda k: policies[k])
        logits, _ = stack.step(slots, obs, state, starts, mask)
        for n, k in enumerate(keys):
            want, _, _ = policies[k].step(obs[n:n + 1], (state[0][n:n + 1], state[1][n:n + 1]),
                                          starts[n:n + 1], mask[n:n + 1])
            torch.testing.assert_close(logits[n], want[0], rtol=0, atol=1e-12)
        return slots.tolist()

    first = plays([0, 1, 1, 0, 1])
    assert plays([0, 1, 1, 0, 1]) == first  # the kept layout
    # the same slots, now given to 2 and 3 (0 and 1 out of play): reloaded in place
    assert plays([2, 3, 3, 2, 3]) == first and stack.capacity == 2
    # three in play: the stack grows into new tensors, and 1 takes the slot 2 had ...
    assert plays([4, 5, 1, 4, 5]) and stack.capacity >= 3
    # ... which the slot array seen first, now over part of the grown stack, plays
    assert plays([1, 3, 3, 1, 3]) == first
