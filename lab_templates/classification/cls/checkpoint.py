"""Checkpoints (exact resume), exported weights and initial-weight loading."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cls.weights_path import locate


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


PYTORCH_NAMES = ("model.pt", "best.pt", "checkpoint.pt")  # preferred in a weights folder


def resolve_weights(value: str) -> Path:
    """The file ``--weights`` names: a path, or registered weights mounted by the platform
    at ``$MLSTEAM_WEIGHTS_DIR/<name>`` (a folder: its model.pt, else its one .pt/.pth)."""
    path = locate(value)
    if not path.is_dir():
        return path
    for name in PYTORCH_NAMES:
        if (path / name).is_file():
            return path / name
    found = sorted(p for p in path.iterdir() if p.suffix in (".pt", ".pth") and p.is_file())
    if len(found) != 1:
        raise ValueError(
            f"--weights {value!r}: {path} holds no single PyTorch weights file (.pt/.pth); "
            "register a job's model.pt (or its model.onnx with model.pt beside it)"
        )
    return found[0]


def head_names(net: nn.Module) -> set[str]:
    """The parameters of the network's last linear layer: its classification head."""
    linears = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        return set()
    prefix = f"{linears[-1]}." if linears[-1] else ""
    return {f"{prefix}{p}" for p, _ in net.get_submodule(linears[-1]).named_parameters()}


def load_initial_weights(net: nn.Module, path: Path, log: Any = print) -> list[str]:
    """Load matching tensors from ``path`` into ``net``; returns re-initialised names.

    A head whose shape differs (another class count) keeps its fresh initialisation, and a
    log line says so; a first conv for 3 vs 1 channels is adapted. Any other tensor whose
    shape differs (another network, image size or width) is a ValueError naming them.
    """
    weights = _state_dict_of(torch.load(path, map_location="cpu", weights_only=False), path)
    own = net.state_dict()
    head = head_names(net)
    loaded, reinit, unfit = {}, [], []
    for name, tensor in own.items():
        src = weights.get(name)
        if src is None:
            continue
        if src.shape == tensor.shape:
            loaded[name] = src
        elif (adapted := _adapt_first_conv(src, tensor)) is not None:
            loaded[name] = adapted
            log(f"Weights: {name} adapted from {src.shape[1]} to {tensor.shape[1]} channels")
        elif name not in head:
            unfit.append(f"{name} {tuple(src.shape)} in the file, {tuple(tensor.shape)} here")
        else:
            reinit.append(name)
            log(
                f"Weights: re-initialised {name}: shape {tuple(src.shape)} in {path.name} "
                f"does not fit {tuple(tensor.shape)} (head for another class count?)"
            )
    if unfit:
        more = f" and {len(unfit) - 3} more" if len(unfit) > 3 else ""
        raise ValueError(
            f"{path}: the weights do not fit this network (another network or image size?): "
            + "; ".join(unfit[:3])
            + more
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
