"""MLSteam folder-format datasets: scan, validate, decode, batch.

Layout: ``train/<class>/<image>``, ``test/<class>/<image>`` and optionally
``val/<class>/<image>`` (otherwise a seeded, stratified share of train/ is held
out). Images of any size are resized to ``image_size``; grayscale stays one
channel, anything else becomes RGB. Loaders yield ``(uint8 [B,C,S,S], int64 [B])``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, DistributedSampler

IMAGE_EXTENSIONS = {
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
Batch = tuple[torch.Tensor, torch.Tensor]


class DatasetLayoutError(ValueError):
    """The dataset folder does not follow the MLSteam classification layout."""


@dataclass
class Split:
    """Image paths and their class indices."""

    paths: list[Path]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class Layout:
    """A scanned dataset: class names and the splits (val/test may be None)."""

    root: Path
    classes: list[str]
    train: Split
    val: Split | None
    test: Split | None


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "__"))


def _class_images(folder: Path) -> list[Path]:
    files = (p for p in folder.rglob("*") if p.is_file() and _visible(p))
    return sorted(p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS)


def _class_dirs(split_dir: Path) -> list[Path]:
    """Class folders of one split; images lying directly in it are an error."""
    entries = [e for e in sorted(split_dir.iterdir()) if _visible(e)]
    loose = [e for e in entries if e.is_file() and e.suffix.lower() in IMAGE_EXTENSIONS]
    if loose:
        raise DatasetLayoutError(
            f"{split_dir} holds images directly ({loose[0].name}, ...); "
            f"put them in class folders: {split_dir}/<class>/<image>"
        )
    dirs = [e for e in entries if e.is_dir()]
    if not dirs:
        raise DatasetLayoutError(f"{split_dir} has no class folders; expected {split_dir}/<class>/")
    return dirs


def scan_split(split_dir: Path, classes: Sequence[str] | None = None) -> tuple[list[str], Split]:
    """Scan ``split_dir/<class>/*``; with ``classes`` given, folders must be among them."""
    names: list[str] = []
    split = Split([], [])
    for folder in _class_dirs(split_dir):
        images = _class_images(folder)
        if not images:
            raise DatasetLayoutError(
                f"class folder {folder} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        if classes is not None and folder.name not in classes:
            raise DatasetLayoutError(
                f"{folder} is not a class of train/ (train classes: {', '.join(classes)})"
            )
        index = classes.index(folder.name) if classes is not None else len(names)
        names.append(folder.name)
        split.paths += images
        split.labels += [index] * len(images)
    return names, split


def scan_dataset(root: Path) -> Layout:
    """Validate the layout of ``root`` and list its images; errors name the folder."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset folder {root} does not exist")
    if not (root / "train").is_dir():
        raise DatasetLayoutError(
            f"{root} has no train/ folder; expected {root}/train/<class>/<image>, "
            f"{root}/test/<class>/<image> and optionally {root}/val/<class>/<image>"
        )
    classes, train = scan_split(root / "train")
    if len(classes) < 2:
        raise DatasetLayoutError(f"{root / 'train'} has {len(classes)} class; need at least 2")
    val = scan_split(root / "val", classes)[1] if (root / "val").is_dir() else None
    test = scan_split(root / "test", classes)[1] if (root / "test").is_dir() else None
    return Layout(root, classes, train, val, test)


def stratified_holdout(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Seeded, per-class split of ``split`` into (kept, held out)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(split.labels)
    held: list[int] = []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n = round(len(idx) * fraction) if len(idx) > 1 else 0
        held += idx[:n].tolist()
    held_set = set(held)
    keep = [i for i in range(len(split)) if i not in held_set]
    held.sort()

    def pick(ids: list[int]) -> Split:
        return Split([split.paths[i] for i in ids], [split.labels[i] for i in ids])

    return pick(keep), pick(held)


def detect_channels(paths: Sequence[Path], sample: int = 200) -> int:
    """1 when every sampled image is grayscale, else 3."""
    step = max(1, len(paths) // sample)
    for path in paths[::step]:
        with Image.open(path) as img:
            if img.mode not in GRAY_MODES:
                return 3
    return 1


def load_image(path: Path, channels: int, size: int) -> np.ndarray:
    """Decode one image to uint8 ``[channels, size, size]``."""
    try:
        with Image.open(path) as img:
            converted = img.convert("L" if channels == 1 else "RGB")
            if converted.size != (size, size):
                converted = converted.resize((size, size), Image.Resampling.BILINEAR)
            arr = np.array(converted, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetLayoutError(f"cannot read image {path}: {exc}") from exc
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def list_images(root: Path) -> list[Path]:
    """What a predict.py reads: ``root`` itself when it is a file, else every image under
    it (recursively, hidden files and folders skipped), sorted; exits with an error
    message when ``root`` does not exist or holds no image."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise SystemExit(f"error: {root} does not exist")
    files = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    if not files:
        raise SystemExit(f"error: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {root}")
    return sorted(files)


def load_batch(paths: Sequence[Path], channels: int, size: int) -> torch.Tensor:
    """The images at ``paths`` as one uint8 ``[N, channels, size, size]`` tensor."""
    return torch.stack([torch.from_numpy(load_image(p, channels, size)) for p in paths])


def decode_all(split: Split, channels: int, size: int, threads: int = 4) -> torch.Tensor:
    """Decode a whole split into one uint8 tensor (PIL releases the GIL)."""
    out = np.empty((len(split), channels, size, size), dtype=np.uint8)

    def work(i: int) -> None:
        out[i] = load_image(split.paths[i], channels, size)

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(work, range(len(split))))
    return torch.from_numpy(out)


def epoch_indices(
    n: int, *, shuffle: bool, seed: int, epoch: int, rank: int = 0, world: int = 1, pad: bool = True
) -> torch.Tensor:
    """This rank's sample order for an epoch (seeded by seed + epoch, as DistributedSampler)."""
    if shuffle:
        gen = torch.Generator().manual_seed(seed + epoch)
        order = torch.randperm(n, generator=gen)
    else:
        order = torch.arange(n)
    if world > 1 and pad and n % world:
        order = torch.cat([order, order[: world - n % world]])
    return order[rank::world]


class TensorLoader:
    """Batches from tensors held in memory (optionally on the GPU already)."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world, self.epoch = rank, world, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        return epoch_indices(
            len(self.labels),
            shuffle=self.shuffle,
            seed=self.seed,
            epoch=self.epoch,
            rank=self.rank,
            world=self.world,
            pad=self.shuffle,
        ).to(self.images.device)

    def __len__(self) -> int:
        n = len(self._order())
        full, rest = divmod(n, self.batch_size)
        return full + (1 if rest > 1 or (rest == 1 and not self.shuffle) else 0)

    def __iter__(self) -> Iterator[Batch]:
        order = self._order()
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.shuffle and len(idx) < 2:  # a batch of one breaks BatchNorm
                break
            yield self.images[idx], self.labels[idx]


class FolderDataset(Dataset[tuple[torch.Tensor, int]]):
    """Decodes images from disk on every access (for datasets too big for memory)."""

    def __init__(self, split: Split, channels: int, size: int) -> None:
        self.split, self.channels, self.size = split, channels, size

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = load_image(self.split.paths[i], self.channels, self.size)
        return torch.from_numpy(img), self.split.labels[i]


class StreamLoader:
    """A DataLoader over a FolderDataset with workers, pinned memory, persistent workers."""

    def __init__(
        self,
        dataset: FolderDataset,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        rank: int,
        world: int,
        workers: int,
        pin: bool,
    ) -> None:
        if shuffle:
            self.sampler: DistributedSampler | None = DistributedSampler(
                dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed
            )
            sampler: Sequence[int] | DistributedSampler = self.sampler
        else:
            self.sampler = None
            sampler = list(range(rank, len(dataset), world))
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            pin_memory=pin,
            persistent_workers=workers > 0,
            drop_last=False,
            prefetch_factor=4 if workers > 0 else None,
        )

    def set_epoch(self, epoch: int) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for x, y in self.loader:
            if self.sampler is not None and len(y) < 2:
                break
            yield x, y


Loader = TensorLoader | StreamLoader
