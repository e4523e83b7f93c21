"""Arena: league self-play for team games, the program (CLI, training, tournaments).

`arena` on the command line is `arena.cli:main`; `python -m arena` runs the same.
Importing this package is cheap: the commands import what they need when they run.
"""

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("arena-selfplay")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
