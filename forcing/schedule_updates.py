"""Which optimiser steps at which training batch (two-optimiser paradigms).

An *iteration* is `accumulate` consecutive batches. The critic steps at the end of every
iteration; the generator steps at the end of every `ratio`-th iteration (Self Forcing DMD:
ratio 5, "the critic steps every iteration, the generator every 5th"), after `critic_warmup`
iterations in which only the critic learns (0 in the papers; a suite option: the fake score first
fits the initial generator's samples, so the first generator steps follow a fitted critic instead of
the real score's CFG direction alone). Gradients of an
iteration's batches are accumulated, each scaled by 1/accumulate. Computed from the batch index
alone, so that resume and gradient accumulation never change the schedule (a public fork
multiplied the ratio by the accumulation and went wrong).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UpdatePlan:
    """What happens at one training batch."""

    iteration: int            # index of the iteration this batch belongs to
    generator_grad: bool      # compute the generator loss and backpropagate it
    generator_step: bool      # step (and zero) the generator optimiser after this batch
    critic_step: bool         # step (and zero) the critic optimiser after this batch


def update_plan(batch_idx: int, ratio: int, accumulate: int = 1, critic_warmup: int = 0) -> UpdatePlan:
    """The plan of batch `batch_idx` (0-based, counted over the whole run)."""
    if ratio < 1 or accumulate < 1 or critic_warmup < 0:
        raise ValueError(f"ratio={ratio} and accumulate={accumulate} must be >= 1, critic_warmup={critic_warmup} >= 0")
    iteration, micro = divmod(batch_idx, accumulate)
    last_micro = micro == accumulate - 1
    generator_iteration = iteration >= critic_warmup and (iteration - critic_warmup) % ratio == 0
    return UpdatePlan(
        iteration=iteration,
        generator_grad=generator_iteration,
        generator_step=generator_iteration and last_micro,
        critic_step=last_micro,
    )


def generator_steps(iterations: int, ratio: int, critic_warmup: int = 0) -> int:
    """How many generator steps `iterations` iterations hold (`update_plan`'s count)."""
    after = max(iterations - critic_warmup, 0)
    return (after + ratio - 1) // ratio
