"""Joint augmentation keeps masks aligned with their images; Dice/IoU and losses."""

from __future__ import annotations

import pytest
import torch
from seg.augment import joint_augment
from seg.metrics import class_scores, confusion, dice_iou, segmentation_loss


def dihedral(t: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """The 8 symmetries of the square on the last two dims."""
    t = t.flip(-1) if flip else t
    return t.rot90(k, (-2, -1))


def known_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy 1x16x16 image with an asymmetric bright 'L' and its mask."""
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(1, 16, 16, generator=gen) * 0.4
    mask = torch.zeros(16, 16, dtype=torch.long)
    mask[2:12, 3:6] = 1
    mask[9:12, 6:13] = 1
    image[0][mask == 1] = 0.8 + torch.rand(int(mask.sum()), generator=gen) * 0.2
    return image, mask


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("flip", 4), ("rotate", 4), ("both", 8), ("none", 1)],
)
def test_joint_augmentation_keeps_each_mask_on_its_image(mode: str, expected: int) -> None:
    image, mask = known_pair()
    n = 256
    x, y = joint_augment(
        image.repeat(n, 1, 1, 1), mask.repeat(n, 1, 1), mode, torch.Generator().manual_seed(0)
    )
    seen = set()
    for xi, yi in zip(x, y, strict=True):
        assert torch.equal(yi == 1, xi[0] > 0.6)  # the mask still covers the shape's pixels
        match = [
            (k, f)
            for k in range(4)
            for f in (False, True)
            if torch.equal(dihedral(image, k, f), xi)
        ]
        assert match, "the image was not moved by an exact pixel permutation"
        k, f = match[0]
        assert torch.equal(dihedral(mask, k, f), yi)  # ...and the mask by the same one
        seen.add(tuple(dihedral(image, k, f).flatten().tolist()))
    assert len(seen) == expected


def test_augmentation_draws_from_the_generator_only() -> None:
    image, mask = known_pair()
    a = joint_augment(
        image.repeat(8, 1, 1, 1), mask.repeat(8, 1, 1), "both", torch.Generator().manual_seed(5)
    )
    b = joint_augment(
        image.repeat(8, 1, 1, 1), mask.repeat(8, 1, 1), "both", torch.Generator().manual_seed(5)
    )
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="unknown augmentation"):
        joint_augment(image[None], mask[None], "color", torch.Generator())


def test_dice_and_iou_from_the_pixel_confusion() -> None:
    truth = torch.tensor([[0, 1, 1, 1], [0, 0, 2, 2]])
    pred = torch.tensor([[0, 1, 1, 0], [0, 2, 2, 2]])
    matrix = confusion(pred, truth, 3)
    dice, iou = class_scores(matrix)
    assert dice[1] == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))  # TP 2, FP 0, FN 1
    assert iou[2] == pytest.approx(2 / 3)  # TP 2, FP 1, FN 0
    mean_dice, mean_iou = dice_iou(matrix)
    assert mean_dice == pytest.approx((0.8 + 0.8) / 2) and mean_iou == pytest.approx(
        (2 / 3 + 2 / 3) / 2
    )


def test_losses_fall_to_zero_for_a_confident_correct_prediction() -> None:
    truth = torch.tensor([[[0, 1], [1, 0]]])
    perfect = torch.nn.functional.one_hot(truth, 2).permute(0, 3, 1, 2).float() * 30
    for kind in ("ce", "dice", "ce_dice"):
        assert float(segmentation_loss(perfect, truth, kind)) < 1e-3
        assert float(segmentation_loss(-perfect, truth, kind)) > 0.5
