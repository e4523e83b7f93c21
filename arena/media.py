"""Match animations in TensorBoard.

TensorBoard's image dashboard shows an image summary whose encoded bytes are a GIF as an
animation (the approach of tensorboardX's add_video), so a match is written as one image
summary with GIF bytes — no video codecs needed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from tensorboard.compat.proto.summary_pb2 import Summary

from games.moba.render import frames_to_gif_bytes


def gif_summary(tag: str, frames: Sequence[np.ndarray], fps: int = 10) -> Summary:
    height, width = frames[0].shape[:2]
    image = Summary.Image(height=height, width=width, colorspace=3,
                          encoded_image_string=frames_to_gif_bytes(frames, fps=fps))
    return Summary(value=[Summary.Value(tag=tag, image=image)])


def log_gif(writer, tag: str, frames: Sequence[np.ndarray], step: int, fps: int = 10) -> None:
    """Write an animated match to a torch SummaryWriter (e.g. TensorBoardLogger.experiment)."""
    writer._get_file_writer().add_summary(gif_summary(tag, frames, fps), global_step=step)
    writer.flush()
