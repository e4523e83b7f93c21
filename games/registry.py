"""Games by name: `make("moba", team_size=3)`, or any PettingZoo game by import path.

Configs name a game by a string, so the program needs one place that turns a name into
an environment and says clearly what went wrong otherwise. Built-ins are registered by
"module:attr" path and imported only when made, so listing games never imports them
(and the registry works while a game's package is absent or broken).

Third-party games: `make("pettingzoo:<module>:<factory>", teams=..., **kwargs)` imports
`<module>`, calls `<factory>(**kwargs)` and wraps the result with its teams
(`games.adapters.with_teams`): a `ParallelEnv` in `TeamParallelEnv`, a turn-based `AECEnv`
in `TeamAECEnv` (kept turn-based: `games.vector.AECVec` steps it natively). `teams` is
optional: a map team name -> agent-name prefix, or by default teams from the agent names
(`red_0` -> "red"; each agent its own team when all share one name, as in connect four)::

    make("pettingzoo:magent2.environments.battle_v4:parallel_env",
         teams={"red": "red_", "blue": "blue_"}, map_size=12)
    make("pettingzoo:pettingzoo.classic.connect_four_v3:env")  # player_0 vs player_1

Trust. `make` imports whatever module a spec names and calls the factory with the config's
options, so a spec is code. A config the user wrote is theirs to run, but one that arrives
from elsewhere (a learner over the network, a run directory or checkpoint handed over) must
pass `check_trusted` first: registered games always do; PettingZoo's own namespaces
(pettingzoo, mpe2, magent2) do when the spec names a plain factory (env, parallel_env,
raw_env) defined there; anything else only when the caller's allow-list names it. The check
reads the spec as a string before importing anything outside those namespaces.
"""

from __future__ import annotations

import difflib
import importlib
import re
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pettingzoo import AECEnv, ParallelEnv

from games.adapters import TeamAECEnv, TeamMap, TeamParallelEnv, with_teams

PETTINGZOO_PREFIX = "pettingzoo:"
_SPEC_FORM = "'pettingzoo:<module>:<factory>', e.g. 'pettingzoo:mpe2.simple_tag_v3:parallel_env'"

# PettingZoo's own game packages, and the factory names their environment modules export:
# the only specs trusted without an allow-list entry.
TRUSTED_NAMESPACES = ("pettingzoo", "mpe2", "magent2")
FACTORY_NAMES = ("env", "parallel_env", "raw_env")
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")

Factory = Callable[..., ParallelEnv | AECEnv]


class UntrustedGameError(ValueError):
    """A game name this process may not build from a config it did not write itself."""


RANDOM_BOT = "random"  # the bot every game has: uniform over the legal actions
RANDOM_ANCHOR = 10.0  # its rating: the fixed point of every game's scale

# Bot specs: a registered bot's name, or a composite of them (see `parse_bot`):
#   NAME~EPS           NAME, but a uniformly random legal action with probability EPS per step
#   A+B+C              a per-agent mixture: the team's agent 0 played by A, 1 by B, 2 by C
#   pusher~0.1+lasthitter+teamfighter~0.2   both at once (noise per member)
# '+' and '~' need no shell quoting, cannot occur in a bot name, and never meet the '/',
# '@' or ':' of player paths, RUN@ID snapshots, "pettingzoo:" games or benchmark targets.
MIX, NOISE = "+", "~"
BOT_NAME = re.compile(r"[A-Za-z_][\w-]*")
_BOT_SPEC_CHARS = re.compile(r"[\w.+~-]+")
BOT_SPEC_HELP = (f"a bot name, NAME{NOISE}EPS (random legal action with probability EPS in "
                 f"[0, 1]) or a per-agent mixture A{MIX}B{MIX}... (one bot per agent of a team)")


@dataclass(frozen=True)
class GameSpec:
    """A registered game: its name, what it is, where its factory lives, and what it offers
    beyond the PettingZoo API: scripted bots (as "module:attr" paths of a factory
    `(name, role, seed) -> bot`, see games/bots.py) with their rating anchors."""

    name: str
    description: str
    factory_path: str  # "module:attr", imported when the game is made
    bots: Mapping[str, str] = field(default_factory=dict)
    anchors: Mapping[str, float] = field(default_factory=dict)
    renderer: str | None = None  # "module:attr" of (game, view, scale) -> games.render.Renderer
    vectorizer: str | None = None  # "module:attr" of (num_games, **options) -> VecGame
    # bot specs kept out of every training config: what the learning benchmark's headline
    # measures (opponents the run never trained against)
    panel: tuple[str, ...] = ()


@dataclass(frozen=True)
class BotMember:
    """One bot of a spec: a registered bot's name and its noise (0: none)."""

    name: str
    epsilon: float = 0.0

    def __str__(self) -> str:
        return self.name if self.epsilon == 0 else f"{self.name}{NOISE}{self.epsilon:g}"


@dataclass(frozen=True)
class BotSpec:
    """A parsed bot spec: one member (a plain or noisy bot), or one per agent of a team (a
    mixture). Two specs are the same bot when their members are (`pusher~0.20` is
    `pusher~0.2`, `pusher~0` is `pusher`)."""

    members: tuple[BotMember, ...]

    @property
    def is_mixture(self) -> bool:
        return len(self.members) > 1

    @property
    def names(self) -> frozenset[str]:
        """The registered bots it is built from."""
        return frozenset(m.name for m in self.members)

    def __str__(self) -> str:
        return MIX.join(str(m) for m in self.members)


_REGISTRY: dict[str, GameSpec] = {}
_FACTORIES: dict[str, Factory] = {}  # factories registered as objects, not paths


def register(
    name: str, factory: Factory | str, description: str = "", *, overwrite: bool = False,
    bots: Mapping[str, str] | None = None, anchors: Mapping[str, float] | None = None,
    renderer: str | None = None, vectorizer: str | None = None, panel: Sequence[str] = (),
) -> GameSpec:
    """Register `factory` (a callable, or a lazy "module:attr" path) under `name`.

    Names may not contain ':' (reserved for "pettingzoo:" specs). Registering a taken
    name raises ValueError unless `overwrite=True`. `bots`: the game's scripted bots, name
    -> "module:attr" of a factory `(name, role, seed) -> bot` (imported when a bot is made);
    `anchors`: their fixed ratings (`random` is RANDOM_ANCHOR unless given). `renderer`:
    "module:attr" of a games.render renderer factory (default: the game's own rgb_array).
    `vectorizer`: "module:attr" of the game's own batched `VecGame` class (default: B
    instances stepped by games.vector). `panel`: bot specs (`parse_bot`) held out of
    training, the opponents the learning benchmark's headline is measured against.
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"game name must be a non-empty string without ':', got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"game {name!r} is already registered ({_REGISTRY[name].factory_path}); "
            "pass overwrite=True to replace it"
        )
    if isinstance(factory, str):
        _split_path(factory, what=f"factory path for game {name!r}")
        path = factory
        _FACTORIES.pop(name, None)
    elif callable(factory):
        module = getattr(factory, "__module__", "?")
        path = f"{module}:{getattr(factory, '__qualname__', repr(factory))}"
        _FACTORIES[name] = factory
    else:
        raise TypeError(
            f"factory for game {name!r} must be callable or a 'module:attr' string, "
            f"got {type(factory).__name__}"
        )
    bots = dict(bots or {})
    anchors = {RANDOM_BOT: RANDOM_ANCHOR, **dict(anchors or {})}
    for bot, where in bots.items():
        if bot == RANDOM_BOT or not isinstance(bot, str) or not BOT_NAME.fullmatch(bot):
            raise ValueError(f"game {name!r}: bot names must be words (letters, digits, '_', "
                             f"'-'; no {MIX!r} or {NOISE!r}) other than {RANDOM_BOT!r} (every "
                             f"game has it), got {bot!r}")
        _split_path(where, what=f"factory path of bot {bot!r} of game {name!r}")
    unknown = sorted(set(anchors) - set(bots) - {RANDOM_BOT})
    if unknown:
        raise ValueError(f"game {name!r}: anchors for bots it does not have: {unknown}")
    if renderer is not None:
        _split_path(renderer, what=f"renderer path of game {name!r}")
    if vectorizer is not None:
        _split_path(vectorizer, what=f"vectoriser path of game {name!r}")
    if isinstance(panel, str):
        raise TypeError(f"game {name!r}: panel must be a list of bot specs, got {panel!r}")
    for member in panel:
        try:
            _parse_bot(member, (RANDOM_BOT, *bots), name)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"game {name!r}: panel: {exc}") from None
    spec = GameSpec(name=name, description=description, factory_path=path, bots=bots,
                    anchors=anchors, renderer=renderer, vectorizer=vectorizer,
                    panel=tuple(panel))
    _REGISTRY[name] = spec
    return spec


def registrations() -> list[dict[str, Any]]:
    """The games registered by "module:attr" path, as plain data: what another process
    (a tournament worker) needs to know the same games (`restore`)."""
    return [{"name": g.name, "factory": g.factory_path, "description": g.description,
             "bots": dict(g.bots), "anchors": dict(g.anchors), "renderer": g.renderer,
             "vectorizer": g.vectorizer, "panel": list(g.panel)}
            for g in _REGISTRY.values() if g.name not in _FACTORIES]


def restore(entries: Sequence[Mapping[str, Any]]) -> None:
    """Register the games `registrations()` gave in another process."""
    for e in entries:
        register(e["name"], e["factory"], e["description"], overwrite=True, bots=e["bots"],
                 anchors=e["anchors"], renderer=e["renderer"], vectorizer=e.get("vectorizer"),
                 panel=e.get("panel", ()))


def registered_by_object(name: str) -> bool:
    """Whether `name` was registered with a factory object (not a path): such a game
    exists only in the process that registered it."""
    return name in _FACTORIES


def list_games() -> list[GameSpec]:
    """The registered games, in registration order (pettingzoo: specs not included)."""
    return list(_REGISTRY.values())


def bot_names(game: str) -> tuple[str, ...]:
    """The bots `game` offers: `random` (every game), then those it registered."""
    spec = _REGISTRY.get(game)
    return (RANDOM_BOT, *(spec.bots if spec is not None else ()))


def bot_anchors(game: str) -> dict[str, float]:
    """Fixed ratings of the game's bots (random: RANDOM_ANCHOR, for every game)."""
    spec = _REGISTRY.get(game)
    return dict(spec.anchors) if spec is not None else {RANDOM_BOT: RANDOM_ANCHOR}


def vectorizer_path(game: str) -> str | None:
    """The "module:attr" of the batched implementation a game registered (None: none)."""
    spec = _REGISTRY.get(game)
    return None if spec is None else spec.vectorizer


def renderer_path(game: str) -> str | None:
    """The "module:attr" of the renderer a game registered (None: its own rgb_array)."""
    spec = _REGISTRY.get(game)
    return None if spec is None else spec.renderer


def panel(game: str) -> tuple[str, ...]:
    """The game's held-out panel: bot specs no training config may train against (empty for
    a game that registered none)."""
    spec = _REGISTRY.get(game)
    return () if spec is None else spec.panel


def panel_conflicts(game: str, bots: Sequence[str]) -> list[str]:
    """The members of `game`'s panel that `bots` (e.g. a config's league.bots) name: a run
    that trains against them cannot call them held out. Specs compare as bots
    (`pusher~0.20` is `pusher~0.2`); `pusher` and `pusher~0.2` are different bots."""
    trained = {parse_bot(game, b) for b in bots}
    return [m for m in panel(game) if parse_bot(game, m) in trained]


def looks_like_bot(text: str) -> bool:
    """Whether a player spec is written as a bot spec: a bot name, or words joined by '+'
    and '~' (no '/', '@' or ':'). Classification only; `parse_bot` checks it."""
    return isinstance(text, str) and (bool(BOT_NAME.fullmatch(text)) or (
        bool(_BOT_SPEC_CHARS.fullmatch(text)) and (MIX in text or NOISE in text)))


def parse_bot(game: str, text: str) -> BotSpec:
    """The bot spec `text` of `game` (see BOT_SPEC_HELP), checked strictly: every member a
    bot the game has, ε a number in [0, 1]. ValueError naming the problem otherwise. (How
    many members a mixture needs depends on the game's teams: `make_side_bots` checks it.)"""
    return _parse_bot(text, bot_names(game), game)


def _parse_bot(text: Any, known: Sequence[str], game: str) -> BotSpec:
    if not isinstance(text, str) or not text:
        raise ValueError(f"bot spec must be a non-empty string ({BOT_SPEC_HELP}), got {text!r}")
    members = []
    for part in text.split(MIX):
        name, sep, eps = part.partition(NOISE)
        if not part or not name:
            raise ValueError(f"bot spec {text!r}: empty member; expected {BOT_SPEC_HELP}")
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown bot {name!r} for game {game!r}{hint}; its bots: "
                             f"{', '.join(known)}" + (f" (in bot spec {text!r})"
                                                      if text != name else ""))
        epsilon = 0.0
        if sep:
            try:
                epsilon = float(eps)
            except ValueError:
                raise ValueError(f"bot spec {text!r}: {part!r} needs a number after {NOISE!r} "
                                 f"(the probability of a random action), got {eps!r}") from None
            if not 0.0 <= epsilon <= 1.0:  # NaN fails too
                raise ValueError(f"bot spec {text!r}: epsilon of {name!r} must be in [0, 1], "
                                 f"got {eps}")
        members.append(BotMember(name, epsilon))
    return BotSpec(tuple(members))


def make_bot(game: str, bot: str, role: Any, seed: int = 0) -> Any:
    """A bot of `game` for the agents of `role` (a games.vector.RoleSpec), from a bot spec:
    a registered bot by name, or a composite (`parse_bot`). Composites are deterministic per
    seed: mixture member k is made with seed + 1009 k, a noisy bot's base with the seed
    itself (so `NAME~0` plays exactly as NAME) and its coin from its own generator."""
    from games.bots import MixtureBot

    spec = parse_bot(game, bot)
    members = [_make_member(game, m, role, seed + 1009 * k) for k, m in enumerate(spec.members)]
    return MixtureBot(members, name=str(spec)) if spec.is_mixture else members[0]


def _make_member(game: str, member: BotMember, role: Any, seed: int) -> Any:
    from games.bots import NoisyBot, RandomBot

    if member.name == RANDOM_BOT:
        base = RandomBot(seed)
    else:
        where = _REGISTRY[game].bots[member.name]
        base = resolve(where, what=f"bot {member.name!r} of game {game!r}")(member.name, role, seed)
    return base if member.epsilon == 0 else NoisyBot(base, member.epsilon, seed, str(member))


def make_side_bots(game: str, bot: str, vec: Any, seed: int = 0) -> dict[str, Any]:
    """One bot per role of `vec` (a games.vector.VecGame) for the spec `bot`, role j's seeded
    with seed + j: what plays a side of a match. A mixture must have one member per agent of
    every team it may be seated at; ValueError otherwise."""
    spec = parse_bot(game, bot)
    if spec.is_mixture:
        sizes = {team: int((np.asarray(vec.slot_team) == t).sum())
                 for t, team in enumerate(vec.team_names)}
        wrong = {team: n for team, n in sizes.items() if n != len(spec.members)}
        if wrong:
            raise ValueError(f"bot spec {bot!r}: a mixture needs one bot per agent of a team; "
                             f"it has {len(spec.members)}, but game {game!r} has teams of "
                             + ", ".join(f"{team}: {n}" for team, n in sizes.items()))
    return {role.name: make_bot(game, bot, role, seed=seed + j)
            for j, role in enumerate(vec.roles)}


def make(name: str, **kwargs: Any) -> ParallelEnv | AECEnv:
    """Build the game `name` with `kwargs`.

    `name` is a registered game, or "pettingzoo:<module>:<factory>" with an optional
    `teams=` map (team name -> agent-name prefix, or a list of prefixes; by default teams
    come from the agent names, see `games.adapters.default_teams`). Unknown names,
    malformed specs, missing modules/factories and bad team maps raise errors that name
    the problem.
    """
    if not isinstance(name, str):
        raise TypeError(f"game name must be a string, got {type(name).__name__}")
    if name.startswith(PETTINGZOO_PREFIX):
        return _make_pettingzoo(name, **kwargs)
    if name not in _REGISTRY:
        known = sorted(_REGISTRY)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown game {name!r}{hint}. Known games: {', '.join(known)}; "
            f"or any PettingZoo game as {_SPEC_FORM}"
        )
    factory = _FACTORIES.get(name)
    if factory is None:
        factory = resolve(_REGISTRY[name].factory_path, what=f"game {name!r}")
    env = factory(**kwargs)
    # a registered PettingZoo game without a team map gets one from its agent names
    return env if hasattr(env, "teams") else with_teams(env, None, name=name)


def check_trusted(name: str, allow: Sequence[str] = ()) -> None:
    """Raise UntrustedGameError unless `make(name)` may run for a config from elsewhere.

    Making a "pettingzoo:" spec imports its module and calls its factory, so a spec from a
    foreign config could run any code. Trusted: a registered name; a spec that `allow`
    names (the whole spec, its module, or a package above it: "mygames" allows
    "pettingzoo:mygames.tag:env"); a spec in TRUSTED_NAMESPACES whose factory is one of
    FACTORY_NAMES and is defined in those namespaces. Nothing outside those namespaces is
    imported here; a module inside them is imported to see where its factory comes from.
    """
    if not isinstance(name, str):
        raise UntrustedGameError(f"game name must be a string, got {type(name).__name__}")
    if not name.startswith(PETTINGZOO_PREFIX):
        if name in _REGISTRY:
            return
        raise UntrustedGameError(
            f"game {name!r} is neither a registered game ({', '.join(sorted(_REGISTRY))}) "
            f"nor a spec {_SPEC_FORM}")
    path = name[len(PETTINGZOO_PREFIX):]
    module, sep, attr = path.partition(":")
    if not sep or not attr or ":" in attr or not _MODULE_NAME.fullmatch(module):
        raise UntrustedGameError(f"malformed game spec {name!r}: expected {_SPEC_FORM}")
    if _allowed(name, module, allow):
        return
    how = (f"if you trust it, allow it with --allow-game {module} (or the environment "
           f"variable ARENA_ALLOW_GAMES={module}; comma-separated for several)")
    if module.split(".")[0] not in TRUSTED_NAMESPACES:
        raise UntrustedGameError(
            f"game {name!r} is not trusted: module {module!r} is outside "
            f"{'/'.join(TRUSTED_NAMESPACES)}; {how}")
    if attr not in FACTORY_NAMES:
        raise UntrustedGameError(
            f"game {name!r} is not trusted: in {module.split('.')[0]!r} only the factories "
            f"{', '.join(FACTORY_NAMES)} may be named, not {attr!r}; {how}")
    try:
        factory = resolve(path, what=f"game spec {name!r}")
    except (ImportError, ValueError) as exc:  # make() would fail the same way
        raise UntrustedGameError(str(exc)) from None
    defined_in = getattr(factory, "__module__", None)
    if not isinstance(defined_in, str) or defined_in.split(".")[0] not in TRUSTED_NAMESPACES:
        raise UntrustedGameError(
            f"game {name!r} is not trusted: {attr!r} in {module!r} is defined in "
            f"{defined_in!r}, outside {'/'.join(TRUSTED_NAMESPACES)}; {how}")


def _allowed(spec: str, module: str, allow: Sequence[str]) -> bool:
    """Whether an allow-list entry names `spec`: whole (with or without the "pettingzoo:"
    prefix), its module, or a package above the module."""
    for item in allow:
        item = item.strip()
        if not item:
            continue
        if ":" in item:
            if (item if item.startswith(PETTINGZOO_PREFIX) else PETTINGZOO_PREFIX + item) == spec:
                return True
        elif module == item or module.startswith(item + "."):
            return True
    return False


def _make_pettingzoo(spec: str, teams: TeamMap | None = None,
                     **kwargs: Any) -> TeamParallelEnv | TeamAECEnv:
    """Import, build and wrap (with its teams) a third-party PettingZoo game."""
    path = spec[len(PETTINGZOO_PREFIX):]
    if path.count(":") != 1:
        raise ValueError(f"malformed game spec {spec!r}: expected {_SPEC_FORM}")
    factory = resolve(path, what=f"game spec {spec!r}")
    return with_teams(factory(**kwargs), teams, name=spec)


def _split_path(path: str, what: str) -> tuple[str, str]:
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr or ":" in attr:
        raise ValueError(f"malformed {what}: {path!r}, expected 'module:attr'")
    return module, attr


def resolve(path: str, what: str) -> Callable[..., Any]:
    """Import "module:attr.sub" and return the attribute, with errors naming `what`.

    Dotted attributes may reach into classes, never through a module the named module
    happens to import ("somemodule:os.system"): a spec names the module it means."""
    module_name, attr = _split_path(path, what)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ImportError(f"{what}: cannot import module {module_name!r}: {e}") from e
    parts = attr.split(".")
    for i, part in enumerate(parts):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(
                f"{what}: module {module_name!r} has no attribute {attr!r}"
            ) from None
        if isinstance(obj, types.ModuleType) and i < len(parts) - 1:
            inner = getattr(obj, "__name__", part)
            raise ValueError(
                f"{what}: {attr!r} reaches into module {inner!r} through {module_name!r}; "
                f"name the module itself, e.g. '{inner}:{'.'.join(parts[i + 1:])}'"
            )
    if not callable(obj):
        raise ValueError(f"{what}: {path!r} is not callable")
    return obj


# The MOBA's held-out panel (issue 12): a style no config trains against, two per-hero
# mixtures and noisy versions of the ladder's bots. Mixtures are for teams of 3 (the
# default); the learning benchmark leaves out members that do not fit a game's teams.
MOBA_PANEL = ("teamfighter", "pusher+lasthitter+teamfighter", "teamfighter+teamfighter+pusher",
              "pusher~0.2", "lasthitter~0.2")

register(
    "moba",
    "games.moba:MobaEnv",
    "Built-in MOBA: two teams of 1-5 heroes, one lane, creeps, towers, fog of war.",
    bots={"passive": "games.moba.bots:registered_bot",
          "lasthitter": "games.moba.bots:registered_bot",
          "pusher": "games.moba.bots:registered_bot",
          "teamfighter": "games.moba.bots:registered_bot"},
    anchors={"passive": 20.0, "lasthitter": 30.0, "pusher": 40.0},
    panel=MOBA_PANEL,
    renderer="games.moba.render:MobaRenderer",
    vectorizer="games.moba.vec:MobaVec",
)
register(
    "memory",
    "games.memory:MemoryGame",
    "Remember a cue shown at the start, name it at the end: proves the LSTM carries memory.",
)
register(
    "connect_four",
    "pettingzoo.classic.connect_four_v3:env",
    "PettingZoo's connect four (turn-based): player_0 vs player_1, one team each.",
    bots={"connect4": "games.bots:connect_four_bot"},
    anchors={"connect4": 20.0},
)


def _load_plugins() -> None:
    """Games that installed packages offer: each entry point of the group "arena.games" is a
    function that calls `register(...)` (in a package's pyproject.toml:
    `[project.entry-points."arena.games"] my_game = "mypkg.arena:register"`), so the `arena`
    command knows them in every process. A plugin that fails is reported, not fatal."""
    import warnings
    from importlib.metadata import entry_points

    for ep in entry_points(group="arena.games"):
        try:
            ep.load()()
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not hide the games
            warnings.warn(f"arena.games plugin {ep.name!r} ({ep.value}) failed: "
                          f"{type(exc).__name__}: {exc}", stacklevel=2)


_load_plugins()
