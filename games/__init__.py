"""Team games behind PettingZoo's ParallelEnv API, made by name.

`make(name, **kwargs)` builds a registered game ("moba", "memory") or any PettingZoo
game given as "pettingzoo:<module>:<factory>" with a `teams=` prefix map. Every game it
returns exposes `teams` (team -> agents) and `agent_team` (agent -> team).
"""

from games.adapters import TeamParallelEnv, as_parallel, team_spaces_differ
from games.memory import MemoryGame
from games.registry import (
    GameSpec, UntrustedGameError, check_trusted, list_games, make, register,
)

__all__ = [
    "GameSpec",
    "MemoryGame",
    "TeamParallelEnv",
    "UntrustedGameError",
    "as_parallel",
    "check_trusted",
    "list_games",
    "make",
    "register",
    "team_spaces_differ",
]
