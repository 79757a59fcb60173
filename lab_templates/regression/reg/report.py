"""The test report: predicted-vs-true scatter PNG, metrics JSON, predictions CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import torch
from cls.reporting import _font
from PIL import Image, ImageDraw

from .engine import Scores

PANEL, MARGIN = 260, 34


def _panel(draw: ImageDraw.ImageDraw, left: int, name: str, p: torch.Tensor, y: torch.Tensor,
           r2: float) -> None:  # fmt: skip
    """One target: axes, the y = x diagonal, one dot per image, the title with R²."""
    lo = float(torch.minimum(p.min(), y.min()))
    hi = float(torch.maximum(p.max(), y.max()))
    span = max(hi - lo, 1e-9)
    x0, y0, side = left + MARGIN, 24, PANEL - MARGIN - 10
    font = _font(11)

    def at(true: float, pred: float) -> tuple[float, float]:
        return x0 + (true - lo) / span * side, y0 + side - (pred - lo) / span * side

    draw.rectangle([x0, y0, x0 + side, y0 + side], outline="black")
    draw.line([at(lo, lo), at(hi, hi)], fill=(180, 180, 180), width=1)
    for true, pred in zip(y.tolist(), p.tolist(), strict=True):
        cx, cy = at(true, pred)
        draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=(30, 90, 200))
    draw.text((x0, 4), f"{name}  R2={r2:.3f}", fill="black", font=font)
    draw.text((x0, y0 + side + 4), f"true ({lo:.3g} .. {hi:.3g} on both axes)", fill="black",
              font=font)  # fmt: skip
    draw.text((left + 2, y0 + side // 2), "pred", fill="black", font=font)


def draw_scatter(scores: Scores, path: Path, max_points: int = 2000) -> None:
    """Predicted (vertical) vs true (horizontal) score, one panel per target."""
    k = len(scores.targets)
    img = Image.new("RGB", (PANEL * k, PANEL + 20), "white")
    draw = ImageDraw.Draw(img)
    step = max(1, len(scores.truth) // max_points)
    for j, name in enumerate(scores.targets):
        p, y = scores.predictions[::step, j], scores.truth[::step, j]
        _panel(draw, j * PANEL, name, p, y, scores.r2[j])
    img.save(path)


def write_test_report(out: Path, scores: Scores, paths: list[Path] | None = None) -> dict[str, Any]:
    """scatter.png, test_metrics.json and, given the image paths, test_predictions.csv."""
    report = {
        "targets": scores.targets,
        "loss": scores.loss,
        **{
            m: dict(zip(scores.targets, getattr(scores, m), strict=True))
            for m in ("mse", "mae", "r2")
        },
        "mean": scores.line(),
    }
    (out / "test_metrics.json").write_text(json.dumps(report, indent=2))
    draw_scatter(scores, out / "scatter.png")
    if paths is not None and len(paths) == len(scores.truth):
        with (out / "test_predictions.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["image", *scores.targets, *(f"pred_{t}" for t in scores.targets)])
            for path, y, p in zip(paths, scores.truth.tolist(), scores.predictions.tolist(),
                                  strict=True):  # fmt: skip
                writer.writerow([str(path), *(f"{v:.6g}" for v in y + p)])
    return report
