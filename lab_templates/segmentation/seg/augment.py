"""Joint augmentation: the same random flip / rotation applied to an image and its mask.

Only exact pixel permutations are used (mirrors and 90-degree rotations), so a mask
stays aligned with its image pixel for pixel and no label is ever interpolated.
Random numbers come from a CPU ``torch.Generator`` (seeded per epoch and rank by the
trainer), so a resumed run draws the same augmentations as an uninterrupted one.
"""

from __future__ import annotations

import torch

MODES = ("none", "flip", "rotate", "both")


def _coin(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=gen) < 0.5).to(device, non_blocking=True)


def _where(pick: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(pick.view(-1, *[1] * (a.ndim - 1)), a, b)


def joint_flip(
    x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror each pair left-right, and independently top-bottom, with probability 0.5."""
    for x_dim in (3, 2):  # image [B,C,H,W] width, height; mask [B,H,W] is one dim less
        pick = _coin(x.shape[0], gen, x.device)
        x, y = _where(pick, x.flip(x_dim), x), _where(pick, y.flip(x_dim - 1), y)
    return x, y


def joint_rotate(
    x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate each square pair by a random multiple of 90 degrees."""
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"90-degree rotations need square images, got {tuple(x.shape[-2:])}")
    turns = torch.randint(0, 4, (x.shape[0],), generator=gen).to(x.device, non_blocking=True)
    out_x, out_y = x, y
    for k in (1, 2, 3):
        pick = turns == k
        out_x = _where(pick, x.rot90(k, (2, 3)), out_x)
        out_y = _where(pick, y.rot90(k, (1, 2)), out_y)
    return out_x, out_y


def joint_augment(
    x: torch.Tensor, y: torch.Tensor, mode: str, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply ``mode`` (one of MODES) to images [B,C,H,W] and masks [B,H,W] alike."""
    if mode not in MODES:
        raise ValueError(f"unknown augmentation {mode!r}; choose from {', '.join(MODES)}")
    if mode in ("flip", "both"):
        x, y = joint_flip(x, y, gen)
    if mode in ("rotate", "both"):
        x, y = joint_rotate(x, y, gen)
    return x, y
