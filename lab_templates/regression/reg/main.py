"""train.py's program: CSV data, backbone + regression head, epochs, checkpoints, SIGTERM,
export, test report. Runtime set-up, resume, DDP and the stop hook are the
classification template's (``cls``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from cls.checkpoint import atomic_save, load_initial_weights, save_checkpoint
from cls.data import DatasetLayoutError
from cls.distributed import DistInfo, cleanup, init_distributed, maybe_relaunch
from cls.engine import make_optimizer, make_scheduler
from cls.export import export_onnx
from cls.main import RunState, resume_state, seed_everything, setup_runtime, wrap_model
from cls.models import build_network
from cls.reporting import Reporter, model_summary
from cls.stopping import EXIT_CODE, GracefulStop, StopRequested, stop_message

from .config import parse_args
from .data import RegData, build_data
from .engine import RegressionTrainer, Regressor
from .report import write_test_report

Save = Callable[[RunState, float], None]


def build_model(args: argparse.Namespace, data: RegData, rep: Reporter) -> Regressor:
    """Seeded backbone with K outputs, optional initial weights (heads re-initialised)."""
    torch.manual_seed(args.seed)
    try:
        net = build_network(args.network, data.channels, len(data.targets), args.image_size)
        if args.weights:
            load_initial_weights(net, Path(args.weights), rep.log)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"error: {exc}") from exc
    model = Regressor(net, data.mean, data.std, data.target_mean, data.target_std)
    model.recompute = args.memory_saving_method == "recomputing"
    return model


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
        "args": dict(vars(args)),
    }


def train_epochs(
    args: argparse.Namespace,
    trainer: RegressionTrainer,
    data: RegData,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: RunState,
    rep: Reporter,
    save: Save,
    stopper: GracefulStop,
) -> None:
    """Train, validate (MSE/MAE/R²), checkpoint, keep the best R²; SIGTERM stops."""
    loader = data.loaders["train"]
    steps = len(loader)
    steps = min(steps, args.max_steps_per_epoch) if args.max_steps_per_epoch else steps

    def on_log(step: int, loss: float, mae: float, rate: float) -> None:
        lr = trainer.optimizer.param_groups[0]["lr"]
        rep.metrics("Train", "step", step, loss=loss, mae=mae, lr=lr)
        rep.progress(state.epoch + 1, args.num_epoch, min(step - state.global_step, steps), steps)

    last = args.num_epoch
    if args.max_epochs_this_run:
        last = min(last, state.epoch + args.max_epochs_this_run)
    if state.epoch < last:
        rep.progress(state.epoch + 1, args.num_epoch, 0, steps)
    for epoch in range(state.epoch, last):
        loader.set_epoch(epoch)
        started = time.perf_counter()
        try:
            done, loss, mae, seen = trainer.train_one_epoch(
                loader,
                epoch,
                log_every=args.log_every,
                max_steps=args.max_steps_per_epoch,
                start_step=state.global_step,
                on_log=on_log,
                should_stop=stopper.should_stop,
            )
        except StopRequested:
            raise StopRequested(stop_message(epoch, args.num_epoch, mid_epoch=True)) from None
        seconds = time.perf_counter() - started
        state.global_step += done
        scheduler.step()
        state.epoch = epoch + 1
        rep.log(
            f"Epoch {state.epoch}/{args.num_epoch}: train loss {loss:.4f} mae {mae:.4f}, "
            f"{seconds:.1f} s, {seen / max(seconds, 1e-9):.0f} images/s"
        )
        quality = -loss
        if "val" in data.loaders:
            val = trainer.evaluate_scores(data.loaders["val"], data.targets)
            rep.metrics("Validation", "epoch", state.epoch, **val.line())
            quality = val.line()["r2"]
        rep.progress(state.epoch, args.num_epoch, steps, steps)
        save(state, quality)
        if state.epoch < last and stopper.stop_now():
            raise StopRequested(stop_message(state.epoch, args.num_epoch, mid_epoch=False))


def finish(
    args: argparse.Namespace,
    model: Regressor,
    trainer: RegressionTrainer,
    eval_model: torch.nn.Module,
    data: RegData,
    meta: dict[str, Any],
    state: RunState,
    rep: Reporter,
    dist: DistInfo,
) -> dict[str, Any]:
    """model.pt, model.onnx, Test metric line, scatter.png and test_metrics.json."""
    out = Path(args.output_dir)
    if dist.main:
        state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        atomic_save({"model": state_dict, **meta}, out / "model.pt")
        export_onnx(model, out / "model.onnx", data.channels, args.image_size)
        rep.log(f"Saved {out / 'model.pt'} and {out / 'model.onnx'} (onnx.checker passed)")
    if "test" not in data.loaders:
        rep.log("Test: no test.csv in the dataset; skipping the test evaluation")
        return {}
    scores = trainer.evaluate_scores(data.loaders["test"], data.targets, eval_model)
    rep.metrics("Test", "epoch", state.epoch, **scores.line())
    if not dist.main:
        return {}
    report = write_test_report(out, scores, data.test_paths)
    rep.image("Test/scatter", out / "scatter.png", state.epoch)
    rep.log(f"Wrote {out / 'scatter.png'} (predicted vs true) and {out / 'test_metrics.json'}")
    return report


def _run(args: argparse.Namespace, dist: DistInfo, rep: Reporter, out: Path) -> dict[str, Any]:
    seed_everything(args.seed)
    rt = setup_runtime(args, dist)
    data = build_data(args, dist, rt.device)
    rep.log(
        f"Data: {args.data_dir}: targets {', '.join(data.targets)}, {data.channels} channel(s), "
        f"{', '.join(f'{k} {v}' for k, v in data.sizes.items())} images, "
        f"{'decoded into memory' if data.in_memory else 'streamed from disk'}; "
        f"device {rt.device}, {dist.world} process(es)"
    )
    model = build_model(args, data, rep)
    example = torch.zeros(1, data.channels, args.image_size, args.image_size)
    rep.log(model_summary(model, example, depth=3))
    model.to(rt.device)
    if rt.channels_last:
        cast(Any, model).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, args.optimizer, args.lr, args.weight_decay)
    scheduler = make_scheduler(optimizer, args.lr_schedule, args.num_epoch)
    state = resume_state(args, model, optimizer, scheduler, rep)
    train_model, eval_model = wrap_model(model, args, rt, dist)
    trainer = RegressionTrainer(
        train_model, optimizer, rt, scores=data.scores, target_mean=data.target_mean,
        target_std=data.target_std, loss=args.loss, small_chunk=args.small_chunk,
        aug=args.aug_list, seed=args.seed, rank=dist.rank,
    )  # fmt: skip
    meta = model_meta(args, data)
    if state.epoch == 0:
        rep.images("Train/samples", data.samples[: args.sample_images])

    def save(st: RunState, quality: float) -> None:
        if not dist.main:
            return
        if quality > st.best_acc:
            st.best_acc = quality
            atomic_save(
                {"model": model.state_dict(), **meta, "epoch": st.epoch, "val_r2": quality},
                out / "best.pt",
            )
        save_checkpoint(
            out / "checkpoint.pt", model=model, optimizer=optimizer, scheduler=scheduler,
            epoch=st.epoch, global_step=st.global_step, best_acc=st.best_acc, meta=meta,
        )  # fmt: skip

    if state.epoch == 0:
        state.best_acc = -float("inf")  # R² can be negative
    with GracefulStop(distributed=dist.enabled, device=rt.device, every=args.log_every) as stop:
        train_epochs(args, trainer, data, scheduler, state, rep, save, stop)
    if state.epoch < args.num_epoch:
        rep.log(f"Stopped after epoch {state.epoch} of {args.num_epoch}; continue with --resume")
        return {}
    return finish(args, model, trainer, eval_model, data, meta, state, rep, dist)


def main(argv: Sequence[str] | None = None, script: str | None = None) -> int:
    """Entry point of train.py; returns the exit status."""
    args = parse_args(argv)
    if script is not None:
        maybe_relaunch(args.ddp, args.device, list(sys.argv[1:] if argv is None else argv), script)
    dist = init_distributed(args.device)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep = Reporter(out / "tensorboard" if dist.main else None, enabled=dist.main)
    try:
        _run(args, dist, rep, out)
    except (DatasetLayoutError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except StopRequested as stop:
        rep.log(str(stop))
        return EXIT_CODE
    finally:
        rep.close()
        cleanup(dist)
    return 0
