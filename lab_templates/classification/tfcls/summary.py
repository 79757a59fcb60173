"""``tf.summary`` behind the writer interface cls.reporting.Reporter calls, so the TensorFlow
path prints and charts through the same Reporter as the PyTorch path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf


class TfSummaryWriter:
    """``add_scalar`` / ``add_image`` / ``add_images`` / ``close`` written with tf.summary."""

    def __init__(self, log_dir: Path) -> None:
        self.writer = tf.summary.create_file_writer(str(log_dir))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        with self.writer.as_default():
            tf.summary.scalar(tag, float(value), step=int(step))

    def add_images(self, tag: str, images: Any, step: int) -> None:
        """Float ``[N, C, H, W]`` images in [0, 1] (a torch tensor or an array)."""
        data = np.asarray(images.numpy() if hasattr(images, "numpy") else images)
        with self.writer.as_default():
            tf.summary.image(tag, data.transpose(0, 2, 3, 1), step=int(step), max_outputs=len(data))

    def add_image(self, tag: str, image: Any, step: int, dataformats: str = "HWC") -> None:
        """One uint8 image, ``HWC``."""
        if dataformats != "HWC":
            raise ValueError("only HWC images are written")
        with self.writer.as_default():
            tf.summary.image(tag, np.asarray(image)[None], step=int(step))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
