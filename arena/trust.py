"""Which games this process may build from a config it did not write itself.

A game spec is code (games/registry.py: `make` imports its module and calls its factory), so
a config from elsewhere — the hello of a learner over the network, a run directory or a
checkpoint someone handed over — names only games that `games.registry.check_trusted`
accepts. Beyond registered games and PettingZoo's own namespaces, the user allows modules
for the whole process: the environment variable ARENA_ALLOW_GAMES (comma-separated) plus
what `--allow-game` options add through `allow_games`. A config the user wrote (`arena train
CONFIG`) is theirs and is not checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from games.registry import UntrustedGameError, check_trusted

ENV_VAR = "ARENA_ALLOW_GAMES"

_ALLOWED: list[str] = []  # added by allow_games (command-line options) in this process


def allow_games(items: Iterable[str]) -> None:
    """Trust the game specs, modules or packages in `items` for the rest of this process
    (each like an `--allow-game` value: "mygames", "mygames.tag" or
    "pettingzoo:mygames.tag:env"); ValueError for an empty or blank item."""
    for item in items:
        if not isinstance(item, str) or not item.strip() or any(c.isspace() for c in item.strip()):
            raise ValueError(f"--allow-game: expected a module or game spec such as 'mygames' "
                             f"or 'pettingzoo:mygames.tag:env', got {item!r}")
        _ALLOWED.append(item.strip())


def allowed() -> tuple[str, ...]:
    """The allow-list now: ARENA_ALLOW_GAMES's entries, then those `allow_games` added."""
    from_env = [x.strip() for x in os.environ.get(ENV_VAR, "").split(",") if x.strip()]
    return (*from_env, *_ALLOWED)


def check_game(name: str, source: str) -> None:
    """UntrustedGameError, its message starting with `source` (the file or the learner the
    config came from), unless this process may build game `name`."""
    try:
        check_trusted(name, allowed())
    except UntrustedGameError as exc:
        raise UntrustedGameError(f"{source}: {exc}") from None


def check_config_game(config: object, source: str) -> None:
    """`check_game` on the game a plain config mapping names (as sent by a learner or
    saved in a checkpoint), before anything else of the config is read: an untrusted game
    is the first thing to refuse, whatever else is wrong with the config."""
    from arena.config import GameConfig

    game = config.get("game") if isinstance(config, Mapping) else None
    name = game.get("name", GameConfig.name) if isinstance(game, Mapping) else GameConfig.name
    check_game(name if isinstance(name, str) else repr(name), source)


def check_config_file(path: Path) -> None:
    """`check_config_game` on a YAML config file (read as plain data, never as objects);
    a file that is not a readable mapping is left to the config loader to report."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return
    check_config_game(data, str(path))
