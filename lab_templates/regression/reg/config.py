"""Command-line flags of the regression template (``--config``, the job contract and the
shared parser pieces are the classification template's, ``cls.config``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cls.config import (
    NETWORKS,
    add_backbone_params,
    add_io,
    add_model_params,
    add_training_params,
    make_parser,
    parse_with,
    positive_int,
)

DEFAULT_DATASET = "perceptions"
AUGMENTATIONS = ["none", "flip_random"]
LOSSES = ["mse", "l1", "smooth_l1"]

AUG_HELP = "flip_random: random left-right flips (only if flips keep the scores)"
DESCRIPTION = "Labyard regression fine-tuning template (CSV of image -> scores)."


def _add_params(p: argparse.ArgumentParser) -> None:
    """The flags that are also ``mlsteam.yml`` params."""
    g = add_model_params(p, ("lenet", NETWORKS), ("none", AUGMENTATIONS), AUG_HELP)
    add_training_params(g, epochs=15, batch_size=32, lr=0.002, optimizer="adamw", weight_decay=1e-4)
    g.add_argument(
        "--loss",
        default="mse",
        choices=LOSSES,
        help="training loss on standardised scores (smooth_l1 = Huber, beta 1)",
    )
    g.add_argument("--image_size", type=positive_int, default=32, help="square input size")
    g.add_argument("--seed", type=int, default=0, help="seed for init, split, order, flips")
    add_backbone_params(g)


def _add_io(p: argparse.ArgumentParser) -> None:
    """Where data and outputs live, and which CSV columns to use."""
    g = add_io(
        p,
        layout="train.csv of image paths and scores, optional val.csv and test.csv",
        outputs="checkpoints, model.pt, model.onnx, scatter.png, test_metrics.json",
        default_dataset=DEFAULT_DATASET,
    )
    g.add_argument("--image_column", default="image", help="CSV column holding the image paths")
    g.add_argument(
        "--targets",
        default="",
        help="comma-separated score columns (default: every other column)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The regression train.py's parser (``--help`` documents every flag)."""
    return make_parser(DESCRIPTION, _add_params, _add_io)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse flags (config file first, command line overriding), fill in paths and split
    --targets into a list."""
    args = parse_with(build_parser(), argv, default_dataset=DEFAULT_DATASET, marker="train.csv")
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    return args
