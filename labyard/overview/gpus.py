"""What the overview shows of each GPU: model, memory and utilisation from NVML when the
library and driver are there; otherwise only the id the scheduler assigns (and "—")."""

from __future__ import annotations

from dataclasses import dataclass

from labyard.config import Settings
from labyard.jobs.inventory import Inventory, node_inventory


@dataclass(frozen=True)
class GpuReading:
    """One GPU as NVML reports it now; None where NVML does not know the value."""

    model: str | None = None
    memory_total_mb: int | None = None
    memory_used_mb: int | None = None
    utilisation: int | None = None  # percent


_INVENTORIES: dict[str, Inventory] = {}


def cached_inventory(settings: Settings) -> Inventory:
    """This node's inventory (LABYARD_GPUS, else detected), read once per process and
    setting: detection may run nvidia-smi, too slow for a page that polls."""
    if settings.gpus not in _INVENTORIES:
        _INVENTORIES[settings.gpus] = node_inventory(settings)
    return _INVENTORIES[settings.gpus]


def read_gpus(ids: tuple[str, ...]) -> dict[str, GpuReading]:
    """NVML readings of the GPUs with these indices; empty when NVML is unavailable."""
    if not ids:
        return {}
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver: no readings
        return {}
    try:
        count = pynvml.nvmlDeviceGetCount()
        return {
            gpu: _read_one(pynvml, int(gpu)) for gpu in ids if gpu.isdigit() and int(gpu) < count
        }
    finally:
        pynvml.nvmlShutdown()


def _read_one(pynvml: object, index: int) -> GpuReading:
    nv = pynvml
    try:
        handle = nv.nvmlDeviceGetHandleByIndex(index)  # type: ignore[attr-defined]
        name = nv.nvmlDeviceGetName(handle)  # type: ignore[attr-defined]
        memory = nv.nvmlDeviceGetMemoryInfo(handle)  # type: ignore[attr-defined]
        rates = nv.nvmlDeviceGetUtilizationRates(handle)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - one GPU gone or in a bad state: show it without data
        return GpuReading()
    return GpuReading(
        model=name.decode() if isinstance(name, bytes) else str(name),
        memory_total_mb=int(memory.total) // (1024 * 1024),
        memory_used_mb=int(memory.used) // (1024 * 1024),
        utilisation=int(rates.gpu),
    )
