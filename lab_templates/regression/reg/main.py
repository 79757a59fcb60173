"""train.py's program: the regression :class:`~cls.runner.Task` (a CSV of image -> scores,
a backbone with a regression head, MSE / MAE / R², a scatter plot) run by the
classification template's :mod:`cls.runner` (seeding, runtime, DDP, --resume, SIGTERM,
per-epoch checkpoints, progress lines, TensorBoard)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from cls.config import to_dict
from cls.main import build_model, train_epoch
from cls.runner import EpochResult, StepLog, Task, run_main
from torch import nn

from .config import parse_args
from .data import RegData, build_data
from .engine import RegressionTrainer, Regressor
from .report import write_test_report


def model_meta(args: argparse.Namespace, data: RegData) -> dict[str, Any]:
    """Everything predict.py needs besides the weights."""
    return {
        "task": "regression",
        "network": args.network,
        "in_channels": data.channels,
        "targets": data.targets,
        "image_size": args.image_size,
        "mean": data.mean,
        "std": data.std,
        "target_mean": data.target_mean,
        "target_std": data.target_std,
        "args": to_dict(args),
    }


class RegressionTask(Task):
    """Score columns of a CSV; best.pt keeps the best validation R² (which can be < 0)."""

    best_key = "val_r2"
    initial_best = -float("inf")
    model: Regressor

    def setup(self) -> None:
        args, dist, rt = self.args, self.dist, self.rt
        self.data = data = build_data(args, dist, rt.device)
        self.channels, self.samples = data.channels, data.samples
        self.log_data(f"targets {', '.join(data.targets)}", data.sizes, data.in_memory)
        net = build_model(args, data.channels, len(data.targets), self.rep)
        self.model = Regressor(net, data.mean, data.std, data.target_mean, data.target_std)
        self.model.recompute = args.memory_saving_method == "recomputing"
        self.train_loader = data.loaders["train"]
        self.meta = model_meta(args, data)

    def start(self, train_model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        args, data = self.args, self.data
        self.trainer = RegressionTrainer(
            train_model, optimizer, self.rt, scores=data.scores, target_mean=data.target_mean,
            target_std=data.target_std, loss=args.loss, small_chunk=args.small_chunk,
            **self.trainer_options(),
        )  # fmt: skip

    def train_epoch(
        self, epoch: int, start_step: int, on_log: StepLog, should_stop: Callable[[int], bool]
    ) -> EpochResult:
        result = train_epoch(self.trainer, self.data.loaders["train"], self.args, epoch,
                             start_step, on_log, should_stop, metric="mae")  # fmt: skip
        return dataclasses.replace(result, score=-result.metrics["loss"])

    def validate(self, epoch: int) -> float | None:
        if "val" not in self.data.loaders:
            return None
        val = self.trainer.evaluate_scores(self.data.loaders["val"], self.data.targets)
        self.rep.metrics("Validation", "epoch", epoch, **val.line())
        return val.line()["r2"]

    def test(self, eval_model: nn.Module, epoch: int) -> dict[str, Any]:
        """Test metric line, scatter.png and test_metrics.json."""
        data, rep, out = self.data, self.rep, Path(self.args.output_dir)
        if "test" not in data.loaders:
            rep.log("Test: no test.csv in the dataset; skipping the test evaluation")
            return {}
        scores = self.trainer.evaluate_scores(data.loaders["test"], data.targets, eval_model)
        rep.metrics("Test", "epoch", epoch, **scores.line())
        if not self.dist.main:
            return {}
        report = write_test_report(out, scores, data.test_paths)
        rep.image("Test/scatter", out / "scatter.png", epoch)
        rep.log(f"Wrote {out / 'scatter.png'} (predicted vs true) and {out / 'test_metrics.json'}")
        return report


def main(argv: Sequence[str] | None = None, script: str | None = None) -> int:
    """Entry point of train.py; returns the exit status."""
    return run_main(parse_args, RegressionTask, argv, script)
