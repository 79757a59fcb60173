"""Dataset insight: recognise MLSteam's classification folder format and summarise it.

The format is `train/<class>/<image>`, `test/<class>/<image>` and optionally
`val/<class>/<image>` at the dataset's root. For it we report classes, image counts per
split and class, and the image sizes and modes (read from the headers of a sample);
for anything else we say the format was not recognised and why. Links are never followed
(a dataset's link could lead into another project's files): linked folders and images do not
count, and images are opened with O_NOFOLLOW.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service
from labyard.datasets.files import IMAGE_SUFFIXES
from labyard.paths import is_real_dir, open_nofollow, safe_root, walk_files

SPLITS = ("train", "val", "test")
REQUIRED = ("train", "test")
SAMPLE_IMAGES = 500


class SplitOut(BaseModel):
    """One split: images per class."""

    name: str
    images: int
    classes: dict[str, int]


class InsightOut(BaseModel):
    """What the dataset looks like to the classification template."""

    recognised: bool
    format: str
    reason: str
    classes: list[str]
    splits: list[SplitOut]
    sizes: list[tuple[str, int]]  # "WxH" and how many of the sampled images have it
    modes: list[tuple[str, int]]
    sampled: int


def _count_images(folder: Path) -> tuple[int, list[Path]]:
    """How many image files are under `folder` (links not followed), and a few of them."""
    count = 0
    some: list[Path] = []
    for path in walk_files(folder):
        if path.name.lower().endswith(IMAGE_SUFFIXES):
            count += 1
            if len(some) < SAMPLE_IMAGES:
                some.append(path)
    return count, some


def _not_recognised(reason: str) -> InsightOut:
    return InsightOut(
        recognised=False,
        format="unknown",
        reason=reason,
        classes=[],
        splits=[],
        sizes=[],
        modes=[],
        sampled=0,
    )


def analyse(root: Path) -> InsightOut:
    """Recognise and summarise the classification folder format under `root`."""
    root = safe_root(root)
    missing = [s for s in REQUIRED if not is_real_dir(root / s)]
    if missing:
        names = " and ".join(f"'{m}/'" for m in missing)
        return _not_recognised(
            f"The classification format needs train/<class>/… and test/<class>/… folders; "
            f"{names} missing at the top level."
        )
    splits: list[SplitOut] = []
    samples: list[Path] = []
    for split in SPLITS:
        folder = root / split
        if not is_real_dir(folder):
            continue
        classes = sorted(p.name for p in folder.iterdir() if is_real_dir(p))
        if not classes:
            return _not_recognised(f"'{split}/' has no class folders (train/<class>/<image>).")
        counts: dict[str, int] = {}
        for name in classes:
            counts[name], some = _count_images(folder / name)
            samples.extend(some[: max(1, SAMPLE_IMAGES // (len(classes) * 3))])
        if not any(counts.values()):
            return _not_recognised(f"'{split}/' has class folders but no images in them.")
        splits.append(SplitOut(name=split, images=sum(counts.values()), classes=counts))
    train = set(splits[0].classes)
    for other in splits[1:]:
        extra = sorted(set(other.classes) - train)
        if extra:
            return _not_recognised(
                f"'{other.name}/' has classes that 'train/' lacks: {', '.join(extra[:10])}."
            )
    sizes, modes = _image_summary(samples)
    return InsightOut(
        recognised=True,
        format="classification",
        reason="",
        classes=sorted(train),
        splits=splits,
        sizes=sizes.most_common(10),
        modes=modes.most_common(10),
        sampled=sum(sizes.values()),
    )


def _image_summary(paths: list[Path]) -> tuple[Counter[str], Counter[str]]:
    sizes: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    for path in paths:
        try:
            with open_nofollow(path) as fh, Image.open(fh) as img:  # reads the header only
                sizes[f"{img.width}x{img.height}"] += 1
                modes[img.mode] += 1
        except (UnidentifiedImageError, OSError):
            modes["unreadable"] += 1
    return sizes, modes


def insight_for(db: Session, settings: Settings, *, user: User, dataset_id: int) -> InsightOut:
    """The insight of a dataset the user can read."""
    dataset = service.get_dataset_for_user(db, user, dataset_id)
    return analyse(service.dataset_dir(settings, dataset))
