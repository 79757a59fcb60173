"""Networks in plain torch, with torchvision's parameter names.

ResNet, VGG and MobileNetV2 use the same module names as torchvision, so a
torchvision state dict (e.g. ImageNet weights uploaded as a dataset) loads with
``--weights``. Every network exposes ``segments()``: its forward pass as a list
of modules applied in order, which :class:`Classifier` checkpoints when
recomputing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

MIN_IMAGE_SIZE = {"lenet": 12, "vgg16": 32, "vgg16_bn": 32}


class LeNet(nn.Module):
    """LeNet-5 (ReLU, max-pool); the first conv pads so 28-32 px inputs keep their size."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = (image_size // 2 - 4) // 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def segments(self) -> list[nn.Module]:
        return [self.features[:3], self.features[3:], self.classifier]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self, inp: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self, inp: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet-18/50 as in torchvision."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: list[int],
        in_channels: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._layer(block, 64, layers[0], 1)
        self.layer2 = self._layer(block, 128, layers[1], 2)
        self.layer3 = self._layer(block, 256, layers[2], 2)
        self.layer4 = self._layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _layer(
        self, block: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers: list[nn.Module] = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def segments(self) -> list[nn.Module]:
        stem = nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool)
        head = nn.Sequential(self.avgpool, nn.Flatten(), self.fc)
        return [stem, self.layer1, self.layer2, self.layer3, self.layer4, head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for segment in self.segments():
            x = segment(x)
        return x


def _pool_matrix(size: int, out: int) -> torch.Tensor:
    """Rows average the input ranges adaptive_avg_pool uses for each output cell."""
    m = torch.zeros(out, size)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


class AdaptiveAvgPool(nn.AdaptiveAvgPool2d):
    """AdaptiveAvgPool2d that also exports to ONNX when the sizes do not divide.

    Under ONNX export it is written as two matrix products with the pooling
    matrices (the same numbers), so VGG exports at any image size.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.onnx.is_in_onnx_export():
            return super().forward(x)
        out = self.output_size if isinstance(self.output_size, tuple) else (self.output_size,) * 2
        rows = _pool_matrix(int(x.shape[-2]), int(out[0] or x.shape[-2])).to(x)
        cols = _pool_matrix(int(x.shape[-1]), int(out[1] or x.shape[-1])).to(x)
        return torch.matmul(torch.matmul(rows, x), cols.t())


VGG16_CFG: list[int | str] = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
]


class VGG(nn.Module):
    """VGG-16 (optionally with BatchNorm) as in torchvision: 7x7 pool, 4096-wide head."""

    def __init__(self, in_channels: int, num_classes: int, batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        self.stage_ends: list[int] = []
        channels = in_channels
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                self.stage_ends.append(len(layers))
                continue
            assert isinstance(v, int)
            layers.append(nn.Conv2d(channels, v, 3, padding=1))
            layers += [nn.BatchNorm2d(v)] if batch_norm else []
            layers.append(nn.ReLU(inplace=True))
            channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = AdaptiveAvgPool((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def segments(self) -> list[nn.Module]:
        starts = [0, *self.stage_ends[:-1]]
        stages: list[nn.Module] = [
            self.features[a:b] for a, b in zip(starts, self.stage_ends, strict=True)
        ]
        return [*stages, nn.Sequential(self.avgpool, nn.Flatten(), self.classifier)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class ConvBNReLU(nn.Sequential):
    """torchvision's Conv2dNormActivation with ReLU6: children 0 conv, 1 bn, 2 relu6."""

    def __init__(
        self, inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__(
            nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = inp * expand
        self.use_res_connect = stride == 1 and inp == out
        layers: list[nn.Module] = [ConvBNReLU(inp, hidden, 1)] if expand != 1 else []
        layers += [
            ConvBNReLU(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out, 1, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) as in torchvision."""

    SETTINGS = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNReLU(in_channels, 32, 3, 2)]
        self.stage_ends: list[int] = []
        channels = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                channels = c
            self.stage_ends.append(len(layers))
        layers.append(ConvBNReLU(channels, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def segments(self) -> list[nn.Module]:
        starts = [0, *self.stage_ends]
        ends = [*self.stage_ends, len(self.features)]
        stages: list[nn.Module] = [self.features[a:b] for a, b in zip(starts, ends, strict=True)]
        head = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), self.classifier)
        return [*stages, head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for segment in self.segments():
            x = segment(x)
        return x


def build_network(name: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """Instantiate ``name`` for the dataset's channels, classes and image size."""
    if image_size < MIN_IMAGE_SIZE.get(name, 1):
        raise ValueError(f"{name} needs image_size >= {MIN_IMAGE_SIZE[name]}, got {image_size}")
    if name == "lenet":
        return LeNet(in_channels, num_classes, image_size)
    if name == "resnet18":
        return ResNet(BasicBlock, [2, 2, 2, 2], in_channels, num_classes)
    if name == "resnet50":
        return ResNet(Bottleneck, [3, 4, 6, 3], in_channels, num_classes)
    if name in ("vgg16", "vgg16_bn"):
        return VGG(in_channels, num_classes, batch_norm=name == "vgg16_bn")
    if name == "mobilenet_v2":
        return MobileNetV2(in_channels, num_classes)
    raise ValueError(f"unknown network {name!r}")


@contextlib.contextmanager
def frozen_batchnorm_stats(module: nn.Module) -> Iterator[None]:
    """During recomputation, keep BatchNorm running stats from being updated twice."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [
        (m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone())
        for m in bns
    ]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(bns, saved, strict=True):
            m.momentum = momentum
            if tracked is not None and m.num_batches_tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def _recompute_contexts(
    module: nn.Module,
) -> tuple[contextlib.AbstractContextManager[None], contextlib.AbstractContextManager[None]]:
    return contextlib.nullcontext(), frozen_batchnorm_stats(module)


class Classifier(nn.Module):
    """Normalisation + network; takes float images in [0, 1] (as model.onnx does)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.recompute = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        if not (self.recompute and self.training and torch.is_grad_enabled()):
            return self.net(x)
        segments = self.net.segments()  # type: ignore[operator]
        for segment in segments[:-1]:
            x = checkpoint(
                segment, x, use_reentrant=False, context_fn=partial(_recompute_contexts, segment)
            )
        return segments[-1](x)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters)."""
    total = sum(p.numel() for p in model.parameters())
    return total, sum(p.numel() for p in model.parameters() if p.requires_grad)
