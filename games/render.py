"""Frames of a game for GIFs (`arena watch`, training match GIFs): one renderer per game.

A renderer draws game 0 of a `VecGame` as an (H, W, 3) uint8 frame. `extra_options` are the
options its vec must be made with. The built-in MOBA registers its own (games/moba/render.py:
team views with fog of war, a chosen scale); every other game renders through PettingZoo's
own `render_mode="rgb_array"` (`EnvRenderer`), and a game that cannot gets a clear
`RenderError` before anything is played.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from games.gif import COLOUR_CUBE


class RenderError(ValueError):
    """A game that cannot draw frames (or not the view asked for)."""


class Renderer(Protocol):
    extra_options: dict[str, Any]

    def frame(self, vec: Any) -> np.ndarray:
        """Game 0 of `vec` now, as (H, W, 3) uint8."""


def as_rgb_frame(game: str, frame: Any) -> np.ndarray:
    """A frame as (H, W, 3) uint8, or a RenderError naming the game and what it gave."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] not in (3, 4) \
            or frame.shape[0] < 1 or frame.shape[1] < 1:
        what = type(frame).__name__ if not isinstance(frame, np.ndarray) else \
            f"an array of shape {frame.shape}"
        raise RenderError(f"game {game!r} cannot render: render() gave {what}, expected an "
                          f"(H, W, 3) RGB image")
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(frame[:, :, :3])


class EnvRenderer:
    """PettingZoo's `render_mode="rgb_array"`: the first game's `env.render()`. Its colours
    are not known up front, so streamed GIFs keep a general colour cube in their palette."""

    extra_options = {"render_mode": "rgb_array"}
    exact_colours = COLOUR_CUBE

    def __init__(self, game: str, view: str | None = None, scale: int | None = None) -> None:
        if view is not None:
            raise RenderError(f"game {game!r} has no team views to render; leave out the view "
                              f"(it draws what its own render() shows)")
        if scale is not None:
            raise RenderError(f"game {game!r} draws at its own size; leave out the scale")
        self.game = game

    def frame(self, vec: Any) -> np.ndarray:
        envs = getattr(vec, "envs", None)
        if not envs:
            raise RenderError(f"game {self.game!r} cannot render: its batch has no PettingZoo "
                              f"environments")
        try:
            image = envs[0].render()
        except Exception as exc:  # noqa: BLE001 - any failure of a game's renderer
            raise RenderError(f"game {self.game!r} cannot render: render() raised "
                              f"{type(exc).__name__}: {exc}") from None
        return as_rgb_frame(self.game, image)


def renderer(game: str, view: str | None = None, scale: int | None = None) -> Renderer:
    """The renderer of `game` (its registered one, else `EnvRenderer`)."""
    from games.registry import renderer_path, resolve

    path = renderer_path(game)
    factory = EnvRenderer if path is None else resolve(path, what=f"renderer of game {game!r}")
    return factory(game, view, scale)


def make_rendering_vec(game: str, options: dict[str, Any], render: Renderer, **kwargs: Any):
    """One game of `game` that `render` can draw (a RenderError if the game refuses the
    options rendering needs, e.g. a factory without `render_mode`)."""
    from games.vector import make_vec

    try:
        return make_vec(game, 1, **{**dict(options), **render.extra_options}, **kwargs)
    except (TypeError, ValueError) as exc:
        if render.extra_options and "render_mode" in str(exc):
            raise RenderError(f"game {game!r} cannot render: its factory takes no "
                              f"render_mode ({exc})") from None
        raise
