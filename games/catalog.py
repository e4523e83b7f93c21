"""What each game offers, in words: the page `arena games` prints for a game.

Teams and their agents, whether the game is turn-based, whether it renders, its roles (one
network each: observation size, actions, mask), its scripted bots with their rating
anchors, its held-out panel of bot specs, and the observation and action spaces.
"""

from __future__ import annotations

from typing import Any

from pettingzoo import AECEnv


def describe(name: str, **options: Any) -> list[str]:
    """The lines describing game `name` built with `options` (an error propagates)."""
    from games.registry import bot_anchors, bot_names, make, panel
    from games.vector import make_vec

    env = make(name, **options)
    try:
        lines = _teams_and_spaces(env)
        inner = getattr(env, "unwrapped", env)
        turn_based = isinstance(env, AECEnv) or isinstance(inner, AECEnv)
        modes = list((getattr(env, "metadata", None) or {}).get("render_modes", []))
        lines.insert(0, f"  turn-based: {'yes' if turn_based else 'no'}; render: "
                        f"{'rgb_array' if 'rgb_array' in modes else 'no'}")
    finally:
        close = getattr(env, "close", None)
        if callable(close):
            close()
    vec = make_vec(name, 1, **options)
    try:
        lines.append("  roles (one network each):")
        for role in vec.roles:
            agents = ", ".join(vec.slot_agents[s] for s in role.slots)
            lines.append(f"    {role.name}: {role.obs_dim} observations, {role.num_actions} "
                         f"actions{' (masked)' if role.has_mask else ''}; agents {agents}")
    finally:
        vec.close()
    anchors = bot_anchors(name)
    lines.append("  bots: " + ", ".join(f"{b} (anchor {anchors[b]:g})" if b in anchors else b
                                        for b in bot_names(name)))
    held_out = panel(name)
    if held_out:
        lines.append("  held-out panel (never in league.bots): " + ", ".join(held_out))
    return lines


def _teams_and_spaces(env: Any) -> list[str]:
    agents = list(getattr(env, "possible_agents", []))
    teams: dict[str, list[str]] = dict(getattr(env, "teams", {}) or {"(all)": agents})
    lines = ["  teams:"] + [f"    {team}: {', '.join(members)}" for team, members in teams.items()]
    # one line per distinct space; name the agents only when they differ
    for label, get in (("observation space", env.observation_space),
                       ("action space", env.action_space)):
        per_team = {team: [str(get(a)) for a in members] for team, members in teams.items()}
        distinct = {s for ss in per_team.values() for s in ss}
        if len(distinct) == 1:
            lines.append(f"  {label}: {distinct.pop()}")
        else:
            for team, ss in per_team.items():
                for agent, s in zip(teams[team], ss):
                    lines.append(f"  {label} ({agent}): {s}")
    return lines
