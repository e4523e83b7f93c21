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

Every bot acts on the N rows it gets (all heroes of all games it controls) in one numba
call, a row at a time (about 30 us for 24 rows, against 0.3-0.4 ms for the numpy version it
replaced, whose every action tests/test_bots_golden.py pins), and is stateless apart from
the random bot's generator, so one bot object can drive any number of games. The returned
actions are always legal under the mask.

Geometry: positions and moves are in the observing team's own frame (own base bottom-left,
enemy base top-right for both teams). The middle lane is the diagonal x = y, so a bot
measures its progress along the lane as s = (x + y) / sqrt(2) in map units.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np
from numba import njit

from games.moba.config import ITEM_NAMES
from games.moba.layout import (
    DAMAGE_SCALE,
    ENTITY_FEATURES,
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
# the scripted bots: one numba kernel decides every row
# ---------------------------------------------------------------------------------------
# Each row (one hero) is decoded from its observation and decided by the first rule of its
# bot that claims it, in priority order; the bots share the sensing and movement helpers.
# All arithmetic is float64 on the float32 observation, as the numpy bots these replace
# computed it (tests/test_bots_golden.py pins whole matches to their actions).

_PASSIVE, _LASTHITTER, _PUSHER, _TEAMFIGHTER = 1, 2, 3, 4

# feature offsets within the self block and within an entity (compile-time constants)
_S_ALIVE, _S_X, _S_Y, _S_HP_FRAC = _S["alive"], _S["x"], _S["y"], _S["hp_frac"]
_S_HP, _S_DAMAGE, _S_LEVEL = _S["hp"], _S["damage"], _S["level"]
_S_ABILITY_READY, _S_ATTACK_READY = _S["ability_ready"], _S["attack_ready"]
_E_PRESENT, _E_ALIVE, _E_IS_ALLY, _E_IS_ENEMY = (_E["present"], _E["alive"], _E["is_ally"],
                                                 _E["is_enemy"])
_E_HERO, _E_MELEE, _E_RANGED = _E["hero"], _E["melee_creep"], _E["ranged_creep"]
_E_TOWER, _E_ANCIENT, _E_DX, _E_DY = _E["tower"], _E["ancient"], _E["dx"], _E["dy"]
_E_DISTANCE, _E_HP_FRAC, _E_HP = _E["distance"], _E["hp_frac"], _E["hp"]
_E_IN_RANGE, _E_IN_ABILITY = _E["in_attack_range"], _E["in_ability_range"]
_E_ATTACKABLE, _E_TARGETS_ME = _E["attackable"], _E["targets_me"]

# float parameters f[...] and int parameters i[...] of a bot (see _Scripted.__init__)
(_F_MAP, _F_VISION, _F_MAX_LEVEL, _F_INVENTORY, _F_TOWER_RANGE, _F_ANCIENT_RANGE,
 _F_NUKE, _F_NUKE_PER_LEVEL, _F_HERO_RANGE, _F_RETREAT_LOW, _F_RETREAT_HIGH, _F_STAND_OFF,
 _F_OWN_T1, _F_OWN_T2, _F_MID, _F_FOUNTAIN, _F_LANE, _F_GROUP_RADIUS, _F_LEAD,
 _F_ENGAGE) = range(20)
(_I_KIND, _I_FIRST_ATTACK, _I_FIRST_ABILITY, _I_FIRST_BUY, _I_RETREAT, _I_SELF, _I_ALLIES,
 _I_VISIBLE, _I_NUM_ALLIES, _I_NUM_VISIBLE) = range(10)


@njit(cache=True)
def _pick(score: np.ndarray, valid: np.ndarray) -> int:
    """The index of the best valid entry (highest score, the first of equals), -1 if none."""
    best, at = -np.inf, -1
    for k in range(score.shape[0]):
        if valid[k] and (at < 0 or score[k] > best):
            best, at = score[k], k
    return at


@njit(cache=True)
def _hero_attacking_me(K: int, enemy: np.ndarray, hero: np.ndarray, attackable: np.ndarray,
                       in_range: np.ndarray, targets_me: np.ndarray, score: np.ndarray,
                       valid: np.ndarray) -> int:
    """The enemy hero in range that attacks this one, the best by `score` (the lasthitter's
    and the pusher's "hit back" rule), -1 if none; `valid` is scratch."""
    for k in range(K):
        valid[k] = enemy[k] and hero[k] and attackable[k] and in_range[k] and targets_me[k]
    return _pick(score, valid)


@njit(cache=True)
def _building_to_siege(K: int, enemy: np.ndarray, building: np.ndarray, attackable: np.ndarray,
                       tanked: np.ndarray, ehp: np.ndarray, damage: float, score: np.ndarray,
                       valid: np.ndarray) -> int:
    """An attackable enemy building its creeps tank, or one a couple of hits bring down, the
    best by `score` (the pusher's and the teamfighter's siege rule), -1 if none; `valid` is
    scratch."""
    for k in range(K):
        valid[k] = enemy[k] and building[k] and attackable[k] \
            and (tanked[k] or ehp[k] <= 2.0 * damage)
    return _pick(score, valid)


@njit(cache=True)
def _covered(k: int, cover: np.ndarray, px: np.ndarray, py: np.ndarray,
             brange: np.ndarray) -> bool:
    """Whether entity k stands within one unit of the range of a building in `cover`."""
    for j in range(cover.shape[0]):
        if cover[j]:
            dx, dy = px[k] - px[j], py[k] - py[j]
            r = brange[j] + 1.0
            if dx * dx + dy * dy <= r * r:
                return True
    return False


@njit(cache=True)
def _row_min(values: np.ndarray, valid: np.ndarray, default: float) -> float:
    out, seen = np.inf, False
    for k in range(values.shape[0]):
        if valid[k]:
            out, seen = min(out, values[k]), True
    return out if seen else default


@njit(cache=True)
def _move_towards(mx: float, my: float, tx: float, ty: float, hold: float) -> int:
    """The move action (1..8) heading from (mx, my) to (tx, ty); 0 (no-op) within `hold`."""
    dx, dy = tx - mx, ty - my
    if math.hypot(dx, dy) <= hold:
        return 0
    return 1 + int(np.rint(math.atan2(dy, dx) / _OCTANT)) % 8


@njit(cache=True)
def _to_lane(mx: float, my: float, s: float) -> int:
    """Move along the lane to progress `s` (the lane point (s, s) / sqrt 2)."""
    p = s / _SQRT2
    return _move_towards(mx, my, p, p, 0.5)


@njit(cache=True)
def _scripted_actions(obs: np.ndarray, mask: np.ndarray, f: np.ndarray, i: np.ndarray,
                      item_cols: np.ndarray, buy_items: np.ndarray,
                      buy_counts: np.ndarray) -> np.ndarray:
    """One legal action per row of obs (N, obs_dim) float64 under mask (N, A) bool."""
    N, A = obs.shape[0], mask.shape[1]
    kind = i[_I_KIND]
    K, NA = i[_I_NUM_VISIBLE], i[_I_NUM_ALLIES]
    first_attack, first_ability = i[_I_FIRST_ATTACK], i[_I_FIRST_ABILITY]
    m, vision, hero_range = f[_F_MAP], f[_F_VISION], f[_F_HERO_RANGE]
    ent_dim = len(ENTITY_FEATURES)
    out = np.empty(N, np.int64)
    # scratch for a row: per entity (K,) and per ally (NA,), rows of one allocation each
    flags = np.empty((12, K), np.bool_)
    (ally, enemy, hero, creep, building, in_range, in_ability, attackable, targets_me,
     tanked, untanked, valid) = (flags[0], flags[1], flags[2], flags[3], flags[4], flags[5],
                                 flags[6], flags[7], flags[8], flags[9], flags[10], flags[11])
    chosen = np.empty(K, np.bool_)
    floats = np.empty((9, K))
    px, py, es, dist, ehp, ehp_frac, brange, score, values = (
        floats[0], floats[1], floats[2], floats[3], floats[4], floats[5], floats[6],
        floats[7], floats[8])
    ally_alive = np.empty(NA, np.bool_)
    per_ally = np.empty((3, NA))
    ally_x, ally_y, ally_dist = per_ally[0], per_ally[1], per_ally[2]
    for n in range(N):
        o = obs[n]
        s0, a0, v0 = i[_I_SELF], i[_I_ALLIES], i[_I_VISIBLE]
        mx, my = o[s0 + _S_X] * m, o[s0 + _S_Y] * m
        alive = o[s0 + _S_ALIVE] > 0.5
        s_me = (mx + my) / _SQRT2
        hp_frac = o[s0 + _S_HP_FRAC]
        hp = o[s0 + _S_HP] / HP_SCALE
        damage = o[s0 + _S_DAMAGE] / DAMAGE_SCALE
        level = np.rint(o[s0 + _S_LEVEL] * f[_F_MAX_LEVEL])
        nuke = f[_F_NUKE] + f[_F_NUKE_PER_LEVEL] * (level - 1)
        ability_ready = o[s0 + _S_ABILITY_READY] > 0.5
        attack_ready = o[s0 + _S_ATTACK_READY] > 0.5
        for k in range(K):
            e = v0 + k * ent_dim
            lv = o[e + _E_PRESENT] > 0.5 and o[e + _E_ALIVE] > 0.5
            ally[k] = lv and o[e + _E_IS_ALLY] > 0.5
            enemy[k] = lv and o[e + _E_IS_ENEMY] > 0.5
            hero[k] = lv and o[e + _E_HERO] > 0.5
            creep[k] = lv and (o[e + _E_MELEE] > 0.5 or o[e + _E_RANGED] > 0.5)
            tower = lv and o[e + _E_TOWER] > 0.5
            ancient = lv and o[e + _E_ANCIENT] > 0.5
            building[k] = tower or ancient
            brange[k] = f[_F_TOWER_RANGE] if tower else (f[_F_ANCIENT_RANGE] if ancient else 0.0)
            px[k] = mx + o[e + _E_DX] * vision
            py[k] = my + o[e + _E_DY] * vision
            es[k] = (px[k] + py[k]) / _SQRT2
            dist[k] = o[e + _E_DISTANCE] * vision
            ehp[k] = o[e + _E_HP] / HP_SCALE
            ehp_frac[k] = o[e + _E_HP_FRAC]
            in_range[k] = lv and o[e + _E_IN_RANGE] > 0.5
            in_ability[k] = lv and o[e + _E_IN_ABILITY] > 0.5
            attackable[k] = lv and o[e + _E_ATTACKABLE] > 0.5
            targets_me[k] = lv and o[e + _E_TARGETS_ME] > 0.5
        for a in range(NA):
            e = a0 + a * ent_dim
            ally_alive[a] = o[e + _E_PRESENT] > 0.5 and o[e + _E_ALIVE] > 0.5
            ally_x[a] = mx + o[e + _E_DX] * vision
            ally_y[a] = my + o[e + _E_DY] * vision
            ally_dist[a] = o[e + _E_DISTANCE] * vision
        # enemy buildings with an allied creep inside their range (they shoot creeps, not us)
        for j in range(K):
            t = False
            if enemy[j] and building[j]:
                r = brange[j] - 0.5
                for k in range(K):
                    if ally[k] and creep[k]:
                        dx, dy = px[j] - px[k], py[j] - py[k]
                        if dx * dx + dy * dy <= r * r:
                            t = True
                            break
            tanked[j] = t
            untanked[j] = enemy[j] and building[j] and not t
        # lane progress of the foremost allied creep and the rearmost enemy creep
        a_front, has_a = -np.inf, False
        e_front, has_e = np.inf, False
        for k in range(K):
            if ally[k] and creep[k]:
                a_front, has_a = max(a_front, es[k]), True
            if enemy[k] and creep[k]:
                e_front, has_e = min(e_front, es[k]), True
        # low HP: home; the threshold rises towards retreat_high near the own base
        frac = min(max((s_me - f[_F_FOUNTAIN]) / (f[_F_LANE] - f[_F_FOUNTAIN]), 0.0), 1.0)
        threshold = f[_F_RETREAT_HIGH] - (f[_F_RETREAT_HIGH] - f[_F_RETREAT_LOW]) * frac
        must_retreat = alive and hp_frac < threshold
        # the lane progress not to pass: outside every untanked enemy building's range
        for k in range(K):
            values[k] = es[k] - brange[k] - 1.0
        danger_limit = _row_min(values, untanked, np.inf)

        act = -1
        if not alive:
            act = 0
        elif kind != _PASSIVE:  # the buying bots: the next item of the plan, at the fountain
            for b in range(buy_items.shape[0]):
                if np.rint(o[s0 + item_cols[buy_items[b]]] * f[_F_INVENTORY]) < buy_counts[b]:
                    buy = i[_I_FIRST_BUY] + buy_items[b]
                    if mask[n, buy]:
                        act = buy
                    break

        if act < 0 and kind == _PASSIVE:
            if must_retreat:
                act = i[_I_RETREAT]
            else:
                for k in range(K):
                    valid[k] = enemy[k] and attackable[k] and in_range[k]
                    score[k] = -ehp_frac[k] + (0.5 if hero[k] else 0.0)
                k = _pick(score, valid)
                if k >= 0:
                    act = first_attack + k
                else:  # stand behind the own creep front, between the own towers
                    target = a_front - 2.0 if has_a else f[_F_OWN_T1] - 1.5
                    target = min(max(target, f[_F_OWN_T2]), f[_F_OWN_T1] - 1.0)
                    act = _to_lane(mx, my, target)

        elif act < 0 and kind == _LASTHITTER:
            in_danger = False
            chased = False
            for k in range(K):
                in_danger |= untanked[k] and dist[k] <= brange[k] + 0.5
                chased |= enemy[k] and creep[k] and targets_me[k]
            if must_retreat:
                act = i[_I_RETREAT]
            elif in_danger:
                act = _RETREAT_MOVE
            if act < 0:  # last hit: an enemy creep our next hit kills
                for k in range(K):
                    valid[k] = enemy[k] and creep[k] and attackable[k] and ehp[k] <= damage \
                        and (in_range[k] or dist[k] <= hero_range + 1.5)
                    score[k] = -ehp[k]
                k = _pick(score, valid)
                if k >= 0:
                    act = first_attack + k
            if act < 0 and ability_ready:  # the nuke finishes a creep the attack cannot
                for k in range(K):
                    valid[k] = enemy[k] and creep[k] and in_ability[k] and ehp[k] <= nuke \
                        and (ehp[k] > damage or not attack_ready)
                k = _pick(ehp, valid)  # the fattest creep the nuke still kills
                if k >= 0:
                    act = first_ability + k
            if act < 0:  # deny: an allied creep our hit kills
                for k in range(K):
                    valid[k] = ally[k] and creep[k] and attackable[k] and ehp[k] <= damage \
                        and in_range[k]
                    score[k] = -ehp[k]
                k = _pick(score, valid)
                if k >= 0:
                    act = first_attack + k
            if act < 0 and chased:
                act = _RETREAT_MOVE
            if act < 0 and hp_frac > 0.5:  # hit back at an enemy hero that attacks it
                k = _hero_attacking_me(K, enemy, hero, attackable, in_range, targets_me, score,
                                       valid)
                if k >= 0:
                    act = first_attack + k
            if act < 0:  # just out of the enemy creeps' reach, behind the own wave
                target = e_front - f[_F_STAND_OFF] if has_e else (
                    a_front - 1.0 if has_a else f[_F_OWN_T1] - 1.0)
                act = _to_lane(mx, my, min(target, danger_limit))

        elif act < 0 and kind == _PUSHER:
            building_on_me = False
            in_danger = False
            near_enemies = 0
            for k in range(K):
                building_on_me |= enemy[k] and building[k] and targets_me[k]
                in_danger |= untanked[k] and dist[k] <= brange[k] + 0.3
                if enemy[k] and hero[k] and attackable[k] and dist[k] <= 10.0:
                    near_enemies += 1
            near_allies = 1
            for a in range(NA):
                if ally_alive[a] and ally_dist[a] <= 8.0:
                    near_allies += 1
            if must_retreat or (building_on_me and hp_frac < 0.5):
                act = i[_I_RETREAT]
            for k in range(K):
                score[k] = -ehp[k]
            if act < 0 and ability_ready:  # the nuke on the weakest enemy hero in range
                for k in range(K):
                    valid[k] = enemy[k] and hero[k] and attackable[k] and in_ability[k]
                k = _pick(score, valid)
                if k >= 0:
                    act = first_ability + k
            if act < 0 and (building_on_me or in_danger):
                act = _RETREAT_MOVE
            if act < 0 and near_allies >= near_enemies and hp_frac > 0.4:
                # fight an enemy hero when it looks favourable, not under its own building
                burst = 2.0 * damage + (nuke if ability_ready else 0.0)
                enemy_building = enemy[:K] & building[:K]
                for k in range(K):
                    valid[k] = enemy[k] and hero[k] and attackable[k] \
                        and not _covered(k, enemy_building, px, py, brange) \
                        and (ehp[k] <= burst or ehp[k] <= 0.9 * hp) \
                        and dist[k] <= hero_range + 3.0
                k = _pick(score, valid)
                if k >= 0:
                    act = first_attack + k
            if act < 0:  # last hits
                for k in range(K):
                    valid[k] = enemy[k] and creep[k] and attackable[k] and ehp[k] <= damage \
                        and (in_range[k] or dist[k] <= hero_range + 1.0)
                k = _pick(score, valid)
                if k >= 0:
                    act = first_attack + k
            if act < 0 and ability_ready and near_enemies == 0:  # the nuke on a creep
                for k in range(K):
                    valid[k] = enemy[k] and creep[k] and in_ability[k] and ehp[k] <= nuke \
                        and ehp[k] > damage
                k = _pick(ehp, valid)
                if k >= 0:
                    act = first_ability + k
            if act < 0:  # denies
                for k in range(K):
                    valid[k] = ally[k] and creep[k] and attackable[k] and ehp[k] <= damage \
                        and in_range[k]
                k = _pick(score, valid)
                if k >= 0:
                    act = first_attack + k
            if act < 0:  # siege a building its creeps tank (or one about to fall)
                k = _building_to_siege(K, enemy, building, attackable, tanked, ehp, damage,
                                       score, valid)
                if k >= 0:
                    act = first_attack + k
            if act < 0:  # hit back at a hero that attacks it
                k = _hero_attacking_me(K, enemy, hero, attackable, in_range, targets_me, score,
                                       valid)
                if k >= 0:
                    act = first_attack + k
            if act < 0:  # push: the weakest enemy creep in range
                for k in range(K):
                    valid[k] = enemy[k] and creep[k] and attackable[k] and in_range[k]
                k = _pick(score, valid)
                if k >= 0:
                    act = first_attack + k
            if act < 0:
                act = _to_lane(mx, my, _wave_target(
                    K, enemy, building, tanked, es, has_a, a_front, has_e, e_front,
                    hero_range, f[_F_STAND_OFF], f[_F_MID], 0.5, 4.0, danger_limit))

        elif act < 0 and kind == _TEAMFIGHTER:
            building_on_me = False
            in_danger = False
            for k in range(K):
                building_on_me |= enemy[k] and building[k] and targets_me[k]
                in_danger |= untanked[k] and dist[k] <= brange[k] + 0.3
            if must_retreat or (building_on_me and hp_frac < 0.6):
                act = i[_I_RETREAT]
            engage = f[_F_ENGAGE]
            hunted = 0
            for k in range(K):  # enemy heroes not under an untanked enemy building
                valid[k] = enemy[k] and hero[k] and attackable[k] \
                    and not _covered(k, untanked[:K], px, py, brange) \
                    and dist[k] <= engage
                if valid[k]:
                    hunted += 1
                score[k] = -ehp[k] - 0.01 * dist[k]  # least HP first, the nearer on a tie
            allies_near = 1
            for a in range(NA):
                if ally_alive[a] and ally_dist[a] <= engage:
                    allies_near += 1
            brave = allies_near + 1 >= hunted and hp_frac > 0.4
            if act < 0 and brave and ability_ready:
                for k in range(K):
                    chosen[k] = valid[k] and in_ability[k]
                k = _pick(score, chosen)
                if k >= 0:
                    act = first_ability + k
            if act < 0 and brave:
                k = _pick(score, valid)
                if k >= 0:
                    act = first_attack + k
            if act < 0 and (building_on_me or in_danger):
                act = _RETREAT_MOVE
            # the allies out on the lane (not those healing at the base)
            count = 0
            cx, cy = 0.0, 0.0
            for a in range(NA):
                if ally_alive[a] and (ally_x[a] + ally_y[a]) / _SQRT2 > f[_F_OWN_T2]:
                    cx += ally_x[a]
                    cy += ally_y[a]
                    count += 1
            if count > 0:
                cx, cy = cx / count, cy / count
            if act < 0 and count > 0 and math.hypot(cx - mx, cy - my) > f[_F_GROUP_RADIUS]:
                act = _move_towards(mx, my, cx, cy, 0.5)
            for k in range(K):
                score[k] = -ehp[k]
            if act < 0:  # no hero to fight: push with the creeps
                k = _building_to_siege(K, enemy, building, attackable, tanked, ehp, damage,
                                       score, valid)
                if k >= 0:
                    act = first_attack + k
            if act < 0:
                for k in range(K):
                    valid[k] = enemy[k] and creep[k] and attackable[k] and in_range[k]
                k = _pick(score, valid)
                if k >= 0:
                    act = first_attack + k
            if act < 0:  # ... never ahead of the group: the front hero waits for the others
                target = _wave_target(K, enemy, building, tanked, es, has_a, a_front, has_e,
                                      e_front, hero_range, f[_F_STAND_OFF], f[_F_MID], 1.0,
                                      6.0, danger_limit)
                if count > 0:
                    target = min(target, (cx + cy) / _SQRT2 + f[_F_LEAD])
                act = _to_lane(mx, my, target)

        # legal under the mask: else the no-op, or the first legal action
        if act < 0 or act >= A or not mask[n, act]:
            act = 0
            if not mask[n, 0]:
                for a in range(A):
                    if mask[n, a]:
                        act = a
                        break
        out[n] = act
    return out


@njit(cache=True)
def _wave_target(K: int, enemy: np.ndarray, building: np.ndarray, tanked: np.ndarray,
                 es: np.ndarray, has_a: bool, a_front: float, has_e: bool, e_front: float,
                 hero_range: float, stand_off: float, mid_s: float, behind: float,
                 home: float, danger_limit: float) -> float:
    """Where on the lane a pushing hero stands: `stand_off` before the enemy wave, else
    `behind` the allied wave's front, else `home` short of mid; at a building its creeps
    siege when no enemy wave is in the way; never inside an untanked building's range."""
    siege = np.inf
    for k in range(K):
        if enemy[k] and building[k] and tanked[k]:
            siege = min(siege, es[k] - hero_range + 1.0)
    if has_e:
        target = e_front - stand_off
    elif has_a:
        target = a_front - behind
    else:
        target = mid_s - home
    if np.isfinite(siege) and not has_e:
        target = siege
    return min(target, danger_limit)


class _Scripted(Bot):
    """Shared parameters of the scripted bots; `act` is the kernel above for its `kind`."""

    kind = 0
    retreat_low = 0.3    # go home below this HP fraction on the lane ...
    retreat_high = 0.85  # ... and heal up to this one near the base
    buy_plan: tuple[tuple[str, int], ...] = ()  # (item, how many to own) in order
    stand_off = 0.0  # how far behind the enemy creep front it stands
    group_radius = lead = engage_range = 0.0  # the teamfighter's

    def __init__(self, layout: MobaLayout, seed: int = 0) -> None:
        super().__init__(layout, seed)
        c = layout.config
        m = c.map_size
        self.cfg = c
        towers = layout.tower_positions()[0, 0]  # radiant's = every team's own frame
        own_t1_s = float(towers[0].sum() / _SQRT2)
        own_t2_s = float(towers[1].sum() / _SQRT2)
        fountain_s = float(layout.fountains()[0].sum() / _SQRT2)
        lane_s = (own_t1_s + own_t2_s) / 2.0  # where the heal threshold bottoms out
        f = np.zeros(20)
        f[[_F_MAP, _F_VISION, _F_MAX_LEVEL, _F_INVENTORY, _F_TOWER_RANGE, _F_ANCIENT_RANGE,
           _F_NUKE, _F_NUKE_PER_LEVEL, _F_HERO_RANGE]] = (
            m, c.hero_vision, c.max_level, c.inventory_size, c.tower_range, c.ancient_range,
            c.ability_damage, c.ability_damage_per_level, c.hero_range)
        f[[_F_RETREAT_LOW, _F_RETREAT_HIGH, _F_STAND_OFF, _F_OWN_T1, _F_OWN_T2, _F_MID,
           _F_FOUNTAIN, _F_LANE, _F_GROUP_RADIUS, _F_LEAD, _F_ENGAGE]] = (
            self.retreat_low, self.retreat_high, self.stand_off, own_t1_s, own_t2_s,
            m / _SQRT2, fountain_s, lane_s, self.group_radius, self.lead, self.engage_range)
        sl = layout.obs_slices
        self._f = f
        self._i = np.array([self.kind, layout.first_attack, layout.first_ability,
                            layout.first_buy, layout.retreat, sl["self"].start,
                            sl["allies"].start, sl["visible"].start, layout.num_allies,
                            c.num_visible], np.int64)
        self._item_cols = np.array([_S[f"item_{n}"] for n in ITEM_NAMES], np.int64)
        self._buy_items = np.array([ITEM_NAMES.index(item) for item, _ in self.buy_plan],
                                   np.int64)
        self._buy_counts = np.array([count for _, count in self.buy_plan], np.float64)

    def act(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        obs, mask = self._check(obs, mask)
        return _scripted_actions(np.ascontiguousarray(obs, np.float64),
                                 np.ascontiguousarray(mask != 0), self._f, self._i,
                                 self._item_cols, self._buy_items, self._buy_counts)


class PassiveBot(_Scripted):
    """Holds the lane by its own towers, behind its creeps; hits whatever enemy comes into
    attack range (the weakest, heroes preferred); goes home to heal when low."""

    name = "passive"
    kind = _PASSIVE
    retreat_low = 0.35
    retreat_high = 0.8


class LastHitterBot(_Scripted):
    """Follows its creep wave and farms: last-hits enemy creeps, denies its own, finishes
    creeps with the nuke, buys items at base, heals when low. It steps out of untanked
    buildings' reach and away from creeps that chase it, and fights heroes only to hit back
    at one that attacks it (above half HP)."""

    name = "lasthitter"
    kind = _LASTHITTER
    retreat_low = 0.35
    retreat_high = 0.85
    buy_plan = (("blade", 1), ("ring", 1), ("vitality", 1), ("blade", 2), ("vitality", 2),
                ("boots", 1))
    stand_off = 4.2


class PusherBot(_Scripted):
    """Aggressive: walks the lane with its creeps and kills everything it can. Nukes enemy
    heroes, attacks them when the fight looks favourable (not outnumbered, above 40% HP, the
    hero killable or weaker, not under its own building), sieges towers and the ancient
    while its creeps tank them, last-hits and denies on the way, buys items at base, heals
    when low."""

    name = "pusher"
    kind = _PUSHER
    retreat_low = 0.3
    retreat_high = 0.85
    buy_plan = (("blade", 1), ("vitality", 1), ("blade", 2), ("ring", 1), ("blade", 3),
                ("vitality", 2))
    stand_off = 3.8


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
    kind = _TEAMFIGHTER
    retreat_low = 0.35
    retreat_high = 0.9
    buy_plan = (("vitality", 1), ("blade", 1), ("vitality", 2), ("blade", 2), ("ring", 1),
                ("boots", 1))
    group_radius = 4.0  # farther than this from the allies' centre: regroup
    lead = 1.5  # how far up the lane it walks ahead of its allies' centre
    engage_range = 9.0  # enemy heroes this close are hunted (vision is 11)
    stand_off = 4.5


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
