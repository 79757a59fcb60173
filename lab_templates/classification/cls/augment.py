"""Batch augmentations as tensor ops on the training device.

Random numbers come from a CPU ``torch.Generator`` seeded per epoch and rank, so
a resumed run draws exactly the same augmentations as an uninterrupted one.
"""

from __future__ import annotations

import torch

MODES = ("none", "color_distortion", "flip_random", "both")
_LUMA = (0.299, 0.587, 0.114)


def _uniform(
    n: int, low: float, high: float, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    values = torch.rand(n, generator=gen) * (high - low) + low
    return values.to(device, non_blocking=True).view(n, 1, 1, 1)


def flip_random(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 0.5."""
    mask = (torch.rand(x.shape[0], generator=gen) < 0.5).to(x.device, non_blocking=True)
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(3), x)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def color_distortion(x: torch.Tensor, gen: torch.Generator, strength: float = 0.4) -> torch.Tensor:
    """Random brightness, contrast and (for RGB) saturation per image, in [0, 1]."""
    n, dev = x.shape[0], x.device
    lo, hi = 1.0 - strength, 1.0 + strength
    x = x * _uniform(n, lo, hi, gen, dev)
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * _uniform(n, lo, hi, gen, dev) + mean
    if x.shape[1] == 3:
        gray = _gray(x)
        x = (x - gray) * _uniform(n, lo, hi, gen, dev) + gray
    return x.clamp_(0.0, 1.0)


def augment(x: torch.Tensor, mode: str, gen: torch.Generator) -> torch.Tensor:
    """Apply ``mode`` (one of MODES) to a float batch in [0, 1]."""
    if mode not in MODES:
        raise ValueError(f"unknown augmentation {mode!r}; choose from {', '.join(MODES)}")
    if mode in ("flip_random", "both"):
        x = flip_random(x, gen)
    if mode in ("color_distortion", "both"):
        x = color_distortion(x, gen)
    return x
