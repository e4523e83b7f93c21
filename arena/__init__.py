"""Arena: league self-play for team games, the program (CLI, training, tournaments).

`arena` on the command line is `arena.cli:main`; `python -m arena` runs the same.
Importing this package is cheap: the commands import what they need when they run.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("arena-selfplay")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

# Modules that moved into the program's rooms (learn/, play/, scale/): code that imports
# them by their old names keeps working, with the same module objects (a monkeypatch of
# `arena.rollout.X` patches `arena.learn.rollout.X`), and a DeprecationWarning naming the
# new home.
MOVED_MODULES = {
    "arena.rollout": "arena.learn.rollout",
    "arena.learner": "arena.learn.learner",
    "arena.opponents": "arena.learn.opponents",
    "arena.actors": "arena.scale.actors",
    "arena.transport": "arena.scale.transport",
    "arena.wire": "arena.scale.wire",
    "arena.league_link": "arena.scale.league_link",
    "arena.distributed": "arena.scale.distributed",
    "arena.media": "arena.play.media",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as the module at its new one."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED_MODULES else None

    def create_module(self, spec):
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning,
                      stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        """The module at the new name is already executed."""


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())
