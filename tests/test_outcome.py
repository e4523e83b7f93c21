"""Who won a third-party game: infos["winner"], else the `outcome` game option ("reward":
highest summed team reward, "survivors": more agents left at the end; a tie is a draw)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from conftest import temporary_game
from gymnasium import spaces
from pettingzoo import ParallelEnv

from games.vector import make_vec

GAME = "test_outcome_battle"


class ScriptedBattle(ParallelEnv):
    """Red (red_0, red_1) against blue (blue_0, blue_1, blue_2); actions change nothing.
    Every step red loses 1 per live agent and blue gets 0 (so by reward blue always wins).
    Agents in `killed` are terminated at step `kill_at` and leave the game; agents in
    `vanish` leave `agents` at that step without any flag; agents in `killed_at_end` are
    terminated, not truncated, at the last step; everyone else is truncated after
    `max_cycles` steps. With `rule_end_at`, the game ends by its own rule at that step
    instead, terminating everyone left at once (as magent2 ends a battle once a team is
    wiped out). `winner` (if given) is reported in the final infos."""

    metadata: ClassVar[dict] = {"name": "scripted_battle_v0"}
    NO_WINNER = object()

    def __init__(self, killed=(), vanish=(), killed_at_end=(), kill_at=1, max_cycles=4,
                 rule_end_at=None, winner=NO_WINNER):
        self.killed, self.vanish = tuple(killed), tuple(vanish)
        self.killed_at_end, self.kill_at = tuple(killed_at_end), kill_at
        self.max_cycles, self.winner = max_cycles, winner
        self.rule_end_at = rule_end_at
        self.possible_agents = ["red_0", "red_1", "blue_0", "blue_1", "blue_2"]
        self.teams = {"red": ["red_0", "red_1"], "blue": ["blue_0", "blue_1", "blue_2"]}
        self.agent_team = {a: t for t, agents in self.teams.items() for a in agents}
        self._obs_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self._act_space = spaces.Discrete(2)

    def observation_space(self, agent):
        return self._obs_space

    def action_space(self, agent):
        return self._act_space

    def reset(self, seed=None, options=None):
        self.t = 0
        self.agents = list(self.possible_agents)
        return {a: np.ones(1, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        rule_end = self.t == self.rule_end_at
        end = rule_end or self.t >= self.max_cycles
        agents = self.agents
        obs = {a: np.ones(1, np.float32) for a in agents}
        rewards = {a: -1.0 if a.startswith("red") else 0.0 for a in agents}
        dead = (self.t == self.kill_at and set(self.killed)) or set()
        if end:
            dead |= set(agents) if rule_end else set(self.killed_at_end)
        terms = {a: a in dead for a in agents}
        truncs = {a: end and a not in dead for a in agents}
        infos = {a: {} for a in agents}
        if end and self.winner is not self.NO_WINNER:
            infos = {a: {"winner": self.winner} for a in agents}
        gone = set(dead) | (set(self.vanish) if self.t == self.kill_at else set())
        self.agents = [] if end else [a for a in agents if a not in gone]
        return obs, rewards, terms, truncs, infos


@pytest.fixture
def battle_game():
    """The game registered for one test."""
    with temporary_game(GAME, ScriptedBattle, "a scripted battle") as name:
        yield name


def winners(name: str, episodes: int = 2, num_games: int = 2, **options) -> np.ndarray:
    """The winners of the first `episodes` episodes of every game (auto-reset between)."""
    vec = make_vec(name, num_games, **options)
    try:
        vec.reset(seed=0)
        out = []
        while len(out) < episodes:
            st = vec.step(np.zeros((vec.num_games, vec.num_slots), np.int64))
            if st.dones.any():
                assert st.dones.all()  # scripted: every game ends together
                out.append(st.winners.copy())
        return np.stack(out)
    finally:
        vec.close()


RED, BLUE, DRAW = 0, 1, -1


def test_reward_is_the_default(battle_game):
    # blue loses two of three but red lost reward every step: by reward, blue wins
    assert (winners(battle_game, killed=("blue_0", "blue_1")) == BLUE).all()
    assert (winners(battle_game, killed=("blue_0", "blue_1"), outcome="reward") == BLUE).all()
    assert (winners(battle_game, outcome="reward") == BLUE).all()


def test_survivors_counts_agents_left_at_the_end(battle_game):
    # 2 red survive, 1 blue: red wins although its reward is lower (every episode, so the
    # count starts afresh after an automatic reset)
    assert (winners(battle_game, episodes=3, killed=("blue_0", "blue_1"),
                    outcome="survivors") == RED).all()
    # nobody dies: 2 red against 3 blue
    assert (winners(battle_game, outcome="survivors") == BLUE).all()
    # an agent that leaves the game without a flag is gone too: 2 against 1
    assert (winners(battle_game, vanish=("blue_1", "blue_2"), outcome="survivors")
            == RED).all()
    # terminated at the very last step (not truncated): does not survive, 1 against 3
    assert (winners(battle_game, killed_at_end=("red_0",), outcome="survivors")
            == BLUE).all()
    # a team wiped out before the end: 2 against 0
    assert (winners(battle_game, killed=("blue_0", "blue_1", "blue_2"),
                    outcome="survivors") == RED).all()


def test_survivors_when_the_game_ends_by_its_own_rule(battle_game):
    # the game ends at step 2 terminating everyone left (magent2 when a team is wiped out):
    # the agents in the game going into that step count, 2 red against 1 blue
    assert (winners(battle_game, episodes=3, killed=("blue_0", "blue_1"), rule_end_at=2,
                    outcome="survivors") == RED).all()
    assert (winners(battle_game, killed=("blue_0", "blue_1"), rule_end_at=2) == BLUE).all()
    # nobody died before: 2 against 3
    assert (winners(battle_game, rule_end_at=2, outcome="survivors") == BLUE).all()
    # the count starts afresh every episode, and an agent that left before does not count
    assert (winners(battle_game, episodes=3, killed=("red_0", "blue_0", "blue_1"),
                    rule_end_at=3, outcome="survivors") == DRAW).all()


def test_survivors_tie_is_a_draw(battle_game):
    assert (winners(battle_game, killed=("blue_0",), outcome="survivors") == DRAW).all()
    # killed at the time limit while others are truncated does not count: 1 against 1
    assert (winners(battle_game, killed=("blue_0",), killed_at_end=("red_0", "blue_1"),
                    outcome="survivors") == DRAW).all()


def test_infos_winner_wins_over_both_rules(battle_game):
    for outcome in ("reward", "survivors"):
        assert (winners(battle_game, killed=("blue_0", "blue_1"), winner="blue",
                        outcome=outcome) == BLUE).all()
        assert (winners(battle_game, winner="red", outcome=outcome) == RED).all()
        assert (winners(battle_game, winner=None, outcome=outcome) == DRAW).all()


@pytest.mark.parametrize("bad", ["survivor", "", None, 1])
def test_bad_outcome_names_the_option_and_its_values(battle_game, bad):
    with pytest.raises(ValueError, match=r"outcome must be one of \['reward', 'survivors'\]"):
        make_vec(battle_game, 1, outcome=bad)
