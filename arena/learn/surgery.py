"""Surgery: grow a run's networks or its game's observation without starting over.

OpenAI Five kept one run alive through twenty changes of model and game by *function-
preserving* transfers: the grown network computes exactly what the old one did, and
training goes on from there. Here:

- A wider layer (`model.hidden`, `model.lstm_hidden`) keeps the old units in place
  (unit j stays unit j); each new unit keeps the new network's fresh initial incoming
  weights, and its outgoing weights are zero, so nothing downstream sees it. An LSTM's new
  units get zero weights into the old units' gates (from the input and from the recurrent
  state), so the old units run exactly as before while the old state is zero-padded.
- New observation features get zero weights (in the old units) and normaliser statistics
  mean 0, var 1 (the normaliser's one `count` is shared by all features, so a new feature's
  statistics start as if its past samples had been N(0, 1): they catch up with training).
  More entity slots need nothing with the entity encoder (its weights are shared by all
  slots and it pools over present entities); the MLP encoder maps each old feature by name.
- New actions (e.g. attack slots for more visible entities) get zero weights and the bias
  `NEW_ACTION_BIAS`: their logit is that constant whatever the observation, so their
  probability is at most exp(NEW_ACTION_BIAS - logsumexp(old logits)) each (~1e-13 for
  old logits near 0) and the old actions' logits are unchanged. The price: a new action
  is taken (and so learnt) only rarely at first, unless the game masks the alternatives.
- Adam's moments carry over: an unchanged tensor keeps its moments; a grown one gets the
  old moments embedded in the old block and zeros elsewhere, with the old step count (so
  a new entry's first steps are up to ~3x lr, Adam's bias correction being already spent).

How old features and actions map to new ones comes only from what the game declares: its
entity layout (flat_dim, num_entities, entity_dim) and, where the game gives them, names
for every observation feature and action (`feature_names` / `action_names` on the role's
`obs_layout`; the MOBA's `MobaLayout` declares both; entity features are named
"<slot>/<feature>"). What cannot be derived is refused with a `SurgeryError` naming the
network and what differs; nothing is guessed. Shrinking, switching the LSTM or the
normaliser on or off, changing the encoder kind or the game are refused too.

Layers: `PolicyArch` describes one network; `transfer_policy` is the pure per-network
transfer; `transfer_checkpoint` rewrites a whole Lightning checkpoint (every RecurrentPolicy
held by the learner, whatever its prefix, the other tensors, the optimiser states);
`snapshot_policy` builds a league snapshot from the architecture stored with it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor

from agents.policy import EntityLayout, RecurrentPolicy

NEW_ACTION_BIAS = -30.0  # the constant logit of an action the old network did not have
ARCH_FORMAT = 1


class SurgeryError(ValueError):
    """A change of network or game that cannot be made function-preservingly."""


# ---- what a network is ------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyArch:
    """Everything that decides the shapes of a RecurrentPolicy and what its inputs and
    outputs mean. `entity_layout` is the encoder's (None: the MLP encoder); the names are
    the game's declaration (None where it declares none)."""

    obs_dim: int
    num_actions: int
    hidden: int
    lstm_hidden: int
    use_lstm: bool = True
    normalize_obs: bool = True
    entity_layout: tuple[int, int, int] | None = None
    feature_names: tuple[str, ...] | None = None
    action_names: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["entity_layout"] = None if self.entity_layout is None else list(self.entity_layout)
        for key in ("feature_names", "action_names"):
            out[key] = None if out[key] is None else list(out[key])
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "architecture") -> PolicyArch:
        """Read back `to_json` (from a snapshot's metadata: checked field by field)."""
        if not isinstance(data, Mapping):
            raise SurgeryError(f"{where}: expected an object, got {type(data).__name__}")
        ints = ("obs_dim", "num_actions", "hidden", "lstm_hidden")
        missing = [k for k in ints if k not in data]
        if missing:
            raise SurgeryError(f"{where}: missing {missing}")
        for k in ints:
            if isinstance(data[k], bool) or not isinstance(data[k], int) or data[k] < 1:
                raise SurgeryError(f"{where}: {k} must be an int >= 1, got {data[k]!r}")
        layout = data.get("entity_layout")
        if layout is not None:
            if not (isinstance(layout, list) and len(layout) == 3
                    and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                            for x in layout)):
                raise SurgeryError(f"{where}: entity_layout must be 3 ints, got {layout!r}")
            layout = tuple(layout)
        names = {}
        for key, size in (("feature_names", data["obs_dim"]), ("action_names", data["num_actions"])):
            value = data.get(key)
            if value is not None and not (isinstance(value, list) and len(value) == size
                                          and all(isinstance(n, str) for n in value)):
                raise SurgeryError(f"{where}: {key} must be {size} strings")
            names[key] = None if value is None else tuple(value)
        return cls(obs_dim=data["obs_dim"], num_actions=data["num_actions"],
                   hidden=data["hidden"], lstm_hidden=data["lstm_hidden"],
                   use_lstm=bool(data.get("use_lstm", True)),
                   normalize_obs=bool(data.get("normalize_obs", True)),
                   entity_layout=layout, **names)

    def build(self) -> RecurrentPolicy:
        """A fresh network of this architecture."""
        layout = None if self.entity_layout is None else EntityLayout(*self.entity_layout)
        return RecurrentPolicy(self.obs_dim, self.num_actions, hidden=self.hidden,
                               lstm_hidden=self.lstm_hidden, use_lstm=self.use_lstm,
                               entity_layout=layout, normalize_obs=self.normalize_obs)

    def for_role(self, role: Any) -> PolicyArch:
        """This network's sizes reading `role`'s observation and actions (the game now)."""
        layout = None
        if self.entity_layout is not None:
            if role.entity_layout is None:
                raise SurgeryError(f"role {role.name!r}: the network has an entity encoder, but "
                                   f"the game now declares no entity layout")
            layout = tuple(role.entity_layout)
        features, actions = declared_names(role)
        return replace(self, obs_dim=role.obs_dim, num_actions=role.num_actions,
                       entity_layout=layout, feature_names=features, action_names=actions)


def declared_names(role: Any) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """The game's names for a role's observation features and actions (None: not declared);
    read from `role.obs_layout.feature_names` / `.action_names`."""
    layout = getattr(role, "obs_layout", None)
    out = []
    for attr, size in (("feature_names", role.obs_dim), ("action_names", role.num_actions)):
        names = getattr(layout, attr, None)
        if names is None:
            out.append(None)
            continue
        names = tuple(str(n) for n in names)
        if len(names) != size:
            raise SurgeryError(f"role {role.name!r}: the game declares {len(names)} {attr}, "
                               f"but its size is {size}")
        if len(set(names)) != len(names):
            raise SurgeryError(f"role {role.name!r}: the game's {attr} repeat")
        out.append(names)
    return out[0], out[1]


def policy_arch(policy: RecurrentPolicy, role: Any | None = None) -> PolicyArch:
    """The architecture of a built network, with the names `role` declares (if given)."""
    features, actions = declared_names(role) if role is not None else (None, None)
    layout = policy.entity_layout
    return PolicyArch(
        obs_dim=policy.obs_dim, num_actions=policy.num_actions, hidden=policy.encoder.out_dim,
        lstm_hidden=policy.lstm_hidden, use_lstm=policy.use_lstm,
        normalize_obs=policy.obs_rms is not None,
        entity_layout=None if layout is None else (layout.flat_dim, layout.num_entities,
                                                   layout.entity_dim),
        feature_names=features, action_names=actions)


def same_function_shape(a: PolicyArch, b: PolicyArch) -> bool:
    """Nothing to transfer: same sizes and the same meaning of every input and output."""
    def names_agree(x, y) -> bool:
        return x is None or y is None or x == y
    return (a.obs_dim, a.num_actions, a.hidden, a.lstm_hidden, a.use_lstm, a.normalize_obs,
            a.entity_layout) == (b.obs_dim, b.num_actions, b.hidden, b.lstm_hidden, b.use_lstm,
                                 b.normalize_obs, b.entity_layout) \
        and names_agree(a.feature_names, b.feature_names) \
        and names_agree(a.action_names, b.action_names)


# ---- index maps --------------------------------------------------------------------------------
def _by_name(old: tuple[str, ...], new: tuple[str, ...], what: str, where: str) -> list[int]:
    index = {n: i for i, n in enumerate(new)}
    gone = [n for n in old if n not in index]
    if gone:
        shown = ", ".join(gone[:6]) + (f" (+{len(gone) - 6} more)" if len(gone) > 6 else "")
        raise SurgeryError(f"{where}: {what} of the old network are gone from the new game: "
                           f"{shown}; a network cannot forget an input or an action "
                           f"function-preservingly")
    return [index[n] for n in old]


def _entity_feature_names(names: tuple[str, ...], lay: tuple[int, int, int],
                          where: str) -> tuple[str, ...]:
    """The names of one entity row's features, from the names of the whole observation
    ("<slot>/<feature>"); every row must name the same features in the same order."""
    flat, n, d = lay
    rows = [tuple(name.split("/", 1)[-1] for name in names[flat + k * d: flat + (k + 1) * d])
            for k in range(n)]
    if any(r != rows[0] for r in rows[1:]):
        raise SurgeryError(f"{where}: the game's feature names do not name the same features "
                           f"in every entity row (expected '<slot>/<feature>')")
    return rows[0] if rows else tuple(f"#{i}" for i in range(d))


def _feature_maps(old: PolicyArch, new: PolicyArch, where: str
                  ) -> tuple[list[int], list[int] | None]:
    """New position of each old input feature: (flat or whole-observation map, entity-row
    map or None for the MLP encoder)."""
    named = old.feature_names is not None and new.feature_names is not None
    if old.entity_layout is None:
        if named:
            return _by_name(old.feature_names, new.feature_names, "observation features",
                            where), None
        if old.obs_dim == new.obs_dim:
            return list(range(old.obs_dim)), None
        raise SurgeryError(
            f"{where}: the observation changes from {old.obs_dim} to {new.obs_dim} features and "
            f"the game declares no feature names (the role's obs_layout.feature_names), so "
            f"which old feature is which new one cannot be told")
    o, n = old.entity_layout, new.entity_layout
    if named:
        flat = _by_name(old.feature_names[:o[0]], new.feature_names[:n[0]],
                        "global/self features", where)
        ents = _by_name(_entity_feature_names(old.feature_names, o, where),
                        _entity_feature_names(new.feature_names, n, where),
                        "entity features", where)
        if ents and ents[0] != 0:
            raise SurgeryError(f"{where}: the presence flag must stay entity feature 0")
        return flat, ents
    if (o[0], o[2]) == (n[0], n[2]):
        return list(range(o[0])), list(range(o[2]))
    raise SurgeryError(
        f"{where}: the entity layout changes from (flat {o[0]}, entity features {o[2]}) to "
        f"(flat {n[0]}, entity features {n[2]}) and the game declares no feature names, so "
        f"which old feature is which new one cannot be told")


def _action_map(old: PolicyArch, new: PolicyArch, where: str) -> list[int]:
    if old.action_names is not None and new.action_names is not None:
        return _by_name(old.action_names, new.action_names, "actions", where)
    if old.num_actions == new.num_actions:
        return list(range(old.num_actions))
    raise SurgeryError(f"{where}: the actions change from {old.num_actions} to "
                       f"{new.num_actions} and the game declares no action names (the role's "
                       f"obs_layout.action_names), so which old action is which cannot be told")


@dataclass(frozen=True)
class Place:
    """Where an old tensor goes in the new one: `index[d][i]` is the new position of old
    entry i along dim d. `fill` is the value of every entry not placed (None: the new
    network's fresh value, except that in a placed row of a matrix the unplaced columns
    are zero, so old units never read new inputs)."""

    index: tuple[Tensor, ...]
    fill: float | None = None


def _idx(values: list[int] | range) -> Tensor:
    return torch.as_tensor(list(values), dtype=torch.long)


def plan_policy(old: PolicyArch, new: PolicyArch, where: str = "policy") -> dict[str, Place]:
    """The placement of every tensor of the old network's state_dict in the new one's;
    SurgeryError when the change cannot keep the function."""
    for field, label in (("use_lstm", "model.use_lstm"), ("normalize_obs", "model.normalize_obs")):
        if getattr(old, field) != getattr(new, field):
            raise SurgeryError(f"{where}: {label} changes from {getattr(old, field)} to "
                               f"{getattr(new, field)}; only growing a network keeps its function")
    if (old.entity_layout is None) != (new.entity_layout is None):
        kinds = ["mlp" if a.entity_layout is None else "entity" for a in (old, new)]
        raise SurgeryError(f"{where}: the encoder changes from {kinds[0]} to {kinds[1]} "
                           f"(model.encoder); only growing a network keeps its function")
    for field, label in (("hidden", "model.hidden"), ("lstm_hidden", "model.lstm_hidden")):
        if getattr(new, field) < getattr(old, field):
            raise SurgeryError(f"{where}: {label} shrinks from {getattr(old, field)} to "
                               f"{getattr(new, field)}; a network can only grow without "
                               f"changing what it computes")
    flat, ents = _feature_maps(old, new, where)
    acts = _action_map(old, new, where)
    h, H = _idx(range(old.hidden)), _idx(range(old.lstm_hidden))
    Hn = new.hidden
    plan: dict[str, Place] = {}

    def linear(name: str, rows: Tensor, cols: Tensor, w_fill: float | None = None,
               b_fill: float | None = None) -> None:
        plan[f"{name}.weight"] = Place((rows, cols), w_fill)
        plan[f"{name}.bias"] = Place((rows,), b_fill)

    if old.entity_layout is None:
        linear("encoder.net.0", h, _idx(flat))
        linear("encoder.net.2", h, h)
    else:
        linear("encoder.flat_net.0", h, _idx(flat))
        linear("encoder.entity_net.0", h, _idx(ents))
        linear("encoder.entity_net.2", h, h)
        # mix reads [flat embedding | max pool | mean pool], each block `hidden` wide
        linear("encoder.mix.0", h, torch.cat([h, h + Hn, h + 2 * Hn]))
    if old.use_lstm:
        gates = torch.cat([H + k * new.lstm_hidden for k in range(4)])  # i, f, g, o blocks
        plan["lstm.weight_ih_l0"] = Place((gates, h))
        plan["lstm.weight_hh_l0"] = Place((gates, H))
        plan["lstm.bias_ih_l0"] = Place((gates,))
        plan["lstm.bias_hh_l0"] = Place((gates,))
    else:
        linear("ff.0", H, h)
    linear("actor", _idx(acts), H, w_fill=0.0, b_fill=NEW_ACTION_BIAS)
    linear("critic", _idx([0]), H, w_fill=0.0)
    if old.normalize_obs:
        rms = {"obs_rms": _idx(flat)}
        if ents is not None:
            rms["entity_rms"] = _idx(ents)
        for name, index in rms.items():
            plan[f"{name}.mean"] = Place((index,), 0.0)
            plan[f"{name}.var"] = Place((index,), 1.0)
            plan[f"{name}.count"] = Place(())
    return plan


def place(old: Tensor, fresh: Tensor, p: Place, *, moments: bool = False) -> Tensor:
    """The new tensor: `old` at its places; elsewhere the fresh value (or `p.fill`), or
    zeros for optimiser `moments`."""
    if tuple(len(i) for i in p.index) != tuple(old.shape):
        raise SurgeryError(f"old tensor of shape {tuple(old.shape)} does not fit its "
                           f"placement {tuple(len(i) for i in p.index)}")
    if moments:
        new = torch.zeros(fresh.shape, dtype=old.dtype, device=old.device)
    elif p.fill is not None:
        new = torch.full(fresh.shape, p.fill, dtype=fresh.dtype, device=fresh.device)
    else:
        new = fresh.detach().clone()
        if new.dim() == 2:
            rows, cols = p.index
            unplaced = torch.ones(new.shape[1], dtype=torch.bool)
            unplaced[cols] = False
            new[rows.unsqueeze(1), unplaced.nonzero().flatten().unsqueeze(0)] = 0
    if not p.index:
        new.copy_(old)
    elif len(p.index) == 1:
        new[p.index[0]] = old.to(new.dtype)
    else:
        new[p.index[0].unsqueeze(1), p.index[1].unsqueeze(0)] = old.to(new.dtype)
    return new


def transfer_policy(old_state: Mapping[str, Tensor], old: PolicyArch, new: PolicyArch,
                    fresh: Mapping[str, Tensor], where: str = "policy") -> dict[str, Tensor]:
    """The new network's state_dict: `old_state` (of a network `old`) transferred into a
    network `new` that computes the same logits and values on the same observations (old
    features at their new places, whatever the new ones hold; new entity slots absent) and
    the old LSTM state zero-padded. `fresh` is a freshly built `new` network's state_dict:
    the initial values of the new units' incoming weights."""
    plan = plan_policy(old, new, where)
    if set(plan) != set(old_state):
        raise SurgeryError(f"{where}: the saved tensors {sorted(set(old_state) ^ set(plan))} do "
                           f"not belong to a network of {old}")
    out = {}
    for name, p in plan.items():
        try:
            out[name] = place(old_state[name], fresh[name], p)
        except SurgeryError as exc:
            raise SurgeryError(f"{where}: {name}: {exc}") from None
    return out


def describe_change(old: PolicyArch, new: PolicyArch) -> list[str]:
    """What a transfer changes, in words (for `arena train --check` and the run's record)."""
    out = []
    for field in ("hidden", "lstm_hidden"):
        a, b = getattr(old, field), getattr(new, field)
        if a != b:
            out.append(f"model.{field} {a} -> {b} (new units' outgoing weights zero)")

    def added(a, b, unit):
        if a is not None and b is not None:
            extra = [n for n in b if n not in set(a)]
            if extra:
                shown = ", ".join(extra[:4]) + (", ..." if len(extra) > 4 else "")
                return f" ({len(extra)} new {unit}: {shown})"
        return ""
    if old.obs_dim != new.obs_dim or old.entity_layout != new.entity_layout \
            or (old.feature_names and new.feature_names and old.feature_names != new.feature_names):
        slots = ""
        if old.entity_layout and new.entity_layout and old.entity_layout[1] != new.entity_layout[1]:
            slots = f", entity slots {old.entity_layout[1]} -> {new.entity_layout[1]}"
        out.append(f"observation {old.obs_dim} -> {new.obs_dim} features{slots}"
                   f"{added(old.feature_names, new.feature_names, 'features')} "
                   f"(new inputs get zero weights)")
    if old.num_actions != new.num_actions or \
            (old.action_names and new.action_names and old.action_names != new.action_names):
        out.append(f"actions {old.num_actions} -> {new.num_actions}"
                   f"{added(old.action_names, new.action_names, 'actions')} (new actions: zero "
                   f"weights, logit {NEW_ACTION_BIAS:g})")
    return out


# ---- snapshots ------------------------------------------------------------------------------------
def arch_metadata(archs: Mapping[str, PolicyArch]) -> dict[str, Any]:
    """What a league snapshot stores about its networks (by module key), JSON-able."""
    return {"format": ARCH_FORMAT, "policies": {k: a.to_json() for k, a in archs.items()}}


def snapshot_arch(metadata: Mapping[str, Any] | None, module_key: str,
                  where: str = "snapshot") -> PolicyArch | None:
    """The architecture a snapshot stored for one network; None for snapshots written before
    architectures were stored (they are built with the current config, as always)."""
    if not metadata:
        return None
    policies = metadata.get("policies") if isinstance(metadata, Mapping) else None
    if not isinstance(policies, Mapping) or module_key not in policies:
        return None
    return PolicyArch.from_json(policies[module_key], f"{where}: network {module_key!r}")


def snapshot_policy(state: Mapping[str, Tensor], arch: PolicyArch | None, role: Any,
                    build_current: Callable[[], RecurrentPolicy],
                    where: str = "snapshot") -> RecurrentPolicy:
    """A frozen snapshot's network: built with its own stored architecture, its input and
    output layers adapted (same transfer as surgery, sizes kept) when the game's observation
    or actions changed since. Without a stored architecture: `build_current()`."""
    if arch is None:
        policy = build_current()
        try:
            policy.load_state_dict(state)
            return policy
        except RuntimeError as exc:  # the run's networks grew since: sizes from the weights
            try:
                arch = infer_arch(state, policy_arch(policy), where)
            except SurgeryError:
                raise exc from None  # not a policy's weights at all: the load's own message
    target = arch.for_role(role)
    policy = target.build()
    if same_function_shape(arch, target):
        policy.load_state_dict(state)
    else:
        policy.load_state_dict(transfer_policy(state, arch, target, policy.state_dict(), where))
    return policy


def infer_arch(state: Mapping[str, Tensor], like: PolicyArch, where: str = "snapshot"
               ) -> PolicyArch:
    """The architecture of a network's weights written without one (snapshots from before
    architectures were stored), read off the tensors' shapes; what shapes cannot tell (the
    number of entity slots, the names) is `like`'s (the current network's), so only
    transfers that need no names follow."""
    try:
        lstm_hidden = state["actor.weight"].shape[1]
        num_actions = state["actor.weight"].shape[0]
        if "encoder.net.0.weight" in state:
            hidden, obs_dim = state["encoder.net.0.weight"].shape
            layout = None
        else:
            hidden, flat = state["encoder.flat_net.0.weight"].shape
            entity_dim = state["encoder.entity_net.0.weight"].shape[1]
            slots = like.entity_layout[1] if like.entity_layout else 0
            layout = (flat, slots, entity_dim)
            obs_dim = flat + slots * entity_dim
    except (KeyError, IndexError, TypeError):
        raise SurgeryError(f"{where}: its weights are not a policy network's "
                           f"(no actor/encoder tensors)") from None
    return PolicyArch(obs_dim=int(obs_dim), num_actions=int(num_actions), hidden=int(hidden),
                      lstm_hidden=int(lstm_hidden), use_lstm="lstm.weight_hh_l0" in state,
                      normalize_obs="obs_rms.mean" in state, entity_layout=layout)


# ---- whole checkpoints ------------------------------------------------------------------------------
def policy_modules(learner: Any) -> dict[str, tuple[RecurrentPolicy, Any]]:
    """Every RecurrentPolicy a learner holds, by state_dict prefix ("policies.hero."), with
    the role it plays (found from the prefix's last part, a group's module key), so that
    any policy set a learner holds (its own, exploiters, ...) is transferred alike."""
    from arena.learn.networks import group_module_key

    roles = {group_module_key(g.key): g.role for g in learner.groups}
    out = {}
    for name, module in learner.named_modules():
        if isinstance(module, RecurrentPolicy):
            out[f"{name}."] = (module, roles.get(name.rsplit(".", 1)[-1]))
    return out


def optimizer_param_names(learner: Any) -> list[list[str]]:
    """The parameter names of each optimizer of `learner`, in the optimizer's order (the
    order of a saved optimizer state's indices)."""
    names = {id(p): n for n, p in learner.named_parameters()}
    configured = learner.configure_optimizers()
    optimizers = _optimizers(configured)
    return [[names[id(p)] for group in opt.param_groups for p in group["params"]]
            for opt in optimizers]


def _optimizers(configured: Any) -> list[torch.optim.Optimizer]:
    """configure_optimizers' answer, whichever form Lightning allows, as a list."""
    if isinstance(configured, torch.optim.Optimizer):
        return [configured]
    if isinstance(configured, Mapping):
        return _optimizers(configured["optimizer"])
    if isinstance(configured, (list, tuple)):
        if len(configured) == 2 and isinstance(configured[0], (list, tuple)):
            return _optimizers(configured[0])  # ([optimizers], [schedulers])
        out = []
        for item in configured:
            out.extend(_optimizers(item))
        return out
    raise TypeError(f"configure_optimizers returned {type(configured).__name__}")


@dataclass
class Surgery:
    """A planned checkpoint rewrite: `changes` in words, `checkpoint` the new one."""

    changes: list[str]
    checkpoint: dict[str, Any]
    update: int


def transfer_checkpoint(checkpoint: Mapping[str, Any], old_learner: Any, new_learner: Any,
                        where: str = "checkpoint") -> Surgery:
    """The checkpoint `checkpoint` (of `old_learner`'s config) rewritten for `new_learner`'s:
    every network transferred (`transfer_policy`), other tensors kept (value normalisers;
    tensors the new learner has and the old had not start fresh), optimiser moments mapped
    by parameter name, config and signature replaced, the surgery recorded in
    `checkpoint["arena"]["surgeries"]`. The input is not modified."""
    old_game, new_game = old_learner.cfg.game.name, new_learner.cfg.game.name
    if old_game != new_game:
        raise SurgeryError(f"{where} was trained on game {old_game!r}, the config is for "
                           f"{new_game!r}: a network cannot move to another game")
    old_mods, new_mods = policy_modules(old_learner), policy_modules(new_learner)
    # League exploiters may come and go: a new one starts as a copy of the main (what an
    # exploiter's reset does anyway), a removed one is dropped (its snapshots stay in the pool)
    added = sorted(p for p in new_mods if p not in old_mods and p.startswith(EXPLOITERS))
    removed = sorted(p for p in old_mods if p not in new_mods and p.startswith(EXPLOITERS))
    new_mods = {p: v for p, v in new_mods.items() if p not in added}
    old_mods = {p: v for p, v in old_mods.items() if p not in removed}
    if set(old_mods) != set(new_mods):
        raise SurgeryError(
            f"{where} holds the networks {sorted(p[:-1] for p in old_mods)}, the config builds "
            f"{sorted(p[:-1] for p in new_mods)} (policy groups, model.per_agent_weights or the "
            f"game's roles differ): no network can be matched to each")
    state = checkpoint["state_dict"]
    fresh = new_learner.state_dict()
    new_state: dict[str, Tensor] = {}
    plans: dict[str, Place] = {}
    changes: list[str] = []
    for prefix, (old_p, old_role) in sorted(old_mods.items()):
        new_p, new_role = new_mods[prefix]
        a, b = policy_arch(old_p, old_role), policy_arch(new_p, new_role)
        label = prefix[:-1]
        if a.feature_names is not None and b.feature_names is None:
            a = replace(a, feature_names=None)
        if a.action_names is not None and b.action_names is None:
            a = replace(a, action_names=None)
        plan = plan_policy(a, b, label)
        own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        fresh_own = {k[len(prefix):]: v for k, v in fresh.items() if k.startswith(prefix)}
        new_state.update({prefix + k: v for k, v in
                          transfer_policy(own, a, b, fresh_own, label).items()})
        plans.update({prefix + k: p for k, p in plan.items()})
        changes.extend(f"{label}: {line}" for line in describe_change(a, b))
    for prefix in added:
        main = _main_prefix(prefix)
        if main not in new_mods:
            raise SurgeryError(f"{where}: the new exploiter network {prefix[:-1]} has no main "
                               f"network {main[:-1]} to start from")
        new_state.update({prefix + k[len(main):]: v.clone() for k, v in new_state.items()
                          if k.startswith(main)})
        plans.update({prefix + k[len(main):]: p for k, p in plans.items() if k.startswith(main)})
    for name in sorted({_exploiter(p) for p in added}):
        changes.append(f"{name}: a new exploiter, starting as a copy of the main")
    for name in sorted({_exploiter(p) for p in removed}):
        changes.append(f"{name}: removed (its snapshots stay in the pool)")
    for key, value in fresh.items():
        if key in new_state:
            continue
        copied = _main_prefix(key) if key.startswith(EXPLOITERS) and key not in state else None
        if copied is not None and copied in state:  # a new exploiter's value normaliser
            new_state[key] = state[copied].clone()
            continue
        if key not in state:
            new_state[key] = value.detach().clone()
            changes.append(f"{key}: not in the checkpoint, starts fresh")
        elif tuple(state[key].shape) != tuple(value.shape):
            raise SurgeryError(f"{where}: {key} has shape {tuple(state[key].shape)}, the config "
                               f"needs {tuple(value.shape)}, and it is not part of a policy "
                               f"network: no function-preserving transfer is known for it")
        else:
            new_state[key] = state[key]
    if old_learner.signature != new_learner.signature:
        o, n = old_learner.signature, new_learner.signature
        if o.get("agents") != n.get("agents"):
            changes.append(f"agents {len(o.get('agents', []))} -> {len(n.get('agents', []))}")
    out = dict(checkpoint)
    out["state_dict"] = new_state
    if checkpoint.get("optimizer_states"):
        out["optimizer_states"] = _transfer_optimizers(
            checkpoint["optimizer_states"], old_learner, new_learner, plans, state, where)
    out["hyper_parameters"] = {**checkpoint.get("hyper_parameters", {}),
                               "config": copy.deepcopy(dict(new_learner.hparams["config"]))}
    arena = dict(checkpoint["arena"])
    update = int(arena["updates"])
    arena["signature"] = new_learner.signature
    arena["surgeries"] = [*arena.get("surgeries", []),
                          {"update": update, "changes": list(changes)}]
    out["arena"] = arena
    return Surgery(changes=changes or ["no network changes (only the game's agent list)"],
                   checkpoint=out, update=update)


EXPLOITERS = "exploiters."  # learner keys exploiters.<name>.policies.<group>.* (league roles)


def _exploiter(key: str) -> str:
    return key.split(".")[1]


def _main_prefix(key: str) -> str:
    """exploiters.<name>.policies.hero.x -> policies.hero.x (the main's counterpart)."""
    return key.split(".", 2)[2]


def _transfer_optimizers(saved: list[dict[str, Any]], old_learner: Any, new_learner: Any,
                         plans: Mapping[str, Place], old_state: Mapping[str, Tensor],
                         where: str) -> list[dict[str, Any]]:
    """Optimizer states for the new learner's optimizers: each parameter's state found by
    name in the old ones; moments of a grown tensor placed in its old block (zeros
    elsewhere); a parameter the old optimizers did not have starts with no state."""
    old_names = optimizer_param_names(old_learner)
    if len(old_names) != len(saved):
        raise SurgeryError(f"{where} holds {len(saved)} optimizer state(s), its config builds "
                           f"{len(old_names)} optimizer(s)")
    by_name: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for names, opt_state in zip(old_names, saved):
        groups = opt_state["param_groups"]
        index_group = {i: g for g in groups for i in g["params"]}
        for i, name in enumerate(names):
            if i in opt_state["state"]:
                by_name[name] = (opt_state["state"][i], index_group.get(i, groups[0]))
    params = dict(new_learner.named_parameters())
    out = []
    for opt in _optimizers(new_learner.configure_optimizers()):
        template = opt.state_dict()
        names = {id(p): n for n, p in new_learner.named_parameters()}
        state: dict[int, dict[str, Any]] = {}
        index = 0
        groups = []
        for group, group_template in zip(opt.param_groups, template["param_groups"]):
            settings = None
            for p in group["params"]:
                name = names[id(p)]
                if name in by_name:
                    entry, old_group = by_name[name]
                    settings = settings or {k: v for k, v in old_group.items() if k != "params"}
                    state[index] = _map_entry(entry, params[name], plans.get(name), name, where)
                index += 1
            groups.append({**group_template, **(settings or {}),
                           "params": group_template["params"]})
        out.append({"state": state, "param_groups": groups})
    return out


def _map_entry(entry: Mapping[str, Any], param: Tensor, plan: Place | None, name: str,
               where: str) -> dict[str, Any]:
    """One parameter's optimizer state, tensors shaped like the parameter mapped by `plan`."""
    out = {}
    for key, value in entry.items():
        if isinstance(value, Tensor) and value.dim() > 0 and tuple(value.shape) != tuple(param.shape):
            if plan is None:
                raise SurgeryError(f"{where}: optimizer state {key} of {name} has shape "
                                   f"{tuple(value.shape)}, the parameter {tuple(param.shape)}")
            value = place(value, param, plan, moments=True)
        elif isinstance(value, Tensor) and value.dim() > 0 and plan is not None:
            value = place(value, param, plan, moments=True)  # same shape, maybe reordered
        out[key] = value
    return out


def surgery_markdown(surgery: Surgery) -> str:
    """The TensorBoard text entry of a surgery."""
    lines = "\n".join(f"- {c}" for c in surgery.changes)
    return f"surgery at update {surgery.update} (function-preserving transfer):\n\n{lines}"


