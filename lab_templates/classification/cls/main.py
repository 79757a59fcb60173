"""train.py's program: data, model, epochs, checkpoints, export, test report."""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from .checkpoint import atomic_save, load_checkpoint, load_initial_weights, save_checkpoint
from .config import parse_args, to_dict
from .data import DatasetLayoutError
from .distributed import DistInfo, cleanup, init_distributed, maybe_relaunch
from .engine import Runtime, Trainer, make_optimizer, make_scheduler
from .export import export_onnx, model_meta, save_model
from .models import Classifier, build_network
from .pipeline import DataBundle, build_data
from .reporting import Reporter, model_summary, per_class_accuracy, write_test_report
from .stopping import EXIT_CODE, GracefulStop, StopRequested, stop_message


@dataclass
class RunState:
    """What changes from epoch to epoch (and is restored by --resume)."""

    epoch: int = 0
    global_step: int = 0
    best_acc: float = -1.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup_runtime(args: argparse.Namespace, dist: DistInfo) -> Runtime:
    """Pick the device; on GPU enable cudnn.benchmark, TF32, bf16 autocast, channels_last."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but no CUDA device is available")
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if not cuda:
        return Runtime(torch.device("cpu"), ddp=dist.enabled)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return Runtime(
        torch.device("cuda", dist.local_rank),
        amp=args.amp,
        channels_last=args.channels_last,
        ddp=dist.enabled,
    )


def build_model(args: argparse.Namespace, data: DataBundle, rep: Reporter) -> Classifier:
    """Seeded init, optional initial weights, recomputing switch."""
    torch.manual_seed(args.seed)
    try:
        net = build_network(args.network, data.channels, len(data.classes), args.image_size)
        if args.weights:
            load_initial_weights(net, Path(args.weights), rep.log)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"error: {exc}") from exc
    model = Classifier(net, data.mean, data.std)
    model.recompute = args.memory_saving_method == "recomputing"
    return model


def wrap_model(
    model: nn.Module, args: argparse.Namespace, rt: Runtime, dist: DistInfo
) -> tuple[nn.Module, nn.Module]:
    """(model to train: compiled and/or DDP-wrapped, model to evaluate)."""
    compiled = cast(nn.Module, torch.compile(model)) if args.compile else model
    if not dist.enabled:
        return compiled, compiled
    ids = [rt.device.index] if rt.device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel(compiled, device_ids=ids)
    return ddp, compiled


def resume_state(
    args: argparse.Namespace,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    rep: Reporter,
) -> RunState:
    """Restore from --resume (``auto``: <output_dir>/checkpoint.pt when it exists)."""
    if not args.resume:
        return RunState()
    path = Path(args.output_dir) / "checkpoint.pt" if args.resume == "auto" else Path(args.resume)
    if args.resume == "auto" and not path.is_file():
        rep.log(f"Resume: no checkpoint at {path}; starting from scratch")
        return RunState()
    ckpt = load_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler)
    saved = ckpt.get("args", {}).get("num_epoch")
    if saved is not None and saved != args.num_epoch:
        rep.log(
            f"Resume: warning: checkpoint was for num_epoch={saved}, now {args.num_epoch}; "
            f"the lr schedule continues from the checkpoint's state"
        )
    rep.log(f"Resume: continuing after epoch {ckpt['epoch']} from {path}")
    return RunState(ckpt["epoch"], ckpt["global_step"], ckpt["best_acc"])


def train_epochs(
    args: argparse.Namespace,
    trainer: Trainer,
    data: DataBundle,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: RunState,
    rep: Reporter,
    save: Any,
    stopper: GracefulStop | None = None,
) -> None:
    """The epoch loop: train, validate, checkpoint, keep the best.

    With ``stopper``, a SIGTERM leaves at the next step boundary (or right after the
    epoch's checkpoint) by raising :class:`StopRequested` with the stop message.
    """
    steps = len(data.train)
    steps = min(steps, args.max_steps_per_epoch) if args.max_steps_per_epoch else steps

    def on_log(step: int, loss: float, acc: float, rate: float) -> None:
        lr = trainer.optimizer.param_groups[0]["lr"]
        rep.metrics("Train", "step", step, loss=loss, acc=acc, lr=lr)
        in_epoch = min(step - state.global_step, steps)  # steps done in this epoch
        rep.progress(state.epoch + 1, args.num_epoch, in_epoch, steps)

    last = args.num_epoch
    if args.max_epochs_this_run:
        last = min(last, state.epoch + args.max_epochs_this_run)
    if state.epoch < last:  # where training starts: the platform's ETA measures from here
        rep.progress(state.epoch + 1, args.num_epoch, 0, steps)
    for epoch in range(state.epoch, last):
        data.train.set_epoch(epoch)
        started = time.perf_counter()
        try:
            done, loss, acc, seen = trainer.train_one_epoch(
                data.train,
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
        rep.log(
            f"Epoch {state.epoch}/{args.num_epoch}: train loss {loss:.4f} acc {acc:.4f}, "
            f"{seconds:.1f} s, {seen / max(seconds, 1e-9):.0f} images/s"
        )
        val_acc = acc
        if data.val is not None:
            val_loss, val_acc, _ = trainer.evaluate(data.val, len(data.classes))
            rep.metrics("Validation", "epoch", state.epoch, loss=val_loss, acc=val_acc)
        rep.progress(state.epoch, args.num_epoch, steps, steps)
        save(state, val_acc)
        if stopper is not None and state.epoch < last and stopper.stop_now():
            raise StopRequested(stop_message(state.epoch, args.num_epoch, mid_epoch=False))


def finish(
    args: argparse.Namespace,
    model: Classifier,
    eval_model: nn.Module,
    trainer: Trainer,
    data: DataBundle,
    meta: dict[str, Any],
    state: RunState,
    rep: Reporter,
    dist: DistInfo,
) -> dict[str, Any]:
    """model.pt, model.onnx, and the test-set report."""
    out = Path(args.output_dir)
    if dist.main:
        save_model(out / "model.pt", model, meta)
        export_onnx(model, out / "model.onnx", data.channels, args.image_size)
        rep.log(f"Saved {out / 'model.pt'} and {out / 'model.onnx'} (onnx.checker passed)")
    if data.test is None:
        rep.log("Test: no test/ folder in the dataset; skipping the test evaluation")
        return {}
    loss, acc, matrix = trainer.evaluate(data.test, len(data.classes), eval_model)
    rep.metrics("Test", "epoch", state.epoch, acc=acc, loss=loss)
    if not dist.main:
        return {}
    report = write_test_report(out, matrix, data.classes, loss, acc)
    rep.log("Per-class test accuracy:")
    for name, value in zip(data.classes, per_class_accuracy(matrix), strict=True):
        rep.log(f"  {name}: {value:.4f}")
        if rep.writer is not None:
            rep.writer.add_scalar(f"Test/acc_class_{name}", value, state.epoch)
    rep.image("Test/confusion_matrix", out / "confusion_matrix.png", state.epoch)
    return report


def run(args: argparse.Namespace, dist: DistInfo) -> dict[str, Any]:
    """Train as the flags say; returns the test report (empty without test/)."""
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep = Reporter(out / "tensorboard" if dist.main else None, enabled=dist.main)
    try:
        return _run(args, dist, rep, out)
    finally:
        rep.close()


def _run(args: argparse.Namespace, dist: DistInfo, rep: Reporter, out: Path) -> dict[str, Any]:
    seed_everything(args.seed)
    rt = setup_runtime(args, dist)
    data = build_data(
        data_dir=args.data_dir,
        image_size=args.image_size,
        batch_size=args.batch_size,
        seed=args.seed,
        val_fraction=args.val_fraction,
        channels=args.channels,
        cache_max_mb=args.cache_max_mb,
        workers=args.workers,
        dist=dist,
        device=rt.device,
    )
    rep.log(
        f"Data: {args.data_dir}: {len(data.classes)} classes, {data.channels} channel(s), "
        f"{', '.join(f'{k} {v}' for k, v in data.sizes.items())} images, "
        f"{'decoded into memory' if data.in_memory else 'streamed from disk'}; "
        f"device {rt.device}, {dist.world} process(es)"
    )
    model = build_model(args, data, rep)
    example = torch.zeros(1, data.channels, args.image_size, args.image_size)
    rep.log(model_summary(model, example, depth=3))
    model.to(rt.device)
    if rt.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = make_optimizer(model, args.optimizer, args.lr, args.weight_decay)
    scheduler = make_scheduler(optimizer, args.lr_schedule, args.num_epoch)
    state = resume_state(args, model, optimizer, scheduler, rep)
    train_model, eval_model = wrap_model(model, args, rt, dist)
    trainer = Trainer(
        train_model,
        optimizer,
        rt,
        small_chunk=args.small_chunk,
        aug=args.aug_list,
        seed=args.seed,
        rank=dist.rank,
    )
    meta = model_meta(
        network=args.network,
        in_channels=data.channels,
        classes=data.classes,
        image_size=args.image_size,
        mean=data.mean,
        std=data.std,
        args=to_dict(args),
    )
    if state.epoch == 0:
        rep.images("Train/samples", data.samples[: args.sample_images])

    def save(st: RunState, val_acc: float) -> None:
        if not dist.main:
            return
        if val_acc > st.best_acc:
            st.best_acc = val_acc
            atomic_save(
                {"model": model.state_dict(), **meta, "epoch": st.epoch, "val_acc": val_acc},
                out / "best.pt",
            )
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
