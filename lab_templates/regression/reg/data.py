"""CSV datasets of image path -> scores: read, validate, decode, batch.

Layout: ``train.csv`` (required), ``val.csv`` and ``test.csv`` (optional; without
``val.csv`` a seeded share of train.csv is held out). Each CSV has a header, an
image-path column (``image`` by default; paths relative to the CSV's folder, or
absolute) and one or more numeric score columns. Any error names the file, the
row and the column.

The loaders are the classification template's: a sample's "label" is its row in
one score table (train rows, then val, then test), so :class:`cls.data.TensorLoader`
and :class:`cls.data.StreamLoader` batch ``(uint8 images, row indices)`` unchanged
and the trainer looks the scores up on the device.
"""

from __future__ import annotations

import argparse
import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from cls.data import DatasetLayoutError, Loader, Split, detect_channels
from cls.distributed import DistInfo
from cls.pipeline import _memory_loaders, _stream_loaders, channel_stats

SPLIT_FILES = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}


@dataclass
class Table:
    """One CSV: image paths and their scores (float32 [N, K])."""

    paths: list[Path]
    scores: np.ndarray


def _columns(header: list[str], name: str, image_column: str, targets: list[str]) -> list[str]:
    if image_column not in header:
        raise DatasetLayoutError(
            f"{name}: no column {image_column!r} (columns: {', '.join(header)}); "
            f"name the image-path column with --image_column"
        )
    wanted = targets or [c for c in header if c != image_column]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise DatasetLayoutError(
            f"{name}: no score column {missing[0]!r} (columns: {', '.join(header)})"
        )
    if not wanted:
        raise DatasetLayoutError(f"{name}: no score column besides {image_column!r}")
    return wanted


def _score(text: str, where: str, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DatasetLayoutError(f"{where}: score {column!r} is not a finite number: {text!r}")
    return value


def read_table(path: Path, image_column: str, targets: list[str]) -> tuple[list[str], Table]:
    """Parse and validate one CSV; returns (score column names, table)."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        columns = _columns(header, path.name, image_column, targets)
        at = [header.index(c) for c in [image_column, *columns]]
        paths, scores = [], []
        for row_no, row in enumerate(reader, start=1):
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path.name} row {row_no} (line {reader.line_num})"
            if len(row) != len(header):
                raise DatasetLayoutError(
                    f"{where}: {len(row)} fields, the header has {len(header)}"
                )
            image = path.parent / row[at[0]].strip()
            if not image.is_file():
                raise DatasetLayoutError(
                    f"{where}: image {row[at[0]].strip()!r} not found ({image})"
                )
            paths.append(image)
            scores.append(
                [_score(row[i].strip(), where, c) for i, c in zip(at[1:], columns, strict=True)]
            )
    if not paths:
        raise DatasetLayoutError(f"{path} has no rows")
    return columns, Table(paths, np.asarray(scores, dtype=np.float32))


def _holdout(table: Table, fraction: float, seed: int) -> tuple[Table, Table]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(table.paths))
    n = round(len(order) * fraction)
    held, kept = np.sort(order[:n]), np.sort(order[n:])

    def pick(ids: np.ndarray) -> Table:
        return Table([table.paths[i] for i in ids], table.scores[ids])

    return pick(kept), pick(held)


def read_splits(
    root: Path, image_column: str, targets: list[str], val_fraction: float, seed: int
) -> tuple[list[str], dict[str, Table]]:
    """The splits present in ``root`` (val held out from train when val.csv is absent)."""
    if not (root / "train.csv").is_file():
        raise DatasetLayoutError(
            f"{root} has no train.csv; expected {root}/train.csv (and optionally val.csv, "
            f"test.csv) with a header: {image_column},<score>,..."
        )
    names, train = read_table(root / "train.csv", image_column, targets)
    tables = {"train": train}
    for split in ("val", "test"):
        path = root / SPLIT_FILES[split]
        if path.is_file():
            tables[split] = read_table(path, image_column, names)[1]
    if "val" not in tables and val_fraction > 0:
        tables["train"], tables["val"] = _holdout(train, val_fraction, seed)
    return names, {k: v for k, v in tables.items() if len(v.paths)}


@dataclass
class RegData:
    """Loaders, the score table they index, and what the model must know."""

    targets: list[str]
    channels: int
    mean: list[float]
    std: list[float]
    scores: torch.Tensor
    target_mean: list[float]
    target_std: list[float]
    loaders: dict[str, Loader]
    sizes: dict[str, int]
    in_memory: bool
    samples: torch.Tensor
    test_paths: list[Path]


def build_data(args: argparse.Namespace, dist: DistInfo, device: torch.device) -> RegData:
    """Read the CSVs, decide memory vs streaming (as classification does), batch."""
    names, tables = read_splits(
        Path(args.data_dir), args.image_column, args.targets, args.val_fraction, args.seed
    )
    splits, start = {}, 0
    for split, table in tables.items():  # labels = rows of the one score table
        splits[split] = Split(table.paths, list(range(start, start + len(table.paths))))
        start += len(table.paths)
    auto = args.channels == "auto"
    channels = detect_channels(splits["train"].paths) if auto else int(args.channels)
    in_memory = start * channels * args.image_size**2 <= args.cache_max_mb * 2**20
    build = _memory_loaders if in_memory else _stream_loaders
    loaders, images = build(
        splits,
        channels,
        args.image_size,
        args.batch_size,
        args.seed,
        dist,
        device,
        max(1, args.workers),
    )
    mean, std = channel_stats(images[:: max(1, len(images) // 2048)])
    train = torch.from_numpy(tables["train"].scores)
    return RegData(
        targets=names,
        channels=channels,
        mean=mean,
        std=std,
        scores=torch.from_numpy(np.concatenate([t.scores for t in tables.values()])).to(device),
        target_mean=train.mean(0).tolist(),
        target_std=train.std(0).clamp(min=1e-6).tolist() if len(train) > 1 else [1.0] * len(names),
        loaders=loaders,
        sizes={k: len(v.paths) for k, v in tables.items()},
        in_memory=in_memory,
        samples=images[:64],
        test_paths=tables["test"].paths if "test" in tables else [],
    )
