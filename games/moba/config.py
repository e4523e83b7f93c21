"""Rules and numbers of the built-in MOBA, in one validated dataclass.

Every number the kernels use comes from here (or from constants derived from it in
`layout.py`), so a game designer can retune the game without reading numba code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

# Item table: name, cost, +damage, +max_hp, +speed, +hp_regen per tick.
ITEMS: tuple[tuple[str, int, float, float, float, float], ...] = (
    ("blade", 450, 14.0, 0.0, 0.0, 0.0),
    ("vitality", 400, 0.0, 180.0, 0.0, 0.0),
    ("boots", 300, 0.0, 0.0, 0.18, 0.0),
    ("ring", 250, 0.0, 0.0, 0.0, 1.5),
)
ITEM_NAMES: tuple[str, ...] = tuple(item[0] for item in ITEMS)


@dataclass(frozen=True)
class MobaConfig:
    """Configuration of one MOBA match; validated on construction.

    Time is counted in ticks (one `step`); 2 ticks are one game second.
    Distances are map units on a `map_size` x `map_size` square.
    """

    team_size: int = 3
    lanes: int = 1
    max_ticks: int = 1500
    num_visible: int = 10
    map_size: float = 64.0
    # creeps
    wave_interval: int = 50
    melee_per_wave: int = 3
    ranged_per_wave: int = 1
    max_creeps_per_lane: int = 20
    creep_speed: float = 0.55
    creep_aggro_range: float = 6.0
    # heroes
    hero_speed: float = 0.8
    hero_range: float = 5.0
    hero_base_hp: float = 520.0
    hero_hp_per_level: float = 70.0
    hero_base_damage: float = 42.0
    hero_damage_per_level: float = 5.0
    hero_attack_period: int = 3
    hero_regen: float = 0.4
    hero_vision: float = 11.0
    max_level: int = 12
    respawn_base: int = 10
    respawn_per_level: int = 4
    inventory_size: int = 6
    start_gold: float = 600.0
    passive_gold: float = 0.5
    # ability: a targeted nuke
    ability_damage: float = 90.0
    ability_damage_per_level: float = 18.0
    ability_range: float = 6.0
    ability_cooldown: int = 20
    # economy
    melee_bounty: float = 40.0
    ranged_bounty: float = 50.0
    melee_xp: float = 45.0
    ranged_xp: float = 60.0
    xp_radius: float = 12.0
    hero_kill_gold: float = 200.0
    hero_kill_gold_per_level: float = 12.0
    assist_gold: float = 70.0
    hero_kill_xp: float = 100.0
    hero_kill_xp_per_level: float = 25.0
    assist_window: int = 20
    tower_gold: float = 150.0
    tower_last_hit_gold: float = 100.0
    deny_xp_fraction: float = 0.5
    # buildings
    tower_hp: float = 1300.0
    tower_damage: float = 70.0
    tower_range: float = 7.0
    tower_attack_period: int = 3
    ancient_hp: float = 2500.0
    ancient_damage: float = 50.0
    ancient_range: float = 6.0
    building_vision: float = 10.0
    base_radius: float = 9.0
    fountain_heal: float = 12.0

    def __post_init__(self) -> None:
        def need(cond: bool, name: str, expected: str) -> None:
            if not cond:
                raise ValueError(
                    f"MobaConfig.{name}: expected {expected}, got {getattr(self, name)!r}"
                )

        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", int) and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"MobaConfig.{f.name}: expected an int, got {value!r}")
            if f.type in ("float", float) and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise TypeError(f"MobaConfig.{f.name}: expected a number, got {value!r}")
        need(1 <= self.team_size <= 5, "team_size", "an int from 1 to 5")
        need(self.lanes in (1, 3), "lanes", "1 or 3")
        need(10 <= self.max_ticks <= 100_000, "max_ticks", "an int from 10 to 100000")
        need(1 <= self.num_visible <= 32, "num_visible", "an int from 1 to 32")
        need(32.0 <= self.map_size <= 512.0, "map_size", "a number from 32 to 512")
        need(self.wave_interval >= 1, "wave_interval", "an int >= 1")
        need(self.melee_per_wave >= 0 and self.ranged_per_wave >= 0, "melee_per_wave",
             "non-negative creep counts")
        need(self.melee_per_wave + self.ranged_per_wave >= 1, "melee_per_wave",
             "at least one creep per wave (melee_per_wave + ranged_per_wave >= 1)")
        need(self.max_creeps_per_lane >= self.melee_per_wave + self.ranged_per_wave,
             "max_creeps_per_lane", "at least one wave's worth of creeps")
        need(1 <= self.max_level <= 30, "max_level", "an int from 1 to 30")
        need(1 <= self.inventory_size <= 12, "inventory_size", "an int from 1 to 12")
        for name in ("hero_attack_period", "tower_attack_period", "ability_cooldown",
                     "respawn_base", "assist_window"):
            need(getattr(self, name) >= 1, name, "an int >= 1")
        for name in ("creep_speed", "hero_speed", "hero_range", "hero_base_hp", "tower_hp",
                     "ancient_hp", "hero_vision", "building_vision", "base_radius",
                     "tower_range", "ancient_range", "ability_range", "xp_radius"):
            need(getattr(self, name) > 0, name, "a positive number")

    @property
    def num_heroes(self) -> int:
        return 2 * self.team_size

    @property
    def max_creeps(self) -> int:
        """Creep slots per team."""
        return self.lanes * self.max_creeps_per_lane

    @property
    def towers_per_team(self) -> int:
        return 2 * self.lanes

    def to_dict(self) -> dict:
        return asdict(self)


def make_config(**kwargs) -> MobaConfig:
    """Build a config from keyword arguments, naming any unknown key."""
    known = {f.name for f in fields(MobaConfig)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        import difflib

        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise TypeError(
            f"moba: unknown option(s) {', '.join(hints)}; known options: {', '.join(sorted(known))}"
        )
    return MobaConfig(**kwargs)
