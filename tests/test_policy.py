"""The recurrent policy: masks, LSTM resets, sequence replay, entity encoder, state_dict."""

from __future__ import annotations

import pytest
import torch

from agents.policy import (ROW_MULTIPLE, EntityEncoder, EntityLayout, RecurrentPolicy,
                           lstm_with_resets, mask_logits, masked_categorical, pool_entities)
from agents.ppo import ppo_loss

OBS, ACT = 7, 5


def random_masks(g: torch.Generator, *shape: int) -> torch.Tensor:
    """Random boolean masks over ACT actions with at least one legal action per row."""
    mask = torch.rand(*shape, ACT, generator=g) < 0.4
    forced = torch.randint(ACT, shape, generator=g)
    return mask | torch.nn.functional.one_hot(forced, ACT).bool()


def make_policy(seed: int = 0, **kw) -> RecurrentPolicy:
    torch.manual_seed(seed)
    kw.setdefault("hidden", 32)
    kw.setdefault("lstm_hidden", 16)
    policy = RecurrentPolicy(OBS, ACT, **kw)
    g = torch.Generator().manual_seed(seed + 100)
    policy.update_obs_norm(torch.randn(64, OBS, generator=g) * 3 + 1)  # a non-trivial normaliser
    return policy


# ---- masks --------------------------------------------------------------------------------

def test_masked_actions_never_sampled():
    g = torch.Generator().manual_seed(0)
    # Directly: illegal actions get the largest logits and must still never come out.
    mask = random_masks(g, 256)
    logits = torch.where(mask, 0.0, 50.0)
    dist = masked_categorical(logits, mask)
    samples = dist.sample((200,))  # (200, 256)
    assert mask.gather(1, samples.T).all()
    assert (dist.probs[~mask] == 0).all()
    # Through the policy, over steps with fresh random masks.
    policy = make_policy()
    state = policy.initial_state(256)
    start = torch.ones(256, dtype=torch.bool)
    for _ in range(20):
        mask = random_masks(g, 256)
        action, logprob, entropy, _, state = policy.act(torch.randn(256, OBS, generator=g), state,
                                                        start, mask)
        assert mask.gather(1, action[:, None]).all()
        assert torch.isfinite(logprob).all()
        start = torch.zeros(256, dtype=torch.bool)
    det, *_ = policy.act(torch.randn(256, OBS, generator=g), state, start, mask, deterministic=True)
    assert mask.gather(1, det[:, None]).all()


def test_entropy_finite_with_masks():
    mask = torch.tensor([[True, False, False, False, False],   # one legal action: entropy 0
                         [True, True, False, False, True],
                         [True, True, True, True, True]])
    logits = torch.randn(3, ACT, requires_grad=True)
    dist = masked_categorical(logits, mask)
    entropy = dist.entropy()
    assert torch.isfinite(entropy).all()
    assert entropy[0].item() == pytest.approx(0.0, abs=1e-6)
    assert (entropy[1:] > 0).all()
    (entropy.sum() + dist.log_prob(torch.tensor([0, 4, 2])).sum()).backward()
    assert torch.isfinite(logits.grad).all()
    assert (mask_logits(logits, mask)[~mask] == torch.finfo(torch.float32).min).all()


# ---- recurrence ---------------------------------------------------------------------------

def test_state_reset_at_episode_start():
    policy = make_policy()
    g = torch.Generator().manual_seed(1)
    n = 6
    state = policy.initial_state(n)
    no_start = torch.zeros(n, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(5):  # build up a non-zero history
            _, _, state = policy.step(torch.randn(n, OBS, generator=g), state, no_start)
        assert state[0].abs().sum() > 0
        obs = torch.randn(n, OBS, generator=g)
        start = torch.tensor([True, False, True, False, True, False])
        logits, value, new_state = policy.step(obs, state, start)
        fresh_logits, fresh_value, fresh_state = policy.step(obs, policy.initial_state(n), start)
        stale_logits, _, _ = policy.step(obs, state, no_start)
    torch.testing.assert_close(logits[start], fresh_logits[start], rtol=0, atol=1e-6)
    torch.testing.assert_close(value[start], fresh_value[start], rtol=0, atol=1e-6)
    torch.testing.assert_close(new_state[0][start], fresh_state[0][start], rtol=0, atol=1e-6)
    torch.testing.assert_close(logits[~start], stale_logits[~start], rtol=0, atol=1e-6)
    assert not torch.allclose(logits[~start], fresh_logits[~start], atol=1e-6)  # history matters


def _lstm_step_by_step(lstm, x, state, starts):
    """The reference: one LSTM call per step, the state zeroed wherever an agent restarts."""
    h, c = state
    outs = []
    for t in range(x.shape[0]):
        keep = (~starts[t]).to(x.dtype).view(1, -1, 1) if t else 1.0
        out, (h, c) = lstm(x[t:t + 1], (h * keep, c * keep))
        outs.append(out)
    return torch.cat(outs), (h[0], c[0])


@pytest.mark.parametrize("pattern", ["sparse", "two_in_one_row", "last_step", "dense"])
def test_lstm_with_resets_equals_step_by_step(pattern: str):
    """One call with restarts as extra rows (and the per-stretch fallback for dense restarts)
    gives the outputs, final state and gradients of stepping one step at a time."""
    g = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    T, N, I, H = 9, 6, 4, 5
    lstm = torch.nn.LSTM(I, H)
    starts = torch.zeros(T, N, dtype=torch.bool)
    if pattern == "sparse":
        starts[3, 1] = starts[5, 4] = starts[3, 2] = True
    elif pattern == "two_in_one_row":
        starts[2, 0] = starts[6, 0] = starts[4, 3] = True
    elif pattern == "last_step":
        starts[T - 1, 5] = starts[1, 5] = True
    else:
        starts = torch.rand(T, N, generator=g) < 0.5
    starts[0, 2] = True  # a start at t = 0 is the caller's (state masked before the call)
    x = torch.randn(T, N, I, generator=g, requires_grad=True)
    h0 = torch.randn(1, N, H, generator=g, requires_grad=True)
    c0 = torch.randn(1, N, H, generator=g, requires_grad=True)
    weights = torch.randn(T, N, H, generator=g)

    def grads(fn):
        out, (h, c) = fn()
        total = (out * weights).sum() + h.pow(2).sum() + c.sum()
        params = [x, h0, c0, *lstm.parameters()]
        return out.detach(), h.detach(), c.detach(), torch.autograd.grad(total, params)

    ref = grads(lambda: _lstm_step_by_step(lstm, x, (h0, c0), starts))
    rows = []
    hook = lstm.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[1]))
    got = grads(lambda: lstm_with_resets(lstm, x, (h0, c0), starts))
    hook.remove()
    if pattern != "dense":  # one call, its rows padded to a multiple (oneDNN's kernels)
        assert rows[0] % ROW_MULTIPLE == 0 and rows[0] > N
    for a, b in zip(ref[:3], got[:3]):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    for a, b in zip(ref[3], got[3]):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    out, none = lstm_with_resets(lstm, x, (h0, c0), starts, final_state=False)
    assert none is None
    torch.testing.assert_close(out.detach(), ref[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("pattern", ["joins", "joins_and_restarts", "mixed", "dense"])
def test_lstm_with_resets_replays_only_the_needed_outputs(pattern: str, monkeypatch):
    """With `needed`, a row whose first restart comes before any needed output starts at
    that restart instead of taking an extra row: the needed outputs and their gradients are
    those of stepping one step at a time, and the LSTM runs on fewer rows."""
    monkeypatch.setattr("agents.policy.ROW_MULTIPLE", 1)  # rows counted without padding
    g = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    T, N, I, H = 9, 6, 4, 5
    lstm = torch.nn.LSTM(I, H)
    starts = torch.zeros(T, N, dtype=torch.bool)
    needed = torch.ones(T, N, dtype=torch.bool)
    if pattern in ("joins", "joins_and_restarts", "mixed"):
        starts[3, 1] = True  # row 1: not in the game before step 3
        needed[:3, 1] = False
        starts[6, 4] = True  # row 4: joins at the last steps
        needed[:6, 4] = False
        needed[7:, 0] = False  # row 0: gone at the end (nothing to do with restarts)
    if pattern == "joins_and_restarts":
        starts[7, 1] = True  # and row 1 starts another episode later: an extra row
    if pattern == "mixed":
        starts[5, 2] = True  # row 2 acts before its restart: an extra row
        needed[:2, 2] = False
    if pattern == "dense":
        starts = torch.rand(T, N, generator=g) < 0.5
        needed = torch.rand(T, N, generator=g) < 0.5
    x = torch.randn(T, N, I, generator=g, requires_grad=True)
    h0 = torch.randn(1, N, H, generator=g, requires_grad=True)
    c0 = torch.randn(1, N, H, generator=g, requires_grad=True)
    weights = torch.randn(T, N, H, generator=g) * needed.unsqueeze(-1)
    rows = []
    lstm.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[1]))

    def grads(fn):
        out = fn()
        total = (out * weights).sum()
        return out.detach(), torch.autograd.grad(total, [x, h0, c0, *lstm.parameters()],
                                                 allow_unused=True)

    ref_out, ref_grads = grads(lambda: _lstm_step_by_step(lstm, x, (h0, c0), starts)[0])
    rows.clear()
    plain = lstm_with_resets(lstm, x, (h0, c0), starts, final_state=False)[0]
    plain_rows = sum(rows)
    rows.clear()
    out, got_grads = grads(lambda: lstm_with_resets(lstm, x, (h0, c0), starts,
                                                    final_state=False, needed=needed)[0])
    torch.testing.assert_close(out[needed], ref_out[needed], rtol=0, atol=1e-6)
    torch.testing.assert_close(plain.detach(), ref_out, rtol=0, atol=1e-6)
    for a, b in zip(ref_grads, got_grads):
        b = torch.zeros_like(a) if b is None else b
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    extra = {"joins": 0, "joins_and_restarts": 1, "mixed": 1}
    if pattern in extra:
        assert sum(rows) == N + extra[pattern] < plain_rows


@pytest.mark.parametrize("starts_kind", ["middle", "none", "every"])
def test_forward_sequence_reproduces_steps(starts_kind: str):
    policy = make_policy()
    g = torch.Generator().manual_seed(2)
    T, N = 12, 5
    with torch.no_grad():  # a stored non-zero state at the chunk's start
        state0 = policy.initial_state(N)
        for _ in range(3):
            _, _, state0 = policy.step(torch.randn(N, OBS, generator=g), state0,
                                       torch.zeros(N, dtype=torch.bool))
    obs = torch.randn(T, N, OBS, generator=g)
    masks = random_masks(g, T, N)
    if starts_kind == "middle":
        starts = torch.rand(T, N, generator=g) < 0.2
        starts[0, 0] = True
        starts[4, 1] = True
        starts[7] = False
    elif starts_kind == "none":
        starts = torch.zeros(T, N, dtype=torch.bool)
    else:
        starts = torch.ones(T, N, dtype=torch.bool)

    # Actor side: step by step, sampling actions.
    actions, logprobs, values = [], [], []
    state = state0
    for t in range(T):
        a, lp, _, v, state = policy.act(obs[t], state, starts[t], masks[t])
        actions.append(a), logprobs.append(lp), values.append(v)
    actions, logprobs, values = torch.stack(actions), torch.stack(logprobs), torch.stack(values)

    # Learner side: replay the chunk from the stored state.
    new_logprobs, entropy, new_values = policy.evaluate_actions(obs, state0, starts, masks, actions)
    torch.testing.assert_close(new_logprobs.detach(), logprobs, rtol=0, atol=1e-5)
    torch.testing.assert_close(new_values.detach(), values, rtol=0, atol=1e-5)
    _, _, final_state = policy.forward_sequence(obs, state0, starts, masks)
    torch.testing.assert_close(final_state[0].detach(), state[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(final_state[1].detach(), state[1], rtol=0, atol=1e-5)

    # And the replay trains: one PPO loss backward gives finite gradients everywhere.
    valid = torch.ones(T, N, dtype=torch.bool)
    loss, _ = ppo_loss(new_logprobs, logprobs, entropy, new_values, values, torch.randn(T, N, generator=g),
                       torch.randn(T, N, generator=g), valid, clip_coef=0.2, clip_vloss=True,
                       vf_clip_coef=0.2, ent_coef=0.01, vf_coef=0.5, norm_adv=True)
    loss.backward()
    for name, p in policy.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_feed_forward_ignores_history():
    g = torch.Generator().manual_seed(3)
    T, N = 6, 4
    last = torch.randn(1, N, OBS, generator=g)
    hist_a = torch.cat([torch.randn(T - 1, N, OBS, generator=g), last])
    hist_b = torch.cat([torch.randn(T - 1, N, OBS, generator=g), last])
    starts = torch.zeros(T, N, dtype=torch.bool)
    outs = {}
    for use_lstm in (False, True):
        policy = make_policy(use_lstm=use_lstm)
        with torch.no_grad():
            la, va, sa = policy.forward_sequence(hist_a, policy.initial_state(N), starts, None)
            lb, vb, _ = policy.forward_sequence(hist_b, policy.initial_state(N), starts, None)
        outs[use_lstm] = (la[-1], lb[-1], va[-1], vb[-1])
        if not use_lstm:
            assert sa[0].shape == (N, 16) and (sa[0] == 0).all() and (sa[1] == 0).all()
    la, lb, va, vb = outs[False]
    torch.testing.assert_close(la, lb, rtol=0, atol=1e-6)
    torch.testing.assert_close(va, vb, rtol=0, atol=1e-6)
    la, lb, va, vb = outs[True]
    assert not torch.allclose(la, lb, atol=1e-6) or not torch.allclose(va, vb, atol=1e-6)


# ---- entity encoder -----------------------------------------------------------------------

LAYOUT = EntityLayout(flat_dim=6, num_entities=5, entity_dim=4)


def entity_obs(g: torch.Generator, n: int) -> torch.Tensor:
    flat = torch.randn(n, LAYOUT.flat_dim, generator=g)
    ents = torch.randn(n, LAYOUT.num_entities, LAYOUT.entity_dim, generator=g)
    present = torch.rand(n, LAYOUT.num_entities, generator=g) < 0.6
    present[0] = False  # one observation with no entity at all
    ents[..., 0] = present.float()
    ents[~present] = 0.0
    return torch.cat([flat, ents.reshape(n, -1)], dim=-1)


def permute_entities(obs: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    flat, ents = obs[:, :LAYOUT.flat_dim], obs[:, LAYOUT.flat_dim:].reshape(len(obs), LAYOUT.num_entities, -1)
    return torch.cat([flat, ents[:, perm].reshape(len(obs), -1)], dim=-1)


def garble_absent(obs: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    ents = obs[:, LAYOUT.flat_dim:].reshape(len(obs), LAYOUT.num_entities, -1).clone()
    absent = ents[..., 0] < 0.5
    noise = torch.randn(ents.shape, generator=g) * 10
    noise[..., 0] = 0.0  # still absent
    ents[absent] = noise[absent]
    return torch.cat([obs[:, :LAYOUT.flat_dim], ents.reshape(len(obs), -1)], dim=-1)


def test_entity_encoder_order_invariant_and_ignores_absent():
    torch.manual_seed(0)
    encoder = EntityEncoder(LAYOUT, hidden=16)
    g = torch.Generator().manual_seed(4)
    obs = entity_obs(g, 32)
    with torch.no_grad():
        out = encoder(obs)
        for _ in range(3):
            perm = torch.randperm(LAYOUT.num_entities, generator=g)
            torch.testing.assert_close(encoder(permute_entities(obs, perm)), out, rtol=0, atol=1e-6)
        torch.testing.assert_close(encoder(garble_absent(obs, g)), out, rtol=0, atol=1e-6)
        # ... while the contents of present rows do matter
        changed = obs.clone()
        changed[:, LAYOUT.flat_dim + 1:] += 1.0
        assert not torch.allclose(encoder(changed)[1:], out[1:], atol=1e-4)


def test_entity_pools_are_the_max_and_mean_over_present_entities_with_their_gradients():
    g = torch.Generator().manual_seed(7)
    base = torch.randn(6, 5, 3, generator=g, dtype=torch.float64)
    base[1, :, 0] = -1.0  # a feature whose ReLU is dead for every entity: ties at 0
    present = torch.rand(6, 5, generator=g) < 0.6
    present[0] = False  # no entity at all: zeros
    present[2] = True
    leaf = base.clone().requires_grad_()
    pmax, pmean = pool_entities(torch.relu(leaf), present)
    weights = torch.randn(2, 3, generator=g, dtype=torch.float64)
    ((pmax * weights[0]).sum() + (pmean * weights[1]).sum()).backward()
    ref = base.clone().requires_grad_()
    emb = torch.relu(ref)
    want_max, want_mean = [], []
    for n in range(6):  # by hand, over the present entities alone
        rows = emb[n, present[n]]
        want_max.append(rows.amax(0) if len(rows) else torch.zeros(3, dtype=torch.float64))
        want_mean.append(rows.mean(0) if len(rows) else torch.zeros(3, dtype=torch.float64))
    want_max, want_mean = torch.stack(want_max), torch.stack(want_mean)
    torch.testing.assert_close(pmax, want_max, rtol=0, atol=0)
    torch.testing.assert_close(pmean, want_mean, rtol=0, atol=1e-15)
    ((want_max * weights[0]).sum() + (want_mean * weights[1]).sum()).backward()
    torch.testing.assert_close(leaf.grad, ref.grad, rtol=0, atol=1e-15)
    assert (leaf.grad[~present] == 0).all()  # absent entities get no gradient


def test_policy_with_entity_encoder_and_normaliser():
    """Through the policy, with a fitted normaliser: presence is read from the raw observation."""
    torch.manual_seed(0)
    policy = RecurrentPolicy(LAYOUT.obs_dim, ACT, hidden=16, lstm_hidden=8, entity_layout=LAYOUT)
    g = torch.Generator().manual_seed(5)
    fit = entity_obs(g, 128)
    fit[:, :LAYOUT.flat_dim] = fit[:, :LAYOUT.flat_dim] * 2 + 0.5
    valid = torch.ones(128, dtype=torch.bool)
    valid[-8:] = False  # padding rows are left out
    policy.update_obs_norm(fit, valid)
    n_present = int(fit[:120, LAYOUT.flat_dim::LAYOUT.entity_dim].sum())
    sd = policy.state_dict()
    assert sd["obs_rms.count"].item() == 120 and sd["obs_rms.mean"].shape == (LAYOUT.flat_dim,)
    # one set of entity statistics shared by all slots, fitted on present rows only
    assert sd["entity_rms.count"].item() == n_present and sd["entity_rms.mean"].shape == (LAYOUT.entity_dim,)
    assert sd["entity_rms.mean"][0].item() == 1.0
    obs = entity_obs(g, 32)
    state, start = policy.initial_state(32), torch.ones(32, dtype=torch.bool)
    with torch.no_grad():
        logits, value, _ = policy.step(obs, state, start)
        perm = torch.randperm(LAYOUT.num_entities, generator=g)
        for other in (permute_entities(obs, perm), garble_absent(obs, g)):
            l2, v2, _ = policy.step(other, state, start)
            torch.testing.assert_close(l2, logits, rtol=0, atol=1e-5)
            torch.testing.assert_close(v2, value, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="obs_dim"):
        RecurrentPolicy(LAYOUT.obs_dim + 1, ACT, entity_layout=LAYOUT)


def test_the_moba_declares_its_entity_layout_as_plain_numbers():
    from games.vector import make_vec

    vec = make_vec("moba", 1)
    layout = vec.layout
    el = EntityLayout(*vec.roles[0].entity_layout)
    assert el.obs_dim == layout.obs_dim
    assert el.num_entities == layout.num_entities
    assert el.flat_dim == layout.obs_slices["self"].stop


# ---- saving -------------------------------------------------------------------------------

def test_state_dict_round_trip_includes_obs_normaliser():
    policy = make_policy(seed=0)
    sd = policy.state_dict()
    assert {"obs_rms.mean", "obs_rms.var", "obs_rms.count"} <= set(sd)
    assert sd["obs_rms.count"].item() == 64
    fresh = make_policy(seed=1)  # other weights and other normaliser statistics
    fresh.load_state_dict(sd)
    g = torch.Generator().manual_seed(6)
    obs, starts = torch.randn(4, 3, OBS, generator=g), torch.zeros(4, 3, dtype=torch.bool)
    with torch.no_grad():
        a = policy.forward_sequence(obs, policy.initial_state(3), starts)
        b = fresh.forward_sequence(obs, fresh.initial_state(3), starts)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    torch.testing.assert_close(a[1], b[1], rtol=0, atol=0)
    torch.testing.assert_close(fresh.obs_rms.mean, policy.obs_rms.mean, rtol=0, atol=0)
    # The weights travel as safetensors bytes (DESIGN.md); the float64 / 0-d buffers must too.
    import safetensors.torch as safetensors_torch  # a core dependency

    loaded = safetensors_torch.load(safetensors_torch.save(sd))
    assert loaded["obs_rms.mean"].dtype == torch.float64 and loaded["obs_rms.count"].shape == ()
    fresh.load_state_dict(loaded)


def test_any_game_that_declares_an_entity_layout_gets_the_entity_encoder():
    import games
    from arena.config import load_config
    from arena.learn.networks import build_policy
    from games.memory import MemoryGame
    from games.vector import make_vec

    def declared(layout):
        def factory(**kwargs):
            env = MemoryGame(**kwargs)  # observations of 6 numbers
            env.entity_layout = layout
            return env
        return factory

    try:
        games.register("memory_entities", declared((2, 1, 4)), overwrite=True)
        games.register("memory_bad_entities", declared((2, 2, 4)), overwrite=True)
        vec = make_vec("memory_entities", 1)
        (role,) = vec.roles
        assert role.entity_layout == (2, 1, 4)
        cfg = load_config(None, ["game.name=memory_entities", "league.bots=[]", "eval.bots=null",
                                 "league.bot_prob=0"])
        assert isinstance(build_policy(role, cfg).encoder, EntityEncoder)
        cfg.model.encoder = "mlp"
        assert not isinstance(build_policy(role, cfg).encoder, EntityEncoder)
        flat = make_vec("memory", 1).roles[0]
        cfg.model.encoder = "entity"
        with pytest.raises(ValueError, match="declares none"):
            build_policy(flat, cfg)
        with pytest.raises(ValueError, match="does not split its 6 observations"):
            make_vec("memory_bad_entities", 1)
    finally:
        from games import registry

        for name in ("memory_entities", "memory_bad_entities"):
            registry._REGISTRY.pop(name, None)
            registry._FACTORIES.pop(name, None)


@pytest.mark.parametrize("entities", [False, True])
def test_a_batch_first_minibatch_seen_time_major_gives_the_same_replay(entities: bool):
    """The learner hands its minibatches over as the (T, N, D) transpose of chunk-major
    (N, T, D) rows: the replay (outputs and gradients) equals that of the same data laid
    out time-major, with an MLP or an entity encoder, prenormalised or not."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(6)
    T, N = 5, 7
    if entities:
        policy = RecurrentPolicy(LAYOUT.obs_dim, ACT, hidden=16, lstm_hidden=8,
                                 entity_layout=LAYOUT)
        policy.update_obs_norm(entity_obs(g, 64))
        obs = entity_obs(g, T * N).reshape(T, N, -1)
    else:
        policy = make_policy()
        obs = torch.randn(T, N, OBS, generator=g)
    starts = torch.rand(T, N, generator=g) < 0.2
    masks = random_masks(g, T, N)
    actions = torch.randint(ACT, (T, N), generator=g)
    state = (torch.randn(N, policy.lstm_hidden, generator=g),
             torch.randn(N, policy.lstm_hidden, generator=g))
    batch_first = obs.transpose(0, 1).contiguous()  # (N, T, D), as the learner stores it
    for normalized in ([False] if entities else [False, True]):
        results = []
        for x in (obs, batch_first.transpose(0, 1)):
            assert x.is_contiguous() == (x is obs)
            if normalized:
                x = policy.normalize_obs(x)
            policy.zero_grad()
            lp, ent, v = policy.evaluate_actions(x, state, starts, masks, actions,
                                                 normalized=normalized)
            (lp.sum() + ent.sum() + v.sum()).backward()
            results.append((lp.detach(), v.detach(),
                            [p.grad.clone() for p in policy.parameters() if p.grad is not None]))
        (lp_a, v_a, g_a), (lp_b, v_b, g_b) = results
        torch.testing.assert_close(lp_b, lp_a, rtol=0, atol=1e-6)
        torch.testing.assert_close(v_b, v_a, rtol=0, atol=1e-6)
        for a, b in zip(g_a, g_b):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_under_bf16_autocast_the_state_stays_in_the_weights_dtype():
    policy = make_policy()
    g = torch.Generator().manual_seed(4)
    N = 6
    state = policy.initial_state(N)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits, values, (h, c) = policy.step(torch.randn(N, OBS, generator=g), state,
                                             torch.zeros(N, dtype=torch.bool))
        _, _, (hs, cs) = policy.forward_sequence(torch.randn(5, N, OBS, generator=g), state,
                                                 torch.rand(5, N, generator=g) < 0.3)
    assert logits.dtype == values.dtype == torch.float32
    assert h.dtype == c.dtype == hs.dtype == cs.dtype == torch.float32
    state[0][torch.tensor([1, 3])] = h[:2]  # an indexed write into a kept state works


def test_a_single_step_runs_the_lstm_cell_by_hand_with_torch_lstm_numbers():
    """Acting is one-step calls, where the fused nn.LSTM call costs more than its
    arithmetic: lstm_with_resets computes a one-step call by hand (agents.policy._lstm_step),
    which must give nn.LSTM's numbers, in float64 to the last bit."""
    torch.manual_seed(0)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        lstm = torch.nn.LSTM(16, 8).to(dtype)
        x = torch.randn(1, 5, 16, dtype=dtype)
        state = (torch.randn(1, 5, 8, dtype=dtype), torch.randn(1, 5, 8, dtype=dtype))
        starts = torch.zeros(1, 5, dtype=torch.bool)
        out, (h, c) = lstm_with_resets(lstm, x, state, starts)
        ref, (h_ref, c_ref) = lstm(x, state)
        torch.testing.assert_close(out, ref, rtol=0, atol=tol)
        torch.testing.assert_close(h, h_ref[0], rtol=0, atol=tol)
        torch.testing.assert_close(c, c_ref[0], rtol=0, atol=tol)
