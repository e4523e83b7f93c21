"""Where everything lives: state fields, the unit table, the observation and action layouts.

The batched core keeps its state as structure-of-arrays: one contiguous `(B, U)` plane
per field, stacked as `unit_f[field, game, unit]` (floats) and `unit_i[field, game, unit]`
(ints). The field numbers below are module constants so the numba kernels see them as
compile-time constants.

Observation of one hero (a flat float32 vector, documented slice by slice so an encoder can
split it; `MobaLayout.obs_slices` gives the same in code):

    [ global (GLOBAL_DIM) | self (SELF_DIM) | entities (num_entities x ENT_DIM) ]

entities = the hero's `team_size - 1` allies (always present, dead or alive) followed by the
`num_visible` nearest *visible* other units (enemy heroes, creeps of both teams, buildings of
both teams), nearest first, padded with all-zero rows whose `present` feature is 0.
Positions are in the observing team's frame: the map is rotated by 180 degrees for dire, so
both teams see their own base at the bottom-left and the same action means the same thing.

Actions (one Discrete space; its mask is in the observation dict):

    0                    no-op
    1 .. 8               move in direction k*45 degrees (E, NE, N, NW, W, SW, S, SE; own frame)
    9 .. 9+K-1           attack visible entity k (moves into range first); allied creeps
                         under half HP can be attacked too: a deny
    9+K .. 9+2K-1        cast the nuke on visible enemy entity k (within ability range)
    9+2K .. 9+2K+I-1     buy item j (only inside the own base, with the gold, with a free slot)
    9+2K+I               retreat: walk towards the own fountain
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from games.moba.config import ITEMS, MobaConfig

# ---- unit kinds ---------------------------------------------------------------------
HERO, MELEE, RANGED, TOWER, ANCIENT = 0, 1, 2, 3, 4
KIND_NAMES = ("hero", "melee_creep", "ranged_creep", "tower", "ancient")
RADIANT, DIRE = 0, 1
TEAM_NAMES = ("radiant", "dire")

# ---- float fields of units: unit_f[F, b, u] -----------------------------------------
F_X, F_Y, F_HP, F_MAX_HP, F_DAMAGE, F_RANGE, F_SPEED, F_VISION, F_REGEN = range(9)
NUM_UNIT_F = 9
# ---- int fields of units: unit_i[I, b, u] -------------------------------------------
(I_ALIVE, I_TEAM, I_KIND, I_ATTACK_CD, I_ATTACK_PERIOD, I_TARGET, I_LANE, I_WAYPOINT,
 I_TIER, I_HIT_HERO_TICK) = range(10)
NUM_UNIT_I = 10
# ---- float fields of heroes: hero_f[F, b, h] ----------------------------------------
H_GOLD, H_XP = range(2)
NUM_HERO_F = 2
# ---- int fields of heroes: hero_i[I, b, h] (items follow at H_ITEMS + j) ------------
H_LEVEL, H_RESPAWN, H_ABILITY_CD, H_ITEMS = range(4)

# ---- per-step events: events[b, h, E] -------------------------------------------------
EVENT_NAMES = (
    "kills", "deaths", "assists", "last_hits", "denies", "gold", "xp", "net_worth",
    "tower_damage", "towers_destroyed", "damage_dealt", "damage_taken",
    "gold_spent", "health_delta", "illegal_actions",
)
(E_KILLS, E_DEATHS, E_ASSISTS, E_LAST_HITS, E_DENIES, E_GOLD, E_XP, E_NET_WORTH,
 E_TOWER_DAMAGE, E_TOWERS_DESTROYED, E_DAMAGE_DEALT, E_DAMAGE_TAKEN, E_GOLD_SPENT,
 E_HEALTH_DELTA, E_ILLEGAL) = range(len(EVENT_NAMES))
NUM_EVENTS = len(EVENT_NAMES)

# ---- observation features --------------------------------------------------------------
GLOBAL_FEATURES = ("time", "wave_phase", "own_ancient_hp", "own_towers_alive")
SELF_FEATURES = (
    "alive", "x", "y", "hp_frac", "hp", "max_hp", "damage", "level", "xp_progress", "gold",
    "ability_ready", "ability_cooldown", "attack_ready", "respawn", "at_base", "speed",
) + tuple(f"item_{name}" for name, *_ in ITEMS)
ENTITY_FEATURES = (
    "present", "alive", "is_ally", "is_enemy", "hero", "melee_creep", "ranged_creep", "tower",
    "ancient", "dx", "dy", "distance", "hp_frac", "hp", "level", "in_attack_range",
    "in_ability_range", "attackable", "invulnerable", "targets_me",
)
# Scales of the observation: feature = quantity * SCALE (entity dx, dy and distance are
# divided by the hero vision radius, positions by the map size).
HP_SCALE = 0.001
DAMAGE_SCALE = 0.01
GOLD_SCALE = 0.001
RESPAWN_SCALE = 0.02
GLOBAL_DIM = len(GLOBAL_FEATURES)
SELF_DIM = len(SELF_FEATURES)
ENT_DIM = len(ENTITY_FEATURES)
NUM_ITEMS = len(ITEMS)
NUM_MOVES = 8

# ---- packed parameters: params[P_*] (float64) -------------------------------------------
_PARAM_NAMES = (
    "map_size", "max_ticks", "wave_interval", "melee_per_wave", "ranged_per_wave",
    "max_creeps_per_lane", "creep_speed", "creep_aggro_range", "hero_speed", "hero_range",
    "hero_base_hp", "hero_hp_per_level", "hero_base_damage", "hero_damage_per_level",
    "hero_attack_period", "hero_regen", "hero_vision", "max_level", "respawn_base",
    "respawn_per_level", "inventory_size", "start_gold", "passive_gold", "ability_damage",
    "ability_damage_per_level", "ability_range", "ability_cooldown", "melee_bounty",
    "ranged_bounty", "melee_xp", "ranged_xp", "xp_radius", "hero_kill_gold",
    "hero_kill_gold_per_level", "assist_gold", "hero_kill_xp", "hero_kill_xp_per_level",
    "assist_window", "tower_gold", "tower_last_hit_gold", "deny_xp_fraction", "tower_hp",
    "tower_damage", "tower_range", "tower_attack_period", "ancient_hp", "ancient_damage",
    "ancient_range", "building_vision", "base_radius", "fountain_heal",
)
# P_<NAME> = index of config field <name> in the packed params array (same order).
P_MAP_SIZE = 0
P_MAX_TICKS = 1
P_WAVE_INTERVAL = 2
P_MELEE_PER_WAVE = 3
P_RANGED_PER_WAVE = 4
P_MAX_CREEPS_PER_LANE = 5
P_CREEP_SPEED = 6
P_CREEP_AGGRO_RANGE = 7
P_HERO_SPEED = 8
P_HERO_RANGE = 9
P_HERO_BASE_HP = 10
P_HERO_HP_PER_LEVEL = 11
P_HERO_BASE_DAMAGE = 12
P_HERO_DAMAGE_PER_LEVEL = 13
P_HERO_ATTACK_PERIOD = 14
P_HERO_REGEN = 15
P_HERO_VISION = 16
P_MAX_LEVEL = 17
P_RESPAWN_BASE = 18
P_RESPAWN_PER_LEVEL = 19
P_INVENTORY_SIZE = 20
P_START_GOLD = 21
P_PASSIVE_GOLD = 22
P_ABILITY_DAMAGE = 23
P_ABILITY_DAMAGE_PER_LEVEL = 24
P_ABILITY_RANGE = 25
P_ABILITY_COOLDOWN = 26
P_MELEE_BOUNTY = 27
P_RANGED_BOUNTY = 28
P_MELEE_XP = 29
P_RANGED_XP = 30
P_XP_RADIUS = 31
P_HERO_KILL_GOLD = 32
P_HERO_KILL_GOLD_PER_LEVEL = 33
P_ASSIST_GOLD = 34
P_HERO_KILL_XP = 35
P_HERO_KILL_XP_PER_LEVEL = 36
P_ASSIST_WINDOW = 37
P_TOWER_GOLD = 38
P_TOWER_LAST_HIT_GOLD = 39
P_DENY_XP_FRACTION = 40
P_TOWER_HP = 41
P_TOWER_DAMAGE = 42
P_TOWER_RANGE = 43
P_TOWER_ATTACK_PERIOD = 44
P_ANCIENT_HP = 45
P_ANCIENT_DAMAGE = 46
P_ANCIENT_RANGE = 47
P_BUILDING_VISION = 48
P_BASE_RADIUS = 49
P_FOUNTAIN_HEAL = 50
NUM_PARAMS = len(_PARAM_NAMES)

def level_xp_table(max_level: int) -> np.ndarray:
    """Total XP needed to reach each level (index = level; level 1 needs 0)."""
    levels = np.arange(max_level + 2, dtype=np.float64)
    return 100.0 * (levels - 1) * levels / 2.0


@dataclass(frozen=True)
class MobaLayout:
    """Sizes, index ranges, map geometry and packed parameters derived from a config."""

    config: MobaConfig

    # --- sizes -----------------------------------------------------------------------
    @property
    def num_heroes(self) -> int:
        return self.config.num_heroes

    @property
    def buildings_per_team(self) -> int:
        return self.config.towers_per_team + 1

    @property
    def first_building(self) -> int:
        return self.num_heroes

    @property
    def first_creep(self) -> int:
        return self.num_heroes + 2 * self.buildings_per_team

    @property
    def num_units(self) -> int:
        return self.first_creep + 2 * self.config.max_creeps

    def ancient(self, team: int) -> int:
        return self.first_building + team * self.buildings_per_team

    def tower(self, team: int, lane: int, tier: int) -> int:
        """Unit index of a tower; tier 1 is the outer tower, tier 2 the inner one."""
        return self.ancient(team) + 1 + 2 * lane + (tier - 1)

    def creep_slots(self, team: int) -> range:
        start = self.first_creep + team * self.config.max_creeps
        return range(start, start + self.config.max_creeps)

    # --- observation --------------------------------------------------------------------
    @property
    def num_allies(self) -> int:
        return self.config.team_size - 1

    @property
    def num_entities(self) -> int:
        return self.num_allies + self.config.num_visible

    @property
    def obs_dim(self) -> int:
        return GLOBAL_DIM + SELF_DIM + self.num_entities * ENT_DIM

    @property
    def obs_slices(self) -> dict[str, slice]:
        """Slices of the flat observation: global, self, allies, visible, entities."""
        g, s = GLOBAL_DIM, GLOBAL_DIM + SELF_DIM
        a = s + self.num_allies * ENT_DIM
        return {
            "global": slice(0, g),
            "self": slice(g, s),
            "allies": slice(s, a),
            "visible": slice(a, self.obs_dim),
            "entities": slice(s, self.obs_dim),
        }

    @property
    def entity_layout(self) -> tuple[int, int, int]:
        """(flat_dim, num_entities, entity_dim): the observation as [global+self | entity
        rows], each row's feature 0 its presence flag; plain numbers for the entity encoder
        (agents/policy.py EntityLayout), which knows no game."""
        assert ENTITY_FEATURES[0] == "present", "the encoder reads presence from entity feature 0"
        return self.obs_slices["entities"].start, self.num_entities, ENT_DIM

    @property
    def feature_names(self) -> tuple[str, ...]:
        """A name for every observation feature ("global/time", "self/hp", "ally0/present",
        "visible3/dx"; entity rows as "<slot>/<feature>"): what lets a run change the
        observation (more visible entities, a team size, a new feature) and keep its networks
        (arena/learn/surgery.py maps old features to new ones by these names)."""
        names = [f"global/{n}" for n in GLOBAL_FEATURES] + [f"self/{n}" for n in SELF_FEATURES]
        slots = [f"ally{k}" for k in range(self.num_allies)] + \
            [f"visible{k}" for k in range(self.config.num_visible)]
        names += [f"{slot}/{n}" for slot in slots for n in ENTITY_FEATURES]
        return tuple(names)

    def split_obs(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """Split observations (..., obs_dim) into named blocks; entity blocks get (..., n, ENT_DIM)."""
        sl = self.obs_slices
        lead = obs.shape[:-1]
        return {
            "global": obs[..., sl["global"]],
            "self": obs[..., sl["self"]],
            "allies": obs[..., sl["allies"]].reshape(*lead, self.num_allies, ENT_DIM),
            "visible": obs[..., sl["visible"]].reshape(*lead, self.config.num_visible, ENT_DIM),
        }

    # --- actions --------------------------------------------------------------------------
    @property
    def first_move(self) -> int:
        return 1

    @property
    def first_attack(self) -> int:
        return 1 + NUM_MOVES

    @property
    def first_ability(self) -> int:
        return self.first_attack + self.config.num_visible

    @property
    def first_buy(self) -> int:
        return self.first_ability + self.config.num_visible

    @property
    def retreat(self) -> int:
        return self.first_buy + NUM_ITEMS

    @property
    def num_actions(self) -> int:
        return self.retreat + 1

    @property
    def action_names(self) -> tuple[str, ...]:
        """`action_name` of every action, in order (see `feature_names`)."""
        return tuple(self.action_name(a) for a in range(self.num_actions))

    def action_name(self, action: int) -> str:
        if action == 0:
            return "noop"
        if action < self.first_attack:
            return f"move_{('E', 'NE', 'N', 'NW', 'W', 'SW', 'S', 'SE')[action - 1]}"
        if action < self.first_ability:
            return f"attack_{action - self.first_attack}"
        if action < self.first_buy:
            return f"ability_{action - self.first_ability}"
        if action < self.retreat:
            return f"buy_{ITEMS[action - self.first_buy][0]}"
        if action == self.retreat:
            return "retreat"
        raise ValueError(f"action {action} out of range 0..{self.num_actions - 1}")

    # --- map geometry -------------------------------------------------------------------
    def fountains(self) -> np.ndarray:
        """(2, 2) fountain position of each team; radiant bottom-left, dire top-right."""
        m = self.config.map_size
        return np.array([[0.04 * m, 0.04 * m], [0.96 * m, 0.96 * m]], dtype=np.float64)

    def base_positions(self) -> np.ndarray:
        """(2, 2) ancient position of each team."""
        m = self.config.map_size
        return np.array([[0.1 * m, 0.1 * m], [0.9 * m, 0.9 * m]], dtype=np.float64)

    def waypoints(self) -> np.ndarray:
        """(2, lanes, 3, 2): each team's path along each lane, from its base to the enemy's.

        Lane 0 is the middle (diagonal) lane; lanes 1 and 2 run along the top and bottom
        edges through a corner. A lane has 3 waypoints; the middle lane repeats its end.
        """
        r, d = self.base_positions()
        m = self.config.map_size
        paths = [np.array([r, (r + d) / 2, d])]
        if self.config.lanes == 3:
            paths.append(np.array([r, [r[0], 0.9 * m], d]))  # top: up, then right
            paths.append(np.array([r, [0.9 * m, r[1]], d]))  # bottom: right, then up
        radiant = np.stack(paths)
        dire = radiant[:, ::-1, :].copy()
        return np.stack([radiant, dire]).astype(np.float64)

    def tower_positions(self) -> np.ndarray:
        """(2, lanes, 2 tiers, 2): tier 1 at 38% of the lane from own base, tier 2 at 20%."""
        wp = self.waypoints()
        out = np.zeros((2, self.config.lanes, 2, 2))
        for team in range(2):
            for lane in range(self.config.lanes):
                pts = wp[team, lane]
                seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
                total = seg.sum()
                for t, frac in enumerate((0.38, 0.20)):
                    dist = frac * total
                    if dist <= seg[0] or seg[1] == 0:
                        p = pts[0] + (pts[1] - pts[0]) * min(dist / seg[0], 1.0)
                    else:
                        p = pts[1] + (pts[2] - pts[1]) * ((dist - seg[0]) / seg[1])
                    out[team, lane, t] = p
        return out

    def params(self) -> np.ndarray:
        c = self.config
        return np.array([float(getattr(c, name)) for name in _PARAM_NAMES], dtype=np.float64)

    def item_table(self) -> np.ndarray:
        """(NUM_ITEMS, 5): cost, +damage, +max_hp, +speed, +regen."""
        return np.array([item[1:] for item in ITEMS], dtype=np.float64)
