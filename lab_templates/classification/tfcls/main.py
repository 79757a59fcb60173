"""train.py's program for ``--framework tensorflow``: the same flags, data, lines and
outputs as the PyTorch path (cls), with a Keras model trained by tfcls.engine.

Data scanning, batching and normalisation statistics come from cls.pipeline (the same
sample order as PyTorch); the metric, progress and epoch lines from cls.lines through
cls.reporting.Reporter, whose TensorBoard writer is tf.summary here; SIGTERM handling
from cls.stopping. Outputs: tensorboard/, tf_checkpoint/ (--resume), best.weights.h5,
saved_model/, model.onnx, model_meta.json, confusion_matrix.json/.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import torch
from cls.config import build_parser, parse_with, to_dict
from cls.data import DatasetLayoutError, Loader
from cls.distributed import DistInfo
from cls.export import model_meta
from cls.lines import epoch_line
from cls.pipeline import DataBundle, build_data
from cls.reporting import Reporter, per_class_accuracy, write_test_report
from cls.stopping import EXIT_CODE, GracefulStop, StopRequested, stop_message

from . import checkpoint as ckpt
from .engine import Trainer, lr_at, make_optimizer
from .export import export_onnx, float32_copy, save_saved_model
from .models import KerasClassifier, build_classifier
from .summary import TfSummaryWriter


class NumpyBatches:
    """A cls loader whose batches come out as NumPy arrays."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for images, labels in self.loader:
            yield images.numpy(), labels.numpy()


def setup_runtime(args: argparse.Namespace) -> str:
    """Seed, pick the device (bf16 mixed precision on GPU), deterministic ops on CPU."""
    gpus = tf.config.list_physical_devices("GPU")
    if args.device == "cuda" and not gpus:
        raise SystemExit("error: --device cuda but TensorFlow sees no GPU (tensorflow-cpu?)")
    if args.device == "cpu" or not gpus:
        tf.config.set_visible_devices([], "GPU")
        tf.config.experimental.enable_op_determinism()  # resume-exact on CPU
        device = "cpu"
    else:
        device = "gpu"
        if args.amp:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(args.seed)
    return device


def build_model(args: argparse.Namespace, data: DataBundle) -> KerasClassifier:
    """The seeded classifier with optional initial weights (a .weights.h5 path, or
    registered weights by name: tfcls.checkpoint.resolve_weights)."""
    try:
        model = build_classifier(
            args.network, data.channels, len(data.classes), args.image_size, data.mean, data.std
        )
        if args.weights:
            path = ckpt.resolve_weights(args.weights)
            model.load_weights(path)
            print(f"Weights: loaded {path}", flush=True)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"error: {exc}") from exc
    model.recompute = args.memory_saving_method == "recomputing"
    return model


def resume_state(
    args: argparse.Namespace, model: keras.Model, optimizer: Any, rep: Reporter
) -> ckpt.RunState:
    """Restore from --resume (``auto``: <output_dir>/tf_checkpoint when it exists)."""
    if not args.resume:
        return ckpt.RunState()
    auto = args.resume == "auto"
    path = ckpt.checkpoint_dir(args.output_dir) if auto else Path(args.resume)
    if auto and not (path / ckpt.STATE).is_file():
        rep.log(f"Resume: no checkpoint at {path}; starting from scratch")
        return ckpt.RunState()
    state, record = ckpt.restore(path, model, optimizer)
    saved = record.get("args", {}).get("num_epoch")
    if saved is not None and saved != args.num_epoch:
        rep.log(
            f"Resume: warning: checkpoint was for num_epoch={saved}, now {args.num_epoch}; "
            f"the lr schedule follows the new num_epoch"
        )
    rep.log(f"Resume: continuing after epoch {state.epoch} from {path}")
    return state


class Run:
    """The epoch loop around a Trainer: lines, validation, checkpoints, SIGTERM."""

    def __init__(
        self, args: argparse.Namespace, data: DataBundle, model: KerasClassifier, rep: Reporter
    ) -> None:
        self.args, self.data, self.model, self.rep = args, data, model, rep
        self.optimizer = make_optimizer(args.optimizer, args.lr, args.weight_decay)
        self.state = resume_state(args, model, self.optimizer, rep)
        self.trainer = Trainer(
            model,
            self.optimizer,
            small_chunk=args.small_chunk,
            aug=args.aug_list,
            seed=args.seed,
            weight_decay=args.weight_decay,
            jit=args.compile,
        )
        self.train_loader = NumpyBatches(data.train)
        self.meta = model_meta(
            network=args.network,
            in_channels=data.channels,
            classes=data.classes,
            image_size=args.image_size,
            mean=data.mean,
            std=data.std,
            args=to_dict(args),
        )
        self.meta["framework"] = "tensorflow"

    def validate(self, epoch: int) -> float | None:
        if self.data.val is None:
            return None
        loss, acc, _ = self.trainer.evaluate(NumpyBatches(self.data.val), len(self.data.classes))
        self.rep.metrics("Validation", "epoch", epoch, loss=loss, acc=acc)
        return acc

    def save(self, score: float) -> None:
        """tf_checkpoint/ (resume) and, when ``score`` is the best yet, best.weights.h5."""
        out, st = Path(self.args.output_dir), self.state
        if score > st.best_acc:
            st.best_acc = score
            self.model.save_weights(out / "best.weights.h5")
        ckpt.save(
            ckpt.checkpoint_dir(out), self.model, self.optimizer, st, {"args": to_dict(self.args)}
        )

    def train(self, stopper: GracefulStop) -> None:
        """As cls.runner.Loop.train: every epoch, then stop at SIGTERM with its message."""
        args, st, rep = self.args, self.state, self.rep
        steps = len(self.train_loader)
        steps = min(steps, args.max_steps_per_epoch) if args.max_steps_per_epoch else steps

        def on_log(step: int, loss: float, acc: float) -> None:
            lr = float(self.optimizer.learning_rate)
            rep.metrics("Train", "step", step, loss=loss, acc=acc, lr=lr)
            rep.progress(st.epoch + 1, args.num_epoch, min(step - st.global_step, steps), steps)

        last = args.num_epoch
        if args.max_epochs_this_run:
            last = min(last, st.epoch + args.max_epochs_this_run)
        if st.epoch < last:
            rep.progress(st.epoch + 1, args.num_epoch, 0, steps)
        for epoch in range(st.epoch, last):
            self.optimizer.learning_rate = lr_at(args.lr_schedule, args.lr, epoch, args.num_epoch)
            self.train_loader.set_epoch(epoch)
            started = time.perf_counter()
            try:
                done, loss, acc, images = self.trainer.train_one_epoch(
                    self.train_loader,
                    epoch,
                    log_every=args.log_every,
                    max_steps=args.max_steps_per_epoch,
                    start_step=st.global_step,
                    on_log=on_log,
                    should_stop=stopper.should_stop,
                )
            except StopRequested:
                raise StopRequested(stop_message(epoch, args.num_epoch, mid_epoch=True)) from None
            seconds = time.perf_counter() - started
            st.global_step, st.epoch = st.global_step + done, epoch + 1
            rep.log(
                epoch_line(st.epoch, args.num_epoch, {"loss": loss, "acc": acc}, seconds, images)
            )
            score = self.validate(st.epoch)
            rep.progress(st.epoch, args.num_epoch, steps, steps)
            self.save(acc if score is None else score)
            if st.epoch < last and stopper.stop_now():
                raise StopRequested(stop_message(st.epoch, args.num_epoch, mid_epoch=False))

    def export(self, out: Path) -> None:
        """saved_model/, model.onnx and model_meta.json (float32 under mixed precision)."""
        model = float32_copy(self.model, self.meta)
        save_saved_model(model, out / "saved_model", self.meta)
        export_onnx(model, out / "model.onnx", self.meta)
        (out / "model_meta.json").write_text(json.dumps(self.meta, indent=2, default=str))
        self.rep.log(f"Saved {out / 'saved_model'} and {out / 'model.onnx'} (onnx.checker passed)")

    def test(self, epoch: int) -> dict[str, Any]:
        """The Test line, per-class accuracies and the confusion-matrix report."""
        data, rep, out = self.data, self.rep, Path(self.args.output_dir)
        if data.test is None:
            rep.log("Test: no test/ folder in the dataset; skipping the test evaluation")
            return {}
        loss, acc, matrix = self.trainer.evaluate(NumpyBatches(data.test), len(data.classes))
        rep.metrics("Test", "epoch", epoch, acc=acc, loss=loss)
        confusion = torch.from_numpy(matrix)
        report = write_test_report(out, confusion, data.classes, loss, acc)
        rep.log("Per-class test accuracy:")
        for name, value in zip(data.classes, per_class_accuracy(confusion), strict=True):
            rep.log(f"  {name}: {value:.4f}")
            if rep.writer is not None:
                rep.writer.add_scalar(f"Test/acc_class_{name}", value, epoch)
        rep.image("Test/confusion_matrix", out / "confusion_matrix.png", epoch)
        return report


def run(args: argparse.Namespace, rep: Reporter) -> dict[str, Any]:
    """Train as the flags say; returns the test report (empty without a test split)."""
    device = setup_runtime(args)
    data = build_data(args, DistInfo(), torch.device("cpu"))
    rep.log(
        f"Data: {args.data_dir}: {len(data.classes)} classes, {data.channels} channel(s), "
        f"{', '.join(f'{k} {v}' for k, v in data.sizes.items())} images, "
        f"{'decoded into memory' if data.in_memory else 'streamed from disk'}; "
        f"TensorFlow {tf.__version__} on {device}, "
        f"policy {keras.mixed_precision.global_policy().name}"
    )
    model = build_model(args, data)
    model.summary(print_fn=lambda line, *_a, **_k: rep.log(line), expand_nested=False)
    loop = Run(args, data, model, rep)
    if loop.state.epoch == 0:
        loop.state.best_acc = -1.0
        rep.images("Train/samples", data.samples[: args.sample_images])
    with GracefulStop(every=args.log_every) as stopper:
        loop.train(stopper)
    if loop.state.epoch < args.num_epoch:
        rep.log(
            f"Stopped after epoch {loop.state.epoch} of {args.num_epoch} "
            f"(--max_epochs_this_run); continue with --resume"
        )
        return {}
    loop.export(Path(args.output_dir))
    return loop.test(loop.state.epoch)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """cls.config's flags plus --framework (so a --config file may name it too)."""
    parser = build_parser()
    parser.add_argument("--framework", default="tensorflow", choices=["pytorch", "tensorflow"])
    return parse_with(parser, argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of train.py for TensorFlow; returns the exit status (2: bad dataset,
    143: SIGTERM)."""
    args = parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep = Reporter(None)
    rep.writer = TfSummaryWriter(out / "tensorboard")
    try:
        run(args, rep)
    except (DatasetLayoutError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except StopRequested as stop:
        print(stop, flush=True)
        return EXIT_CODE
    finally:
        rep.close()
    return 0
