"""CFG convention and the Denoiser wrapper."""

import pytest
import torch

from forcing.diffusion import Conditioning, Denoiser, cfg, self_forcing_scale_to_w, sigma_from_t


def test_cfg_convention_matches_public_scale_plus_one():
    c, u = torch.randn(4), torch.randn(4)
    assert torch.allclose(cfg(c, u, 1.0), c)
    assert torch.allclose(cfg(c, u, 0.0), u)
    public = c + 3.0 * (c - u)  # Self Forcing: cond + s (cond - uncond), s = 3
    assert torch.allclose(cfg(c, u, 4.0), public)
    assert self_forcing_scale_to_w(3.0) == 4.0
    assert not torch.allclose(cfg(c, u, 3.0), public)


def _cond(b=2):
    return Conditioning(torch.full((b, 3, 4), 1.0), torch.zeros(1, 3, 4))


def test_denoiser_cfg_is_one_batched_forward(point_mass):
    model = point_mass(torch.zeros(2, 1, 2, 2))
    den = Denoiser(model, guidance_scale=4.0, mode="block_causal")
    x = torch.randn(2, 2, 1, 2, 2)
    t = torch.tensor([500.0, 250.0])
    clean = torch.randn(2, 2, 1, 2, 2)
    v = den.velocity(x, t, _cond(), clean_x=clean, frames_per_block=3)
    assert len(model.calls) == 1
    call = model.calls[0]
    assert call["x"].shape[0] == 4 and call["mode"] == "block_causal" and call["frames_per_block"] == 3
    assert torch.equal(call["clean_x"], torch.cat([clean, clean]))
    assert torch.equal(call["context"][:2], _cond().context) and torch.equal(
        call["context"][2:], torch.zeros(2, 3, 4)
    )
    plain = Denoiser(point_mass(torch.zeros(2, 1, 2, 2)))
    v_c = plain.velocity(x, t, _cond())
    v_u = plain.velocity(x, t, Conditioning(torch.zeros(2, 3, 4)))
    assert torch.allclose(v, v_u + 4.0 * (v_c - v_u))


def test_denoiser_x0_and_cache_pair(point_mass):
    model = point_mass(torch.zeros(2, 1, 2, 2))
    den = Denoiser(model, guidance_scale=2.0)
    x = torch.randn(2, 2, 1, 2, 2)
    t = torch.tensor(400.0)
    x0 = den.x0(x, t, _cond(), cache=("c", "u"))
    assert [c["cache"] for c in model.calls] == ["c", "u"]
    # point mass at 0 + context mean: cond x0 = 1, uncond x0 = 0 -> guided x0 = 0 + 2 (1 - 0) = 2
    assert torch.allclose(x0, torch.full_like(x, 2.0), atol=1e-5)
    v = den.velocity(x, t, _cond())
    assert torch.allclose(x0, x - sigma_from_t(400.0) * v, atol=1e-5)


def test_guidance_without_null_context_raises(point_mass):
    den = Denoiser(point_mass(torch.zeros(2, 1, 2, 2)), guidance_scale=3.0)
    with pytest.raises(ValueError):
        den.velocity(torch.randn(1, 2, 1, 2, 2), torch.tensor([10.0]), Conditioning(torch.ones(1, 3, 4)))


def test_unbatched_cfg_matches_batched(point_mass):
    x, t = torch.randn(2, 2, 1, 2, 2), torch.tensor([300.0, 700.0])
    split_model = point_mass(torch.zeros(2, 1, 2, 2))
    split = Denoiser(split_model, guidance_scale=5.0, batch_cfg=False).velocity(x, t, _cond())
    both = Denoiser(point_mass(torch.zeros(2, 1, 2, 2)), guidance_scale=5.0).velocity(x, t, _cond())
    assert len(split_model.calls) == 2 and split_model.calls[0]["x"].shape[0] == 2
    assert torch.allclose(split, both, atol=1e-5)
    with pytest.raises(ValueError):
        Denoiser(split_model, guidance_scale=5.0, batch_cfg=False).velocity(x, t, _cond(), cache="one")
