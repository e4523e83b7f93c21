"""The held-out panel: the teamfighter bot, composite bot specs (per-agent mixtures and
ε-noisy bots) accepted wherever a bot name is, and the panel no training config may use."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import temporary_game

from arena.checkpoints import CheckpointError
from arena.config import CONFIG_DIR, ConfigError, load_config
from arena.play.players import MatchGame, check_fits, load_player, parse_spec
from arena.play.runner import BotSide, play_against, play_games
from games.bots import MixtureBot, NoisyBot, bot_act, team_columns
from games.moba.bots import TeamfighterBot
from games.moba.bots import make_bot as moba_bot
from games.moba.config import MobaConfig
from games.moba.layout import (
    E_ILLEGAL,
    ENTITY_FEATURES,
    GLOBAL_DIM,
    SELF_FEATURES,
    MobaLayout,
)
from games.registry import (
    BotMember,
    BotSpec,
    looks_like_bot,
    make_bot,
    make_side_bots,
    panel,
    panel_conflicts,
    parse_bot,
)
from games.vector import make_vec

LAYOUT = MobaLayout(MobaConfig())
_S = {n: i for i, n in enumerate(SELF_FEATURES)}
_E = {n: i for i, n in enumerate(ENTITY_FEATURES)}


# ---- the teamfighter ----------------------------------------------------------------------
def _observation(me=(20.0, 20.0), allies=((21.0, 20.0), (20.0, 21.0)), visible=(),
                 ability_ready=False) -> np.ndarray:
    """One hero's observation, written feature by feature: alive at `me` with full HP,
    allies alive at `allies`, and `visible` entities given as dicts (kind, pos, hp, ...)."""
    cfg, vision = LAYOUT.config, LAYOUT.config.hero_vision
    obs = np.zeros(LAYOUT.obs_dim, np.float32)
    s = GLOBAL_DIM
    me = np.asarray(me)
    for name, value in {"alive": 1, "x": me[0] / cfg.map_size, "y": me[1] / cfg.map_size,
                        "hp_frac": 1.0, "hp": 0.52, "max_hp": 0.52, "damage": 0.42,
                        "level": 1 / cfg.max_level, "ability_ready": float(ability_ready),
                        "attack_ready": 1.0}.items():
        obs[s + _S[name]] = value
    sl = LAYOUT.obs_slices

    def entity(base: int, pos, kind: str, ally: bool, hp: float, max_hp: float,
               **flags: float) -> None:
        d = np.asarray(pos) - me
        dist = float(np.hypot(*d))
        row = {"present": 1, "alive": 1, "is_ally": float(ally), "is_enemy": float(not ally),
               kind: 1, "dx": d[0] / vision, "dy": d[1] / vision, "distance": dist / vision,
               "hp_frac": hp / max_hp, "hp": hp * 0.001,
               "in_attack_range": float(dist <= cfg.hero_range),
               "in_ability_range": float(dist <= cfg.ability_range),
               "attackable": float(not ally), **flags}
        for name, value in row.items():
            obs[base + _E[name]] = value

    for k, pos in enumerate(allies):
        entity(sl["allies"].start + k * len(ENTITY_FEATURES), pos, "hero", True, 520, 520)
    for k, e in enumerate(visible):
        entity(sl["visible"].start + k * len(ENTITY_FEATURES), **e)
    return obs


def _hero(pos, hp, ally=False):
    return {"pos": pos, "kind": "hero", "ally": ally, "hp": hp, "max_hp": 520.0}


def _creep(pos, hp, ally=False):
    return {"pos": pos, "kind": "melee_creep", "ally": ally, "hp": hp, "max_hp": 550.0}


def _mask(n: int) -> np.ndarray:
    """Everything legal but buying (the hero is out on the lane, not at its base)."""
    mask = np.ones((n, LAYOUT.num_actions), np.int8)
    mask[:, LAYOUT.first_buy:LAYOUT.retreat] = 0
    return mask


def _act(bot, *obs) -> np.ndarray:
    obs = np.stack(obs)
    return bot.act(obs, _mask(len(obs)))


def test_teamfighter_attacks_the_weakest_visible_enemy_hero():
    bot = TeamfighterBot(LAYOUT)
    # three enemy heroes, the weakest neither nearest nor first; a creep weaker than all
    visible = [_creep((22.0, 22.0), 40.0), _hero((23.0, 23.0), 400.0),
               _hero((24.0, 23.5), 150.0), _hero((24.0, 26.0), 300.0)]
    weakest_last = [visible[0], visible[1], visible[3], visible[2]]
    a, b = _act(bot, _observation(visible=visible), _observation(visible=weakest_last))
    assert a == LAYOUT.first_attack + 2 and b == LAYOUT.first_attack + 3
    # with the nuke ready it casts it on that hero when in ability range
    (c,) = _act(bot, _observation(visible=visible, ability_ready=True))
    assert c == LAYOUT.first_ability + 2
    # a healthy hero 8.5 units away: the teamfighter goes for it, the pusher does not
    lone = _observation(visible=[_hero((26.0, 26.0), 500.0)])
    assert _act(bot, lone)[0] == LAYOUT.first_attack
    assert _act(moba_bot("pusher", LAYOUT), lone)[0] != LAYOUT.first_attack


def test_teamfighter_regroups_and_retreats():
    bot = TeamfighterBot(LAYOUT)
    # nothing in sight, allies 12 units up the lane: walk to them (north-east is move 2)
    far = _observation(me=(20.0, 20.0), allies=((28.0, 29.0), (29.0, 28.0)))
    low = _observation(visible=[_hero((24.0, 24.0), 50.0)])
    low[GLOBAL_DIM + _S["hp_frac"]] = 0.2  # low: home, even with a kill in reach
    assert _act(bot, far, low).tolist() == [2, LAYOUT.retreat]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_teamfighter_plays_legally_and_differently(seed):
    """In real games it never picks a masked action, and does not play like any of the other
    bots (on the same observations, each of them disagrees with it often)."""
    vec = make_vec("moba", 4, team_size=3, max_ticks=300)
    try:
        fighter = make_side_bots("moba", "teamfighter", vec, seed)
        others = {n: make_side_bots("moba", n, vec, seed)["hero"]
                  for n in ("passive", "lasthitter", "pusher")}
        seen = []

        class Watch:
            def act(self, obs, mask):
                actions = fighter["hero"].act(obs, mask)
                assert mask[np.arange(len(obs)), actions].all()
                seen.append((obs.copy(), mask.copy(), actions))
                return actions

        sides = [BotSide(vec, {"hero": Watch()}), BotSide(vec, make_side_bots(
            "moba", "pusher", vec, seed + 9))]
        result = play_games(vec, sides, np.tile([0, 1], (4, 1)), seed)
        assert result.events[..., E_ILLEGAL].sum() == 0
        obs, mask, actions = (np.concatenate(x) for x in zip(*seen))
        for name, other in others.items():
            assert (other.act(obs, mask) != actions).mean() > 0.2, name
    finally:
        vec.close()


# ---- bot specs ------------------------------------------------------------------------------
def test_parse_bot_specs():
    assert parse_bot("moba", "pusher") == BotSpec((BotMember("pusher"),))
    spec = parse_bot("moba", "pusher~0.25+lasthitter+teamfighter~1")
    assert spec.members == (BotMember("pusher", 0.25), BotMember("lasthitter"),
                            BotMember("teamfighter", 1.0))
    assert spec.is_mixture and str(spec) == "pusher~0.25+lasthitter+teamfighter~1"
    assert parse_bot("moba", "pusher~0.20") == parse_bot("moba", "pusher~0.2")
    assert parse_bot("moba", "pusher~0") == parse_bot("moba", "pusher")
    assert parse_bot("connect_four", "connect4~0.5+random").names == {"connect4", "random"}


@pytest.mark.parametrize("text,message", [
    ("superbot", "unknown bot 'superbot' for game 'moba'"),
    ("pushr~0.1", r"unknown bot 'pushr' for game 'moba' \(did you mean 'pusher'\?\)"),
    ("pusher+connect4+random", "unknown bot 'connect4'.*in bot spec"),
    ("pusher~1.5", r"epsilon of 'pusher' must be in \[0, 1\], got 1.5"),
    ("pusher~-0.1", r"must be in \[0, 1\]"),
    ("pusher~nan", r"must be in \[0, 1\]"),
    ("pusher~", "needs a number after '~'"),
    ("pusher~0.1~0.2", "needs a number after '~'"),
    ("pusher~x", "needs a number after '~'"),
    ("pusher++lasthitter", "empty member"),
    ("+pusher", "empty member"),
    ("~0.3", "empty member"),
    ("", "non-empty string"),
])
def test_parse_bot_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_bot("moba", text)


def test_mixture_needs_one_member_per_agent_of_every_team():
    vec = make_vec("moba", 1, team_size=2)
    try:
        with pytest.raises(ValueError, match="has 3, but game 'moba' has teams of radiant: 2, "
                                             "dire: 2"):
            make_side_bots("moba", "pusher+lasthitter+teamfighter", vec)
        assert set(make_side_bots("moba", "pusher+teamfighter", vec)) == {"hero"}
    finally:
        vec.close()
    mixture = MixtureBot([moba_bot("pusher", LAYOUT), moba_bot("passive", LAYOUT)])
    obs, mask = np.zeros((2, LAYOUT.obs_dim)), np.ones((2, LAYOUT.num_actions), np.int8)
    with pytest.raises(ValueError, match="needs each row's agent index"):
        mixture.act(obs, mask)
    with pytest.raises(ValueError, match="has 2 members.*agent 2"):
        mixture.act(obs, mask, agents=np.array([0, 2]))


def test_team_columns():
    assert team_columns([0, 0, 0, 1, 1, 1]).tolist() == [0, 1, 2, 0, 1, 2]
    assert team_columns([1, 0, 1, 0]).tolist() == [0, 0, 1, 1]


def _game_steps(num_games: int = 4, steps: int = 30, seed: int = 3):
    """Observations and masks of real 3v3 games played by random bots: (vec, [step, ...])."""
    vec = make_vec("moba", num_games, team_size=3, max_ticks=200)
    role = vec.roles[0]
    rand = make_bot("moba", "random", role, seed)
    step = vec.reset(seed=seed)
    out = []
    for _ in range(steps):
        obs = step.obs[role.name].reshape(-1, role.obs_dim).copy()
        mask = step.action_mask[role.name].reshape(-1, role.num_actions).copy()
        out.append((obs, mask))
        actions = rand.act(obs, mask).reshape(num_games, -1)
        step = vec.step(actions)
    return vec, out


def test_mixture_plays_each_hero_with_its_own_bot():
    vec, steps = _game_steps()
    try:
        role, seed = vec.roles[0], 5
        spec = "pusher+random+teamfighter~0.5"
        side = BotSide(vec, make_side_bots("moba", spec, vec, seed))
        side.reset()
        # the members as make_bot builds them: member k with seed + 1009 k
        members = [make_bot("moba", m, role, seed + 1009 * k)
                   for k, m in enumerate(spec.split("+"))]
        assert isinstance(members[2], NoisyBot)
        columns = np.tile(team_columns(vec.slot_team)[list(role.slots)], vec.num_games)
        assert columns.tolist()[:6] == [0, 1, 2, 0, 1, 2]
        for obs, mask in steps:
            out = np.zeros((vec.num_games, vec.num_slots), np.int64)

            class Step:
                pass

            fake = Step()
            fake.obs = {role.name: obs.reshape(vec.num_games, -1, role.obs_dim)}
            fake.action_mask = {role.name: mask.reshape(vec.num_games, -1, role.num_actions)}
            side.act(fake, None, out)
            flat = out[:, list(role.slots)].reshape(-1)
            for k, member in enumerate(members):
                rows = columns == k
                np.testing.assert_array_equal(flat[rows], member.act(obs[rows], mask[rows]))
    finally:
        vec.close()


def test_noisy_bot_epsilon_zero_is_the_base_bot_exactly():
    vec, steps = _game_steps(seed=4)
    try:
        role = vec.roles[0]
        for name in ("random", "pusher", "lasthitter"):
            noisy, base = make_bot("moba", f"{name}~0", role, 7), make_bot("moba", name, role, 7)
            for obs, mask in steps:
                np.testing.assert_array_equal(noisy.act(obs, mask), base.act(obs, mask))
        # a NoisyBot with epsilon 0 around a random bot consumes the base's stream unchanged
        wrapped = NoisyBot(make_bot("moba", "random", role, 7), 0.0, seed=7)
        base = make_bot("moba", "random", role, 7)
        for obs, mask in steps:
            np.testing.assert_array_equal(wrapped.act(obs, mask), base.act(obs, mask))
    finally:
        vec.close()


def test_noisy_bot_epsilon_one_is_uniform_over_legal_actions():
    n = 6000
    mask = np.zeros((n, LAYOUT.num_actions), np.int8)
    legal = [0, 4, 11, 20]
    mask[:, legal] = 1
    bot = make_bot("moba", "pusher~1", _role(), seed=2)
    actions = bot.act(np.zeros((n, LAYOUT.obs_dim), np.float32), mask)
    counts = np.bincount(actions, minlength=LAYOUT.num_actions)
    assert counts.sum() == counts[legal].sum() == n  # never an illegal action
    # each legal action 1500 +- 4 standard deviations (sqrt(6000 * 1/4 * 3/4) = 33.5)
    assert np.abs(counts[legal] - n / 4).max() < 4 * 33.5


def _role():
    vec = make_vec("moba", 1, team_size=3)
    vec.close()
    return vec.roles[0]


def test_noisy_bot_frequencies_at_epsilon_0_3():
    n = 8000
    obs = np.tile(_observation(visible=[_hero((24.0, 24.0), 150.0)]), (n, 1))
    pusher = moba_bot("pusher", LAYOUT)
    choice = int(pusher.act(obs[:1], _mask(1))[0])
    legal = sorted({0, 3, 30, choice})
    mask = np.zeros((n, LAYOUT.num_actions), np.int8)
    mask[:, legal] = 1
    assert (pusher.act(obs, mask) == choice).all()
    actions = make_bot("moba", "pusher~0.3", _role(), seed=11).act(obs, mask)
    freq = np.bincount(actions, minlength=LAYOUT.num_actions)[legal] / n
    expected = np.array([0.7 * (a == choice) + 0.3 / len(legal) for a in legal])
    # binomial standard deviation <= sqrt(0.25 / 8000) = 0.0056; allow 4 of them
    np.testing.assert_allclose(freq, expected, atol=0.023)
    assert freq.sum() == 1.0


def test_composite_bots_are_deterministic_per_seed():
    vec, steps = _game_steps(seed=6)
    try:
        def actions(seed):
            bot = make_side_bots("moba", "random~0.5+pusher~0.3+lasthitter", vec, seed)["hero"]
            agents = np.tile(team_columns(vec.slot_team), vec.num_games)
            return np.concatenate([bot_act(bot, o, m, agents) for o, m in steps])

        np.testing.assert_array_equal(actions(1), actions(1))
        assert (actions(1) != actions(2)).any()
    finally:
        vec.close()


# ---- everywhere a bot name is accepted ----------------------------------------------------------
def test_composite_specs_are_players(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_spec("pusher~0.2").kind == "bot"
    assert parse_spec("pusher+lasthitter+teamfighter").kind == "bot"
    assert looks_like_bot("pusher~0.2") and not looks_like_bot("runs/x@3")
    assert not looks_like_bot("model.ckpt") and not looks_like_bot("a/b+c")
    (tmp_path / "a+b").mkdir()  # a path that exists is a path
    assert parse_spec("a+b").kind == "run"
    game = MatchGame("moba", {"team_size": 3, "max_ticks": 150})
    for spec in panel("moba"):
        player = load_player(spec, game)
        check_fits(player, game)
        assert player.kind == "bot" and player.name == spec
    with pytest.raises(CheckpointError, match=r"epsilon of 'pusher' must be in \[0, 1\]"):
        load_player("pusher~2", game)
    small = MatchGame("moba", {"team_size": 2})
    with pytest.raises(CheckpointError, match="a mixture needs one bot per agent"):
        check_fits(load_player("pusher+lasthitter+teamfighter", small), small)
    # a panel member plays a match as any player does
    vec = game.vec(2)
    try:
        first = load_player("pusher+lasthitter+teamfighter", game).side(vec, seed=1)
        second = load_player("lasthitter~0.2", game).side(vec, seed=2)
        scores = play_against(vec, first, second, seed=3)
        assert scores.shape == (2,) and set(scores.tolist()) <= {0.0, 0.5, 1.0}
    finally:
        vec.close()


def test_composite_specs_in_configs_and_tournaments():
    from arena.play.tournament import entrants_from

    cfg = load_config(CONFIG_DIR / "default.yaml",
                      ["league.bots=[pusher~0.1, passive+lasthitter+pusher]",
                       "eval.bots=[random, teamfighter~0.2]"])
    assert cfg.league.bots == ["pusher~0.1", "passive+lasthitter+pusher"]
    with pytest.raises(ConfigError, match=r"league.bots: expected bots of game 'moba'.*"
                                          r"epsilon of 'pusher' must be in \[0, 1\]"):
        load_config(CONFIG_DIR / "default.yaml", ["league.bots=[pusher~3]"])
    with pytest.raises(ConfigError, match="eval.bots: .*unknown bot 'nobody'"):
        load_config(CONFIG_DIR / "default.yaml", ["eval.bots=[pusher+nobody]"])
    game = MatchGame("moba", {})
    names = [e.name for e in entrants_from(["pusher~0.2"], ["teamfighter+pusher+pusher"], game)]
    assert names == ["pusher~0.2", "teamfighter+pusher+pusher"]
    with pytest.raises(CheckpointError, match="unknown bot 'nobody'"):
        entrants_from(["nobody~0.2"], [], game)


def test_mixture_in_the_league_plays_each_hero_with_its_bot(tmp_path):
    from arena.config import to_dict
    from arena.learn.learner import PPOLearner

    cfg = load_config(CONFIG_DIR / "default.yaml", [
        "league.bot_prob=1.0", "league.bots=[passive+lasthitter+pusher]",
        "game.options.max_ticks=30", "game.num_envs=4", "ppo.chunk_len=10",
        "ppo.chunks_per_update=6", "eval.every=0", "model.hidden=32", "model.lstm_hidden=32"])
    learner = PPOLearner(to_dict(cfg))
    learner.run_dir = tmp_path
    learner.setup("fit")
    ro = learner.collector.collect()
    (g,) = learner.groups
    d = ro.groups[g.key]
    B, n = 4, len(g.slots)
    valid = d["valid"].numpy().reshape(-1, B, n)
    obs = d["obs"].numpy().reshape(-1, B, n, d["obs"].shape[-1])
    mask = d["action_mask"].numpy().reshape(-1, B, n, d["action_mask"].shape[-1])
    actions = d["actions"].numpy().reshape(-1, B, n)
    column = team_columns(learner.collector.vec.slot_team)[list(g.slots)]  # (n,)
    for k, name in enumerate(("passive", "lasthitter", "pusher")):
        rows = ~valid & (column == k)[None, None, :]
        assert rows.any()
        bot = moba_bot(name, g.role.obs_layout)
        np.testing.assert_array_equal(bot.act(obs[rows], mask[rows]), actions[rows])


# ---- the panel ------------------------------------------------------------------------------------
def test_moba_panel_is_held_out_and_varied():
    members = [parse_bot("moba", m) for m in panel("moba")]
    assert parse_bot("moba", "teamfighter") in members
    assert sum(m.is_mixture for m in members) >= 2
    assert sum(any(x.epsilon > 0 for x in m.members) and not m.is_mixture
               for m in members) >= 2
    assert all(m.names != {"random"} for m in members)
    assert panel("memory") == ()


def test_registered_panels_are_checked_and_travel():
    from games import registry

    with temporary_game("paneltest", "games.memory:MemoryGame"):
        with pytest.raises(ValueError, match="game 'paneltest': panel: unknown bot 'pusher'"):
            registry.register("paneltest", "games.memory:MemoryGame", panel=["pusher"],
                              overwrite=True)
        with pytest.raises(ValueError, match="bot names must be words"):
            registry.register("paneltest", "games.memory:MemoryGame", overwrite=True,
                              bots={"a+b": "games.bots:connect_four_bot"})
        registry.register("paneltest", "games.memory:MemoryGame", panel=["random~0.5"],
                          overwrite=True)
        entry = next(e for e in registry.registrations() if e["name"] == "paneltest")
        registry._REGISTRY.pop("paneltest")
        registry.restore([entry])
        assert panel("paneltest") == ("random~0.5",)


def test_no_config_trains_against_the_panel():
    configs = sorted(CONFIG_DIR.glob("*.yaml"))
    assert len(configs) >= 5
    for path in configs:
        raw = yaml.safe_load(path.read_text())
        cfg = load_config(path)
        bots = list(cfg.league.bots)
        assert bots == list((raw.get("league") or {}).get("bots", bots))
        assert panel_conflicts(cfg.game.name, bots) == [], path.name
    # the check itself: a league naming a member, however written, conflicts
    assert panel_conflicts("moba", ["pusher", "teamfighter"]) == ["teamfighter"]
    assert panel_conflicts("moba", ["pusher~0.20"]) == ["pusher~0.2"]


def _learning_module():
    path = Path(__file__).parent.parent / "benchmarks" / "learning.py"
    spec = importlib.util.spec_from_file_location("bench_learning", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_learning_benchmark_refuses_a_panel_member_in_the_league(capsys):
    learning = _learning_module()
    cfg = load_config(CONFIG_DIR / "default.yaml", ["league.bots=[pusher, teamfighter]"])
    with pytest.raises(SystemExit, match=r"names the held-out panel member\(s\) \['teamfighter'\]"):
        learning.held_out_panel(cfg, "default.yaml")
    assert learning.held_out_panel(load_config(CONFIG_DIR / "default.yaml"),
                                   "default.yaml") == list(panel("moba"))
    small = load_config(CONFIG_DIR / "default.yaml", ["game.options.team_size=2"])
    kept = learning.held_out_panel(small, "default.yaml")
    assert kept == [m for m in panel("moba") if not parse_bot("moba", m).is_mixture]
    assert "leaving out pusher+lasthitter+teamfighter" in capsys.readouterr().out
    assert learning.parse_target("panel:0.80:45") == ("panel", 0.8, 45.0)
    assert "panel:0.80:45" in learning.DEFAULT_TARGETS["default.yaml"]
