"""Streams of the official `CausalInferencePipeline` on our inputs: their layout, their stand-ins for
the text encoder and the VAE, a first-block clock, and the re-noising draws of our sampler.

Layouts: ours [B, C, F, H, W], theirs [B, F, C, H, W]. Their pipeline re-noises with
`torch.randn_like` on [B*F, C, H, W] (global RNG), our sampler with `torch.randn` on [B, C, F, H, W]
(a generator): the same seed gives the same numbers in another order, so for the equality run
`our_renoising_draws` hands their `scheduler.add_noise` the noise our sampler draws (their draw is
discarded). Timed runs leave their pipeline as it is.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["IdentityVAE", "PromptEmbeddings", "our_renoising_draws", "run_theirs", "time_theirs_once"]


class PromptEmbeddings(nn.Module):
    """Their text encoder's interface (`forward(text_prompts) -> {"prompt_embeds": ...}`) answering our
    random text embeddings [B, L, text_dim] for any prompt."""

    def __init__(self, context: Tensor) -> None:
        super().__init__()
        self.context = context

    def forward(self, text_prompts: list[str]) -> dict[str, Tensor]:  # noqa: D102
        return {"prompt_embeds": self.context}


class IdentityVAE(nn.Module):
    """Their VAE wrapper's `decode_to_pixel` as the identity (our streams decode nothing either)."""

    def decode_to_pixel(self, latent: Tensor, use_cache: bool = False) -> Tensor:  # noqa: D102
        return latent


def run_theirs(pipe: Any, noise: Tensor) -> Tensor:
    """One stream of their pipeline over `noise` [B, C, F, H, W] (ours); its latents [B, C, F, H, W].

    Their per-step `print` goes to a string buffer; grad is off, as in their `inference.py`.
    """
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        _, latents = pipe.inference(
            noise.permute(0, 2, 1, 3, 4), text_prompts=["benchmark"], return_latents=True
        )
    return latents.permute(0, 2, 1, 3, 4)


def time_theirs_once(pipe: Any, noise: Tensor, calls_per_block: int) -> tuple[float, float]:
    """(first-block latency, total) seconds of one stream of their pipeline (CPU clock).

    The first block is done after `calls_per_block` generator forwards (its denoising steps and the
    clean-context forward that writes its K/V), which a forward hook on their generator clocks.
    """
    marks: list[float] = []
    calls = 0

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == calls_per_block:
            marks.append(time.perf_counter())

    handle = pipe.generator.register_forward_hook(hook)
    try:
        start = time.perf_counter()
        run_theirs(pipe, noise)
        end = time.perf_counter()
    finally:
        handle.remove()
    return marks[0] - start, end - start


@contextlib.contextmanager
def our_renoising_draws(pipe: Any, generator: torch.Generator) -> Iterator[None]:
    """Inside the block their re-noising uses the noise our few-step sampler draws from `generator`
    (torch.randn of [B, C, F, H, W]) instead of their `randn_like` of [B*F, C, H, W]."""
    scheduler, frames = pipe.scheduler, pipe.num_frame_per_block

    def add_noise(clean: Tensor, noise: Tensor, timestep: Tensor) -> Tensor:
        bf, c, h, w = clean.shape  # [B*F, C, H, W]
        ours = torch.randn((bf // frames, c, frames, h, w), generator=generator, dtype=clean.dtype)
        return type(scheduler).add_noise(
            scheduler, clean, ours.permute(0, 2, 1, 3, 4).flatten(0, 1), timestep
        )

    scheduler.add_noise = add_noise
    try:
        yield
    finally:
        del scheduler.add_noise
