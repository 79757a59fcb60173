"""From a dataset folder to train/val/test loaders (in memory or streamed)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import (
    FolderDataset,
    Loader,
    Split,
    StreamLoader,
    TensorLoader,
    decode_all,
    detect_channels,
    scan_dataset,
    stratified_holdout,
)
from .distributed import DistInfo


@dataclass
class DataBundle:
    """Loaders and what the model needs to know about the data."""

    classes: list[str]
    channels: int
    mean: list[float]
    std: list[float]
    train: Loader
    val: Loader | None
    test: Loader | None
    in_memory: bool
    sizes: dict[str, int]
    samples: torch.Tensor


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images, in [0, 1] units."""
    x = images.float().div_(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    return x.mean(1).tolist(), x.std(1).clamp(min=1e-3).tolist()


def _splits(root: Path, val_fraction: float, seed: int) -> tuple[list[str], dict[str, Split]]:
    layout = scan_dataset(root)
    train, val = layout.train, layout.val
    if val is None and val_fraction > 0:
        train, val = stratified_holdout(train, val_fraction, seed)
    splits = {"train": train}
    if val is not None and len(val):
        splits["val"] = val
    if layout.test is not None:
        splits["test"] = layout.test
    return layout.classes, splits


def _memory_loaders(
    splits: dict[str, Split],
    channels: int,
    size: int,
    batch_size: int,
    seed: int,
    dist: DistInfo,
    device: torch.device,
    threads: int,
) -> tuple[dict[str, Loader], torch.Tensor]:
    loaders: dict[str, Loader] = {}
    train_images = torch.empty(0)
    for name, split in splits.items():
        images = decode_all(split, channels, size, threads)
        labels = torch.tensor(split.labels, dtype=torch.long)
        if name == "train":
            train_images = images
        if device.type == "cuda":
            images, labels = images.to(device), labels.to(device)
        loaders[name] = TensorLoader(
            images,
            labels,
            batch_size if name == "train" else batch_size * 2,
            shuffle=name == "train",
            seed=seed,
            rank=dist.rank,
            world=dist.world,
        )
    return loaders, train_images


def _stream_loaders(
    splits: dict[str, Split],
    channels: int,
    size: int,
    batch_size: int,
    seed: int,
    dist: DistInfo,
    device: torch.device,
    workers: int,
) -> tuple[dict[str, Loader], torch.Tensor]:
    loaders: dict[str, Loader] = {}
    for name, split in splits.items():
        ds = FolderDataset(split, channels, size)
        loaders[name] = StreamLoader(
            ds,
            batch_size if name == "train" else batch_size * 2,
            shuffle=name == "train",
            seed=seed,
            rank=dist.rank,
            world=dist.world,
            workers=workers,
            pin=device.type == "cuda",
        )
    train = splits["train"]
    step = max(1, len(train) // 512)
    sample = Split(train.paths[::step], train.labels[::step])
    return loaders, decode_all(sample, channels, size, max(1, workers))


def build_data(args: argparse.Namespace, dist: DistInfo, device: torch.device) -> DataBundle:
    """Scan, split, decide memory vs streaming, compute normalisation stats (as the
    flags --data_dir, --image_size, --batch_size, --seed, --val_fraction, --channels,
    --cache_max_mb and --workers say)."""
    classes, splits = _splits(Path(args.data_dir), args.val_fraction, args.seed)
    channels = args.channels
    n_channels = detect_channels(splits["train"].paths) if channels == "auto" else int(channels)
    total = sum(len(s) for s in splits.values())
    size = args.image_size
    in_memory = total * n_channels * size**2 <= args.cache_max_mb * 2**20
    build = _memory_loaders if in_memory else _stream_loaders
    loaders, stats_images = build(
        splits, n_channels, size, args.batch_size, args.seed, dist, device, max(1, args.workers)
    )
    mean, std = channel_stats(stats_images[:: max(1, len(stats_images) // 2048)])
    return DataBundle(
        classes=classes,
        channels=n_channels,
        mean=mean,
        std=std,
        train=loaders["train"],
        val=loaders.get("val"),
        test=loaders.get("test"),
        in_memory=in_memory,
        sizes={k: len(v) for k, v in splits.items()},
        samples=stats_images[:64],
    )
