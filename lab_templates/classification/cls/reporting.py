"""Metric and progress lines, TensorBoard, model summary, confusion matrix."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from .lines import metric_line, progress_line


def _tensorboard_without_tensorflow() -> None:
    """Make TensorBoard's event writer use its own file layer, not TensorFlow's.

    It imports TensorFlow whenever TensorFlow is installed (``tensorboard.compat.tf``)
    unless a module ``tensorboard.compat.notf`` exists; a PyTorch job then paid about
    2 s and several hundred MB for a library it never uses, and under torchrun a rank
    holding TensorFlow's threads now and then aborted another at exit (SIGABRT).
    """
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


class Reporter:
    """Prints metric/progress lines (rank 0 only) and mirrors them to TensorBoard."""

    def __init__(self, log_dir: Path | None, enabled: bool = True) -> None:
        self.enabled = enabled
        self.writer: Any = None
        if enabled and log_dir is not None:
            _tensorboard_without_tensorflow()
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(log_dir))

    def log(self, text: str) -> None:
        if self.enabled:
            print(text, flush=True)

    def metrics(self, group: str, axis: str, at: int, **values: float) -> None:
        self.log(metric_line(group, axis, at, **values))
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{group}/{key}", value, at)

    def progress(self, epoch: int, num_epoch: int, step: int, epoch_steps: int) -> None:
        """``Progress epoch=3/10 step=120/773`` for the platform's ETA: the 3rd of 10 epochs
        is running and 120 of its 773 steps are done (``step`` counts within the epoch)."""
        self.log(progress_line(epoch, num_epoch, step, epoch_steps))

    def images(self, tag: str, images: torch.Tensor, step: int = 0) -> None:
        """uint8 or float [N,C,H,W] images."""
        if self.writer is not None and len(images):
            data = images.float() / 255.0 if images.dtype == torch.uint8 else images
            self.writer.add_images(tag, data.cpu(), step)

    def image(self, tag: str, path: Path, step: int) -> None:
        if self.writer is not None:
            arr = np.asarray(Image.open(path).convert("RGB"))
            self.writer.add_image(tag, arr, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        sys.stdout.flush()


def model_summary(model: nn.Module, example: torch.Tensor, depth: int = 2) -> str:
    """A layer table (name, type, output shape, parameters) and parameter counts."""
    rows: list[tuple[str, str, str, int]] = []
    hooks = []
    for name, module in model.named_modules():
        if name and name.count(".") < depth:

            def hook(mod: nn.Module, _inp: Any, out: Any, name: str = name) -> None:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else "-"
                params = sum(p.numel() for p in mod.parameters())
                rows.append((name, type(mod).__name__, str(shape), params))

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    width = max([len(r[0]) for r in rows] + [5])
    lines = [
        "==== Model summary ====",
        f"{'layer':<{width}}  {'type':<18} {'output shape':<22} {'params':>12}",
    ]
    lines += [f"{n:<{width}}  {t:<18} {s:<22} {p:>12,}" for n, t, s, p in rows]
    lines += [
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Input: {tuple(example.shape)}",
        "==== End of summary ====",
    ]
    return "\n".join(lines)


def per_class_accuracy(matrix: torch.Tensor) -> list[float]:
    totals = matrix.sum(1).clamp(min=1)
    return (matrix.diag().double() / totals.double()).tolist()


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def draw_confusion(matrix: torch.Tensor, classes: list[str], path: Path, cell: int = 40) -> None:
    """Row-normalised confusion matrix as a PNG (rows true, columns predicted)."""
    k = len(classes)
    cell = max(12, min(cell, 1600 // max(1, k)))
    margin = 16 + 7 * min(12, max(len(c) for c in classes))
    size = margin + k * cell + 8
    img = Image.new("RGB", (size, size + 20), "white")
    draw = ImageDraw.Draw(img)
    font = _font(max(8, min(14, cell // 3)))
    rows = matrix.double() / matrix.sum(1, keepdim=True).clamp(min=1).double()
    for i in range(k):
        for j in range(k):
            shade = int(255 * (1 - float(rows[i, j])))
            x0, y0 = margin + j * cell, margin + i * cell
            draw.rectangle(
                [x0, y0, x0 + cell - 1, y0 + cell - 1],
                fill=(shade, shade, 255),
                outline=(200, 200, 200),
            )
            if cell >= 24:
                colour = "white" if rows[i, j] > 0.5 else "black"
                draw.text((x0 + 3, y0 + cell // 3), str(int(matrix[i, j])), fill=colour, font=font)
        draw.text((4, margin + i * cell + cell // 3), classes[i][:12], fill="black", font=font)
        draw.text((margin + i * cell + 3, 4), classes[i][:4], fill="black", font=font)
    draw.text((margin, size + 2), "rows: true class, columns: predicted", fill="black", font=font)
    img.save(path)


def write_test_report(
    out: Path, matrix: torch.Tensor, classes: list[str], loss: float, acc: float
) -> dict[str, Any]:
    """confusion_matrix.json + confusion_matrix.png; returns the JSON content."""
    report = {
        "accuracy": acc,
        "loss": loss,
        "classes": classes,
        "per_class_accuracy": dict(zip(classes, per_class_accuracy(matrix), strict=True)),
        "confusion_matrix": matrix.tolist(),
        "confusion_matrix_axes": "rows: true class, columns: predicted class",
    }
    (out / "confusion_matrix.json").write_text(json.dumps(report, indent=2))
    draw_confusion(matrix, classes, out / "confusion_matrix.png")
    return report
