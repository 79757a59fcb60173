"""Segmentation datasets: ``<split>/images/<name>`` with ``<split>/masks/<name>.<ext>``.

Splits are ``train/`` (required), ``val/`` (else a seeded share of train/ is held
out) and ``test/``. A mask is matched to its image by file stem. Masks are read in
one of two ways: ``binary`` (any nonzero pixel is foreground, so CLB's masks with
objects 2, 3, ... and blobs 1 work as they are) or ``palette`` (a palette PNG's pixel
index is the class). Images are resized bilinearly and masks by nearest neighbour.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from cls.data import IMAGE_EXTENSIONS, DatasetLayoutError, Split, decode_all, detect_channels
from PIL import Image, UnidentifiedImageError

BINARY_PALETTE = [(0, 0, 0), (255, 255, 255)]


@dataclass
class Pairs:
    """Image paths and the mask path of each."""

    images: list[Path]
    masks: list[Path]

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, ids: list[int]) -> Pairs:
        return Pairs([self.images[i] for i in ids], [self.masks[i] for i in ids])


def image_files(folder: Path) -> list[Path]:
    """Every image under ``folder`` (recursively, hidden names skipped), sorted."""
    found = (p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return sorted(p for p in found if p.suffix.lower() in IMAGE_EXTENSIONS)


def scan_split(split_dir: Path) -> Pairs:
    """Pair ``split_dir/images/*`` with ``split_dir/masks/*`` by relative path stem."""
    images_dir, masks_dir = split_dir / "images", split_dir / "masks"
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DatasetLayoutError(
                f"{split_dir} has no {folder.name}/ folder; expected {split_dir}/images/<name> "
                f"with a mask {split_dir}/masks/<name>.png for each image"
            )
    images = image_files(images_dir)
    if not images:
        raise DatasetLayoutError(
            f"{images_dir} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    masks = {p.relative_to(masks_dir).with_suffix(""): p for p in image_files(masks_dir)}
    keys = [p.relative_to(images_dir).with_suffix("") for p in images]
    missing = [str(k) for k in keys if k not in masks]
    if missing:
        raise DatasetLayoutError(
            f"{len(missing)} image(s) in {images_dir} have no mask in {masks_dir} "
            f"(first: {', '.join(missing[:3])}); a mask has its image's name"
        )
    return Pairs(images, [masks[k] for k in keys])


def scan_dataset(root: Path) -> dict[str, Pairs]:
    """The splits of ``root`` (train, and val/test when present); errors name the folder."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset folder {root} does not exist")
    if not (root / "train").is_dir():
        raise DatasetLayoutError(
            f"{root} has no train/ folder; expected {root}/train/images/<name> and "
            f"{root}/train/masks/<name>.png, optionally val/ and test/ alike"
        )
    return {s: scan_split(root / s) for s in ("train", "val", "test") if (root / s).is_dir()}


def holdout(pairs: Pairs, fraction: float, seed: int) -> tuple[Pairs, Pairs]:
    """Seeded random split of ``pairs`` into (kept, held out)."""
    order = np.random.default_rng(seed).permutation(len(pairs))
    n = round(len(pairs) * fraction) if len(pairs) > 1 else 0
    return pairs.subset(sorted(order[n:].tolist())), pairs.subset(sorted(order[:n].tolist()))


def detect_mask_mode(masks: list[Path], sample: int = 50) -> str:
    """``palette`` when every sampled mask is a palette PNG, ``binary`` when none is."""
    modes = set()
    for path in masks[:: max(1, len(masks) // sample)]:
        with Image.open(path) as img:
            modes.add(img.mode == "P")
    if len(modes) > 1:
        raise DatasetLayoutError(
            "some masks are palette PNGs and some are not; use one kind, or pass --mask_mode"
        )
    return "palette" if modes == {True} else "binary"


def load_mask(path: Path, mode: str, size: int) -> np.ndarray:
    """Decode one mask to uint8 class indices ``[size, size]`` (nearest-neighbour resize)."""
    try:
        with Image.open(path) as img:
            if mode == "palette" and img.mode != "P":
                raise DatasetLayoutError(f"mask {path} is not a palette PNG (mode {img.mode})")
            arr = np.array(img if img.mode in ("P", "L", "I", "I;16") else img.convert("L"))
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetLayoutError(f"cannot read mask {path}: {exc}") from exc
    labels = (arr != 0).astype(np.uint8) if mode == "binary" else arr.astype(np.uint8)
    if labels.shape != (size, size):
        labels = np.array(Image.fromarray(labels).resize((size, size), Image.Resampling.NEAREST))
    return labels


def check_sizes(pairs: Pairs, sample: int = 50) -> None:
    """An image and its mask must have the same width and height."""
    for image, mask in list(zip(pairs.images, pairs.masks, strict=True))[
        :: max(1, len(pairs) // sample)
    ]:
        with Image.open(image) as a, Image.open(mask) as b:
            if a.size != b.size:
                raise DatasetLayoutError(
                    f"mask {mask} is {b.size[0]}x{b.size[1]} but its image {image} is "
                    f"{a.size[0]}x{a.size[1]}"
                )


def decode_masks(pairs: Pairs, mode: str, size: int, threads: int = 4) -> torch.Tensor:
    """Every mask of ``pairs`` as one uint8 tensor [N, size, size]."""
    out = np.empty((len(pairs), size, size), dtype=np.uint8)

    def work(i: int) -> None:
        out[i] = load_mask(pairs.masks[i], mode, size)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(work, range(len(pairs))))
    return torch.from_numpy(out)


def decode_images(pairs: Pairs, channels: int, size: int, threads: int = 4) -> torch.Tensor:
    """Every image of ``pairs`` as one uint8 tensor [N, channels, size, size]."""
    return decode_all(Split(pairs.images, [0] * len(pairs)), channels, size, threads)


def mask_palette(path: Path, num_classes: int) -> list[tuple[int, int, int]]:
    """The colours of a palette mask's first ``num_classes`` indices."""
    with Image.open(path) as img:
        flat = img.getpalette() or []
    colours = [tuple(flat[i : i + 3]) for i in range(0, len(flat) - 2, 3)]
    colours += [(0, 0, 0)] * max(0, num_classes - len(colours))
    return [(int(r), int(g), int(b)) for r, g, b in colours[:num_classes]]


def class_names(root: Path, num_classes: int) -> list[str]:
    """Names from ``root/classes.txt`` (one per line, index order), else generic ones."""
    listing = root / "classes.txt"
    if listing.is_file():
        names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
        if len(names) < num_classes:
            raise DatasetLayoutError(
                f"{listing} names {len(names)} classes but the masks use {num_classes}"
            )
        return names[:num_classes]
    if num_classes == 2:
        return ["background", "foreground"]
    return ["background", *(f"class_{i}" for i in range(1, num_classes))]


__all__ = ["DatasetLayoutError", "Pairs", "detect_channels", "scan_dataset"]
