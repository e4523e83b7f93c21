"""The PPO update as a plain function (arena/learn/update.py): called without a Trainer, it
gives exactly what the learner's update gave before it was taken out of the
LightningModule (figures recorded in tests/data/ppo_update_golden.json from that code)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from arena.config import CONFIG_DIR, load_config, to_dict
from arena.learn.learner import PPOLearner, group_module_key
from arena.learn.update import ppo_update

GOLDEN = json.loads((Path(__file__).parent / "data" / "ppo_update_golden.json").read_text())
SMALL = ["ppo.chunk_len=8", "ppo.chunks_per_update=2", "ppo.update_epochs=2",
         "ppo.num_minibatches=2", "league.enabled=false", "game.num_envs=2"]
CASES = {  # the settings the golden figures were recorded with
    "moba": (CONFIG_DIR / "default.yaml", ["game.options.max_ticks=40", "model.hidden=32",
                                           "model.lstm_hidden=32", *SMALL]),
    "simple_tag": (CONFIG_DIR / "simple_tag.yaml", ["game.options.max_cycles=10",
                                                   "model.hidden=16", "model.lstm_hidden=16",
                                                   *SMALL]),
}


def multinomial_sampler(probs, generator, device):
    """How the collector drew actions when the golden figures were recorded (the rollout is
    the update's input: the figures hold for that rollout, whatever the sampler is now)."""
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def fixed_rollout(name, monkeypatch=None):
    """Networks and one rollout, both fixed by the seeds (and, with `monkeypatch`, drawn as
    when the golden figures were recorded)."""
    path, overrides = CASES[name]
    torch.manual_seed(0)
    learner = PPOLearner(to_dict(load_config(path, overrides)))
    learner.setup("fit")
    if monkeypatch is not None:
        monkeypatch.setattr("arena.learn.rollout.sample_actions", multinomial_sampler)
    return learner, learner.collector.collect()


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_pure_update_matches_the_recorded_update(name, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as when the figures were recorded
    try:
        learner, ro = fixed_rollout(name, monkeypatch)
        cfg = learner.cfg
        policies = {g.key: learner.policy_for(g.key) for g in learner.groups}
        norms = {g.key: learner.value_norms[group_module_key(g.key)] for g in learner.groups}
        shaped = learner.shaper(ro.env_rewards, ro.events, ro.alive, ro.ticks,
                                learner.team_spirit())
        opt = torch.optim.Adam(learner.parameters(), lr=cfg.ppo.lr, eps=1e-5)
        before = {k: v.clone() for k, v in learner.state_dict().items()}
        metrics = ppo_update(learner.groups, policies, norms, ro, shaped["total"], opt,
                             ppo=cfg.ppo, gamma=learner.gamma(), lr=learner.learning_rate(),
                             generator=torch.Generator().manual_seed(cfg.run.seed + 1))
        learner.collector.close()
    finally:
        torch.set_num_threads(threads)
    golden = GOLDEN[name]
    for key, value in golden["metrics"].items():
        assert metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    state = learner.state_dict()
    for key, (total, squares) in golden["params"].items():
        v = state[key].double()
        assert float(v.sum()) == pytest.approx(total, rel=1e-5, abs=1e-6), key
        assert float(v.square().sum()) == pytest.approx(squares, rel=1e-5, abs=1e-6), key
    assert metrics["loss/optimizer_steps"] == 4.0  # 2 epochs x 2 minibatches
    changed = [k for k in state if k.startswith("policies.") and state[k].is_floating_point()
               and not torch.equal(state[k], before[k])]
    assert changed  # the weights moved


def test_a_rollout_with_nan_rewards_leaves_the_weights_alone():
    learner, ro = fixed_rollout("simple_tag")
    cfg = learner.cfg
    policies = {g.key: learner.policy_for(g.key) for g in learner.groups}
    norms = {g.key: learner.value_norms[group_module_key(g.key)] for g in learner.groups}
    rewards = np.zeros(ro.env_rewards.shape, np.float32)
    rewards[0, 0, 0] = np.nan
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    metrics = ppo_update(learner.groups, policies, norms, ro, rewards,
                         torch.optim.Adam(learner.parameters(), lr=cfg.ppo.lr), ppo=cfg.ppo,
                         gamma=0.99, lr=cfg.ppo.lr, generator=torch.Generator().manual_seed(0))
    learner.collector.close()
    assert metrics["loss/skipped_updates"] == 1.0 and metrics["loss/optimizer_steps"] == 0.0
    assert all(torch.equal(v, before[k]) for k, v in learner.state_dict().items())


def test_chunks_without_a_valid_step_are_not_replayed_and_change_nothing(monkeypatch):
    """Chunks where the agent never acted are skipped (agents/ppo.chunks_to_replay) from
    the minibatches drawn over all chunks: the update is the one that replays them all."""
    path, overrides = CASES["simple_tag"]

    def update(skip: bool):
        torch.manual_seed(0)
        learner = PPOLearner(to_dict(load_config(path, overrides)))
        learner.setup("fit")
        ro = learner.collector.collect()
        learner.collector.close()
        T = learner.cfg.ppo.chunk_len
        for d in ro.groups.values():  # the first chunk of column 0, the second of column 1
            d["valid"][:T, 0] = False
            d["valid"][T:2 * T, 1] = False
            d["obs"][:T, 0] = 1e3  # what an agent no longer in the game saw: never read
        if not skip:
            monkeypatch.setattr("arena.learn.update.chunks_to_replay", lambda mb, live: mb)
        cfg = learner.cfg
        policies = {g.key: learner.policy_for(g.key) for g in learner.groups}
        norms = {g.key: learner.value_norms[group_module_key(g.key)] for g in learner.groups}
        shaped = learner.shaper(ro.env_rewards, ro.events, ro.alive, ro.ticks, 1.0)
        opt = torch.optim.Adam(learner.parameters(), lr=cfg.ppo.lr, eps=1e-5)
        metrics = ppo_update(learner.groups, policies, norms, ro, shaped["total"], opt,
                             ppo=cfg.ppo, gamma=0.99, lr=cfg.ppo.lr,
                             generator=torch.Generator().manual_seed(1))
        monkeypatch.undo()
        chunks = sum(d["valid"].shape[1] * 2 for d in ro.groups.values())
        return metrics, learner.state_dict(), chunks, len(ro.groups)

    skipped, state, chunks, groups = update(skip=True)
    replayed, reference, _, _ = update(skip=False)
    assert skipped["loss/replayed_chunks"] == pytest.approx((chunks - 2 * groups) / chunks)
    for key in ("loss/policy_loss", "loss/value_loss", "loss/entropy", "loss/approx_kl",
                "loss/clipfrac", "loss/grad_norm"):
        assert skipped[key] == pytest.approx(replayed[key], rel=1e-5, abs=1e-7), key
    moved = 0
    for key, value in reference.items():
        if value.is_floating_point():
            torch.testing.assert_close(state[key], value, rtol=1e-5, atol=1e-6)
            moved += key.startswith("policies.")
    assert moved
