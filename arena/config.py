"""Typed run configuration: YAML files in configs/ plus dotted overrides from the command line.

The schema is a tree of dataclasses; OmegaConf merges a YAML file and `key=value`
overrides onto it, so a misspelt key or a value of the wrong type is caught before a run
starts, with the key, where it came from, and the closest valid key in the message.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
import typing
import unicodedata
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from games.files import atomic_write_bytes

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A config file or override that does not fit the schema.

    The message is folded onto one line (YAML and OmegaConf errors span several), because
    the command line reports it as a single `arena train: error: ...` line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(line.strip() for line in str(message).splitlines()
                                  if line.strip()))


# Errors OmegaConf lets escape unwrapped while parsing or converting a user's value: a YAML
# syntax error in an override, a list merged onto a mapping, an int too large for a float
# field or for int(); each means "bad value", never a bug of ours.
_BAD_VALUE = (OmegaConfBaseException, yaml.YAMLError, TypeError, ValueError, OverflowError)


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
    # stepping in parallel: the MOBA's games on this many numba threads; any other game in
    # this many worker processes writing into shared memory (1: in the collector's process)
    threads: int = 1
    # worker-process games (threads >= 2) only: one half of the games steps while the other
    # is inferred, torch on one thread meanwhile (pays off with many games per core: on 2
    # cores, magent2 battle collects 1.45x faster at 32 games, even at 8, slower at 4)
    overlap: bool = False


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
    a game faces one of the game's scripted `bots` (`random` for any game) instead, drawn
    uniformly. The league plays one team against another: a game of exactly two teams."""

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
    # League roles (AlphaStar; league/exploiters.py): extra policies trained in the same run
    # on their own block of the collector's games. A main exploiter plays only the current
    # main; a league exploiter plays the pool's snapshots by PFSP. One that beats its
    # opponents exploiter_win_rate over its last exploiter_window games, or has trained
    # exploiter_max_updates updates, is frozen into the pool and reset to the main. With
    # exploiters, the main's past opponents are drawn by PFSP over the pool's snapshots and
    # the live exploiters (league.pfsp_*), whatever league.sampler says.
    main_exploiters: int = 0
    league_exploiters: int = 0
    exploiter_games: Optional[int] = None  # games per exploiter; None: num_envs // (E + 2)
    exploiter_win_rate: float = 0.7
    exploiter_window: int = 100  # games
    exploiter_max_updates: int = 300


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
    checkpoint_minutes: Optional[float] = 10.0  # also checkpoint after this long without one
    log_every: int = 1
    # torch intra-op threads; None: torch's own count (this rank's share of the cores), less
    # those of local actor processes that collect ahead (arena/learn/learner.learner_threads)
    num_threads: Optional[int] = None


@dataclass
class EvalConfig:
    every: int = 25  # updates; 0 disables
    games: int = 32
    bots: Optional[list[str]] = None  # None: every bot the game offers (random for any game)
    # a fixed panel of the run's own past snapshots (every `panel_every`-th, the newest
    # `panel_size` of them): one curve of progress that does not follow the opponent mix
    panel_every: int = 10
    panel_size: int = 4


@dataclass
class WatchConfig:
    """A match of the latest policy against a league opponent, logged to TensorBoard as an
    animation every `every` updates (any game that renders; 0 disables)."""

    every: int = 0
    view: Optional[str] = None  # None: full view; MOBA radiant | dire: that team's fog of war
    frame_every: int = 4  # keep every k-th tick as a frame
    fps: int = 10
    max_ticks: Optional[int] = None  # games with a max_ticks option (the MOBA): shorter GIF matches


@dataclass
class ActorsConfig:
    """Rollout collection outside the learner (arena/scale/actors.py): actor processes step their
    own games with CPU copies of the policies and push rollouts over pyzmq.

    num_workers 0 with listen false keeps collection in the learner's process."""

    num_workers: int = 0  # actor processes started (and restarted) by each learner rank
    listen: bool = False  # serve actors even with num_workers 0 (`arena actor --connect`)
    host: str = "127.0.0.1"  # interface the learner binds; 0.0.0.0 for actors on other hosts
    port: int = 0  # control port actors connect to (0: any free port); rank r uses port + r
    num_envs: Optional[int] = None  # games per actor; None: game.num_envs
    rollouts_per_update: Optional[int] = None  # None: max(num_workers, 1)
    max_staleness: int = 4  # rollouts made with weights older than this many updates are dropped
    # rollouts an actor may collect beyond its share of the newest weights: 0 keeps actors in
    # step with the learner (an update trains on rollouts of its own weights, as in-process);
    # 1 overlaps collection with the update at the price of one update of policy lag
    ahead: int = 0
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
    from games.registry import bot_names, parse_bot

    def need(ok: bool, key: str, expected: str, value: Any) -> None:
        if not ok:
            raise ConfigError(f"{key}: expected {expected}, got {value!r}")

    bad = _first_bad_value(c, Config, "")
    if bad is not None:
        need(False, *bad)
    p, t = c.ppo, c.trainer
    need(c.run.name is None or _is_folder_name(c.run.name), "run.name",
         "null or a plain folder name (no path separators, not . or .., not starting with ~, "
         "no control characters, at most 255 bytes)", c.run.name)
    blocker = _blocking_file(c.run.root)
    need(blocker is None, "run.root",
         "a directory path, not empty, without control characters, and not under an existing file"
         + (f" ({blocker} is a file)" if blocker else ""), c.run.root)
    need(c.game.num_envs >= 1, "game.num_envs", "an int >= 1", c.game.num_envs)
    need(c.game.threads >= 1, "game.threads", "an int >= 1", c.game.threads)
    need(not c.game.overlap or (c.game.threads >= 2 and c.game.num_envs >= 2), "game.overlap",
         "false unless game.threads >= 2 and game.num_envs >= 2 (two halves of the games, "
         "stepped in worker processes)", c.game.overlap)
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
    need(isinstance(a.ahead, int) and 0 <= a.ahead <= max(a.max_staleness, 0), "actors.ahead",
         f"an int in 0..actors.max_staleness ({a.max_staleness})", a.ahead)
    need(a.queue >= 1, "actors.queue", "an int >= 1", a.queue)
    need(a.timeout_s > 0, "actors.timeout_s", "a positive number of seconds", a.timeout_s)
    need(a.threads >= 1, "actors.threads", "an int >= 1", a.threads)
    need(t.num_nodes == 1 or not c.league.enabled or a.host not in ("127.0.0.1", "localhost"),
         "actors.host", "an address other nodes reach (e.g. 0.0.0.0) when trainer.num_nodes > 1: "
         "ranks on other nodes fetch the league from rank 0", a.host)
    need(0.0 <= lg.bot_prob <= 1.0, "league.bot_prob", "a number in [0, 1]", lg.bot_prob)
    need(lg.bot_prob == 0 or bool(lg.bots), "league.bots", "at least one bot when "
         "league.bot_prob > 0", list(lg.bots))
    game_bots = bot_names(c.game.name)
    for key, specs, null in (("league.bots", lg.bots, ""),
                             ("eval.bots", c.eval.bots or [], "null (all) or ")):
        for spec in specs:  # names, or composites of them (games/registry.py parse_bot)
            try:
                parse_bot(c.game.name, spec)
            except ValueError as exc:
                raise ConfigError(f"{key}: expected {null}bots of game {c.game.name!r}: "
                                  f"{list(game_bots)}, got {list(specs)!r}: {exc} (composites "
                                  f"of them too: NAME~EPS, A+B+C)") from None
    need(lg.snapshot_every >= 1, "league.snapshot_every", "an int >= 1", lg.snapshot_every)
    need(lg.sampler in ("quality", "pfsp"), "league.sampler", "quality or pfsp", lg.sampler)
    need(lg.pfsp_weighting in ("hard", "var"), "league.pfsp_weighting", "hard or var",
         lg.pfsp_weighting)
    need(lg.eta > 0, "league.eta", "a positive number", lg.eta)
    need(lg.max_snapshots is None or lg.max_snapshots >= 1, "league.max_snapshots",
         "null or an int >= 1", lg.max_snapshots)
    exploiters = lg.main_exploiters + lg.league_exploiters
    need(lg.main_exploiters >= 0, "league.main_exploiters", "an int >= 0", lg.main_exploiters)
    need(lg.league_exploiters >= 0, "league.league_exploiters", "an int >= 0",
         lg.league_exploiters)
    if exploiters:
        need(lg.enabled, "league.enabled", "true when league exploiters are configured "
             "(their snapshots join the pool)", lg.enabled)
        need(a.num_workers == 0 and not a.listen, "actors.num_workers",
             "0 (and actors.listen false) with league exploiters: all learning agents share "
             "the learner's in-process collection", a.num_workers)
        need(not c.game.overlap, "game.overlap", "false with league exploiters (several "
             "learning agents on one batch of games)", c.game.overlap)
        need(t.devices * t.num_nodes == 1, "trainer.devices",
             "1 (on one node) with league exploiters: they train in one process", t.devices)
        per = (lg.exploiter_games if lg.exploiter_games is not None
               else c.game.num_envs // (exploiters + 2))
        need(per >= 1 and c.game.num_envs - per * exploiters >= 1, "league.exploiter_games",
             f"at least 1 game per exploiter with at least 1 left for the main out of "
             f"game.num_envs={c.game.num_envs} ({exploiters} exploiters)", lg.exploiter_games)
    need(0.0 < lg.exploiter_win_rate <= 1.0, "league.exploiter_win_rate", "a number in (0, 1]",
         lg.exploiter_win_rate)
    need(lg.exploiter_window >= 1, "league.exploiter_window", "an int >= 1 (games)",
         lg.exploiter_window)
    need(lg.exploiter_max_updates >= 1, "league.exploiter_max_updates", "an int >= 1",
         lg.exploiter_max_updates)
    need(0 <= p.gae_lambda <= 1, "ppo.gae_lambda", "a number in [0, 1]", p.gae_lambda)
    need(p.chunk_len >= 1, "ppo.chunk_len", "an int >= 1", p.chunk_len)
    need(p.chunks_per_update >= 1, "ppo.chunks_per_update", "an int >= 1", p.chunks_per_update)
    need(p.update_epochs >= 1, "ppo.update_epochs", "an int >= 1", p.update_epochs)
    need(p.num_minibatches >= 1, "ppo.num_minibatches", "an int >= 1", p.num_minibatches)
    need(p.clip_coef > 0, "ppo.clip_coef", "a positive number", p.clip_coef)
    need(p.max_grad_norm > 0, "ppo.max_grad_norm", "a positive number", p.max_grad_norm)
    need(p.target_kl is None or p.target_kl > 0, "ppo.target_kl", "null or a positive number",
         p.target_kl)
    need(t.accelerator in _accelerators(), "trainer.accelerator",
         f"one of {', '.join(sorted(_accelerators()))}", t.accelerator)
    need(t.precision in _precisions(), "trainer.precision",
         f"one of {', '.join(sorted(_precisions()))}", t.precision)
    need(t.max_time is None or _is_duration(t.max_time), "trainer.max_time",
         "null or a duration DD:HH:MM:SS longer than zero (hours < 24, minutes and seconds < 60)",
         t.max_time)
    need(t.devices >= 1, "trainer.devices", "an int >= 1", t.devices)
    need(t.num_nodes >= 1, "trainer.num_nodes", "an int >= 1", t.num_nodes)
    need(t.max_updates >= 1, "trainer.max_updates", "an int >= 1", t.max_updates)
    need(t.checkpoint_every >= 1, "trainer.checkpoint_every", "an int >= 1", t.checkpoint_every)
    need(t.checkpoint_minutes is None or t.checkpoint_minutes > 0, "trainer.checkpoint_minutes",
         "null or a positive number of minutes", t.checkpoint_minutes)
    need(t.log_every >= 1, "trainer.log_every", "an int >= 1", t.log_every)
    r = c.reward
    for key in ("team_spirit_start", "team_spirit_end"):
        need(0.0 <= getattr(r, key) <= 1.0, f"reward.{key}", "a number in [0, 1]", getattr(r, key))
    need(r.time_decay_ticks is None or r.time_decay_ticks > 0, "reward.time_decay_ticks",
         "null or a positive number", r.time_decay_ticks)
    need(c.eval.every >= 0, "eval.every", "an int >= 0 (0 disables)", c.eval.every)
    need(c.eval.games >= 1, "eval.games", "an int >= 1", c.eval.games)
    need(c.eval.panel_every >= 1, "eval.panel_every", "an int >= 1", c.eval.panel_every)
    need(c.eval.panel_size >= 0, "eval.panel_size", "an int >= 0 (0: no panel)",
         c.eval.panel_size)
    w = c.watch
    need(w.every >= 0, "watch.every", "an int >= 0 (0 disables)", w.every)
    need(w.view is None or (isinstance(w.view, str) and w.view != ""), "watch.view",
         "null (full view) or a team whose view the game draws (MOBA: radiant or dire)",
         w.view)
    need(w.frame_every >= 1, "watch.frame_every", "an int >= 1", w.frame_every)
    need(1 <= w.fps <= 100, "watch.fps", "an int from 1 to 100", w.fps)


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a schema dataclass (strings under `from __future__`)."""
    return typing.get_type_hints(cls)


def _first_bad_value(value: Any, hint: Any, key: str) -> Optional[tuple[str, str, Any]]:
    """(dotted key, what was expected, value) for the first value anywhere under `value`
    that is not of its declared type or is a nan or inf, or None when all are fine.

    Walked generically over the dataclasses, so a new field is covered without a line in
    `_check`. Two gaps of OmegaConf are closed here: it stores nan and inf in float fields,
    and nan then passes every range test the other way round (nan > 0 and nan <= 0 are both
    False) and, once in the loss, makes every optimiser step skip silently; and it lets a
    dotted override put a mapping or list inside a `dict[str, float]` or `list[str]` field
    (`reward.weights.a.b=1`), which only fails when the config is saved, mid-run. Numbers
    nested in `Any` fields (game.options) are checked for finiteness too."""
    if typing.get_origin(hint) is typing.Union:  # Optional[X]
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if is_dataclass(hint):
        if not isinstance(value, hint):
            return key, f"a {hint.__name__} section", value
        items: Any = ((f"{key}.{f.name}" if key else f.name, getattr(value, f.name),
                       _field_types(hint)[f.name]) for f in fields(hint))
    elif origin is dict or (hint is Any and isinstance(value, dict)):
        if not isinstance(value, dict):
            return key, "a mapping", value
        items = ((f"{key}.{k}", v, args[1] if args else Any) for k, v in value.items())
    elif origin is list or (hint is Any and isinstance(value, (list, tuple))):
        if not isinstance(value, (list, tuple)):
            return key, "a list", value
        items = ((f"{key}[{i}]", v, args[0] if args else Any) for i, v in enumerate(value))
    elif hint is float or hint is Any:
        if hint is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return key, "a number", value
        if isinstance(value, float) and not math.isfinite(value):
            return key, "a finite number", value
        return None
    elif hint in (int, str, bool):
        ok = isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
        return None if ok else (key, {int: "an int", str: "a string", bool: "true or false"}[hint],
                                value)
    else:
        return None
    for sub_key, sub_value, sub_hint in items:
        found = _first_bad_value(sub_value, sub_hint, sub_key)
        if found is not None:
            return found
    return None


@functools.cache
def _precisions() -> frozenset[str]:
    """Lightning's own precision names (its `_PRECISION_INPUT` type, ints as strings, which
    is how OmegaConf stores `trainer.precision=16`), so a newer Lightning's names pass.

    Imported lazily: Lightning takes seconds to import and only training needs it."""
    from lightning.fabric.connector import _PRECISION_INPUT

    def names(tp: Any) -> set[str]:
        args = typing.get_args(tp)
        if typing.get_origin(tp) is typing.Literal:
            return {str(a) for a in args}
        return set().union(*(names(a) for a in args))

    return frozenset(names(_PRECISION_INPUT))


@functools.cache
def _accelerators() -> frozenset[str]:
    """Lightning's registered accelerators (cpu, cuda, mps, tpu, plus any a plugin
    registers) and the two names its Trainer accepts besides them, auto and gpu."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    return frozenset(AcceleratorRegistry.available_accelerators()) | {"auto", "gpu"}


def _is_duration(text: str) -> bool:
    """Lightning's max_time string, "DD:HH:MM:SS", with in-range fields and above zero.

    Lightning itself takes any two digits (99:99 hours:minutes), so a typo there would
    silently change the time limit; at most 9 digits of days keeps it within timedelta."""
    m = re.fullmatch(r"([0-9]{1,9}):([0-9]{2}):([0-9]{2}):([0-9]{2})", text)
    if m is None:
        return False
    days, hours, minutes, seconds = map(int, m.groups())
    return hours < 24 and minutes < 60 and seconds < 60 and (days, hours, minutes, seconds) != (
        0, 0, 0, 0)


def _has_control(text: str) -> bool:
    """Control characters (and lone surrogates, which no file system encodes) in a path."""
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


def _is_folder_name(name: str) -> bool:
    """True for a single folder name, so run.root/run.name stays inside run.root."""
    seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    return (name.strip() not in ("", ".", "..") and not any(s in name for s in seps)
            and not Path(name).anchor and not name.startswith("~") and not _has_control(name)
            and len(name.encode("utf-8", "surrogatepass")) <= 255)


def _blocking_file(root: str) -> Optional[str]:
    """Why run.root cannot hold run directories: "" if it is empty or has control characters
    (a NUL fails every file call), the existing file it is or lies under, else None.

    Only the nearest existing ancestor is checked; nothing is created here."""
    if not root.strip() or _has_control(root):
        return ""
    for candidate in (Path(root), *Path(root).parents):
        if os.path.exists(candidate):  # unlike Path.exists, never raises (EACCES, ...)
            return None if os.path.isdir(candidate) else str(candidate)
    return None


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


def _explain(err: Exception, source: str, key_hint: str = "") -> ConfigError:
    """One ConfigError naming the dotted key for an OmegaConf (or stray conversion) error;
    `key_hint` names it when the error does not (a bad section or unparsable value)."""
    key = getattr(err, "full_key", None) or key_hint
    msg = (getattr(err, "msg", None) or str(err) or type(err).__name__).splitlines()[0]
    if isinstance(err, ConfigKeyError):
        return ConfigError(f"{source}: unknown key '{key}'{_suggest(None, key)}")
    if isinstance(err, ValidationError) or not isinstance(err, OmegaConfBaseException):
        return ConfigError(f"{source}: bad value for '{key}': {msg}")
    return ConfigError(f"{source}: {msg}" + (f" (key '{key}')" if key else ""))


def _other_game_hint(path: Path, from_file: DictConfig, merged: DictConfig) -> str:
    """Where an override switched the config's game, what to do about settings written for
    the old one (its bots, options, reward weights), which overrides can fix only one at a
    time and cannot remove (a key given in the file stays in a mapping such as
    game.options)."""
    written_for = OmegaConf.select(from_file, "game.name", default=GameConfig.name)
    now = OmegaConf.select(merged, "game.name")
    if now == written_for:
        return ""
    return (f" ({path.name} is written for game {written_for!r}: its bots, game options and "
            f"reward weights are that game's; to train {now!r}, start from a config of its "
            f"own, as the README's 'Your own game' shows)")


def load_config(path: str | os.PathLike | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Schema defaults <- YAML file (default configs/default.yaml) <- `key=value` overrides."""
    path = Path(path) if path is not None else CONFIG_DIR / "default.yaml"
    if not os.path.isfile(path):  # unlike Path.is_file, never raises (name too long, NUL)
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
    except _BAD_VALUE as exc:
        raise _explain(exc, str(path)) from None
    for item in overrides:
        key = item.partition("=")[0]
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. ppo.lr=1e-4")
        if not all(key.split(".")):
            raise ConfigError(f"override {item!r}: {key!r} is not a dotted key, e.g. ppo.lr")
        try:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist([item]))
        except _BAD_VALUE as exc:
            raise _explain(exc, f"override {item!r}", key) from None
    try:
        config = OmegaConf.to_object(merged)
    except ConfigError as exc:
        raise ConfigError(f"{path} (with overrides {list(overrides)}): {exc}"
                          + _other_game_hint(path, from_file, merged)) from None
    except _BAD_VALUE as exc:  # an interpolation resolved here, e.g. ${oc.decode:...}
        raise _explain(exc, f"{path} (with overrides {list(overrides)})") from None
    assert isinstance(config, Config)
    return config


def config_from_dict(data: dict[str, Any]) -> Config:
    """A Config from a plain nested dict (as saved in checkpoints and run directories)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), data)
        config = OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except _BAD_VALUE as exc:
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
