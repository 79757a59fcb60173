"""Multi-GPU: re-launch under torchrun and set up DistributedDataParallel.

``python train.py`` (the template's command) checks how many GPUs the job was
given (``CUDA_VISIBLE_DEVICES``); with more than one, and ``--ddp auto``, it
replaces itself by ``python -m torch.distributed.run --standalone
--nproc_per_node=N train.py <same flags>``, one process per GPU. Each process
trains on ``batch_size`` images per step, so the global batch is
``batch_size x N``. Launching under torchrun yourself works the same way.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def maybe_relaunch(ddp: str, device: str, argv: list[str], script: str) -> None:
    """With several visible GPUs and no torchrun around us, exec torchrun (no return)."""
    if ddp != "auto" or device == "cpu" or "LOCAL_RANK" in os.environ:
        return
    if not torch.cuda.is_available():
        return
    count = torch.cuda.device_count()
    if count < 2:
        return
    print(f"DDP: {count} GPUs visible, re-launching under torchrun", flush=True)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={count}",
        script,
        *argv,
    ]
    os.execv(sys.executable, cmd)


def init_distributed(device: str) -> DistInfo:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world < 2:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
    torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(rank, local, world)


def cleanup(info: DistInfo) -> None:
    """Leave the process group (every rank, at the end of a run)."""
    if info.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def exit_rank(info: DistInfo, code: int) -> int:
    """Under torchrun, end this rank's process now with ``code``; else return ``code``.

    ``destroy_process_group`` leaves gloo's worker threads running (PyTorch 2.13). One
    of them may still be releasing the tensors of the last all-reduce while Python
    finalizes; it then waits for the GIL, is cancelled and aborts the process
    ("terminate called without an active exception", SIGABRT), failing a job whose
    work was done: about 1 run in 12 on 2 busy cores, a core dump showed the thread.
    The outputs are written and closed by now, so the rank skips finalization.
    """
    if not info.enabled:
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
