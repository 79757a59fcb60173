"""UNet (Ronneberger et al., 2015) and a smaller variant, in plain PyTorch.

Convolutions are padded, so the output mask has the input's size; the input side
must be divisible by ``2**depth`` (checked by :func:`build_network`).
"""

from __future__ import annotations

import torch
from torch import nn

# name -> (base width, depth): unet is the paper's 64..1024 network (with BatchNorm);
# unet_small halves the depth's cost for CPUs and small images.
NETWORKS: dict[str, tuple[int, int]] = {"unet": (64, 4), "unet_small": (16, 3)}


class DoubleConv(nn.Sequential):
    """(3x3 conv, BatchNorm, ReLU) twice."""

    def __init__(self, inp: int, out: int) -> None:
        super().__init__(
            nn.Conv2d(inp, out, 3, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
            nn.Conv2d(out, out, 3, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """2x transposed-conv upsampling, concatenation with the skip, DoubleConv."""

    def __init__(self, inp: int, out: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(inp, out, 2, stride=2)
        self.conv = DoubleConv(out * 2, out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    """Encoder of ``depth`` 2x poolings (widths base, 2 base, ...), mirrored decoder."""

    def __init__(self, in_channels: int, num_classes: int, base: int = 64, depth: int = 4) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.stem = DoubleConv(in_channels, widths[0])
        self.down = nn.ModuleList(DoubleConv(widths[i], widths[i + 1]) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(Up(widths[i + 1], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(self.pool(skips[-1])))
        x = skips.pop()
        for block in self.up:
            x = block(x, skips.pop())
        return self.head(x)


def build_network(name: str, in_channels: int, num_classes: int, image_size: int) -> UNet:
    """``unet`` or ``unet_small`` for the data's channels and classes (background included)."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose from {', '.join(NETWORKS)}")
    base, depth = NETWORKS[name]
    if image_size % 2**depth:
        raise ValueError(f"{name} needs image_size divisible by {2**depth}, got {image_size}")
    return UNet(in_channels, num_classes, base, depth)
