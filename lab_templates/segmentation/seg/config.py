"""Command-line flags of the segmentation template (the ``mlsteam.yml`` params and more).

Runtime flags, ``--config`` files and the boolean/positive parsers are the
classification template's (``cls.config``); flags on the command line win over a
config file, and unknown flags or config keys are an error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cls.config import (
    OPTIMIZERS,
    SCHEDULES,
    _add_runtime,
    _config_tokens,
    _resolve_data_dir,
    positive_int,
)

from .augment import MODES
from .metrics import LOSSES
from .models import NETWORKS

DEFAULT_DATASET = "shapes"
MASK_MODES = ["auto", "binary", "palette"]


def _add_params(p: argparse.ArgumentParser) -> None:
    """The flags that are also ``mlsteam.yml`` params."""
    g = p.add_argument_group("params (mlsteam.yml)")
    g.add_argument("--network", default="unet_small", choices=list(NETWORKS))
    g.add_argument(
        "--aug_list",
        default="both",
        choices=list(MODES),
        help="joint image+mask augmentation: random flips, random 90-degree rotations, both",
    )
    g.add_argument("--num_epoch", type=positive_int, default=6, help="epochs to train")
    g.add_argument("--batch_size", type=positive_int, default=16, help="images per step")
    g.add_argument("--lr", type=float, default=0.01, help="initial learning rate")
    g.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    g.add_argument("--lr_schedule", default="cosine", choices=SCHEDULES)
    g.add_argument("--weight_decay", type=float, default=0.0, help="L2 / decoupled weight decay")
    g.add_argument(
        "--image_size",
        type=positive_int,
        default=64,
        help="images and masks are resized to image_size x image_size (masks: nearest)",
    )
    g.add_argument(
        "--loss",
        default="ce_dice",
        choices=list(LOSSES),
        help="pixel cross-entropy, soft Dice over the foreground classes, or their sum",
    )
    g.add_argument("--seed", type=int, default=0, help="seed for init, split, order, augmentation")


def _add_io(p: argparse.ArgumentParser) -> None:
    """Where data and outputs live."""
    g = p.add_argument_group("data and outputs")
    g.add_argument(
        "--data_dir",
        default=None,
        help="dataset folder (train/images, train/masks, optional val/ and test/ alike); "
        "default $MLSTEAM_INPUT_DIR/<dataset>",
    )
    g.add_argument(
        "--dataset",
        default=None,
        help=f"dataset name under $MLSTEAM_INPUT_DIR (default {DEFAULT_DATASET})",
    )
    g.add_argument(
        "--output_dir",
        default=None,
        help="outputs (checkpoints, model.pt, model.onnx, config.yml, overlays/, tensorboard/); "
        "default $MLSTEAM_OUTPUT_DIR, else ./output",
    )
    g.add_argument("--config", default=None, help="YAML file of flag values; flags override it")
    g.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        help="continue from a checkpoint.pt (no value: <output_dir>/checkpoint.pt)",
    )
    g.add_argument(
        "--max_epochs_this_run",
        type=int,
        default=0,
        help="stop after this many epochs (0 = no limit), leaving checkpoint.pt for --resume",
    )
    g.add_argument(
        "--val_fraction",
        type=float,
        default=0.1,
        help="share of train/ held out for validation when there is no val/",
    )
    g.add_argument("--channels", default="auto", choices=["auto", "1", "3"])
    g.add_argument(
        "--mask_mode",
        default="auto",
        choices=MASK_MODES,
        help="binary: any nonzero pixel is foreground (CLB masks: objects 2, 3, ..., blobs 1); "
        "palette: a palette PNG's index is the class; auto: palette when masks are palette PNGs",
    )
    g.add_argument(
        "--overlay_images", type=int, default=8, help="test images written to overlays/ as PNG"
    )


def build_parser() -> argparse.ArgumentParser:
    """The train.py argument parser; ``--help`` documents every flag."""
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Labyard image segmentation template (UNet; images/ + masks/ per split).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    _add_params(p)
    _add_io(p)
    _add_runtime(p)
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse flags (config file first, command line overriding) and fill in paths."""
    parser = build_parser()
    argv = list(argv) if argv is not None else None
    args = parser.parse_args(argv)
    if args.config:
        tokens = _config_tokens(Path(args.config), parser)
        args = parser.parse_args(tokens + (argv if argv is not None else sys.argv[1:]))
    input_dir = Path(os.environ.get("MLSTEAM_INPUT_DIR") or "/nonexistent")
    if not args.data_dir and not args.dataset and (input_dir / DEFAULT_DATASET).is_dir():
        args.dataset = DEFAULT_DATASET  # cls's resolver would prefer "digits"
    args.data_dir = str(_resolve_data_dir(args, parser))
    args.output_dir = args.output_dir or os.environ.get("MLSTEAM_OUTPUT_DIR") or "output"
    if not 0.0 <= args.val_fraction < 1.0:
        parser.error("--val_fraction must be in [0, 1)")
    args.resume = args.resume or None
    return args
