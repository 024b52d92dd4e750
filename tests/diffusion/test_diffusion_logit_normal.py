"""Logit-normal training timesteps (SD3 eq. 19) for the shapes base model."""

import torch

from forcing.diffusion.schedule import sample_logit_normal_block_t, shift_t


def test_logit_normal_density_and_blocks():
    g = torch.Generator().manual_seed(0)
    t = sample_logit_normal_block_t(4000, 4, 3, generator=g)
    assert t.shape == (4000, 12)
    assert torch.equal(t[:, 0::3], t[:, 1::3]) and torch.equal(t[:, 0::3], t[:, 2::3])  # constant per block
    flat = t[:, ::3].flatten()
    assert 0 < flat.min() and flat.max() < 1000
    assert abs(float(flat.median()) - 500) < 15  # sigmoid(N(0, 1)) has median 0.5
    # mass at mid noise: P(0.2 < sigma < 0.8) = P(|N| < logit(0.8) = 1.386) = 0.834
    mid = ((flat > 200) & (flat < 800)).float().mean()
    assert abs(float(mid) - 0.834) < 0.02


def test_logit_normal_then_shift():
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    plain = sample_logit_normal_block_t(64, 2, 1, shift=1.0, generator=g1)
    shifted = sample_logit_normal_block_t(64, 2, 1, shift=3.0, generator=g2)
    assert torch.allclose(shifted, shift_t(plain, 3.0), atol=1e-3)
