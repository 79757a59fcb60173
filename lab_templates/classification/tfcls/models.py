"""Keras versions of the template's networks, split into stages as cls.models is.

Each network is a list of stages (Keras layers applied in order); :class:`KerasClassifier`
runs them and, with ``recompute`` on, wraps every stage but the head in
``tf.recompute_grad`` (activations of a stage are recomputed in the backward pass
instead of kept). The classifier takes what the PyTorch model takes: float images
``[N, C, S, S]`` in [0, 1], normalised inside; so model.onnx has the same input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf
from cls.models import MIN_IMAGE_SIZE, VGG16_CFG
from keras import layers

NETWORKS = ("lenet", "resnet18", "resnet50", "vgg16", "vgg16_bn")
_CONV_INIT = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")


def _bn() -> layers.Layer:
    """BatchNorm with PyTorch's momentum (0.1 there = 0.9 here) and epsilon."""
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5)


def _conv(filters: int, kernel: int, stride: int = 1, bias: bool = False) -> layers.Layer:
    return layers.Conv2D(
        filters, kernel, stride, padding="same", use_bias=bias, kernel_initializer=_CONV_INIT
    )


def lenet(num_classes: int) -> list[layers.Layer]:
    """LeNet-5 (ReLU, max-pool), as cls.models.LeNet: first conv pads, the second does not."""
    return [
        keras.Sequential(
            [layers.Conv2D(6, 5, padding="same", activation="relu"), layers.MaxPooling2D(2)]
        ),
        keras.Sequential([layers.Conv2D(16, 5, activation="relu"), layers.MaxPooling2D(2)]),
        keras.Sequential(
            [
                layers.Flatten(),
                layers.Dense(120, activation="relu"),
                layers.Dense(84, activation="relu"),
                layers.Dense(num_classes),
            ]
        ),
    ]


class ResBlock(layers.Layer):
    """A ResNet basic block (two 3x3 convs) or bottleneck (1x1, 3x3, 1x1 x4)."""

    def __init__(self, planes: int, stride: int, bottleneck: bool, project: bool, **kw: Any):
        super().__init__(**kw)
        out = planes * (4 if bottleneck else 1)
        if bottleneck:
            convs = [_conv(planes, 1), _conv(planes, 3, stride), _conv(out, 1)]
        else:
            convs = [_conv(planes, 3, stride), _conv(out, 3)]
        self.convs, self.bns = convs, [_bn() for _ in convs]
        self.shortcut = keras.Sequential([_conv(out, 1, stride), _bn()]) if project else None

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        out = x
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            out = bn(conv(out), training=training)
            out = tf.nn.relu(out) if i < len(self.convs) - 1 else out
        identity = x if self.shortcut is None else self.shortcut(x, training=training)
        return tf.nn.relu(out + identity)


def resnet(depths: Sequence[int], bottleneck: bool, num_classes: int) -> list[layers.Layer]:
    """ResNet-18 (basic blocks) / ResNet-50 (bottlenecks): stem, four stages, head."""
    stages: list[layers.Layer] = [
        keras.Sequential([_conv(64, 7, 2), _bn(), layers.ReLU(), layers.MaxPooling2D(3, 2, "same")])
    ]
    inplanes = 64
    for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
        stride = 1 if i == 0 else 2
        out = planes * (4 if bottleneck else 1)
        blocks = [ResBlock(planes, stride, bottleneck, stride != 1 or inplanes != out)]
        blocks += [ResBlock(planes, 1, bottleneck, False) for _ in range(1, depth)]
        stages.append(keras.Sequential(blocks))
        inplanes = out
    stages.append(keras.Sequential([layers.GlobalAveragePooling2D(), layers.Dense(num_classes)]))
    return stages


def _pool7(side: int) -> layers.Layer:
    """PyTorch's AdaptiveAvgPool2d((7, 7)) for a ``side`` x ``side`` feature map (exact
    when one side divides the other, bilinear otherwise); all export to ONNX."""
    if side == 7:
        return layers.Identity()
    if side < 7 and 7 % side == 0:
        return layers.UpSampling2D(7 // side)
    if side > 7 and side % 7 == 0:
        return layers.AveragePooling2D(side // 7)
    return layers.Resizing(7, 7)


def vgg16(num_classes: int, batch_norm: bool, image_size: int) -> list[layers.Layer]:
    """VGG-16 (optionally with BatchNorm): five conv stages, 7x7 pool, 4096-wide head."""
    stages: list[layers.Layer] = []
    current: list[layers.Layer] = []
    for v in VGG16_CFG:
        if v == "M":
            stages.append(keras.Sequential([*current, layers.MaxPooling2D(2)]))
            current = []
            continue
        assert isinstance(v, int)
        current.append(_conv(v, 3, bias=not batch_norm))
        current += [_bn()] if batch_norm else []
        current.append(layers.ReLU())
    dense = {"kernel_initializer": keras.initializers.RandomNormal(0.0, 0.01)}
    head = keras.Sequential(
        [
            _pool7(image_size // 32),
            layers.Flatten(),
            layers.Dense(4096, activation="relu", **dense),
            layers.Dropout(0.5),
            layers.Dense(4096, activation="relu", **dense),
            layers.Dropout(0.5),
            layers.Dense(num_classes, **dense),
        ]
    )
    return [*stages, head]


def build_stages(name: str, num_classes: int, image_size: int) -> list[layers.Layer]:
    """The stages of ``name``; a network without a Keras version is a clear ValueError."""
    if name not in NETWORKS:
        raise ValueError(
            f"network {name!r} is not available with --framework tensorflow "
            f"(available: {', '.join(NETWORKS)}); use --framework pytorch for it"
        )
    if image_size < MIN_IMAGE_SIZE.get(name, 1):
        raise ValueError(f"{name} needs image_size >= {MIN_IMAGE_SIZE[name]}, got {image_size}")
    if name == "lenet":
        return lenet(num_classes)
    if name.startswith("resnet"):
        return resnet(
            [2, 2, 2, 2] if name == "resnet18" else [3, 4, 6, 3], name == "resnet50", num_classes
        )
    return vgg16(num_classes, name == "vgg16_bn", image_size)


class KerasClassifier(keras.Model):
    """Normalisation + stages; float ``[N, C, S, S]`` in [0, 1] in, float32 logits out."""

    def __init__(
        self, stages: list[layers.Layer], mean: Sequence[float], std: Sequence[float], **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.stages = stages
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
        self.recompute = False

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        mean, std = tf.constant(self.mean), tf.constant(self.std)  # graph constants (ONNX)
        x = (tf.transpose(tf.cast(x, tf.float32), [0, 2, 3, 1]) - mean) / std
        x = tf.cast(x, self.compute_dtype)
        for stage in self.stages[:-1]:
            if self.recompute and training:
                x = tf.recompute_grad(lambda t, s=stage: s(t, training=True))(x)
            else:
                x = stage(x, training=training)
        return tf.cast(self.stages[-1](x, training=training), tf.float32)


def build_classifier(
    name: str,
    channels: int,
    num_classes: int,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> KerasClassifier:
    """A built (weights created) classifier for ``channels`` x ``image_size``² images."""
    model = KerasClassifier(build_stages(name, num_classes, image_size), mean, std, name=name)
    model(tf.zeros([1, channels, image_size, image_size]), training=False)
    return model
