"""train.py's program: the classification :class:`~cls.runner.Task` (folder data, a
classifier, accuracy, the confusion-matrix test report) run by :mod:`cls.runner`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import load_initial_weights, resolve_weights
from .config import parse_args
from .data import Loader
from .engine import Trainer
from .export import run_meta
from .models import Classifier, build_network
from .pipeline import build_data
from .reporting import Reporter, per_class_accuracy, write_test_report
from .runner import EpochResult, StepLog, Task, run_main


def build_model(args: argparse.Namespace, channels: int, outputs: int, rep: Reporter) -> nn.Module:
    """The seeded backbone with ``outputs`` outputs and optional initial weights."""
    torch.manual_seed(args.seed)
    try:
        net = build_network(args.network, channels, outputs, args.image_size)
        if args.weights:
            load_initial_weights(net, resolve_weights(args.weights), rep.log)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"error: {exc}") from exc
    return net


def train_epoch(
    trainer: Trainer,
    loader: Loader,
    args: argparse.Namespace,
    epoch: int,
    start_step: int,
    on_log: StepLog,
    should_stop: Callable[[int], bool],
    metric: str = "acc",
) -> EpochResult:
    """One epoch of a :class:`Trainer`; its second figure is named ``metric`` in the lines."""
    done, loss, value, seen = trainer.train_one_epoch(
        loader,
        epoch,
        log_every=args.log_every,
        max_steps=args.max_steps_per_epoch,
        start_step=start_step,
        on_log=lambda step, loss, v, _rate: on_log(step, {"loss": loss, metric: v}),
        should_stop=should_stop,
    )
    return EpochResult(done, seen, {"loss": loss, metric: value}, value)


class ClassificationTask(Task):
    """Class folders, a classifier, accuracy; the test report has the confusion matrix."""

    model: Classifier

    def setup(self) -> None:
        args, dist, rt = self.args, self.dist, self.rt
        self.data = data = build_data(args, dist, rt.device)
        self.channels, self.samples, self.train_loader = data.channels, data.samples, data.train
        self.log_data(f"{len(data.classes)} classes", data.sizes, data.in_memory)
        net = build_model(args, data.channels, len(data.classes), self.rep)
        self.model = model = Classifier(net, data.mean, data.std)
        model.recompute = args.memory_saving_method == "recomputing"
        self.meta = run_meta(args, data.channels, data.classes, (data.mean, data.std))

    def start(self, train_model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        args = self.args
        self.trainer = Trainer(
            train_model,
            optimizer,
            self.rt,
            small_chunk=args.small_chunk,
            **self.trainer_options(),
        )

    def train_epoch(
        self, epoch: int, start_step: int, on_log: StepLog, should_stop: Callable[[int], bool]
    ) -> EpochResult:
        return train_epoch(self.trainer, self.data.train, self.args, epoch, start_step, on_log,
                           should_stop)  # fmt: skip

    def validate(self, epoch: int) -> float | None:
        if self.data.val is None:
            return None
        loss, acc, _ = self.trainer.evaluate(self.data.val, len(self.data.classes))
        self.rep.metrics("Validation", "epoch", epoch, loss=loss, acc=acc)
        return acc

    def test(self, eval_model: nn.Module, epoch: int) -> dict[str, Any]:
        data, rep, out = self.data, self.rep, Path(self.args.output_dir)
        if data.test is None:
            rep.log("Test: no test/ folder in the dataset; skipping the test evaluation")
            return {}
        loss, acc, matrix = self.trainer.evaluate(data.test, len(data.classes), eval_model)
        rep.metrics("Test", "epoch", epoch, acc=acc, loss=loss)
        if not self.dist.main:
            return {}
        report = write_test_report(out, matrix, data.classes, loss, acc)
        rep.log("Per-class test accuracy:")
        for name, value in zip(data.classes, per_class_accuracy(matrix), strict=True):
            rep.log(f"  {name}: {value:.4f}")
            if rep.writer is not None:
                rep.writer.add_scalar(f"Test/acc_class_{name}", value, epoch)
        rep.image("Test/confusion_matrix", out / "confusion_matrix.png", epoch)
        return report


def main(argv: Sequence[str] | None = None, script: str | None = None) -> int:
    """Entry point of train.py; returns the exit status."""
    return run_main(parse_args, ClassificationTask, argv, script)
