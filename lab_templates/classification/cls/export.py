"""model.pt (weights + what is needed to rebuild) and model.onnx."""

from __future__ import annotations

import argparse
import copy
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import atomic_save
from .config import to_dict
from .models import Classifier, build_network


def model_meta(
    *,
    network: str,
    in_channels: int,
    classes: list[str],
    image_size: int,
    mean: list[float],
    std: list[float],
    args: dict[str, Any],
) -> dict[str, Any]:
    """Everything predict.py needs besides the weights."""
    return {
        "network": network,
        "in_channels": in_channels,
        "class_names": classes,
        "num_classes": len(classes),
        "image_size": image_size,
        "mean": mean,
        "std": std,
        "args": args,
    }


def run_meta(
    args: argparse.Namespace,
    channels: int,
    classes: list[str],
    stats: tuple[list[float], list[float]],
) -> dict[str, Any]:
    """:func:`model_meta` of a run: the flags' network and image size, the data's input
    channels, classes and normalisation ``stats`` (mean, std), and the flags themselves."""
    return model_meta(
        network=args.network,
        in_channels=channels,
        classes=classes,
        image_size=args.image_size,
        mean=stats[0],
        std=stats[1],
        args=to_dict(args),
    )


def save_model(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Weights (CPU tensors) plus ``meta`` in one file."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_save({"model": state, **meta}, path)


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """Rebuild the Classifier saved by :func:`save_model` (eval mode)."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(blob, dict) or "network" not in blob or "model" not in blob:
        raise ValueError(f"{path} is not a model.pt written by train.py")
    net = build_network(
        blob["network"], blob["in_channels"], blob["num_classes"], blob["image_size"]
    )
    model = Classifier(net, blob["mean"], blob["std"])
    model.load_state_dict(blob["model"])
    return model.to(device).eval(), blob


def export_onnx(
    model: nn.Module, path: Path, in_channels: int, image_size: int, opset: int = 17
) -> Path:
    """Export float input [N, C, S, S] in [0, 1] -> logits; validated by onnx.checker."""
    import onnx

    clone = copy.deepcopy(model).cpu().float().eval()
    if isinstance(clone, Classifier):
        clone.recompute = False
    example = torch.rand(1, in_channels, image_size, image_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            clone,
            (example,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    onnx.checker.check_model(onnx.load(str(path)))
    return path
