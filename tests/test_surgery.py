"""Surgery: growing a run's networks or its game's observation keeps what they compute."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from arena.config import CONFIG_DIR, ConfigError, load_config, to_dict
from arena.learn.surgery import (
    NEW_ACTION_BIAS,
    PolicyArch,
    SurgeryError,
    arch_metadata,
    policy_arch,
    snapshot_arch,
    snapshot_policy,
    transfer_checkpoint,
    transfer_policy,
)

torch.set_num_threads(1)

TOL = 1e-5


# ---- a hand-made architecture: names for every feature and action --------------------------
def make_arch(flat=("a", "b", "c"), slots=("ally0", "vis0", "vis1"), ent=("present", "x", "y"),
              actions=("noop", "go", "hit_0", "hit_1"), *, entity=True, hidden=8,
              lstm_hidden=6, use_lstm=True) -> PolicyArch:
    names = tuple(flat) + tuple(f"{s}/{e}" for s in slots for e in ent)
    return PolicyArch(obs_dim=len(names), num_actions=len(actions), hidden=hidden,
                      lstm_hidden=lstm_hidden, use_lstm=use_lstm,
                      entity_layout=(len(flat), len(slots), len(ent)) if entity else None,
                      feature_names=names, action_names=tuple(actions))


def trained_like(arch: PolicyArch, seed: int = 0):
    """A network with nothing at its initial value: random biases (the fresh ones are 0),
    fitted normalisers, so every tensor's placement matters."""
    torch.manual_seed(seed)
    policy = arch.build()
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.3)
        obs = torch.randn(64, arch.obs_dim) * 2 + 1
        if arch.entity_layout is not None:
            f, n, d = arch.entity_layout
            obs[:, f::d] = (torch.rand(64, n) > 0.3).float()
        policy.update_obs_norm(obs)
    return policy


def old_observations(arch: PolicyArch, T: int, N: int, gen: torch.Generator) -> torch.Tensor:
    obs = torch.randn(T, N, arch.obs_dim, generator=gen) * 2
    presence = [i for i, n in enumerate(arch.feature_names) if n.endswith("/present")]
    obs[..., presence] = (torch.rand(T, N, len(presence), generator=gen) > 0.3).float()
    return obs


def map_observations(old_obs, old: PolicyArch, new: PolicyArch, gen) -> torch.Tensor:
    """The same observations as the new game writes them: old features at their new
    places, new slots absent, every new feature random (its weights must be zero)."""
    T, N, _ = old_obs.shape
    obs = torch.randn(T, N, new.obs_dim, generator=gen) * 3
    where = {n: i for i, n in enumerate(new.feature_names)}
    for i, name in enumerate(old.feature_names):
        obs[..., where[name]] = old_obs[..., i]
    old_slots = {n.split("/")[0] for n in old.feature_names if "/" in n}
    for name, i in where.items():
        if name.endswith("/present") and name.split("/")[0] not in old_slots:
            obs[..., i] = 0.0
    return obs


def assert_same_function(old: PolicyArch, new: PolicyArch, seed: int = 0) -> None:
    """The transferred network gives the old logits and values over a multi-step sequence
    with episode starts, masks and a non-zero starting LSTM state (zero-padded)."""
    gen = torch.Generator().manual_seed(seed)
    p = trained_like(old, seed)
    q = new.build()
    q.load_state_dict(transfer_policy(p.state_dict(), old, new, q.state_dict()))
    T, N = 7, 5
    obs = old_observations(old, T, N, gen)
    starts = torch.zeros(T, N, dtype=torch.bool)
    starts[0, 1] = starts[3, 2] = starts[5, 0] = True
    mask = torch.rand(T, N, old.num_actions, generator=gen) > 0.3
    mask[..., 0] = True
    acts = [new.action_names.index(a) for a in old.action_names]
    new_mask = torch.rand(T, N, new.num_actions, generator=gen) > 0.5
    new_mask[..., acts] = mask
    h0 = (torch.randn(N, old.lstm_hidden, generator=gen), torch.randn(N, old.lstm_hidden, generator=gen))
    pad = new.lstm_hidden - old.lstm_hidden
    h0_new = tuple(torch.nn.functional.pad(x, (0, pad)) for x in h0)
    with torch.no_grad():
        l1, v1, s1 = p.forward_sequence(obs, h0, starts, mask)
        l2, v2, s2 = q.forward_sequence(map_observations(obs, old, new, gen), h0_new, starts,
                                        new_mask)
    assert (l1 - l2[..., acts]).abs().max() < TOL
    assert (v1 - v2).abs().max() < TOL
    if old.use_lstm:
        assert (s1[0] - s2[0][:, :old.lstm_hidden]).abs().max() < TOL
    added = [j for j in range(new.num_actions) if j not in acts]
    if added:
        legal = new_mask[..., added]
        assert torch.all(l2[..., added][legal] == NEW_ACTION_BIAS)
    # the change is real: the new network is bigger or reads a bigger observation
    assert sum(t.numel() for t in q.state_dict().values()) > \
        sum(t.numel() for t in p.state_dict().values()) or new.obs_dim > old.obs_dim


CHANGES = {
    "hidden": lambda entity, lstm: (make_arch(entity=entity, use_lstm=lstm),
                                    make_arch(entity=entity, use_lstm=lstm, hidden=13)),
    "lstm_hidden": lambda entity, lstm: (make_arch(entity=entity, use_lstm=lstm),
                                         make_arch(entity=entity, use_lstm=lstm, lstm_hidden=11)),
    "new_feature": lambda entity, lstm: (
        make_arch(entity=entity, use_lstm=lstm),
        make_arch(flat=("a", "new", "b", "c"), ent=("present", "x", "hp", "y"), entity=entity,
                  use_lstm=lstm)),
    "more_slots_and_actions": lambda entity, lstm: (
        make_arch(entity=entity, use_lstm=lstm),
        make_arch(slots=("ally0", "vis0", "vis1", "vis2"),
                  actions=("noop", "go", "hit_0", "hit_1", "hit_2"), entity=entity, use_lstm=lstm)),
    "team_size": lambda entity, lstm: (  # a new ally slot comes before the visible ones
        make_arch(entity=entity, use_lstm=lstm),
        make_arch(slots=("ally0", "ally1", "vis0", "vis1"), entity=entity, use_lstm=lstm)),
    "everything": lambda entity, lstm: (
        make_arch(entity=entity, use_lstm=lstm),
        make_arch(flat=("c", "a", "b", "z"), slots=("ally0", "ally1", "vis0", "vis1", "vis2"),
                  ent=("present", "y", "x", "w"), actions=("go", "noop", "x", "hit_1", "hit_0"),
                  entity=entity, use_lstm=lstm, hidden=12, lstm_hidden=9)),
}


@pytest.mark.parametrize("lstm", [True, False], ids=["lstm", "ff"])
@pytest.mark.parametrize("entity", [True, False], ids=["entity", "mlp"])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_transfer_keeps_logits_and_values(change, entity, lstm):
    old, new = CHANGES[change](entity, lstm)
    assert_same_function(old, new)


def test_without_names_the_entity_encoder_takes_more_slots_and_the_rest_is_refused():
    named = make_arch()
    old = replace(named, feature_names=None, action_names=None)
    more = make_arch(slots=("ally0", "vis0", "vis1", "vis2"))
    # entity rows share their weights: more slots need no names, the actions are the same
    q = replace(more, feature_names=None, action_names=None)
    state = transfer_policy(trained_like(old).state_dict(), old, q, q.build().state_dict())
    assert state["encoder.entity_net.0.weight"].shape == (8, 3)
    mlp_old, mlp_new = replace(old, entity_layout=None), replace(q, entity_layout=None)
    with pytest.raises(SurgeryError, match="declares no feature names"):
        transfer_policy(trained_like(mlp_old).state_dict(), mlp_old, mlp_new,
                        mlp_new.build().state_dict(), "policies.hero")
    more_actions = replace(old, num_actions=5)
    with pytest.raises(SurgeryError, match="declares no action names"):
        transfer_policy(trained_like(old).state_dict(), old, more_actions,
                        more_actions.build().state_dict())


@pytest.mark.parametrize("new, message", [
    (make_arch(hidden=4), "model.hidden shrinks from 8 to 4"),
    (make_arch(lstm_hidden=3), "model.lstm_hidden shrinks"),
    (make_arch(use_lstm=False), "model.use_lstm changes"),
    (make_arch(entity=False), "encoder changes from entity to mlp"),
    (replace(make_arch(), normalize_obs=False), "model.normalize_obs changes"),
    (make_arch(flat=("a", "c")), "global/self features of the old network are gone .*: b"),
    (make_arch(ent=("present", "x")), "entity features .* gone .*: y"),
    (make_arch(actions=("noop", "go", "hit_0")), "actions of the old network are gone .*hit_1"),
    (make_arch(ent=("x", "present", "y")), "presence flag must stay entity feature 0"),
])
def test_changes_that_cannot_keep_the_function_are_refused(new, message):
    old = make_arch()
    with pytest.raises(SurgeryError, match=message) as info:
        transfer_policy(trained_like(old).state_dict(), old, new, new.build().state_dict(),
                        "policies.hero")
    assert str(info.value).startswith("policies.hero: ")


def test_architecture_round_trips_through_json_and_bad_metadata_is_named():
    arch = make_arch()
    assert PolicyArch.from_json(json.loads(json.dumps(arch.to_json()))) == arch
    assert policy_arch(arch.build()) == replace(arch, feature_names=None, action_names=None)
    with pytest.raises(SurgeryError, match="snapshot 3: network 'hero': hidden must be an int"):
        snapshot_arch({"policies": {"hero": {**arch.to_json(), "hidden": "8"}}}, "hero",
                      "snapshot 3")
    assert snapshot_arch(None, "hero") is None and snapshot_arch({"policies": {}}, "hero") is None


# ---- whole learners and checkpoints ------------------------------------------------------------
MEMORY = ["game.options.num_cues=3", "game.options.length=4", "game.options.teams=2",
          "model.hidden=12", "model.lstm_hidden=10", "trainer.num_threads=1"]


def learner(base: str, *overrides: str):
    from arena.learn.learner import PPOLearner

    return PPOLearner(to_dict(load_config(CONFIG_DIR / base, list(overrides))))


def fake_checkpoint(old, updates: int = 3, seed: int = 0) -> dict:
    """A checkpoint of `old` as Lightning writes one, after two Adam steps on random
    gradients (so every moment is non-zero)."""
    torch.manual_seed(seed)
    opt = old.configure_optimizers()
    for _ in range(2):
        for p in old.parameters():
            p.grad = torch.randn_like(p)
        opt.step()
    for p in old.parameters():
        p.grad = None
    return {"state_dict": {k: v.clone() for k, v in old.state_dict().items()},
            "optimizer_states": [opt.state_dict()], "epoch": 0, "global_step": updates,
            "hyper_parameters": {"config": old.hparams["config"]},
            "arena": {"updates": updates, "agent_steps": 100, "signature": old.signature}}


def test_checkpoint_transfer_maps_weights_and_adam_moments_by_name():
    old = learner("memory.yaml", *MEMORY)
    new = learner("memory.yaml", *MEMORY, "model.lstm_hidden=16", "model.hidden=20")
    ckpt = fake_checkpoint(old)
    before = {k: v.clone() for k, v in ckpt["state_dict"].items()}
    surgery = transfer_checkpoint(ckpt, old, new)
    assert all(torch.equal(ckpt["state_dict"][k], v) for k, v in before.items())  # untouched
    new.load_state_dict(surgery.checkpoint["state_dict"])  # strict: every key, every shape
    assert surgery.checkpoint["hyper_parameters"]["config"]["model"]["lstm_hidden"] == 16
    assert surgery.checkpoint["arena"]["surgeries"] == [{"update": 3, "changes": surgery.changes}]
    assert any("model.lstm_hidden 10 -> 16" in c for c in surgery.changes)
    names = [n for n, _ in new.named_parameters()]
    old_opt = ckpt["optimizer_states"][0]["state"]
    old_names = [n for n, _ in old.named_parameters()]
    opt_state = surgery.checkpoint["optimizer_states"][0]
    by_name = {names[i]: s for i, s in opt_state["state"].items()}
    old_by_name = {old_names[i]: s for i, s in old_opt.items()}
    assert set(by_name) == set(old_by_name) == set(names)
    for name, s in by_name.items():
        o = old_by_name[name]
        assert torch.equal(s["step"], o["step"])
        for key in ("exp_avg", "exp_avg_sq"):
            if s[key].shape == o[key].shape:  # unchanged tensors: the same moments
                assert torch.equal(s[key], o[key]), name
            else:  # grown: the old block in place, zeros elsewhere
                block = s[key][tuple(slice(0, d) for d in o[key].shape)]
                if "lstm" in name:  # gate blocks: i, f, g, o of the old width each
                    h, H = 10, 16
                    rows = torch.cat([torch.arange(h) + k * H for k in range(4)])
                    block = s[key][rows][..., :o[key].shape[-1]]
                assert torch.equal(block, o[key]), name
                assert s[key].abs().sum() == pytest.approx(o[key].abs().sum()), name
    # the new learner's optimizer takes the state and steps
    opt = new.configure_optimizers()
    opt.load_state_dict(opt_state)
    for p in new.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    assert all(torch.isfinite(p).all() for p in new.parameters())


def moba_obs(learner, seed: int = 0, steps: int = 6) -> torch.Tensor:
    """(T, N, D) real MOBA observations of random play."""
    from games.vector import make_vec

    vec = make_vec(learner.cfg.game.name, 2, **learner.cfg.game.options)
    step = vec.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        out.append(torch.from_numpy(step.obs["hero"].reshape(-1, vec.roles[0].obs_dim).copy()))
        mask = step.action_mask["hero"]
        logits = np.where(mask, rng.random(mask.shape), -1)
        step = vec.step(logits.argmax(-1))
    vec.close()
    return torch.stack(out)


MOBA = ["model.hidden=16", "model.lstm_hidden=16", "game.options.num_visible=4",
        "game.options.team_size=2", "trainer.num_threads=1"]


@pytest.mark.parametrize("encoder", ["entity", "mlp"])
def test_moba_team_size_visible_entities_and_widths_by_the_games_feature_names(encoder):
    old = learner("default.yaml", *MOBA, f"model.encoder={encoder}")
    new = learner("default.yaml", *MOBA, f"model.encoder={encoder}", "game.options.team_size=3",
                  "game.options.num_visible=6", "model.lstm_hidden=24")
    surgery = transfer_checkpoint(fake_checkpoint(old), old, new)
    new.load_state_dict(surgery.checkpoint["state_dict"])
    assert any("4 new actions: attack_4, attack_5, ability_4, ability_5" in c for c in surgery.changes)
    assert surgery.checkpoint["arena"]["signature"] == new.signature
    (g_old,), (g_new,) = old.groups, new.groups
    a, b = policy_arch(old.policy_for(g_old.key), g_old.role), \
        policy_arch(new.policy_for(g_new.key), g_new.role)
    obs = moba_obs(old)
    T, N, _ = obs.shape
    gen = torch.Generator().manual_seed(1)
    new_obs = map_observations(obs, a, b, gen)
    starts = torch.zeros(T, N, dtype=torch.bool)
    starts[0] = True
    starts[4, 1] = True
    with torch.no_grad():
        l1, v1, _ = old.policy_for(g_old.key).forward_sequence(
            obs, old.policy_for(g_old.key).initial_state(N), starts)
        l2, v2, _ = new.policy_for(g_new.key).forward_sequence(
            new_obs, new.policy_for(g_new.key).initial_state(N), starts)
    acts = [b.action_names.index(x) for x in a.action_names]
    assert (l1 - l2[..., acts]).abs().max() < TOL and (v1 - v2).abs().max() < TOL


def test_checkpoint_refusals_name_what_differs():
    old = learner("memory.yaml", *MEMORY)
    ckpt = fake_checkpoint(old)
    cues = learner("memory.yaml", *MEMORY, "game.options.num_cues=4")
    with pytest.raises(SurgeryError, match="observation changes from 5 to 6 features and the "
                                           "game declares no feature names"):
        transfer_checkpoint(ckpt, old, cues)
    per_agent = learner("memory.yaml", *MEMORY, "model.per_agent_weights=true")
    with pytest.raises(SurgeryError, match="policy groups, model.per_agent_weights"):
        transfer_checkpoint(ckpt, old, per_agent)
    moba = learner("default.yaml", *MOBA)
    with pytest.raises(SurgeryError, match="a network cannot move to another game"):
        transfer_checkpoint(ckpt, old, moba)


# ---- snapshots -----------------------------------------------------------------------------
def test_snapshots_store_their_architecture_and_adapt_to_a_changed_observation(tmp_path):
    from league.pool import OpponentPool

    old = learner("default.yaml", *MOBA)
    (g,) = old.groups
    policy = old.policy_for(g.key)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    old.pools = {"hero": OpponentPool(tmp_path / "hero")}
    old.snapshot()
    pool = OpponentPool.open(tmp_path / "hero")
    stored = pool.load_arch(0)
    key = "hero"
    assert snapshot_arch(stored, key) == policy_arch(policy, g.role)
    assert stored == arch_metadata({key: policy_arch(policy, g.role)})
    # actors and other ranks get a snapshot's file as bytes over the control socket
    from league.pool import arch_from_bytes

    assert arch_from_bytes((tmp_path / "hero" / pool.snapshots[0].file).read_bytes(), "x") == stored
    # the game now shows more entities and has more actions; the run's networks grew
    new = learner("default.yaml", *MOBA, "game.options.num_visible=6", "model.hidden=32")
    (g_new,) = new.groups
    weights = {k.split(".", 2)[2]: v for k, v in pool.load_weights(0).items()}
    frozen = snapshot_policy(weights, snapshot_arch(stored, key), g_new.role,
                             lambda: new.policy_for(g_new.key))
    assert frozen.encoder.out_dim == 16 and frozen.obs_dim == g_new.role.obs_dim
    obs = moba_obs(old, steps=3)
    gen = torch.Generator().manual_seed(2)
    a, b = policy_arch(policy, g.role), policy_arch(frozen, g_new.role)
    T, N, _ = obs.shape
    starts = torch.ones(T, N, dtype=torch.bool)
    with torch.no_grad():
        l1, v1, _ = policy.forward_sequence(obs, policy.initial_state(N), starts)
        l2, v2, _ = frozen.forward_sequence(map_observations(obs, a, b, gen),
                                            frozen.initial_state(N), starts)
    acts = [b.action_names.index(x) for x in a.action_names]
    assert (l1 - l2[..., acts]).abs().max() < TOL and (v1 - v2).abs().max() < TOL
    # a snapshot written before architectures were stored: the current config's network ...
    current = snapshot_policy(weights, None, g.role, lambda: old.policy_for(g.key))
    assert current is old.policy_for(g.key)
    # ... or, once the run's networks grew, its sizes read off its weights
    grown = learner("default.yaml", *MOBA, "model.lstm_hidden=24")
    legacy = snapshot_policy(weights, None, g.role, lambda: grown.policy_for(g.key))
    assert legacy.lstm_hidden == 16 and legacy is not grown.policy_for(g.key)
    with torch.no_grad():
        l3, v3, _ = legacy.forward_sequence(obs, legacy.initial_state(N), starts)
    assert (l1 - l3).abs().max() < TOL and (v1 - v3).abs().max() < TOL


def test_train_refuses_another_game_before_building_it(tmp_path):
    from arena.train import _plan_surgery

    old = learner("memory.yaml", *MEMORY)
    moba = learner("default.yaml", *MOBA)
    with pytest.raises(ConfigError, match="trained on 'memory': a run cannot change its game"):
        _plan_surgery(fake_checkpoint(old), tmp_path / "last.ckpt", moba, tmp_path)


# ---- end to end ------------------------------------------------------------------------------
E2E = [*MEMORY, "game.num_envs=4", "ppo.chunk_len=4", "ppo.chunks_per_update=2",
       "ppo.update_epochs=1", "ppo.num_minibatches=1", "league.enabled=true",
       "league.snapshot_every=1", "league.latest_prob=0.0", "league.bot_prob=0.0",
       "trainer.max_updates=2", "trainer.checkpoint_every=2", "eval.every=0", "watch.every=0"]


def test_resume_checks_write_the_transferred_checkpoint_beside_the_old_one(tmp_path):
    """The resume path without training: what the end-to-end test below cannot see."""
    from arena.checkpoints import latest_in_run, read_checkpoint
    from arena.train import _check_resume_checkpoint, _write_surgery_checkpoint

    old = learner("memory.yaml", *MEMORY)
    (tmp_path / "checkpoints").mkdir()
    last = tmp_path / "checkpoints" / "last.ckpt"
    torch.save(fake_checkpoint(old), last)
    saved = last.read_bytes()
    same = learner("memory.yaml", *MEMORY)
    assert _check_resume_checkpoint(last, same, tmp_path) == (3, None)  # nothing to do
    new = learner("memory.yaml", *MEMORY, "model.hidden=16")
    done, surgery = _check_resume_checkpoint(last, new, tmp_path)
    assert done == 3 and surgery is not None
    assert torch.equal(new.state_dict()["policies.red+blue.encoder.net.2.weight"][:12, :12],
                       old.state_dict()["policies.red+blue.encoder.net.2.weight"])
    first = _write_surgery_checkpoint(tmp_path, surgery)
    second = _write_surgery_checkpoint(tmp_path, surgery)  # never over an existing file
    assert (first.name, second.name) == ("surgery-000003.ckpt", "surgery-000003-2.ckpt")
    assert last.read_bytes() == saved
    assert latest_in_run(tmp_path) == second  # what the resume continues from
    assert read_checkpoint(first)["hyper_parameters"]["config"]["model"]["hidden"] == 16
    shrunk = learner("memory.yaml", *MEMORY, "model.hidden=8")
    with pytest.raises(ConfigError, match="config.yaml \\(with the overrides given\\) cannot "
                                          "continue last.ckpt .*model.hidden shrinks from 12 to 8"):
        _check_resume_checkpoint(last, shrunk, tmp_path)


def test_resume_with_a_wider_lstm_continues_the_run_and_old_snapshots_still_play(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from arena.checkpoints import read_checkpoint
    from arena.cli import main
    from arena.play.players import MatchGame, load_player
    from arena.play.runner import play_against
    from arena.train import check_only, train

    run = train(load_config(CONFIG_DIR / "memory.yaml",
                            [*E2E, f"run.root={tmp_path}", "run.name=s"]))
    old_bytes = (run / "checkpoints" / "last.ckpt").read_bytes()
    summary = check_only(None, ["model.lstm_hidden=16", "trainer.max_updates=4"], str(run))
    assert "through surgery" in summary and "model.lstm_hidden 10 -> 16" in summary
    assert not (run / "checkpoints" / "surgery-000002.ckpt").exists()  # --check writes nothing
    assert main(["train", "--resume", str(run), "model.lstm_hidden=16",
                 "trainer.max_updates=4"]) == 0
    surgery = read_checkpoint(run / "checkpoints" / "surgery-000002.ckpt")
    assert surgery["arena"]["updates"] == 2 and surgery["arena"]["surgeries"][0]["update"] == 2
    assert read_checkpoint(run / "checkpoints" / "update-000002.ckpt")["hyper_parameters"][
        "config"]["model"]["lstm_hidden"] == 10  # the old checkpoint is still there, as it was
    latest = read_checkpoint(run)
    assert latest["arena"]["updates"] == 4  # training went on from update 2
    assert latest["state_dict"]["policies.red+blue.lstm.weight_hh_l0"].shape == (64, 16)
    assert latest["arena"]["surgeries"] == surgery["arena"]["surgeries"]
    assert old_bytes != (run / "checkpoints" / "last.ckpt").read_bytes()
    assert "lstm_hidden: 16" in (run / "config.yaml").read_text()
    history = [json.loads(line) for line in (run / "config_history.jsonl").read_text().splitlines()]
    assert [(h["how"], h["update"]) for h in history] == [("new", 0), ("surgery", 2)]
    # the surgery's checkpoints resume as usual
    assert main(["train", "--resume", str(run), "trainer.max_updates=5"]) == 0
    assert read_checkpoint(run)["arena"]["updates"] == 5
    # snapshots 0 and 1 were taken before the surgery: their own LSTM width, and they play
    game = MatchGame("memory", load_config(CONFIG_DIR / "memory.yaml", MEMORY).game.options)
    past = load_player(f"{run}@0", game)
    (net,) = past.policies.values()
    assert net.lstm_hidden == 10
    now = load_player(str(run), game)
    assert next(iter(now.policies.values())).lstm_hidden == 16
    vec = game.vec(4)
    scores = play_against(vec, now.side(vec, 1), past.side(vec, 2), seed=3)
    vec.close()
    assert scores.shape == (4,)
    pool = json.loads((run / "league" / "red+blue" / "pool.json").read_text())
    assert [s["update"] for s in pool["snapshots"]] == [1, 2, 3, 4, 5]
    assert sum(s["games"] for s in pool["snapshots"][:2]) > 0  # old snapshots played on
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    assert [(s.step, s.value) for s in acc.Scalars("surgery/count")] == [(2, 1.0)]
    assert any(tag.startswith("surgery") for tag in acc.Tags()["tensors"])
