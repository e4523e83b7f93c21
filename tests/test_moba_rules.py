"""Rules of the built-in MOBA, each set up by editing the core's state and stepping it."""

import numpy as np
import pytest

from games.moba import MobaCore
from games.moba.config import ITEMS
from games.moba.layout import (
    ANCIENT, DIRE, E_ASSISTS, E_DEATHS, E_DENIES, E_GOLD, E_GOLD_SPENT, E_ILLEGAL, E_KILLS,
    E_LAST_HITS, E_TOWERS_DESTROYED, ENT_DIM, ENTITY_FEATURES, F_DAMAGE, F_HP, F_MAX_HP, F_X,
    F_Y, H_GOLD, H_ITEMS, H_LEVEL, H_RESPAWN, I_ALIVE, I_KIND, I_TEAM, MELEE, RADIANT, TOWER,
)

ATTACKABLE = ENTITY_FEATURES.index("attackable")
INVULNERABLE = ENTITY_FEATURES.index("invulnerable")


def fresh(team_size=1, **kw) -> MobaCore:
    """A game after its first tick (the first creep wave has left the bases)."""
    core = MobaCore(num_games=1, autoreset=False, team_size=team_size, **kw)
    core.reset(seed=0)
    core.step(np.zeros((1, core.num_heroes), np.int64))
    return core


def place(core, u, x, y):
    core.unit_f[F_X, 0, u] = x
    core.unit_f[F_Y, 0, u] = y


def spawn_creep(core, team, x, y, hp):
    """Put a live melee creep of `team` at (x, y) in the first free slot."""
    for u in core.layout.creep_slots(team):
        if not core.unit_i[I_ALIVE, 0, u]:
            core.unit_i[I_ALIVE, 0, u] = 1
            core.unit_i[I_KIND, 0, u] = MELEE
            core.unit_f[F_HP, 0, u] = hp
            core.unit_f[F_MAX_HP, 0, u] = 550.0
            core.unit_f[F_DAMAGE, 0, u] = 0.0
            place(core, u, x, y)
            return u
    raise AssertionError("no free creep slot")


def entity_slot(core, hero, unit):
    """The index k of `unit` in `hero`'s visible-entity list."""
    ks = np.flatnonzero(core.ent_idx[0, hero] == unit)
    assert ks.size == 1, f"unit {unit} not in hero {hero}'s visible list"
    return int(ks[0])


def entity_row(core, hero, k):
    lay = core.layout
    start = lay.obs_slices["visible"].start + k * ENT_DIM
    return core.obs[0, hero, start:start + ENT_DIM]


def step(core, **actions_by_hero):
    actions = np.zeros((1, core.num_heroes), np.int64)
    for h, a in actions_by_hero.items():
        actions[0, int(h[1:])] = a
    return core.step(actions)


def mid(core):
    return core.config.map_size / 2


def test_last_hit_pays_the_bounty_and_counts():
    core = fresh(wave_interval=100_000)  # no creep waves in the way
    m = mid(core)
    place(core, 0, m, m)
    place(core, 1, m + 20, m + 20)
    creep = spawn_creep(core, DIRE, m + 2, m, hp=5.0)
    core.observe()
    k = entity_slot(core, 0, creep)
    gold = core.hero_f[H_GOLD, 0, 0]
    r = step(core, h0=core.layout.first_attack + k)
    assert not core.unit_i[I_ALIVE, 0, creep]
    assert r.events[0, 0, E_LAST_HITS] == 1
    bounty = core.config.melee_bounty + core.config.passive_gold
    assert core.hero_f[H_GOLD, 0, 0] == pytest.approx(gold + bounty)
    assert r.events[0, 0, E_GOLD] == pytest.approx(bounty)


def test_deny_gives_no_gold_and_only_below_half_hp():
    core = fresh(wave_interval=100_000)
    m = mid(core)
    place(core, 0, m, m)
    place(core, 1, m + 20, m + 20)
    creep = spawn_creep(core, RADIANT, m + 2, m, hp=400.0)  # above half: not deniable
    core.observe()
    k = entity_slot(core, 0, creep)
    assert entity_row(core, 0, k)[ATTACKABLE] == 0
    assert core.action_mask[0, 0, core.layout.first_attack + k] == 0
    core.unit_f[F_HP, 0, creep] = 5.0
    core.observe()
    k = entity_slot(core, 0, creep)
    assert core.action_mask[0, 0, core.layout.first_attack + k] == 1
    gold = core.hero_f[H_GOLD, 0, 0]
    r = step(core, h0=core.layout.first_attack + k)
    assert r.events[0, 0, E_DENIES] == 1 and r.events[0, 0, E_LAST_HITS] == 0
    assert core.hero_f[H_GOLD, 0, 0] == pytest.approx(gold + core.config.passive_gold)


def test_dead_hero_respawns_after_its_timer():
    core = fresh(wave_interval=100_000)
    tower = core.layout.tower(DIRE, 0, 1)
    tx, ty = core.unit_f[F_X, 0, tower], core.unit_f[F_Y, 0, tower]
    place(core, 0, tx - 1, ty - 1)
    core.unit_f[F_HP, 0, 0] = 1.0
    core.observe()
    r = step(core)
    assert r.events[0, 0, E_DEATHS] == 1 and not core.unit_i[I_ALIVE, 0, 0]
    level = core.hero_i[H_LEVEL, 0, 0]
    timer = core.config.respawn_base + core.config.respawn_per_level * level
    assert core.hero_i[H_RESPAWN, 0, 0] == timer
    # while dead: only the no-op is legal; another action is counted as illegal
    assert core.action_mask[0, 0].tolist() == [1] + [0] * (core.num_actions - 1)
    r = step(core, h0=1)
    assert r.events[0, 0, E_ILLEGAL] == 1
    for _ in range(timer - 2):
        step(core)
        assert not core.unit_i[I_ALIVE, 0, 0]
    step(core)
    assert core.unit_i[I_ALIVE, 0, 0]
    assert core.unit_f[F_HP, 0, 0] == core.unit_f[F_MAX_HP, 0, 0]
    fountain = core.layout.fountains()[RADIANT]
    assert np.allclose(core.unit_f[[F_X, F_Y], 0, 0], fountain, atol=1.0)
    assert core.action_mask[0, 0, 1:9].all()


def test_towers_block_until_destroyed():
    core = fresh(wave_interval=100_000)
    lay = core.layout
    t1, t2, anc = lay.tower(DIRE, 0, 1), lay.tower(DIRE, 0, 2), lay.ancient(DIRE)
    # stand between the inner tower and the ancient, with 0 damage from them
    for u in (t1, t2, anc):
        core.unit_f[F_DAMAGE, 0, u] = 0.0
    x = core.unit_f[F_X, 0, t2] + 3.0  # towards the ancient, which stands in sight
    place(core, 0, x, x)
    place(core, 1, 5.0, 5.0)
    core.observe()
    for u in (t2, anc):
        k = entity_slot(core, 0, u)
        assert entity_row(core, 0, k)[INVULNERABLE] == 1
        assert core.action_mask[0, 0, lay.first_attack + k] == 0
    # the outer tower falls: the inner one can be hit, the ancient still not
    core.unit_i[I_ALIVE, 0, t1] = 0
    core.observe()
    k2, ka = entity_slot(core, 0, t2), entity_slot(core, 0, anc)
    assert core.action_mask[0, 0, lay.first_attack + k2] == 1
    assert core.action_mask[0, 0, lay.first_attack + ka] == 0
    hp = core.unit_f[F_HP, 0, t2]
    step(core, h0=lay.first_attack + k2)
    assert core.unit_f[F_HP, 0, t2] < hp
    # a forced attack on the invulnerable ancient is illegal and does nothing
    anc_hp = core.unit_f[F_HP, 0, anc]
    r = step(core, h0=lay.first_attack + entity_slot(core, 0, anc))
    assert r.events[0, 0, E_ILLEGAL] == 1 and core.unit_f[F_HP, 0, anc] == anc_hp
    # the lane is clear: the ancient can be hit
    core.unit_i[I_ALIVE, 0, t2] = 0
    core.observe()
    assert core.action_mask[0, 0, lay.first_attack + entity_slot(core, 0, anc)] == 1


def test_tower_destruction_pays_the_team():
    core = fresh(team_size=2, wave_interval=100_000)
    t1 = core.layout.tower(DIRE, 0, 1)
    core.unit_f[F_DAMAGE, 0, t1] = 0.0
    core.unit_f[F_HP, 0, t1] = 1.0
    place(core, 0, core.unit_f[F_X, 0, t1] - 2, core.unit_f[F_Y, 0, t1])
    core.observe()
    r = step(core, h0=core.layout.first_attack + entity_slot(core, 0, t1))
    assert not core.unit_i[I_ALIVE, 0, t1]
    c = core.config
    assert r.events[0, 0, E_TOWERS_DESTROYED] == 1 and r.events[0, 1, E_TOWERS_DESTROYED] == 1
    assert r.events[0, 0, E_GOLD] == pytest.approx(c.tower_gold + c.tower_last_hit_gold + c.passive_gold)
    assert r.events[0, 1, E_GOLD] == pytest.approx(c.tower_gold + c.passive_gold)
    assert r.events[0, 2:, E_TOWERS_DESTROYED].sum() == 0


@pytest.mark.parametrize("loser", [DIRE, RADIANT])
def test_ancient_death_ends_the_game_with_the_right_winner(loser):
    core = fresh(wave_interval=100_000)
    lay = core.layout
    anc = lay.ancient(loser)
    for tier in (1, 2):
        core.unit_i[I_ALIVE, 0, lay.tower(loser, 0, tier)] = 0
    core.unit_f[F_HP, 0, anc] = 1.0
    core.unit_f[F_DAMAGE, 0, anc] = 0.0
    attacker = 0 if loser == DIRE else 1
    other = 1 - attacker
    place(core, attacker, core.unit_f[F_X, 0, anc] - 2, core.unit_f[F_Y, 0, anc])
    place(core, other, mid(core), mid(core))
    core.observe()
    k = entity_slot(core, attacker, anc)
    r = step(core, **{f"h{attacker}": lay.first_attack + k})
    assert r.dones[0] and r.winners[0] == 1 - loser
    assert r.rewards[0, attacker] == 1.0 and r.rewards[0, other] == -1.0
    assert core.unit_i[I_KIND, 0, anc] == ANCIENT and not core.unit_i[I_ALIVE, 0, anc]
    # a finished game (no autoreset) stays finished: only no-ops, nothing happens
    assert (core.action_mask[0, :, 1:] == 0).all()
    r = step(core)
    assert r.dones[0] and (r.rewards == 0).all()


def test_time_limit_decides_by_ancient_hp():
    core = fresh(max_ticks=20, wave_interval=100_000)
    core.unit_f[F_HP, 0, core.layout.ancient(RADIANT)] -= 1.0
    for _ in range(18):
        assert not step(core).dones[0]
    r = step(core)
    assert r.dones[0] and r.lengths[0] == 20 and r.winners[0] == DIRE
    assert r.rewards[0].tolist() == [-1.0, 1.0]


def test_time_limit_then_net_worth_then_draw():
    core = fresh(max_ticks=10, wave_interval=100_000)
    core.hero_f[H_GOLD, 0, 0] += 1.0
    for _ in range(9):
        r = step(core)
    assert r.winners[0] == RADIANT
    core = fresh(max_ticks=10, wave_interval=100_000)
    for _ in range(9):
        r = step(core)
    assert r.dones[0] and r.winners[0] == -1 and (r.rewards == 0).all()


def test_items_cost_gold_only_at_base():
    core = fresh(wave_interval=100_000)
    lay = core.layout
    core.hero_f[H_GOLD, 0, 0] = 1000.0
    core.observe()
    blade = lay.first_buy  # item 0
    assert core.action_mask[0, 0, blade] == 1  # heroes start at their fountain
    damage = core.unit_f[F_DAMAGE, 0, 0]
    r = step(core, h0=blade)
    cost = ITEMS[0][1]
    assert core.hero_i[H_ITEMS, 0, 0] == 1
    assert core.hero_f[H_GOLD, 0, 0] == pytest.approx(1000.0 - cost + core.config.passive_gold)
    assert r.events[0, 0, E_GOLD_SPENT] == cost
    assert core.unit_f[F_DAMAGE, 0, 0] == pytest.approx(damage + ITEMS[0][2])
    # away from base: buying is masked, and a forced buy is an illegal no-op
    place(core, 0, mid(core), mid(core))
    core.observe()
    assert core.action_mask[0, 0, lay.first_buy:lay.retreat].sum() == 0
    gold = core.hero_f[H_GOLD, 0, 0]
    r = step(core, h0=blade)
    assert r.events[0, 0, E_ILLEGAL] == 1 and core.hero_i[H_ITEMS, 0, 0] == 1
    assert core.hero_f[H_GOLD, 0, 0] == pytest.approx(gold + core.config.passive_gold)
    # not enough gold: masked at base too
    place(core, 0, *lay.fountains()[RADIANT])
    core.hero_f[H_GOLD, 0, 0] = 10.0
    core.observe()
    assert core.action_mask[0, 0, lay.first_buy:lay.retreat].sum() == 0


def test_hero_kill_pays_killer_and_assists():
    core = fresh(team_size=2, wave_interval=100_000)
    m = mid(core)
    place(core, 0, m, m)          # radiant_0 kills
    place(core, 1, m - 1, m)      # radiant_1 hit the victim earlier
    place(core, 2, m + 2, m)      # dire_0, the victim
    place(core, 3, m + 25, m + 25)
    core.observe()
    k = entity_slot(core, 1, 2)
    step(core, h1=core.layout.first_attack + k)
    core.unit_f[F_HP, 0, 2] = 1.0
    core.observe()
    k = entity_slot(core, 0, 2)
    r = step(core, h0=core.layout.first_attack + k)
    assert not core.unit_i[I_ALIVE, 0, 2]
    assert r.events[0, 0, E_KILLS] == 1 and r.events[0, 2, E_DEATHS] == 1
    assert r.events[0, 1, E_ASSISTS] == 1 and r.events[0, 1, E_KILLS] == 0
    c = core.config
    assert r.events[0, 0, E_GOLD] >= c.hero_kill_gold
    assert r.events[0, 1, E_GOLD] == pytest.approx(c.assist_gold + c.passive_gold)


def test_tower_kind_and_positions_are_symmetric():
    core = fresh(team_size=3, lanes=3)
    lay = core.layout
    m = core.config.map_size
    # rotating the map by 180 degrees swaps the top and bottom lanes
    for lane, mirror in ((0, 0), (1, 2), (2, 1)):
        for tier in (1, 2):
            r, d = lay.tower(RADIANT, lane, tier), lay.tower(DIRE, mirror, tier)
            assert core.unit_i[I_KIND, 0, r] == TOWER and core.unit_i[I_TEAM, 0, d] == DIRE
            np.testing.assert_allclose(core.unit_f[[F_X, F_Y], 0, r],
                                       m - core.unit_f[[F_X, F_Y], 0, d], atol=1e-4)
