"""Command-line flags of the regression template (``--config`` and the job contract as in
the classification template, whose parser pieces are reused)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cls.config import (
    MEMORY_METHODS,
    NETWORKS,
    OPTIMIZERS,
    SCHEDULES,
    _add_runtime,
    _config_tokens,
    positive_int,
)

DEFAULT_DATASET = "perceptions"
AUGMENTATIONS = ["none", "flip_random"]
LOSSES = ["mse", "l1", "smooth_l1"]


def _add_params(p: argparse.ArgumentParser) -> None:
    """The flags that are also ``mlsteam.yml`` params."""
    g = p.add_argument_group("params (mlsteam.yml)")
    g.add_argument("--network", default="lenet", choices=NETWORKS, help="backbone network")
    g.add_argument(
        "--aug_list",
        default="none",
        choices=AUGMENTATIONS,
        help="flip_random: random left-right flips (only if flips keep the scores)",
    )
    g.add_argument("--num_epoch", type=positive_int, default=15, help="epochs to train")
    g.add_argument("--batch_size", type=positive_int, default=32, help="images per step")
    g.add_argument("--lr", type=float, default=0.002, help="initial learning rate")
    g.add_argument("--optimizer", default="adamw", choices=OPTIMIZERS)
    g.add_argument("--lr_schedule", default="cosine", choices=SCHEDULES)
    g.add_argument("--weight_decay", type=float, default=1e-4, help="L2 / decoupled weight decay")
    g.add_argument(
        "--loss",
        default="mse",
        choices=LOSSES,
        help="training loss on standardised scores (smooth_l1 = Huber, beta 1)",
    )
    g.add_argument("--image_size", type=positive_int, default=32, help="square input size")
    g.add_argument("--seed", type=int, default=0, help="seed for init, split, order, flips")
    g.add_argument("--memory_saving_method", default="none", choices=MEMORY_METHODS)
    g.add_argument(
        "--small_chunk", type=positive_int, default=1, help="gradient accumulation chunks"
    )


def _add_io(p: argparse.ArgumentParser) -> None:
    """Where data and outputs live, and which CSV columns to use."""
    g = p.add_argument_group("data and outputs")
    g.add_argument(
        "--data_dir",
        default=None,
        help="folder with train.csv (val.csv, test.csv optional); "
        "default $MLSTEAM_INPUT_DIR/<dataset>, else its first folder with train.csv",
    )
    g.add_argument("--dataset", default=None, help=f"dataset name (default {DEFAULT_DATASET})")
    g.add_argument("--output_dir", default=None, help="default $MLSTEAM_OUTPUT_DIR, else ./output")
    g.add_argument("--config", default=None, help="YAML file of flag values; flags override it")
    g.add_argument("--image_column", default="image", help="CSV column holding the image paths")
    g.add_argument(
        "--targets",
        default="",
        help="comma-separated score columns (default: every other column)",
    )
    g.add_argument(
        "--weights",
        default=None,
        help="initial weights (a classification or regression model.pt, a state dict); "
        "tensors whose shape differs (the head) are re-initialised",
    )
    g.add_argument("--resume", nargs="?", const="auto", default=None, help="continue a run")
    g.add_argument(
        "--max_epochs_this_run", type=int, default=0, help="stop after N epochs (0 = no limit)"
    )
    g.add_argument(
        "--val_fraction",
        type=float,
        default=0.1,
        help="share of train.csv held out without val.csv",
    )
    g.add_argument("--channels", default="auto", choices=["auto", "1", "3"])
    g.add_argument(
        "--cache_max_mb", type=float, default=2048.0, help="decode into memory below this size"
    )


def build_parser() -> argparse.ArgumentParser:
    """The train.py argument parser; ``--help`` documents every flag."""
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Labyard regression fine-tuning template (CSV of image -> scores).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    _add_params(p)
    _add_io(p)
    _add_runtime(p)
    return p


def _resolve_data_dir(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path:
    """--data_dir, else $MLSTEAM_INPUT_DIR/<dataset or perceptions>, else a folder with
    train.csv, else the first folder."""
    if args.data_dir:
        return Path(args.data_dir)
    input_dir = os.environ.get("MLSTEAM_INPUT_DIR")
    if not input_dir:
        parser.error("--data_dir is required when MLSTEAM_INPUT_DIR is not set")
    root = Path(input_dir)
    name = args.dataset or DEFAULT_DATASET
    if Path(name).name != name or name in {".", ".."}:
        parser.error(f"--dataset must be a folder name under {root}, got {name!r}")
    if args.dataset or (root / name).is_dir():
        return root / name
    folders = sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    with_csv = [d for d in folders if (d / "train.csv").is_file()]
    if not with_csv + folders:
        parser.error(f"no dataset folder under MLSTEAM_INPUT_DIR={root}; attach a dataset")
    return (with_csv + folders)[0]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse flags (config file first, command line overriding) and fill in paths."""
    parser = build_parser()
    argv = list(argv) if argv is not None else None
    args = parser.parse_args(argv)
    if args.config:
        tokens = _config_tokens(Path(args.config), parser)
        args = parser.parse_args(tokens + (argv if argv is not None else sys.argv[1:]))
    args.data_dir = str(_resolve_data_dir(args, parser))
    args.output_dir = args.output_dir or os.environ.get("MLSTEAM_OUTPUT_DIR") or "output"
    if not 0.0 <= args.val_fraction < 1.0:
        parser.error("--val_fraction must be in [0, 1)")
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.weights = args.weights or None
    args.resume = args.resume or None
    return args
