"""Frechet video distance on `ShapesFeatureNet` features (Frechet distance of Gaussian fits)."""

from __future__ import annotations

import torch
from torch import Tensor

from forcing.eval.feature_net import ShapesFeatureNet


def frechet_distance(features: Tensor, reference: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets `[N, D]`, `[M, D]` (N, M >= 2).

    `||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`, in float64, via torchmetrics' FID kernel. The
    covariances are estimated from N and M samples: with fewer samples than dimensions the
    estimate is biased upward, so compare values computed with the same set sizes.
    """
    from torchmetrics.image.fid import _compute_fid  # lazy: importing torchmetrics takes seconds

    if features.shape[0] < 2 or reference.shape[0] < 2:
        raise ValueError(f"need at least 2 samples per set, got {features.shape[0]} and {reference.shape[0]}")
    a, b = features.detach().double().cpu(), reference.detach().double().cpu()
    value = _compute_fid(a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T))
    return max(0.0, float(value))


@torch.no_grad()
def video_features(net: ShapesFeatureNet, videos: Tensor, batch_size: int = 32) -> Tensor:
    """Features `[N, D]` of videos `[N, 3, F, H, W]` in [-1, 1] (clamped), in chunks of `batch_size`."""
    net = net.eval()
    device = next(net.parameters()).device
    chunks = [
        net.features(videos[i : i + batch_size].to(device).float().clamp(-1.0, 1.0)).cpu()
        for i in range(0, videos.shape[0], batch_size)
    ]
    return torch.cat(chunks)


def fvd(net: ShapesFeatureNet, videos: Tensor, reference: Tensor) -> float:
    """FVD between two sets of videos `[N, 3, F, H, W]` and `[M, 3, F, H, W]` (0 = same statistics)."""
    return frechet_distance(video_features(net, videos), video_features(net, reference))
