"""Rendering: the MOBA's frames (format, fog of war without leaks, GIF writing) and the
renderer each game gets for `arena watch` and training GIFs (games/render.py)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from games.moba import MobaEnv
from games.moba.core import MobaCore
from games.moba.layout import (
    F_HP,
    F_X,
    F_Y,
    H_GOLD,
    HERO,
    I_ALIVE,
    I_KIND,
    I_TEAM,
    RADIANT,
)
from games.moba.render import (
    CREEP_COLOURS,
    GROUND,
    TEAM_COLOURS,
    FrameRecorder,
    frames_to_gif_bytes,
    render_frame,
    write_gif,
)


@pytest.fixture
def core():
    c = MobaCore(num_games=2, autoreset=False, team_size=2)
    c.reset(seed=5)
    rng = c.new_rng_state(1)
    for _ in range(60):  # creeps on the lane, heroes moved about
        c.step(c.sample_actions(rng))
    return c


def _dire_heroes_hidden_from_radiant(core, game=0):
    ui = core.unit_i[:, game]
    heroes = np.flatnonzero((ui[I_KIND] == HERO) & (ui[I_TEAM] == 1) & (ui[I_ALIVE] == 1))
    return [int(h) for h in heroes if core.vis[RADIANT, game, h] == 0]


def test_frame_shape_and_dtype(core):
    for team in (None, "radiant", "dire"):
        frame = render_frame(core, game=0, team=team)
        assert frame.shape == (384, 384, 3) and frame.dtype == np.uint8
    small = render_frame(core, game=1, scale=2)
    assert small.shape == (128, 128, 3)
    assert len(np.unique(small.reshape(-1, 3), axis=0)) > 5  # not a blank picture


def test_views_differ_and_fog_darkens(core):
    full = render_frame(core, team=None).astype(int)
    radiant = render_frame(core, team="radiant").astype(int)
    dire = render_frame(core, team="dire").astype(int)
    assert not np.array_equal(full, radiant) and not np.array_equal(radiant, dire)
    # dire's ancient area (top right) lies outside radiant's vision: darker there
    corner = (slice(60, 100), slice(300, 340))
    assert radiant[corner].mean() < 0.7 * full[corner].mean()


def test_hidden_enemy_is_not_drawn(core):
    hidden = _dire_heroes_hidden_from_radiant(core)
    assert hidden, "expected a dire hero out of radiant's sight early in the game"
    h = hidden[0]
    before_team = render_frame(core, team="radiant")
    before_full = render_frame(core, team=None)
    # move it somewhere else radiant cannot see, hurt it and give its team gold
    core.unit_f[F_X, 0, h] -= 3.0
    core.unit_f[F_Y, 0, h] -= 1.0
    core.unit_f[F_HP, 0, h] *= 0.5
    core.hero_f[H_GOLD, 0, core.config.team_size:] += 1000.0
    core.observe()
    assert core.vis[RADIANT, 0, h] == 0
    np.testing.assert_array_equal(render_frame(core, team="radiant"), before_team)
    assert not np.array_equal(render_frame(core, team=None), before_full)


def test_visible_enemy_is_drawn_and_dead_units_are_not(core):
    ui, uf = core.unit_i[:, 0], core.unit_f[:, 0]
    h = _dire_heroes_hidden_from_radiant(core)[0]
    ally = int(np.flatnonzero((ui[I_KIND] == HERO) & (ui[I_TEAM] == 0) & (ui[I_ALIVE] == 1))[0])
    before = render_frame(core, team="radiant")
    uf[F_X, h], uf[F_Y, h] = uf[F_X, ally] + 2.0, uf[F_Y, ally] + 2.0  # next to a radiant hero
    core.observe()
    assert core.vis[RADIANT, 0, h] == 1
    seen = render_frame(core, team="radiant")
    assert not np.array_equal(seen, before)
    # a dead unit is not drawn, wherever its corpse lies
    ui[I_ALIVE, h] = 0
    core.observe()
    dead = render_frame(core, team=None)
    uf[F_X, h] += 5.0
    np.testing.assert_array_equal(render_frame(core, team=None), dead)


def test_bad_arguments(core):
    with pytest.raises(ValueError, match="team"):
        render_frame(core, team="blue")
    with pytest.raises(ValueError, match="game"):
        render_frame(core, game=2)


def test_env_render():
    env = MobaEnv(render_mode="rgb_array", render_team="dire", team_size=1, max_ticks=50)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (384, 384, 3) and frame.dtype == np.uint8


def test_recorder_and_gif(core, tmp_path: Path):
    rec = FrameRecorder(team="radiant", every=2)
    rng = core.new_rng_state(2)
    for _ in range(7):
        core.step(core.sample_actions(rng))
        rec(core)
    assert len(rec.frames) == 4 and rec.calls == 7
    path = write_gif(rec.frames, tmp_path / "sub" / "m.gif", fps=5)
    assert path == tmp_path / "sub" / "m.gif"
    assert [p.name for p in path.parent.iterdir()] == ["m.gif"]  # no temporary left behind
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 4 and im.size == (384, 384)
        assert im.info["duration"] == 200
        im.seek(3)
        last = np.asarray(im.convert("RGB")).astype(int)
    # a palette GIF: close to the rendered frame, not equal
    assert np.abs(last - rec.frames[3]).mean() < 4.0
    data = frames_to_gif_bytes(rec.frames[:2], fps=10)
    assert data[:6] == b"GIF89a"


def test_gif_keeps_the_renderer_colours_exactly(tmp_path: Path):
    # colours that appear late in a long clip (a creep wave reaching the fog) must not be
    # mapped to a neighbour by a palette built from the early frames
    frames = [np.full((32, 32, 3), GROUND, np.uint8) for _ in range(40)]
    last = frames[-1].copy()
    last[4:12, 4:12] = CREEP_COLOURS[0]
    last[20:28, 20:28] = TEAM_COLOURS[1]
    frames[-1] = last
    with Image.open(write_gif(frames, tmp_path / "c.gif")) as im:
        im.seek(im.n_frames - 1)
        decoded = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(decoded, last)


def test_write_gif_rejects_bad_frames(tmp_path: Path):
    with pytest.raises(ValueError, match="no frames"):
        write_gif([], tmp_path / "a.gif")
    with pytest.raises(ValueError, match="uint8"):
        write_gif([np.zeros((8, 8, 3), np.float32)], tmp_path / "a.gif")
    with pytest.raises(ValueError, match="shape"):
        write_gif([np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)],
                  tmp_path / "a.gif")
    assert not any(tmp_path.iterdir())


# ---- a renderer per game (games/render.py) -------------------------------------------------
def test_the_moba_renders_with_its_own_renderer_and_views():
    from games.moba.render import MobaRenderer
    from games.render import make_rendering_vec, renderer

    render = renderer("moba", "radiant", 2)
    assert isinstance(render, MobaRenderer) and render.extra_options == {}
    assert set(render.exact_colours) >= {GROUND, *TEAM_COLOURS}
    vec = make_rendering_vec("moba", {"team_size": 1, "max_ticks": 20}, render, autoreset=False)
    try:
        vec.reset(seed=0)
        frame = render.frame(vec)
        assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
        np.testing.assert_array_equal(frame, render_frame(vec.core, 0, "radiant", 2))
        assert renderer("moba").frame(vec).shape == (384, 384, 3)  # full view, scale 6
    finally:
        vec.close()
    with pytest.raises(ValueError, match="team"):
        renderer("moba", "blue")


def test_other_games_render_through_their_own_rgb_array():
    from games.render import EnvRenderer, RenderError, make_rendering_vec, renderer

    render = renderer("connect_four")
    assert isinstance(render, EnvRenderer)
    assert render.extra_options == {"render_mode": "rgb_array"}
    vec = make_rendering_vec("connect_four", {}, render, autoreset=False)
    try:
        vec.reset(seed=0)
        frame = render.frame(vec)
    finally:
        vec.close()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    with pytest.raises(RenderError, match="'connect_four' has no team views"):
        renderer("connect_four", "player_0")


def test_frames_are_checked_and_made_rgb():
    from games.render import RenderError, as_rgb_frame

    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 7
    out = as_rgb_frame("g", rgba)
    assert out.shape == (4, 5, 3) and (out[..., 0] == 7).all() and out.flags["C_CONTIGUOUS"]
    clipped = as_rgb_frame("g", np.full((2, 2, 3), 300.0))
    assert clipped.dtype == np.uint8 and (clipped == 255).all()
    for bad, what in ((None, "NoneType"), ("ansi text", "str"),
                      (np.zeros((4, 5)), r"an array of shape \(4, 5\)")):
        with pytest.raises(RenderError, match=rf"game 'g' cannot render: render\(\) gave {what}"):
            as_rgb_frame("g", bad)
