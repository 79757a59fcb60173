"""Checkpoints (exact resume), exported weights and initial-weight loading."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def rng_states() -> dict[str, Any]:
    """Every random generator a training run touches."""
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epoch: int,
    global_step: int,
    best_acc: float,
    meta: dict[str, Any],
) -> None:
    """``epoch`` is the number of completed epochs."""
    atomic_save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "global_step": global_step,
            "best_acc": best_acc,
            "rng": rng_states(),
            **meta,
        },
        path,
    )


def load_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> dict[str, Any]:
    """Restore model/optimizer/scheduler/RNG; returns the checkpoint dict."""
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume at {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    set_rng_states(ckpt["rng"])
    return ckpt


def _state_dict_of(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Accept a state dict, {'model': ...}, {'state_dict': ...} or a whole module."""
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} holds no state dict of tensors")
    out = {}
    for key, value in obj.items():
        for prefix in ("module.", "_orig_mod.", "net."):
            key = key.removeprefix(prefix)
        out[key] = value
    return out


def _adapt_first_conv(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor | None:
    """RGB conv weights for a grayscale input (sum over colours), or the reverse."""
    if src.ndim != 4 or src.shape[0] != dst.shape[0] or src.shape[2:] != dst.shape[2:]:
        return None
    if src.shape[1] == 3 and dst.shape[1] == 1:
        return src.sum(1, keepdim=True)
    if src.shape[1] == 1 and dst.shape[1] == 3:
        return src.repeat(1, 3, 1, 1) / 3
    return None


def load_initial_weights(net: nn.Module, path: Path, log: Any = print) -> list[str]:
    """Load matching tensors from ``path`` into ``net``; returns re-initialised names.

    Tensors whose shape differs (a head for another class count) keep their fresh
    initialisation, and a log line says so; a first conv for 3 vs 1 channels is
    adapted.
    """
    weights = _state_dict_of(torch.load(path, map_location="cpu", weights_only=False), path)
    own = net.state_dict()
    loaded, reinit = {}, []
    for name, tensor in own.items():
        src = weights.get(name)
        if src is None:
            continue
        if src.shape == tensor.shape:
            loaded[name] = src
        elif (adapted := _adapt_first_conv(src, tensor)) is not None:
            loaded[name] = adapted
            log(f"Weights: {name} adapted from {src.shape[1]} to {tensor.shape[1]} channels")
        else:
            reinit.append(name)
            log(
                f"Weights: re-initialised {name}: shape {tuple(src.shape)} in {path.name} "
                f"does not fit {tuple(tensor.shape)} (head for another class count?)"
            )
    if not loaded:
        raise ValueError(f"{path}: no tensor matches the network's parameter names")
    missing = [n for n in own if n not in weights]
    net.load_state_dict(loaded, strict=False)
    log(
        f"Weights: loaded {len(loaded)}/{len(own)} tensors from {path}"
        + (f"; {len(missing)} not in the file (kept initialised)" if missing else "")
    )
    return reinit + missing
