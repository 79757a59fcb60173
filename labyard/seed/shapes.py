"""Generated cell-like shapes with masks: the segmentation template's sample dataset.

Each 64x64 grayscale image has a noisy, unevenly lit background, 1 to 5 bright
textured ellipses ("cells") and thin bright lines that are NOT objects (so a model
must learn shape, not just brightness). Masks follow CLB's convention: background
0, each object its own label 2, 3, ..., and a clump of overlapping objects the
"blob" label 1; the template reads any nonzero value as foreground.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import atomic_folder

SIZE = 64
SPLITS = {"train": 240, "val": 40, "test": 60}


def _ellipse(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Signed 'radius' of a random ellipse: < 1 inside."""
    cy, cx = rng.uniform(8, SIZE - 8, 2)
    a, b = rng.uniform(4.0, 11.0), rng.uniform(3.0, 8.0)
    theta = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    radius: np.ndarray = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return radius


def _line(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """A thin line segment across part of the image (distance-based, width ~1.5 px)."""
    p0, p1 = rng.uniform(0, SIZE, 2), rng.uniform(0, SIZE, 2)
    d = p1 - p0
    t = np.clip(((yy - p0[0]) * d[0] + (xx - p0[1]) * d[1]) / max(float(d @ d), 1e-6), 0, 1)
    dist = np.hypot(yy - (p0[0] + t * d[0]), xx - (p0[1] + t * d[1]))
    line: np.ndarray = np.clip(1.5 - dist, 0, 1)
    return line


def make_sample(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One (uint8 image [64, 64], uint8 CLB-style mask [64, 64])."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    gy, gx = rng.uniform(-0.6, 0.6, 2)
    image = 60 + 25 * (gy * yy + gx * xx) / SIZE + rng.normal(0, 14, (SIZE, SIZE))
    mask = np.zeros((SIZE, SIZE), np.uint8)
    for i in range(int(rng.integers(1, 6))):
        radius = _ellipse(rng, yy, xx)
        inside = radius < 1.0
        brightness = rng.uniform(55, 110)
        texture = rng.normal(0, 10, (SIZE, SIZE))
        image += np.clip((1.15 - radius) / 0.3, 0, 1) * (brightness + texture)
        touched = np.unique(mask[inside])
        label = 2 + i
        if touched[touched > 0].size:  # overlaps an earlier object: the clump is a blob
            mask[np.isin(mask, touched[touched > 0])] = 1
            label = 1
        mask[inside] = label
    for _ in range(int(rng.integers(0, 3))):
        image += _line(rng, yy, xx) * rng.uniform(60, 110)
    return np.clip(image, 0, 255).round().astype(np.uint8), mask


def _write_split(root: Path, count: int, seed: int) -> None:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(seed)
    for n in range(count):
        image, mask = make_sample(rng)
        Image.fromarray(image).save(root / "images" / f"{n:04d}.png")
        Image.fromarray(mask).save(root / "masks" / f"{n:04d}.png")


def write_shapes_dataset(dest: Path, *, seed: int = 0) -> None:
    """Write ``dest/{train,val,test}/{images,masks}/<n>.png`` (240/40/60 pairs).

    Built in a temporary folder beside ``dest`` and renamed into place, so ``dest``
    either does not exist or is complete; an existing, non-empty ``dest`` raises
    :class:`FileExistsError`.
    """
    with atomic_folder(dest) as tmp:
        for offset, (split, count) in enumerate(SPLITS.items()):
            _write_split(tmp / split, count, seed * 1000 + offset)
