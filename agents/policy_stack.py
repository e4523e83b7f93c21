"""Frozen policies of one architecture, played together in one forward pass.

Why: a league collector plays each game against the latest policy, a bot, or one of the
pool's past snapshots, and every snapshot in play acts at every step. On the CPU a
snapshot's own forward over its few rows is nearly all per-call overhead (0.6-1 ms with
the entity encoder at 3 rows), so once a dozen snapshots were in play the default run's
collection took 3x as long as at its start. A stack keeps the weights of up to `capacity`
policies in (K, ...) tensors and runs each layer once for all of them, as a batched
matmul over the snapshots with each snapshot's rows padded to the largest count: the
calls of one forward, whatever the number of snapshots. The numbers are each policy's own
`step`'s up to float rounding (tests/test_policy_stack.py).

Frozen: a slot is a copy of the policy's weights when it was loaded; a policy trained
since (a live network) must be played on its own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from agents.policy import (
    EntityEncoder,
    RecurrentPolicy,
    State,
    lstm_cell,
    mask_logits,
    pool_entities,
)


def architecture(policy: RecurrentPolicy) -> tuple:
    """What must agree for two policies to share a stack: encoder, layout, recurrence,
    normalisers, and every weight's name, shape and dtype."""
    return (type(policy.encoder).__name__, policy.entity_layout, policy.use_lstm,
            policy.obs_rms is not None, policy.entity_rms is not None,
            tuple((k, tuple(v.shape), v.dtype) for k, v in policy.state_dict().items()))


def _linear(x: Tensor, w: tuple[Tensor, Tensor]) -> Tensor:
    """x (K, R, in) through K linear layers, weights (K, in, out) and biases (K, 1, out)."""
    return torch.baddbmm(w[1], x, w[0])


class PolicyStack:
    """Up to `capacity` frozen copies of `like`'s architecture (growing when more are in
    play at once), each in a slot; `slots` loads policies by key, `step` plays rows of any
    slots in one forward."""

    def __init__(self, like: RecurrentPolicy, capacity: int = 8) -> None:
        self.arch = architecture(like)
        self.like = like
        self.lstm_hidden = like.lstm_hidden
        self.num_actions = like.num_actions
        p = like.actor.weight
        self.dtype, self.device = p.dtype, p.device
        # the linear layers a step runs (the critic's value is not needed to act)
        self._linears = [name for name, m in like.named_modules()
                         if isinstance(m, nn.Linear) and name != "critic"]
        self.capacity = 0
        self._w: dict[str, tuple[Tensor, Tensor]] = {}
        self._keys: OrderedDict[Hashable, int] = OrderedDict()  # key -> slot, least recent first
        self._grow(max(1, capacity))

    # ---- slots ---------------------------------------------------------------------------
    def _shapes(self) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
        like, out = self.like, {}
        for name in self._linears:
            m = like.get_submodule(name)
            out[name] = ((m.in_features, m.out_features), (1, m.out_features))
        if like.use_lstm:
            H, inp = like.lstm_hidden, like.lstm.input_size
            out["lstm"] = ((inp + H, 4 * H), (1, 4 * H))  # [input, h] in one matmul
        if like.obs_rms is not None:
            d = like.obs_rms.mean.shape
            out["obs_rms"] = ((1, *d), (1, *d))  # scale, shift
        if like.entity_rms is not None:
            d = like.entity_rms.mean.shape
            out["entity_rms"] = ((1, 1, *d), (1, 1, *d))
        return out

    def _grow(self, capacity: int) -> None:
        new = {name: tuple(torch.zeros((capacity, *shape), dtype=self.dtype, device=self.device)
                           for shape in shapes) for name, shapes in self._shapes().items()}
        for name, pair in self._w.items():
            for old, fresh in zip(pair, new[name]):
                fresh[:self.capacity] = old
        self._w, self.capacity = new, capacity
        self._layouts: dict[tuple, tuple] = {}  # their views of the old weights are stale

    @torch.no_grad()
    def _load(self, slot: int, policy: RecurrentPolicy) -> None:
        if architecture(policy) != self.arch:
            raise ValueError("PolicyStack: a policy of another architecture than the stack's")
        for name in self._linears:
            m = policy.get_submodule(name)
            self._w[name][0][slot] = m.weight.t()
            self._w[name][1][slot, 0] = m.bias
        if policy.use_lstm:
            lstm = policy.lstm
            self._w["lstm"][0][slot] = torch.cat([lstm.weight_ih_l0, lstm.weight_hh_l0], 1).t()
            self._w["lstm"][1][slot, 0] = lstm.bias_ih_l0 + lstm.bias_hh_l0
        for name in ("obs_rms", "entity_rms"):
            rms = getattr(policy, name)
            if rms is not None:  # RunningMeanStd.normalize's (x - mean) / std, as a scale
                scale, shift = self._w[name]  # and a shift (in float64, then rounded)
                std = torch.sqrt(rms.var + rms.epsilon)
                scale[slot] = (1.0 / std).to(self.dtype)
                shift[slot] = (-rms.mean / std).to(self.dtype)

    def slots(self, keys: Sequence[Hashable],
              load: Callable[[Hashable], RecurrentPolicy]) -> np.ndarray:
        """The slot of each of `keys` (the policies in play now), loading `load(key)` into a
        free slot, or that of the least recently used key not in play, where not held."""
        need = list(dict.fromkeys(keys))
        for key in need:
            if key in self._keys:
                self._keys.move_to_end(key)
        missing = [k for k in need if k not in self._keys]
        if missing:
            if len(need) > self.capacity:
                self._grow(max(2 * self.capacity, len(need)))
            free = sorted(set(range(self.capacity)) - set(self._keys.values()))
            wanted = set(need)
            for key in missing:
                if free:
                    slot = free.pop(0)
                else:  # the least recently used key out of play gives its slot up
                    old = next(k for k in self._keys if k not in wanted)
                    slot = self._keys.pop(old)
                self._load(slot, load(key))
                self._keys[key] = slot
        return np.array([self._keys[k] for k in keys], np.int64)

    # ---- acting ----------------------------------------------------------------------------
    def _layout(self, slot: np.ndarray, device: torch.device) -> tuple:
        """How `step` pads rows of these slots: (K slots from the lowest, R rows per slot,
        each row's place in the padded (K * R) rows, the K slots' weights). Kept for the
        slot arrays seen last: a league plays the same rows against the same snapshots at
        every step of an episode, and working it out anew took a tenth of a stack step."""
        key = (slot.tobytes(), str(device))
        hit = self._layouts.get(key)
        if hit is not None:
            return hit
        lo = int(slot.min())
        local = slot - lo
        K = int(local.max()) + 1
        counts = np.bincount(local, minlength=K)
        R = int(counts.max())
        # row n goes to (its slot, its rank among its slot's rows), padded to R per slot
        order = np.argsort(local, kind="stable")
        rank = np.empty(slot.shape[0], np.int64)
        rank[order] = np.arange(slot.shape[0]) - (np.cumsum(counts) - counts)[local[order]]
        where = torch.from_numpy(local * R + rank).to(device)
        w = self._w if (lo, K) == (0, self.capacity) else \
            {name: (a[lo:lo + K], b[lo:lo + K]) for name, (a, b) in self._w.items()}
        if len(self._layouts) >= 16:
            self._layouts.clear()
        self._layouts[key] = out = (K, R, where, w)
        return out

    def step(self, slot: np.ndarray, obs: Tensor, state: State, episode_start: Tensor,
             action_mask: Tensor | None = None) -> tuple[Tensor, State]:
        """One step of N rows, row n played by the policy in slot[n]: obs (N, D), state
        (h, c) each (N, lstm_hidden), episode_start (N,) bool (the state is reset there),
        action_mask (N, A) or None -> logits (N, A) masked, new state. As RecurrentPolicy.step
        without the value."""
        slot = np.asarray(slot, np.int64)
        N = slot.shape[0]
        like = self.like
        if N == 0:  # no row to play
            out_dtype = torch.promote_types(self.dtype, torch.float32)
            return obs.new_zeros((0, self.num_actions), dtype=out_dtype), like.initial_state(
                0, device=obs.device)
        K, R, where, w = self._layout(slot, obs.device)
        # one padded (K, R, ...) tensor for the observations and the LSTM state (reset
        # where an episode starts)
        D, H = obs.shape[1], self.lstm_hidden
        rows = obs.to(self.dtype)
        if like.use_lstm:
            keep = (~episode_start.to(torch.bool)).to(self.dtype).unsqueeze(-1)
            rows = torch.cat([rows, torch.cat(state, dim=-1).to(self.dtype) * keep], dim=-1)
        # index_copy_/index_select: a few times cheaper than indexing with a tensor
        padded = rows.new_zeros((K * R, rows.shape[1])).index_copy_(0, where, rows)
        padded = padded.view(K, R, -1)
        raw = padded[..., :D]  # (K, R, D)
        lay = like.entity_layout
        if isinstance(like.encoder, EntityEncoder):
            F, E, ed = lay.flat_dim, lay.num_entities, lay.entity_dim
            flat, ents = raw[..., :F], raw[..., F:].reshape(K, R, E, ed)
            if like.obs_rms is not None:  # (x - mean) / std as x * scale + shift
                flat = torch.addcmul(w["obs_rms"][1], flat, w["obs_rms"][0]).clamp_(-5.0, 5.0)
                ents = torch.addcmul(w["entity_rms"][1], ents, w["entity_rms"][0]).clamp_(
                    -5.0, 5.0)
            relu = torch.relu
            emb = relu(_linear(relu(_linear(ents.reshape(K, R * E, ed),
                                            w["encoder.entity_net.0"])),
                               w["encoder.entity_net.2"])).view(K, R, E, -1)
            pooled = pool_entities(emb, raw[..., F::ed] > 0.5)
            x = torch.cat([relu(_linear(flat, w["encoder.flat_net.0"])), *pooled], dim=-1)
            x = relu(_linear(x, w["encoder.mix.0"]))
        else:
            x = raw
            if like.obs_rms is not None:
                x = torch.addcmul(w["obs_rms"][1], x, w["obs_rms"][0]).clamp_(-5.0, 5.0)
            x = torch.relu(_linear(torch.relu(_linear(x, w["encoder.net.0"])),
                                   w["encoder.net.2"]))
        if like.use_lstm:
            h, c = padded[..., D:D + H], padded[..., D + H:]
            gates = _linear(torch.cat([x, h], dim=-1), w["lstm"])
            h, c = lstm_cell(gates, c)
            feats = h
            new_state = (h.reshape(K * R, -1).index_select(0, where).to(self.dtype),
                         c.reshape(K * R, -1).index_select(0, where).to(self.dtype))
        else:
            feats = torch.relu(_linear(x, w["ff.0"]))
            new_state = like.initial_state(N, device=obs.device)
        logits = _linear(feats, w["actor"]).reshape(K * R, -1).index_select(0, where)
        out_dtype = torch.promote_types(self.dtype, torch.float32)
        return mask_logits(logits.to(out_dtype), action_mask), new_state
