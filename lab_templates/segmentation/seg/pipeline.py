"""From a dataset folder to in-memory train/val/test loaders of (image, mask) batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from cls.data import TensorLoader
from cls.distributed import DistInfo
from cls.pipeline import channel_stats

from .data import (
    BINARY_PALETTE,
    DatasetLayoutError,
    Pairs,
    check_sizes,
    class_names,
    decode_images,
    decode_masks,
    detect_channels,
    detect_mask_mode,
    holdout,
    mask_palette,
    scan_dataset,
)


@dataclass
class SegData:
    """Loaders, decoded tensors and what the model needs to know about the data."""

    classes: list[str]
    palette: list[tuple[int, int, int]]
    mask_mode: str
    channels: int
    mean: list[float]
    std: list[float]
    loaders: dict[str, TensorLoader]
    tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(repr=False)
    names: dict[str, list[str]]

    @property
    def sizes(self) -> dict[str, int]:
        return {k: len(v[1]) for k, v in self.tensors.items()}


def _splits(root: Path, val_fraction: float, seed: int) -> dict[str, Pairs]:
    splits = scan_dataset(root)
    if "val" not in splits and val_fraction > 0:
        splits["train"], splits["val"] = holdout(splits["train"], val_fraction, seed)
        if not len(splits["val"]):
            del splits["val"]
    for pairs in splits.values():
        check_sizes(pairs)
    return splits


def _num_classes(masks: dict[str, torch.Tensor], mode: str) -> int:
    if mode == "binary":
        return 2
    k = int(masks["train"].max()) + 1
    for name, m in masks.items():
        if int(m.max()) >= k:
            raise DatasetLayoutError(
                f"{name}/ masks use class index {int(m.max())}, which no train/ mask has"
            )
    return max(k, 2)


def build_data(
    *,
    data_dir: str,
    image_size: int,
    batch_size: int,
    seed: int,
    val_fraction: float,
    channels: str,
    mask_mode: str,
    dist: DistInfo,
    device: torch.device,
    threads: int = 4,
) -> SegData:
    """Scan, split, decode everything into memory, compute normalisation statistics."""
    root = Path(data_dir)
    splits = _splits(root, val_fraction, seed)
    train = splits["train"]
    n_channels = detect_channels(train.images) if channels == "auto" else int(channels)
    mode = detect_mask_mode(train.masks) if mask_mode == "auto" else mask_mode
    tensors = {
        name: (
            decode_images(pairs, n_channels, image_size, threads),
            decode_masks(pairs, mode, image_size, threads),
        )
        for name, pairs in splits.items()
    }
    k = _num_classes({n: t[1] for n, t in tensors.items()}, mode)
    palette = mask_palette(train.masks[0], k) if mode == "palette" else BINARY_PALETTE
    mean, std = channel_stats(tensors["train"][0][:: max(1, len(train) // 2048)])
    loaders = {
        name: TensorLoader(
            images.to(device) if device.type == "cuda" else images,
            masks.to(device) if device.type == "cuda" else masks,
            batch_size if name == "train" else batch_size * 2,
            shuffle=name == "train",
            seed=seed,
            rank=dist.rank,
            world=dist.world,
        )
        for name, (images, masks) in tensors.items()
    }
    return SegData(
        classes=class_names(root, k),
        palette=palette,
        mask_mode=mode,
        channels=n_channels,
        mean=mean,
        std=std,
        loaders=loaders,
        tensors=tensors,
        names={n: [p.stem for p in pairs.images] for n, pairs in splits.items()},
    )
