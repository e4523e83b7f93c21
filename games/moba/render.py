"""Top-down RGB pictures of a MOBA game, and animated GIFs of matches.

`render_frame(core, game, team)` draws one game of a `MobaCore` batch as an (H, W, 3) uint8
image, `map_size * scale` pixels square, with the map's y axis pointing up (radiant's base
bottom-left, dire's top-right):

* ground, the lanes (from `layout.waypoints()`), each base's zone (`base_radius` around the
  ancient, where items are bought) and fountain, faint outlines of every building site;
* towers and ancients as squares, creeps as small dots, heroes as bigger circles with their
  slot number (`radiant_1` shows "1"), in team colours (radiant green, dire red), each
  with an HP bar (creeps only once hurt); dead units are not drawn;
* a header line: tick, game time (2 ticks per second), each team's net worth, the view.

`team=None` is the full (spectator) view. `team="radiant"` or `"dire"` draws that team's
view: the map outside the vision circles of its live units is darkened, enemy units that
the team does not see (`core.vis[team, game, u] == 0`) are not drawn at all, and the enemy
team's net worth is not shown. Nothing the team cannot know reaches the picture: only the
static map (lane, bases, building sites) is drawn for the whole map.

`FrameRecorder` is an `on_step(core)` callback that collects frames while a match runs, or
streams them into a GIF file as they are drawn (`out=`: memory stays about one frame);
`write_gif` writes frames as an animated GIF atomically (temporary file + rename);
`frames_to_gif_bytes` gives the same GIF as bytes (for TensorBoard or a web page).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from games.gif import ClipPreview, Recorder, gif_bytes, save_gif
from games.moba.config import MobaConfig
from games.moba.kernels import G_DONE, G_TICK, G_WINNER
from games.moba.layout import (
    ANCIENT,
    F_HP,
    F_MAX_HP,
    F_VISION,
    F_X,
    F_Y,
    HERO,
    I_ALIVE,
    I_KIND,
    I_TEAM,
    TEAM_NAMES,
    TOWER,
    MobaLayout,
)
from games.render import RenderError

# ---- colours ---------------------------------------------------------------------------
GROUND = (46, 58, 44)
LANE = (112, 98, 74)
LANE_EDGE = (92, 82, 64)
BASE_ZONE = ((48, 84, 52), (86, 50, 46))  # radiant, dire
TEAM_COLOURS = ((64, 200, 96), (222, 64, 52))
CREEP_COLOURS = ((140, 230, 150), (250, 150, 130))
SITE_OUTLINE = (90, 96, 86)
HP_BACK = (24, 24, 24)
HEADER_BACK = (16, 18, 16)
HEADER_TEXT = (235, 235, 225)
FOUNTAIN = (70, 110, 150)
ANCIENT_CORE = (245, 230, 140)
OUTLINE_DARK = (20, 20, 20)
OUTLINE_LIGHT = (250, 250, 250)
NUMBER = (10, 10, 10)
FOG_FACTOR = 0.42  # brightness of the map outside a team's vision
TICKS_PER_SECOND = 2.0


def _team_index(team: str | int | None) -> int | None:
    if team is None:
        return None
    if isinstance(team, str) and team in TEAM_NAMES:
        return TEAM_NAMES.index(team)
    if isinstance(team, (int, np.integer)) and not isinstance(team, bool) and team in (0, 1):
        return int(team)
    raise RenderError(f"render_frame: the view (team) must be None (full view), 'radiant' or "
                      f"'dire', got {team!r}")


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


class _Geometry:
    """Map-to-pixel transform and sizes for one (config, scale)."""

    def __init__(self, config: MobaConfig, scale: int) -> None:
        self.config = config
        self.layout = MobaLayout(config)
        self.scale = s = float(scale)
        self.map_size = m = float(config.map_size)
        self.px = int(round(m * s))
        self.hero_r = max(3.0, 1.05 * s)
        self.creep_r = max(1.5, 0.42 * s)
        self.tower_h = max(3.0, 0.95 * s)
        self.ancient_h = max(4.0, 1.45 * s)
        self.bar_h = max(2, int(round(s / 3)))
        self.header_h = max(9, int(round(self.px / 30)))  # one header line

    def xy(self, x: float, y: float) -> tuple[float, float]:
        return x * self.scale, (self.map_size - y) * self.scale


@lru_cache(maxsize=8)
def _geometry(config: MobaConfig, scale: int) -> _Geometry:
    return _Geometry(config, scale)


@lru_cache(maxsize=8)
def _background(config: MobaConfig, scale: int) -> tuple[Image.Image, Image.Image]:
    """The static map (full brightness, and darkened for fog); the same for every frame."""
    g = _geometry(config, scale)
    lay = g.layout
    img = Image.new("RGB", (g.px, g.px), GROUND)
    d = ImageDraw.Draw(img)
    s = g.scale
    # base zones (where heroes buy and the fountain heals)
    for team, (bx, by) in enumerate(lay.base_positions()):
        cx, cy = g.xy(bx, by)
        r = config.base_radius * s
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=BASE_ZONE[team])
    # lanes: a wide edge stroke then the lane itself, with round joints
    wp = lay.waypoints()[0]  # radiant's paths; dire walks the same lanes reversed
    for width, colour in ((2.9 * s, LANE_EDGE), (2.3 * s, LANE)):
        w = max(2, int(round(width)))
        for path in wp:
            pts = [g.xy(x, y) for x, y in path]
            d.line(pts, fill=colour, width=w, joint="curve")
            for px, py in pts:
                d.ellipse((px - w / 2, py - w / 2, px + w / 2, py + w / 2), fill=colour)
    # fountains
    for team, (fx, fy) in enumerate(lay.fountains()):
        cx, cy = g.xy(fx, fy)
        r = max(3.0, 1.3 * s)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=FOUNTAIN,
                  outline=TEAM_COLOURS[team], width=max(1, int(s // 4)))
    # building sites (static knowledge: drawn whether or not the building stands)
    for pos, h in _building_sites(lay, g):
        cx, cy = g.xy(*pos)
        d.rectangle((cx - h, cy - h, cx + h, cy + h), outline=SITE_OUTLINE, width=1)
    fog = Image.fromarray((np.asarray(img, dtype=np.float32) * FOG_FACTOR).astype(np.uint8))
    return img, fog


def _building_sites(lay: MobaLayout, g: _Geometry) -> list[tuple[np.ndarray, float]]:
    sites = [(p, g.ancient_h) for p in lay.base_positions()]
    towers = lay.tower_positions()  # (2, lanes, 2, 2)
    sites += [(p, g.tower_h) for p in towers.reshape(-1, 2)]
    return sites


def _net_worth_by_team(core: Any, game: int) -> tuple[float, float]:
    nw = np.asarray(core.net_worth())[game]
    n = core.config.team_size
    return float(nw[:n].sum()), float(nw[n:].sum())


def render_frame(core: Any, game: int = 0, team: str | None = None, scale: int = 6) -> np.ndarray:
    """One game of `core` as an (H, W, 3) uint8 image; see the module docstring.

    `core` is a `MobaCore` (after `reset`); `game` indexes its batch; `team` picks the
    view (None = full, "radiant"/"dire" = that team's fog of war); `scale` is pixels per
    map unit.
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or not 1 <= scale <= 32:
        raise ValueError(f"render_frame: scale must be an int from 1 to 32, got {scale!r}")
    if not 0 <= game < core.num_games:
        raise ValueError(f"render_frame: game must lie in 0..{core.num_games - 1}, got {game!r}")
    t = _team_index(team)
    scale = int(scale)
    g = _geometry(core.config, scale)
    bg, bg_fog = _background(core.config, scale)

    uf = core.unit_f[:, game, :]
    ui = core.unit_i[:, game, :]
    alive = ui[I_ALIVE] == 1
    teams = ui[I_TEAM]
    if t is None:
        shown = alive
        img = bg.copy()
    else:
        # vision circles of the team's live units light the map; the rest stays dark
        own = np.flatnonzero(alive & (teams == t))
        mask = Image.new("L", bg.size, 0)
        md = ImageDraw.Draw(mask)
        for u in own:
            cx, cy = g.xy(uf[F_X, u], uf[F_Y, u])
            r = float(uf[F_VISION, u]) * g.scale
            md.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        img = Image.composite(bg, bg_fog, mask)
        shown = alive & ((teams == t) | (core.vis[t, game, :] == 1))

    d = ImageDraw.Draw(img)
    kinds = ui[I_KIND]
    idx = np.flatnonzero(shown)
    # draw order: buildings, creeps, heroes (heroes on top)
    order = idx[np.argsort(np.where(kinds[idx] == HERO, 2, np.where(kinds[idx] >= TOWER, 0, 1)),
                           kind="stable")]
    xs = uf[F_X, order] * g.scale
    ys = (g.map_size - uf[F_Y, order]) * g.scale
    hp_frac = np.clip(uf[F_HP, order] / np.maximum(uf[F_MAX_HP, order], 1e-6), 0.0, 1.0)
    font = _font(max(7, int(round(g.hero_r * 1.5))))
    team_size = core.config.team_size
    for u, cx, cy, frac in zip(order.tolist(), xs.tolist(), ys.tolist(), hp_frac.tolist()):
        k = int(kinds[u])
        tm = int(teams[u])
        colour = TEAM_COLOURS[tm]
        if k == HERO:
            r = g.hero_r
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour, outline=OUTLINE_LIGHT,
                      width=max(1, int(r // 5)))
            d.text((cx, cy + 0.5), str(u % team_size), fill=NUMBER, font=font, anchor="mm")
            _hp_bar(d, cx, cy - r - 2, 2.6 * r, g.bar_h, frac, colour)
        elif k == TOWER or k == ANCIENT:
            h = g.tower_h if k == TOWER else g.ancient_h
            d.rectangle((cx - h, cy - h, cx + h, cy + h), fill=colour, outline=OUTLINE_DARK,
                        width=max(1, int(h // 4)))
            if k == ANCIENT:
                i = h * 0.45
                d.rectangle((cx - i, cy - i, cx + i, cy + i), fill=ANCIENT_CORE)
            _hp_bar(d, cx, cy - h - 2, 2.4 * h, g.bar_h, frac, colour)
        else:
            r = g.creep_r
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=CREEP_COLOURS[tm])
            if frac < 0.999:
                _hp_bar(d, cx, cy - r - 1, 3.0 * r, max(1, g.bar_h - 1), frac, colour)

    _header(d, core, game, t, g)
    return np.array(img)


def _hp_bar(d: ImageDraw.ImageDraw, cx: float, bottom: float, width: float, height: int,
            frac: float, colour: tuple[int, int, int]) -> None:
    x0 = cx - width / 2
    y0 = bottom - height
    d.rectangle((x0 - 1, y0 - 1, x0 + width + 1, bottom + 1), fill=HP_BACK)
    if frac > 0:
        d.rectangle((x0, y0, x0 + width * frac, bottom), fill=colour)


def _header(d: ImageDraw.ImageDraw, core: Any, game: int, t: int | None, g: _Geometry) -> None:
    """Two short lines in a box at the top-left corner (the one corner no base or lane uses):
    tick, game time and view; then each team's net worth (a team's view shows its own only:
    the enemy's gold is hidden information)."""
    size = g.header_h
    font = _font(max(7, size - 2))
    tick = int(core.game_i[G_TICK, game])
    secs = tick / TICKS_PER_SECOND
    line1 = f"t={tick}  {int(secs // 60)}:{int(secs % 60):02d}  "
    line1 += "full view" if t is None else f"{TEAM_NAMES[t]} view"
    if int(core.game_i[G_DONE, game]) == 1:
        w = int(core.game_i[G_WINNER, game])
        line1 += "  " + (f"{TEAM_NAMES[w].upper()} WINS" if w in (0, 1) else "DRAW")
    nw = _net_worth_by_team(core, game)
    parts = [(f"{TEAM_NAMES[team]} {nw[team]:,.0f}" if t is None or t == team
              else f"{TEAM_NAMES[team]} ?", TEAM_COLOURS[team]) for team in (0, 1)]
    gap = max(6, size // 2)
    width = max(d.textlength(line1, font=font),
                sum(d.textlength(p, font=font) for p, _ in parts) + gap)
    pad = 3
    d.rectangle((0, 0, width + 2 * pad, 2 * size + pad), fill=HEADER_BACK)
    d.text((pad, pad + size / 2), line1, fill=HEADER_TEXT, font=font, anchor="lm")
    x = pad
    for text, colour in parts:
        d.text((x, pad + size * 1.5), text, fill=colour, font=font, anchor="lm")
        x += d.textlength(text, font=font) + gap


# ---- GIFs ---------------------------------------------------------------------------------
def _known_colours() -> list[tuple[int, int, int]]:
    """Every flat colour the renderer paints, lit and fogged: kept exactly in GIFs."""
    lit = [GROUND, LANE, LANE_EDGE, *BASE_ZONE, SITE_OUTLINE, FOUNTAIN]
    fogged = [tuple(int(np.float32(c) * np.float32(FOG_FACTOR)) for c in rgb) for rgb in lit]
    units = [*TEAM_COLOURS, *CREEP_COLOURS, HP_BACK, HEADER_BACK, HEADER_TEXT, ANCIENT_CORE,
             OUTLINE_DARK, OUTLINE_LIGHT, NUMBER]
    out: list[tuple[int, int, int]] = []
    for c in lit + fogged + units:
        if c not in out:
            out.append(c)
    return out


def frames_to_gif_bytes(frames: Sequence[np.ndarray], fps: float = 10) -> bytes:
    """MOBA frames as the bytes of an animated, looping GIF, the renderer's colours exact."""
    return gif_bytes(frames, fps, _known_colours())


def write_gif(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 10) -> Path:
    """Write the frames as an animated, looping GIF at `path`, atomically.

    The GIF goes to a temporary file in the same folder first and is renamed over `path`
    once complete, so a reader never sees a half-written file. Missing parent folders are
    created. Returns the path. (To write frames as they are made, use a streaming
    `FrameRecorder(out=...)` or `games.gif.GifWriter`.)
    """
    return save_gif(frames, path, fps, _known_colours())


# ---- recording matches ----------------------------------------------------------------
class FrameRecorder(Recorder):
    """A `games.gif.Recorder` of MOBA frames: an `on_step(core)` callback that renders game
    `game` of a `MobaCore` (full view, or `team`'s view with its fog of war) every `every`-th
    call, with the renderer's colours exact in the GIF."""

    def __init__(self, game: int = 0, team: str | None = None, every: int = 1, scale: int = 6,
                 max_frames: int | None = None, out: str | os.PathLike | None = None,
                 fps: float = 10, preview: ClipPreview | None = None) -> None:
        _team_index(team)
        self.game, self.team, self.scale = int(game), team, int(scale)
        super().__init__(lambda core: render_frame(core, self.game, self.team, self.scale),
                         every=every, max_frames=max_frames, out=out, fps=fps, preview=preview,
                         exact_colours=_known_colours())


class MobaRenderer:
    """The MOBA's renderer for `arena watch` and training GIFs (games/render.py): game 0 of
    a `MobaVec`, full view or one team's (`view`: radiant or dire), `scale` pixels per unit."""

    extra_options: dict[str, Any] = {}

    def __init__(self, game: str = "moba", view: str | None = None, scale: int | None = None) -> None:
        _team_index(view)
        self.view, self.scale = view, 6 if scale is None else int(scale)

    @property
    def exact_colours(self) -> list[tuple[int, int, int]]:
        return _known_colours()

    def frame(self, vec: Any) -> np.ndarray:
        return render_frame(vec.core, 0, self.view, self.scale)
