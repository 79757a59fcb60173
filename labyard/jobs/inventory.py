"""What this node offers jobs: GPUs (configured or detected), CPU cores, memory.

With an executor that places jobs itself (Slurm), the cluster decides what fits: the
inventory is then `placed_by` that engine and refuses nothing (`why_never_fits` is None)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

import psutil

from labyard.config import Settings
from labyard.jobs.executors import executor_class

_GPU_ID_RE = re.compile(r"^[A-Za-z0-9\-]{1,64}$")


@dataclass(frozen=True)
class Inventory:
    """This node's resources for jobs."""

    gpus: tuple[str, ...]
    cpus: float
    memory_mb: int
    placed_by: str = ""  # the executor that places jobs (its cluster decides), or ""

    def why_never_fits(self, *, gpus: int, cpus: float, memory_mb: int) -> str | None:
        """Why a job of this size can never run here, or None when it can."""
        if self.placed_by:
            return None
        if gpus > len(self.gpus):
            return f"it needs {gpus} GPU(s) and this node has {len(self.gpus)}"
        if cpus > self.cpus:
            return f"it needs {cpus:g} CPU cores and this node has {self.cpus:g}"
        if memory_mb > self.memory_mb:
            return f"it needs {memory_mb} MiB of memory and this node has {self.memory_mb} MiB"
        return None


def parse_gpu_list(text: str) -> tuple[str, ...]:
    """GPU ids from `0,1,2,3` (LABYARD_GPUS); `none` means no GPUs."""
    if text.strip().lower() == "none":
        return ()
    ids = tuple(part.strip() for part in text.split(",") if part.strip())
    for gpu in ids:
        if not _GPU_ID_RE.match(gpu):
            raise ValueError(f"LABYARD_GPUS: {gpu!r} is not a GPU id")
    if len(set(ids)) != len(ids):
        raise ValueError("LABYARD_GPUS lists a GPU twice")
    return ids


def detect_gpus() -> tuple[str, ...]:
    """GPU indices from NVML, else `nvidia-smi`, else none."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return tuple(str(i) for i in range(pynvml.nvmlDeviceGetCount()))
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no NVML library or driver: try nvidia-smi
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in out.splitlines() if line.strip().isdigit())


def node_inventory(settings: Settings) -> Inventory:
    """The inventory: LABYARD_GPUS if set, else detected GPUs; usable cores; total memory
    (and who places jobs, when the executor's engine does)."""
    gpus = parse_gpu_list(settings.gpus) if settings.gpus.strip() else detect_gpus()
    cpus = float(len(os.sched_getaffinity(0)))
    memory_mb = int(psutil.virtual_memory().total // (1024 * 1024))
    placer = executor_class(settings.executor)
    placed_by = placer.name if placer.places_jobs else ""
    return Inventory(gpus=gpus, cpus=cpus, memory_mb=memory_mb, placed_by=placed_by)
