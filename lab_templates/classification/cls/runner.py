"""The run every template shares, around a :class:`Task` that holds what differs.

:func:`run_main` is a train.py's ``main``: parse, relaunch under torchrun, run, map
errors and SIGTERM to exit codes. :func:`run_task` seeds, picks the device, lets the
task build its data and model, restores ``--resume``, then trains epoch by epoch
(progress and metric lines, TensorBoard, checkpoint.pt and best.pt after every
epoch, SIGTERM leaving at a step boundary) and ends with the task's exports and test
report. A task only says how to build, train one epoch, validate, save and test.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, cast

import numpy as np
import torch
from torch import nn

from .checkpoint import atomic_save, load_checkpoint, save_checkpoint
from .data import DatasetLayoutError
from .distributed import DistInfo, cleanup, exit_rank, init_distributed, maybe_relaunch
from .engine import Runtime, make_optimizer, make_scheduler
from .export import export_onnx, save_model
from .lines import epoch_line
from .reporting import Reporter, model_summary
from .stopping import EXIT_CODE, GracefulStop, StopRequested, stop_message


@dataclass
class RunState:
    """What changes from epoch to epoch (and is restored by --resume)."""

    epoch: int = 0
    global_step: int = 0
    best_acc: float = -1.0


@dataclass
class EpochResult:
    """One training epoch as a task reports it."""

    steps: int  # optimizer steps done
    images: int  # images trained on
    metrics: dict[str, float]  # the Epoch line's train values, in order (loss first)
    score: float  # what best.pt keeps the best of when there is no validation split


StepLog = Callable[[int, dict[str, float]], None]


class Batches(Protocol):
    """A training loader: batches per epoch, reshuffled by :meth:`set_epoch`."""

    def set_epoch(self, epoch: int) -> None: ...

    def __len__(self) -> int: ...


class Task(ABC):
    """The per-task pieces of a run. Construction runs :meth:`setup` (data, model);
    :func:`run_task` then calls :meth:`start`, per epoch :meth:`train_epoch` and
    :meth:`validate`, and at the end :meth:`save` (main rank) and :meth:`test`."""

    best_key: ClassVar[str] = "val_acc"  # the score's name in best.pt
    initial_best: ClassVar[float] = -1.0  # best score before the first epoch
    model: nn.Module  # the bare model: checkpointed, saved, exported
    channels: int  # input channels
    meta: dict[str, Any]  # what model.pt, best.pt and checkpoint.pt record besides weights
    samples: torch.Tensor  # uint8 training images for TensorBoard
    train_loader: Batches

    def __init__(
        self, args: argparse.Namespace, dist: DistInfo, rt: Runtime, rep: Reporter
    ) -> None:
        self.args, self.dist, self.rt, self.rep = args, dist, rt, rep
        self.setup()

    @abstractmethod
    def setup(self) -> None:
        """Build the data (and log the Data line with :meth:`log_data`), the seeded model
        and the meta."""

    def trainer_options(self) -> dict[str, Any]:
        """The keyword arguments every trainer takes: augmentation, seed, rank."""
        return {"aug": self.args.aug_list, "seed": self.args.seed, "rank": self.dist.rank}

    def log_data(self, what: str, sizes: dict[str, int], in_memory: bool | None = None) -> None:
        """The Data line: the folder, ``what`` it holds, split sizes, memory or disk, device."""
        memory = {None: "", True: ", decoded into memory", False: ", streamed from disk"}
        self.rep.log(
            f"Data: {self.args.data_dir}: {what}, {self.channels} channel(s), "
            f"{', '.join(f'{k} {v}' for k, v in sizes.items())} images{memory[in_memory]}; "
            f"device {self.rt.device}, {self.dist.world} process(es)"
        )

    @abstractmethod
    def start(self, train_model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Build the trainer around the (compiled / DDP-wrapped) model to train."""

    @abstractmethod
    def train_epoch(
        self, epoch: int, start_step: int, on_log: StepLog, should_stop: Callable[[int], bool]
    ) -> EpochResult:
        """Train one epoch; ``on_log(global_step, values)`` every ``--log_every`` steps."""

    @abstractmethod
    def validate(self, epoch: int) -> float | None:
        """Print the Validation line; the score for best.pt, None without a validation split."""

    def save(self, out: Path) -> None:
        """Write model.pt and model.onnx (and whatever else predict.py needs), and say so."""
        save_model(out / "model.pt", self.model, self.meta)
        export_onnx(self.model, out / "model.onnx", self.channels, self.args.image_size)
        self.rep.log(f"Saved {out / 'model.pt'} and {out / 'model.onnx'} (onnx.checker passed)")

    @abstractmethod
    def test(self, eval_model: nn.Module, epoch: int) -> dict[str, Any]:
        """The Test line and, on the main rank, the test report (empty without a test split)."""


TaskFactory = Callable[[argparse.Namespace, DistInfo, Runtime, Reporter], Task]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
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


@dataclass
class Loop:
    """What the epoch loop drives: the task, its optimizer and schedule, where it stands."""

    args: argparse.Namespace
    task: Task
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    state: RunState
    rep: Reporter

    def save(self, score: float) -> None:
        """checkpoint.pt (exact resume) and, when ``score`` is the best yet, best.pt."""
        if not self.task.dist.main:
            return
        out, st, task = Path(self.args.output_dir), self.state, self.task
        if score > st.best_acc:
            st.best_acc = score
            best = {"model": task.model.state_dict(), **task.meta, "epoch": st.epoch}
            atomic_save({**best, task.best_key: score}, out / "best.pt")
        save_checkpoint(
            out / "checkpoint.pt",
            model=task.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            epoch=st.epoch,
            global_step=st.global_step,
            best_acc=st.best_acc,
            meta=task.meta,
        )

    def train(self, stopper: GracefulStop) -> None:
        """The epoch loop: train, validate, checkpoint, keep the best; a SIGTERM leaves at
        the next step boundary (or right after the epoch's checkpoint) by raising
        :class:`StopRequested` with the stop message."""
        args, state, rep, task = self.args, self.state, self.rep, self.task
        steps = len(task.train_loader)
        steps = min(steps, args.max_steps_per_epoch) if args.max_steps_per_epoch else steps

        def on_log(step: int, values: dict[str, float]) -> None:
            lr = self.optimizer.param_groups[0]["lr"]
            rep.metrics("Train", "step", step, **values, lr=lr)
            in_epoch = min(step - state.global_step, steps)  # steps done in this epoch
            rep.progress(state.epoch + 1, args.num_epoch, in_epoch, steps)

        last = args.num_epoch
        if args.max_epochs_this_run:
            last = min(last, state.epoch + args.max_epochs_this_run)
        if state.epoch < last:  # where training starts: the platform's ETA measures from here
            rep.progress(state.epoch + 1, args.num_epoch, 0, steps)
        for epoch in range(state.epoch, last):
            task.train_loader.set_epoch(epoch)
            started = time.perf_counter()
            try:
                result = task.train_epoch(epoch, state.global_step, on_log, stopper.should_stop)
            except StopRequested:
                raise StopRequested(stop_message(epoch, args.num_epoch, mid_epoch=True)) from None
            seconds = time.perf_counter() - started
            state.global_step += result.steps
            self.scheduler.step()
            state.epoch = epoch + 1
            rep.log(epoch_line(state.epoch, args.num_epoch, result.metrics, seconds, result.images))
            score = task.validate(state.epoch)
            rep.progress(state.epoch, args.num_epoch, steps, steps)
            self.save(result.score if score is None else score)
            if state.epoch < last and stopper.stop_now():
                raise StopRequested(stop_message(state.epoch, args.num_epoch, mid_epoch=False))


def run_task(args: argparse.Namespace, dist: DistInfo, make_task: TaskFactory) -> dict[str, Any]:
    """Train as the flags say; returns the test report (empty without a test split)."""
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep = Reporter(out / "tensorboard" if dist.main else None, enabled=dist.main)
    try:
        return _run(args, dist, rep, make_task)
    finally:
        rep.close()


def _run(
    args: argparse.Namespace, dist: DistInfo, rep: Reporter, make_task: TaskFactory
) -> dict[str, Any]:
    seed_everything(args.seed)
    rt = setup_runtime(args, dist)
    task = make_task(args, dist, rt, rep)
    model = task.model
    example = torch.zeros(1, task.channels, args.image_size, args.image_size)
    rep.log(model_summary(model, example, depth=3))
    model.to(rt.device)
    if rt.channels_last:
        cast(Any, model).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, args.optimizer, args.lr, args.weight_decay)
    scheduler = make_scheduler(optimizer, args.lr_schedule, args.num_epoch)
    state = resume_state(args, model, optimizer, scheduler, rep)
    if state.epoch == 0:
        state.best_acc = task.initial_best
    train_model, eval_model = wrap_model(model, args, rt, dist)
    task.start(train_model, optimizer)
    if state.epoch == 0:
        rep.images("Train/samples", task.samples[: args.sample_images])
    loop = Loop(args, task, optimizer, scheduler, state, rep)
    with GracefulStop(distributed=dist.enabled, device=rt.device, every=args.log_every) as stop:
        loop.train(stop)
    if state.epoch < args.num_epoch:
        rep.log(
            f"Stopped after epoch {state.epoch} of {args.num_epoch} "
            f"(--max_epochs_this_run); continue with --resume"
        )
        return {}
    if dist.main:
        task.save(Path(args.output_dir))
    return task.test(eval_model, state.epoch)


def run_main(
    parse: Callable[[Sequence[str] | None], argparse.Namespace],
    make_task: TaskFactory,
    argv: Sequence[str] | None = None,
    script: str | None = None,
) -> int:
    """A train.py's entry point; returns the exit status (2: bad dataset, 143: SIGTERM)."""
    args = parse(argv)
    if script is not None:
        maybe_relaunch(args.ddp, args.device, list(sys.argv[1:] if argv is None else argv), script)
    dist = init_distributed(args.device)
    try:
        run_task(args, dist, make_task)
        code = 0
    except (DatasetLayoutError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        code = 2
    except StopRequested as stop:
        if dist.main:
            print(stop, flush=True)
        code = EXIT_CODE
    finally:
        cleanup(dist)
    return exit_rank(dist, code)
