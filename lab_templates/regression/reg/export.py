"""Rebuild the Regressor saved in model.pt (for predict.py and the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from cls.models import build_network

from .engine import Regressor


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[Regressor, dict[str, Any]]:
    """The model (eval mode) and its metadata from a model.pt written by train.py."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(blob, dict) or blob.get("task") != "regression" or "model" not in blob:
        raise ValueError(f"{path} is not a model.pt written by the regression train.py")
    net = build_network(
        blob["network"], blob["in_channels"], len(blob["targets"]), blob["image_size"]
    )
    model = Regressor(net, blob["mean"], blob["std"], blob["target_mean"], blob["target_std"])
    model.load_state_dict(blob["model"])
    return model.to(device).eval(), blob
