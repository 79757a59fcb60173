"""The regression model (a classification backbone with K outputs), its training loss
and the MSE / MAE / R² evaluation. Steps, epochs, chunking, bf16 and channels_last are
the classification template's :class:`cls.engine.Trainer`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from cls.engine import Runtime, Trainer
from cls.models import Classifier
from torch import nn

LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss}


class Regressor(Classifier):
    """Normalisation + network + de-standardisation: float images in [0, 1] -> scores in
    the CSV's units (what model.onnx computes too). The network is trained on
    standardised scores, ``(y - target_mean) / target_std`` of the training set."""

    target_mean: torch.Tensor
    target_std: torch.Tensor

    def __init__(
        self,
        net: nn.Module,
        mean: list[float],
        std: list[float],
        target_mean: list[float],
        target_std: list[float],
    ) -> None:
        super().__init__(net, mean, std)
        self.register_buffer("target_mean", torch.tensor(target_mean).view(1, -1))
        self.register_buffer("target_std", torch.tensor(target_std).view(1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).float() * self.target_std + self.target_mean


@dataclass
class Scores:
    """Evaluation of one split: per-target MSE, MAE and R² (and their means)."""

    targets: list[str]
    mse: list[float]
    mae: list[float]
    r2: list[float]
    loss: float
    predictions: torch.Tensor  # [N, K] on the CPU (this rank's share under DDP)
    truth: torch.Tensor

    def line(self) -> dict[str, float]:
        """The values of a metric line: means, then ``r2_<target>`` when K > 1."""
        k = len(self.targets)
        values = {
            "loss": self.loss,
            "mse": sum(self.mse) / k,
            "mae": sum(self.mae) / k,
            "r2": sum(self.r2) / k,
        }
        if k > 1:
            values |= {f"r2_{t}": r for t, r in zip(self.targets, self.r2, strict=True)}
        return values


class RegressionTrainer(Trainer):
    """A :class:`Trainer` whose batches carry score-table rows instead of class labels."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        runtime: Runtime,
        *,
        scores: torch.Tensor,
        target_mean: list[float],
        target_std: list[float],
        loss: str = "mse",
        small_chunk: int = 1,
        aug: str = "none",
        seed: int = 0,
        rank: int = 0,
    ) -> None:
        super().__init__(
            model, optimizer, runtime, small_chunk=small_chunk, aug=aug, seed=seed, rank=rank
        )
        device = runtime.device
        self.scores = scores.to(device)
        self.t_mean = torch.tensor(target_mean, device=device).view(1, -1)
        self.t_std = torch.tensor(target_std, device=device).view(1, -1)
        self.loss_fn = LOSSES[loss]

    def chunk_loss(
        self, outputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss summed over images, mean over targets, on standardised scores;
        absolute error summed over images, averaged over targets, in score units)."""
        y = self.scores[targets]
        pred = outputs.float()
        z_pred, z_true = (pred - self.t_mean) / self.t_std, (y - self.t_mean) / self.t_std
        loss = self.loss_fn(z_pred, z_true, reduction="sum") / y.shape[1]
        return loss, (pred.detach() - y).abs().mean(1).sum()

    @torch.inference_mode()
    def evaluate_scores(
        self,
        loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
        targets: list[str],
        model: nn.Module | None = None,
    ) -> Scores:
        """MSE, MAE, R² per target over ``loader`` (sums all-reduced under DDP)."""
        net = model if model is not None else self.model
        net.eval()
        preds, truth = [], []
        loss = torch.zeros(1, dtype=torch.float64, device=self.rt.device)
        for images, rows in loader:
            with self.rt.autocast():
                out = net(self.rt.prepare(images))
            rows = rows.to(self.rt.device)
            loss += self.chunk_loss(out, rows)[0].double()
            preds.append(out.float())
            truth.append(self.scores[rows])
        p, y = torch.cat(preds).double(), torch.cat(truth).double()
        err = p - y
        sums = torch.stack(
            [
                err.pow(2).sum(0),
                err.abs().sum(0),
                y.sum(0),
                y.pow(2).sum(0),
                loss.expand(len(targets)),
            ]
        )
        count = torch.tensor([float(len(y))], dtype=torch.float64, device=y.device)
        if self.rt.ddp:
            torch.distributed.all_reduce(sums)
            torch.distributed.all_reduce(count)
        n = float(count.clamp(min=1))
        sse, sae, sy, syy, sloss = sums
        sst = (syy - sy * sy / n).clamp(min=1e-12)
        return Scores(
            targets=targets,
            mse=(sse / n).tolist(),
            mae=(sae / n).tolist(),
            r2=(1 - sse / sst).tolist(),
            loss=float(sloss[0] / n),
            predictions=p.float().cpu(),
            truth=y.float().cpu(),
        )
