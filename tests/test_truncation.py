"""A time-limit cut is not the end of a return: the collector bootstraps it from V(final obs).

A two-agent team earns +1 every step and is cut off by a time limit every `max_cycles`
steps; nothing in its observation tells the time. Under bootstrapping its true value is
1 / (1 - gamma) at every step; treating the cut as terminal makes the value target the
average of partial discounted sums instead.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import temporary_game
from gymnasium import spaces
from pettingzoo import ParallelEnv

from agents.policy import RecurrentPolicy
from arena.checkpoints import load_learner
from arena.config import CONFIG_DIR, load_config
from arena.learn.learner import group_module_key
from arena.learn.networks import policy_groups
from arena.learn.rollout import Collector
from arena.train import train
from games.vector import make_vec

GAME = "test_time_limit"


class TimeLimitGame(ParallelEnv):
    """One team ("runners") of two; Discrete(2) actions that change nothing; +1 per agent
    per step. After `max_cycles` steps the episode ends: the agents named in `terminated`
    are terminated, the others truncated. The observation is the constant [1], or
    [1, t / max_cycles] with `timed`."""

    metadata = {"name": "time_limit_v0"}

    def __init__(self, max_cycles: int = 8, terminated: tuple[str, ...] = (),
                 timed: bool = False):
        self.max_cycles, self.terminated, self.timed = max_cycles, tuple(terminated), timed
        self.possible_agents = ["runner_0", "runner_1"]
        self.teams = {"runners": list(self.possible_agents)}
        self.agent_team = {a: "runners" for a in self.possible_agents}
        self._obs_space = spaces.Box(0.0, 1.0, (2 if timed else 1,), np.float32)
        self._act_space = spaces.Discrete(2)

    def observation_space(self, agent):
        return self._obs_space

    def action_space(self, agent):
        return self._act_space

    def _observe(self):
        o = [1.0, self.t / self.max_cycles] if self.timed else [1.0]
        return {a: np.array(o, np.float32) for a in self.agents}

    def reset(self, seed=None, options=None):
        self.t = 0
        self.agents = list(self.possible_agents)
        return self._observe(), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        end = self.t >= self.max_cycles
        obs = self._observe()
        rewards = {a: 1.0 for a in self.agents}
        terms = {a: end and a in self.terminated for a in self.agents}
        truncs = {a: end and a not in self.terminated for a in self.agents}
        infos = {a: {} for a in self.agents}
        if end:
            self.agents = []
        return obs, rewards, terms, truncs, infos


@pytest.fixture
def time_limit_game():
    """The game registered for one test."""
    with temporary_game(GAME, TimeLimitGame, "a test game cut off by a time limit") as name:
        yield name


def collect(game: str, num_games: int, chunk_len: int, num_chunks: int, rollouts: int,
            **options):
    torch.manual_seed(0)
    vec = make_vec(game, num_games, **options)
    (group,) = policy_groups(vec, per_agent_weights=False)
    policy = RecurrentPolicy(group.role.obs_dim, group.role.num_actions, hidden=16,
                             lstm_hidden=16, normalize_obs=False)
    collector = Collector(vec, {group.key: policy}, [group], chunk_len, num_chunks, seed=0)
    return policy, [collector.collect() for _ in range(rollouts)], group.key


# ---- (a) the collector ------------------------------------------------------------------

@pytest.mark.parametrize("terminated", [(), ("runner_1",)])
def test_a_cut_is_bootstrapped_from_the_value_of_the_final_observation(time_limit_game,
                                                                       terminated):
    # cuts at steps 4, 9, 14, 19 of the game: in chunk 1 at its start, in chunk 2 inside it,
    # and, in the second rollout, from the state carried over from the first
    cycles, T, K, B = 5, 4, 3, 3
    policy, rollouts, key = collect(time_limit_game, B, T, K, 2, max_cycles=cycles, timed=True,
                                    terminated=terminated)
    n = 2 * B  # rows are game-major: row 2b + i is runner_i of game b
    cut_rows = torch.tensor([f"runner_{i}" not in terminated for _ in range(B) for i in range(2)])
    final_obs = torch.tensor([1.0, 1.0])  # what the agents observe at the cut (t / max = 1)
    for r, ro in enumerate(rollouts):
        d = ro.groups[key]
        assert d["obs"].shape[1] == n
        ends = torch.from_numpy((np.arange(T * K) + r * T * K + 1) % cycles == 0)
        truncated = ends[:, None] & cut_rows[None, :]
        assert torch.equal(d["truncated"], truncated)
        assert torch.equal(d["agent_dones"], ends[:, None].expand(-1, n))
        assert (d["final_values"][~truncated] == 0).all()
        for t in np.flatnonzero(ends.numpy()):
            k = t // T  # replay the chunk from its stored state up to the cut
            with torch.no_grad():
                _, _, state = policy.forward_sequence(
                    d["obs"][k * T:t + 1], (d["state_h"][k], d["state_c"][k]),
                    d["episode_starts"][k * T:t + 1])
                _, expected, _ = policy.step(final_obs.expand(n, 2), state,
                                             torch.zeros(n, dtype=torch.bool))
            torch.testing.assert_close(d["final_values"][t][cut_rows], expected[cut_rows],
                                       atol=1e-5, rtol=0)
            # the value of the next episode's first observation is something else
            assert not torch.isclose(d["final_values"][t], d["values"][t + 1])[cut_rows].any()


def test_a_terminated_game_is_not_bootstrapped(time_limit_game):
    _, (ro,), key = collect(time_limit_game, 3, 4, 3, 1, max_cycles=5, timed=True,
                            terminated=("runner_0", "runner_1"))
    d = ro.groups[key]
    ends = (np.arange(12) + 1) % 5 == 0
    assert (d["agent_dones"].numpy() == ends[:, None]).all()
    assert not d["truncated"].any()
    assert (d["final_values"] == 0).all()


# ---- (b) what it changes in learning -----------------------------------------------------

GAMMA, CYCLES = 0.9, 8


def learned_values(tmp_path, name: str, *overrides: str) -> np.ndarray:
    """Train on the untimed game, cut every CYCLES steps; the value the trained policy
    predicts at each step of an episode (constant observation), in reward units."""
    cfg = load_config(CONFIG_DIR / "memory.yaml", [
        f"run.root={tmp_path}", f"run.name={name}", "run.seed=1", "game.num_envs=16",
        "model.hidden=16", "model.lstm_hidden=16", "ppo.chunk_len=8", "ppo.chunks_per_update=2",
        "ppo.num_minibatches=2", "ppo.lr=3e-3", f"gamma.start={GAMMA}", "gamma.mode=constant",
        "league.enabled=false", "eval.every=0", "trainer.max_updates=40",
        "trainer.checkpoint_every=40",
        # the clipped value loss moves a value at most vf_clip_coef per update: 40 updates
        # could not climb to 10 in reward units (value_norm false)
        "ppo.clip_vloss=false", *overrides])
    cfg.game.name = GAME
    cfg.game.options = {"max_cycles": CYCLES}
    learner = load_learner(train(cfg))
    (group,) = learner.groups
    policy = learner.policy_for(group.key)
    starts = torch.zeros(CYCLES, 1, dtype=torch.bool)
    starts[0] = True
    with torch.no_grad():
        _, values, _ = policy.forward_sequence(torch.ones(CYCLES, 1, 1),
                                               policy.initial_state(1), starts)
        if learner.cfg.ppo.value_norm:
            values = learner.value_norms[group_module_key(group.key)].denormalize(values)
    return values.squeeze(1).numpy()


@pytest.mark.parametrize("value_norm", [True, False])
def test_bootstrapping_learns_the_value_of_an_endless_stream(time_limit_game, tmp_path,
                                                            value_norm):
    values = learned_values(tmp_path, "boot", f"ppo.value_norm={str(value_norm).lower()}")
    target = 1 / (1 - GAMMA)  # 10: the cut is not the end
    assert np.all(np.abs(values - target) < 0.25 * target), values


def test_treating_the_cut_as_terminal_learns_far_less(time_limit_game, tmp_path, monkeypatch):
    monkeypatch.setattr(Collector, "_bootstrap_truncated", lambda self, *args: None)
    values = learned_values(tmp_path, "terminal")
    # the average partial sum: mean over k = 1..8 of (1 - gamma^k) / (1 - gamma), about 3.6
    partial = np.mean([(1 - GAMMA**k) / (1 - GAMMA) for k in range(1, CYCLES + 1)])
    assert abs(partial - 3.6) < 0.1
    # whether or not the LSTM learns to tell the time, the values average about that
    assert values.mean() < 6 and abs(values.mean() - partial) < 1.2, values
