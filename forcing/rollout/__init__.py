"""Autoregressive rollouts: one block loop (`loop.run_blocks`), one KV cache factory
(`cache.new_cache`), one few-step and one many-step sampler (`samplers`), and the modes built on
them: streaming inference (Algorithm 2), training rollouts (Algorithm 1, TF+DMD, DF+DMD),
Self-Forcing++'s long-rollout window and its GRPO trajectories."""

from .cache import copy_cache, new_cache
from .inference import generate, stream_rollout
from .loop import NoiseFn, drawn_noise, run_blocks, sliced_noise, write_context
from .policy import BlockLogprobs, Trajectory, policy_logprobs, sample_trajectory
from .samplers import euler_sample, few_step_sample, sample
from .spec import SamplerSpec
from .training import Rollout, diffusion_forcing, self_forcing
from .window import (
    BACKWARD_NOISE,
    WINDOW_SAMPLING,
    WindowRollout,
    rollout_frames_at,
    sample_window_start,
    window_rollout,
    window_starts,
)

__all__ = [
    "BACKWARD_NOISE",
    "WINDOW_SAMPLING",
    "BlockLogprobs",
    "NoiseFn",
    "Rollout",
    "SamplerSpec",
    "Trajectory",
    "WindowRollout",
    "copy_cache",
    "diffusion_forcing",
    "drawn_noise",
    "euler_sample",
    "few_step_sample",
    "generate",
    "new_cache",
    "policy_logprobs",
    "rollout_frames_at",
    "run_blocks",
    "sample",
    "sample_trajectory",
    "sample_window_start",
    "self_forcing",
    "sliced_noise",
    "stream_rollout",
    "window_rollout",
    "window_starts",
    "write_context",
]
