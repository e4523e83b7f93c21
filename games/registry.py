"""Games by name: `make("moba", team_size=3)`, or any PettingZoo game by import path.

Configs name a game by a string, so the program needs one place that turns a name into
an environment and says clearly what went wrong otherwise. Built-ins are registered by
"module:attr" path and imported only when made, so listing games never imports them
(and the registry works while a game's package is absent or broken).

Third-party games: `make("pettingzoo:<module>:<factory>", teams={...}, **kwargs)` imports
`<module>`, calls `<factory>(**kwargs)`, converts an AECEnv with `aec_to_parallel`, and
wraps the result in `games.adapters.TeamParallelEnv` with the given team map (team name
-> agent-name prefix), e.g.::

    make("pettingzoo:magent2.environments.battle_v4:parallel_env",
         teams={"red": "red_", "blue": "blue_"}, map_size=12)
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pettingzoo import ParallelEnv

from games.adapters import TeamParallelEnv, as_parallel

PETTINGZOO_PREFIX = "pettingzoo:"
_SPEC_FORM = "'pettingzoo:<module>:<factory>', e.g. 'pettingzoo:mpe2.simple_tag_v3:parallel_env'"

Factory = Callable[..., ParallelEnv]


@dataclass(frozen=True)
class GameSpec:
    """A registered game: its name, what it is, and where its factory lives."""

    name: str
    description: str
    factory_path: str  # "module:attr", imported when the game is made


_REGISTRY: dict[str, GameSpec] = {}
_FACTORIES: dict[str, Factory] = {}  # factories registered as objects, not paths


def register(
    name: str, factory: Factory | str, description: str = "", *, overwrite: bool = False
) -> GameSpec:
    """Register `factory` (a callable, or a lazy "module:attr" path) under `name`.

    Names may not contain ':' (reserved for "pettingzoo:" specs). Registering a taken
    name raises ValueError unless `overwrite=True`.
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
    spec = GameSpec(name=name, description=description, factory_path=path)
    _REGISTRY[name] = spec
    return spec


def list_games() -> list[GameSpec]:
    """The registered games, in registration order (pettingzoo: specs not included)."""
    return list(_REGISTRY.values())


def make(name: str, **kwargs: Any) -> ParallelEnv:
    """Build the game `name` with `kwargs`.

    `name` is a registered game, or "pettingzoo:<module>:<factory>" together with a
    `teams=` map (team name -> agent-name prefix, or a list of prefixes). Unknown names,
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
            f"or any PettingZoo game as {_SPEC_FORM} with teams={{...}}"
        )
    factory = _FACTORIES.get(name)
    if factory is None:
        factory = _resolve(_REGISTRY[name].factory_path, what=f"game {name!r}")
    return factory(**kwargs)


def _make_pettingzoo(spec: str, teams: Any = None, **kwargs: Any) -> TeamParallelEnv:
    """Import, build, convert to parallel and wrap a third-party PettingZoo game."""
    path = spec[len(PETTINGZOO_PREFIX):]
    if path.count(":") != 1:
        raise ValueError(f"malformed game spec {spec!r}: expected {_SPEC_FORM}")
    if teams is None:
        raise ValueError(
            f"game {spec!r} needs a team map: teams={{team name: agent-name prefix}}, "
            "e.g. teams={'red': 'red_', 'blue': 'blue_'}"
        )
    factory = _resolve(path, what=f"game spec {spec!r}")
    env = as_parallel(factory(**kwargs), name=spec)
    return TeamParallelEnv(env, teams)


def _split_path(path: str, what: str) -> tuple[str, str]:
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr or ":" in attr:
        raise ValueError(f"malformed {what}: {path!r}, expected 'module:attr'")
    return module, attr


def _resolve(path: str, what: str) -> Callable[..., Any]:
    """Import "module:attr.sub" and return the attribute, with errors naming `what`."""
    module_name, attr = _split_path(path, what)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ImportError(f"{what}: cannot import module {module_name!r}: {e}") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(
                f"{what}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    if not callable(obj):
        raise ValueError(f"{what}: {path!r} is not callable")
    return obj


register(
    "moba",
    "games.moba:MobaEnv",
    "Built-in MOBA: two teams of 1-5 heroes, one lane, creeps, towers, fog of war.",
)
register(
    "memory",
    "games.memory:MemoryGame",
    "Remember a cue shown at the start, name it at the end: proves the LSTM carries memory.",
)
