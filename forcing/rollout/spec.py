"""SamplerSpec: how an autoregressive generator samples each block (typed, one definition)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SamplerSpec:
    """A block sampler: `timesteps` (descending Wan t), `stochastic` (few-step x0 + re-noise) or the
    Euler ODE, CFG `guidance_scale` (1 = none), `frames_per_block`. What a paradigm's
    `sampler_settings()` returns and the benchmarks time."""

    name: str
    frames_per_block: int
    timesteps: tuple[float, ...]
    stochastic: bool
    guidance_scale: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "timesteps", tuple(float(t) for t in self.timesteps))
        object.__setattr__(self, "frames_per_block", int(self.frames_per_block))
        object.__setattr__(self, "guidance_scale", float(self.guidance_scale))

    @property
    def forwards(self) -> str:
        """Forwards per block: denoising steps + the cache-writing forward (CFG: batch doubled)."""
        cfg = ", CFG batch x2" if self.guidance_scale != 1.0 else ""
        return f"{len(self.timesteps)} + 1{cfg}"

    def stream_kwargs(self) -> dict[str, Any]:
        """The keywords of `generate` / `stream_rollout` this spec sets."""
        kwargs = {"frames_per_block": self.frames_per_block, "timesteps": list(self.timesteps),
                  "guidance_scale": self.guidance_scale}
        return {**kwargs, "stochastic": self.stochastic}
