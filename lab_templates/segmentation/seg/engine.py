"""The segmentation training step, epoch and evaluation (device, bf16 and channels_last
handling are the classification template's ``cls.engine.Runtime``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from cls.engine import Runtime
from cls.stopping import StopRequested
from torch import nn

from .augment import joint_augment
from .metrics import confusion, dice_iou, segmentation_loss

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
OnLog = Callable[[int, float, float, float], None]  # (global step, loss, dice, iou)


@dataclass
class Tally:
    """Loss sum (per image) and the pixel confusion matrix, kept on the device."""

    loss: torch.Tensor
    matrix: torch.Tensor
    images: int = 0
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def zeros(cls, num_classes: int, device: torch.device) -> Tally:
        return cls(
            torch.zeros((), device=device, dtype=torch.float64),
            torch.zeros(num_classes * num_classes, device=device, dtype=torch.long),
        )

    def add(self, loss_sum: torch.Tensor, matrix: torch.Tensor, images: int) -> None:
        self.loss += loss_sum
        self.matrix += matrix
        self.images += images

    def read(self) -> tuple[float, float, float]:
        """(mean loss, Dice, IoU)."""
        dice, iou = dice_iou(self.matrix.cpu())
        return float(self.loss) / max(1, self.images), dice, iou


class SegTrainer:
    """Owns the model, optimizer and runtime; runs steps, epochs and evaluations."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        runtime: Runtime,
        num_classes: int,
        *,
        loss: str = "ce_dice",
        aug: str = "none",
        seed: int = 0,
        rank: int = 0,
    ) -> None:
        self.model, self.optimizer, self.rt = model, optimizer, runtime
        self.k, self.loss, self.aug, self.seed, self.rank = num_classes, loss, aug, seed, rank

    def train_step(
        self, images: torch.Tensor, masks: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a uint8 batch; returns (loss x images, confusion)."""
        x = self.rt.prepare(images)
        y = masks.to(self.rt.device, non_blocking=True).long()
        if self.aug != "none":
            x, y = joint_augment(x, y, self.aug, gen)
        self.optimizer.zero_grad(set_to_none=True)
        with self.rt.autocast():
            logits = self.model(x)
        loss = segmentation_loss(logits, y, self.loss)
        loss.backward()
        self.optimizer.step()
        pred = logits.detach().argmax(1)
        return loss.detach().double() * y.shape[0], confusion(pred, y, self.k)

    def aug_generator(self, epoch: int) -> torch.Generator:
        """Per-epoch, per-rank augmentation randomness (resume-exact)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 1009 + self.rank)

    def train_one_epoch(
        self,
        loader: Batches,
        epoch: int,
        *,
        log_every: int = 10,
        max_steps: int = 0,
        start_step: int = 0,
        on_log: OnLog | None = None,
        should_stop: Callable[[int], bool] | None = None,
    ) -> tuple[int, Tally]:
        """Train one epoch, calling ``on_log`` every ``log_every`` steps and at the end;
        ``should_stop(steps_done)`` is asked after each step (True raises StopRequested).

        Returns (steps done, the epoch's tally).
        """
        self.model.train()
        gen = self.aug_generator(epoch)
        dev = self.rt.device
        window, total = Tally.zeros(self.k, dev), Tally.zeros(self.k, dev)
        steps = 0
        for images, masks in loader:
            loss_sum, matrix = self.train_step(images, masks, gen)
            steps += 1
            for t in (window, total):
                t.add(loss_sum, matrix, masks.shape[0])
            if should_stop is not None and should_stop(steps):
                raise StopRequested(f"epoch {epoch + 1}, step {steps}")
            if on_log is not None and steps % log_every == 0:
                on_log(start_step + steps, *window.read())
                window = Tally.zeros(self.k, dev)
            if max_steps and steps >= max_steps:
                break
        if on_log is not None and window.images:  # the epoch's last partial window
            on_log(start_step + steps, *window.read())
        return steps, total

    @torch.inference_mode()
    def evaluate(self, loader: Batches, model: nn.Module | None = None) -> Tally:
        """Loss and confusion over ``loader`` (all-reduced across DDP ranks)."""
        net = model if model is not None else self.model
        net.eval()
        tally = Tally.zeros(self.k, self.rt.device)
        for images, masks in loader:
            x, y = self.rt.prepare(images), masks.to(self.rt.device, non_blocking=True).long()
            with self.rt.autocast():
                logits = net(x)
            loss = segmentation_loss(logits, y, self.loss).double() * y.shape[0]
            tally.add(loss, confusion(logits.argmax(1), y, self.k), y.shape[0])
        if self.rt.ddp:
            count = torch.tensor(float(tally.images), device=self.rt.device, dtype=torch.float64)
            for t in (tally.loss, tally.matrix, count):
                torch.distributed.all_reduce(t)
            tally.images = int(count)
        return tally

    @torch.inference_mode()
    def predict(
        self, images: torch.Tensor, batch_size: int, model: nn.Module | None = None
    ) -> torch.Tensor:
        """Predicted class maps uint8 [N, H, W] (on the CPU) for uint8 images [N, C, H, W]."""
        net = model if model is not None else self.model
        net.eval()
        out = []
        for start in range(0, len(images), batch_size):
            with self.rt.autocast():
                logits = net(self.rt.prepare(images[start : start + batch_size]))
            out.append(logits.argmax(1).to(torch.uint8).cpu())
        return torch.cat(out) if out else torch.empty(0, dtype=torch.uint8)
