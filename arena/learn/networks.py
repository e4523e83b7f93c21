"""How a config becomes networks: one RecurrentPolicy per policy group of its game, and
the names and pool settings that go with them. Shared by the learner, actors and players
(which build networks from a saved config without a learner)."""

from __future__ import annotations

from typing import Any

from agents.policy import EntityLayout, RecurrentPolicy
from arena.config import Config
from games.vector import RoleSpec


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
