"""Animated GIFs written frame by frame, for any game's (H, W, 3) uint8 pictures.

A long match at a large scale is gigabytes of RGB frames; holding them all until the end
(as PIL's `save_all` does) runs machines out of memory. `GifWriter` instead quantizes,
LZW-encodes and appends each frame as it arrives, so it holds about one frame whatever the
clip's length:

    with GifWriter("match.gif", fps=10, exact_colours=[(46, 58, 44)]) as gif:
        for frame in frames:
            gif.add(frame)

It writes what PIL's `save_all(..., optimize=False, disposal=1, loop=0)` wrote before: one
global 256-colour palette (the `exact_colours` kept exactly, the rest a median cut), each
later frame cropped to the box that changed since the previous one, and a run of identical
frames merged into one frame showing for their summed duration. A path target is written
to a temporary file in its folder and renamed into place on close (readers never see half
a GIF; an error deletes the temporary file); a binary stream target is written directly.

`ClipPreview` keeps a bounded, downscaled copy of a clip (e.g. for TensorBoard) while the
full-size frames stream to a file.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import GifImagePlugin, Image, ImageChops

from games.files import FILE_MODE

RGB = tuple[int, int, int]
_MAX_DELAY_MS = 0xFFFF * 10  # a frame's delay is 16 bits of centiseconds
_TRAILER = b";"


def frame_duration_ms(fps: float) -> int:
    """Milliseconds per frame; faster than 50 fps is shown as 50 (browsers clamp it anyway)."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 100:
        raise ValueError(f"GIF fps must be a number in (0, 100], got {fps!r}")
    return max(20, int(round(1000.0 / fps)))


def check_frame(frame: Any, index: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """`frame` as an (H, W, 3) uint8 array of `shape` (when given), else a one-line error."""
    a = np.asarray(frame)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"GIF frame {index} must be an (H, W, 3) uint8 array, got shape "
                         f"{a.shape} and dtype {a.dtype}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"GIF frame {index} has shape {a.shape}, frame 0 has {shape}")
    return a


def gif_palette(sample: np.ndarray, exact_colours: Iterable[RGB] = ()) -> Image.Image:
    """A 256-colour palette (as a 1x1 "P" image for `Image.quantize`): `exact_colours` first,
    so pixels of those colours survive exactly, then a median cut of `sample` (an (H, W, 3)
    uint8 picture, e.g. frames stacked) for every other colour."""
    exact: list[RGB] = []
    for c in exact_colours:
        if tuple(c) not in exact:
            exact.append(tuple(c))
    if len(exact) > 256:
        raise ValueError(f"a GIF palette holds 256 colours; {len(exact)} exact colours given")
    free = 256 - len(exact)
    rgb = [v for c in exact for v in c]
    if free:
        adaptive = Image.fromarray(sample).quantize(free, method=Image.Quantize.MEDIANCUT,
                                                    dither=Image.Dither.NONE)
        rgb += adaptive.getpalette()[:3 * free]
    rgb += rgb[:3] * (256 - len(rgb) // 3)  # pad with a repeated entry
    palette = Image.new("P", (1, 1))
    palette.putpalette(rgb[:768])
    return palette


def _header(size: tuple[int, int], palette: Image.Image) -> bytes:
    """GIF89a signature, logical screen with a 256-entry global colour table, loop forever."""
    table = bytes(palette.getpalette("RGB")).ljust(768, b"\0")[:768]
    screen = struct.pack("<HHBBB", size[0], size[1], 0x80 | 7, 0, 0)
    loop = b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", 0) + b"\0"
    return b"GIF89a" + screen + table + loop


class GifWriter:
    """Append frames to an animated, looping GIF as they come; see the module docstring.

    `target` is a path or a writable binary stream; `fps` frames per second (0 < fps <= 100);
    `palette` a fixed palette from `gif_palette`, else one is made from the first frame with
    `exact_colours` kept exactly (the best a stream can do: later frames are not known yet).
    Use as a context manager, or call `close()` (finish) or `abort()` (discard) yourself.
    """

    def __init__(self, target: str | os.PathLike | IO[bytes], fps: float = 10, *,
                 exact_colours: Sequence[RGB] = (), palette: Image.Image | None = None) -> None:
        self.duration_ms = frame_duration_ms(fps)
        self.exact_colours = tuple(exact_colours)
        self.palette = palette
        self.frames = 0  # frames added (identical neighbours included)
        self.size: tuple[int, int] | None = None
        self.path: Path | None = None
        self._tmp: Path | None = None
        self._shape: tuple[int, ...] | None = None
        self._previous: Image.Image | None = None  # the last frame, quantized
        self._pending: tuple[tuple[int, int, int, int], int] | None = None  # (box, ms) unwritten
        self._closed = False
        if isinstance(target, (str, os.PathLike)):
            self.path = Path(target)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.",
                                       suffix=".tmp")
            os.fchmod(fd, FILE_MODE)  # a new file's usual mode, not a temporary file's 0600
            self._tmp = Path(tmp)
            self._fh: IO[bytes] = os.fdopen(fd, "wb")
        else:
            self._fh = target

    def __enter__(self) -> GifWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def add(self, frame: np.ndarray) -> None:
        """Quantize `frame` and write the previous one (its duration is final only now)."""
        if self._closed:
            raise ValueError("GIF writer is closed; no more frames can be added")
        frame = check_frame(frame, self.frames, self._shape)
        image = Image.fromarray(frame)
        if self._shape is None:
            self._start(frame, image.size)
        quantized = image.quantize(palette=self.palette, dither=Image.Dither.NONE)
        del image
        self.frames += 1
        if self._previous is None:
            self._previous, self._pending = quantized, ((0, 0, *quantized.size), self.duration_ms)
            return
        box = ImageChops.subtract_modulo(quantized, self._previous).getbbox(alpha_only=False)
        assert self._pending is not None
        pending_box, pending_ms = self._pending
        if box is None and pending_ms + self.duration_ms <= _MAX_DELAY_MS:
            self._pending = (pending_box, pending_ms + self.duration_ms)  # identical: show longer
            return
        self._write_pending()
        self._previous, self._pending = quantized, (box or (0, 0, 1, 1), self.duration_ms)

    def close(self) -> Path | None:
        """Write the last frame and the trailer; a path target is then renamed into place.
        Returns the path (None for a stream target)."""
        if self._closed:
            return self.path
        if self._previous is None:
            self.abort()
            raise ValueError("GIF has no frames to write")
        try:
            self._write_pending()
            self._fh.write(_TRAILER)
            self._fh.flush()
            if self._tmp is not None:
                os.fsync(self._fh.fileno())
                self._fh.close()
                os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._previous = None
        return self.path

    def abort(self) -> None:
        """Discard the GIF: a path target's temporary file is deleted, the target untouched."""
        self._closed = True
        self._previous = None
        if self._tmp is not None:
            self._fh.close()
            self._tmp.unlink(missing_ok=True)

    def _start(self, frame: np.ndarray, size: tuple[int, int]) -> None:
        self._shape = frame.shape
        self.size = size
        if self.palette is None:
            self.palette = gif_palette(frame, self.exact_colours)
        self._fh.write(_header(size, self.palette))

    def _write_pending(self) -> None:
        assert self._previous is not None and self._pending is not None
        box, ms = self._pending
        image = self._previous if box == (0, 0, *self._previous.size) else self._previous.crop(box)
        for chunk in GifImagePlugin.getdata(image, box[:2], duration=ms, disposal=1):
            self._fh.write(chunk)
        self._pending = None


class ClipPreview:
    """A bounded copy of a clip: frames shrunk to at most `max_width` pixels wide (by an
    integer factor), and at most `max_frames` of them. When a clip outgrows the cap, every
    other kept frame is dropped and the stride doubles, so the preview still spans the whole
    clip; the newest frame is always included (a match's end). Play it at `fps(original)`.
    """

    def __init__(self, max_width: int = 384, max_frames: int = 200) -> None:
        if max_width < 1 or max_frames < 2:
            raise ValueError(f"ClipPreview: max_width must be >= 1 and max_frames >= 2, got "
                             f"{max_width} and {max_frames}")
        self.max_width = max_width
        self.max_frames = max_frames
        self.stride = 1
        self._kept: list[np.ndarray] = []
        self._tail: np.ndarray | None = None
        self._seen = 0

    @property
    def frames(self) -> list[np.ndarray]:
        return self._kept + ([] if self._tail is None else [self._tail])

    def fps(self, fps: float) -> float:
        """The preview's frame rate that plays it as fast as the clip at `fps`."""
        return fps / self.stride

    def add(self, frame: np.ndarray) -> None:
        small = self._shrink(check_frame(frame, self._seen))
        if self._seen % self.stride == 0:
            self._kept.append(small)
            self._tail = None
            if len(self._kept) >= self.max_frames:
                newest = self._kept[-1]
                self._kept = self._kept[::2]
                self.stride *= 2
                if self._kept[-1] is not newest:
                    self._tail = newest
        else:
            self._tail = small
        self._seen += 1

    def _shrink(self, frame: np.ndarray) -> np.ndarray:
        factor = math.ceil(frame.shape[1] / self.max_width)
        if factor <= 1:
            return frame.copy()
        return np.asarray(Image.fromarray(frame).reduce(factor))


class Recorder:
    """An `on_step(source)` callback that draws a frame every `every`-th call (`draw(source)`
    -> (H, W, 3) uint8), for any game's renderer.

    By default the frames are kept in `.frames`. With `out=PATH` they are streamed into an
    animated GIF at `fps` instead (`GifWriter`; `exact_colours` kept exact) and none is kept,
    so memory stays about one frame however long the match: use it as a context manager and
    call `finish()` at the end (an error discards the half-written GIF). `preview` (a
    `ClipPreview`) also gets every frame, for a bounded copy. `max_frames` (optional) stops
    recording once that many frames were recorded.
    """

    def __init__(self, draw: Any, every: int = 1, max_frames: int | None = None,
                 out: str | os.PathLike | None = None, fps: float = 10,
                 preview: ClipPreview | None = None, exact_colours: Iterable[RGB] = ()) -> None:
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"{type(self).__name__}: every must be an int >= 1, got {every!r}")
        if max_frames is not None and (isinstance(max_frames, bool) or max_frames < 1):
            raise ValueError(f"{type(self).__name__}: max_frames must be None or >= 1, "
                             f"got {max_frames!r}")
        self.draw = draw
        self.every = int(every)
        self.max_frames = max_frames
        self.preview = preview
        self.frames: list[np.ndarray] = []
        self.count = 0  # frames recorded (kept in .frames or streamed)
        self.shape: tuple[int, ...] | None = None
        self.calls = 0
        self._gif = None if out is None else GifWriter(out, fps, exact_colours=exact_colours)
        self._pending: Any = None  # the source of the last call that was not recorded

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._gif is not None:
            self._gif.abort()  # no-op after finish(); else the GIF is incomplete

    def __call__(self, source: Any, *_: Any) -> None:
        due = self.calls % self.every == 0
        if due and self._room():
            self.record(self.draw(source))
        self._pending = None if due else source
        self.calls += 1

    def record(self, frame: np.ndarray) -> None:
        """Add one frame: streamed to the GIF (when `out` was given) or kept in `.frames`."""
        if self._gif is not None:
            self._gif.add(frame)
        else:
            self.frames.append(frame)
        if self.preview is not None:
            self.preview.add(frame)
        self.count += 1
        self.shape = frame.shape

    def finish(self) -> Path | None:
        """Record the final state when `every` skipped it (a match's end is always shown),
        then complete the streamed GIF. Returns its path (None without `out`)."""
        if self._pending is not None and self._room():
            self.record(self.draw(self._pending))
        self._pending = None
        return None if self._gif is None else self._gif.close()

    def _room(self) -> bool:
        return self.max_frames is None or self.count < self.max_frames


# the 6x6x6 colour cube: for games whose colours are unknown up front, so that a colour
# that first shows up late in a streamed GIF still lands on a close entry
COLOUR_CUBE: tuple[RGB, ...] = tuple((r, g, b) for r in range(0, 256, 51)
                                     for g in range(0, 256, 51) for b in range(0, 256, 51))


def clip_palette(frames: Sequence[np.ndarray], exact_colours: Iterable[RGB] = ()) -> Image.Image:
    """One palette for a whole clip known up front (3x faster than one per frame, and
    smaller files): `exact_colours` exactly, the rest from a median cut over up to 16
    frames spread over the clip."""
    step = max(1, len(frames) // 16)
    return gif_palette(np.concatenate(list(frames)[::step][:16], axis=0), exact_colours)


def save_gif(frames: Sequence[np.ndarray], target: str | os.PathLike | IO[bytes],
             fps: float = 10, exact_colours: Iterable[RGB] = ()) -> Path | None:
    """Every frame known up front, written as one looping GIF (a path is written
    atomically: temporary file + rename). Returns the path (None for a stream)."""
    frame_duration_ms(fps)  # a bad fps fails before anything is created
    frames = list(frames)
    if not frames:
        raise ValueError("save_gif: no frames to write")
    shape = None
    for i, f in enumerate(frames):
        frames[i] = check_frame(f, i, shape)
        shape = frames[i].shape
    with GifWriter(target, fps, palette=clip_palette(frames, exact_colours)) as gif:
        for frame in frames:
            gif.add(frame)
    return gif.path


def gif_bytes(frames: Sequence[np.ndarray], fps: float = 10,
              exact_colours: Iterable[RGB] = ()) -> bytes:
    """The frames as the bytes of an animated, looping GIF (e.g. for TensorBoard)."""
    import io

    buf = io.BytesIO()
    save_gif(frames, buf, fps, exact_colours)
    return buf.getvalue()
