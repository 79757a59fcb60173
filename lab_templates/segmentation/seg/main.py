"""train.py's program: the segmentation :class:`~cls.runner.Task` (image + mask pairs, a
UNet, Dice / IoU, overlays) run by the classification template's :mod:`cls.runner`
(seeding, runtime, DDP, --resume, SIGTERM, per-epoch checkpoints, progress lines)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from cls.models import Classifier
from cls.runner import EpochResult, StepLog, Task, run_main
from torch import nn

from .config import parse_args
from .engine import SegTrainer, Tally
from .export import build_model, seg_meta, write_config
from .metrics import class_scores
from .overlay import overlay_colours, panels_tensor, write_overlays
from .pipeline import build_data


class SegmentationTask(Task):
    """images/ + masks/ per split, a UNet, Dice and IoU; best.pt keeps the best val Dice."""

    best_key = "val_dice"
    model: Classifier

    def setup(self) -> None:
        args, dist, rt = self.args, self.dist, self.rt
        self.data = data = build_data(
            data_dir=args.data_dir,
            image_size=args.image_size,
            batch_size=args.batch_size,
            seed=args.seed,
            val_fraction=args.val_fraction,
            channels=args.channels,
            mask_mode=args.mask_mode,
            dist=dist,
            device=rt.device,
        )
        self.channels = data.channels
        what = f"{data.mask_mode} masks, {len(data.classes)} classes ({', '.join(data.classes)})"
        self.log_data(what, data.sizes)
        self.meta = seg_meta(args, data)
        torch.manual_seed(args.seed)
        try:
            self.model = build_model(self.meta)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from exc
        self.train_loader = data.loaders["train"]
        self.samples = data.tensors["train"][0]
        self.colours = overlay_colours(data.palette, data.mask_mode)

    def start(self, train_model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        args = self.args
        self.trainer = SegTrainer(
            train_model,
            optimizer,
            self.rt,
            len(self.data.classes),
            loss=args.loss,
            **self.trainer_options(),
        )

    def train_epoch(
        self, epoch: int, start_step: int, on_log: StepLog, should_stop: Callable[[int], bool]
    ) -> EpochResult:
        def log(step: int, loss: float, dice: float, iou: float) -> None:
            on_log(step, {"loss": loss, "dice": dice, "iou": iou})

        done, tally = self.trainer.train_one_epoch(
            self.data.loaders["train"],
            epoch,
            log_every=self.args.log_every,
            max_steps=self.args.max_steps_per_epoch,
            start_step=start_step,
            on_log=log,
            should_stop=should_stop,
        )
        loss, dice, iou = tally.read()
        return EpochResult(done, tally.images, {"loss": loss, "dice": dice, "iou": iou}, dice)

    def validate(self, epoch: int) -> float | None:
        """Validation metric line, a few prediction panels in TensorBoard; the Dice."""
        args, data, rep = self.args, self.data, self.rep
        if "val" not in data.loaders:
            return None
        loss, dice, iou = self.trainer.evaluate(data.loaders["val"]).read()
        rep.metrics("Validation", "epoch", epoch, loss=loss, dice=dice, iou=iou)
        if rep.writer is not None and args.sample_images > 0:
            images, masks = (t[: args.sample_images] for t in data.tensors["val"])
            preds = self.trainer.predict(images, args.batch_size)
            panels = panels_tensor(images, masks, preds, self.colours)
            rep.images("Validation/predictions", panels, epoch)
        return dice

    def save(self, out: Path) -> None:
        """model.pt, model.onnx and config.yml (what predict.py rebuilds the model from)."""
        write_config(out / "config.yml", self.meta)
        super().save(out)
        self.rep.log(f"Saved {out / 'config.yml'} (what predict.py --config reads)")

    def test(self, eval_model: nn.Module, epoch: int) -> dict[str, Any]:
        if "test" not in self.data.loaders:
            self.rep.log("Test: no test/ folder in the dataset; skipping the test evaluation")
            return {}
        tally = self.trainer.evaluate(self.data.loaders["test"], eval_model)
        loss, dice, iou = tally.read()
        self.rep.metrics("Test", "epoch", epoch, loss=loss, dice=dice, iou=iou)
        return self.report(eval_model, tally) if self.dist.main else {}

    def report(self, eval_model: nn.Module, tally: Tally) -> dict[str, Any]:
        """test_report.json, per-class scores, overlays/ of the first test images."""
        args, data, rep, out = self.args, self.data, self.rep, Path(self.args.output_dir)
        loss, dice, iou = tally.read()
        per_dice, per_iou = class_scores(tally.matrix.cpu())
        report = {
            "dice": dice,
            "iou": iou,
            "loss": loss,
            "classes": data.classes,
            "per_class_dice": dict(zip(data.classes, per_dice, strict=True)),
            "per_class_iou": dict(zip(data.classes, per_iou, strict=True)),
            "pixel_confusion_matrix": tally.matrix.view(len(data.classes), -1).tolist(),
            "images": tally.images,
        }
        (out / "test_report.json").write_text(json.dumps(report, indent=2))
        rep.log("Per-class test Dice / IoU:")
        for name, d, i in zip(data.classes, per_dice, per_iou, strict=True):
            rep.log(f"  {name}: {d:.4f} / {i:.4f}")
        n = max(0, args.overlay_images)
        images, masks = (t[:n] for t in data.tensors["test"])
        preds = self.trainer.predict(images, args.batch_size, eval_model)
        names = data.names["test"][:n]
        paths = write_overlays(out / "overlays", images, masks, preds, names, self.colours)
        rep.log(f"Overlays: {len(paths)} PNG(s) (image | truth | prediction) in {out / 'overlays'}")
        return report


def main(argv: Sequence[str] | None = None, script: str | None = None) -> int:
    """Entry point of train.py; returns the exit status."""
    return run_main(parse_args, SegmentationTask, argv, script)
