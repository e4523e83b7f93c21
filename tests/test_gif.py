"""Streaming GIFs (games/gif.py): memory stays about one frame however long the clip, and the
file is the GIF that `write_gif` wrote before it streamed (PIL's save_all of every frame)."""

import io
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from games.gif import ClipPreview, GifWriter, Recorder, clip_palette
from games.moba.core import MobaCore
from games.moba.render import (
    GROUND,
    TEAM_COLOURS,
    FrameRecorder,
    _known_colours,
    frames_to_gif_bytes,
    write_gif,
)


def _gif_before(frames: list[np.ndarray], fps: float) -> bytes:
    """`write_gif` as it was before streaming: every frame quantized, then PIL's save_all."""
    palette = clip_palette(frames, _known_colours())
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE)
              for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(20, round(1000.0 / fps)), loop=0, optimize=False,
                   disposal=1)
    return buf.getvalue()


def _decoded(gif: bytes | Path) -> list[tuple[np.ndarray, int, int]]:
    """Each frame of a GIF as (RGB pixels, duration ms, loop)."""
    with Image.open(io.BytesIO(gif) if isinstance(gif, bytes) else gif) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append((np.asarray(im.convert("RGB")).copy(), im.info["duration"],
                        im.info["loop"]))
    return out


@pytest.fixture(scope="module")
def match_frames() -> list[np.ndarray]:
    """Frames of a real match, with a run of identical frames (merged into one GIF frame)."""
    from games.moba.render import render_frame

    core = MobaCore(num_games=1, autoreset=False, team_size=2)
    core.reset(seed=5)
    rng = core.new_rng_state(1)
    frames = []
    for _ in range(30):
        core.step(core.sample_actions(rng))
        frames.append(render_frame(core, 0, "radiant"))
    return frames[:5] + [frames[4].copy(), frames[4].copy()] + frames[5:]


def test_write_gif_streams_the_same_gif_as_before(match_frames, tmp_path: Path):
    before = _decoded(_gif_before(match_frames, fps=7))
    assert len(before) == len(match_frames) - 2  # identical neighbours merged
    for after in (_decoded(write_gif(match_frames, tmp_path / "m.gif", fps=7)),
                  _decoded(frames_to_gif_bytes(match_frames, fps=7))):
        assert len(after) == len(before)
        for (b, b_ms, b_loop), (a, a_ms, a_loop) in zip(before, after):
            np.testing.assert_array_equal(a, b)
            assert (a_ms, a_loop) == (b_ms, b_loop)
    assert [ms for _, ms, _ in before[3:6]] == [140, 420, 140]


def test_streaming_recorder_gif_matches_write_gif_before(match_frames, tmp_path: Path):
    # the stream cannot see later frames, so its palette's free entries come from the first
    # one: frame count, sizes, durations and the pixels painted in renderer colours are the
    # same as before, only antialiased pixels may pick a neighbouring shade
    path = tmp_path / "stream.gif"
    with FrameRecorder(out=path, fps=7) as rec:
        for f in match_frames:
            rec.record(f)
        assert rec.finish() == path
    assert rec.frames == [] and rec.count == len(match_frames)
    before, after = _decoded(_gif_before(match_frames, fps=7)), _decoded(path)
    assert len(after) == len(before)
    known = np.array(_known_colours(), np.uint8)
    sources = match_frames[:5] + match_frames[7:]  # one per GIF frame
    for (b, b_ms, b_loop), (a, a_ms, a_loop), src in zip(before, after, sources):
        assert a.shape == b.shape and (a_ms, a_loop) == (b_ms, b_loop)
        flat = (src[:, :, None, :] == known).all(-1).any(-1)  # painted in a renderer colour
        assert flat.mean() > 0.9
        np.testing.assert_array_equal(a[flat], b[flat])
        assert (a == b).all(-1).mean() > 0.99
    assert [p.name for p in tmp_path.iterdir()] == ["stream.gif"]  # no temporary left


def _frame(i: int, size: int) -> np.ndarray:
    """A distinct frame: ground with a moving team-coloured square."""
    f = np.empty((size, size, 3), np.uint8)
    f[:] = GROUND
    side = size // 16
    x = (37 * i) % (size - side)
    f[side:2 * side, x:x + side] = TEAM_COLOURS[i % 2]
    return f


def test_streaming_memory_does_not_grow_with_the_number_of_frames(tmp_path: Path):
    size, n = 1024, 60
    one_frame = size * size * 3  # 3 MB; holding every frame would be 180 MB
    tracemalloc.start()
    try:
        with GifWriter(tmp_path / "long.gif", fps=10, exact_colours=_known_colours()) as gif:
            for i in range(n):
                gif.add(_frame(i, size))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * one_frame, f"peak {peak / 1e6:.0f} MB while streaming {n} frames"
    with Image.open(tmp_path / "long.gif") as im:
        assert im.n_frames == n and im.size == (size, size) and im.info["duration"] == 100
        im.seek(n - 1)
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), _frame(n - 1, size))


def test_streaming_process_memory_stays_flat(tmp_path: Path):
    # tracemalloc does not see PIL's own buffers: measure the process's peak memory too
    script = textwrap.dedent(f"""
        import resource
        import numpy as np
        from games.gif import GifWriter
        from tests.test_gif import _frame

        def peak_mb():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        with GifWriter({str(tmp_path / 'rss.gif')!r}, fps=10) as gif:
            for i in range(100):
                gif.add(_frame(i, 1024))
                if i == 9:
                    after_10 = peak_mb()
        print(peak_mb() - after_10)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       check=False, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr
    growth_mb = float(r.stdout)
    assert growth_mb < 30, f"peak memory grew {growth_mb:.0f} MB over 90 more 3 MB frames"


def test_a_failed_stream_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    path = tmp_path / "m.gif"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="shape"), GifWriter(path) as gif:
        gif.add(_frame(0, 64))
        gif.add(_frame(1, 128))
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["m.gif"]
    with pytest.raises(ValueError, match="no frames"), GifWriter(tmp_path / "empty.gif"):
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["m.gif"]
    with pytest.raises(ValueError, match="fps"):
        GifWriter(tmp_path / "x.gif", fps=0)


def test_recorder_out_keeps_no_frames_and_always_shows_the_end(tmp_path: Path):
    core = MobaCore(num_games=1, autoreset=False, team_size=1)
    core.reset(seed=3)
    rng = core.new_rng_state(0)
    with FrameRecorder(every=3, out=tmp_path / "r.gif", fps=5) as rec:
        for _ in range(8):  # calls 0..7: frames at 0, 3, 6, then the end (7) by finish()
            core.step(core.sample_actions(rng))
            rec(core)
        rec.finish()
    assert rec.frames == [] and rec.count == 4 and rec.shape == (384, 384, 3)
    with Image.open(tmp_path / "r.gif") as im:
        assert im.n_frames == 4 and im.info["duration"] == 200


def test_clip_preview_is_bounded_and_spans_the_clip():
    preview = ClipPreview(max_width=384, max_frames=50)
    for i in range(777):
        preview.add(np.full((32, 2048, 3), i % 256, np.uint8))
    frames = preview.frames
    assert 25 <= len(frames) <= 50 and preview.stride == 16
    assert all(f.shape == (6, 342, 3) for f in frames)  # 2048 px shrunk 6 times
    assert frames[0][0, 0, 0] == 0 and frames[-1][0, 0, 0] == 776 % 256  # start and end
    assert preview.fps(10) == 10 / 16


def test_recorder_draws_any_game_and_always_shows_the_end(tmp_path: Path):
    # the generic recorder of `arena watch` and training GIFs: any source, any draw function
    drawn = []

    def draw(i):
        drawn.append(i)
        return _frame(i, 32)

    rec = Recorder(draw, every=3)
    for i in range(8):  # calls 0..7: frames at 0, 3, 6, then the end (7) by finish()
        rec(i, "step")  # called as on_step(vec, step)
    assert drawn == [0, 3, 6] and rec.calls == 8
    assert rec.finish() is None and drawn == [0, 3, 6, 7] and len(rec.frames) == rec.count == 4
    capped = Recorder(draw, max_frames=2)
    for i in range(5):
        capped(i)
    capped.finish()
    assert capped.count == 2 and len(capped.frames) == 2
    with Recorder(draw, every=2, out=tmp_path / "r.gif", fps=5) as streamed:
        for i in range(5):
            streamed(i)
        assert streamed.finish() == tmp_path / "r.gif"
    assert streamed.frames == [] and streamed.count == 3 and streamed.shape == (32, 32, 3)
    with Image.open(tmp_path / "r.gif") as im:
        assert im.n_frames == 3 and im.info["duration"] == 200
    with pytest.raises(ValueError, match="Recorder: every must be an int >= 1"):
        Recorder(draw, every=0)
    with pytest.raises(ValueError, match="FrameRecorder: every must be an int >= 1"):
        FrameRecorder(every=0)
    assert issubclass(FrameRecorder, Recorder)


def test_a_failed_recording_leaves_no_gif(tmp_path: Path):
    def draw(i):
        if i == 2:
            raise RuntimeError("renderer broke")
        return _frame(i, 32)

    with pytest.raises(RuntimeError, match="renderer broke"), \
            Recorder(draw, out=tmp_path / "m.gif") as rec:
        for i in range(4):
            rec(i)
    assert not any(tmp_path.iterdir())
