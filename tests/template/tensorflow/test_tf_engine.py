"""tfcls's pieces: small_chunk and recomputing change memory, not the step (and really
run over k chunks / through tf.recompute_grad); schedules match PyTorch's; augmentation
is seeded and in range (color_distortion alone too); networks without a Keras version say
so."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from cls.engine import make_scheduler

from .conftest import finished


def _step(network: str, *, small_chunk: int = 1, recompute: bool = False) -> list[np.ndarray]:
    """Weights after one SGD step of a fresh seeded model on a fixed batch."""
    import keras
    from tfcls.engine import Trainer, make_optimizer
    from tfcls.models import build_classifier

    keras.utils.set_random_seed(0)
    model = build_classifier(network, 3, 4, 32, [0.5] * 3, [0.25] * 3)
    model.recompute = recompute
    trainer = Trainer(model, make_optimizer("sgd", 0.1, 0.0), small_chunk=small_chunk)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 4, 8).astype(np.int32)
    import tensorflow as tf

    trainer.step_fn(images, labels, tf.constant([0, 0], tf.int64))
    return [v.numpy() for v in model.trainable_variables]


def _close(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        np.allclose(x, y, rtol=1e-4, atol=1e-6) for x, y in zip(a, b, strict=True)
    )


def test_small_chunk_accumulates_the_full_batch_gradient() -> None:
    plain = _step("lenet")
    assert _close(_step("lenet", small_chunk=3), plain)


def test_recomputing_gives_the_same_step() -> None:
    assert _close(_step("lenet", recompute=True), _step("lenet"))
    assert _close(_step("resnet18", recompute=True), _step("resnet18"))


def test_small_chunk_runs_the_step_over_k_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loss is computed once per chunk (8 images, k=3: 2 + 3 + 3), not on the batch."""
    import tensorflow as tf

    real, sizes = tf.nn.sparse_softmax_cross_entropy_with_logits, []

    def recording(*args: object, **kwargs: object) -> object:
        logits = kwargs.get("logits", args[1] if len(args) > 1 else None)
        sizes.append(int(logits.shape[0]))  # type: ignore[union-attr]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tf.nn, "sparse_softmax_cross_entropy_with_logits", recording)
    _step("lenet", small_chunk=3)
    assert sizes == [2, 3, 3]  # traced once: one loss per chunk
    sizes.clear()
    _step("lenet")
    assert sizes == [8]


def test_recomputing_goes_through_recompute_grad(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every stage but the head is wrapped by tf.recompute_grad, and the backward pass runs
    each wrapped stage again (its activations are recomputed, not kept)."""
    import tensorflow as tf

    real, counts = tf.recompute_grad, {"wrapped": 0, "ran": 0}

    def counting(f: object) -> object:
        counts["wrapped"] += 1

        def run(*args: object, **kwargs: object) -> object:
            counts["ran"] += 1
            return f(*args, **kwargs)  # type: ignore[operator]

        return real(run)

    monkeypatch.setattr(tf, "recompute_grad", counting)
    _step("lenet")
    assert counts == {"wrapped": 0, "ran": 0}
    _step("lenet", recompute=True)
    from tfcls.models import build_stages

    stages = len(build_stages("lenet", 4, 32)) - 1  # the head is not recomputed
    assert stages >= 2 and counts["wrapped"] == stages
    assert counts["ran"] == 2 * stages, counts  # forward, then again in the backward pass


def test_schedules_match_pytorch() -> None:
    from tfcls.engine import lr_at

    for name in ("none", "step", "cosine"):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05)
        sched = make_scheduler(opt, name, 7)
        for epoch in range(7):
            assert math.isclose(lr_at(name, 0.05, epoch, 7), opt.param_groups[0]["lr"],
                                rel_tol=1e-9, abs_tol=1e-12)  # fmt: skip
            opt.step()
            sched.step()


def test_augmentation_is_seeded_and_stays_in_range() -> None:
    import tensorflow as tf
    from tfcls.engine import augment

    x = tf.random.stateless_uniform([16, 3, 8, 8], [1, 2])
    seed = tf.constant([5, 7], tf.int64)
    a, b = augment(x, "both", seed), augment(x, "both", seed)
    assert np.array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), augment(x, "both", seed + 1).numpy())
    assert float(tf.reduce_min(a)) >= 0.0 and float(tf.reduce_max(a)) <= 1.0
    flipped = augment(x, "flip_random", seed).numpy()
    same = [np.array_equal(f, o) for f, o in zip(flipped, x.numpy(), strict=True)]
    mirrored = [np.array_equal(f, o[:, :, ::-1]) for f, o in zip(flipped, x.numpy(), strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True)) and any(mirrored) and any(same)


def test_color_distortion_alone_is_seeded_in_range_and_never_moves_pixels() -> None:
    import tensorflow as tf
    from tfcls.engine import augment

    x = tf.random.stateless_uniform([16, 3, 8, 8], [3, 4])
    seed = tf.constant([5, 7], tf.int64)
    a = augment(x, "color_distortion", seed).numpy()
    assert np.array_equal(a, augment(x, "color_distortion", seed).numpy())
    assert not np.array_equal(a, augment(x, "color_distortion", seed + 1).numpy())
    assert a.min() >= 0.0 and a.max() <= 1.0 and a.shape == (16, 3, 8, 8)
    changed = [not np.allclose(d, o, atol=1e-3) for d, o in zip(a, x.numpy(), strict=True)]
    assert all(changed)  # every image gets its own brightness/contrast/saturation draws
    # one channel: brightness and contrast are increasing maps of each pixel, so no pixel
    # moves (no flip) and a brighter pixel never ends darker than a darker one
    gray = tf.random.stateless_uniform([16, 1, 8, 8], [5, 6])
    out = augment(gray, "color_distortion", seed).numpy().reshape(16, -1)
    for before, after in zip(gray.numpy().reshape(16, -1), out, strict=True):
        order = np.argsort(before)
        assert np.all(np.diff(after[order]) >= -1e-6)
        assert not np.allclose(before, after, atol=1e-3)


def test_networks_without_a_keras_version_say_so() -> None:
    from tfcls.models import build_stages

    with pytest.raises(ValueError, match="not available with --framework tensorflow"):
        build_stages("mobilenet_v2", 10, 32)


def test_a_job_runs_with_recomputing_and_small_chunks(
    cls_lab: Path, digits_dir: Path, tmp_path: Path
) -> None:
    params = {
        "framework": "tensorflow",
        "num_epoch": 1,
        "memory_saving_method": "recomputing",
        "small_chunk": 3,
        "max_steps_per_epoch": 4,
        "aug_list": "both",
        "optimizer": "adamw",
        "lr": 0.002,
    }
    out, output = finished(cls_lab, digits_dir, tmp_path / "out", params)
    assert "Epoch 1/1: train loss" in out and (output / "model.onnx").is_file()
