"""Typed run configuration: YAML files in configs/ plus dotted overrides from the command line.

The schema is a tree of dataclasses; OmegaConf merges a YAML file and `key=value`
overrides onto it, so a misspelt key or a value of the wrong type is caught before a run
starts, with the key, where it came from, and the closest valid key in the message.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from games.files import atomic_write_bytes

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


@dataclass
class RunConfig:
    name: Optional[str] = None  # default: <game>-<date>-<time>
    root: str = "runs"
    seed: int = 0


@dataclass
class GameConfig:
    name: str = "moba"
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the game
    num_envs: int = 32  # games stepped together by one collector


@dataclass
class ModelConfig:
    encoder: str = "auto"  # auto (entity encoder for the MOBA, else mlp) | mlp | entity
    hidden: int = 128
    lstm_hidden: int = 128
    use_lstm: bool = True
    per_agent_weights: bool = False  # one network per agent slot instead of one per role
    normalize_obs: bool = True


@dataclass
class PPOConfig:
    lr: float = 3e-4
    anneal_lr: bool = False
    gae_lambda: float = 0.95
    chunk_len: int = 16  # T: steps per trajectory chunk (truncated BPTT length)
    chunks_per_update: int = 4  # rollout length per game = chunk_len * chunks_per_update
    update_epochs: int = 4
    num_minibatches: int = 4
    clip_coef: float = 0.2
    clip_vloss: bool = True
    vf_clip_coef: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: Optional[float] = None
    norm_adv: bool = True
    value_norm: bool = True


@dataclass
class GammaConfig:
    """Discount schedule (league/schedule.py): OpenAI Five annealed 0.998 -> 0.9997."""

    start: float = 0.998
    end: float = 0.9997
    anneal_updates: int = 5000
    mode: str = "horizon"  # horizon (linear in 1/(1-gamma)) | linear | constant (= start)


@dataclass
class LeagueConfig:
    """Opponents from past selves (league/pool.py): the latest policy with probability
    latest_prob, else a snapshot sampled by quality score (or PFSP). With bot_prob > 0
    a game faces one of the scripted `bots` (MOBA only) instead, drawn uniformly."""

    enabled: bool = True
    latest_prob: float = 0.8
    bot_prob: float = 0.0
    bots: list[str] = field(default_factory=list)
    snapshot_every: int = 10  # updates
    sampler: str = "quality"  # quality | pfsp
    eta: float = 0.01  # quality-score step (OpenAI Five)
    pfsp_weighting: str = "hard"  # hard: (1-x)^p | var: x(1-x)
    pfsp_p: float = 2.0
    max_snapshots: Optional[int] = None


@dataclass
class RewardConfig:
    """Training reward = env_weight * the game's reward + sum_k weights[k] * event_k, then
    team spirit and zero-sum (league/shaping.py)."""

    env_weight: float = 1.0
    weights: dict[str, float] = field(default_factory=dict)
    team_spirit_start: float = 0.0
    team_spirit_end: float = 0.0
    team_spirit_anneal_updates: int = 0
    zero_sum: bool = False
    time_decay_ticks: Optional[float] = None  # OpenAI Five: 0.6 ** (t / T0) on shaped terms


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    precision: str = "32-true"
    max_updates: int = 2000
    max_time: Optional[str] = None  # "DD:HH:MM:SS", stops cleanly when reached
    checkpoint_every: int = 25  # updates
    log_every: int = 1
    num_threads: Optional[int] = None  # torch intra-op threads; None: leave as is


@dataclass
class EvalConfig:
    every: int = 25  # updates; 0 disables
    games: int = 32
    bots: list[str] = field(default_factory=lambda: ["random", "passive", "lasthitter", "pusher"])


@dataclass
class WatchConfig:
    """A match of the latest policy against a league opponent, logged to TensorBoard as an
    animation every `every` updates (MOBA only; 0 disables)."""

    every: int = 0
    view: Optional[str] = None  # None: full view; radiant | dire: that team's fog of war
    frame_every: int = 4  # keep every k-th tick as a frame
    fps: int = 10
    max_ticks: Optional[int] = None  # shorter matches for smaller GIFs; None: the game's


@dataclass
class ActorsConfig:
    """Rollout collection outside the learner (arena/actors.py): actor processes step their
    own games with CPU copies of the policies and push rollouts over pyzmq.

    num_workers 0 with listen false keeps collection in the learner's process."""

    num_workers: int = 0  # actor processes started (and restarted) by each learner rank
    listen: bool = False  # serve actors even with num_workers 0 (`arena actor --connect`)
    host: str = "127.0.0.1"  # interface the learner binds; 0.0.0.0 for actors on other hosts
    port: int = 0  # control port actors connect to (0: any free port); rank r uses port + r
    num_envs: Optional[int] = None  # games per actor; None: game.num_envs
    rollouts_per_update: Optional[int] = None  # None: max(num_workers, 1)
    max_staleness: int = 4  # rollouts made with weights older than this many updates are dropped
    queue: int = 16  # high-water mark of the learner's rollout queue (messages)
    timeout_s: float = 300.0  # no rollout (learner) or no weights (actor) for this long: stop
    threads: int = 1  # torch threads in each actor process
    curve_keys: Optional[str] = None  # directory from `arena keys DIR`: CURVE required


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    game: GameConfig = field(default_factory=GameConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    gamma: GammaConfig = field(default_factory=GammaConfig)
    league: LeagueConfig = field(default_factory=LeagueConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    actors: ActorsConfig = field(default_factory=ActorsConfig)

    def __post_init__(self) -> None:
        _check(self)


def _check(c: Config) -> None:
    from games.moba.bots import BOT_NAMES

    def need(ok: bool, key: str, expected: str, value: Any) -> None:
        if not ok:
            raise ConfigError(f"{key}: expected {expected}, got {value!r}")

    p, t = c.ppo, c.trainer
    need(c.game.num_envs >= 1, "game.num_envs", "an int >= 1", c.game.num_envs)
    need(c.model.encoder in ("auto", "mlp", "entity"), "model.encoder", "auto, mlp or entity",
         c.model.encoder)
    for key in ("hidden", "lstm_hidden"):
        need(getattr(c.model, key) >= 1, f"model.{key}", "an int >= 1", getattr(c.model, key))
    need(p.lr > 0, "ppo.lr", "a positive number", p.lr)
    gm = c.gamma
    for key in ("start", "end"):
        need(0 < getattr(gm, key) < 1, f"gamma.{key}", "a number in (0, 1)", getattr(gm, key))
    need(gm.mode in ("horizon", "linear", "constant"), "gamma.mode",
         "horizon, linear or constant", gm.mode)
    lg = c.league
    need(0.0 <= lg.latest_prob <= 1.0, "league.latest_prob", "a number in [0, 1]", lg.latest_prob)
    a = c.actors
    need(a.num_workers >= 0, "actors.num_workers", "an int >= 0", a.num_workers)
    need(0 <= a.port < 65536, "actors.port", "a port number (0: any free port)", a.port)
    need(a.num_envs is None or a.num_envs >= 1, "actors.num_envs", "None or an int >= 1",
         a.num_envs)
    need(a.rollouts_per_update is None or a.rollouts_per_update >= 1,
         "actors.rollouts_per_update", "None or an int >= 1", a.rollouts_per_update)
    need(a.max_staleness >= 0, "actors.max_staleness", "an int >= 0", a.max_staleness)
    need(a.queue >= 1, "actors.queue", "an int >= 1", a.queue)
    need(a.timeout_s > 0, "actors.timeout_s", "a positive number of seconds", a.timeout_s)
    need(a.threads >= 1, "actors.threads", "an int >= 1", a.threads)
    need(t.num_nodes == 1 or not c.league.enabled or a.host not in ("127.0.0.1", "localhost"),
         "actors.host", "an address other nodes reach (e.g. 0.0.0.0) when trainer.num_nodes > 1: "
         "ranks on other nodes fetch the league from rank 0", a.host)
    need(a.curve_keys is None or Path(a.curve_keys).is_dir(), "actors.curve_keys",
         "a directory made by `arena keys DIR`", a.curve_keys)
    need(0.0 <= lg.bot_prob <= 1.0, "league.bot_prob", "a number in [0, 1]", lg.bot_prob)
    need(lg.bot_prob == 0 or bool(lg.bots), "league.bots", "at least one bot when "
         "league.bot_prob > 0", list(lg.bots))
    need(all(b in BOT_NAMES for b in lg.bots), "league.bots", f"bots among {list(BOT_NAMES)}",
         list(lg.bots))
    need(lg.bot_prob == 0 or c.game.name == "moba", "league.bot_prob",
         "0 for games without scripted bots (only moba has them)", lg.bot_prob)
    need(lg.snapshot_every >= 1, "league.snapshot_every", "an int >= 1", lg.snapshot_every)
    need(lg.sampler in ("quality", "pfsp"), "league.sampler", "quality or pfsp", lg.sampler)
    need(lg.pfsp_weighting in ("hard", "var"), "league.pfsp_weighting", "hard or var",
         lg.pfsp_weighting)
    need(lg.eta > 0, "league.eta", "a positive number", lg.eta)
    need(lg.max_snapshots is None or lg.max_snapshots >= 1, "league.max_snapshots",
         "null or an int >= 1", lg.max_snapshots)
    need(0 <= p.gae_lambda <= 1, "ppo.gae_lambda", "a number in [0, 1]", p.gae_lambda)
    need(p.chunk_len >= 1, "ppo.chunk_len", "an int >= 1", p.chunk_len)
    need(p.chunks_per_update >= 1, "ppo.chunks_per_update", "an int >= 1", p.chunks_per_update)
    need(p.update_epochs >= 1, "ppo.update_epochs", "an int >= 1", p.update_epochs)
    need(p.num_minibatches >= 1, "ppo.num_minibatches", "an int >= 1", p.num_minibatches)
    need(p.clip_coef > 0, "ppo.clip_coef", "a positive number", p.clip_coef)
    need(p.max_grad_norm > 0, "ppo.max_grad_norm", "a positive number", p.max_grad_norm)
    need(p.target_kl is None or p.target_kl > 0, "ppo.target_kl", "null or a positive number",
         p.target_kl)
    need(t.devices >= 1, "trainer.devices", "an int >= 1", t.devices)
    need(t.num_nodes >= 1, "trainer.num_nodes", "an int >= 1", t.num_nodes)
    need(t.max_updates >= 1, "trainer.max_updates", "an int >= 1", t.max_updates)
    need(t.checkpoint_every >= 1, "trainer.checkpoint_every", "an int >= 1", t.checkpoint_every)
    need(t.log_every >= 1, "trainer.log_every", "an int >= 1", t.log_every)
    r = c.reward
    for key in ("team_spirit_start", "team_spirit_end"):
        need(0.0 <= getattr(r, key) <= 1.0, f"reward.{key}", "a number in [0, 1]", getattr(r, key))
    need(r.time_decay_ticks is None or r.time_decay_ticks > 0, "reward.time_decay_ticks",
         "null or a positive number", r.time_decay_ticks)
    need(c.eval.every >= 0, "eval.every", "an int >= 0 (0 disables)", c.eval.every)
    need(c.eval.games >= 1, "eval.games", "an int >= 1", c.eval.games)
    w = c.watch
    need(w.every >= 0, "watch.every", "an int >= 0 (0 disables)", w.every)
    need(w.view in (None, "radiant", "dire"), "watch.view", "null, radiant or dire", w.view)
    need(w.frame_every >= 1, "watch.frame_every", "an int >= 1", w.frame_every)
    need(1 <= w.fps <= 100, "watch.fps", "an int from 1 to 100", w.fps)


# ---------------------------------------------------------------------------------------
def _suggest(node: Any, key: str) -> str:
    """', did you mean X?' for the closest key of the dataclass at a dotted path."""
    parts = key.split(".")
    cls: Any = Config
    for part in parts[:-1]:
        match = {f.name: f for f in fields(cls)}.get(part)
        if match is None or not is_dataclass(match.default_factory()
                                             if callable(match.default_factory) else None):
            return ""
        cls = type(match.default_factory())
    names = [f.name for f in fields(cls)]
    close = difflib.get_close_matches(parts[-1], names, n=1)
    where = ".".join(parts[:-1])
    valid = ", ".join(names)
    hint = f"; did you mean '{where + '.' if where else ''}{close[0]}'?" if close else ""
    return f"{hint} (valid keys{' under ' + where if where else ''}: {valid})"


def _explain(err: OmegaConfBaseException, source: str) -> ConfigError:
    key = getattr(err, "full_key", None) or ""
    msg = (getattr(err, "msg", None) or str(err)).splitlines()[0]
    if isinstance(err, ConfigKeyError):
        return ConfigError(f"{source}: unknown key '{key}'{_suggest(None, key)}")
    if isinstance(err, ValidationError):
        return ConfigError(f"{source}: bad value for '{key}': {msg}")
    return ConfigError(f"{source}: {msg}" + (f" (key '{key}')" if key else ""))


def load_config(path: str | os.PathLike | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Schema defaults <- YAML file (default configs/default.yaml) <- `key=value` overrides."""
    path = Path(path) if path is not None else CONFIG_DIR / "default.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    merged: DictConfig = OmegaConf.structured(Config)
    try:
        from_file = OmegaConf.load(path)
    except Exception as exc:  # YAML syntax errors come in several types
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(from_file, DictConfig):
        raise ConfigError(f"{path}: expected a mapping of sections (run, game, ppo, ...)")
    try:
        merged = OmegaConf.merge(merged, from_file)
    except OmegaConfBaseException as exc:
        raise _explain(exc, str(path)) from None
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. ppo.lr=1e-4")
        try:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist([item]))
        except OmegaConfBaseException as exc:
            raise _explain(exc, f"override {item!r}") from None
    try:
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise _explain(exc, str(path)) from None
    except ConfigError as exc:
        raise ConfigError(f"{path} (with overrides {list(overrides)}): {exc}") from None
    assert isinstance(config, Config)
    return config


def config_from_dict(data: dict[str, Any]) -> Config:
    """A Config from a plain nested dict (as saved in checkpoints and run directories)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), data)
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise _explain(exc, "saved config") from None
    assert isinstance(config, Config)
    return config


def to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict of builtins: safe for checkpoints loaded with weights_only=True."""
    out = OmegaConf.to_container(OmegaConf.structured(config))
    assert isinstance(out, dict)
    return out


def to_yaml(config: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def to_flat_dict(config: Config) -> dict[str, Any]:
    """Dotted keys -> plain values (for TensorBoard hparams)."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, name + ".")
            else:
                out[name] = value if isinstance(value, (int, float, str, bool)) else str(value)

    walk(OmegaConf.to_container(OmegaConf.structured(config)), "")
    return out


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file so that readers see the old or the new content, never half."""
    atomic_write_bytes(path, text.encode())
