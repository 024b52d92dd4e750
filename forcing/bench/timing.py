"""Wall-clock timing on a device (CUDA synchronised) and the machine line printed under each table."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch

__all__ = ["machine", "sync", "time_call"]


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work on `device` (no-op on CPU), so wall-clock times are complete."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 2
) -> tuple[float, float]:
    """(median, min) wall time of `fn()` in seconds over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def machine(device: torch.device) -> str:
    """The torch version and the device (GPU name, or CPU and torch threads) a table was measured on."""
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"
    return f"torch {torch.__version__}, {what}"
