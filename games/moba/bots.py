"""Scripted bots of rising strength: fixed reference opponents for the built-in MOBA.

A bot is a policy over observations only: it sees exactly what an agent sees (the flat
observation of `games/moba/layout.py` and the action mask), never the core's state. It
knows the rules (the `MobaConfig` behind the layout: ranges, damage numbers, where the
buildings stand), as a human player would.

    random      uniform over the legal actions
    passive     stays by its own towers behind its creeps, hits what comes into range,
                goes home to heal when low
    lasthitter  follows its creep wave, last-hits enemy creeps and denies its own, finishes
                creeps with the nuke, buys items at base, heals when low
    pusher      aggressive: walks the lane with its creeps, hits every enemy creep, attacks
                enemy heroes when the fight looks favourable, nukes heroes, sieges towers
                and the ancient while its creeps tank them, buys items, heals when low
    teamfighter moves as a group: walks to its allies when it strays from them, focuses
                (nukes and attacks) the weakest visible enemy hero whenever the group is
                not outnumbered, pushes with its creeps only when no hero is in sight,
                buys health first, heals when low

`random` .. `pusher` form a ladder of rising strength (`LADDER`); the teamfighter is a
different style, not a rung: it is kept out of every training config as part of the
MOBA's held-out panel (games/registry.py).

Every bot is vectorised over the N rows it gets (all heroes of all games it controls) with
numpy and is stateless apart from the random bot's generator, so one bot object can
drive any number of games. The returned actions are always legal under the mask.

Geometry: positions and moves are in the observing team's own frame (own base bottom-left,
enemy base top-right for both teams). The middle lane is the diagonal x = y, so a bot
measures its progress along the lane as s = (x + y) / sqrt(2) in map units.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from games.moba.config import ITEM_NAMES
from games.moba.layout import (
    DAMAGE_SCALE,
    ENTITY_FEATURES,
    GOLD_SCALE,
    HP_SCALE,
    SELF_FEATURES,
    MobaLayout,
)

LADDER: tuple[str, ...] = ("random", "passive", "lasthitter", "pusher")  # weakest first
BOT_NAMES: tuple[str, ...] = (*LADDER, "teamfighter")

# ---- feature indices, computed once -------------------------------------------------------
_S = {name: i for i, name in enumerate(SELF_FEATURES)}
_E = {name: i for i, name in enumerate(ENTITY_FEATURES)}

_SQRT2 = math.sqrt(2.0)
_OCTANT = math.pi / 4.0
_RETREAT_MOVE = 6  # move SW: straight back down the lane, towards the own base


class Bot(abc.ABC):
    """Base class: `act(obs (N, obs_dim) float32, mask (N, num_actions) int8) -> (N,) int64`."""

    name: str = "bot"

    def __init__(self, layout: MobaLayout, seed: int = 0) -> None:
        self.layout = layout
        self.seed = int(seed)

    @abc.abstractmethod
    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One legal action per row."""

    def __call__(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.act(obs, mask)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, seed={self.seed})"

    def _check(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lay = self.layout
        obs = np.asarray(obs)
        mask = np.asarray(mask)
        if obs.ndim != 2 or obs.shape[1] != lay.obs_dim:
            raise ValueError(
                f"{self.name} bot: obs must have shape (N, {lay.obs_dim}), got {obs.shape}")
        if mask.shape != (obs.shape[0], lay.num_actions):
            raise ValueError(
                f"{self.name} bot: mask must have shape ({obs.shape[0]}, {lay.num_actions}), "
                f"got {mask.shape}")
        return obs, mask


def _legalize(actions: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Replace any action the mask forbids by the no-op (or, if even that is masked, by the
    first legal action)."""
    n = actions.shape[0]
    rows = np.arange(n)
    bad = mask[rows, actions] == 0
    if bad.any():
        fallback = np.where(mask[:, 0] != 0, 0, np.argmax(mask != 0, axis=1))
        actions = np.where(bad, fallback, actions)
    return actions.astype(np.int64, copy=False)


# ---------------------------------------------------------------------------------------
# random
# ---------------------------------------------------------------------------------------
class RandomBot(Bot):
    """Uniform over the legal actions, from its own seeded `np.random.Generator`."""

    name = "random"

    def __init__(self, layout: MobaLayout, seed: int = 0) -> None:
        super().__init__(layout, seed)
        self.rng = np.random.default_rng(self.seed)

    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        obs, mask = self._check(obs, mask)
        keys = self.rng.random(mask.shape)
        keys[mask == 0] = -1.0  # the argmax of iid uniforms over the legal set is uniform
        return _legalize(np.argmax(keys, axis=1).astype(np.int64), mask)


# ---------------------------------------------------------------------------------------
# what the scripted bots read from an observation
# ---------------------------------------------------------------------------------------
@dataclass
class _View:
    """Decoded observations of N heroes; positions in map units, own frame."""

    alive: np.ndarray       # (N,) bool
    me: np.ndarray          # (N, 2)
    s: np.ndarray           # (N,) lane progress
    hp_frac: np.ndarray
    hp: np.ndarray
    damage: np.ndarray
    level: np.ndarray
    nuke: np.ndarray        # (N,) nuke damage at the current level
    gold: np.ndarray
    ability_ready: np.ndarray
    attack_ready: np.ndarray
    at_base: np.ndarray
    items: np.ndarray       # (N, I) counts
    # visible entities (N, K)
    present: np.ndarray
    ally: np.ndarray
    enemy: np.ndarray
    hero: np.ndarray
    creep: np.ndarray
    tower: np.ndarray
    ancient: np.ndarray
    building: np.ndarray
    pos: np.ndarray         # (N, K, 2)
    pair_d2: np.ndarray     # (N, K, K) squared distance between entities j and k
    es: np.ndarray          # (N, K) lane progress
    dist: np.ndarray
    ehp: np.ndarray
    ehp_frac: np.ndarray
    in_range: np.ndarray
    in_ability: np.ndarray
    attackable: np.ndarray
    invulnerable: np.ndarray
    targets_me: np.ndarray
    brange: np.ndarray      # (N, K) attack range of a building entity (0 otherwise)
    # allied heroes (N, A)
    ally_alive: np.ndarray
    ally_pos: np.ndarray    # (N, A, 2)
    ally_dist: np.ndarray
    ally_hp_frac: np.ndarray


def _decode(layout: MobaLayout, obs: np.ndarray) -> _View:
    c = layout.config
    parts = layout.split_obs(obs.astype(np.float64))
    s, v, al = parts["self"], parts["visible"], parts["allies"]
    m = c.map_size
    vision = c.hero_vision
    me = s[:, [_S["x"], _S["y"]]] * m
    level = np.rint(s[:, _S["level"]] * c.max_level)
    items = np.rint(s[:, [_S[f"item_{n}"] for n in ITEM_NAMES]] * c.inventory_size)
    flags = v > 0.5
    live = flags[..., _E["present"]] & flags[..., _E["alive"]]
    tower = live & flags[..., _E["tower"]]
    ancient = live & flags[..., _E["ancient"]]
    pos = me[:, None, :] + v[..., [_E["dx"], _E["dy"]]] * vision
    brange = np.where(tower, c.tower_range, np.where(ancient, c.ancient_range, 0.0))
    px, py = pos[..., 0], pos[..., 1]
    return _View(
        alive=s[:, _S["alive"]] > 0.5,
        me=me,
        s=me.sum(axis=1) / _SQRT2,
        hp_frac=s[:, _S["hp_frac"]],
        hp=s[:, _S["hp"]] / HP_SCALE,
        damage=s[:, _S["damage"]] / DAMAGE_SCALE,
        level=level,
        nuke=c.ability_damage + c.ability_damage_per_level * (level - 1),
        gold=s[:, _S["gold"]] / GOLD_SCALE,
        ability_ready=s[:, _S["ability_ready"]] > 0.5,
        attack_ready=s[:, _S["attack_ready"]] > 0.5,
        at_base=s[:, _S["at_base"]] > 0.5,
        items=items,
        present=live,
        ally=live & flags[..., _E["is_ally"]],
        enemy=live & flags[..., _E["is_enemy"]],
        hero=live & flags[..., _E["hero"]],
        creep=live & (flags[..., _E["melee_creep"]] | flags[..., _E["ranged_creep"]]),
        tower=tower,
        ancient=ancient,
        building=tower | ancient,
        pos=pos,
        pair_d2=(px[:, :, None] - px[:, None, :]) ** 2 + (py[:, :, None] - py[:, None, :]) ** 2,
        es=(px + py) / _SQRT2,
        dist=v[..., _E["distance"]] * vision,
        ehp=v[..., _E["hp"]] / HP_SCALE,
        ehp_frac=v[..., _E["hp_frac"]],
        in_range=live & flags[..., _E["in_attack_range"]],
        in_ability=live & flags[..., _E["in_ability_range"]],
        attackable=live & flags[..., _E["attackable"]],
        invulnerable=flags[..., _E["invulnerable"]],
        targets_me=live & flags[..., _E["targets_me"]],
        brange=brange,
        ally_alive=(al[..., _E["present"]] > 0.5) & (al[..., _E["alive"]] > 0.5),
        ally_pos=me[:, None, :] + al[..., [_E["dx"], _E["dy"]]] * vision,
        ally_dist=al[..., _E["distance"]] * vision,
        ally_hp_frac=al[..., _E["hp_frac"]],
    )


def _pick(score: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the index of the best valid entry (highest score) and whether there is one."""
    masked = np.where(valid, score, -np.inf)
    return np.argmax(masked, axis=1), valid.any(axis=1)


def _row_min(values: np.ndarray, valid: np.ndarray, default: float) -> np.ndarray:
    return np.where(valid.any(axis=1), np.where(valid, values, np.inf).min(axis=1), default)


def _row_max(values: np.ndarray, valid: np.ndarray, default: float) -> np.ndarray:
    return np.where(valid.any(axis=1), np.where(valid, values, -np.inf).max(axis=1), default)


def _move_towards(me: np.ndarray, target: np.ndarray, hold: float = 0.5) -> np.ndarray:
    """The move action (1..8) heading from `me` to `target` (N, 2); 0 (no-op) when within
    `hold` map units."""
    d = target - me
    octant = np.rint(np.arctan2(d[:, 1], d[:, 0]) / _OCTANT).astype(np.int64) % 8
    close = np.hypot(d[:, 0], d[:, 1]) <= hold
    return np.where(close, 0, 1 + octant)


class _Plan:
    """Actions chosen by priority: the first rule that claims a row decides it."""

    def __init__(self, n: int) -> None:
        self.act = np.zeros(n, np.int64)
        self.done = np.zeros(n, bool)

    def take(self, cond: np.ndarray, action: np.ndarray | int) -> None:
        t = cond & ~self.done
        if isinstance(action, np.ndarray):
            self.act[t] = action[t]
        else:
            self.act[t] = action
        self.done |= t


# ---------------------------------------------------------------------------------------
# scripted bots
# ---------------------------------------------------------------------------------------
class _Scripted(Bot):
    """Shared sensing and movement of the scripted bots."""

    retreat_low = 0.3    # go home below this HP fraction on the lane ...
    retreat_high = 0.85  # ... and heal up to this one near the base
    buy_plan: tuple[tuple[str, int], ...] = ()  # (item, how many to own) in order

    def __init__(self, layout: MobaLayout, seed: int = 0) -> None:
        super().__init__(layout, seed)
        c = layout.config
        m = c.map_size
        self.cfg = c
        towers = layout.tower_positions()[0, 0]  # radiant's = every team's own frame
        self.own_t1_s = float(towers[0].sum() / _SQRT2)
        self.own_t2_s = float(towers[1].sum() / _SQRT2)
        self.mid_s = m / _SQRT2
        self.fountain_s = float(layout.fountains()[0].sum() / _SQRT2)
        self.lane_s = (self.own_t1_s + self.own_t2_s) / 2.0  # where the heal threshold bottoms out
        self.first_attack = layout.first_attack
        self.first_ability = layout.first_ability
        self.first_buy = layout.first_buy
        self.retreat = layout.retreat

    # --- helpers ------------------------------------------------------------------------
    def _lane_point(self, s: np.ndarray) -> np.ndarray:
        p = np.asarray(s, np.float64) / _SQRT2
        return np.stack([p, p], axis=-1)

    def _opening(self, obs: np.ndarray, mask: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, _View, _Plan]:
        """What every buying bot does first: the dead wait (action 0), and a hero at the
        fountain with gold buys the next item of its plan."""
        obs, mask = self._check(obs, mask)
        v = _decode(self.layout, obs)
        plan = _Plan(obs.shape[0])
        plan.take(~v.alive, 0)
        buy, can_buy = self._buy(v, mask)
        plan.take(can_buy, buy)
        return obs, mask, v, plan

    def _wave_target(self, v: _View, tanked: np.ndarray, untanked: np.ndarray, behind: float,
                     home: float) -> np.ndarray:
        """Where on the lane a pushing hero stands: `stand_off` before the enemy wave, else
        `behind` the allied wave's front, else `home` short of mid; at a building its creeps
        siege when no enemy wave is in the way; never inside an untanked building's range."""
        a_front, has_a, e_front, has_e = self._wave_fronts(v)
        siege_s = _row_min(v.es - self.cfg.hero_range + 1.0, v.enemy & v.building & tanked,
                           np.inf)
        s_target = np.where(has_e, e_front - self.stand_off,
                            np.where(has_a, a_front - behind, self.mid_s - home))
        s_target = np.where(np.isfinite(siege_s) & ~has_e, siege_s, s_target)
        return np.minimum(s_target, self._danger_limit(v, untanked, 1.0))

    def _must_retreat(self, v: _View) -> np.ndarray:
        """Low HP: go home. The threshold rises towards `retreat_high` near the own base, so
        a hero that turned back keeps walking until it has healed (no state needed)."""
        frac = np.clip((v.s - self.fountain_s) / (self.lane_s - self.fountain_s), 0.0, 1.0)
        threshold = self.retreat_high - (self.retreat_high - self.retreat_low) * frac
        return v.alive & (v.hp_frac < threshold)

    def _tanked(self, v: _View) -> np.ndarray:
        """(N, K): visible enemy buildings with an allied creep inside their range (so the
        building shoots creeps, not heroes)."""
        creeps = v.ally & v.creep  # (N, K)
        inside = (v.pair_d2 <= (v.brange[:, :, None] - 0.5) ** 2) & creeps[:, None, :]
        return v.enemy & v.building & inside.any(axis=2)

    def _danger_limit(self, v: _View, untanked: np.ndarray, margin: float) -> np.ndarray:
        """The lane progress a hero should not pass: just outside every untanked enemy
        building's range (buildings stand on the lane)."""
        return _row_min(v.es - v.brange - margin, untanked, np.inf)

    def _in_danger(self, v: _View, untanked: np.ndarray, margin: float) -> np.ndarray:
        return (untanked & (v.dist <= v.brange + margin)).any(axis=1)

    def _buy(self, v: _View, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The next item of `buy_plan` this hero lacks, and whether it can buy it now."""
        want = np.full(v.alive.shape[0], -1, np.int64)
        for item, count in reversed(self.buy_plan):
            j = ITEM_NAMES.index(item)
            want = np.where(v.items[:, j] < count, j, want)
        action = self.first_buy + np.maximum(want, 0)
        rows = np.arange(want.shape[0])
        ok = (want >= 0) & (mask[rows, action] != 0)
        return action, ok

    def _wave_fronts(self, v: _View) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Lane progress of the foremost allied creep and the rearmost enemy creep."""
        ac = v.ally & v.creep
        ec = v.enemy & v.creep
        return (_row_max(v.es, ac, -np.inf), ac.any(axis=1),
                _row_min(v.es, ec, np.inf), ec.any(axis=1))


class PassiveBot(_Scripted):
    """Holds the lane by its own towers, behind its creeps; hits whatever enemy comes into
    attack range; goes home to heal when low."""

    name = "passive"
    retreat_low = 0.35
    retreat_high = 0.8

    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        obs, mask = self._check(obs, mask)
        v = _decode(self.layout, obs)
        plan = _Plan(obs.shape[0])
        plan.take(~v.alive, 0)
        plan.take(self._must_retreat(v), self.retreat)
        # fight what is in range: the weakest enemy, heroes preferred
        target = v.enemy & v.attackable & v.in_range
        score = -v.ehp_frac + np.where(v.hero, 0.5, 0.0)
        k, ok = _pick(score, target)
        plan.take(ok, self.first_attack + k)
        # stand behind the own creep front, between the own towers
        a_front, has_a, _, _ = self._wave_fronts(v)
        s_target = np.where(has_a, a_front - 2.0, self.own_t1_s - 1.5)
        s_target = np.clip(s_target, self.own_t2_s, self.own_t1_s - 1.0)
        plan.take(np.ones_like(plan.done), _move_towards(v.me, self._lane_point(s_target)))
        return _legalize(plan.act, mask)


class LastHitterBot(_Scripted):
    """Follows its creep wave and farms: last-hits enemy creeps, denies its own, finishes
    creeps with the nuke, buys items at base, heals when low. It fights heroes only to hit
    back at one that attacks it."""

    name = "lasthitter"
    retreat_low = 0.35
    retreat_high = 0.85
    buy_plan = (("blade", 1), ("ring", 1), ("vitality", 1), ("blade", 2), ("vitality", 2),
                ("boots", 1))
    stand_off = 4.2  # how far behind the enemy creep front it stands

    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        obs, mask, v, plan = self._opening(obs, mask)
        n = obs.shape[0]
        plan.take(self._must_retreat(v), self.retreat)
        tanked = self._tanked(v)
        untanked = v.enemy & v.building & ~tanked
        # step out of an enemy building's reach, and away from creeps that chase it
        plan.take(self._in_danger(v, untanked, 0.5), _RETREAT_MOVE)
        chased = (v.enemy & v.creep & v.targets_me).any(axis=1)
        # last hit: an enemy creep our next hit kills
        lh = v.enemy & v.creep & v.attackable & (v.ehp <= v.damage[:, None]) \
            & (v.in_range | (v.dist <= self.cfg.hero_range + 1.5))
        k, ok = _pick(-v.ehp, lh)
        plan.take(ok, self.first_attack + k)
        # the nuke finishes a creep the attack cannot (or not now)
        nk = v.enemy & v.creep & v.in_ability & (v.ehp <= v.nuke[:, None]) \
            & ((v.ehp > v.damage[:, None]) | ~v.attack_ready[:, None])
        k, ok = _pick(v.ehp, nk)  # the fattest creep the nuke still kills
        plan.take(ok & v.ability_ready, self.first_ability + k)
        # deny: an allied creep our hit kills
        dn = v.ally & v.creep & v.attackable & (v.ehp <= v.damage[:, None]) & v.in_range
        k, ok = _pick(-v.ehp, dn)
        plan.take(ok, self.first_attack + k)
        plan.take(chased, _RETREAT_MOVE)
        # hit back at an enemy hero that attacks it
        hb = v.enemy & v.hero & v.attackable & v.in_range & v.targets_me
        k, ok = _pick(-v.ehp, hb)
        plan.take(ok & (v.hp_frac > 0.5), self.first_attack + k)
        # position: just out of the enemy creeps' reach, behind the own wave
        a_front, has_a, e_front, has_e = self._wave_fronts(v)
        s_target = np.where(has_e, e_front - self.stand_off,
                            np.where(has_a, a_front - 1.0, self.own_t1_s - 1.0))
        s_target = np.minimum(s_target, self._danger_limit(v, untanked, 1.0))
        plan.take(np.ones(n, bool), _move_towards(v.me, self._lane_point(s_target)))
        return _legalize(plan.act, mask)


class PusherBot(_Scripted):
    """Aggressive: walks the lane with its creeps and kills everything it can. Nukes enemy
    heroes, attacks them when the fight looks favourable, sieges towers and the ancient
    while its creeps tank them, last-hits and denies on the way, buys items at base, heals
    when low."""

    name = "pusher"
    retreat_low = 0.3
    retreat_high = 0.85
    buy_plan = (("blade", 1), ("vitality", 1), ("blade", 2), ("ring", 1), ("blade", 3),
                ("vitality", 2))
    stand_off = 3.8

    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        obs, mask, v, plan = self._opening(obs, mask)
        c = self.cfg
        n = obs.shape[0]
        retreat = self._must_retreat(v)
        tanked = self._tanked(v)
        untanked = v.enemy & v.building & ~tanked
        building_on_me = (v.enemy & v.building & v.targets_me).any(axis=1)
        plan.take(retreat | (building_on_me & (v.hp_frac < 0.5)), self.retreat)

        enemy_hero = v.enemy & v.hero & v.attackable
        # a hero under one of its own (visible) towers is out of bounds
        b_mask = v.enemy & v.building
        covered = ((v.pair_d2 <= (v.brange[:, None, :] + 1.0) ** 2)
                   & b_mask[:, None, :]).any(axis=2)
        # the nuke: on the weakest enemy hero in range
        nh = enemy_hero & v.in_ability
        k, ok = _pick(-v.ehp, nh)
        plan.take(ok & v.ability_ready, self.first_ability + k)
        # get out from under a building that shoots at us
        plan.take(building_on_me | self._in_danger(v, untanked, 0.3), _RETREAT_MOVE)
        # fight an enemy hero when it looks favourable
        near_enemies = (enemy_hero & (v.dist <= 10.0)).sum(axis=1)
        near_allies = 1 + (v.ally_alive & (v.ally_dist <= 8.0)).sum(axis=1)
        burst = 2.0 * v.damage + np.where(v.ability_ready, v.nuke, 0.0)
        weak = (v.ehp <= burst[:, None]) | (v.ehp <= 0.9 * v.hp[:, None])
        fight = enemy_hero & ~covered & weak & (v.dist <= c.hero_range + 3.0) \
            & (near_allies >= near_enemies)[:, None] & (v.hp_frac > 0.4)[:, None]
        k, ok = _pick(-v.ehp, fight)
        plan.take(ok, self.first_attack + k)
        # last hits, then the nuke on a creep it kills (when no hero is around), denies
        lh = v.enemy & v.creep & v.attackable & (v.ehp <= v.damage[:, None]) \
            & (v.in_range | (v.dist <= c.hero_range + 1.0))
        k, ok = _pick(-v.ehp, lh)
        plan.take(ok, self.first_attack + k)
        nk = v.enemy & v.creep & v.in_ability & (v.ehp <= v.nuke[:, None]) \
            & (v.ehp > v.damage[:, None])
        k, ok = _pick(v.ehp, nk)
        plan.take(ok & v.ability_ready & (near_enemies == 0), self.first_ability + k)
        dn = v.ally & v.creep & v.attackable & (v.ehp <= v.damage[:, None]) & v.in_range
        k, ok = _pick(-v.ehp, dn)
        plan.take(ok, self.first_attack + k)
        # siege a building its creeps tank (or one about to fall)
        sg = v.enemy & v.building & v.attackable & (tanked | (v.ehp <= 2.0 * v.damage[:, None]))
        k, ok = _pick(-v.ehp, sg)
        plan.take(ok, self.first_attack + k)
        # hit back at a hero that attacks it, then push: the weakest enemy creep in range
        hb = enemy_hero & v.in_range & v.targets_me
        k, ok = _pick(-v.ehp, hb)
        plan.take(ok, self.first_attack + k)
        ec = v.enemy & v.creep & v.attackable & v.in_range
        k, ok = _pick(-v.ehp, ec)
        plan.take(ok, self.first_attack + k)
        # walk with the wave: into range of the enemy creeps, or up to the building it sieges
        s_target = self._wave_target(v, tanked, untanked, behind=0.5, home=4.0)
        plan.take(np.ones(n, bool), _move_towards(v.me, self._lane_point(s_target)))
        return _legalize(plan.act, mask)


class TeamfighterBot(_Scripted):
    """Fights as a team: keeps with its allies and focuses the weakest visible enemy hero.

    It nukes and attacks the enemy hero with the least HP it can see (the attack action
    walks into range first) whenever its group near the fight is not outnumbered and the
    hero does not stand under an untanked enemy building; a hero that strays more than
    `group_radius` from its allies on the lane walks back to them; with no enemy hero in
    sight it pushes with its creeps (sieges what they tank, hits the weakest creep in
    range). It buys health first and goes home to heal when low, like the others. Pure
    function of the observation, so all three heroes of a team converge on one target."""

    name = "teamfighter"
    retreat_low = 0.35
    retreat_high = 0.9
    buy_plan = (("vitality", 1), ("blade", 1), ("vitality", 2), ("blade", 2), ("ring", 1),
                ("boots", 1))
    group_radius = 4.0  # farther than this from the allies' centre: regroup
    lead = 1.5  # how far up the lane it walks ahead of its allies' centre
    engage_range = 9.0  # enemy heroes this close are hunted (vision is 11)
    stand_off = 4.5

    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        obs, mask, v, plan = self._opening(obs, mask)
        n = obs.shape[0]
        plan.take(self._must_retreat(v), self.retreat)
        tanked = self._tanked(v)
        untanked = v.enemy & v.building & ~tanked
        building_on_me = (v.enemy & v.building & v.targets_me).any(axis=1)
        plan.take(building_on_me & (v.hp_frac < 0.6), self.retreat)
        # enemy heroes standing under an untanked enemy building are left alone
        covered = ((v.pair_d2 <= (v.brange[:, None, :] + 1.0) ** 2)
                   & untanked[:, None, :]).any(axis=2)
        hunt = v.enemy & v.hero & v.attackable & ~covered & (v.dist <= self.engage_range)
        # the group near the fight: allies on their feet within reach of it
        allies_near = 1 + (v.ally_alive & (v.ally_dist <= self.engage_range)).sum(axis=1)
        brave = (allies_near + 1 >= hunt.sum(axis=1)) & (v.hp_frac > 0.4)
        weakest = -v.ehp - 0.01 * v.dist  # least HP first, the nearer one on a tie
        k, ok = _pick(weakest, hunt & v.in_ability)
        plan.take(ok & brave & v.ability_ready, self.first_ability + k)
        k, ok = _pick(weakest, hunt)
        plan.take(ok & brave, self.first_attack + k)
        plan.take(building_on_me | self._in_danger(v, untanked, 0.3), _RETREAT_MOVE)
        # regroup with the allies out on the lane (not those healing at the base)
        on_lane = v.ally_alive & ((v.ally_pos.sum(axis=2) / _SQRT2) > self.own_t2_s)
        count = on_lane.sum(axis=1)
        centre = (v.ally_pos * on_lane[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
        stray = (count > 0) & (np.hypot(*(centre - v.me).T) > self.group_radius)
        plan.take(stray, _move_towards(v.me, centre))
        # no hero to fight: push with the creeps
        sg = v.enemy & v.building & v.attackable & (tanked | (v.ehp <= 2.0 * v.damage[:, None]))
        k, ok = _pick(-v.ehp, sg)
        plan.take(ok, self.first_attack + k)
        ec = v.enemy & v.creep & v.attackable & v.in_range
        k, ok = _pick(-v.ehp, ec)
        plan.take(ok, self.first_attack + k)
        s_target = self._wave_target(v, tanked, untanked, behind=1.0, home=6.0)
        # ... but never ahead of the group: the front hero waits for the others
        centre_s = centre.sum(axis=1) / _SQRT2
        s_target = np.where(count > 0, np.minimum(s_target, centre_s + self.lead), s_target)
        plan.take(np.ones(n, bool), _move_towards(v.me, self._lane_point(s_target)))
        return _legalize(plan.act, mask)


_BOTS: dict[str, type[Bot]] = {
    "random": RandomBot,
    "passive": PassiveBot,
    "lasthitter": LastHitterBot,
    "pusher": PusherBot,
    "teamfighter": TeamfighterBot,
}


def make_bot(name: str, layout: MobaLayout, seed: int = 0) -> Bot:
    """A scripted bot by name (one of `BOT_NAMES`)."""
    cls = _BOTS.get(name)
    if cls is None:
        raise ValueError(f"unknown bot {name!r}; bots are {', '.join(BOT_NAMES)}")
    if not isinstance(layout, MobaLayout):
        raise TypeError(f"make_bot: layout must be a MobaLayout, got {type(layout).__name__}")
    return cls(layout, seed)


def registered_bot(name: str, role: Any, seed: int = 0) -> Bot:
    """The registry's factory (games/registry.py): a bot for the agents of a MOBA role,
    whose `obs_layout` is the MobaLayout the bot reads observations with."""
    return make_bot(name, role.obs_layout, seed)
