"""Memory probes: allocations while a stream runs; the KV cache probe is the library's
(:class:`forcing.models.cache_probe.CacheProbe`, re-exported here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from forcing.models.cache_probe import CacheProbe

__all__ = ["BLOCK_MARK", "CacheProbe", "PeakMemory", "peak_memory", "stream_alloc"]


BLOCK_MARK = "forcing.bench.block_done"


def stream_alloc(
    run: Callable[[Callable[[int, torch.Tensor], None]], object], device: torch.device
) -> tuple[int, int]:
    """(peak, per-block peak) bytes allocated while `run(on_block)` streams, above the level before it.

    per-block peak: the largest rise of allocated memory within one block (from one `on_block` call
    to the next: the block's activations and its new latents; the cache already exists).
    CUDA: `torch.cuda` allocator statistics. CPU: the torch profiler's allocation events
    (`profile_memory=True`) summed in time order, blocks delimited by a `record_function` marker
    (tracemalloc does not see torch's allocator).
    """
    if device.type == "cuda":
        return _cuda_stream_alloc(run, device)
    from torch.profiler import ProfilerActivity, profile, record_function

    def mark(index: int, block: torch.Tensor) -> None:
        with record_function(BLOCK_MARK):
            pass

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run(mark)
    # raw allocator events (bytes > 0: allocation, < 0: free) and the markers, in time order;
    # `prof.events()` would build a Python event tree first (100x slower on long streams)
    raw = [e for e in prof.profiler.kineto_results.events() if e.name() in ("[memory]", BLOCK_MARK)]
    level = peak = since_mark = 0
    mark_level, block_peaks = None, []
    for event in sorted(raw, key=lambda e: e.start_ns()):
        if event.name() == BLOCK_MARK:
            if mark_level is not None:
                block_peaks.append(since_mark - mark_level)
            mark_level = since_mark = level
            continue
        if event.device_type() == torch.autograd.DeviceType.CPU:
            level += event.nbytes()
            peak, since_mark = max(peak, level), max(since_mark, level)
    return peak, max(block_peaks, default=0)


def _cuda_stream_alloc(run: Callable[[Callable], object], device: torch.device) -> tuple[int, int]:
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    peaks, block_peaks, mark_level = [], [], None

    def mark(index: int, block: torch.Tensor) -> None:
        nonlocal mark_level
        torch.cuda.synchronize(device)
        top = torch.cuda.max_memory_allocated(device)
        peaks.append(top)
        if mark_level is not None:
            block_peaks.append(top - mark_level)
        mark_level = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)

    run(mark)
    torch.cuda.synchronize(device)
    peaks.append(torch.cuda.max_memory_allocated(device))
    return max(peaks) - base, max(block_peaks, default=0)


@dataclass
class PeakMemory:
    """What :func:`peak_memory` measured: the allocator's peak in bytes (None off CUDA)."""

    bytes: int | None = None


@contextmanager
def peak_memory(device: torch.device) -> Iterator[PeakMemory]:
    """The peak of memory allocated on `device` inside the block (weights and caches included).

    CUDA: `torch.cuda.max_memory_allocated` after resetting the peak statistics on entry; other
    devices: `bytes` stays None (there is no allocator peak to read cheaply).
    """
    found = PeakMemory()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    yield found
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        found.bytes = int(torch.cuda.max_memory_allocated(device))
