"""Command-line flags, ``--config`` files and the job contract's environment.

Every param of ``mlsteam.yml`` is a flag ``--name value`` (the platform appends
them). ``--config conf.yml`` reads a YAML mapping of flag names (or an
``mlsteam.yml``, whose ``params`` are used); flags on the command line win.
Unknown flags or config keys are an error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

NETWORKS = ["lenet", "resnet18", "resnet50", "vgg16", "vgg16_bn", "mobilenet_v2"]
AUGMENTATIONS = ["none", "color_distortion", "flip_random", "both"]
OPTIMIZERS = ["sgd", "sgd_momentum", "adam", "adamw"]
SCHEDULES = ["none", "step", "cosine"]
MEMORY_METHODS = ["none", "recomputing"]
FRAMEWORKS = ["pytorch", "tensorflow"]
DEFAULT_DATASET = "digits"

AUG_HELP = "training augmentation (random horizontal flip, colour distortion)"
WEIGHTS_HELP = (
    "initial weights (.pt/.pth state dict, a model.pt or checkpoint.pt), or the name of "
    "registered weights in $MLSTEAM_WEIGHTS_DIR; a head for another class count is "
    "re-initialised, any other tensor that does not fit is an error"
)


def str2bool(value: str | bool) -> bool:
    """Parse ``true/false/1/0/yes/no/on/off`` (the platform passes params as text)."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower()
    if text in {"1", "true", "yes", "on", "y"}:
        return True
    if text in {"0", "false", "no", "off", "n", ""}:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {value!r}")


def positive_int(value: str) -> int:
    """An integer >= 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


def add_model_params(
    p: argparse.ArgumentParser,
    network: tuple[str, Sequence[str]],
    augmentation: tuple[str, Sequence[str]],
    aug_help: str,
) -> argparse._ArgumentGroup:
    """Open the "params (mlsteam.yml)" group with --network and --aug_list, each given as
    (default, choices); returns the group."""
    g = p.add_argument_group("params (mlsteam.yml)")
    g.add_argument("--network", default=network[0], choices=list(network[1]), help="network")
    g.add_argument(
        "--aug_list", default=augmentation[0], choices=list(augmentation[1]), help=aug_help
    )
    return g


def add_training_params(
    g: argparse._ArgumentGroup,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    weight_decay: float,
) -> None:
    """--num_epoch, --batch_size, --lr, --optimizer, --lr_schedule, --weight_decay with a
    template's defaults."""
    g.add_argument("--num_epoch", type=positive_int, default=epochs, help="epochs to train")
    g.add_argument(
        "--batch_size",
        type=positive_int,
        default=batch_size,
        help="images per optimizer step per process (global batch = batch_size x GPUs)",
    )
    g.add_argument("--lr", type=float, default=lr, help="initial learning rate")
    g.add_argument(
        "--optimizer",
        default=optimizer,
        choices=OPTIMIZERS,
        help="sgd, sgd_momentum (0.9), adam or adamw",
    )
    g.add_argument(
        "--lr_schedule",
        default="cosine",
        choices=SCHEDULES,
        help="none, step (x0.1 every num_epoch/3 epochs) or cosine (to 0)",
    )
    g.add_argument(
        "--weight_decay", type=float, default=weight_decay, help="L2 / decoupled weight decay"
    )


def add_backbone_params(g: argparse._ArgumentGroup) -> None:
    """--memory_saving_method and --small_chunk (for the networks of :mod:`cls.models`)."""
    g.add_argument(
        "--memory_saving_method",
        default="none",
        choices=MEMORY_METHODS,
        help="recomputing: activation checkpointing over the network's stages",
    )
    g.add_argument(
        "--small_chunk",
        type=positive_int,
        default=1,
        help="split each batch into k chunks (gradient accumulation, one step)",
    )


def _add_params(p: argparse.ArgumentParser) -> None:
    """The flags that are also ``mlsteam.yml`` params."""
    g = add_model_params(p, ("lenet", NETWORKS), ("none", AUGMENTATIONS), AUG_HELP)
    g.add_argument(
        "--framework",
        default="pytorch",
        choices=FRAMEWORKS,
        help="train.py runs package cls (pytorch) or tfcls (tensorflow); here a config's value",
    )
    add_training_params(
        g, epochs=10, batch_size=64, lr=0.05, optimizer="sgd_momentum", weight_decay=1e-4
    )
    g.add_argument(
        "--image_size",
        type=positive_int,
        default=32,
        help="images are resized to image_size x image_size",
    )
    g.add_argument("--seed", type=int, default=0, help="seed for init, split, order, augmentation")
    add_backbone_params(g)


def add_io(
    p: argparse.ArgumentParser,
    *,
    layout: str,
    outputs: str,
    default_dataset: str,
    weights: bool = True,
    cache: bool = True,
) -> argparse._ArgumentGroup:
    """The "data and outputs" flags every template shares (``layout``: the dataset's
    files, ``outputs``: what train.py writes); returns the group for a template's own."""
    g = p.add_argument_group("data and outputs")
    g.add_argument(
        "--data_dir",
        default=None,
        help=f"dataset folder ({layout}); "
        "default $MLSTEAM_INPUT_DIR/<dataset>, else its first dataset folder",
    )
    g.add_argument(
        "--dataset",
        default=None,
        help=f"dataset name under $MLSTEAM_INPUT_DIR (default {default_dataset})",
    )
    g.add_argument(
        "--output_dir",
        default=None,
        help=f"outputs ({outputs}, tensorboard/); default $MLSTEAM_OUTPUT_DIR, else ./output",
    )
    g.add_argument("--config", default=None, help="YAML file of flag values; flags override it")
    if weights:
        g.add_argument("--weights", default=None, help=WEIGHTS_HELP)
    g.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        help="continue from a checkpoint.pt (no value: <output_dir>/checkpoint.pt); default "
        "$MLSTEAM_RESUME, which the platform sets to auto when a preempted job runs again",
    )
    g.add_argument(
        "--max_epochs_this_run",
        type=int,
        default=0,
        help="stop after this many epochs (0 = no limit) and leave checkpoint.pt "
        "for a later --resume; model.pt and the test report are skipped",
    )
    g.add_argument(
        "--val_fraction",
        type=float,
        default=0.1,
        help="share of the training data held out for validation without a validation split",
    )
    g.add_argument(
        "--channels",
        default="auto",
        choices=["auto", "1", "3"],
        help="1 = grayscale, 3 = RGB; auto looks at the images",
    )
    if cache:
        g.add_argument(
            "--cache_max_mb",
            type=float,
            default=2048.0,
            help="decode the dataset once into memory when it fits in this many MB",
        )
    return g


def _add_io(p: argparse.ArgumentParser) -> None:
    """Where data and outputs live."""
    add_io(
        p,
        layout="train/<class>/..., test/<class>/..., optional val/",
        outputs="checkpoints, model.pt, model.onnx",
        default_dataset=DEFAULT_DATASET,
    )


def _add_runtime(p: argparse.ArgumentParser) -> None:
    """Devices, speed and logging."""
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    g.add_argument(
        "--compile",
        type=str2bool,
        nargs="?",
        const=True,
        default=False,
        help="torch.compile the model",
    )
    g.add_argument(
        "--amp",
        type=str2bool,
        nargs="?",
        const=True,
        default=True,
        help="bf16 autocast on GPU (ignored on CPU)",
    )
    g.add_argument(
        "--channels_last",
        type=str2bool,
        nargs="?",
        const=True,
        default=True,
        help="channels_last memory format on GPU (ignored on CPU)",
    )
    g.add_argument(
        "--ddp",
        default="auto",
        choices=["auto", "off"],
        help="auto: several visible GPUs -> re-launch under torchrun, one process each",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="DataLoader worker processes for datasets streamed from disk",
    )
    g.add_argument(
        "--log_every", type=positive_int, default=10, help="print a Train line every N steps"
    )
    g.add_argument(
        "--max_steps_per_epoch",
        type=int,
        default=0,
        help="stop each epoch after N steps (0 = full epoch); for smoke tests",
    )
    g.add_argument(
        "--sample_images", type=int, default=16, help="training images written to TensorBoard"
    )


def make_parser(
    description: str, *groups: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """A train.py argument parser whose ``--help`` documents every flag; ``groups`` add
    a template's flags in order (e.g. params, data and outputs), then the runtime flags.
    A flag added again later replaces the first (a variant may change a default)."""
    p = argparse.ArgumentParser(
        prog="train.py",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
        conflict_handler="resolve",
    )
    for add in (*groups, _add_runtime):
        add(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The train.py argument parser; ``--help`` documents every flag."""
    return make_parser(
        "Labyard image classification template (MLSteam folder format).",
        _add_params,
        _add_io,
    )


def predict_parser(description: str, output: str, output_help: str) -> argparse.ArgumentParser:
    """The predict.py parser of a model.pt that reads images into an ``--output`` file."""
    p = argparse.ArgumentParser(
        prog="predict.py",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("--model", required=True, help="model.pt written by train.py")
    p.add_argument("--input", required=True, help="an image or a folder (searched recursively)")
    p.add_argument("--output", default=output, help=output_help)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    return p


def _config_tokens(path: Path, parser: argparse.ArgumentParser) -> list[str]:
    """Turn a YAML config (or an mlsteam.yml's params) into ``--name value`` tokens."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        parser.error(f"cannot read config {path}: {exc}")
    if not isinstance(data, dict):
        parser.error(f"config {path} must be a mapping of flag names to values")
    if isinstance(data.get("params"), dict):
        data = data["params"]
    known = {a.dest for a in parser._actions}
    tokens: list[str] = []
    for key, value in data.items():
        if key not in known or key in {"help", "config"}:
            parser.error(f"config {path}: unknown key {key!r}")
        if isinstance(value, list):
            if len(value) != 1:
                parser.error(f"config {path}: {key} has {len(value)} values; give one")
            value = value[0]
        if value is None:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        tokens += [f"--{key}", text]
    return tokens


def _resolve_data_dir(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    default: str = DEFAULT_DATASET,
    marker: str = "train",
) -> Path:
    """--data_dir, else $MLSTEAM_INPUT_DIR/<dataset or ``default``>, else its first folder
    holding ``marker`` (a dataset's train/ or train.csv), else its first folder."""
    if args.data_dir:
        return Path(args.data_dir)
    input_dir = os.environ.get("MLSTEAM_INPUT_DIR")
    if not input_dir:
        parser.error("--data_dir is required when MLSTEAM_INPUT_DIR is not set")
    root = Path(input_dir)
    if args.dataset:
        if Path(args.dataset).name != args.dataset or args.dataset in {".", ".."}:
            parser.error(f"--dataset must be a folder name under {root}, got {args.dataset!r}")
        return root / args.dataset
    if (root / default).is_dir():
        return root / default
    candidates = sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    with_train = [d for d in candidates if (d / marker).exists()]
    if with_train or candidates:
        return (with_train or candidates)[0]
    parser.error(f"no dataset folder under MLSTEAM_INPUT_DIR={root}; attach a dataset")


def parse_with(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    *,
    default_dataset: str = DEFAULT_DATASET,
    marker: str = "train",
) -> argparse.Namespace:
    """Parse flags (config file first, command line overriding), fill in the data folder
    (see :func:`_resolve_data_dir`) and the output folder, check --val_fraction, take
    --resume from $MLSTEAM_RESUME when not given and turn an empty --weights / --resume
    into None."""
    tokens = list(argv) if argv is not None else sys.argv[1:]
    args = parser.parse_args(tokens)
    if args.config:
        args = parser.parse_args(_config_tokens(Path(args.config), parser) + tokens)
    args.data_dir = str(_resolve_data_dir(args, parser, default_dataset, marker))
    args.output_dir = args.output_dir or os.environ.get("MLSTEAM_OUTPUT_DIR") or "output"
    if not 0.0 <= getattr(args, "val_fraction", 0.0) < 1.0:
        parser.error("--val_fraction must be in [0, 1)")
    if hasattr(args, "resume") and args.resume is None:  # a preempted job's next attempt
        args.resume = os.environ.get("MLSTEAM_RESUME") or None
    for name in ("weights", "resume"):
        if getattr(args, name, None) == "":
            setattr(args, name, None)
    return args


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse flags (config file first, command line overriding) and fill in paths."""
    return parse_with(build_parser(), argv)


def to_dict(args: argparse.Namespace) -> dict[str, Any]:
    """Arguments as a plain dict (stored in checkpoints and model.pt)."""
    return dict(vars(args))
