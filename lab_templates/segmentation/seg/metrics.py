"""Confusion matrices, Dice and IoU, and the training losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("ce", "dice", "ce_dice")


def confusion(pred: torch.Tensor, truth: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Pixel counts [true, predicted] (flattened to K*K) of label maps of equal shape."""
    index = truth.reshape(-1).long() * num_classes + pred.reshape(-1).long()
    return torch.bincount(index, minlength=num_classes * num_classes)


def class_scores(matrix: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-class Dice 2TP/(2TP+FP+FN) and IoU TP/(TP+FP+FN) from a [K, K] matrix.

    A class absent from both truth and prediction scores 1 (nothing to get wrong).
    """
    m = matrix.double().view(int(matrix.numel() ** 0.5), -1)
    tp = m.diag()
    fp, fn = m.sum(0) - tp, m.sum(1) - tp
    union = tp + fp + fn
    dice = torch.where(union > 0, 2 * tp / (2 * tp + fp + fn).clamp(min=1), 1.0)
    iou = torch.where(union > 0, tp / union.clamp(min=1), 1.0)
    return dice.tolist(), iou.tolist()


def dice_iou(matrix: torch.Tensor) -> tuple[float, float]:
    """Mean Dice and IoU over the foreground classes (all but class 0), over all pixels."""
    dice, iou = class_scores(matrix)
    return sum(dice[1:]) / len(dice[1:]), sum(iou[1:]) / len(iou[1:])


def soft_dice_loss(logits: torch.Tensor, truth: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice of the foreground classes' probabilities over the batch."""
    probs = logits.softmax(1)[:, 1:]
    onehot = F.one_hot(truth.long(), logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(probs)
    inter = (probs * onehot).sum((0, 2, 3))
    total = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


def segmentation_loss(logits: torch.Tensor, truth: torch.Tensor, kind: str) -> torch.Tensor:
    """``ce`` (mean pixel cross-entropy), ``dice`` or ``ce_dice`` (their sum)."""
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; choose from {', '.join(LOSSES)}")
    logits = logits.float()
    loss = logits.new_zeros(())
    if kind in ("ce", "ce_dice"):
        loss = loss + F.cross_entropy(logits, truth.long())
    if kind in ("dice", "ce_dice"):
        loss = loss + soft_dice_loss(logits, truth)
    return loss
