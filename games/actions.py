"""Checking the actions handed to a game's `step`: one rule for every built-in game.

A ParallelEnv here takes exactly one action per live agent. An action outside the action
space (not an integer, or out of range) is a programming error and raises; an action
inside the space that the current mask forbids is the game's business (played as a no-op
and counted in `infos[agent]["illegal_action"]`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def check_agents(game: str, actions: Mapping[str, Any], live: Iterable[str]) -> None:
    """Raise ValueError unless `actions` has exactly one entry per live agent."""
    given, live_set = set(actions), set(live)
    if given != live_set:
        missing, unknown = sorted(live_set - given), sorted(given - live_set)
        raise ValueError(
            f"{game}.step: actions must have exactly one entry per live agent; "
            f"missing {missing}, unknown {unknown}")


def as_discrete(game: str, agent: str, action: Any, n: int) -> int:
    """The action as an int in 0..n-1; TypeError/ValueError naming the agent otherwise."""
    if isinstance(action, np.ndarray):
        if action.size != 1 or action.dtype.kind not in "iu":
            raise ValueError(
                f"{game}.step: action of {agent!r} must be one integer in 0..{n - 1}, "
                f"got an array of shape {action.shape} and dtype {action.dtype}")
        action = action.reshape(()).item()
    elif isinstance(action, bool) or not isinstance(action, (int, np.integer)):
        raise TypeError(
            f"{game}.step: action of {agent!r} must be an int in 0..{n - 1}, "
            f"got {type(action).__name__} {action!r}")
    value = int(action)
    if not 0 <= value < n:
        raise ValueError(f"{game}.step: action of {agent!r} must lie in 0..{n - 1}, got {value}")
    return value


def as_action_batch(owner: str, actions: Any, shape: tuple[int, int], dims: str) -> np.ndarray:
    """A batched action array of the given shape and an integer dtype, or a clear error.
    `dims` names the axes for the message, e.g. "(num_games, num_heroes)"."""
    actions = np.asarray(actions)
    if actions.shape != shape:
        raise ValueError(f"{owner}.step: actions must have shape {dims} = {shape}, "
                         f"got {actions.shape}")
    if actions.dtype.kind not in "iu":
        raise TypeError(f"{owner}.step: actions must be integers, got dtype {actions.dtype}")
    return actions
