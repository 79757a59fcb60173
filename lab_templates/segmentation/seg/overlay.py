"""Predicted-mask overlays: PNG panels (image | truth | prediction) and mask PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

Colour = tuple[int, int, int]
# Overlay colours of foreground classes when the dataset's own are unusable (binary
# masks: white on gray would not show; palette colours that are black).
FALLBACK = [(255, 48, 48), (48, 200, 48), (64, 96, 255), (255, 200, 0), (200, 64, 255)]


def overlay_colours(palette: list[Colour], mask_mode: str) -> list[Colour]:
    """Class colours for overlays: the palette's, with fallbacks for binary or black ones."""
    colours = [(0, 0, 0)]
    for i, colour in enumerate(palette[1:]):
        usable = mask_mode == "palette" and colour != (0, 0, 0)
        colours.append(colour if usable else FALLBACK[i % len(FALLBACK)])
    return colours


def blend(
    image: np.ndarray, labels: np.ndarray, colours: list[Colour], alpha: float = 0.5
) -> np.ndarray:
    """uint8 RGB [H, W, 3]: ``image`` ([C, H, W] uint8) tinted by the class colour of each
    foreground pixel of ``labels`` ([H, W])."""
    rgb = np.repeat(image, 3, 0) if image.shape[0] == 1 else image[:3]
    out = rgb.transpose(1, 2, 0).astype(np.float32)
    table = np.asarray(colours, dtype=np.float32)
    fg = labels > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * table[np.minimum(labels[fg], len(table) - 1)]
    return out.clip(0, 255).astype(np.uint8)


def panel(
    image: np.ndarray, truth: np.ndarray | None, pred: np.ndarray, colours: list[Colour]
) -> np.ndarray:
    """Side by side: the image, the truth overlay (when known), the prediction overlay."""
    tiles = [blend(image, np.zeros_like(pred), colours)]
    if truth is not None:
        tiles.append(blend(image, truth, colours))
    tiles.append(blend(image, pred, colours))
    gap = np.full((pred.shape[0], 2, 3), 255, np.uint8)
    joined = [tiles[0]]
    for tile in tiles[1:]:
        joined += [gap, tile]
    return np.concatenate(joined, axis=1)


def write_overlays(
    folder: Path,
    images: torch.Tensor,
    truths: torch.Tensor,
    preds: torch.Tensor,
    names: list[str],
    colours: list[Colour],
    min_height: int = 192,
) -> list[Path]:
    """One ``<name>.png`` panel per image in ``folder`` (upscaled to ``min_height`` px)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for image, truth, pred, name in zip(images, truths, preds, names, strict=False):
        tile = panel(image.cpu().numpy(), truth.cpu().numpy(), pred.cpu().numpy(), colours)
        scale = max(1, -(-min_height // tile.shape[0]))
        img = Image.fromarray(tile)
        if scale > 1:
            img = img.resize(
                (tile.shape[1] * scale, tile.shape[0] * scale), Image.Resampling.NEAREST
            )
        path = folder / f"{name}.png"
        img.save(path)
        paths.append(path)
    return paths


def panels_tensor(
    images: torch.Tensor, truths: torch.Tensor, preds: torch.Tensor, colours: list[Colour]
) -> torch.Tensor:
    """uint8 [N, 3, H, 3W + 4] panels for TensorBoard."""
    tiles = [
        panel(i.cpu().numpy(), t.cpu().numpy(), p.cpu().numpy(), colours)
        for i, t, p in zip(images, truths, preds, strict=True)
    ]
    return torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2)


def save_mask(path: Path, labels: np.ndarray, palette: list[Colour]) -> None:
    """A palette PNG whose pixel index is the class (readable back as a training mask)."""
    img = Image.fromarray(labels.astype(np.uint8))  # mode L; putpalette makes it P
    flat = [c for colour in palette for c in colour]
    img.putpalette(flat + [0] * (768 - len(flat)))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
