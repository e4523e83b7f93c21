"""Match animations in TensorBoard.

TensorBoard's image dashboard shows an image summary whose encoded bytes are a GIF as an
animation (the approach of tensorboardX's add_video), so a match is written as one image
summary with GIF bytes — no video codecs needed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from tensorboard.compat.proto.summary_pb2 import Summary

from games.gif import RGB, gif_bytes


def gif_summary(tag: str, frames: Sequence[np.ndarray], fps: int = 10,
                exact_colours: Sequence[RGB] = ()) -> Summary:
    height, width = frames[0].shape[:2]
    image = Summary.Image(height=height, width=width, colorspace=3,
                          encoded_image_string=gif_bytes(frames, fps, exact_colours))
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def log_gif(writer, tag: str, frames: Sequence[np.ndarray], step: int, fps: int = 10,
            exact_colours: Sequence[RGB] = ()) -> None:
    """Write an animated match to a torch SummaryWriter (e.g. TensorBoardLogger.experiment);
    `exact_colours` (a renderer's flat colours) stay exact."""
    writer._get_file_writer().add_summary(gif_summary(tag, frames, fps, exact_colours),
                                          global_step=step)
    writer.flush()
