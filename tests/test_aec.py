"""Turn-based (AEC) games stepped natively: games.make -> TeamAECEnv, make_vec -> AECVec.

A tiny counting game written here pins the rules step by step (whose turn, waiting
agents' observations and masks, rewards that arrive while an agent waits, dead steps,
truncation); PettingZoo's classic games check them on real games with random legal play.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo import AECEnv

import games
from games.adapters import TeamAECEnv, with_teams
from games.vector import AECVec, ParallelVec, make_vec
from test_registry import clean_registry  # noqa: F401 - a fixture, used by name
from test_vector import assert_same_trace, check_shapes, random_legal, rollout

with warnings.catch_warnings():  # pettingzoo.test imports its deprecated classic games
    warnings.simplefilter("ignore", DeprecationWarning)
    from pettingzoo.test import api_test

CONNECT_FOUR = "pettingzoo:pettingzoo.classic.connect_four_v3:env"
TICTACTOE = "pettingzoo:pettingzoo.classic.tictactoe_v3:env"
LEDUC = "pettingzoo:pettingzoo.classic.leduc_holdem_v4:env"
TEXAS = "pettingzoo:pettingzoo.classic.texas_holdem_v4:env"
needs_rlcard = pytest.mark.skipif(
    importlib.util.find_spec("rlcard") is None,
    reason="PettingZoo's poker games need rlcard: pip install -e '.[thirdparty]'")

# the counting game's observation: [counter, my turn, moves so far, own index + 1]
COUNTER, MY_TURN, MOVES, ME = range(4)
PLUS1, PLUS2 = 0, 1


class CountGame(AECEnv):
    """Players take turns adding 1 or 2 to a counter; whoever reaches `target` wins.

    The winner gets +1 and every other player still in the game -1, all on the winning
    move. Options: `bust` (a player who lands exactly on it is out at once with -1, and
    the game goes on without it: a dead agent PettingZoo selects first), `max_moves` (the
    game is cut off after that many moves: every player left is truncated, no rewards).
    The first player is drawn from the reset seed.
    """

    metadata = {"name": "count_v0", "is_parallelizable": False, "render_modes": []}

    def __init__(self, players: int = 2, target: int = 5, max_moves: int | None = None,
                 bust: int | None = None) -> None:
        super().__init__()
        self.possible_agents = [f"p_{i}" for i in range(players)]
        self.target, self.max_moves, self.bust = target, max_moves, bust
        self._obs_space = spaces.Dict({
            "observation": spaces.Box(0, 100, (4,), np.float32),
            "action_mask": spaces.Box(0, 1, (2,), np.int8)})
        self._act_space = spaces.Discrete(2)

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_space

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self.counter = self.moves = 0
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = {a: {} for a in self.agents}
        self.agent_selection = self.agents[int(rng.integers(len(self.agents)))]

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        me = self.possible_agents.index(agent)
        return {"observation": np.array([self.counter, agent == self.agent_selection,
                                         self.moves, me + 1], np.float32),
                "action_mask": np.array([1, self.counter + 2 <= self.target], np.int8)}

    def _next_live(self, agent: str) -> str:
        i = self.agents.index(agent)
        for k in range(1, len(self.agents) + 1):
            a = self.agents[(i + k) % len(self.agents)]
            if not (self.terminations[a] or self.truncations[a]):
                return a
        return agent

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._clear_rewards()
        self.counter += int(action) + 1
        self.moves += 1
        self.infos = {a: {} for a in self.agents}
        self.infos[agent] = {"events": {"added": int(action) + 1}}
        live = [a for a in self.agents if not self.terminations[a]]
        if self.counter >= self.target:
            for a in live:
                self.rewards[a] = 1.0 if a == agent else -1.0
            self.terminations = dict.fromkeys(self.agents, True)
        elif self.counter == self.bust:
            self.rewards[agent] = -1.0
            self.terminations[agent] = True
        elif self.max_moves is not None and self.moves >= self.max_moves:
            self.truncations = {a: a in live for a in self.agents}
        self._cumulative_rewards[agent] = 0
        self._accumulate_rewards()
        self.agent_selection = self._next_live(agent)
        self._deads_step_first()


@pytest.fixture
def count(clean_registry):  # noqa: F811 - the fixture imported above
    """The counting game registered as "count" (teams from the agent names)."""
    games.register("count", lambda **kw: with_teams(CountGame(**kw)), "counting to five")
    return "count"


def turn(st, b: int) -> int:
    """The one slot of game b that acts next."""
    (slots,) = np.nonzero(st.next_active[b])
    assert len(slots) == 1, f"game {b}: {len(slots)} slots act next"
    return int(slots[0])


# -- the counting game, step by step ------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Observation:UserWarning")  # Dict obs, as in classic games
@pytest.mark.parametrize("options", [{}, {"players": 3, "bust": 3}, {"max_moves": 2}])
def test_count_game_is_a_valid_aec_env(options):
    api_test(TeamAECEnv(CountGame(**options)), num_cycles=30)


def test_turns_waiting_obs_rewards_and_autoreset(count):
    B = 3
    vec = make_vec(count, B)
    assert isinstance(vec, AECVec)
    assert vec.slot_agents == ["p_0", "p_1"] and vec.team_names == ["p_0", "p_1"]
    assert [(r.name, r.obs_dim, r.num_actions, r.has_mask, r.slots) for r in vec.roles] == [
        ("p_0+p_1", 4, 2, True, (0, 1))]
    assert vec.event_names == ("added",)
    st = vec.reset(seed=4)
    check_shapes(vec, st)
    obs, mask = st.obs["p_0+p_1"], st.action_mask["p_0+p_1"]
    assert st.alive.all() and not st.dones.any() and not st.truncated.any()
    first = [turn(st, b) for b in range(B)]
    np.testing.assert_array_equal(st.active, st.next_active)
    for b in range(B):
        a, w = first[b], 1 - first[b]
        # both players observe; only the one to move has the game's mask
        np.testing.assert_array_equal(obs[b, a], [0, 1, 0, a + 1])
        np.testing.assert_array_equal(obs[b, w], [0, 0, 0, w + 1])
        assert mask[b, a].tolist() == [True, True] and mask[b, w].all()

    # every game: A +2 -> 2, B +2 -> 4, A +1 (the only legal move) -> 5: A wins
    for move, (counter, plays) in enumerate([(2, PLUS2), (4, PLUS2), (5, PLUS1)], 1):
        acting = np.array([turn(st, b) for b in range(B)])
        waiting = 1 - acting
        actions = np.full((B, 2), 7)  # the waiting slot's action is ignored, even illegal
        actions[np.arange(B), acting] = plays
        st = vec.step(actions)
        check_shapes(vec, st)
        rows = np.arange(B)
        assert st.active[rows, acting].all() and not st.active[rows, waiting].any()
        np.testing.assert_array_equal(st.events[rows, acting, 0], plays + 1)
        assert (st.events[rows, waiting] == 0).all()
        assert (st.lengths == move).all()
        if move < 3:
            assert not st.dones.any() and (st.rewards == 0).all() and st.alive.all()
            # turns alternate; the waiting player sees the counter after the move
            np.testing.assert_array_equal(st.next_active[rows, waiting], True)
            np.testing.assert_array_equal(st.next_active[rows, acting], False)
            np.testing.assert_array_equal(obs[rows, acting], np.stack(
                [np.full(B, counter), np.zeros(B), np.full(B, move), acting + 1], 1))
            assert mask[rows, acting].all()  # waiting: all True
            legal_plus2 = counter + 2 <= 5
            np.testing.assert_array_equal(mask[rows, waiting],
                                          np.tile([True, legal_plus2], (B, 1)))
        else:
            # the winner's move ends the game: +1 for it, and the loser's -1 in the same
            # step, in the loser's slot, though the loser did not act
            np.testing.assert_array_equal(st.rewards[rows, acting], 1.0)
            np.testing.assert_array_equal(st.rewards[rows, waiting], -1.0)
            assert st.dones.all() and (st.lengths == 3).all()
            np.testing.assert_array_equal(st.winners, acting)  # team index == slot here
            assert not st.truncated.any() and (st.final_obs["p_0+p_1"] == 0).all()
            # auto-reset: the next episode's first observation, everybody in it again
            assert st.alive.all() and (obs[..., [COUNTER, MOVES]] == 0).all()
            for b in range(B):
                assert obs[b, turn(st, b), MY_TURN] == 1 and obs[b, 1 - turn(st, b), MY_TURN] == 0


def test_dead_steps_run_inside_the_step(count):
    """A player who busts leaves at once (-1 on its own move); PettingZoo then selects
    it for its dead step, which the vec takes itself: the next live player acts next."""
    vec = make_vec(count, 1, players=3, bust=3)
    assert vec.team_names == ["p_0", "p_1", "p_2"] and vec.roles[0].name == "p_0+p_1+p_2"
    st = vec.reset(seed=0)
    a = turn(st, 0)
    b, c = (a + 1) % 3, (a + 2) % 3
    st = vec.step(np.eye(3, dtype=np.int64)[[a]] * PLUS1)  # a: 0 -> 1
    assert turn(st, 0) == b
    st = vec.step(np.eye(3, dtype=np.int64)[[b]] * PLUS2)  # b: 1 -> 3, bust
    check_shapes(vec, st)
    assert st.rewards[0].tolist() == [-1.0 if s == b else 0.0 for s in range(3)]
    assert not st.dones[0] and turn(st, 0) == c
    assert st.alive[0].tolist() == [s != b for s in range(3)]
    assert (st.obs["p_0+p_1+p_2"][0, b] == 0).all()  # gone: zeros, like any empty slot
    assert not st.truncated.any()  # terminated, not truncated
    assert vec.envs[0].agents == [f"p_{s}" for s in sorted((a, c))]  # the dead step ran
    st = vec.step(np.eye(3, dtype=np.int64)[[c]] * PLUS1)  # c: 3 -> 4
    assert turn(st, 0) == a
    st = vec.step(np.eye(3, dtype=np.int64)[[a]] * PLUS1)  # a: 4 -> 5 wins
    assert st.dones[0] and st.lengths[0] == 4
    assert st.rewards[0].tolist() == [{a: 1.0, b: 0.0, c: -1.0}[s] for s in range(3)]
    assert st.winners[0] == a
    assert st.alive.all()  # the new episode has everybody back


def test_truncation_at_the_move_limit_keeps_the_final_observation(count):
    vec = make_vec(count, 2, max_moves=2)
    st = vec.reset(seed=1)
    for _ in range(2):
        st = vec.step(np.full((2, 2), PLUS1))
        check_shapes(vec, st)
        assert (st.rewards == 0).all()
    assert st.dones.all() and st.truncated.all() and (st.lengths == 2).all()
    np.testing.assert_array_equal(st.winners, -1)  # no rewards: a tie
    fin, fmask = st.final_obs["p_0+p_1"], st.final_mask["p_0+p_1"]
    for b in range(2):
        for s in range(2):
            # at the cut: counter 2 after 2 moves; PettingZoo selects the first dead agent
            np.testing.assert_array_equal(fin[b, s], [2, s == 0, 2, s + 1])
        assert fmask[b].all()  # the game's mask (both legal) for the selected; True else
    obs = st.obs["p_0+p_1"]
    assert (obs[..., COUNTER] == 0).all() and st.alive.all()  # already the next episode
    st = vec.step(np.full((2, 2), PLUS1))
    assert not st.truncated.any() and (st.final_obs["p_0+p_1"] == 0).all()


def test_count_game_deterministic_per_seed(count):
    kw = dict(players=3, bust=4, max_moves=6)
    a = rollout(make_vec(count, 4, **kw), seed=2, steps=60)
    b = rollout(make_vec(count, 4, **kw), seed=2, steps=60)
    c = rollout(make_vec(count, 4, **kw), seed=3, steps=60)
    assert_same_trace(a, b)
    assert any(not np.array_equal(x["next_active"], y["next_active"]) for x, y in zip(a, c))
    assert sum(int(x["dones"].sum()) for x in a) > 10  # many episodes, over auto-resets


def test_kinds_are_checked(count):
    with pytest.raises(ValueError, match=r"ParallelVec\('count'\).*turn-based.*AECVec"):
        ParallelVec(count, 1)
    with pytest.raises(ValueError, match=r"AECVec\('memory'\).*MemoryGame.*ParallelVec"):
        AECVec("memory", 1)
    vec = make_vec(count, 1)
    a = turn(vec.reset(seed=0), 0)
    bad = np.zeros((1, 2), np.int64)
    bad[0, a] = 2
    with pytest.raises(ValueError, match=rf"action 2 of game 0 slot {a} \('p_{a}'\)"):
        vec.step(bad)
    bad[0, a], bad[0, 1 - a] = 0, 2  # out of range but waiting: ignored
    vec.step(bad)


# -- PettingZoo's classic games -----------------------------------------------------------


def test_connect_four_is_made_turn_based_with_a_team_per_player():
    env = games.make(CONNECT_FOUR)
    assert isinstance(env, TeamAECEnv)
    assert env.teams == {"player_0": ["player_0"], "player_1": ["player_1"]}
    assert env.role_of("player_1") == "player_1" and not env.team_spaces_differ
    api_test(env, num_cycles=50)
    vec = make_vec(CONNECT_FOUR, 1)
    assert [(r.name, r.obs_dim, r.num_actions, r.slots) for r in vec.roles] == [
        ("player_0+player_1", 6 * 7 * 2, 7, (0, 1))]


def play_random(name: str, num_games: int, steps: int, seed: int) -> int:
    """Random legal play through make_vec, checking the rules at every step; returns the
    number of finished games."""
    vec = make_vec(name, num_games)
    assert isinstance(vec, AECVec)
    (role,) = vec.roles
    col = {s: j for j, s in enumerate(role.slots)}
    rng = np.random.default_rng(seed)
    st = vec.reset(seed=seed)
    episode_rewards = np.zeros((num_games, vec.num_slots))
    finished = 0
    for _ in range(steps):
        check_shapes(vec, st)
        obs, mask = st.obs[role.name], st.action_mask[role.name]
        for b, env in enumerate(vec.envs):
            a = turn(st, b)
            assert env.agent_selection == vec.slot_agents[a]
            for s, agent in enumerate(vec.slot_agents):
                if not st.alive[b, s]:
                    continue
                seen = env.observe(agent)
                np.testing.assert_array_equal(obs[b, col[s]], np.ravel(seen["observation"]))
                if s == a:  # the game's legal moves
                    np.testing.assert_array_equal(mask[b, col[s]], seen["action_mask"] == 1)
                else:
                    assert mask[b, col[s]].all()
        actions = random_legal(vec, st, rng)
        st = vec.step(actions)
        episode_rewards += st.rewards
        for b in np.flatnonzero(st.dones):
            ret = episode_rewards[b]
            assert abs(ret.sum()) < 1e-6, f"{name}: not zero-sum: {ret}"
            best = np.flatnonzero(ret == ret.max())
            expected = vec.slot_team[best[0]] if len(best) == 1 else -1
            assert st.winners[b] == expected, (name, ret, st.winners[b])
            episode_rewards[b] = 0.0
            finished += 1
    return finished


def test_connect_four_random_play():
    # connect four's legal moves are the columns whose top cell is empty
    vec = make_vec(CONNECT_FOUR, 2)
    st = vec.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        for b, env in enumerate(vec.envs):
            top = np.asarray(env.unwrapped.board[:7])
            np.testing.assert_array_equal(
                st.action_mask["player_0+player_1"][b, turn(st, b)], top == 0)
        st = vec.step(random_legal(vec, st, rng))
    assert play_random(CONNECT_FOUR, 4, 300, seed=1) >= 8


def test_tictactoe_random_play():
    assert make_vec(TICTACTOE, 1).team_names == ["player_1", "player_2"]
    assert play_random(TICTACTOE, 4, 300, seed=2) >= 20


@needs_rlcard
@pytest.mark.parametrize("name", [LEDUC, TEXAS])
def test_poker_random_play(name):
    assert play_random(name, 4, 200, seed=3) >= 10
