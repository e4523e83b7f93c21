"""Games whose teams are not two sets of alike agents: a team of several kinds of agent (a
leader that acts differently from its soldiers), more than two teams, hundreds of one-agent
teams. Each trains, evaluates, plays in the league and draws its matches, or is refused with
an error that says what to change."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_mpe2
from gymnasium import spaces
from lightning.pytorch.callbacks import Callback
from pettingzoo import ParallelEnv

from arena.config import ConfigError, load_config
from arena.train import check_only, train
from games.vector import make_vec

SQUADS = "pettingzoo:test_team_shapes:squads"
CROWD = "pettingzoo:test_team_shapes:crowd"
WORLD_COMM = "pettingzoo:mpe2.simple_world_comm_v3:parallel_env"


class Squads(ParallelEnv):
    """Two teams of a leader (3 observations, 4 actions) and `soldiers` soldiers (5
    observations, 2 actions); whoever moves more with action 1 scores; `steps` steps."""

    metadata = {"name": "squads"}

    def __init__(self, soldiers: int = 2, steps: int = 6) -> None:
        self.possible_agents = [f"{t}_{kind}_{i}" for t in ("red", "blue")
                                for kind, n in (("leader", 1), ("soldier", soldiers))
                                for i in range(n)]
        self.teams = {t: [a for a in self.possible_agents if a.startswith(t)]
                      for t in ("red", "blue")}
        self.steps = steps

    def observation_space(self, agent):
        return spaces.Box(0.0, 1.0, (3 if "leader" in agent else 5,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(4 if "leader" in agent else 2)

    def _obs(self):
        return {a: np.full(self.observation_space(a).shape, self.t / self.steps, np.float32)
                for a in self.agents}

    def reset(self, seed=None, options=None):
        self.agents, self.t = list(self.possible_agents), 0
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        rewards = {a: float(actions.get(a, 0) == 1) for a in self.agents}
        over = self.t >= self.steps
        obs = self._obs()
        flags = {a: over for a in self.agents}
        infos = {a: {} for a in self.agents}
        if over:
            self.agents = []
        return obs, rewards, flags, {a: False for a in flags}, infos


def squads(**kwargs):
    return Squads(**kwargs)


class Crowd(Squads):
    """`n` alike agents p_0 .. p_{n-1}, each a team of its own (as in magent2 gather)."""

    def __init__(self, n: int = 40, steps: int = 4) -> None:
        self.possible_agents = [f"p_{i}" for i in range(n)]
        self.teams = None
        self.steps = steps

    def observation_space(self, agent):
        return spaces.Box(0.0, 1.0, (2,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(3)


def crowd(**kwargs):
    return Crowd(**kwargs)


class Metrics(Callback):
    def __init__(self) -> None:
        self.seen: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.seen.append(dict(module.last_metrics))
        self.learner = module


def config_file(tmp_path, game: str) -> str:
    """A user's config for `game`, as the README's "Your own game" writes one."""
    path = tmp_path / "game.yaml"
    path.write_text(f'game:\n  name: "{game}"\n  num_envs: 4\n'
                    "model: {encoder: mlp, hidden: 16, lstm_hidden: 16}\n"
                    "ppo: {chunk_len: 8, chunks_per_update: 2, update_epochs: 1}\n"
                    f"run: {{root: {tmp_path / 'runs'}, name: run}}\n")
    return str(path)


def config(tmp_path, game: str, *overrides: str):
    return load_config(config_file(tmp_path, game), list(overrides))


# ---- roles -------------------------------------------------------------------------------
def test_a_team_of_several_kinds_gets_a_role_per_kind_shared_across_teams():
    vec = make_vec(SQUADS, 2)  # the game's own teams attribute: red and blue
    try:
        assert [(r.name, r.obs_dim, r.num_actions, r.slots) for r in vec.roles] == [
            ("red-red_leader+blue-blue_leader", 3, 4, (0, 3)),
            ("red-red_soldier+blue-blue_soldier", 5, 2, (1, 2, 4, 5))]
        assert vec.team_names == ["red", "blue"]
        st = vec.reset(seed=0)
        assert st.obs["red-red_leader+blue-blue_leader"].shape == (2, 2, 3)
    finally:
        vec.close()


@needs_mpe2
def test_a_team_of_a_leader_and_its_followers_is_two_roles():
    teams = {"bad": ["leadadversary_", "adversary_"], "good": "agent_"}
    vec = make_vec(WORLD_COMM, 1, teams=teams)
    try:
        assert [(r.name, r.num_actions, r.slots) for r in vec.roles] == [
            ("bad-leadadversary", 20, (0,)), ("bad-adversary", 5, (1, 2, 3)),
            ("good", 5, (4, 5))]
    finally:
        vec.close()


def test_a_role_shared_by_many_one_agent_teams_has_a_short_name():
    vec = make_vec(CROWD, 1)
    try:
        assert len(vec.team_names) == 40
        assert [r.name for r in vec.roles] == ["p_0..p_39"]
    finally:
        vec.close()


# ---- the league needs two teams ------------------------------------------------------------
def test_the_league_refuses_a_game_of_many_teams_before_writing_anything(tmp_path):
    with pytest.raises(ConfigError) as err:
        check_only(config_file(tmp_path, CROWD), [], None)
    message = str(err.value)
    assert message.startswith("league.enabled:") and "has 40" in message
    assert "p_0 (p_0)" in message and "and 36 more" in message
    assert "game.options.teams" in message and "league.enabled=false" in message
    with pytest.raises(ConfigError, match="league.enabled"):
        train(config(tmp_path, CROWD))
    assert not (tmp_path / "runs").exists()


def test_a_game_of_many_teams_trains_and_evaluates_without_the_league(tmp_path):
    """No league: every team is the learner's. The evaluation plays eval.games games per
    reference, not one per team (40 here), and seats the learner at other teams as the
    evaluations go on."""
    from arena.play.evaluate import play_references

    probe = Metrics()
    train(config(tmp_path, CROWD, "league.enabled=false", "trainer.max_updates=2",
                 "eval.every=1", "eval.games=4"), callbacks=[probe])
    assert all(0.0 <= m["eval/win_rate_vs_random"] <= 1.0 for m in probe.seen)
    learner = probe.learner
    vecs = {}
    seated = []

    class Watching:
        def __init__(self, vec):
            self.vec = vec

        def reset(self, mine):
            seated.append(np.flatnonzero(~np.asarray(mine)[0]).tolist())

        def act(self, step, episode_start, out):
            pass

    for seed in (0, 1):
        scores = play_references(learner, [("watcher", Watching)], games=4, seed=seed, vecs=vecs)
        assert scores["watcher"].shape == (4,)
    assert list(vecs) == [4]  # four games, not forty
    assert seated[0] != seated[1]  # the learner's seat moves with the seed


# ---- a team of several kinds in the league ----------------------------------------------------
@needs_mpe2
def test_a_team_of_several_kinds_trains_in_the_league_evaluates_and_draws(tmp_path):
    """simple_world_comm with its leader and adversaries as one team: three roles, snapshot
    together under one id; a game against a snapshot of the team counts in each of the
    team's pools alike. Evaluations (whose batch of games grows with the league) and match
    GIFs (mpe2 games draw text, which closing any other mpe2 game breaks) run every update."""
    probe = Metrics()
    cfg = config(tmp_path, WORLD_COMM, "game.options.teams.bad=[leadadversary_,adversary_]",
                 "game.options.teams.good=agent_", "game.options.max_cycles=8",
                 "trainer.max_updates=4", "league.snapshot_every=1", "league.latest_prob=0.0",
                 "eval.every=1", "eval.games=4", "watch.every=1", "watch.frame_every=4")
    train(cfg, callbacks=[probe])
    pools = probe.learner.pools
    assert sorted(pools) == ["bad-adversary", "bad-leadadversary", "good"]
    ids = {role: [s.id for s in pool.snapshots] for role, pool in pools.items()}
    assert ids["bad-adversary"] == ids["bad-leadadversary"] == ids["good"] != []
    games = {role: [s.games for s in pool.snapshots] for role, pool in pools.items()}
    assert games["bad-adversary"] == games["bad-leadadversary"]
    assert sum(games["bad-adversary"]) + sum(games["good"]) > 0
    assert all("watch/latest_score" in m and "eval/win_rate_vs_random" in m for m in probe.seen)


@needs_mpe2
def test_watch_draws_a_game_whose_renderer_writes_text(tmp_path, capsys):
    from arena.cli import main

    out = tmp_path / "match.gif"
    assert main(["watch", "random", "random", "--game", WORLD_COMM, "--set",
                 "max_cycles=6", "--out", str(out)]) == 0
    assert out.stat().st_size > 0
