"""Third-party PettingZoo games as team games.

The rest of Arena needs to know which team every agent plays for (league matchmaking,
team rewards, one policy per team). Built-in games expose that as `teams` (team ->
agents) and `agent_team` (agent -> team). A third-party game does not, so
`TeamParallelEnv` adds both from a map of agent-name prefixes, e.g. magent2 battle:
`{"red": "red_", "blue": "blue_"}`, and otherwise passes the `ParallelEnv` API through
unchanged (same spaces, same dicts, same objects).

Roles: Arena trains one network per role, and a role is a team. In a symmetric game
(battle) both teams have identical spaces and could share weights; in an asymmetric one
(mpe2 simple_tag: `adversary_*` predators vs `agent_*` prey) they cannot.
`team_spaces_differ` tells which case a game is; `role_of(agent)` names the agent's
role (its team). Agents within one team are expected to share spaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.conversions import aec_to_parallel
from pettingzoo.utils.wrappers import BaseParallelWrapper

TeamMap = Mapping[str, str | Sequence[str]]


def as_parallel(env: Any, name: str = "game") -> ParallelEnv:
    """Return `env` as a ParallelEnv, converting an AECEnv with `aec_to_parallel`.

    Raises TypeError for anything else, and ValueError for an AEC game PettingZoo cannot
    run in parallel (turn-based games).
    """
    if isinstance(env, ParallelEnv):
        return env
    if isinstance(env, AECEnv):
        try:
            return aec_to_parallel(env)
        except AssertionError as e:  # pettingzoo asserts metadata["is_parallelizable"]
            raise ValueError(
                f"{name}: this AEC game cannot be converted to a ParallelEnv "
                f"(aec_to_parallel refused: {e})"
            ) from e
    raise TypeError(
        f"{name}: expected a pettingzoo ParallelEnv or AECEnv, got {type(env).__name__}"
    )


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


class TeamParallelEnv(BaseParallelWrapper):
    """A ParallelEnv passed through unchanged, plus `teams`, `agent_team`, roles.

    reset/step/render/close/state/observation_space/action_space and every other public
    attribute (agents, possible_agents, metadata, render_mode, state_space, ...) are
    those of the wrapped env; `unwrapped` is the wrapped env's `unwrapped`, as for
    PettingZoo's own wrappers.
    """

    def __init__(self, env: ParallelEnv, teams: TeamMap) -> None:
        if not isinstance(env, ParallelEnv):
            raise TypeError(
                f"TeamParallelEnv wraps a pettingzoo ParallelEnv, got {type(env).__name__}"
                " (convert an AECEnv with games.adapters.as_parallel)"
            )
        super().__init__(env)
        possible = getattr(env, "possible_agents", None)
        if not possible:
            raise ValueError(
                f"TeamParallelEnv: {env} has no possible_agents before reset(); "
                "the team map needs them up front"
            )
        self.teams: dict[str, list[str]] = teams_from_prefixes(possible, teams)
        self.team_prefixes: dict[str, tuple[str, ...]] = {
            t: (p,) if isinstance(p, str) else tuple(p) for t, p in teams.items()
        }
        self.agent_team: dict[str, str] = {
            agent: team for team, members in self.teams.items() for agent in members
        }
        self.team_spaces_differ: bool = team_spaces_differ(self)

    def role_of(self, agent: str) -> str:
        """The role an agent plays, which is its team: one network per role."""
        return self.agent_team[agent]

    def __getattr__(self, name: str) -> Any:
        # Guard `env` itself so a half-built wrapper (e.g. during unpickling) raises
        # AttributeError instead of recursing forever.
        if name.startswith("_") or name == "env":
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return getattr(self.env, name)

    def __str__(self) -> str:
        return f"TeamParallelEnv<{self.env}>"
