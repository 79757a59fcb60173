"""train.py's program: data, UNet, epochs, checkpoints, export, test report, overlays.

The run's skeleton (seeding, runtime, DDP wrapping, --resume, SIGTERM) is the
classification template's (``cls.main``, ``cls.stopping``); what differs is the data
(image + mask pairs), the loss and the Dice / IoU metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from cls.checkpoint import atomic_save, save_checkpoint
from cls.data import DatasetLayoutError
from cls.distributed import DistInfo, cleanup, init_distributed, maybe_relaunch
from cls.engine import make_optimizer, make_scheduler
from cls.export import export_onnx, save_model
from cls.main import RunState, resume_state, seed_everything, setup_runtime, wrap_model
from cls.models import Classifier
from cls.reporting import Reporter, model_summary
from cls.stopping import EXIT_CODE, GracefulStop, StopRequested, stop_message

from .config import parse_args
from .engine import SegTrainer, Tally
from .export import build_model, seg_meta, write_config
from .metrics import class_scores
from .overlay import overlay_colours, panels_tensor, write_overlays
from .pipeline import SegData, build_data

Saver = Callable[[RunState, float], None]


def train_epochs(
    args: argparse.Namespace,
    trainer: SegTrainer,
    data: SegData,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: RunState,
    rep: Reporter,
    save: Saver,
    stopper: GracefulStop | None = None,
) -> None:
    """The epoch loop: train, validate (metrics + TensorBoard previews), checkpoint."""
    train = data.loaders["train"]
    steps = len(train)
    steps = min(steps, args.max_steps_per_epoch) if args.max_steps_per_epoch else steps

    def on_log(step: int, loss: float, dice: float, iou: float) -> None:
        lr = trainer.optimizer.param_groups[0]["lr"]
        rep.metrics("Train", "step", step, loss=loss, dice=dice, iou=iou, lr=lr)
        rep.progress(state.epoch + 1, args.num_epoch, min(step - state.global_step, steps), steps)

    last = args.num_epoch
    if args.max_epochs_this_run:
        last = min(last, state.epoch + args.max_epochs_this_run)
    if state.epoch < last:  # where training starts: the platform's ETA measures from here
        rep.progress(state.epoch + 1, args.num_epoch, 0, steps)
    for epoch in range(state.epoch, last):
        train.set_epoch(epoch)
        started = time.perf_counter()
        try:
            done, tally = trainer.train_one_epoch(
                train,
                epoch,
                log_every=args.log_every,
                max_steps=args.max_steps_per_epoch,
                start_step=state.global_step,
                on_log=on_log,
                should_stop=stopper.should_stop if stopper else None,
            )
        except StopRequested:
            raise StopRequested(stop_message(epoch, args.num_epoch, mid_epoch=True)) from None
        seconds = time.perf_counter() - started
        state.global_step += done
        scheduler.step()
        state.epoch = epoch + 1
        loss, dice, iou = tally.read()
        rep.log(
            f"Epoch {state.epoch}/{args.num_epoch}: train loss {loss:.4f} dice {dice:.4f} "
            f"iou {iou:.4f}, {seconds:.1f} s, {tally.images / max(seconds, 1e-9):.0f} images/s"
        )
        score = validate(args, trainer, data, state.epoch, rep) if "val" in data.loaders else dice
        rep.progress(state.epoch, args.num_epoch, steps, steps)
        save(state, score)
        if stopper is not None and state.epoch < last and stopper.stop_now():
            raise StopRequested(stop_message(state.epoch, args.num_epoch, mid_epoch=False))


def validate(
    args: argparse.Namespace, trainer: SegTrainer, data: SegData, epoch: int, rep: Reporter
) -> float:
    """Validation metric line, a few prediction panels in TensorBoard; returns the Dice."""
    loss, dice, iou = trainer.evaluate(data.loaders["val"]).read()
    rep.metrics("Validation", "epoch", epoch, loss=loss, dice=dice, iou=iou)
    if rep.writer is not None and args.sample_images > 0:
        images, masks = (t[: args.sample_images] for t in data.tensors["val"])
        preds = trainer.predict(images, args.batch_size)
        colours = overlay_colours(data.palette, data.mask_mode)
        rep.images("Validation/predictions", panels_tensor(images, masks, preds, colours), epoch)
    return dice


def test_report(
    args: argparse.Namespace,
    trainer: SegTrainer,
    eval_model: torch.nn.Module,
    data: SegData,
    tally: Tally,
    rep: Reporter,
) -> dict[str, Any]:
    """test_report.json, per-class scores, overlays/ of the first test images."""
    out = Path(args.output_dir)
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
    preds = trainer.predict(images, args.batch_size, eval_model)
    colours = overlay_colours(data.palette, data.mask_mode)
    paths = write_overlays(out / "overlays", images, masks, preds, data.names["test"][:n], colours)
    rep.log(f"Overlays: {len(paths)} PNG(s) (image | truth | prediction) in {out / 'overlays'}")
    return report


def finish(
    args: argparse.Namespace,
    model: Classifier,
    eval_model: torch.nn.Module,
    trainer: SegTrainer,
    data: SegData,
    meta: dict[str, Any],
    state: RunState,
    rep: Reporter,
    dist: DistInfo,
) -> dict[str, Any]:
    """model.pt, config.yml, model.onnx, the Test line and the test report."""
    out = Path(args.output_dir)
    if dist.main:
        save_model(out / "model.pt", model, meta)
        write_config(out / "config.yml", meta)
        export_onnx(model, out / "model.onnx", data.channels, args.image_size)
        rep.log(f"Saved {out / 'model.pt'}, {out / 'config.yml'} and {out / 'model.onnx'}")
    if "test" not in data.loaders:
        rep.log("Test: no test/ folder in the dataset; skipping the test evaluation")
        return {}
    tally = trainer.evaluate(data.loaders["test"], eval_model)
    loss, dice, iou = tally.read()
    rep.metrics("Test", "epoch", state.epoch, loss=loss, dice=dice, iou=iou)
    return test_report(args, trainer, eval_model, data, tally, rep) if dist.main else {}


def make_saver(
    args: argparse.Namespace,
    model: Classifier,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    meta: dict[str, Any],
    dist: DistInfo,
) -> Saver:
    """Per-epoch checkpoint.pt (exact resume) and best.pt (best validation Dice)."""
    out = Path(args.output_dir)

    def save(st: RunState, dice: float) -> None:
        if not dist.main:
            return
        if dice > st.best_acc:
            st.best_acc = dice
            best = {"model": model.state_dict(), **meta, "epoch": st.epoch, "val_dice": dice}
            atomic_save(best, out / "best.pt")
        save_checkpoint(
            out / "checkpoint.pt",
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            epoch=st.epoch,
            global_step=st.global_step,
            best_acc=st.best_acc,
            meta=meta,
        )

    return save


def run(args: argparse.Namespace, dist: DistInfo) -> dict[str, Any]:
    """Train as the flags say; returns the test report (empty without test/)."""
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep = Reporter(out / "tensorboard" if dist.main else None, enabled=dist.main)
    try:
        return _run(args, dist, rep)
    finally:
        rep.close()


def _run(args: argparse.Namespace, dist: DistInfo, rep: Reporter) -> dict[str, Any]:
    seed_everything(args.seed)
    rt = setup_runtime(args, dist)
    data = build_data(
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
    rep.log(
        f"Data: {args.data_dir}: {data.mask_mode} masks, {len(data.classes)} classes "
        f"({', '.join(data.classes)}), {data.channels} channel(s), "
        f"{', '.join(f'{k} {v}' for k, v in data.sizes.items())} images; "
        f"device {rt.device}, {dist.world} process(es)"
    )
    meta = seg_meta(
        network=args.network,
        in_channels=data.channels,
        classes=data.classes,
        image_size=args.image_size,
        mean=data.mean,
        std=data.std,
        palette=data.palette,
        mask_mode=data.mask_mode,
        args=dict(vars(args)),
    )
    torch.manual_seed(args.seed)
    try:
        model = build_model(meta)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from exc
    example = torch.zeros(1, data.channels, args.image_size, args.image_size)
    rep.log(model_summary(model, example, depth=3))
    model.to(rt.device)
    if rt.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, args.optimizer, args.lr, args.weight_decay)
    scheduler = make_scheduler(optimizer, args.lr_schedule, args.num_epoch)
    state = resume_state(args, model, optimizer, scheduler, rep)
    train_model, eval_model = wrap_model(model, args, rt, dist)
    trainer = SegTrainer(
        train_model,
        optimizer,
        rt,
        len(data.classes),
        loss=args.loss,
        aug=args.aug_list,
        seed=args.seed,
        rank=dist.rank,
    )
    if state.epoch == 0:
        rep.images("Train/samples", data.tensors["train"][0][: args.sample_images])
    save = make_saver(args, model, optimizer, scheduler, meta, dist)
    with GracefulStop(distributed=dist.enabled, device=rt.device, every=args.log_every) as stop:
        train_epochs(args, trainer, data, scheduler, state, rep, save, stop)
    if state.epoch < args.num_epoch:
        rep.log(
            f"Stopped after epoch {state.epoch} of {args.num_epoch} "
            f"(--max_epochs_this_run); continue with --resume"
        )
        return {}
    return finish(args, model, eval_model, trainer, data, meta, state, rep, dist)


def main(argv: Sequence[str] | None = None, script: str | None = None) -> int:
    """Entry point of train.py; returns the exit status."""
    args = parse_args(argv)
    if script is not None:
        maybe_relaunch(args.ddp, args.device, list(sys.argv[1:] if argv is None else argv), script)
    dist = init_distributed(args.device)
    try:
        run(args, dist)
    except (DatasetLayoutError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except StopRequested as stop:
        if dist.main:
            print(stop, flush=True)
        return EXIT_CODE
    finally:
        cleanup(dist)
    return 0
