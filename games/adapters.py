"""Third-party PettingZoo games as team games.

The rest of Arena needs to know which team every agent plays for (league matchmaking,
team rewards, one policy per team). Built-in games expose that as `teams` (team ->
agents) and `agent_team` (agent -> team). A third-party game does not, so a thin wrapper
adds both and otherwise passes the game's API through unchanged (same spaces, same dicts,
same objects): `TeamParallelEnv` for a `ParallelEnv`, `TeamAECEnv` for a turn-based
`AECEnv` (stepped natively by `games.vector.AECVec`; PettingZoo's `aec_to_parallel` cannot
run turn-based games, and would hide whose turn it is). `with_teams` picks the wrapper.

Team maps: an explicit map of agent-name prefixes, e.g. magent2 battle
`{"red": "red_", "blue": "blue_"}`; else the game's own `teams` attribute where it has one
(team -> agents, every agent in exactly one team: `declared_teams`); else `default_teams`
groups agents by their name without the index (`red_0` -> `red`, `adversary_2` -> `adversary`); when that
puts every agent into one team (connect four's `player_0`/`player_1`, poker's
`player_*`), each agent is its own team: a game where all agents share a name is a game
of each against each.

Roles: Arena trains one network per role. In a symmetric game (battle) both teams have
identical spaces and could share weights; in an asymmetric one (mpe2 simple_tag:
`adversary_*` predators vs `agent_*` prey) they cannot. `team_spaces_differ` tells which
case a game is; `role_of(agent)` names the agent's team. The batched games
(games/vector.py) make a role of each kind of agent (its spaces) within a team, shared by
the teams that have that kind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper, BaseWrapper

TeamMap = Mapping[str, str | Sequence[str]]

_INDEXED_NAME = re.compile(r"(.+)_\d+")


def with_teams(env: Any, teams: TeamMap | None = None,
               name: str = "game") -> TeamParallelEnv | TeamAECEnv:
    """Wrap a ParallelEnv in `TeamParallelEnv` and an AECEnv in `TeamAECEnv`.

    `teams` is a prefix map (see `teams_from_prefixes`) or None for `default_teams`.
    Raises TypeError for anything that is neither.
    """
    if isinstance(env, ParallelEnv):
        return TeamParallelEnv(env, teams)
    if isinstance(env, AECEnv):
        return TeamAECEnv(env, teams)
    raise TypeError(
        f"{name}: expected a pettingzoo ParallelEnv or AECEnv, got {type(env).__name__}"
    )


def agent_kind(agent: str) -> str:
    """An agent's name without a final "_<digits>" index ("adversary_2" -> "adversary")."""
    m = _INDEXED_NAME.fullmatch(agent)
    return m.group(1) if m else agent


def declared_teams(env: Any, possible_agents: Sequence[str]) -> dict[str, list[str]] | None:
    """The game's own `teams` attribute (team -> agents), where it has one that puts every
    possible agent in exactly one team; else None."""
    declared = getattr(env, "teams", None)
    if not isinstance(declared, Mapping) or not declared:
        return None
    teams: dict[str, list[str]] = {}
    for team, members in declared.items():
        if not isinstance(team, str) or isinstance(members, str) \
                or not isinstance(members, Sequence) or not members:
            return None
        teams[team] = list(members)
    listed = [a for members in teams.values() for a in members]
    if sorted(listed) != sorted(possible_agents):
        return None
    return teams


def default_teams(possible_agents: Sequence[str]) -> dict[str, list[str]]:
    """Teams from agent names alone: agents grouped by the part of their name before a
    final "_<digits>" (a name without such an index is a group of its own), in order of
    first appearance; if that gives a single group of every agent, one team per agent.
    """
    groups: dict[str, list[str]] = {}
    for agent in possible_agents:
        groups.setdefault(agent_kind(agent), []).append(agent)
    if len(groups) == 1 and len(possible_agents) > 1:
        return {agent: [agent] for agent in possible_agents}
    return groups


def teams_from_prefixes(
    possible_agents: Sequence[str], team_map: TeamMap
) -> dict[str, list[str]]:
    """Assign every agent to the one team whose prefix its name starts with.

    `team_map` maps team name -> prefix (or a sequence of prefixes). Every agent must
    match exactly one team and every team must get at least one agent, else a
    ValueError names the unmatched / doubly matched agents or the empty teams.
    Teams keep the order of `team_map`; agents keep the order of `possible_agents`.
    """
    if not isinstance(team_map, Mapping) or not team_map:
        raise ValueError(
            "teams must be a non-empty dict of team name -> agent-name prefix, "
            f"e.g. {{'red': 'red_', 'blue': 'blue_'}}; got {team_map!r}"
        )
    prefixes: dict[str, tuple[str, ...]] = {}
    for team, value in team_map.items():
        if not isinstance(team, str) or not team:
            raise ValueError(f"teams: team names must be non-empty strings, got {team!r}")
        is_seq = isinstance(value, Sequence) and not isinstance(value, str)
        items = tuple(value) if is_seq else (value,)
        if not items or not all(isinstance(p, str) and p for p in items):
            raise ValueError(
                f"teams: team {team!r} needs a non-empty prefix string (or a list of "
                f"them), got {value!r}"
            )
        prefixes[team] = items

    teams: dict[str, list[str]] = {team: [] for team in prefixes}
    unmatched: list[str] = []
    doubly: dict[str, list[str]] = {}
    for agent in possible_agents:
        hits = [t for t, ps in prefixes.items() if any(agent.startswith(p) for p in ps)]
        if not hits:
            unmatched.append(agent)
        elif len(hits) > 1:
            doubly[agent] = hits
        else:
            teams[hits[0]].append(agent)

    problems = []
    if unmatched:
        problems.append(f"agents matching no team: {unmatched}")
    if doubly:
        problems.append(f"agents matching several teams: {doubly}")
    empty = [t for t, members in teams.items() if not members]
    if empty and not problems:
        problems.append(f"teams matching no agent: {empty}")
    if problems:
        raise ValueError(
            "teams: every agent must match exactly one team prefix; "
            + "; ".join(problems)
            + f" (team map {dict(prefixes)}, agents {list(possible_agents)})"
        )
    return teams


def team_spaces_differ(env: Any) -> bool:
    """True if agents of different teams have different observation or action spaces.

    Works on any env with `teams`, so a built-in game can be asked the same question.
    """
    firsts = [members[0] for members in env.teams.values() if members]
    ref = firsts[0]
    return any(
        env.observation_space(a) != env.observation_space(ref)
        or env.action_space(a) != env.action_space(ref)
        for a in firsts[1:]
    )


class _TeamInfo:
    """What both wrappers add: `teams`, `agent_team`, `team_spaces_differ`, `role_of`."""

    env: Any
    teams: dict[str, list[str]]
    agent_team: dict[str, str]
    team_spaces_differ: bool

    def _set_teams(self, env: Any, teams: TeamMap | None) -> None:
        possible = getattr(env, "possible_agents", None)
        if not possible:
            raise ValueError(
                f"{type(self).__name__}: {env} has no possible_agents before reset(); "
                "the team map needs them up front"
            )
        if teams is not None:
            self.teams = teams_from_prefixes(possible, teams)
        else:
            self.teams = declared_teams(env, possible) or default_teams(possible)
        self.agent_team = {
            agent: team for team, members in self.teams.items() for agent in members
        }
        self.team_spaces_differ = team_spaces_differ(self)

    def role_of(self, agent: str) -> str:
        """The role an agent plays, which is its team: one network per role."""
        return self.agent_team[agent]

    def __getattr__(self, name: str) -> Any:
        # Guard `env` itself so a half-built wrapper (e.g. during unpickling) raises
        # AttributeError instead of recursing forever. PettingZoo's AEC wrappers pass
        # `_cumulative_rewards` through (AECEnv.last reads it), so this does too.
        if (name.startswith("_") and name != "_cumulative_rewards") or name == "env":
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return getattr(self.env, name)

    def __str__(self) -> str:
        return f"{type(self).__name__}<{self.env}>"


class TeamParallelEnv(_TeamInfo, BaseParallelWrapper):
    """A ParallelEnv passed through unchanged, plus `teams`, `agent_team`, roles.

    reset/step/render/close/state/observation_space/action_space and every other public
    attribute (agents, possible_agents, metadata, render_mode, state_space, ...) are
    those of the wrapped env; `unwrapped` is the wrapped env's `unwrapped`, as for
    PettingZoo's own wrappers. `teams=None` uses `default_teams`.
    """

    def __init__(self, env: ParallelEnv, teams: TeamMap | None = None) -> None:
        if not isinstance(env, ParallelEnv):
            raise TypeError(
                f"TeamParallelEnv wraps a pettingzoo ParallelEnv, got {type(env).__name__}"
                " (wrap an AECEnv in TeamAECEnv, or let games.adapters.with_teams choose)"
            )
        BaseParallelWrapper.__init__(self, env)
        self._set_teams(env, teams)


class TeamAECEnv(_TeamInfo, BaseWrapper):
    """A turn-based AECEnv passed through unchanged, plus `teams`, `agent_team`, roles.

    reset/step/observe/last/agent_iter and the public attributes (agents, agent_selection,
    rewards, terminations, truncations, infos, ...) are those of the wrapped env, read
    live; `unwrapped` is the wrapped env's `unwrapped`. `teams=None` uses `default_teams`.
    """

    def __init__(self, env: AECEnv, teams: TeamMap | None = None) -> None:
        if not isinstance(env, AECEnv):
            raise TypeError(
                f"TeamAECEnv wraps a pettingzoo AECEnv, got {type(env).__name__}"
                " (wrap a ParallelEnv in TeamParallelEnv, or let games.adapters.with_teams "
                "choose)"
            )
        BaseWrapper.__init__(self, env)
        self._set_teams(env, teams)
