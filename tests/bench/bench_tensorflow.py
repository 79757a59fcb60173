"""TensorFlow vs PyTorch training throughput of the classification template (a script).

    python -m tests.bench tensorflow          # or: python -m tests.bench.bench_tensorflow

For LeNet (32 px, batch 64) and ResNet-50 (32 px, batch 16) on CPU: images/s of the
template's PyTorch Trainer (cls.engine) and of its TensorFlow Trainer (tfcls.engine) on
the same synthetic uint8 batches, SGD with momentum, in one process, alternately, best of
several runs after a warm-up. Both use the same number of threads (OMP_NUM_THREADS, else
every core). The baseline of the TensorFlow path, measured in the same run: a plain Keras
loop (the same Keras model and optimizer, a bare ``tf.function`` step: scale, forward,
mean cross-entropy, GradientTape, apply; no augmentation, L2, chunks or bookkeeping).
Prints one line per network with the ratios tensorflow / pytorch and tensorflow / plain
Keras loop.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "lab_templates" / "classification"))
sys.dont_write_bytecode = True
THREADS = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)

from tfcls import require_tensorflow  # noqa: E402

require_tensorflow()  # sets TensorFlow's thread pools from OMP_NUM_THREADS first

import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
from cls.engine import Runtime, Trainer, make_optimizer  # noqa: E402
from cls.models import Classifier, build_network  # noqa: E402
from tfcls import engine as tfe  # noqa: E402
from tfcls.models import build_classifier  # noqa: E402

CASES = [("lenet", 64, 30), ("resnet50", 16, 6)]  # network, batch, steps per measurement
SIZE, CLASSES, CHANNELS = 32, 10, 3


def batches(batch: int, steps: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [
        (
            rng.integers(0, 256, (batch, CHANNELS, SIZE, SIZE), dtype=np.uint8),
            rng.integers(0, CLASSES, batch).astype(np.int64),
        )
        for _ in range(steps)
    ]


def torch_rate(network: str, data: list[tuple[np.ndarray, np.ndarray]]) -> Callable[[], float]:
    torch.manual_seed(0)
    model = Classifier(build_network(network, CHANNELS, CLASSES, SIZE), [0.5] * 3, [0.25] * 3)
    trainer = Trainer(
        model, make_optimizer(model, "sgd_momentum", 0.01, 1e-4), Runtime(torch.device("cpu"))
    )
    tensors = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]

    def run() -> float:
        started = time.perf_counter()
        _, _, _, images = trainer.train_one_epoch(tensors, 0, log_every=10**9)
        return images / (time.perf_counter() - started)

    return run


def tf_rate(network: str, data: list[tuple[np.ndarray, np.ndarray]]) -> Callable[[], float]:
    tf.keras.utils.set_random_seed(0)
    model = build_classifier(network, CHANNELS, CLASSES, SIZE, [0.5] * 3, [0.25] * 3)
    trainer = tfe.Trainer(model, tfe.make_optimizer("sgd_momentum", 0.01, 1e-4), weight_decay=1e-4)

    def run() -> float:
        started = time.perf_counter()
        _, _, _, images = trainer.train_one_epoch(data, 0, log_every=10**9)
        return images / (time.perf_counter() - started)

    return run


def keras_loop_rate(network: str, data: list[tuple[np.ndarray, np.ndarray]]) -> Callable[[], float]:
    """The plain Keras loop a user would write around the same model."""
    tf.keras.utils.set_random_seed(0)
    model = build_classifier(network, CHANNELS, CLASSES, SIZE, [0.5] * 3, [0.25] * 3)
    optimizer = tf.keras.optimizers.SGD(0.01, momentum=0.9)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(tf.cast(images, tf.float32) / 255.0, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    def run() -> float:
        started = time.perf_counter()
        for x, y in data:
            loss = step(x, y)
        float(loss)  # wait for the last step
        return sum(len(y) for _, y in data) / (time.perf_counter() - started)

    return run


def compare(*rates: Callable[[], float], repeats: int = 3) -> list[float]:
    """Best rate of each, measured alternately after one warm-up run of each."""
    for rate in rates:
        rate()
    runs = [[rate() for rate in rates] for _ in range(repeats)]
    return [max(run[i] for run in runs) for i in range(len(rates))]


def main() -> int:
    torch.set_num_threads(THREADS)
    print(f"CPU, {THREADS} thread(s); torch {torch.__version__}, tensorflow {tf.__version__}")
    for network, batch, steps in CASES:
        data = batches(batch, steps)
        pt, tfr, loop = compare(
            torch_rate(network, data), tf_rate(network, data), keras_loop_rate(network, data)
        )
        print(
            f"{network:9s} {SIZE}px batch {batch:3d}: pytorch {pt:8.1f} images/s, "
            f"tensorflow {tfr:8.1f} images/s, plain keras loop {loop:8.1f} images/s; "
            f"tensorflow/pytorch {tfr / pt:.2f}, tensorflow/keras loop {tfr / loop:.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
