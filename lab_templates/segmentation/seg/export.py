"""model.pt and config.yml (what predict.py rebuilds the model from); ONNX export is
``cls.export.export_onnx`` (input float [N, C, S, S] in [0, 1] -> logits [N, K, S, S])."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import yaml
from cls.export import run_meta
from cls.models import Classifier

from .models import build_network
from .pipeline import SegData

CONFIG_KEYS = (
    "network",
    "in_channels",
    "num_classes",
    "class_names",
    "image_size",
    "mean",
    "std",
    "palette",
    "mask_mode",
)


def seg_meta(args: argparse.Namespace, data: SegData) -> dict[str, Any]:
    """Everything predict.py needs besides the weights (classification's, plus colours)."""
    meta = run_meta(args, data.channels, data.classes, (data.mean, data.std))
    return {**meta, "palette": [list(c) for c in data.palette], "mask_mode": data.mask_mode}


def write_config(path: Path, meta: dict[str, Any], model_file: str = "model.pt") -> None:
    """CLB-style ``config.yml``: the model file, how to rebuild it, and the training args."""
    config = {"model": model_file, **{k: meta[k] for k in CONFIG_KEYS}, "args": meta["args"]}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def build_model(meta: dict[str, Any]) -> Classifier:
    """Normalisation + UNet as ``meta`` describes (the classification wrapper is generic)."""
    net = build_network(
        meta["network"], meta["in_channels"], meta["num_classes"], meta["image_size"]
    )
    return Classifier(net, meta["mean"], meta["std"])


def load_segmenter(
    model: Path | None = None, config: Path | None = None, device: str = "cpu"
) -> tuple[Classifier, dict[str, Any]]:
    """Rebuild a trained model (eval mode) from ``model.pt`` or from a ``config.yml``
    (whose ``model`` path is relative to the config file)."""
    meta: dict[str, Any] = {}
    if config is not None:
        meta = yaml.safe_load(Path(config).read_text()) or {}
        if not isinstance(meta, dict) or "model" not in meta:
            raise ValueError(f"{config} is not a config.yml written by train.py")
        model = model or Path(config).parent / str(meta["model"])
    if model is None:
        raise ValueError("give a model.pt or a config.yml")
    blob = torch.load(model, map_location="cpu", weights_only=False)
    if not isinstance(blob, dict) or "model" not in blob or "network" not in blob:
        raise ValueError(f"{model} is not a model.pt written by train.py")
    meta = {
        **{k: blob[k] for k in CONFIG_KEYS if k in blob},
        **{k: meta[k] for k in CONFIG_KEYS if k in meta},
    }
    net = build_model(meta)
    net.load_state_dict(blob["model"])
    return net.to(device).eval(), meta
