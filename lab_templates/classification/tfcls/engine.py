"""Optimizers, schedules, augmentation, the training step and evaluation in TensorFlow.

They follow cls.engine: the same optimizers (weight decay on kernels only: L2 in the
loss as torch's coupled decay, decoupled for adamw), the same per-epoch schedules,
the same augmentations, ``small_chunk`` as gradient accumulation over chunks whose
summed losses are divided by the batch size (the full-batch gradient). Random
augmentation draws are stateless, seeded by (seed, epoch, step): a resumed run draws
what an uninterrupted one does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .models import KerasClassifier

_LUMA = (0.299, 0.587, 0.114)
Batch = tuple[np.ndarray, np.ndarray]


def make_optimizer(name: str, lr: float, weight_decay: float) -> keras.optimizers.Optimizer:
    """sgd, sgd_momentum (0.9), adam or adamw (decoupled decay, not on biases and norms)."""
    if name == "sgd":
        return keras.optimizers.SGD(lr)
    if name == "sgd_momentum":
        return keras.optimizers.SGD(lr, momentum=0.9)
    if name == "adam":
        return keras.optimizers.Adam(lr, epsilon=1e-8)
    if name == "adamw":
        opt = keras.optimizers.AdamW(lr, weight_decay=weight_decay, epsilon=1e-8)
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        return opt
    raise ValueError(f"unknown optimizer {name!r}")


def lr_at(schedule: str, lr: float, epoch: int, num_epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based), as cls.engine.make_scheduler's."""
    if schedule == "none":
        return lr
    if schedule == "step":
        return lr * 0.1 ** (epoch // max(1, math.ceil(num_epoch / 3)))
    if schedule == "cosine":
        return lr * (1 + math.cos(math.pi * epoch / max(1, num_epoch))) / 2
    raise ValueError(f"unknown lr_schedule {schedule!r}")


def _gray(x: tf.Tensor) -> tf.Tensor:
    if x.shape[1] == 1:
        return x
    return tf.reduce_sum(x * tf.reshape(tf.constant(_LUMA, x.dtype), [1, 3, 1, 1]), 1, True)


def augment(x: tf.Tensor, mode: str, seed: tf.Tensor, strength: float = 0.4) -> tf.Tensor:
    """cls.augment's modes on float ``[N, C, H, W]`` in [0, 1], stateless random draws."""
    n = tf.shape(x)[0]

    def draw(i: int, low: float = 1 - strength, high: float = 1 + strength) -> tf.Tensor:
        values = tf.random.stateless_uniform([n], seed + [0, i], low, high)
        return tf.reshape(values, [-1, 1, 1, 1])

    if mode in ("flip_random", "both"):
        x = tf.where(draw(0, 0.0, 1.0) < 0.5, tf.reverse(x, [3]), x)
    if mode in ("color_distortion", "both"):
        x = x * draw(1)
        mean = tf.reduce_mean(_gray(x), [1, 2, 3], keepdims=True)
        x = (x - mean) * draw(2) + mean
        if x.shape[1] == 3:
            gray = _gray(x)
            x = (x - gray) * draw(3) + gray
        x = tf.clip_by_value(x, 0.0, 1.0)
    return x


@dataclass
class Window:
    """Sums over a run of steps: loss, correct, images, and when it started."""

    loss: float = 0.0
    correct: float = 0.0
    count: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, loss: float, correct: float, count: int) -> None:
        self.loss, self.correct, self.count = (
            self.loss + loss,
            self.correct + correct,
            self.count + count,
        )

    def read(self) -> tuple[float, float]:
        n = max(1, self.count)
        return self.loss / n, self.correct / n


class Trainer:
    """Owns the model and optimizer; compiled (tf.function) train and eval steps."""

    def __init__(
        self,
        model: KerasClassifier,
        optimizer: keras.optimizers.Optimizer,
        *,
        small_chunk: int = 1,
        aug: str = "none",
        seed: int = 0,
        weight_decay: float = 0.0,
        jit: bool = False,
    ) -> None:
        self.model, self.optimizer = model, optimizer
        self.small_chunk, self.aug, self.seed = small_chunk, aug, seed
        decay = weight_decay if not isinstance(optimizer, keras.optimizers.AdamW) else 0.0
        self.decayed = [v for v in model.trainable_variables if len(v.shape) > 1] if decay else []
        self.decay = decay
        self.step_fn = tf.function(self._step, jit_compile=jit)
        self.eval_fn = tf.function(self._eval, jit_compile=jit)

    def _chunk_grads(
        self, x: tf.Tensor, y: tf.Tensor, n: int
    ) -> tuple[list[Any], tf.Tensor, tf.Tensor]:
        """Gradients of (summed chunk loss / n + its share of the L2 term)."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.model(x, training=True)
            loss = tf.reduce_sum(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            )
            total = loss / n
            if self.decayed:
                l2 = tf.add_n([tf.reduce_sum(tf.square(v)) for v in self.decayed])
                total += 0.5 * self.decay * l2 * (int(x.shape[0]) / n)
        correct = tf.reduce_sum(tf.cast(tf.argmax(logits, 1, tf.int32) == y, tf.float32))
        return tape.gradient(total, variables), loss, correct

    def _step(
        self, images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """One optimizer step on a uint8 batch; returns (summed loss, correct)."""
        x = tf.cast(images, tf.float32) / 255.0
        if self.aug != "none":
            x = augment(x, self.aug, seed)
        n = int(images.shape[0])  # static: one trace per batch size
        bounds = sorted({n * i // self.small_chunk for i in range(self.small_chunk + 1)})
        grads: list[Any] = []
        loss_sum, correct = tf.zeros([]), tf.zeros([])
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
            g, loss, right = self._chunk_grads(x[lo:hi], labels[lo:hi], n)
            grads = g if not grads else [a + b for a, b in zip(grads, g, strict=True)]
            loss_sum, correct = loss_sum + loss, correct + right
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables, strict=True))
        return loss_sum, correct

    def _eval(self, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        logits = self.model(tf.cast(images, tf.float32) / 255.0, training=False)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return loss, tf.argmax(logits, 1, tf.int32)

    def train_one_epoch(
        self,
        loader: Iterable[Batch],
        epoch: int,
        *,
        log_every: int = 10,
        max_steps: int = 0,
        start_step: int = 0,
        on_log: Callable[[int, float, float], None] | None = None,
        should_stop: Callable[[int], bool] | None = None,
    ) -> tuple[int, float, float, int]:
        """As cls.engine.Trainer.train_one_epoch: (steps, mean loss, accuracy, images);
        ``should_stop(steps)`` True raises cls.stopping.StopRequested at that step."""
        from cls.stopping import StopRequested

        window, total, steps = Window(), Window(), 0
        base = self.seed * 1_000_003 + epoch * 1009
        for images, labels in loader:
            seed = tf.constant([base, steps], tf.int64)
            loss, correct = self.step_fn(images, labels.astype(np.int32), seed)
            steps += 1
            values = (float(loss), float(correct), len(labels))
            window.add(*values)
            total.add(*values)
            if should_stop is not None and should_stop(steps):
                raise StopRequested(f"epoch {epoch + 1}, step {steps}")
            if on_log is not None and steps % log_every == 0:
                on_log(start_step + steps, *window.read())
                window = Window()
            if max_steps and steps >= max_steps:
                break
        if on_log is not None and window.count:
            on_log(start_step + steps, *window.read())
        return steps, *total.read(), total.count

    def evaluate(
        self, loader: Iterable[Batch], num_classes: int
    ) -> tuple[float, float, np.ndarray]:
        """(mean loss, accuracy, confusion matrix [true, predicted])."""
        loss_sum, matrix = 0.0, np.zeros((num_classes, num_classes), np.int64)
        for images, labels in loader:
            loss, pred = self.eval_fn(images, labels.astype(np.int32))
            loss_sum += float(loss)
            np.add.at(matrix, (labels, pred.numpy()), 1)
        count = max(1, int(matrix.sum()))
        return loss_sum / count, float(np.trace(matrix)) / count, matrix
