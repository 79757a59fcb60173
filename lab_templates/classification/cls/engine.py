"""Optimizers, schedules, the training step, one epoch, evaluation."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .augment import augment
from .stopping import StopRequested


def make_optimizer(
    model: nn.Module, name: str, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """sgd, sgd_momentum (0.9), adam or adamw; no weight decay on biases and norms."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    if name == "sgd_momentum":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}")


def make_scheduler(
    optimizer: torch.optim.Optimizer, name: str, num_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch: none, step (x0.1 every num_epoch/3) or cosine (to 0)."""
    if name == "none":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    if name == "step":
        step = max(1, math.ceil(num_epoch / 3))
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=0.1)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, num_epoch))
    raise ValueError(f"unknown lr_schedule {name!r}")


@dataclass
class Runtime:
    """How tensors are placed and computed."""

    device: torch.device
    amp: bool = False
    channels_last: bool = False
    ddp: bool = False

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B,C,H,W] (any device) -> float [0, 1] on the device."""
        x = images.to(self.device, non_blocking=True).float().div_(255.0)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


@dataclass
class Window:
    """Sums kept on the device (no sync per step), read every log_every steps."""

    loss: torch.Tensor
    correct: torch.Tensor
    count: int = 0
    images: int = 0
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def zeros(cls, device: torch.device) -> Window:
        return cls(torch.zeros((), device=device), torch.zeros((), device=device))

    def read(self) -> tuple[float, float]:
        n = max(1, self.count)
        return float(self.loss) / n, float(self.correct) / n


def _report(on_log: Callable[[int, float, float, float], None], window: Window, step: int) -> None:
    loss, acc = window.read()
    on_log(step, loss, acc, window.count / max(1e-9, time.perf_counter() - window.started))


class Trainer:
    """Owns the model, optimizer and runtime; runs steps, epochs and evaluations."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        runtime: Runtime,
        *,
        small_chunk: int = 1,
        aug: str = "none",
        seed: int = 0,
        rank: int = 0,
    ) -> None:
        self.model, self.optimizer, self.rt = model, optimizer, runtime
        self.small_chunk, self.aug, self.seed, self.rank = small_chunk, aug, seed, rank

    def forward_backward(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Accumulate gradients of the batch mean loss over ``small_chunk`` chunks.

        Each chunk's summed loss is divided by the full batch size, so the gradient
        equals the full-batch one (exactly so without batch-statistic layers).
        Returns (summed loss, correct predictions), detached, on the device.
        """
        n = y.shape[0]
        chunks = [
            c
            for c in zip(
                x.tensor_split(self.small_chunk), y.tensor_split(self.small_chunk), strict=True
            )
            if c[1].numel()
        ]
        loss_sum = torch.zeros((), device=y.device)
        correct = torch.zeros((), device=y.device)
        for i, (xc, yc) in enumerate(chunks):
            sync = self.rt.ddp and i < len(chunks) - 1
            ctx = self.model.no_sync() if sync else contextlib.nullcontext()  # type: ignore[operator]
            with ctx:
                with self.rt.autocast():
                    logits = self.model(xc)
                loss, stat = self.chunk_loss(logits, yc)
                (loss / n).backward()
            loss_sum += loss.detach()
            correct += stat
        return loss_sum, correct

    def chunk_loss(
        self, outputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed loss, summed per-sample statistic, detached) of one chunk: cross-entropy
        and correct predictions here; other tasks override it (the regression template)."""
        loss = F.cross_entropy(outputs.float(), targets, reduction="sum")
        return loss, (outputs.detach().argmax(1) == targets).sum()

    def train_step(
        self, images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a uint8 batch; returns (summed loss, correct)."""
        x = self.rt.prepare(images)
        y = labels.to(self.rt.device, non_blocking=True)
        if self.aug != "none":
            x = augment(x, self.aug, gen)
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, correct = self.forward_backward(x, y)
        self.optimizer.step()
        return loss_sum, correct

    def aug_generator(self, epoch: int) -> torch.Generator:
        """Per-epoch, per-rank augmentation randomness (resume-exact)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 1009 + self.rank)

    def train_one_epoch(
        self,
        loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
        epoch: int,
        *,
        log_every: int = 10,
        max_steps: int = 0,
        start_step: int = 0,
        on_log: Callable[[int, float, float, float], None] | None = None,
        should_stop: Callable[[int], bool] | None = None,
    ) -> tuple[int, float, float, int]:
        """Train one epoch; ``on_log(global_step, loss, acc, images_per_s)`` every
        ``log_every`` steps of the epoch and once more at its end for the steps since the
        last call (so an epoch shorter than ``log_every`` still reports, and no epoch drops
        its last partial window). ``should_stop(steps_done)`` is asked after each step;
        True raises :class:`StopRequested` there (before that step's log line: the
        interrupted epoch is dropped and redone on resume).

        Returns (steps done, mean loss, accuracy, images seen).
        """
        self.model.train()
        gen = self.aug_generator(epoch)
        dev = self.rt.device
        window, total = Window.zeros(dev), Window.zeros(dev)
        steps = 0
        for images, labels in loader:
            loss_sum, correct = self.train_step(images, labels, gen)
            steps += 1
            for w in (window, total):
                w.loss += loss_sum
                w.correct += correct
                w.count += labels.shape[0]
            if should_stop is not None and should_stop(steps):
                raise StopRequested(f"epoch {epoch + 1}, step {steps}")
            if on_log is not None and steps % log_every == 0:
                _report(on_log, window, start_step + steps)
                window = Window.zeros(dev)
            if max_steps and steps >= max_steps:
                break
        if on_log is not None and window.count:  # the epoch's last partial window
            _report(on_log, window, start_step + steps)
        loss, acc = total.read()
        return steps, loss, acc, total.count

    @torch.inference_mode()
    def evaluate(
        self,
        loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
        num_classes: int,
        model: nn.Module | None = None,
    ) -> tuple[float, float, torch.Tensor]:
        """(mean loss, accuracy, confusion matrix [true, predicted]) over ``loader``.

        Under DDP each rank evaluates its shard and the sums are all-reduced.
        """
        net = model if model is not None else self.model
        net.eval()
        dev = self.rt.device
        loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
        confusion = torch.zeros(num_classes * num_classes, device=dev, dtype=torch.long)
        for images, labels in loader:
            x, y = self.rt.prepare(images), labels.to(dev, non_blocking=True)
            with self.rt.autocast():
                logits = net(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
            confusion += torch.bincount(
                y * num_classes + logits.argmax(1), minlength=num_classes * num_classes
            )
        if self.rt.ddp:
            torch.distributed.all_reduce(loss_sum)
            torch.distributed.all_reduce(confusion)
        matrix = confusion.view(num_classes, num_classes).cpu()
        count = max(1, int(matrix.sum()))
        return float(loss_sum) / count, float(matrix.diag().sum()) / count, matrix
