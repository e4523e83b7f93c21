"""The policy network: observation normaliser -> encoder -> LSTM -> policy and value heads.

One network per role; every agent runs its own replica of it with its own LSTM state
(OpenAI Five: one replica per hero). Shapes: N = agents in a batch, T = time steps,
D = observation size, A = number of actions, H = `lstm_hidden`.

Recurrence. An agent's LSTM state is zeroed where `episode_start` is True, *before* the
observation of that step is processed, so nothing leaks from one episode into the next.
Actors call `step`/`act` once per game step; the learner replays a stored chunk with
`forward_sequence` from the state stored at the chunk's start (truncated BPTT), with the
same resets. `step` is `forward_sequence` with T = 1, so both run the same code.

Action masks. Illegal actions get the logit `torch.finfo(dtype).min` (not -inf): they are
never sampled and have probability exactly 0, while the entropy stays finite.

Observation normalisation. `policy.obs_rms` (a `RunningMeanStd` in the state_dict)
standardises and clips observations inside `forward`; it changes only when the owner calls
`policy.update_obs_norm(obs)`. With an entity layout, `obs_rms` covers the global+self part
only and `policy.entity_rms` the entity rows, with one set of statistics *shared by all
entity slots* and fitted on present rows only (per-slot statistics would make the output
depend on the order of entities). The entity encoder reads presence flags from the *raw*
observation, before normalisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Categorical

from agents.normalize import RunningMeanStd

State = tuple[Tensor, Tensor]  # (h, c), each (N, lstm_hidden)


def layer_init(layer: nn.Linear, std: float = math.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    """CleanRL's init: orthogonal weights with gain `std`, constant bias."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


def mask_logits(logits: Tensor, mask: Tensor | None) -> Tensor:
    """Logits with illegal actions (mask False) set to the dtype's most negative number.

    finfo.min rather than -inf: probabilities of illegal actions are exactly 0 and they are
    never sampled, but log-probs and the entropy stay finite (0 * finfo.min = 0, whereas
    0 * -inf = nan). A row with no legal action at all becomes uniform over all actions;
    the built-in games always leave one legal action (no-op / wait).
    """
    if mask is None:
        return logits
    return torch.where(mask.bool(), logits, torch.finfo(logits.dtype).min)


def logprobs_and_entropy(logits: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
    """log pi(action) and the entropy of the categorical distributions over `logits` (..., A)
    (masked as by `mask_logits`), for actions (...): the numbers `Categorical` gives, from
    one log-softmax, without its argument checks and second normalisation (half the time
    in the learner, where this runs once per minibatch on every stored step)."""
    logp = torch.log_softmax(logits, dim=-1)
    chosen = logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    # illegal actions: p = 0 and log p finite (finfo.min - logsumexp), so p * log p = 0
    return chosen, -(logp.exp() * logp).sum(-1)


def masked_categorical(logits: Tensor, mask: Tensor | None) -> Categorical:
    """A categorical distribution over the legal actions only (mask True = legal)."""
    return Categorical(logits=mask_logits(logits, mask))


# ---- encoders ---------------------------------------------------------------------------

class MLPEncoder(nn.Module):
    """Two-layer ReLU MLP for flat observations: (..., obs_dim) -> (..., hidden)."""

    def __init__(self, obs_dim: int, hidden: int) -> None:
        super().__init__()
        self.out_dim = hidden
        self.net = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden)), nn.ReLU(),
            layer_init(nn.Linear(hidden, hidden)), nn.ReLU(),
        )

    def forward(self, obs: Tensor, raw_obs: Tensor | None = None) -> Tensor:
        return self.net(obs)


# the rows of one LSTM call with restarts, and the chunks of a replayed minibatch, are a
# multiple of this (see lstm_with_resets and agents.ppo.chunks_to_replay)
ROW_MULTIPLE = 8


def _lstm_step(lstm: nn.LSTM, x: Tensor, state: State,
               final_state: bool) -> tuple[Tensor, State | None]:
    """One step of a one-layer `lstm` from `state` ((1, N, H) each) on x (1, N, I), with the
    gates of torch.nn.LSTM's documentation (i, f, g, o). Why by hand: a one-step call of
    the fused LSTM costs more than its arithmetic (measured on the CPU: 210 against 98 us
    at 6 rows, 427 against 336 us at 96), and acting is all one-step calls, each league
    opponent its own; the same numbers up to float rounding (~3e-7).

    On the CPU only (a GPU runs the fused cell as one kernel), and not under autocast:
    there the fused cell's bf16 numbers are the ones the update replays with, and a hand
    cell's differ by far more than rounding (one seed of the MOBA in bf16-mixed rated -4.7
    at update 60 acting by hand, 17.5 with the fused cell)."""
    h, c = state
    gates = nn.functional.linear(x[0], lstm.weight_ih_l0, lstm.bias_ih_l0) \
        + nn.functional.linear(h[0], lstm.weight_hh_l0, lstm.bias_hh_l0)
    h1, c1 = lstm_cell(gates, c[0])
    return h1.unsqueeze(0), ((h1, c1) if final_state else None)


def lstm_cell(gates: Tensor, c: Tensor) -> State:
    """An LSTM cell's new (h, c) from its pre-activation gates (..., 4H), in torch.nn.LSTM's
    order (i, f, g, o), and the cell state c (..., H)."""
    H = c.shape[-1]
    i, f, _, o = torch.sigmoid(gates).chunk(4, dim=-1)  # one call for the three gates
    c1 = torch.addcmul(f * c, i, torch.tanh(gates[..., 2 * H:3 * H]))
    return o * torch.tanh(c1), c1


def lstm_with_resets(lstm: nn.LSTM, x: Tensor, state: State, starts: Tensor, *,
                     final_state: bool = True,
                     needed: Tensor | None = None) -> tuple[Tensor, State | None]:
    """Run `lstm` (one layer, time-major) over x (T, N, I) from `state` (h, c), each
    (1, N, H), zeroing an agent's state before step t wherever starts[t, n] (t >= 1) is
    True -> outputs (T, N, H) and the final (h, c) (None with final_state=False).

    Why not one call per stretch between resets: in a minibatch of many agents nearly every
    step has some agent starting an episode, and T calls of one step cost several times one
    call of T steps (the per-call overhead dominates on CPU). Instead, every episode that
    starts inside the chunk becomes an extra row, its steps shifted to start at 0 with a
    zero state, and all rows run in one call of T steps; each output is read from the row
    of the latest episode start at or before it. Exact: an LSTM's outputs depend only on
    the state and inputs since its last reset. With more restarts than agents (very short
    episodes) the extra rows would cost more than they save, so it falls back to one call
    per stretch. The final state after a restart is the last step of a shifted row, which
    one call does not return: those rows are replayed once more (one call per distinct
    restart step) when `final_state` is asked for.

    `needed` (T, N) bool, with final_state=False: the outputs that will be read (the
    learner's valid steps); the others may be anything. A row whose first restart comes
    before any needed output (an agent that was dead, or not yet in the game, until an
    episode started mid-chunk) then needs no extra row: the row itself starts at the
    restart, from a zero state.
    """
    T, N = x.shape[:2]
    if T == 1 and x.device.type == "cpu" and not torch.is_autocast_enabled("cpu"):
        return _lstm_step(lstm, x, state, final_state)  # one step (acting): by hand
    # The bookkeeping is on (T, N) flags: numpy on one host copy of them (a handful of
    # array operations of a microsecond each, and one device sync on a GPU, where the
    # tensor version cost dozens of small kernels and several syncs per call)
    s = starts.detach().to("cpu", torch.bool).numpy() if T > 1 else None
    t0, rows = np.nonzero(s[1:]) if s is not None else (np.zeros(0, np.int64),) * 2
    if t0.size == 0:
        out, new = lstm(x, state)
        return out, (new[0].squeeze(0), new[1].squeeze(0)) if final_state else None
    t0 = t0 + 1  # restarts (t0_r, rows_r) in time order
    cuts = [0, *np.unique(t0).tolist(), T]  # the stretches between restarts
    dev = x.device
    tau = np.arange(T).reshape(T, 1)
    shift = np.zeros(N, np.int64)  # how many steps each row is moved forward (0: not moved)
    if needed is not None and not final_state:
        first = np.full(N, T)
        np.minimum.at(first, rows, t0)
        read_before = (needed.detach().to("cpu", torch.bool).numpy() & (tau < first)).any(0)
        moved = (first < T) & ~read_before
        drop = moved[rows] & (t0 == first[rows])  # those restarts become their own rows
        shift = np.where(moved, first, 0)
        t0, rows = t0[~drop], rows[~drop]
    R = t0.size
    if R > N:  # too many restarts left for extra rows: one call per stretch
        h, c = state
        outs = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            keep = (~starts[a]).to(x.dtype).view(1, N, 1) if a else 1.0
            out, (h, c) = lstm(x[a:b], (h * keep, c * keep))
            outs.append(out)
        return torch.cat(outs, dim=0), (h.squeeze(0), c.squeeze(0)) if final_state else None
    # One gather lays out every row's inputs: row n its own steps from shift[n], row N + r
    # the steps of row rows[r] from t0[r]; steps moved past the chunk's end (never read:
    # the LSTM is causal) repeat the row's last input. P rows that are never read (copies
    # of row 0) round the rows up to a multiple of ROW_MULTIPLE: the number of restarts
    # changes from call to call, and oneDNN builds a kernel for every new shape.
    P = -(N + R) % ROW_MULTIPLE if R else 0
    W = N + R + P
    src_t = np.concatenate([tau + shift, tau + t0, np.broadcast_to(tau, (T, P))],
                           axis=1).clip(max=T - 1)  # (T, W)
    src = src_t * N + np.concatenate([np.arange(N), rows, np.zeros(P, np.int64)])
    inputs = x.reshape(T * N, -1).index_select(
        0, torch.from_numpy(src.reshape(-1)).to(dev)).view(T, W, -1)
    h, c = state
    if shift.any():  # a moved row starts its episode at step 0, from a zero state
        keep = torch.from_numpy(shift == 0).to(device=dev, dtype=h.dtype).view(1, N, 1)
        h, c = h * keep, c * keep
    if R:
        zeros = h.new_zeros(1, R + P, h.shape[-1])
        h, c = torch.cat([h, zeros], dim=1), torch.cat([c, zeros], dim=1)
    out, (h_n, c_n) = lstm(inputs, (h, c))
    # each (t, n) reads the row of its latest restart at or before t (its own row, at the
    # step it was moved to, if none)
    latest = np.full((T, N), -1)
    latest[t0, rows] = np.arange(R)
    latest = np.maximum.accumulate(latest, axis=0)  # restarts are numbered in time order
    lr = latest.clip(min=0)
    col = np.where(latest >= 0, N + lr, np.arange(N))
    step = np.where(latest >= 0, tau - t0[lr] if R else 0, (tau - shift).clip(min=0))
    read = torch.from_numpy((step * W + col).reshape(-1)).to(dev)
    feats = out.reshape(T * W, -1).index_select(0, read).view(T, N, -1)
    if not final_state:
        return feats, None
    h, c = h_n[0, :N], c_n[0, :N]
    last = latest[-1]  # the restart each agent's final state continues from (-1: none)
    moved_rows = np.flatnonzero(last >= 0)
    if moved_rows.size:
        # the final state after a restart is the last step of a shifted row, which one
        # call does not return: replay those rows once more, one call per restart step
        h, c = h.clone(), c.clone()
        starts_of = t0[last[moved_rows]]
        for s0 in np.unique(starts_of):
            who = torch.from_numpy(moved_rows[starts_of == s0]).to(dev)
            z = h.new_zeros(1, who.numel(), h.shape[-1])
            _, (hs, cs) = lstm(x[int(s0):, who], (z, z))
            h[who], c[who] = hs[0], cs[0]
    return feats, (h, c)


@dataclass(frozen=True)
class EntityLayout:
    """How a flat observation splits: `flat_dim` global+self features, then entity rows.

    The last `num_entities * entity_dim` features reshape to (num_entities, entity_dim);
    feature 0 of each entity row is its presence flag (1 = present, 0 = padding).
    """

    flat_dim: int
    num_entities: int
    entity_dim: int

    @property
    def obs_dim(self) -> int:
        return self.flat_dim + self.num_entities * self.entity_dim



class EntityEncoder(nn.Module):
    """Encoder for [global+self | entity rows]: permutation-invariant over entities.

    Each entity row goes through the same MLP (shared weights); the embeddings of the
    *present* entities are pooled by max and by mean (absent rows are masked out, so their
    contents never matter, and the order of entities does not either); the pools are
    concatenated with an MLP embedding of the global+self part and mixed by one layer.
    With no entity present both pools are zeros.
    """

    def __init__(self, layout: EntityLayout, hidden: int) -> None:
        super().__init__()
        self.layout = layout
        self.out_dim = hidden
        self.flat_net = nn.Sequential(layer_init(nn.Linear(layout.flat_dim, hidden)), nn.ReLU())
        self.entity_net = nn.Sequential(
            layer_init(nn.Linear(layout.entity_dim, hidden)), nn.ReLU(),
            layer_init(nn.Linear(hidden, hidden)), nn.ReLU(),
        )
        self.mix = nn.Sequential(layer_init(nn.Linear(3 * hidden, hidden)), nn.ReLU())

    def forward(self, obs: Tensor, raw_obs: Tensor | None = None) -> Tensor:
        """obs (..., obs_dim) -> (..., hidden). Presence is read from `raw_obs` (default obs)."""
        lay = self.layout
        raw = obs if raw_obs is None else raw_obs
        lead = obs.shape[:-1]
        flat = obs[..., :lay.flat_dim]
        ents = obs[..., lay.flat_dim:].reshape(*lead, lay.num_entities, lay.entity_dim)
        present = raw[..., lay.flat_dim::lay.entity_dim] > 0.5  # (..., num_entities)
        emb = self.entity_net(ents)  # (..., E, hidden)
        return self.mix(torch.cat([self.flat_net(flat), *pool_entities(emb, present)], dim=-1))


def pool_entities(emb: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
    """Max and mean over the present entities' embeddings emb (..., E, hidden), which are
    >= 0 (they come out of a ReLU), present (..., E) bool -> two (..., hidden); zeros where
    no entity is present.

    Absent entities are zeroed once for both pools: with embeddings >= 0 a zero never
    exceeds the present entities' maximum, so the max is theirs (and 0 with none present),
    and the gradients are those of a max over the present ones alone (a tie at 0 is a dead
    ReLU, whose gradient is 0 either way). One pass instead of a fill to the dtype's minimum
    and a second fill: 1.6x faster forward and backward, and 2-4x in acting."""
    kept = emb * present.unsqueeze(-1).to(emb.dtype)
    n_present = present.sum(dim=-1, keepdim=True).clamp(min=1).to(emb.dtype)
    return kept.amax(dim=-2), kept.sum(dim=-2) / n_present


# ---- the policy -------------------------------------------------------------------------

class RecurrentPolicy(nn.Module):
    """obs normaliser -> encoder -> LSTM (1 layer) -> policy logits and value.

    `use_lstm=False` swaps the LSTM for a ReLU layer of the same width; the state is then
    ignored and returned as zeros (same shapes, so actors need no special case). It exists
    to show that the memory game needs recurrence.

    Outputs (logits, values) are at least float32 even under autocast (float64 for a
    float64 policy), so distributions, log-probs and the PPO loss are in full precision.
    Observations of any dtype are cast to the parameters' dtype; the LSTM state is kept
    in the parameters' dtype.
    """

    def __init__(self, obs_dim: int, num_actions: int, *, hidden: int = 128, lstm_hidden: int = 128,
                 use_lstm: bool = True, entity_layout: EntityLayout | None = None,
                 normalize_obs: bool = True) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.num_actions = num_actions
        self.lstm_hidden = lstm_hidden
        self.use_lstm = use_lstm
        self.entity_layout = entity_layout
        self.obs_rms: RunningMeanStd | None = None
        self.entity_rms: RunningMeanStd | None = None
        if entity_layout is None:
            self.encoder: nn.Module = MLPEncoder(obs_dim, hidden)
            if normalize_obs:
                self.obs_rms = RunningMeanStd((obs_dim,))
        else:
            if entity_layout.obs_dim != obs_dim:
                raise ValueError(f"entity_layout describes {entity_layout.obs_dim} features "
                                 f"({entity_layout}), but obs_dim is {obs_dim}")
            self.encoder = EntityEncoder(entity_layout, hidden)
            if normalize_obs:
                self.obs_rms = RunningMeanStd((entity_layout.flat_dim,))
                self.entity_rms = RunningMeanStd((entity_layout.entity_dim,))
        if use_lstm:
            self.lstm = nn.LSTM(hidden, lstm_hidden, num_layers=1)
            for name, param in self.lstm.named_parameters():
                if "bias" in name:
                    nn.init.constant_(param, 0.0)
                elif "weight" in name:
                    nn.init.orthogonal_(param, 1.0)
        else:
            self.ff = nn.Sequential(layer_init(nn.Linear(hidden, lstm_hidden)), nn.ReLU())
        self.actor = layer_init(nn.Linear(lstm_hidden, num_actions), std=0.01)
        self.critic = layer_init(nn.Linear(lstm_hidden, 1), std=1.0)

    # ---- state and normalisation ----------------------------------------------------------
    def initial_state(self, n: int, device: torch.device | str | None = None) -> State:
        """Zero (h, c), each (n, lstm_hidden), in the parameters' dtype."""
        p = self.actor.weight
        device = p.device if device is None else device
        return (torch.zeros(n, self.lstm_hidden, device=device, dtype=p.dtype),
                torch.zeros(n, self.lstm_hidden, device=device, dtype=p.dtype))

    @torch.no_grad()
    def update_obs_norm(self, obs: Tensor, valid: Tensor | None = None,
                        reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        """Merge observations (..., D) into the normaliser; `valid` (...) bool drops padding.

        Call it between PPO updates (not between a rollout and the epochs that train on it),
        so the log-probs stored by the actors were computed with the same normaliser.
        Entity rows count only where present. `reduce` merges the batches of all DDP
        ranks (see RunningMeanStd.update).
        """
        if self.obs_rms is None:
            return
        obs = obs.reshape(-1, self.obs_dim)
        mask = None if valid is None else valid.reshape(-1).bool()
        lay = self.entity_layout
        if lay is None or self.entity_rms is None:
            self.obs_rms.update(obs, reduce, mask=mask)
            return
        self.obs_rms.update(obs[:, :lay.flat_dim], reduce, mask=mask)
        rows = obs[:, lay.flat_dim:].reshape(-1, lay.entity_dim)
        present = rows[:, 0] > 0.5
        if mask is not None:
            present &= mask.repeat_interleave(lay.num_entities)
        self.entity_rms.update(rows, reduce, mask=present)

    def normalize_obs(self, obs: Tensor, out: Tensor | None = None) -> Tensor:
        """Standardise and clip raw observations (..., D) with the running statistics; into
        `out` (obs's shape) when given."""
        lay = self.entity_layout
        if self.obs_rms is not None and (lay is None or self.entity_rms is None):
            return self.obs_rms.normalize(obs, out=out)
        if self.obs_rms is None:
            y = obs
        else:
            flat = self.obs_rms.normalize(obs[..., :lay.flat_dim])
            rows = obs[..., lay.flat_dim:].unflatten(-1, (lay.num_entities, lay.entity_dim))
            y = torch.cat([flat, self.entity_rms.normalize(rows).flatten(-2)], dim=-1)
        return y if out is None else out.copy_(y)

    @property
    def reads_raw_obs(self) -> bool:
        """Whether the encoder reads raw observations besides the normalised ones (the entity
        encoder's presence flags): if not, a caller may normalise a batch once and pass
        `normalized=True` to every forward over it."""
        return isinstance(self.encoder, EntityEncoder)

    # ---- forward --------------------------------------------------------------------------
    def forward(self, obs: Tensor, state: State, episode_starts: Tensor,
                action_masks: Tensor | None = None) -> tuple[Tensor, Tensor, State]:
        """Same as `forward_sequence` (so DDP/Lightning wrappers see a normal forward)."""
        return self.forward_sequence(obs, state, episode_starts, action_masks)

    def forward_sequence(self, obs: Tensor, state: State, episode_starts: Tensor,
                         action_masks: Tensor | None = None, *, normalized: bool = False,
                         final_state: bool = True, needed: Tensor | None = None,
                         ) -> tuple[Tensor, Tensor, State | None]:
        """Replay a chunk: obs (T,N,D), state (h, c) at its start, episode_starts (T,N) bool,
        action_masks (T,N,A) bool or None -> logits (T,N,A) masked, values (T,N), final state.
        `normalized`: obs is `normalize_obs` of the raw observations already (the learner
        normalises a rollout once for all its epochs; only where not `reads_raw_obs`).

        The state of agent n is zeroed before step t wherever episode_starts[t, n] is True;
        the LSTM runs as one (cuDNN/oneDNN) call whatever the resets (`lstm_with_resets`).
        `final_state=False` (the learner, which discards it) returns None for the state and
        spares the extra work an exact final state needs after a reset; with it, `needed`
        (T,N) bool marks the outputs that will be read (the others may be anything), which
        spares the work of replaying agents before they joined (`lstm_with_resets`).
        """
        if obs.dim() != 3 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"obs must be (T, N, {self.obs_dim}), got {tuple(obs.shape)}")
        T, N = obs.shape[:2]
        dtype = self.actor.weight.dtype
        raw = obs.to(dtype)
        if normalized and self.reads_raw_obs:
            raise ValueError("normalized=True: this policy's encoder reads the raw observations")
        if not raw.is_contiguous() and raw.transpose(0, 1).is_contiguous():
            # a batch-first batch seen time-major (the learner's minibatches): the encoder
            # reads it batch-first (it acts on each row alone), no copy of the observations
            raw = raw.transpose(0, 1)
            x = raw if normalized else self.normalize_obs(raw)
            x = self.encoder(x, None if normalized else raw).transpose(0, 1)  # (T, N, hidden)
        else:
            x = raw if normalized else self.normalize_obs(raw)
            x = self.encoder(x, None if normalized else raw)  # (T, N, hidden)
        starts = episode_starts.to(torch.bool).reshape(T, N)

        if self.use_lstm:
            h, c = (s.to(dtype).unsqueeze(0) for s in state)  # (1, N, H), in the params' dtype
            keep = (~starts[0]).to(dtype).view(1, N, 1)
            feats, new_state = lstm_with_resets(self.lstm, x, (h * keep, c * keep), starts,
                                                final_state=final_state, needed=needed)
            if new_state is not None:  # autocast's LSTM gives it in bf16: keep it in ours
                new_state = (new_state[0].to(dtype), new_state[1].to(dtype))
        else:
            feats = self.ff(x)
            new_state = self.initial_state(N, device=obs.device)

        out_dtype = torch.promote_types(dtype, torch.float32)  # >= float32 even under autocast
        logits = mask_logits(self.actor(feats).to(out_dtype), action_masks)
        values = self.critic(feats).to(out_dtype).squeeze(-1)
        return logits, values, new_state

    def step(self, obs: Tensor, state: State, episode_start: Tensor,
             action_mask: Tensor | None = None) -> tuple[Tensor, Tensor, State]:
        """One step for N agents: obs (N,D), episode_start (N,) bool, action_mask (N,A) or None
        -> logits (N,A) masked, value (N,), new state. Resets state where episode_start."""
        logits, values, new_state = self.forward_sequence(
            obs.unsqueeze(0), state, episode_start.unsqueeze(0),
            None if action_mask is None else action_mask.unsqueeze(0))
        return logits.squeeze(0), values.squeeze(0), new_state

    @torch.no_grad()
    def act(self, obs: Tensor, state: State, episode_start: Tensor, action_mask: Tensor | None = None,
            deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor, State]:
        """Choose actions: -> action (N,) int64, logprob (N,), entropy (N,), value (N,), state.

        For acting only (runs under no_grad); the learner scores actions with
        `evaluate_actions`. `deterministic=True` takes the most likely legal action.
        """
        logits, value, new_state = self.step(obs, state, episode_start, action_mask)
        dist = Categorical(logits=logits)  # logits are already masked
        action = logits.argmax(dim=-1) if deterministic else dist.sample()
        return action, dist.log_prob(action), dist.entropy(), value, new_state

    def evaluate_actions(self, obs: Tensor, state: State, episode_starts: Tensor,
                         action_masks: Tensor | None, actions: Tensor, *,
                         normalized: bool = False,
                         valid: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """For the learner: replay a chunk and score the stored actions.

        obs (T,N,D), actions (T,N) -> new_logprobs (T,N), entropy (T,N), new_values (T,N).
        `valid` (T,N) bool: the steps the loss reads; elsewhere the outputs may be anything.
        """
        logits, values, _ = self.forward_sequence(obs, state, episode_starts, action_masks,
                                                  normalized=normalized, final_state=False,
                                                  needed=valid)
        new_logprobs, entropy = logprobs_and_entropy(logits, actions)
        return new_logprobs, entropy, values
