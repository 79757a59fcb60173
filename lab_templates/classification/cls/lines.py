"""The text of the platform's metric and progress lines (no torch: the TensorFlow
path of train.py prints them too)."""

from __future__ import annotations


def _fmt(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def metric_line(group: str, axis: str, at: int, **values: float) -> str:
    """``Train step=10 loss=0.818 acc=0.95``: the platform's metric format."""
    return " ".join([group, f"{axis}={at}", *(f"{k}={_fmt(v)}" for k, v in values.items())])


def progress_line(epoch: int, num_epoch: int, step: int, epoch_steps: int) -> str:
    """``Progress epoch=3/10 step=120/773`` for the platform's ETA: the 3rd of 10 epochs
    is running and 120 of its 773 steps are done (``step`` counts within the epoch)."""
    return f"Progress epoch={epoch}/{num_epoch} step={step}/{epoch_steps}"


def epoch_line(
    epoch: int, num_epoch: int, metrics: dict[str, float], seconds: float, images: int
) -> str:
    """``Epoch 3/10: train loss 0.4120 acc 0.8810, 2.1 s, 3050 images/s``."""
    train = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    return (
        f"Epoch {epoch}/{num_epoch}: train {train}, {seconds:.1f} s, "
        f"{images / max(seconds, 1e-9):.0f} images/s"
    )
