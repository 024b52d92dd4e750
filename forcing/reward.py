"""Optical-flow smoothness reward of Self-Forcing++'s GRPO stage (REFERENCE §3, appendix A.6).

For every pair of consecutive decoded frames, dense optical flow (OpenCV's classical Farneback
estimator on grey-level frames) gives a per-pixel displacement; its magnitude averaged over the
frame is the frame pair's motion m_t (pixels per frame). Smooth motion keeps m_t steady; jitter,
sudden jumps and scene cuts make it spike. The reward is

- ``variance`` (default): r = -Var_t(m_t), penalises any change of the motion magnitude;
- ``second_difference``: r = -mean_t |m_{t+1} - 2 m_t + m_{t-1}|, penalises only non-smooth
  changes (a steady acceleration costs nothing).

Both are maximal (0) for steady motion, and also for a frozen video: pair the reward with a
regulariser (the GRPO stage's KL to the initial policy) against motion collapse.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

REWARDS = ("variance", "second_difference")
_LUMA = (0.299, 0.587, 0.114)


def grey_frames(video: Tensor) -> np.ndarray:
    """Decoded video [B, C, F, H, W] in [-1, 1] -> uint8 grey frames [B, F, H, W] (luma for RGB)."""
    v = video.detach().float().cpu().clamp(-1, 1)
    if v.shape[1] == 3:
        weights = torch.tensor(_LUMA).view(1, 3, 1, 1, 1)
        grey = (v * weights).sum(1)
    else:
        grey = v.mean(1)
    return ((grey + 1) * 127.5).round().to(torch.uint8).numpy()


def mean_flow_magnitude(
    video: Tensor,
    *,
    pyr_scale: float = 0.5,
    levels: int = 3,
    winsize: int = 15,
    iterations: int = 3,
    poly_n: int = 5,
    poly_sigma: float = 1.2,
) -> Tensor:
    """Mean Farneback flow magnitude of every consecutive frame pair: [B, F - 1] (float64).

    The keyword arguments are `cv2.calcOpticalFlowFarneback`'s (OpenCV's documented defaults).
    """
    frames = grey_frames(video)
    out = np.zeros((frames.shape[0], max(frames.shape[1] - 1, 0)), dtype=np.float64)
    for b, clip in enumerate(frames):
        for t in range(clip.shape[0] - 1):
            flow = cv2.calcOpticalFlowFarneback(
                clip[t], clip[t + 1], None, pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, 0
            )
            out[b, t] = float(np.linalg.norm(flow, axis=-1).mean())
    return torch.from_numpy(out)


def flow_smoothness_reward(video: Tensor, kind: str = "variance", **flow: float) -> Tensor:
    """Smoothness reward [B] (float64, on CPU) of decoded videos [B, C, F, H, W] in [-1, 1]."""
    m = mean_flow_magnitude(video, **flow)  # [B, F - 1]
    if kind == "variance":
        if m.shape[1] < 2:
            raise ValueError("the variance reward needs at least 3 frames")
        return -m.var(dim=1, unbiased=False)  # r = -Var_t(m_t)
    if kind == "second_difference":
        if m.shape[1] < 3:
            raise ValueError("the second-difference reward needs at least 4 frames")
        return -(m[:, 2:] - 2 * m[:, 1:-1] + m[:, :-2]).abs().mean(1)  # r = -mean |m_{t+1} - 2 m_t + m_{t-1}|
    raise ValueError(f"reward kind {kind!r} is not one of {REWARDS}")
