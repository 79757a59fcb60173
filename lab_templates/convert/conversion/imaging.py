"""Resizing (UpStride's two preprocessings) and PNG encoding of one image.

- ``CENTER_CROP_THEN_SCALE``: the largest square centred in the image, scaled to
  ``size`` x ``size`` (the longer side loses ``(long - short) / 2`` on each end).
- ``SQUARE_MARGIN_THEN_SCALE``: the image centred on a black square as wide as its
  longer side, scaled to ``size`` x ``size`` (nothing is cut off).
- ``NONE``: the image as it is (only re-encoded as PNG).

Scaling is bilinear with antialiasing (Pillow's ``resize``); JPEGs are decoded at a
reduced DCT scale first when that still leaves enough pixels (``Image.draft``).
Grayscale images stay one channel (``L``); everything else becomes ``RGB``.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from cls.data import GRAY_MODES, DatasetLayoutError
from PIL import Image, UnidentifiedImageError

CROP, MARGIN, NONE = "CENTER_CROP_THEN_SCALE", "SQUARE_MARGIN_THEN_SCALE", "NONE"


def square_box(width: int, height: int, method: str) -> tuple[int, int, int, int]:
    """The square (left, top, right, bottom) the method scales, in image coordinates;
    for the margin it reaches outside the image (the margin)."""
    side = min(width, height) if method == CROP else max(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def transform(img: Image.Image, method: str, size: int) -> Image.Image:
    """The image in ``L`` or ``RGB``, cropped or padded to a square and scaled."""
    mode = "L" if img.mode in GRAY_MODES else "RGB"
    if method != NONE and img.format == "JPEG":
        side = min(img.size) if method == CROP else max(img.size)
        img.draft(mode, (math.ceil(img.width * size / side), math.ceil(img.height * size / side)))
    img = img.convert(mode)
    if method == NONE:
        return img
    box = square_box(img.width, img.height, method)
    if img.width != img.height:
        if method == CROP:  # cut first: the scaling filter must not reach outside the square
            img = img.crop(box)
        else:
            canvas = Image.new(mode, (box[2] - box[0],) * 2, 0)
            canvas.paste(img, (-box[0], -box[1]))
            img = canvas
    return img if img.size == (size, size) else img.resize((size, size), Image.Resampling.BILINEAR)


def convert_image(path: Path, method: str, size: int) -> tuple[bytes, int, int, int]:
    """PNG bytes of the converted image, its width, height and channels."""
    try:
        with Image.open(path) as img:
            out = transform(img, method, size)
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetLayoutError(f"cannot read image {path}: {exc}") from exc
    buffer = io.BytesIO()
    out.save(buffer, format="PNG")
    return buffer.getvalue(), out.width, out.height, 1 if out.mode == "L" else 3
