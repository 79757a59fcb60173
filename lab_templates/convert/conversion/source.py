"""The source dataset (its images per class) and the seeded, stratified split.

Layouts (MLSteam's folder format, read by ``cls.data.scan_split``):

- ``<root>/train/<class>/<image>`` (+ ``test/``, ``val/`` ...): when ``train/`` exists,
  every top-level folder is a split; the images of all splits are pooled per class
  and split anew.
- ``<root>/<class>/<image>``: otherwise every top-level folder is a class.

Sizes: each class is split on its own. Part *i* first gets ``floor(n * p_i / 100)``
of the class's *n* images; the images left over go one each to the parts with the
largest remainders ``n * p_i / 100 - floor(...)`` (ties: the part named first). So a
part's size never differs from its exact share by a whole image or more, per class,
and every image lands in exactly one part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cls.data import DatasetLayoutError, _visible, scan_split

from conversion.options import Part


@dataclass
class Source:
    """A scanned dataset: class names (sorted) and each class's images (sorted)."""

    root: Path
    layout: str  # "splits" (train/<class>/...) or "classes" (<class>/...)
    classes: list[str]
    images: list[list[Path]]

    def __len__(self) -> int:
        return sum(len(paths) for paths in self.images)


@dataclass(frozen=True)
class Item:
    """One image to convert: its source, class index and file name in its part."""

    path: Path
    label: int
    name: str


def scan_source(root: Path) -> Source:
    """Scan ``root`` (either layout); DatasetLayoutError names what is wrong."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset folder {root} does not exist")
    layout = "splits" if (root / "train").is_dir() else "classes"
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and _visible(d)]
    by_class: dict[str, list[Path]] = {}
    for folder in folders if layout == "splits" else [root]:
        names, split = scan_split(folder)  # empty class folders are an error there
        for path, label in zip(split.paths, split.labels, strict=True):
            by_class.setdefault(names[label], []).append(path)
    classes = sorted(by_class)
    images = [sorted(by_class[c], key=lambda p: p.relative_to(root).as_posix()) for c in classes]
    return Source(root, layout, classes, images)


def allocate(n: int, parts: list[Part]) -> list[int]:
    """How many of ``n`` images each part gets (largest remainders, see the module)."""
    exact = [n * p.percent / 100.0 for p in parts]
    counts = [math.floor(x + 1e-9) for x in exact]
    by_remainder = sorted(range(len(parts)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: max(0, n - sum(counts))]:
        counts[i] += 1
    return counts


def assign(source: Source, parts: list[Part], seed: int) -> dict[str, list[Item]]:
    """Each part's images: a seeded permutation per class, cut by :func:`allocate`,
    then each part in a seeded random order (so TFRecord shards mix the classes)."""
    rng = np.random.default_rng(seed)
    chosen: dict[str, list[tuple[Path, int]]] = {p.name: [] for p in parts}
    for label, paths in enumerate(source.images):
        order = rng.permutation(len(paths))
        start = 0
        for part, count in zip(parts, allocate(len(paths), parts), strict=True):
            chosen[part.name] += [(paths[i], label) for i in sorted(order[start : start + count])]
            start += count
    plan: dict[str, list[Item]] = {}
    for part in parts:
        pairs = chosen[part.name]
        names = _file_names([path for path, _ in pairs], [label for _, label in pairs])
        items = [Item(p, label, name) for (p, label), name in zip(pairs, names, strict=True)]
        plan[part.name] = [items[i] for i in rng.permutation(len(items))]
    return plan


def _file_names(paths: list[Path], labels: list[int]) -> list[str]:
    """``<stem>.png`` per image, made unique within its class (``<stem>_2.png`` ...)."""
    taken: set[tuple[int, str]] = set()
    names = []
    for path, label in zip(paths, labels, strict=True):
        name, n = f"{path.stem}.png", 1
        while (label, name.lower()) in taken:
            n += 1
            name = f"{path.stem}_{n}.png"
        taken.add((label, name.lower()))
        names.append(name)
    return names
