"""Team games behind PettingZoo's API (ParallelEnv, or AECEnv for turn-based games), made
by name.

`make(name, **kwargs)` builds a registered game ("moba", "memory") or any PettingZoo
game given as "pettingzoo:<module>:<factory>" (teams from an optional `teams=` prefix map,
else from the agent names). Every game it returns exposes `teams` (team -> agents) and
`agent_team` (agent -> team).
"""

from games.adapters import (
    TeamAECEnv,
    TeamParallelEnv,
    default_teams,
    team_spaces_differ,
    with_teams,
)
from games.memory import MemoryGame
from games.registry import (
    GameSpec,
    UntrustedGameError,
    check_trusted,
    list_games,
    make,
    register,
)

__all__ = [
    "GameSpec",
    "MemoryGame",
    "TeamAECEnv",
    "TeamParallelEnv",
    "UntrustedGameError",
    "check_trusted",
    "default_teams",
    "list_games",
    "make",
    "register",
    "team_spaces_differ",
    "with_teams",
]
