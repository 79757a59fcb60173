"""A small street-scene-like regression dataset, generated from code, shipped as a seed.

Each 32x32 RGB image is a sky over a ground, with green "trees" (ellipses), red
"people" (small discs, never overlapping) and a global lighting factor, plus pixel
noise. Three 0..10 scores are measured from the finished image, so a model must
learn them from its content (the way recode-perceptions learns Place Pulse scores
from street views):

- ``greenery``: 20 x the share of pixels covered by trees, capped at 10;
- ``brightness``: 10 x the image's mean pixel value / 255;
- ``crowding``: 1.5 x the number of people (0..6).

:func:`write_perceptions_dataset` writes ``images/<split>/<n>.png`` and one CSV per
split (``train.csv``, ``val.csv``, ``test.csv``: ``image,greenery,brightness,crowding``,
paths relative to the dataset folder), the format of the regression template.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import atomic_folder

SIZE = 32
TARGETS = ("greenery", "brightness", "crowding")
SPLITS = {"train": 800, "val": 200, "test": 200}
MAX_PEOPLE = 6


def _disc(radius_y: float, radius_x: float, cy: float, cx: float) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return ((yy - cy) / radius_y) ** 2 + ((xx - cx) / radius_x) ** 2 <= 1.0


def _people_centres(rng: np.random.Generator, count: int) -> list[tuple[int, int]]:
    """``count`` centres at least 6 px apart (so discs of radius 2 never touch)."""
    centres: list[tuple[int, int]] = []
    while len(centres) < count:
        cy, cx = (int(v) for v in rng.integers(3, SIZE - 3, 2))
        if all((cy - y) ** 2 + (cx - x) ** 2 >= 36 for y, x in centres):
            centres.append((cy, cx))
    return centres


def make_scene(rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """One image (uint8 [32, 32, 3]) and its scores (greenery, brightness, crowding)."""
    img = np.empty((SIZE, SIZE, 3), dtype=np.float64)
    horizon = int(rng.integers(8, 20))
    img[:horizon] = rng.uniform([120, 150, 190], [170, 200, 250])  # sky
    img[horizon:] = rng.uniform([90, 85, 80], [150, 140, 130])  # street
    trees = np.zeros((SIZE, SIZE), dtype=bool)
    for _ in range(int(rng.integers(0, 5))):
        ry, rx = rng.uniform(2, 7, 2)
        trees |= _disc(ry, rx, rng.uniform(0, SIZE), rng.uniform(0, SIZE))
    img[trees] = rng.uniform([20, 110, 20], [70, 180, 60])
    people = int(rng.integers(0, MAX_PEOPLE + 1))
    for cy, cx in _people_centres(rng, people):
        img[_disc(2.2, 2.2, cy, cx)] = rng.uniform([200, 20, 20], [250, 60, 60])
    img *= rng.uniform(0.35, 1.0)  # lighting
    img += rng.normal(0.0, 5.0, img.shape)
    pixels = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    scores = [
        min(10.0, 20.0 * float(trees.mean())),
        10.0 * float(pixels.mean()) / 255.0,
        1.5 * people,
    ]
    return pixels, scores


def _write_split(root: Path, split: str, count: int, rng: np.random.Generator) -> None:
    folder = root / "images" / split
    folder.mkdir(parents=True)
    with (root / f"{split}.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", *TARGETS])
        for i in range(count):
            pixels, scores = make_scene(rng)
            name = f"images/{split}/{i:04d}.png"
            Image.fromarray(pixels).save(root / name)
            writer.writerow([name, *(f"{s:.4f}" for s in scores)])


def write_perceptions_dataset(dest: Path, *, seed: int = 0) -> None:
    """Write the dataset into ``dest`` (absent or empty), atomically.

    It is built in a temporary folder beside ``dest`` and renamed into place, so
    ``dest`` either does not exist or is complete. The same seed gives the same files.
    """
    with atomic_folder(dest) as tmp:
        for offset, (split, count) in enumerate(SPLITS.items()):
            _write_split(tmp, split, count, np.random.default_rng([seed, offset]))
