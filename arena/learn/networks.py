"""How a config becomes networks: the policy groups of its game (one network each), one
RecurrentPolicy per group, and the names and pool settings that go with them. Shared by
the learner, actors and players (which build networks from a saved config without a
learner)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.policy import EntityLayout, RecurrentPolicy
from arena.config import Config
from games.vector import RoleSpec, VecGame


@dataclass(frozen=True)
class PolicyGroup:
    """A network and the agent slots it plays (columns of the game batch)."""

    key: str
    role: RoleSpec
    slots: tuple[int, ...]
    role_columns: tuple[int, ...]  # positions of `slots` inside the role's obs arrays


def policy_groups(vec: VecGame, per_agent_weights: bool) -> list[PolicyGroup]:
    """One group per role of `vec` (both teams of a symmetric game share one), or one per
    agent slot with `per_agent_weights` (model.per_agent_weights)."""
    groups = []
    for role in vec.roles:
        if per_agent_weights:
            for col, slot in enumerate(role.slots):
                groups.append(PolicyGroup(f"{role.name}.{vec.slot_agents[slot]}", role,
                                          (slot,), (col,)))
        else:
            groups.append(PolicyGroup(role.name, role, tuple(role.slots),
                                      tuple(range(len(role.slots)))))
    return groups


def build_policy(role: RoleSpec, cfg: Config) -> RecurrentPolicy:
    m = cfg.model
    entity_layout = None
    if m.encoder == "entity" or (m.encoder == "auto" and role.entity_layout is not None):
        if role.entity_layout is None:
            raise ValueError(f"model.encoder=entity needs an entity observation layout; role "
                             f"{role.name!r} of game {cfg.game.name!r} declares none (flat "
                             f"observations; a game declares one as `entity_layout`)")
        entity_layout = EntityLayout(*role.entity_layout)
    return RecurrentPolicy(role.obs_dim, role.num_actions, hidden=m.hidden,
                           lstm_hidden=m.lstm_hidden, use_lstm=m.use_lstm,
                           entity_layout=entity_layout, normalize_obs=m.normalize_obs)


def pool_settings(cfg: Config) -> dict[str, Any]:
    """OpponentPool keyword arguments from the config's league section."""
    lg = cfg.league
    return {"latest_prob": lg.latest_prob, "sampler": lg.sampler, "eta": lg.eta,
            "pfsp_weighting": lg.pfsp_weighting, "pfsp_p": lg.pfsp_p,
            "max_snapshots": lg.max_snapshots}


def group_module_key(key: str) -> str:
    """ModuleDict keys may not contain dots."""
    return key.replace(".", "__")
