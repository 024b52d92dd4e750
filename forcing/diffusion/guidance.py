"""Classifier-free guidance and the :class:`Denoiser` wrapper every sampler and objective calls.

CFG convention (the one used everywhere in this suite): conventional scale ``w``,
``v = v_uncond + w (v_cond - v_uncond)``; ``w = 1`` is the plain conditional prediction.
The public Self Forcing code writes ``cond + s (cond - uncond)`` with ``s = 3``: that is ``w = s + 1
= 4`` here. CFG is linear, so it is the same in velocity and in x0 space at fixed ``x_t, t``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .flow import sigma_from_t, x0_from_velocity


def cfg(v_cond: Tensor, v_uncond: Tensor, w: float) -> Tensor:
    """Classifier-free guidance with the conventional scale: v_uncond + w (v_cond - v_uncond)."""
    return v_uncond + w * (v_cond - v_uncond)  # CFG, Ho & Salimans eq. 6 (w = 1: no guidance)


def self_forcing_scale_to_w(s: float) -> float:
    """Convert the public Self Forcing scale ``s`` (``cond + s (cond - uncond)``) to ``w = s + 1``."""
    return s + 1.0


@dataclass
class Conditioning:
    """Text conditioning: ``context [B, L, D]`` and the null prompt's ``null_context`` ([B or 1, L, D])."""

    context: Tensor
    null_context: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.context.shape[0]

    def repeat(self, n: int) -> Conditioning:
        """The conditioning of a batch concatenated ``n`` times along the batch axis."""
        null = None if self.null_context is None else self.null_context.expand_as(self.context)
        return Conditioning(
            torch.cat([self.context] * n, 0), None if null is None else torch.cat([null] * n, 0)
        )

    def detach(self) -> Conditioning:
        return Conditioning(
            self.context.detach(), None if self.null_context is None else self.null_context.detach()
        )


def _batch_t(t: Tensor | float, x: Tensor) -> Tensor:
    """Timesteps as a float tensor of shape ``[B]`` or ``[B, F]`` on ``x``'s device."""
    t = torch.as_tensor(t, device=x.device)
    if not t.is_floating_point():
        t = t.float()
    if t.dim() == 0:
        t = t.expand(x.shape[0])
    return t


def _double_batch(value: Any, batch: int) -> Any:
    """Concatenate a per-sample tensor kwarg with itself for a batched [cond; uncond] forward."""
    if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == batch:
        return torch.cat([value, value], 0)
    return value


class Denoiser:
    """A velocity network seen through the flow path, with optional CFG.

    ``Denoiser(model, guidance_scale=1.0, **forward_kwargs)`` calls
    ``model(x_t, t, context, **forward_kwargs, **call_kwargs)`` (the backbone contract). With
    ``guidance_scale != 1`` the conditional and unconditional predictions come from one forward over
    the batch ``[cond; uncond]``: per-sample tensor kwargs (``clean_x``, ``clean_t``) are doubled;
    a ``cache`` must then hold ``2B`` rows (cond first), or pass ``cache=(cond_cache, uncond_cache)``
    to run two forwards instead. ``batch_cfg=False`` always runs two forwards of ``B`` (half the peak
    activation memory, e.g. for a 14B real score). A plain wrapper, not an ``nn.Module``: it owns no
    parameters.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        guidance_scale: float = 1.0,
        *,
        batch_cfg: bool = True,
        **forward_kwargs: Any,
    ):
        self.model = model
        self.guidance_scale = float(guidance_scale)
        self.batch_cfg = bool(batch_cfg)
        self.forward_kwargs = forward_kwargs

    def _forward(self, x_t: Tensor, t: Tensor, context: Tensor, kwargs: dict[str, Any]) -> Any:
        return self.model(x_t, t, context, **{**self.forward_kwargs, **kwargs})

    def velocity(self, x_t: Tensor, t: Tensor | float, cond: Conditioning, **kwargs: Any) -> Tensor:
        """Predicted velocity at ``(x_t, t)``, guided when ``guidance_scale != 1``."""
        t = _batch_t(t, x_t)
        if self.guidance_scale == 1.0:
            return self._forward(x_t, t, cond.context, kwargs)
        if cond.null_context is None:
            raise ValueError("guidance_scale != 1 needs Conditioning.null_context")
        if kwargs.get("return_hidden") or self.forward_kwargs.get("return_hidden"):
            raise ValueError("return_hidden is not supported together with CFG")
        null = cond.null_context.expand_as(cond.context)
        cache = kwargs.get("cache", self.forward_kwargs.get("cache"))
        if isinstance(cache, (tuple, list)) or not self.batch_cfg:
            if cache is not None and not isinstance(cache, (tuple, list)):
                raise ValueError("batch_cfg=False with a KV cache needs cache=(cond_cache, uncond_cache)")
            kw_c, kw_u = (
                (kwargs, kwargs)
                if cache is None
                else ({**kwargs, "cache": cache[0]}, {**kwargs, "cache": cache[1]})
            )
            v_cond = self._forward(x_t, t, cond.context, kw_c)
            v_uncond = self._forward(x_t, t, null, kw_u)
        else:
            batch = x_t.shape[0]
            merged = {**self.forward_kwargs, **kwargs}
            doubled = {k: _double_batch(v, batch) for k, v in merged.items()}
            v = self.model(
                torch.cat([x_t, x_t], 0), torch.cat([t, t], 0), torch.cat([cond.context, null], 0), **doubled
            )
            v_cond, v_uncond = v.chunk(2, dim=0)
        return cfg(v_cond, v_uncond, self.guidance_scale)

    def x0(self, x_t: Tensor, t: Tensor | float, cond: Conditioning, **kwargs: Any) -> Tensor:
        """Predicted clean sample: x0 = x_t - sigma v."""
        t = _batch_t(t, x_t)
        return x0_from_velocity(x_t, self.velocity(x_t, t, cond, **kwargs), sigma_from_t(t))

    def velocity_and_hidden(
        self, x_t: Tensor, t: Tensor | float, cond: Conditioning, taps: tuple[int, ...], **kwargs: Any
    ) -> tuple[Tensor, list[Tensor]]:
        """Unguided velocity plus the hidden states ``[B, N, dim]`` of blocks ``taps`` (discriminator trunk)."""
        t = _batch_t(t, x_t)
        out = self._forward(x_t, t, cond.context, {**kwargs, "return_hidden": tuple(taps)})
        v, hidden = out
        return v, list(hidden)

    def parameters(self):
        """Parameters of the wrapped model (empty if it is not an ``nn.Module``)."""
        params = getattr(self.model, "parameters", None)
        return iter(()) if params is None else params()
