"""Rollout collection: replay fidelity, legal actions, LSTM state handling, padding slots."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

import games
from arena.config import CONFIG_DIR, load_config, to_dict
from arena.learn.learner import PPOLearner


def learner_for(config_file, *overrides, game_options=None) -> PPOLearner:
    cfg = load_config(CONFIG_DIR / config_file, list(overrides))
    if game_options is not None:
        cfg.game.options = game_options
    learner = PPOLearner(to_dict(cfg))
    learner.setup("fit")
    return learner


def chunks(x, T):
    L, n = x.shape[:2]
    K = L // T
    return x.reshape(K, T, n, *x.shape[2:]).transpose(0, 1).reshape(T, K * n, *x.shape[2:])


@pytest.mark.parametrize("config_file, overrides", [
    ("memory.yaml", ["game.num_envs=8"]),
    ("default.yaml", ["game.num_envs=4", "game.options.team_size=2", "ppo.chunk_len=8"]),
    # every game against a bot: half the rows played by bots, left out of the inference
    ("default.yaml", ["game.num_envs=4", "game.options.team_size=2", "ppo.chunk_len=8",
                      "league.bot_prob=1.0"]),
    ("default.yaml", ["game.num_envs=2", "game.options.team_size=1", "model.per_agent_weights=true"]),
    # the games' halves stepped in turn while the other half is inferred
    ("memory.yaml", ["game.num_envs=8", "game.threads=2", "game.overlap=true"]),
    ("simple_tag.yaml", ["game.num_envs=4", "game.threads=2", "game.overlap=true",
                         "game.options.max_cycles=12", "league.enabled=false"]),
])
def test_replay_reproduces_collection_time_logprobs(config_file, overrides):
    learner = learner_for(config_file, *overrides)
    T = learner.cfg.ppo.chunk_len
    for _ in range(2):  # the second rollout starts from states carried over from the first
        ro = learner.collector.collect()
        for g in learner.groups:
            d = ro.groups[g.key]
            K = d["state_h"].shape[0]
            with torch.no_grad():
                logprobs, _, values = learner.policy_for(g.key).evaluate_actions(
                    chunks(d["obs"], T), (d["state_h"].reshape(-1, d["state_h"].shape[-1]),
                                          d["state_c"].reshape(-1, d["state_c"].shape[-1])),
                    chunks(d["episode_starts"], T), chunks(d["action_mask"], T),
                    chunks(d["actions"], T))
            torch.testing.assert_close(logprobs, chunks(d["logprobs"], T), atol=1e-5, rtol=0)
            torch.testing.assert_close(values, chunks(d["values"], T), atol=1e-5, rtol=0)
            assert K == learner.cfg.ppo.chunks_per_update
            # played under inference_mode, yet ordinary tensors: changeable in place
            assert not any(v.is_inference() for v in d.values())
            # every collected action was legal under its mask
            taken = d["action_mask"].gather(-1, d["actions"].unsqueeze(-1)).squeeze(-1)
            assert taken[d["valid"]].all()


def test_lstm_state_is_reset_at_episode_start_and_stored_per_chunk():
    learner = learner_for("memory.yaml", "game.num_envs=4", "ppo.chunk_len=4",
                          "ppo.chunks_per_update=4")  # episodes of 8 steps, rollouts of 16
    ro = learner.collector.collect()
    (g,) = learner.groups
    d = ro.groups[g.key]
    starts = d["episode_starts"]
    # memory episodes are 8 steps: starts at t = 0 and 8 of the first rollout
    assert starts[0].all() and starts[8].all() and not starts[1:8].any()
    # a chunk that begins an episode stores a zero state; the others carry the LSTM state
    assert torch.count_nonzero(d["state_h"][0]) == 0 and torch.count_nonzero(d["state_h"][2]) == 0
    assert torch.count_nonzero(d["state_h"][1]) > 0 and torch.count_nonzero(d["state_h"][3]) > 0
    # the stored mid-episode state is exactly what stepping the first chunk produced
    policy = learner.policy_for(g.key)
    with torch.no_grad():
        state = policy.initial_state(d["obs"].shape[1])
        for t in range(4):
            _, _, state = policy.step(d["obs"][t], state, starts[t], d["action_mask"][t])
    torch.testing.assert_close(state[0], d["state_h"][1], atol=1e-6, rtol=0)
    torch.testing.assert_close(state[1], d["state_c"][1], atol=1e-6, rtol=0)


class LeavingGame(ParallelEnv):
    """Two teams of two; `red_1` leaves the game for good after 3 steps; 10-step episodes."""

    metadata = {"name": "leaving_v0"}

    def __init__(self):
        self.possible_agents = ["red_0", "red_1", "blue_0", "blue_1"]
        self.teams = {"red": ["red_0", "red_1"], "blue": ["blue_0", "blue_1"]}
        self.agent_team = {a: t for t, agents in self.teams.items() for a in agents}
        self._obs = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self._act = spaces.Discrete(2)

    def observation_space(self, agent):
        return self._obs

    def action_space(self, agent):
        return self._act

    def _observe(self):
        return {a: np.array([self.t / 10, i, 1.0], np.float32) for i, a in enumerate(self.agents)}

    def reset(self, seed=None, options=None):
        self.t = 0
        self.agents = list(self.possible_agents)
        return self._observe(), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        rewards = {a: float(actions[a]) for a in self.agents}
        end = self.t >= 10
        terms = {a: end or (a == "red_1" and self.t == 3) for a in self.agents}
        truncs = {a: False for a in self.agents}
        infos = {a: {} for a in self.agents}
        self.agents = [a for a in self.agents if not terms[a]]
        return self._observe(), rewards, terms, truncs, infos


def test_agents_that_leave_produce_no_training_data():
    games.register("leaving", LeavingGame, "a test game whose agents leave", overwrite=True)
    learner = learner_for("memory.yaml", "game.name=leaving", "game.num_envs=3",
                          "ppo.chunk_len=5", "ppo.chunks_per_update=4", game_options={})
    ro = learner.collector.collect()
    (g,) = learner.groups
    d = ro.groups[g.key]
    B = 3
    slot = learner.slot_agents.index("red_1")
    col = list(g.slots).index(slot)
    rows = np.arange(B) * len(g.slots) + col
    valid = d["valid"][:, rows]  # (20, B)
    dones = d["agent_dones"][:, rows]
    # episode of 10 steps: red_1 acts at t = 0, 1, 2 and leaves; back at the next episode
    expected = np.zeros(20, bool)
    expected[[0, 1, 2, 10, 11, 12]] = True
    assert (valid.numpy() == expected[:, None]).all()
    assert dones[2].all() and dones[12].all() and not dones[3:10].any()
    # the other agents play all 10 steps
    other = np.arange(B) * len(g.slots) + list(g.slots).index(learner.slot_agents.index("red_0"))
    assert d["valid"][:, other].all()
    assert ro.active.sum() == B * (3 * 20 + 6)


@pytest.mark.parametrize("overrides", [[], ["game.threads=2", "game.overlap=true"]])
def test_the_games_share_of_a_rollout_is_measured(overrides):
    """perf/game_seconds: the seconds of the last rollout spent in the games' own steps
    (waiting for them, with overlap), measured on a game slowed down by a known amount."""
    import time

    learner = learner_for("memory.yaml", "game.num_envs=4", *overrides)
    collector = learner.collector
    collector.collect()  # started, compiled
    vec = collector.vec
    slow = 0.004  # seconds added to every step of the games (each half's, with overlap)
    if overrides:
        wait = vec.wait
        vec.wait = lambda games=None: (time.sleep(slow), wait(games))[1]
    else:
        step = vec.step
        vec.step = lambda actions: (time.sleep(slow), step(actions))[1]
    try:
        ro = collector.collect()
        seconds = collector.metrics()["perf/game_seconds"]
    finally:
        collector.close()
    waits = collector.length * (2 if overrides else 1)
    assert waits * slow <= seconds < ro.seconds
    assert learner.collector.metrics()["perf/game_seconds"] == seconds


def test_host_staging_copies_nothing_on_the_cpu():
    """Off the GPU a step's rows reach the network as a view of the game's own buffer; the
    pinned buffers (and benchmarks/staging_check.py, which checks them) are for CUDA."""
    from arena.play.runner import HostStaging

    staging = HostStaging("cpu")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = staging.to_device("obs", x)
    assert not staging.pinned and t.data_ptr() == x.ctypes.data
    assert torch.equal(staging.to_device("obs", x[:, [0, 2]]), torch.from_numpy(x[:, [0, 2]]))


def test_an_overlapped_rollout_is_the_same_whatever_the_number_of_workers():
    """The overlap's random draws follow its halves, so the halves are the same games
    (0..B/2-1 and B/2..B-1) with 2, 3 or 4 worker processes: the same rollouts per seed."""
    def rollouts(threads: int):
        torch.manual_seed(0)  # the same initial networks (train() seeds them from run.seed)
        learner = learner_for("simple_tag.yaml", "game.options.max_cycles=12",
                              "game.num_envs=6", f"game.threads={threads}",
                              "game.overlap=true", "league.enabled=false")
        assert learner.collector.vec.game_groups(2) == [slice(0, 3), slice(3, 6)]
        try:
            return [learner.collector.collect() for _ in range(2)]
        finally:
            learner.collector.close()

    first = rollouts(2)
    for threads in (3, 4):
        for a, b in zip(first, rollouts(threads)):
            for key, fields in a.groups.items():
                for name, value in fields.items():
                    assert torch.equal(value, b.groups[key][name]), (threads, key, name)
            np.testing.assert_array_equal(a.env_rewards, b.env_rewards)
            np.testing.assert_array_equal(a.active, b.active)


@pytest.mark.parametrize("config_file, overrides", [
    ("simple_tag.yaml", ["game.options.max_cycles=12"]),  # time-limit cuts, two roles
    ("connect_four.yaml", []),  # turn-based
])
def test_an_overlapped_rollout_is_what_its_games_make_of_its_actions(config_file, overrides):
    """With game.overlap the games' halves step in turn while the other half is inferred.
    Replaying the recorded actions in one in-process batch gives, step by step, the
    observations, who acts, rewards, time-limit cuts and game ends the rollout recorded."""
    from games.vector import make_vec

    learner = learner_for(config_file, *overrides, "game.num_envs=6", "game.threads=2",
                          "game.overlap=true", "league.enabled=false")
    vec = learner.collector.vec
    assert type(vec).__name__ == "ProcVec" and learner.collector.overlap
    cfg = learner.cfg
    replay = make_vec(cfg.game.name, 6, **cfg.game.options)
    step = replay.reset(seed=learner.collector.seed)
    actions = np.zeros((6, replay.num_slots), np.int64)
    ended = cuts = 0
    try:
        for _ in range(2):
            ended_before = ended
            ro = learner.collector.collect()
            d = {g.key: {k: v.numpy() for k, v in ro.groups[g.key].items()}
                 for g in learner.groups}
            for t in range(ro.active.shape[0]):
                np.testing.assert_array_equal(ro.active[t], step.next_active)
                for g in learner.groups:
                    obs = step.obs[g.role.name][:, list(g.role_columns)]
                    np.testing.assert_array_equal(d[g.key]["obs"][t],
                                                  obs.reshape(-1, obs.shape[-1]))
                    actions[:, list(g.slots)] = d[g.key]["actions"][t].reshape(6, len(g.slots))
                step = replay.step(actions)
                np.testing.assert_array_equal(ro.env_rewards[t], step.rewards)
                for g in learner.groups:
                    cut = step.truncated[:, list(g.slots)].reshape(-1)
                    np.testing.assert_array_equal(d[g.key]["truncated"][t], cut)
                ended += int(step.dones.sum())
                cuts += int(step.truncated.sum())
            assert len(ro.episodes["games"]) == ended - ended_before  # every game end, once
        assert ended > 0 and (cuts > 0 or config_file == "connect_four.yaml")
    finally:
        replay.close()
        learner.collector.close()


@pytest.mark.parametrize("config_file, overrides", [
    ("memory.yaml", ["game.num_envs=8"]),
    ("default.yaml", ["game.num_envs=4", "game.options.team_size=2", "ppo.chunk_len=8",
                      "game.options.max_ticks=12"]),
    ("connect_four.yaml", ["game.num_envs=4"]),  # turn-based: most rows wait at each step
    ("simple_tag.yaml", ["game.num_envs=4", "game.threads=2", "game.overlap=true",
                         "game.options.max_cycles=12", "league.enabled=false"]),
    ("default.yaml", ["league.bot_prob=0.0", "game.options.max_ticks=10",
                      "game.options.team_size=1", "game.num_envs=8", "ppo.chunk_len=4",
                      "league.main_exploiters=1", "league.league_exploiters=1",
                      "league.exploiter_games=2"]),  # several learning agents' blocks
])
def test_the_fields_left_unzeroed_are_written_in_full(config_file, overrides, tmp_path,
                                                      monkeypatch):
    """The collector does not zero the buffers it fills at every step (arena.learn.rollout.
    EVERY_STEP_FIELDS): two collections from the same seed, one into buffers first filled
    with ones and one into buffers filled with zeros, record the same rollout."""
    import arena.learn.rollout as R

    real = R.group_buffers

    def rollout_with(fill: int):
        def prefilled(spec, device, fields=tuple(R.GROUP_FIELDS), unset=()):
            bufs = real(spec, device, fields, unset)
            for d in bufs.values():
                for name in unset:
                    d[name].fill_(fill)
            return bufs

        monkeypatch.setattr(R, "group_buffers", prefilled)
        torch.manual_seed(0)
        cfg = load_config(CONFIG_DIR / config_file, overrides)
        learner = PPOLearner(to_dict(cfg))
        learner.run_dir = tmp_path / f"fill{fill}"
        learner.setup("fit")
        try:
            return [learner.collector.collect() for _ in range(2)]
        finally:
            learner.collector.close()

    ones, zeros = rollout_with(1), rollout_with(0)
    assert R.EVERY_STEP_FIELDS
    for a, b in zip(ones, zeros):
        for key, fields in a.groups.items():
            for name in R.EVERY_STEP_FIELDS:
                assert torch.equal(fields[name], b.groups[key][name]), (key, name)


def test_overlap_needs_two_games_in_worker_processes():
    from arena.config import ConfigError
    from arena.learn.networks import build_policy, policy_groups
    from arena.learn.rollout import Collector, collection_vec

    for bad in (["game.threads=1"], ["game.threads=2", "game.num_envs=1"]):
        with pytest.raises(ConfigError, match=r"game.overlap: expected false unless "
                                              r"game.threads >= 2 and game.num_envs >= 2"):
            load_config(CONFIG_DIR / "memory.yaml", ["game.overlap=true", *bad])
    # a remote actor's own game count (actors.num_envs) can still be 1: the collector says so
    cfg = load_config(CONFIG_DIR / "memory.yaml", ["game.overlap=true", "game.threads=2",
                                                    "model.hidden=8", "model.lstm_hidden=8"])
    vec = collection_vec(cfg, 1)
    groups = policy_groups(vec, False)
    policies = {g.key: build_policy(g.role, cfg) for g in groups}
    collector = Collector(vec, policies, groups, chunk_len=4, num_chunks=1, seed=0, overlap=True)
    try:
        with pytest.raises(ValueError, match="needs 2 or more games stepped in worker processes"):
            collector.collect()
    finally:
        collector.close()
