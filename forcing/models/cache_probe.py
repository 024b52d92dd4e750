"""CacheProbe: the largest KV cache a backbone is given while it streams (a forward pre-hook).

Used by ``generate.py`` (the peak cache of a generation, in its metrics) and by the memory section
of :mod:`forcing.bench`.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["CacheProbe"]


class CacheProbe:
    """Records every KV cache passed to a backbone's forward (`cache=` keyword): the most bytes held."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.peak_bytes = 0
        self.capacity_frames = 0
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        cache = kwargs.get("cache")
        if cache is not None and cache.nbytes() > self.peak_bytes:
            self.peak_bytes, self.capacity_frames = cache.nbytes(), cache.capacity_frames

    def close(self) -> None:
        """Remove the hook."""
        self._handle.remove()
