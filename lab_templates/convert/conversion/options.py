"""Command-line flags (one per ``mlsteam.yml`` param) and the ``split`` spec.

Flags, ``--config conf.yml`` (a YAML mapping or an ``mlsteam.yml``; flags override
it) and the job contract's ``$MLSTEAM_INPUT_DIR`` / ``$MLSTEAM_OUTPUT_DIR`` are
read exactly as the classification template reads them (``cls.config``).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cls.config import _config_tokens, _resolve_data_dir, positive_int

RESIZE_METHODS = ["CENTER_CROP_THEN_SCALE", "SQUARE_MARGIN_THEN_SCALE", "NONE"]
OUTPUT_FORMATS = ["class_folders", "tfrecord"]
DEFAULT_SPLIT = "train:80 val:10 test:10"
SPLIT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$")


@dataclass(frozen=True)
class Part:
    """One named part of the split and its share in percent."""

    name: str
    percent: float


def parse_split(text: str) -> list[Part]:
    """``"train:80 val:10 test:10"`` (spaces, commas or semicolons between parts) as
    parts; ValueError unless the names are distinct and the percentages are > 0 and
    sum to 100."""
    items = [item for item in re.split(r"[\s,;]+", text.strip()) if item]
    if not items:
        raise ValueError("the split is empty; give parts like train:80 val:10 test:10")
    parts: list[Part] = []
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not SPLIT_NAME_RE.match(name):
            raise ValueError(f"split part {item!r} is not name:percent (e.g. train:80)")
        try:
            percent = float(value)
        except ValueError:
            raise ValueError(f"split part {item!r}: {value!r} is not a number") from None
        if not math.isfinite(percent) or percent <= 0:
            raise ValueError(f"split part {item!r}: the percentage must be > 0")
        parts.append(Part(name, percent))
    names = [p.name for p in parts]
    if len(set(names)) != len(names):
        raise ValueError(f"split names must be distinct, got {' '.join(names)}")
    total = sum(p.percent for p in parts)
    if abs(total - 100.0) > 1e-6:
        raise ValueError(f"split percentages must sum to 100, got {total:g} ({text.strip()})")
    return parts


def usable_cpus() -> int:
    """The CPUs this process may run on (a job's cpuset), at least 1."""
    affinity = getattr(os, "sched_getaffinity", None)
    return max(1, len(affinity(0)) if affinity else os.cpu_count() or 1)


def build_parser() -> argparse.ArgumentParser:
    """The convert.py argument parser; ``--help`` documents every flag."""
    p = argparse.ArgumentParser(
        prog="convert.py",
        description="Convert a class-folder dataset: resize, split, class folders or TFRecord.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    g = p.add_argument_group("params (mlsteam.yml)")
    g.add_argument(
        "--resize_method",
        default=RESIZE_METHODS[0],
        choices=RESIZE_METHODS,
        help="crop the centred square, or pad to a square, then scale; NONE "
        "keeps each image's size",
    )
    g.add_argument("--image_size", type=positive_int, default=32, help="side of the output")
    g.add_argument("--split", default=DEFAULT_SPLIT, help="name:percent parts summing to 100")
    g.add_argument("--seed", type=int, default=0, help="the split's random seed")
    g.add_argument("--output_format", default=OUTPUT_FORMATS[0], choices=OUTPUT_FORMATS)
    g.add_argument(
        "--images_per_shard", type=positive_int, default=1000, help="TFRecord images per shard file"
    )
    io = p.add_argument_group("data and outputs")
    io.add_argument(
        "--data_dir", default=None, help="source dataset; default $MLSTEAM_INPUT_DIR/<dataset>"
    )
    io.add_argument("--dataset", default=None, help="dataset name under $MLSTEAM_INPUT_DIR")
    io.add_argument(
        "--dataset_name",
        default="{source}-converted",
        help="unused here: the name of the dataset the platform makes of dataset/ when the job "
        "succeeds (mlsteam.yml's output_dataset)",
    )
    io.add_argument("--output_dir", default=None, help="default $MLSTEAM_OUTPUT_DIR, else ./output")
    io.add_argument("--config", default=None, help="YAML file of flag values; flags override it")
    io.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        help="continue from a checkpoint.json (no value or auto: <output_dir>/checkpoint.json "
        "when there is one); default $MLSTEAM_RESUME, which the platform sets to auto when a "
        "preempted job runs again",
    )
    io.add_argument(
        "--max_images_this_run",
        type=int,
        default=0,
        help="stop after this many images (0 = no limit), leaving checkpoint.json and "
        "dataset.partial/ for a later --resume",
    )
    io.add_argument(
        "--workers",
        type=positive_int,
        default=min(4, usable_cpus()),
        help="threads decoding and encoding images",
    )
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse flags (config file first, command line overriding), check the split and
    fill in the data and output folders."""
    parser = build_parser()
    tokens = list(argv) if argv is not None else sys.argv[1:]
    args = parser.parse_args(tokens)
    if args.config:
        args = parser.parse_args(_config_tokens(Path(args.config), parser) + tokens)
    try:
        args.parts = parse_split(args.split)
    except ValueError as exc:
        parser.error(f"--split: {exc}")
    args.data_dir = str(_resolve_data_dir(args, parser))
    args.output_dir = args.output_dir or os.environ.get("MLSTEAM_OUTPUT_DIR") or "output"
    if args.resume is None:  # a preempted job's next attempt
        args.resume = os.environ.get("MLSTEAM_RESUME") or None
    args.resume = args.resume or None  # an empty --resume: start afresh
    if args.max_images_this_run < 0:
        parser.error("--max_images_this_run must be >= 0")
    return args
