"""Stop cleanly on SIGTERM (a user's stop, a quota, a pre-empted node).

The platform sends SIGTERM, then SIGKILL after a grace period. While
:class:`GracefulStop` is installed, SIGTERM only sets a flag; the training loop
asks :meth:`GracefulStop.should_stop` after each optimizer step and leaves at
that step boundary, well inside the grace period. What is kept is the checkpoint
of the last *completed* epoch (``checkpoint.pt``, written at every epoch's end):
``--resume auto`` continues from it bit-exactly, as after any epoch-boundary
resume; the steps of the interrupted epoch are redone. The process then exits
with :data:`EXIT_CODE` (143 = 128 + SIGTERM, what a process killed by SIGTERM
reports) after printing :func:`stop_message`.

Under DDP every rank gets the signal (torchrun forwards it), but not at the same
step; ranks agree by all-reducing the flag every ``every`` steps, so they all
leave at the same step and no collective is left waiting.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

import torch

EXIT_CODE = 143


class StopRequested(Exception):
    """Raised by a training program to unwind after a SIGTERM; ``main`` exits with
    :data:`EXIT_CODE` after printing the exception's message."""


class GracefulStop:
    """A context manager: SIGTERM sets :attr:`requested` instead of killing us."""

    def __init__(
        self,
        *,
        distributed: bool = False,
        device: torch.device | None = None,
        every: int = 10,
    ) -> None:
        self.requested = False
        self.distributed, self.every = distributed, max(1, every)
        self.device = device or torch.device("cpu")
        self._previous: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():  # signal's requirement
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def stop_now(self) -> bool:
        """The flag, agreed by all ranks under DDP (a collective: call it on every rank)."""
        if not self.distributed:
            return self.requested
        flag = torch.tensor([1.0 if self.requested else 0.0], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        self.requested = bool(flag.item())
        return self.requested

    def should_stop(self, step: int) -> bool:
        """True when the loop should leave after step ``step`` (1-based, in the epoch).

        Single process: as soon as the flag is set. DDP: the flags of all ranks are
        all-reduced (max) every ``every`` steps, the same steps on every rank.
        """
        if self.distributed and step % self.every:
            return False
        return self.stop_now()


def stop_message(completed: int, num_epoch: int, *, mid_epoch: bool) -> str:
    """The line printed before exiting: where it stopped, what is kept, how to go on."""
    where = f"during epoch {completed + 1}" if mid_epoch else f"after epoch {completed}"
    kept = (
        f"checkpoint.pt holds epoch {completed}"
        + ("; the interrupted epoch's steps will be redone" if mid_epoch else "")
        if completed
        else "no epoch was completed, so a resume starts from scratch"
    )
    return (
        f"Stopped by SIGTERM {where} of {num_epoch}: {kept}. "
        f"Continue with --resume auto (exit code {EXIT_CODE})"
    )
