"""Games as fixed-shape numpy batches (games/vector.py): MobaVec and ParallelVec.

AECVec (turn-based games) is tested in test_aec.py, with the helpers defined here.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_magent2, needs_mpe2
from gymnasium import spaces
from pettingzoo import ParallelEnv
from test_registry import clean_registry  # noqa: F401 - a fixture, used by name

from games.memory import MemoryGame
from games.moba import EVENT_NAMES, MobaEnv
from games.moba.vec import MobaVec
from games.vector import AECVec, ParallelVec, RoleSpec, VecStep, make_vec

BATTLE = "pettingzoo:magent2.environments.battle_v4:parallel_env"
BATTLE_TEAMS = {"red": "red_", "blue": "blue_"}
TAG = "pettingzoo:mpe2.simple_tag_v3:parallel_env"
TAG_TEAMS = {"predator": "adversary_", "prey": "agent_"}



def random_legal(vec, step: VecStep, rng: np.random.Generator) -> np.ndarray:
    """(B, S) uniformly random legal actions (any action where a slot is inactive)."""
    actions = np.zeros((vec.num_games, vec.num_slots), np.int64)
    for role in vec.roles:
        mask = step.action_mask[role.name]
        u = rng.random(mask.shape) * mask  # argmax of masked uniforms: a random legal action
        actions[:, list(role.slots)] = u.argmax(-1)
    return actions


def copy_step(step: VecStep) -> dict:
    out = {k: getattr(step, k).copy() for k in
           ("rewards", "dones", "active", "next_active", "winners", "lengths", "events",
            "alive", "truncated")}
    for prefix, field in (("obs", step.obs), ("mask", step.action_mask),
                          ("final_obs", step.final_obs), ("final_mask", step.final_mask)):
        out.update({f"{prefix}/{k}": v.copy() for k, v in field.items()})
    return out


def rollout(vec, seed: int, steps: int, policy_seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(policy_seed)
    st = vec.reset(seed=seed)
    trace = [copy_step(st)]
    for _ in range(steps):
        st = vec.step(random_legal(vec, st, rng))
        trace.append(copy_step(st))
    return trace


def assert_same_trace(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for t, (x, y) in enumerate(zip(a, b)):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"step {t}, {k}")


def check_shapes(vec, st: VecStep) -> None:
    B, S = vec.num_games, vec.num_slots
    assert len(vec.slot_agents) == S and vec.slot_team.shape == (S,) and vec.slot_role.shape == (S,)
    assert sorted(s for r in vec.roles for s in r.slots) == list(range(S))
    for i, r in enumerate(vec.roles):
        assert all(vec.slot_role[s] == i for s in r.slots)
        assert st.obs[r.name].shape == (B, len(r.slots), r.obs_dim)
        assert st.obs[r.name].dtype == np.float32
        assert st.action_mask[r.name].shape == (B, len(r.slots), r.num_actions)
        assert st.action_mask[r.name].dtype == bool
    assert set(st.obs) == set(st.action_mask) == {r.name for r in vec.roles}
    assert st.rewards.shape == (B, S) and st.rewards.dtype == np.float32
    assert st.dones.shape == (B,) and st.dones.dtype == bool
    assert st.active.shape == st.next_active.shape == (B, S)
    assert st.active.dtype == st.next_active.dtype == bool
    assert st.winners.shape == st.lengths.shape == (B,)
    assert st.winners.dtype.kind == st.lengths.dtype.kind == "i"
    assert st.events.shape == (B, S, len(vec.event_names)) and st.events.dtype == np.float32
    assert st.alive.shape == st.truncated.shape == (B, S)
    assert st.alive.dtype == st.truncated.dtype == bool
    assert set(st.final_obs) == set(st.final_mask) == set(st.obs)
    for r in vec.roles:
        assert st.final_obs[r.name].shape == st.obs[r.name].shape
        assert st.final_obs[r.name].dtype == np.float32
        assert st.final_mask[r.name].shape == st.action_mask[r.name].shape
        assert st.final_mask[r.name].dtype == bool
        # nothing but truncated slots has a final observation
        cut = st.truncated[:, list(r.slots)]
        assert (st.final_obs[r.name][~cut] == 0).all() and st.final_mask[r.name][~cut].all()
    assert not (st.next_active & ~st.alive).any()  # who acts next is in the episode
    if not isinstance(vec, AECVec):
        np.testing.assert_array_equal(st.alive, st.next_active)  # every live agent acts


# -- MOBA ------------------------------------------------------------------------------


def moba_obs(obs: dict, agents: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return (np.stack([obs[a]["observation"] for a in agents]),
            np.stack([obs[a]["action_mask"] for a in agents]).astype(bool))


def test_moba_vec_matches_moba_env():
    """Games 0 and 2 of MobaVec.reset(seed) replay MobaEnv.reset(seed) / reset(seed + 2)."""
    kw = dict(team_size=2, max_ticks=60)
    vec = make_vec("moba", 3, **kw)
    assert isinstance(vec, MobaVec)
    envs = {0: MobaEnv(**kw), 2: MobaEnv(**kw)}
    st = vec.reset(seed=11)
    check_shapes(vec, st)
    assert vec.slot_agents == envs[0].possible_agents
    assert vec.team_names == ["radiant", "dire"] and vec.slot_team.tolist() == [0, 0, 1, 1]
    assert vec.roles == [RoleSpec("hero", vec.layout.obs_dim, vec.layout.num_actions, True,
                                  (0, 1, 2, 3), vec.layout, vec.layout.entity_layout)]
    assert vec.roles[0].obs_layout is vec.core.layout
    assert vec.event_names == EVENT_NAMES
    env_obs = {b: env.reset(seed=11 + b)[0] for b, env in envs.items()}
    agents = envs[0].possible_agents
    rng = np.random.default_rng(3)
    for t in range(60):
        assert st.active.all() and st.next_active.all()
        for b, env in envs.items():
            o, m = moba_obs(env_obs[b], agents)
            np.testing.assert_array_equal(st.obs["hero"][b], o, err_msg=f"t={t} game {b}")
            np.testing.assert_array_equal(st.action_mask["hero"][b], m)
        actions = random_legal(vec, st, rng)
        st = vec.step(actions)
        for b, env in envs.items():
            env_obs[b], rew, terms, _, infos = env.step(
                {a: int(actions[b, s]) for s, a in enumerate(agents)})
            np.testing.assert_array_equal(st.rewards[b], [rew[a] for a in agents])
            np.testing.assert_array_equal(
                st.events[b], [[infos[a]["events"][e] for e in EVENT_NAMES] for a in agents])
            assert bool(st.dones[b]) == all(terms.values())
            if st.dones[b]:
                w = infos[agents[0]]["winner"]
                assert st.winners[b] == (-1 if w is None else vec.team_names.index(w))
                assert st.lengths[b] == t + 1
    assert st.dones.all() and (st.lengths == 60).all()  # the time limit ends every game


def test_moba_vec_autoreset():
    vec = MobaVec(4, team_size=1, max_ticks=15)
    st = vec.reset(seed=0)
    time = vec.layout.obs_slices["global"].start  # GLOBAL_FEATURES[0] == "time"
    assert (st.obs["hero"][..., time] == 0).all()
    rng = np.random.default_rng(0)
    for t in range(1, 31):
        st = vec.step(random_legal(vec, st, rng))
        check_shapes(vec, st)
        assert st.alive.all() and not st.truncated.any()  # the time limit is a rule: terminal
        if t % 15:
            assert not st.dones.any() and (st.rewards == 0).all()
            assert (st.obs["hero"][..., time] > 0).all()
        else:
            assert st.dones.all() and (st.lengths == 15).all()
            assert np.isin(st.winners, [-1, 0, 1]).all()
            np.testing.assert_array_equal(st.rewards.sum(1), 0.0)  # zero-sum outcome
            won = st.winners >= 0
            np.testing.assert_array_equal(np.abs(st.rewards[won]), 1.0)
            # already reset: the new episode's first observation
            assert (st.obs["hero"][..., time] == 0).all()


def test_moba_vec_deterministic_and_errors():
    kw = dict(team_size=1, max_ticks=12)
    a = rollout(MobaVec(2, **kw), seed=4, steps=30)
    b = rollout(make_vec("moba", 2, **kw), seed=4, steps=30)
    c = rollout(MobaVec(2, **kw), seed=5, steps=30)
    assert_same_trace(a, b)
    assert not np.array_equal(a[5]["obs/hero"], c[5]["obs/hero"])
    vec = MobaVec(2, **kw)
    with pytest.raises(RuntimeError, match="before reset"):
        vec.step(np.zeros((2, 2), np.int64))
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError, match="integers"):
        vec.step(np.zeros((2, 2), np.float32))
    with pytest.raises(TypeError, match="seed"):
        vec.reset(seed=1.5)
    with pytest.raises(ValueError, match="num_games"):
        MobaVec(0)
    with pytest.raises(TypeError, match="unknown option"):
        make_vec("moba", 2, team_sise=2)


def test_parallel_vec_over_moba_env_matches_moba_vec():
    """The generic path over MobaEnv agrees with the fast path on the first episode, and
    picks up events (by probing) and the winner (from infos) the same way."""
    kw = dict(team_size=1, max_ticks=20)
    fast, slow = MobaVec(2, **kw), ParallelVec("moba", 2, **kw)
    assert slow.event_names == fast.event_names
    assert [r.name for r in slow.roles] == ["radiant+dire"] and slow.roles[0].has_mask
    a, b = rollout(fast, seed=7, steps=20), rollout(slow, seed=7, steps=20)
    assert b[-1]["dones"].all()
    for t, (x, y) in enumerate(zip(a, b)):
        if t < 20:  # the last obs start the next episode, seeded differently by each path
            np.testing.assert_array_equal(x["obs/hero"], y["obs/radiant+dire"])
            np.testing.assert_array_equal(x["mask/hero"], y["mask/radiant+dire"])
        for k in ("rewards", "dones", "active", "next_active", "winners", "lengths", "events"):
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


# -- memory game ------------------------------------------------------------------------


def test_memory_game_one_shared_role_with_masks():
    L, C = 5, 3
    vec = make_vec("memory", 3, length=L, num_cues=C, team_size=2)
    assert isinstance(vec, ParallelVec)
    assert vec.slot_agents == ["red_0", "red_1", "blue_0", "blue_1"]
    assert vec.team_names == ["red", "blue"] and vec.slot_team.tolist() == [0, 0, 1, 1]
    assert [(r.name, r.obs_dim, r.num_actions, r.has_mask, r.slots) for r in vec.roles] == [
        ("red+blue", C + 2, C + 1, True, (0, 1, 2, 3))]
    assert vec.event_names == ("correct",)
    st = vec.reset(seed=9)
    check_shapes(vec, st)
    # game 0 is MemoryGame().reset(seed), game b is reset(seed + b)
    for b in range(3):
        obs, _ = MemoryGame(length=L, num_cues=C, team_size=2).reset(seed=9 + b)
        np.testing.assert_array_equal(
            st.obs["red+blue"][b], [obs[a]["observation"] for a in vec.slot_agents])
    assert st.active.all() and st.next_active.all() and not st.dones.any()
    for episode in range(3):
        cue = st.obs["red+blue"][..., :C].argmax(-1)  # (B, S), shown at t = 0 only
        for t in range(L):
            mask = st.action_mask["red+blue"]
            last = t == L - 1
            assert (mask[..., 0] == (not last)).all() and (mask[..., 1:] == last).all()
            # red remembers the cue, blue answers cue 0 (right 1 time in C, by chance)
            actions = np.where(last, np.where(vec.slot_team == 0, cue + 1, 1), 0)
            st = vec.step(actions)
            assert st.active.all() and st.next_active.all()
            assert (st.dones == last).all()
        np.testing.assert_array_equal(st.lengths, L)
        np.testing.assert_array_equal(st.events[..., 0], st.rewards > 0)
        assert (st.rewards[:, :2] == 1).all()  # red is always right
        blue = st.rewards[:, 2:].sum(1)
        # the team with the higher summed reward wins; a tie is a draw
        np.testing.assert_array_equal(st.winners, np.where(blue == 2, -1, 0))
        # auto-reset: a fresh cue in every obs, time 0
        first = st.obs["red+blue"]
        assert (first[..., :C].sum(-1) == 1).all() and (first[..., C] == 0).all()


def test_memory_game_determinism_across_autoresets():
    kw = dict(length=3, num_cues=4)
    a = rollout(make_vec("memory", 3, **kw), seed=1, steps=40)
    b = rollout(make_vec("memory", 3, **kw), seed=1, steps=40)
    c = rollout(make_vec("memory", 3, **kw), seed=2, steps=40)
    assert_same_trace(a, b)
    assert any(not np.array_equal(x["obs/red+blue"], y["obs/red+blue"]) for x, y in zip(a, c))
    # later episodes get new seeds: the cues are not replayed episode after episode
    cues = np.stack([x["obs/red+blue"][..., :4].argmax(-1) for x in a[::3]])  # (13, B, S)
    assert len({c.tobytes() for c in cues}) > 5


# -- magent2 battle (agents die and leave) ---------------------------------------------

# battle actions: 13 moves, then 8 attacks; offsets are (dx, dy) and the 13x13 view is
# indexed [dy + 6, dx + 6]; channel 3 is the other team's presence.
MOVES = [(0, -2), (-1, -1), (0, -1), (1, -1), (-2, 0), (-1, 0), (0, 0), (1, 0), (2, 0),
         (-1, 1), (0, 1), (1, 1), (0, 2)]
ATTACKS = [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)]


def chase(view: np.ndarray, forward: int) -> int:
    """Attack an adjacent enemy, else step toward the nearest one, else toward its side."""
    enemies = np.argwhere(view[:, :, 3] > 0) - 6
    if len(enemies):
        dy, dx = (int(v) for v in enemies[np.abs(enemies).max(1).argmin()])
        if max(abs(dx), abs(dy)) == 1:
            return 13 + ATTACKS.index((dx, dy))
        target = (dx, dy)
    else:
        target = (4 * forward, 0)
    return int(np.argmin([(target[0] - mx) ** 2 + (target[1] - my) ** 2 for mx, my in MOVES]))


@needs_magent2
def test_battle_dead_agents_leave_their_slots():
    B, cycles = 2, 40
    vec = make_vec(BATTLE, B, teams=BATTLE_TEAMS, map_size=12, max_cycles=cycles)
    assert vec.slot_agents == ["red_0", "red_1", "blue_0", "blue_1"]
    assert [(r.name, r.obs_dim, r.num_actions, r.has_mask) for r in vec.roles] == [
        ("red+blue", 13 * 13 * 5, 21, False)]
    assert vec.event_names == ()
    st = vec.reset(seed=0)
    check_shapes(vec, st)
    forward = np.where(vec.slot_team == 0, 1, -1)
    gone = np.zeros((B, vec.num_slots), bool)  # slots whose agent left this episode
    deaths = cuts = 0
    for _ in range(2 * cycles + 5):
        obs = st.obs["red+blue"].reshape(B, -1, 13, 13, 5)
        actions = np.array([[chase(obs[b, s], forward[s]) for s in range(vec.num_slots)]
                            for b in range(B)])
        prev_next = st.next_active.copy()
        st = vec.step(actions)
        check_shapes(vec, st)
        np.testing.assert_array_equal(st.active, prev_next)
        assert not (st.active & gone).any()  # gone for good: never active again
        assert (st.rewards[~st.active] == 0).all()
        assert st.action_mask["red+blue"].all()  # no masks in battle
        left = st.active & ~st.next_active & ~st.dones[:, None]
        deaths += int(left.sum())
        gone |= left
        gone[st.dones] = False
        assert not (st.next_active & gone).any()
        inactive = ~st.next_active
        assert (st.obs["red+blue"][inactive] == 0).all()
        assert (np.abs(st.obs["red+blue"][st.next_active]).sum(-1) > 0).all()
        assert st.next_active[st.dones].all()  # a fresh episode: everybody is back
        assert (st.lengths[st.dones] <= cycles).all()
        # only the time limit truncates, and only agents that were still in the game
        at_limit = st.dones & (st.lengths == cycles)
        assert not (st.truncated & ~(prev_next & at_limit[:, None])).any()
        cut = st.truncated
        assert (np.abs(st.final_obs["red+blue"][cut]).sum(-1) > 0).all()
        cuts += int(cut.sum())
    assert deaths >= B  # the chase policy gets soldiers killed in every episode
    assert cuts > 0  # and survivors are cut off by max_cycles


@needs_magent2
def test_battle_observations_and_rewards_are_the_envs_as_soldiers_die():
    """The batch holds exactly what the env reports, written a role at a time: each live
    soldier's observation in its row, zeros for the dead, the env's rewards per slot."""
    import games

    kw = dict(teams=BATTLE_TEAMS, map_size=12, max_cycles=40)
    vec = make_vec(BATTLE, 2, **kw)
    env = games.make(BATTLE, **kw)
    st = vec.reset(seed=7)
    obs, _ = env.reset(seed=7)  # game 0's first episode
    forward = np.where(vec.slot_team == 0, 1, -1)
    agents, deaths = vec.slot_agents, 0
    for _ in range(39):
        for s, a in enumerate(agents):
            row = st.obs["red+blue"][0, s]
            if a in env.agents:
                np.testing.assert_array_equal(row, np.asarray(obs[a]).reshape(-1))
            else:
                assert not st.alive[0, s] and (row == 0).all()
        view = st.obs["red+blue"].reshape(2, -1, 13, 13, 5)
        actions = np.array([[chase(view[b, s], forward[s]) for s in range(vec.num_slots)]
                            for b in range(2)])
        acting = [a for a in agents if a in env.agents]
        st = vec.step(actions)
        obs, rew, terms, _, _ = env.step({a: int(actions[0, agents.index(a)]) for a in acting})
        np.testing.assert_allclose(st.rewards[0], [rew.get(a, 0.0) for a in agents],
                                   rtol=1e-6)
        deaths += sum(bool(terms[a]) for a in acting)
        if st.dones[0]:
            break
    assert deaths > 0  # soldiers left the game along the way


@needs_magent2
def test_battle_roles_override_and_determinism():
    vec = make_vec(BATTLE, 1, teams=BATTLE_TEAMS, map_size=12, max_cycles=10,
                   roles={"red": "red", "blue": "blue"})
    assert [(r.name, r.slots) for r in vec.roles] == [("red", (0, 1)), ("blue", (2, 3))]
    assert vec.slot_role.tolist() == [0, 0, 1, 1]
    kw = dict(teams=BATTLE_TEAMS, map_size=12, max_cycles=10)
    a = rollout(make_vec(BATTLE, 2, **kw), seed=3, steps=25)
    b = rollout(make_vec(BATTLE, 2, **kw), seed=3, steps=25)
    assert_same_trace(a, b)


# -- mpe2 simple_tag (two roles, no masks) ---------------------------------------------


@needs_mpe2
def test_simple_tag_two_roles_match_the_env():
    import games

    vec = make_vec(TAG, 2, teams=TAG_TEAMS, max_cycles=8)
    assert [(r.name, r.obs_dim, r.num_actions, r.has_mask, r.slots) for r in vec.roles] == [
        ("predator", 16, 5, False, (0, 1, 2)), ("prey", 14, 5, False, (3,))]
    assert vec.slot_role.tolist() == [0, 0, 0, 1]
    env = games.make(TAG, teams=TAG_TEAMS, max_cycles=8)
    st = vec.reset(seed=5)
    check_shapes(vec, st)
    obs, _ = env.reset(seed=5)
    rng = np.random.default_rng(1)
    for t in range(8):
        predators = [obs[f"adversary_{i}"] for i in range(3)]
        np.testing.assert_array_equal(st.obs["predator"][0], predators)
        np.testing.assert_array_equal(st.obs["prey"][0], [obs["agent_0"]])
        assert st.action_mask["predator"].all() and st.action_mask["prey"].all()
        actions = rng.integers(0, 5, (2, 4))
        st = vec.step(actions)
        obs, rew, _, truncs, _ = env.step(
            {a: int(actions[0, s]) for s, a in enumerate(vec.slot_agents)})
        np.testing.assert_allclose(st.rewards[0], [rew[a] for a in vec.slot_agents], rtol=1e-6)
        assert st.dones[0] == (t == 7) == all(truncs.values())
    assert (st.lengths == 8).all() and st.next_active.all()


@needs_mpe2
def test_simple_tag_truncation_keeps_the_final_observation():
    """max_cycles truncates every agent: `truncated` and `final_obs` hold the cut, while
    obs already start the next episode. Default teams: adversary vs agent."""
    import games

    cycles = 4
    vec = make_vec(TAG, 2, max_cycles=cycles)
    assert vec.team_names == ["adversary", "agent"]
    assert [r.name for r in vec.roles] == ["adversary", "agent"]
    env = games.make(TAG, max_cycles=cycles)
    st = vec.reset(seed=3)
    assert st.alive.all() and not st.truncated.any()
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(2)
    for episode in range(2):
        for t in range(cycles):
            actions = rng.integers(0, 5, (2, 4))
            st = vec.step(actions)
            check_shapes(vec, st)
            obs, _, terms, truncs, _ = env.step(
                {a: int(actions[0, s]) for s, a in enumerate(vec.slot_agents)})
            last = t == cycles - 1
            assert (st.truncated == last).all() and (st.dones == last).all()
            assert st.alive.all() and st.next_active.all()  # after the cut: the next episode
            if last:
                assert all(truncs.values()) and not any(terms.values())
                np.testing.assert_array_equal(
                    st.final_obs["adversary"][0], [obs[f"adversary_{i}"] for i in range(3)])
                np.testing.assert_array_equal(st.final_obs["agent"][0], [obs["agent_0"]])
                assert st.final_mask["adversary"].all() and st.final_mask["agent"].all()
                assert not np.array_equal(st.final_obs["agent"], st.obs["agent"])
                assert (st.lengths == cycles).all()
                obs, _ = env.reset(seed=int(vec._episode_seed(0)))
            else:
                assert (st.final_obs["adversary"] == 0).all()
        np.testing.assert_array_equal(st.obs["agent"][0], [obs["agent_0"]])
    # the next step clears the cut
    st = vec.step(np.zeros((2, 4), np.int64))
    assert not st.truncated.any() and (st.final_obs["agent"] == 0).all()


@needs_mpe2
def test_simple_tag_continuous_actions_error_names_the_role():
    with pytest.raises(ValueError, match=r"role 'predator', agent 'adversary_0'.*Discrete"):
        make_vec(TAG, 1, teams=TAG_TEAMS, max_cycles=5, continuous_actions=True)


@needs_mpe2
def test_errors():
    with pytest.raises(ValueError, match="role 'animals'.*share spaces"):
        make_vec(TAG, 1, teams=TAG_TEAMS, roles={"predator": "animals", "prey": "animals"})
    with pytest.raises(ValueError, match="every team"):
        make_vec(TAG, 1, teams=TAG_TEAMS, roles={"predator": "p"})
    with pytest.raises(ValueError, match="num_games"):
        make_vec("memory", 0)
    with pytest.raises(ValueError, match="unknown game"):
        make_vec("memroy", 2)
    vec = make_vec("memory", 2)
    with pytest.raises(RuntimeError, match="before reset"):
        vec.step(np.zeros((2, 2), np.int64))
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"action 7 of game 1 slot 0 \('red_0'\)"):
        vec.step(np.array([[0, 0], [7, 0]]))
    with pytest.raises(ValueError, match="seed"):
        vec.reset(seed=-1)
    with vec:
        pass


class MisreportingGame(ParallelEnv):
    """Two agents observing 3 plain values each; from the first step on, red observes one
    value too many and blue one too few (the batch's total size is right)."""

    metadata = {"name": "misreporting_v0"}

    def __init__(self) -> None:
        self.possible_agents = ["red_0", "blue_0"]
        self.agents = []

    def observation_space(self, agent):
        return spaces.Box(0.0, 1.0, (3,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        return {a: np.zeros(3, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        obs = {"red_0": np.ones(4, np.float32), "blue_0": np.ones(2, np.float32)}
        zero = {a: 0.0 for a in self.agents}
        return obs, zero, {a: False for a in self.agents}, {a: False for a in self.agents}, \
            {a: {} for a in self.agents}


class OversizedGame(MisreportingGame):
    """From the first step on, both agents observe 4 values where their space says 3: arrays
    of one shape, as the one-pass copy of a whole role takes, but not the space's size."""

    def step(self, actions):
        obs, *rest = super().step(actions)
        return {a: np.ones(4, np.float32) for a in obs}, *rest


@pytest.mark.parametrize("game", [MisreportingGame, OversizedGame])
def test_an_observation_of_the_wrong_size_is_named(clean_registry, game):  # noqa: F811
    import games

    games.register("misreporting", game, "observes the wrong sizes")
    vec = make_vec("misreporting", 2)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"agent 'red_0' observation has 4 values, its "
                                          r"space says 3"):
        vec.step(np.zeros((2, 2), np.int64))


class OddRewardsGame(MisreportingGame):
    """Plain observations of the right size; rewards given as None, a one-value array, a
    number, and (with `bad`) a string."""

    metadata = {"name": "odd_rewards_v0"}
    bad = False

    def step(self, actions):
        obs = {a: np.ones(3, np.float32) for a in self.agents}
        rewards = {"red_0": None, "blue_0": np.array([0.5], np.float32)}
        if self.bad:
            rewards["blue_0"] = "lots"
        false = {a: False for a in self.agents}
        return obs, rewards, false, dict(false), {a: {} for a in self.agents}


def test_rewards_that_are_not_plain_numbers(clean_registry, monkeypatch):  # noqa: F811
    import games

    games.register("odd_rewards", OddRewardsGame, "rewards of odd types")
    vec = make_vec("odd_rewards", 2)
    vec.reset(seed=0)
    st = vec.step(np.zeros((2, 2), np.int64))
    np.testing.assert_array_equal(st.rewards, [[0.0, 0.5], [0.0, 0.5]])
    st = vec.step(np.zeros((2, 2), np.int64))  # the same again: the cached agent order
    np.testing.assert_array_equal(st.rewards, [[0.0, 0.5], [0.0, 0.5]])
    monkeypatch.setattr(OddRewardsGame, "bad", True)
    with pytest.raises(ValueError, match=r"game 0 gave agent 'blue_0' the reward 'lots'; a "
                                         r"reward must be a number"):
        vec.step(np.zeros((2, 2), np.int64))
