"""numba kernels of the batched MOBA core: reset, step and observe B games at once.

One call of `step_batch` advances every game by one tick and writes observations, masks,
rewards and events into preallocated buffers; there is no Python loop over units or games.
All randomness comes from a per-game xorshift64* generator, so a game's trajectory depends
only on its seed and its actions, never on the other games in the batch. The `*_par`
kernels run the games on several threads (contiguous chunks of games under `prange`, one
scratch per chunk) with results bit-identical to the serial ones.

Order within a tick (sequential, so results are deterministic):
  1. attack cooldowns tick down; 2. heroes act (illegal actions become no-ops and are
  counted); 3. creeps act; 4. towers and ancients act; 5. damage of the tick is applied at
  once (a killing blow between several attackers goes to one of them at random);
  6. deaths pay gold/XP; 7. regeneration, fountain, respawns, cooldowns, passive gold, creep
  waves; 8. time limit; 9. vision, observations and action masks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from games.moba.layout import (
    ANCIENT,
    DAMAGE_SCALE,
    E_ASSISTS,
    E_DAMAGE_DEALT,
    E_DAMAGE_TAKEN,
    E_DEATHS,
    E_DENIES,
    E_GOLD,
    E_GOLD_SPENT,
    E_HEALTH_DELTA,
    E_ILLEGAL,
    E_KILLS,
    E_LAST_HITS,
    E_NET_WORTH,
    E_TOWER_DAMAGE,
    E_TOWERS_DESTROYED,
    E_XP,
    ENT_DIM,
    F_DAMAGE,
    F_HP,
    F_MAX_HP,
    F_RANGE,
    F_REGEN,
    F_SPEED,
    F_VISION,
    F_X,
    F_Y,
    GLOBAL_DIM,
    GOLD_SCALE,
    H_ABILITY_CD,
    H_GOLD,
    H_ITEMS,
    H_LEVEL,
    H_RESPAWN,
    H_XP,
    HERO,
    HP_SCALE,
    I_ALIVE,
    I_ATTACK_CD,
    I_ATTACK_PERIOD,
    I_HIT_HERO_TICK,
    I_KIND,
    I_LANE,
    I_TARGET,
    I_TEAM,
    I_TIER,
    I_WAYPOINT,
    MELEE,
    NUM_ITEMS,
    NUM_MOVES,
    P_ABILITY_COOLDOWN,
    P_ABILITY_DAMAGE,
    P_ABILITY_DAMAGE_PER_LEVEL,
    P_ABILITY_RANGE,
    P_ANCIENT_DAMAGE,
    P_ANCIENT_HP,
    P_ANCIENT_RANGE,
    P_ASSIST_GOLD,
    P_ASSIST_WINDOW,
    P_BASE_RADIUS,
    P_BUILDING_VISION,
    P_CREEP_AGGRO_RANGE,
    P_CREEP_SPEED,
    P_DENY_XP_FRACTION,
    P_FOUNTAIN_HEAL,
    P_HERO_ATTACK_PERIOD,
    P_HERO_BASE_DAMAGE,
    P_HERO_BASE_HP,
    P_HERO_DAMAGE_PER_LEVEL,
    P_HERO_HP_PER_LEVEL,
    P_HERO_KILL_GOLD,
    P_HERO_KILL_GOLD_PER_LEVEL,
    P_HERO_KILL_XP,
    P_HERO_KILL_XP_PER_LEVEL,
    P_HERO_RANGE,
    P_HERO_REGEN,
    P_HERO_SPEED,
    P_HERO_VISION,
    P_INVENTORY_SIZE,
    P_MAP_SIZE,
    P_MAX_CREEPS_PER_LANE,
    P_MAX_LEVEL,
    P_MAX_TICKS,
    P_MELEE_BOUNTY,
    P_MELEE_PER_WAVE,
    P_MELEE_XP,
    P_PASSIVE_GOLD,
    P_RANGED_BOUNTY,
    P_RANGED_PER_WAVE,
    P_RANGED_XP,
    P_RESPAWN_BASE,
    P_RESPAWN_PER_LEVEL,
    P_START_GOLD,
    P_TOWER_ATTACK_PERIOD,
    P_TOWER_DAMAGE,
    P_TOWER_GOLD,
    P_TOWER_HP,
    P_TOWER_LAST_HIT_GOLD,
    P_TOWER_RANGE,
    P_WAVE_INTERVAL,
    P_XP_RADIUS,
    RANGED,
    RESPAWN_SCALE,
    SELF_DIM,
    TOWER,
)

# game-level int fields: game_i[G, b]
G_TICK, G_DONE, G_WINNER, G_EPISODES = 0, 1, 2, 3
NUM_GAME_I = 4
# scratch float rows: scratch_f[S, u]
S_DMG, S_KSCORE, S_DIST, S_HP_BEFORE, S_OX, S_OY, S_OR2, S_CX, S_CY, S_X0, S_Y0 = range(11)
NUM_SCRATCH_F = 11
# scratch int rows: scratch_i[S, u]
S_KILLER, S_ORDER, S_OBSERVER, S_CAND, S_INVULN = range(5)
NUM_SCRATCH_I = 5

_MELEE_CREEP = (550.0, 21.0, 1.3, 2)   # hp, damage, range, attack period
_RANGED_CREEP = (300.0, 24.0, 4.5, 3)
_CREEP_VISION = 8.0
_SQRT_HALF = 0.7071067811865476
_DIR_X = np.array([1.0, _SQRT_HALF, 0.0, -_SQRT_HALF, -1.0, -_SQRT_HALF, 0.0, _SQRT_HALF])
_DIR_Y = np.array([0.0, _SQRT_HALF, 1.0, _SQRT_HALF, 0.0, -_SQRT_HALF, -1.0, -_SQRT_HALF])


# ---------------------------------------------------------------------------------------
# random numbers: xorshift64*, one state per game
# ---------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _rand(rng, b):
    x = rng[b]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[b] = x
    r = (x * np.uint64(2685821657736338717)) >> np.uint64(11)
    return float(r) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def seed_states(seeds, rng, games):
    """splitmix64 of each seed: well-mixed, never-zero xorshift states."""
    for i in range(games.shape[0]):
        z = np.uint64(seeds[i]) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        if z == np.uint64(0):
            z = np.uint64(0x2545F4914F6CDD1D)
        rng[games[i]] = z


# ---------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _dist2(unit_f, b, u, v):
    dx = unit_f[F_X, b, u] - unit_f[F_X, b, v]
    dy = unit_f[F_Y, b, u] - unit_f[F_Y, b, v]
    return dx * dx + dy * dy


@njit(cache=True, inline="always")
def _d2(sx, sy, u, v):
    dx = sx[u] - sx[v]
    dy = sy[u] - sy[v]
    return dx * dx + dy * dy


@njit(cache=True, inline="always")
def _move_towards(unit_f, b, u, tx, ty, step, map_size):
    dx = tx - unit_f[F_X, b, u]
    dy = ty - unit_f[F_Y, b, u]
    d = math.sqrt(dx * dx + dy * dy)
    if d <= step:
        unit_f[F_X, b, u] = tx
        unit_f[F_Y, b, u] = ty
    elif d > 0.0:
        unit_f[F_X, b, u] += dx / d * step
        unit_f[F_Y, b, u] += dy / d * step
    unit_f[F_X, b, u] = min(max(unit_f[F_X, b, u], 0.0), map_size)
    unit_f[F_Y, b, u] = min(max(unit_f[F_Y, b, u], 0.0), map_size)


@njit(cache=True)
def _invulnerable(unit_i, b, u, anc0, bpt):
    """Tier-2 towers are invulnerable while their lane's tier-1 stands; an ancient while
    every one of its lanes still has a tower."""
    kind = unit_i[I_KIND, b, u]
    if kind == TOWER:
        if unit_i[I_TIER, b, u] == 2:
            return unit_i[I_ALIVE, b, u - 1] == 1
        return False
    if kind == ANCIENT:
        lanes = (bpt - 1) // 2
        for lane in range(lanes):
            t1 = u + 1 + 2 * lane
            if unit_i[I_ALIVE, b, t1] == 0 and unit_i[I_ALIVE, b, t1 + 1] == 0:
                return False
        return True
    return False


@njit(cache=True)
def _refresh_hero(unit_f, hero_i, b, h, params, items):
    """Recompute a hero's stats from level and items; HP keeps its missing amount."""
    level = hero_i[H_LEVEL, b, h]
    dmg = params[P_HERO_BASE_DAMAGE] + params[P_HERO_DAMAGE_PER_LEVEL] * (level - 1)
    max_hp = params[P_HERO_BASE_HP] + params[P_HERO_HP_PER_LEVEL] * (level - 1)
    speed = params[P_HERO_SPEED]
    regen = params[P_HERO_REGEN]
    for j in range(NUM_ITEMS):
        n = hero_i[H_ITEMS + j, b, h]
        dmg += n * items[j, 1]
        max_hp += n * items[j, 2]
        speed += n * items[j, 3]
        regen += n * items[j, 4]
    old_max = unit_f[F_MAX_HP, b, h]
    unit_f[F_DAMAGE, b, h] = dmg
    unit_f[F_MAX_HP, b, h] = max_hp
    unit_f[F_SPEED, b, h] = speed
    unit_f[F_REGEN, b, h] = regen
    if unit_f[F_HP, b, h] > 0.0:
        unit_f[F_HP, b, h] = min(max_hp, unit_f[F_HP, b, h] + (max_hp - old_max))


@njit(cache=True)
def net_worth(hero_f, hero_i, b, h, items):
    w = hero_f[H_GOLD, b, h]
    for j in range(NUM_ITEMS):
        w += hero_i[H_ITEMS + j, b, h] * items[j, 0]
    return w


@njit(cache=True, inline="always")
def _give_gold(hero_f, events, b, h, amount):
    hero_f[H_GOLD, b, h] += amount
    events[b, h, E_GOLD] += amount


@njit(cache=True)
def _give_xp(unit_f, hero_f, hero_i, events, b, h, amount, params, items, xp_table):
    hero_f[H_XP, b, h] += amount
    events[b, h, E_XP] += amount
    max_level = int(params[P_MAX_LEVEL])
    level = hero_i[H_LEVEL, b, h]
    while level < max_level and hero_f[H_XP, b, h] >= xp_table[level + 1]:
        level += 1
    if level != hero_i[H_LEVEL, b, h]:
        hero_i[H_LEVEL, b, h] = level
        _refresh_hero(unit_f, hero_i, b, h, params, items)


@njit(cache=True)
def _hit(unit_f, unit_i, dmg_tick, scratch_f, scratch_i, events, rng, b, attacker, target,
         damage, tick, num_heroes):
    """Queue damage of this tick; remember who might land the killing blow."""
    remaining = unit_f[F_HP, b, target] - scratch_f[S_DMG, target]
    dealt = min(damage, max(remaining, 0.0))
    scratch_f[S_DMG, target] += damage
    score = _rand(rng, b)
    if score >= scratch_f[S_KSCORE, target]:
        scratch_f[S_KSCORE, target] = score
        scratch_i[S_KILLER, target] = attacker
    if attacker < num_heroes:
        events[b, attacker, E_DAMAGE_DEALT] += dealt
        kind = unit_i[I_KIND, b, target]
        if kind == TOWER or kind == ANCIENT:
            events[b, attacker, E_TOWER_DAMAGE] += dealt
        if target < num_heroes:
            dmg_tick[b, target, attacker] = tick
            unit_i[I_HIT_HERO_TICK, b, attacker] = tick
    if target < num_heroes:
        events[b, target, E_DAMAGE_TAKEN] += dealt
    unit_i[I_TARGET, b, attacker] = target


@njit(cache=True, inline="always")
def _sizes(hero_f, unit_f, waypoints):
    """Unit-table geometry from the array shapes: heroes, team size, units, lanes,
    buildings per team (ancient + 2 towers per lane), index of the first creep slot."""
    num_heroes = hero_f.shape[2]
    lanes = waypoints.shape[1]
    bpt = 2 * lanes + 1
    return num_heroes, num_heroes // 2, unit_f.shape[2], lanes, bpt, num_heroes + 2 * bpt


# ---------------------------------------------------------------------------------------
# reset
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def reset_game(b, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params, fountains,
               waypoints, tower_pos, items):
    num_heroes, team_size, num_units, lanes, bpt, first_creep = _sizes(hero_f, unit_f, waypoints)
    for u in range(num_units):
        for f in range(unit_f.shape[0]):
            unit_f[f, b, u] = 0.0
        for f in range(unit_i.shape[0]):
            unit_i[f, b, u] = 0
        unit_i[I_TARGET, b, u] = -1
        unit_i[I_HIT_HERO_TICK, b, u] = -1000000
    for h in range(num_heroes):
        team = h // team_size
        for f in range(hero_f.shape[0]):
            hero_f[f, b, h] = 0.0
        for f in range(hero_i.shape[0]):
            hero_i[f, b, h] = 0
        for a in range(num_heroes):
            dmg_tick[b, h, a] = -1000000
        hero_i[H_LEVEL, b, h] = 1
        hero_f[H_GOLD, b, h] = params[P_START_GOLD]
        unit_i[I_ALIVE, b, h] = 1
        unit_i[I_TEAM, b, h] = team
        unit_i[I_KIND, b, h] = HERO
        unit_i[I_ATTACK_PERIOD, b, h] = int(params[P_HERO_ATTACK_PERIOD])
        unit_f[F_RANGE, b, h] = params[P_HERO_RANGE]
        unit_f[F_VISION, b, h] = params[P_HERO_VISION]
        unit_f[F_X, b, h] = fountains[team, 0] + (_rand(rng, b) - 0.5) * 2.0
        unit_f[F_Y, b, h] = fountains[team, 1] + (_rand(rng, b) - 0.5) * 2.0
        unit_f[F_MAX_HP, b, h] = params[P_HERO_BASE_HP]
        unit_f[F_HP, b, h] = params[P_HERO_BASE_HP]
        _refresh_hero(unit_f, hero_i, b, h, params, items)
    for team in range(2):
        anc = num_heroes + team * bpt
        unit_i[I_ALIVE, b, anc] = 1
        unit_i[I_TEAM, b, anc] = team
        unit_i[I_KIND, b, anc] = ANCIENT
        unit_i[I_TIER, b, anc] = 3
        unit_i[I_ATTACK_PERIOD, b, anc] = int(params[P_TOWER_ATTACK_PERIOD])
        unit_f[F_X, b, anc] = waypoints[team, 0, 0, 0]
        unit_f[F_Y, b, anc] = waypoints[team, 0, 0, 1]
        unit_f[F_HP, b, anc] = params[P_ANCIENT_HP]
        unit_f[F_MAX_HP, b, anc] = params[P_ANCIENT_HP]
        unit_f[F_DAMAGE, b, anc] = params[P_ANCIENT_DAMAGE]
        unit_f[F_RANGE, b, anc] = params[P_ANCIENT_RANGE]
        unit_f[F_VISION, b, anc] = params[P_BUILDING_VISION]
        for lane in range(lanes):
            for tier in range(2):
                u = anc + 1 + 2 * lane + tier
                unit_i[I_ALIVE, b, u] = 1
                unit_i[I_TEAM, b, u] = team
                unit_i[I_KIND, b, u] = TOWER
                unit_i[I_LANE, b, u] = lane
                unit_i[I_TIER, b, u] = tier + 1
                unit_i[I_ATTACK_PERIOD, b, u] = int(params[P_TOWER_ATTACK_PERIOD])
                unit_f[F_X, b, u] = tower_pos[team, lane, tier, 0]
                unit_f[F_Y, b, u] = tower_pos[team, lane, tier, 1]
                unit_f[F_HP, b, u] = params[P_TOWER_HP]
                unit_f[F_MAX_HP, b, u] = params[P_TOWER_HP]
                unit_f[F_DAMAGE, b, u] = params[P_TOWER_DAMAGE]
                unit_f[F_RANGE, b, u] = params[P_TOWER_RANGE]
                unit_f[F_VISION, b, u] = params[P_BUILDING_VISION]
    for u in range(first_creep, num_units):
        unit_i[I_TEAM, b, u] = (u - first_creep) // ((num_units - first_creep) // 2)
        unit_i[I_KIND, b, u] = MELEE
    game_i[G_TICK, b] = 0
    game_i[G_DONE, b] = 0
    game_i[G_WINNER, b] = -1


# ---------------------------------------------------------------------------------------
# deaths
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def _kill(b, u, killer, tick, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, events,
          params, fountains, items, xp_table):
    num_heroes = hero_f.shape[2]
    team = unit_i[I_TEAM, b, u]
    enemy = 1 - team
    kind = unit_i[I_KIND, b, u]
    unit_i[I_ALIVE, b, u] = 0
    unit_f[F_HP, b, u] = 0.0
    killer_is_hero = killer >= 0 and killer < num_heroes
    xr2 = params[P_XP_RADIUS] * params[P_XP_RADIUS]
    if kind == MELEE or kind == RANGED:
        bounty = params[P_MELEE_BOUNTY] if kind == MELEE else params[P_RANGED_BOUNTY]
        xp = params[P_MELEE_XP] if kind == MELEE else params[P_RANGED_XP]
        denied = killer_is_hero and unit_i[I_TEAM, b, killer] == team
        if killer_is_hero and not denied:
            _give_gold(hero_f, events, b, killer, bounty)
            events[b, killer, E_LAST_HITS] += 1.0
        if denied:
            events[b, killer, E_DENIES] += 1.0
            xp *= params[P_DENY_XP_FRACTION]
        # enemy heroes nearby share the experience
        n = 0
        for h in range(num_heroes):
            if unit_i[I_TEAM, b, h] == enemy and unit_i[I_ALIVE, b, h] == 1 and \
                    _dist2(unit_f, b, h, u) <= xr2:
                n += 1
        if n > 0:
            for h in range(num_heroes):
                if unit_i[I_TEAM, b, h] == enemy and unit_i[I_ALIVE, b, h] == 1 and \
                        _dist2(unit_f, b, h, u) <= xr2:
                    _give_xp(unit_f, hero_f, hero_i, events, b, h, xp / n, params, items, xp_table)
    elif kind == HERO:
        level = hero_i[H_LEVEL, b, u]
        hero_i[H_RESPAWN, b, u] = int(params[P_RESPAWN_BASE] + params[P_RESPAWN_PER_LEVEL] * level)
        events[b, u, E_DEATHS] += 1.0
        window = int(params[P_ASSIST_WINDOW])
        if killer_is_hero and unit_i[I_TEAM, b, killer] == enemy:
            events[b, killer, E_KILLS] += 1.0
            _give_gold(hero_f, events, b, killer,
                       params[P_HERO_KILL_GOLD] + params[P_HERO_KILL_GOLD_PER_LEVEL] * level)
        # share XP among enemy heroes that were near or took part
        n = 0
        for a in range(num_heroes):
            if unit_i[I_TEAM, b, a] != enemy:
                continue
            took_part = a == killer or dmg_tick[b, u, a] >= tick - window
            if took_part or (unit_i[I_ALIVE, b, a] == 1 and _dist2(unit_f, b, a, u) <= xr2):
                n += 1
        xp = params[P_HERO_KILL_XP] + params[P_HERO_KILL_XP_PER_LEVEL] * level
        for a in range(num_heroes):
            if unit_i[I_TEAM, b, a] != enemy:
                continue
            took_part = a == killer or dmg_tick[b, u, a] >= tick - window
            if a != killer and dmg_tick[b, u, a] >= tick - window:
                events[b, a, E_ASSISTS] += 1.0
                _give_gold(hero_f, events, b, a, params[P_ASSIST_GOLD])
            if took_part or (unit_i[I_ALIVE, b, a] == 1 and _dist2(unit_f, b, a, u) <= xr2):
                _give_xp(unit_f, hero_f, hero_i, events, b, a, xp / n, params, items, xp_table)
        for a in range(num_heroes):
            dmg_tick[b, u, a] = -1000000
        # the body goes home; it is invisible until it respawns there
        unit_f[F_X, b, u] = fountains[team, 0]
        unit_f[F_Y, b, u] = fountains[team, 1]
        unit_i[I_TARGET, b, u] = -1
    elif kind == TOWER:
        for h in range(num_heroes):
            if unit_i[I_TEAM, b, h] == enemy:
                _give_gold(hero_f, events, b, h, params[P_TOWER_GOLD])
                events[b, h, E_TOWERS_DESTROYED] += 1.0
        if killer_is_hero and unit_i[I_TEAM, b, killer] == enemy:
            _give_gold(hero_f, events, b, killer, params[P_TOWER_LAST_HIT_GOLD])
    else:  # the ancient falls: the game is over
        game_i[G_DONE, b] = 1
        game_i[G_WINNER, b] = enemy


# ---------------------------------------------------------------------------------------
# one tick of one game
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def _step_game(b, actions, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params,
               fountains, waypoints, items, xp_table, scratch_f, scratch_i, ent_idx, mask,
               rewards, events):
    num_heroes, team_size, num_units, lanes, bpt, first_creep = _sizes(hero_f, unit_f, waypoints)
    creeps_per_team = (num_units - first_creep) // 2
    num_visible = ent_idx.shape[2]
    num_actions = mask.shape[2]
    first_attack = 1 + NUM_MOVES
    first_ability = first_attack + num_visible
    first_buy = first_ability + num_visible
    retreat = first_buy + NUM_ITEMS
    map_size = params[P_MAP_SIZE]
    tick = game_i[G_TICK, b]

    for h in range(num_heroes):
        rewards[b, h] = 0.0
        for e in range(events.shape[2]):
            events[b, h, e] = 0.0
        scratch_f[S_HP_BEFORE, h] = unit_f[F_HP, b, h]
    invuln = scratch_i[S_INVULN]
    # every decision of this tick sees the positions at its start, so the order in which
    # units act does not matter (no side gets to react to the other's moves)
    sx = scratch_f[S_X0]
    sy = scratch_f[S_Y0]
    for u in range(num_units):
        sx[u] = unit_f[F_X, b, u]
        sy[u] = unit_f[F_Y, b, u]
        scratch_f[S_DMG, u] = 0.0
        scratch_f[S_KSCORE, u] = -1.0
        scratch_i[S_KILLER, u] = -1
        invuln[u] = 0
        if num_heroes <= u < first_creep and _invulnerable(unit_i, b, u, num_heroes, bpt):
            invuln[u] = 1  # buildings only change at the end of the tick
        if unit_i[I_ATTACK_CD, b, u] > 0:
            unit_i[I_ATTACK_CD, b, u] -= 1

    # ---- 2. heroes ---------------------------------------------------------------------
    # Units act one at a time; the team that goes first alternates every tick so that
    # neither side always sees the other's moves of the same tick.
    first = tick & 1
    for i in range(num_heroes):
        h = (i + first * team_size) % num_heroes
        a = actions[b, h]
        if a < 0 or a >= num_actions or mask[b, h, a] == 0:
            events[b, h, E_ILLEGAL] += 1.0
            a = 0
        if a == 0 or unit_i[I_ALIVE, b, h] == 0:
            continue
        unit_i[I_TARGET, b, h] = -1
        team = unit_i[I_TEAM, b, h]
        sign = 1.0 if team == 0 else -1.0
        speed = unit_f[F_SPEED, b, h]
        if a < first_attack:
            d = a - 1
            tx = unit_f[F_X, b, h] + sign * _DIR_X[d] * speed
            ty = unit_f[F_Y, b, h] + sign * _DIR_Y[d] * speed
            _move_towards(unit_f, b, h, tx, ty, speed, map_size)
        elif a < first_ability:
            t = ent_idx[b, h, a - first_attack]
            rng2 = unit_f[F_RANGE, b, h]
            if _d2(sx, sy, h, t) <= rng2 * rng2:
                if unit_i[I_ATTACK_CD, b, h] == 0:
                    _hit(unit_f, unit_i, dmg_tick, scratch_f, scratch_i, events, rng, b, h, t,
                         unit_f[F_DAMAGE, b, h], tick, num_heroes)
                    unit_i[I_ATTACK_CD, b, h] = unit_i[I_ATTACK_PERIOD, b, h]
            else:
                _move_towards(unit_f, b, h, sx[t], sy[t], speed, map_size)
        elif a < first_buy:
            t = ent_idx[b, h, a - first_ability]
            damage = params[P_ABILITY_DAMAGE] + params[P_ABILITY_DAMAGE_PER_LEVEL] * (
                hero_i[H_LEVEL, b, h] - 1)
            _hit(unit_f, unit_i, dmg_tick, scratch_f, scratch_i, events, rng, b, h, t, damage,
                 tick, num_heroes)
            hero_i[H_ABILITY_CD, b, h] = int(params[P_ABILITY_COOLDOWN])
        elif a < retreat:
            j = a - first_buy
            hero_f[H_GOLD, b, h] -= items[j, 0]
            events[b, h, E_GOLD_SPENT] += items[j, 0]
            hero_i[H_ITEMS + j, b, h] += 1
            _refresh_hero(unit_f, hero_i, b, h, params, items)
        else:
            _move_towards(unit_f, b, h, fountains[team, 0], fountains[team, 1], speed, map_size)

    # ---- 3. creeps -----------------------------------------------------------------------
    aggro2 = params[P_CREEP_AGGRO_RANGE] * params[P_CREEP_AGGRO_RANGE]
    creep_speed = params[P_CREEP_SPEED]
    for i in range(2 * creeps_per_team):
        u = first_creep + (i + first * creeps_per_team) % (2 * creeps_per_team)
        if unit_i[I_ALIVE, b, u] == 0:
            continue
        team = unit_i[I_TEAM, b, u]
        t = unit_i[I_TARGET, b, u]
        if t >= 0:  # keep a target while it lives, stays an enemy in reach and can be hurt
            if unit_i[I_ALIVE, b, t] == 0 or _d2(sx, sy, u, t) > 1.5 * aggro2 or \
                    invuln[t] == 1:
                t = -1
        if t < 0:  # the nearest enemy in aggro range: heroes, buildings, then creeps
            enemy = 1 - team
            best = aggro2
            for rng_i in range(3):
                if rng_i == 0:
                    lo = enemy * team_size
                    hi = lo + team_size
                elif rng_i == 1:
                    lo = num_heroes + enemy * bpt
                    hi = lo + bpt
                else:
                    lo = first_creep + enemy * creeps_per_team
                    hi = lo + creeps_per_team
                for v in range(lo, hi):
                    if unit_i[I_ALIVE, b, v] == 1:
                        d2 = _d2(sx, sy, u, v)
                        if d2 <= best and invuln[v] == 0:
                            best = d2
                            t = v
        unit_i[I_TARGET, b, u] = t
        if t >= 0:
            r = unit_f[F_RANGE, b, u]
            if _d2(sx, sy, u, t) <= r * r:
                if unit_i[I_ATTACK_CD, b, u] == 0:
                    damage = unit_f[F_DAMAGE, b, u] * (0.9 + 0.2 * _rand(rng, b))
                    _hit(unit_f, unit_i, dmg_tick, scratch_f, scratch_i, events, rng, b, u, t,
                         damage, tick, num_heroes)
                    unit_i[I_ATTACK_CD, b, u] = unit_i[I_ATTACK_PERIOD, b, u]
            else:
                _move_towards(unit_f, b, u, sx[t], sy[t], creep_speed,
                              map_size)
        else:
            lane = unit_i[I_LANE, b, u]
            w = unit_i[I_WAYPOINT, b, u]
            wx = waypoints[team, lane, w, 0]
            wy = waypoints[team, lane, w, 1]
            _move_towards(unit_f, b, u, wx, wy, creep_speed, map_size)
            if w < 2 and unit_f[F_X, b, u] == wx and unit_f[F_Y, b, u] == wy:
                unit_i[I_WAYPOINT, b, u] = w + 1

    # ---- 4. towers and ancients ---------------------------------------------------------
    for i in range(2 * bpt):
        u = num_heroes + (i + first * bpt) % (2 * bpt)
        if unit_i[I_ALIVE, b, u] == 0 or unit_f[F_DAMAGE, b, u] <= 0.0:
            continue
        team = unit_i[I_TEAM, b, u]
        r2 = unit_f[F_RANGE, b, u] * unit_f[F_RANGE, b, u]
        t = -1
        # an enemy hero that just hurt one of our heroes draws the tower's fire
        for v in range(num_heroes):
            if unit_i[I_TEAM, b, v] != team and unit_i[I_ALIVE, b, v] == 1 and \
                    unit_i[I_HIT_HERO_TICK, b, v] >= tick - 1 and _d2(sx, sy, u, v) <= r2:
                t = v
                break
        if t < 0:
            old = unit_i[I_TARGET, b, u]
            if old >= 0 and unit_i[I_ALIVE, b, old] == 1 and _d2(sx, sy, u, old) <= r2:
                t = old
        if t < 0:  # nearest creep first, then nearest hero
            best = r2
            for v in range(first_creep, num_units):
                if unit_i[I_ALIVE, b, v] == 1 and unit_i[I_TEAM, b, v] != team:
                    d2 = _d2(sx, sy, u, v)
                    if d2 <= best:
                        best = d2
                        t = v
        if t < 0:
            best = r2
            for v in range(num_heroes):
                if unit_i[I_ALIVE, b, v] == 1 and unit_i[I_TEAM, b, v] != team:
                    d2 = _d2(sx, sy, u, v)
                    if d2 <= best:
                        best = d2
                        t = v
        unit_i[I_TARGET, b, u] = t
        if t >= 0 and unit_i[I_ATTACK_CD, b, u] == 0:
            _hit(unit_f, unit_i, dmg_tick, scratch_f, scratch_i, events, rng, b, u, t,
                 unit_f[F_DAMAGE, b, u], tick, num_heroes)
            unit_i[I_ATTACK_CD, b, u] = unit_i[I_ATTACK_PERIOD, b, u]

    # ---- 5./6. damage lands, the dead pay out --------------------------------------------
    for u in range(num_units):
        if scratch_f[S_DMG, u] > 0.0 and unit_i[I_ALIVE, b, u] == 1:
            unit_f[F_HP, b, u] -= scratch_f[S_DMG, u]
            if unit_f[F_HP, b, u] <= 0.0:
                _kill(b, u, scratch_i[S_KILLER, u], tick, unit_f, unit_i, hero_f, hero_i,
                      dmg_tick, game_i, events, params, fountains, items, xp_table)

    # ---- 7. regeneration, respawn, cooldowns, gold, creep waves -------------------------
    fountain_r2 = (0.5 * params[P_BASE_RADIUS]) ** 2
    for h in range(num_heroes):
        team = unit_i[I_TEAM, b, h]
        if unit_i[I_ALIVE, b, h] == 1:
            hp = unit_f[F_HP, b, h] + unit_f[F_REGEN, b, h]
            dx = unit_f[F_X, b, h] - fountains[team, 0]
            dy = unit_f[F_Y, b, h] - fountains[team, 1]
            if dx * dx + dy * dy <= fountain_r2:
                hp += params[P_FOUNTAIN_HEAL]
            unit_f[F_HP, b, h] = min(hp, unit_f[F_MAX_HP, b, h])
        elif events[b, h, E_DEATHS] == 0.0:  # the timer starts on the tick after death
            hero_i[H_RESPAWN, b, h] -= 1
            if hero_i[H_RESPAWN, b, h] <= 0:
                hero_i[H_RESPAWN, b, h] = 0
                unit_i[I_ALIVE, b, h] = 1
                unit_i[I_ATTACK_CD, b, h] = 0
                unit_f[F_HP, b, h] = unit_f[F_MAX_HP, b, h]
                unit_f[F_X, b, h] = fountains[team, 0]
                unit_f[F_Y, b, h] = fountains[team, 1]
        if hero_i[H_ABILITY_CD, b, h] > 0:
            hero_i[H_ABILITY_CD, b, h] -= 1
        _give_gold(hero_f, events, b, h, params[P_PASSIVE_GOLD])

    tick += 1
    game_i[G_TICK, b] = tick
    wave = int(params[P_WAVE_INTERVAL])
    if (tick - 1) % wave == 0:
        per_lane = int(params[P_MAX_CREEPS_PER_LANE])
        n_melee = int(params[P_MELEE_PER_WAVE])
        n_wave = n_melee + int(params[P_RANGED_PER_WAVE])
        for team in range(2):
            for lane in range(lanes):
                start = first_creep + team * creeps_per_team + lane * per_lane
                spawned = 0
                for u in range(start, start + per_lane):
                    if spawned == n_wave:
                        break
                    if unit_i[I_ALIVE, b, u] == 1:
                        continue
                    ranged = spawned >= n_melee
                    stats = _RANGED_CREEP if ranged else _MELEE_CREEP
                    unit_i[I_ALIVE, b, u] = 1
                    unit_i[I_KIND, b, u] = RANGED if ranged else MELEE
                    unit_i[I_LANE, b, u] = lane
                    unit_i[I_WAYPOINT, b, u] = 1
                    unit_i[I_TARGET, b, u] = -1
                    unit_i[I_ATTACK_CD, b, u] = 0
                    unit_i[I_ATTACK_PERIOD, b, u] = stats[3]
                    unit_f[F_HP, b, u] = stats[0]
                    unit_f[F_MAX_HP, b, u] = stats[0]
                    unit_f[F_DAMAGE, b, u] = stats[1]
                    unit_f[F_RANGE, b, u] = stats[2]
                    unit_f[F_VISION, b, u] = _CREEP_VISION
                    # a small column behind the ancient's position, ranged at the back
                    back = 0.9 * spawned
                    wx = waypoints[team, lane, 1, 0] - waypoints[team, lane, 0, 0]
                    wy = waypoints[team, lane, 1, 1] - waypoints[team, lane, 0, 1]
                    norm = math.sqrt(wx * wx + wy * wy)
                    unit_f[F_X, b, u] = waypoints[team, lane, 0, 0] + wx / norm * (3.0 - back)
                    unit_f[F_Y, b, u] = waypoints[team, lane, 0, 1] + wy / norm * (3.0 - back)
                    spawned += 1

    # ---- 8. end of the game ---------------------------------------------------------------
    if game_i[G_DONE, b] == 0 and tick >= int(params[P_MAX_TICKS]):
        game_i[G_DONE, b] = 1
        anc0 = num_heroes
        anc1 = num_heroes + bpt
        hp0 = unit_f[F_HP, b, anc0]
        hp1 = unit_f[F_HP, b, anc1]
        if hp0 != hp1:
            game_i[G_WINNER, b] = 0 if hp0 > hp1 else 1
        else:
            w0 = 0.0
            w1 = 0.0
            for h in range(num_heroes):
                if h < team_size:
                    w0 += net_worth(hero_f, hero_i, b, h, items)
                else:
                    w1 += net_worth(hero_f, hero_i, b, h, items)
            if w0 != w1:
                game_i[G_WINNER, b] = 0 if w0 > w1 else 1
            else:
                game_i[G_WINNER, b] = -1

    for h in range(num_heroes):
        max_hp = unit_f[F_MAX_HP, b, h]
        events[b, h, E_NET_WORTH] = net_worth(hero_f, hero_i, b, h, items)
        events[b, h, E_HEALTH_DELTA] = (unit_f[F_HP, b, h] - scratch_f[S_HP_BEFORE, h]) / max_hp
    if game_i[G_DONE, b] == 1:
        winner = game_i[G_WINNER, b]
        if winner >= 0:
            for h in range(num_heroes):
                rewards[b, h] = 1.0 if unit_i[I_TEAM, b, h] == winner else -1.0


# ---------------------------------------------------------------------------------------
# vision, observations and masks of one game
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def observe_game(b, bpt, unit_f, unit_i, hero_f, hero_i, game_i, params, fountains, items,
                 xp_table, scratch_f, scratch_i, vis, ent_idx, obs, mask):
    num_heroes = hero_f.shape[2]
    team_size = num_heroes // 2
    num_units = unit_f.shape[2]
    first_creep = num_heroes + 2 * bpt
    num_visible = ent_idx.shape[2]
    num_allies = team_size - 1
    first_attack = 1 + NUM_MOVES
    first_ability = first_attack + num_visible
    first_buy = first_ability + num_visible
    retreat = first_buy + NUM_ITEMS
    map_size = params[P_MAP_SIZE]
    inv_map = 1.0 / map_size
    vis_scale = 1.0 / params[P_HERO_VISION]
    tick = game_i[G_TICK, b]
    done = game_i[G_DONE, b] == 1
    max_level = int(params[P_MAX_LEVEL])
    base_r2 = params[P_BASE_RADIUS] * params[P_BASE_RADIUS]
    ability_r2 = params[P_ABILITY_RANGE] * params[P_ABILITY_RANGE]
    inventory = int(params[P_INVENTORY_SIZE])
    order = scratch_i[S_ORDER]
    dist = scratch_f[S_DIST]

    # ---- vision: a team sees its own live units and enemies inside their vision radius.
    # Observers are gathered once: radiant's from the front of the scratch rows, dire's
    # from the back, so each pair test runs over one short, contiguous list.
    observer = scratch_i[S_OBSERVER]
    invuln = scratch_i[S_INVULN]
    ox = scratch_f[S_OX]
    oy = scratch_f[S_OY]
    orr = scratch_f[S_OR2]
    n0 = 0
    n1 = 0
    for u in range(num_units):
        vis[0, b, u] = 0
        vis[1, b, u] = 0
        invuln[u] = 0
        if unit_i[I_ALIVE, b, u] == 1:
            if unit_i[I_TEAM, b, u] == 0:
                i = n0
                n0 += 1
            else:
                n1 += 1
                i = num_units - n1
            observer[i] = u
            ox[i] = unit_f[F_X, b, u]
            oy[i] = unit_f[F_Y, b, u]
            orr[i] = unit_f[F_VISION, b, u] * unit_f[F_VISION, b, u]
    for i in range(n0):  # radiant units: seen by dire?
        u = observer[i]
        vis[0, b, u] = 1
        for j in range(num_units - n1, num_units):
            dx = ox[j] - ox[i]
            dy = oy[j] - oy[i]
            if dx * dx + dy * dy <= orr[j]:
                vis[1, b, u] = 1
                break
    for i in range(num_units - n1, num_units):  # dire units: seen by radiant?
        u = observer[i]
        vis[1, b, u] = 1
        for j in range(n0):
            dx = ox[j] - ox[i]
            dy = oy[j] - oy[i]
            if dx * dx + dy * dy <= orr[j]:
                vis[0, b, u] = 1
                break
    for u in range(num_heroes, first_creep):
        if _invulnerable(unit_i, b, u, num_heroes, bpt):
            invuln[u] = 1
    cand = scratch_i[S_CAND]
    cx = scratch_f[S_CX]
    cy = scratch_f[S_CY]
    cand_team = -1
    n_cand = 0

    wave = params[P_WAVE_INTERVAL]
    for h in range(num_heroes):
        team = unit_i[I_TEAM, b, h]
        sign = 1.0 if team == 0 else -1.0
        alive = unit_i[I_ALIVE, b, h] == 1
        hx = unit_f[F_X, b, h]
        hy = unit_f[F_Y, b, h]
        o = obs[b, h]
        # ---- global
        o[0] = tick / params[P_MAX_TICKS]
        o[1] = ((tick - 1) % int(wave)) / wave if tick > 0 else 0.0
        anc = num_heroes + team * bpt
        o[2] = unit_f[F_HP, b, anc] / unit_f[F_MAX_HP, b, anc]
        towers = 0
        for u in range(anc + 1, anc + bpt):
            towers += unit_i[I_ALIVE, b, u]
        o[3] = towers / (bpt - 1)
        # ---- self
        s = GLOBAL_DIM
        level = hero_i[H_LEVEL, b, h]
        max_hp = unit_f[F_MAX_HP, b, h]
        fx = unit_f[F_X, b, h] - fountains[team, 0]
        fy = unit_f[F_Y, b, h] - fountains[team, 1]
        at_base = alive and fx * fx + fy * fy <= base_r2
        o[s + 0] = 1.0 if alive else 0.0
        px = hx if team == 0 else map_size - hx
        py = hy if team == 0 else map_size - hy
        o[s + 1] = px * inv_map
        o[s + 2] = py * inv_map
        o[s + 3] = unit_f[F_HP, b, h] / max_hp
        o[s + 4] = unit_f[F_HP, b, h] * HP_SCALE
        o[s + 5] = max_hp * HP_SCALE
        o[s + 6] = unit_f[F_DAMAGE, b, h] * DAMAGE_SCALE
        o[s + 7] = level / max_level
        if level < max_level:
            lo = xp_table[level]
            o[s + 8] = (hero_f[H_XP, b, h] - lo) / (xp_table[level + 1] - lo)
        else:
            o[s + 8] = 1.0
        gold = hero_f[H_GOLD, b, h]
        o[s + 9] = gold * GOLD_SCALE
        o[s + 10] = 1.0 if hero_i[H_ABILITY_CD, b, h] == 0 else 0.0
        o[s + 11] = hero_i[H_ABILITY_CD, b, h] / params[P_ABILITY_COOLDOWN]
        o[s + 12] = 1.0 if unit_i[I_ATTACK_CD, b, h] <= 1 else 0.0  # can hit next step
        o[s + 13] = hero_i[H_RESPAWN, b, h] * RESPAWN_SCALE
        o[s + 14] = 1.0 if at_base else 0.0
        o[s + 15] = unit_f[F_SPEED, b, h]
        held = 0
        for j in range(NUM_ITEMS):
            n = hero_i[H_ITEMS + j, b, h]
            held += n
            o[s + 16 + j] = n / inventory
        # ---- allies, in hero order
        e0 = GLOBAL_DIM + SELF_DIM
        k = 0
        for a in range(team * team_size, (team + 1) * team_size):
            if a == h:
                continue
            _write_entity(o, e0 + k * ENT_DIM, b, h, a, unit_f, unit_i, hero_i, sign, vis_scale,
                          max_level, ability_r2, invuln, True)
            k += 1
        # ---- the nearest visible other units (insertion into a sorted list) among the
        # team's candidates: everything it sees except its own heroes
        if cand_team != team:
            cand_team = team
            n_cand = 0
            for u in range(num_units):
                if vis[team, b, u] == 1 and not (u < num_heroes and unit_i[I_TEAM, b, u] == team):
                    cand[n_cand] = u
                    cx[n_cand] = unit_f[F_X, b, u]
                    cy[n_cand] = unit_f[F_Y, b, u]
                    n_cand += 1
        n = 0
        for c in range(n_cand):
            d2 = (cx[c] - hx) ** 2 + (cy[c] - hy) ** 2
            if n == num_visible and d2 >= dist[n - 1]:
                continue
            i = n if n < num_visible else num_visible - 1
            while i > 0 and dist[i - 1] > d2:
                dist[i] = dist[i - 1]
                order[i] = order[i - 1]
                i -= 1
            dist[i] = d2
            order[i] = cand[c]
            if n < num_visible:
                n += 1
        v0 = e0 + num_allies * ENT_DIM
        m = mask[b, h]
        for a in range(m.shape[0]):
            m[a] = 0
        m[0] = 1
        can_act = alive and not done
        for k in range(num_visible):
            base = v0 + k * ENT_DIM
            if k < n:
                u = order[k]
                ent_idx[b, h, k] = u
                attackable = _write_entity(o, base, b, h, u, unit_f, unit_i, hero_i, sign,
                                           vis_scale, max_level, ability_r2, invuln, False)
                if can_act and attackable:
                    m[first_attack + k] = 1
                if can_act and hero_i[H_ABILITY_CD, b, h] == 0 and o[base + 3] == 1.0 and \
                        unit_i[I_KIND, b, u] <= RANGED and o[base + 16] == 1.0:
                    m[first_ability + k] = 1
            else:
                ent_idx[b, h, k] = -1
                for f in range(ENT_DIM):
                    o[base + f] = 0.0
        if can_act:
            for d in range(NUM_MOVES):
                m[1 + d] = 1
            m[retreat] = 1
            if at_base and held < inventory:
                for j in range(NUM_ITEMS):
                    if gold >= items[j, 0]:
                        m[first_buy + j] = 1


@njit(cache=True, inline="always")
def _write_entity(o, base, b, h, u, unit_f, unit_i, hero_i, sign, vis_scale, max_level,
                  ability_r2, invuln, is_ally_hero):
    """Write one entity row; return whether hero h may attack it (enemy or deniable)."""
    team = unit_i[I_TEAM, b, h]
    alive = unit_i[I_ALIVE, b, u] == 1
    kind = unit_i[I_KIND, b, u]
    ally = unit_i[I_TEAM, b, u] == team
    dx = (unit_f[F_X, b, u] - unit_f[F_X, b, h]) * sign
    dy = (unit_f[F_Y, b, u] - unit_f[F_Y, b, h]) * sign
    d2 = dx * dx + dy * dy
    hp = unit_f[F_HP, b, u]
    max_hp = unit_f[F_MAX_HP, b, u]
    invulnerable = invuln[u] == 1
    r = unit_f[F_RANGE, b, h]
    o[base + 0] = 1.0
    o[base + 1] = 1.0 if alive else 0.0
    o[base + 2] = 1.0 if ally else 0.0
    o[base + 3] = 0.0 if ally else 1.0
    for f in range(5):
        o[base + 4 + f] = 1.0 if kind == f else 0.0
    o[base + 9] = dx * vis_scale
    o[base + 10] = dy * vis_scale
    o[base + 11] = math.sqrt(d2) * vis_scale
    o[base + 12] = hp / max_hp
    o[base + 13] = hp * HP_SCALE
    o[base + 14] = hero_i[H_LEVEL, b, u] / max_level if kind == HERO else 0.0
    o[base + 15] = 1.0 if d2 <= r * r else 0.0
    o[base + 16] = 1.0 if d2 <= ability_r2 else 0.0
    attackable = False
    if alive and not is_ally_hero:
        if ally:
            attackable = (kind == MELEE or kind == RANGED) and hp < 0.5 * max_hp
        else:
            attackable = not invulnerable
    o[base + 17] = 1.0 if attackable else 0.0
    o[base + 18] = 1.0 if invulnerable else 0.0
    o[base + 19] = 1.0 if unit_i[I_TARGET, b, u] == h and not ally else 0.0
    return attackable


# ---------------------------------------------------------------------------------------
# batch entry points
# ---------------------------------------------------------------------------------------
# The serial kernels (`reset_batch`, `observe_batch`, `step_batch`, `sample_legal`) run the
# games in order on one 2-D scratch (S, U). Their `*_par` twins split the games into
# contiguous chunks, one per scratch in a 3-D scratch (C, S, U), run the chunks under
# `prange` and each chunk's games in order, calling the same per-game functions. A game
# reads only its own state, its own random stream and scratch it has written itself in the
# same call, so every result is bit-identical to the serial kernels whatever the number of
# chunks or threads.
@njit(cache=True)
def _reset_one(b, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params, fountains,
               waypoints, tower_pos, items, xp_table, scratch_f, scratch_i, vis, ent_idx, obs,
               mask):
    reset_game(b, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params, fountains,
               waypoints, tower_pos, items)
    observe_game(b, 2 * waypoints.shape[1] + 1, unit_f, unit_i, hero_f, hero_i, game_i, params,
                 fountains, items, xp_table, scratch_f, scratch_i, vis, ent_idx, obs, mask)


@njit(cache=True)
def _step_one(b, actions, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params,
              fountains, waypoints, tower_pos, items, xp_table, scratch_f, scratch_i, vis,
              ent_idx, obs, mask, rewards, dones, events, winners, lengths, autoreset):
    if game_i[G_DONE, b] == 1:  # finished and not reset: nothing happens
        dones[b] = 1
        for h in range(rewards.shape[1]):
            rewards[b, h] = 0.0
            for e in range(events.shape[2]):
                events[b, h, e] = 0.0
        return
    _step_game(b, actions, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params,
               fountains, waypoints, items, xp_table, scratch_f, scratch_i, ent_idx, mask,
               rewards, events)
    dones[b] = game_i[G_DONE, b]
    winners[b] = game_i[G_WINNER, b]
    lengths[b] = game_i[G_TICK, b]
    if dones[b] == 1:
        game_i[G_EPISODES, b] += 1
        if autoreset:
            reset_game(b, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params,
                       fountains, waypoints, tower_pos, items)
    observe_game(b, 2 * waypoints.shape[1] + 1, unit_f, unit_i, hero_f, hero_i, game_i, params,
                 fountains, items, xp_table, scratch_f, scratch_i, vis, ent_idx, obs, mask)


@njit(cache=True)
def _sample_one(b, mask, rng, out):
    for h in range(mask.shape[1]):
        n = 0
        for a in range(mask.shape[2]):
            n += mask[b, h, a]
        pick = int(_rand(rng, b) * n)
        for a in range(mask.shape[2]):
            if mask[b, h, a]:
                if pick == 0:
                    out[b, h] = a
                    break
                pick -= 1


@njit(cache=True)
def reset_batch(games, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params,
                fountains, waypoints, tower_pos, items, xp_table, scratch_f, scratch_i, vis,
                ent_idx, obs, mask):
    for i in range(games.shape[0]):
        _reset_one(games[i], unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params,
                   fountains, waypoints, tower_pos, items, xp_table, scratch_f, scratch_i, vis,
                   ent_idx, obs, mask)


@njit(cache=True)
def observe_batch(unit_f, unit_i, hero_f, hero_i, game_i, params, fountains, waypoints, items,
                  xp_table, scratch_f, scratch_i, vis, ent_idx, obs, mask):
    for b in range(unit_f.shape[1]):
        observe_game(b, 2 * waypoints.shape[1] + 1, unit_f, unit_i, hero_f, hero_i, game_i,
                     params, fountains, items, xp_table, scratch_f, scratch_i, vis, ent_idx,
                     obs, mask)


@njit(cache=True)
def step_batch(actions, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params,
               fountains, waypoints, tower_pos, items, xp_table, scratch_f, scratch_i, vis,
               ent_idx, obs, mask, rewards, dones, events, winners, lengths, autoreset):
    """Advance every game one tick. Finished games report done=1, their winner and length;
    with autoreset they restart at once and the returned observation is the new episode's."""
    for b in range(unit_f.shape[1]):
        _step_one(b, actions, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params,
                  fountains, waypoints, tower_pos, items, xp_table, scratch_f, scratch_i, vis,
                  ent_idx, obs, mask, rewards, dones, events, winners, lengths, autoreset)


@njit(cache=True)
def sample_legal(mask, rng, out):
    """Uniformly random legal action per hero (for benchmarks and the random bot)."""
    for b in range(mask.shape[0]):
        _sample_one(b, mask, rng, out)


@njit(parallel=True, cache=True)
def reset_batch_par(games, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params,
                    fountains, waypoints, tower_pos, items, xp_table, scratch_f, scratch_i, vis,
                    ent_idx, obs, mask):
    """`reset_batch` over C = scratch_f.shape[0] chunks of `games` (no index twice)."""
    n = games.shape[0]
    chunks = scratch_f.shape[0]
    for c in prange(chunks):
        sf = scratch_f[c]
        si = scratch_i[c]
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            _reset_one(games[i], unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng,
                       params, fountains, waypoints, tower_pos, items, xp_table, sf, si, vis,
                       ent_idx, obs, mask)


@njit(parallel=True, cache=True)
def observe_batch_par(unit_f, unit_i, hero_f, hero_i, game_i, params, fountains, waypoints,
                      items, xp_table, scratch_f, scratch_i, vis, ent_idx, obs, mask):
    """`observe_batch` over C = scratch_f.shape[0] chunks of the games."""
    n = unit_f.shape[1]
    chunks = scratch_f.shape[0]
    bpt = 2 * waypoints.shape[1] + 1
    for c in prange(chunks):
        sf = scratch_f[c]
        si = scratch_i[c]
        for b in range(c * n // chunks, (c + 1) * n // chunks):
            observe_game(b, bpt, unit_f, unit_i, hero_f, hero_i, game_i, params, fountains,
                         items, xp_table, sf, si, vis, ent_idx, obs, mask)


@njit(parallel=True, cache=True)
def step_batch_par(actions, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params,
                   fountains, waypoints, tower_pos, items, xp_table, scratch_f, scratch_i, vis,
                   ent_idx, obs, mask, rewards, dones, events, winners, lengths, autoreset):
    """`step_batch` over C = scratch_f.shape[0] chunks of the games."""
    n = unit_f.shape[1]
    chunks = scratch_f.shape[0]
    for c in prange(chunks):
        sf = scratch_f[c]
        si = scratch_i[c]
        for b in range(c * n // chunks, (c + 1) * n // chunks):
            _step_one(b, actions, unit_f, unit_i, hero_f, hero_i, dmg_tick, game_i, rng, params,
                      fountains, waypoints, tower_pos, items, xp_table, sf, si, vis, ent_idx,
                      obs, mask, rewards, dones, events, winners, lengths, autoreset)


@njit(parallel=True, cache=True)
def sample_legal_par(mask, rng, out, chunks):
    """`sample_legal` over `chunks` chunks of the games (each game has its own stream)."""
    n = mask.shape[0]
    for c in prange(chunks):
        for b in range(c * n // chunks, (c + 1) * n // chunks):
            _sample_one(b, mask, rng, out)
