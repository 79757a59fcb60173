"""Command-line flags of the segmentation template (the ``mlsteam.yml`` params and more).

Runtime flags, ``--config`` files, the shared data and output flags and the boolean /
positive parsers are the classification template's (``cls.config``); flags on the
command line win over a config file, and unknown flags or config keys are an error.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cls.config import (
    add_io,
    add_model_params,
    add_training_params,
    make_parser,
    parse_with,
    positive_int,
)

from .augment import MODES
from .metrics import LOSSES
from .models import NETWORKS

DEFAULT_DATASET = "shapes"
MASK_MODES = ["auto", "binary", "palette"]

AUG_HELP = "joint image+mask augmentation: random flips, random 90-degree rotations, both"
DESCRIPTION = "Labyard image segmentation template (UNet; images/ + masks/ per split)."


def _add_params(p: argparse.ArgumentParser) -> None:
    """The flags that are also ``mlsteam.yml`` params."""
    g = add_model_params(p, ("unet_small", NETWORKS), ("both", MODES), AUG_HELP)
    add_training_params(g, epochs=6, batch_size=16, lr=0.01, optimizer="adam", weight_decay=0.0)
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
    """Where data and outputs live, and how masks are read."""
    g = add_io(
        p,
        layout="train/images, train/masks, optional val/ and test/ alike",
        outputs="checkpoints, model.pt, model.onnx, config.yml, overlays/",
        default_dataset=DEFAULT_DATASET,
        weights=False,
        cache=False,
    )
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
    """The segmentation train.py's parser; ``--help`` documents every flag."""
    return make_parser(DESCRIPTION, _add_params, _add_io)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse flags (config file first, command line overriding) and fill in paths."""
    return parse_with(build_parser(), argv, default_dataset=DEFAULT_DATASET)
