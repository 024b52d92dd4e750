"""CausalWanModel: presets, original Wan parameter names, timesteps, hidden states, precision, errors."""

import pytest
import torch
from wan_testing import inputs, tiny

from forcing.models import PRESETS, CausalWanModel, KVCache, WanConfig
from forcing.models.wan import sinusoidal_embedding


def _wan_keys(num_layers):
    """Original Wan2.1 checkpoint key names (REFERENCE.md), RoPE tables not stored."""
    keys = {
        "patch_embedding.weight",
        "patch_embedding.bias",
        "time_projection.1.weight",
        "time_projection.1.bias",
        "head.head.weight",
        "head.head.bias",
        "head.modulation",
    }
    keys |= {
        f"{m}.{i}.{p}"
        for m in ("text_embedding", "time_embedding")
        for i in (0, 2)
        for p in ("weight", "bias")
    }
    for n in range(num_layers):
        b = f"blocks.{n}"
        for attn in ("self_attn", "cross_attn"):
            keys |= {f"{b}.{attn}.{x}.{p}" for x in "qkvo" for p in ("weight", "bias")}
            keys |= {f"{b}.{attn}.norm_q.weight", f"{b}.{attn}.norm_k.weight"}
        keys |= {f"{b}.norm3.weight", f"{b}.norm3.bias", f"{b}.modulation"}
        keys |= {f"{b}.ffn.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}
    return keys


def test_state_dict_uses_original_wan_names():
    model = CausalWanModel.from_preset("tiny")
    assert set(model.state_dict()) == _wan_keys(2)
    assert model.blocks[0].modulation.shape == (1, 6, 32) and model.head.modulation.shape == (1, 2, 32)


@pytest.mark.parametrize(
    "name,dim,layers,heads,ffn,params",
    [("wan2.1-t2v-1.3b", 1536, 30, 12, 8960, 1.42e9), ("wan2.1-t2v-14b", 5120, 40, 40, 13824, 14.3e9)],
)
def test_wan_presets(name, dim, layers, heads, ffn, params):
    with torch.device("meta"):
        model = CausalWanModel.from_preset(name)
    cfg = model.config
    assert (cfg.dim, cfg.num_layers, cfg.num_heads, cfg.ffn_dim, cfg.head_dim) == (
        dim,
        layers,
        heads,
        ffn,
        128,
    )
    assert (cfg.text_dim, cfg.freq_dim, cfg.in_dim, cfg.out_dim, cfg.patch_size, cfg.eps) == (
        4096,
        256,
        16,
        16,
        (1, 2, 2),
        1e-6,
    )
    assert set(model.state_dict()) == _wan_keys(layers)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - params) / params < 0.02, n


def test_small_presets_and_overrides():
    assert PRESETS["tiny"].head_dim == 16 and PRESETS["shapes"].patch_size == (1, 4, 4)
    s = PRESETS["shapes"]
    assert (s.in_dim, s.dim, s.num_heads, s.num_layers, s.ffn_dim, s.text_dim, s.freq_dim) == (
        3,
        128,
        4,
        4,
        512,
        64,
        64,
    )
    model = CausalWanModel.from_preset("tiny", num_layers=3)
    assert isinstance(model.config, WanConfig) and len(model.blocks) == 3
    with pytest.raises(KeyError):
        CausalWanModel.from_preset("huge")
    with pytest.raises(TypeError):
        CausalWanModel.from_preset("tiny", depth=3)


def test_shapes_preset_forward():
    model = CausalWanModel.from_preset("shapes")
    x = torch.randn(1, 3, 3, 32, 32)
    with torch.no_grad():
        out = model(x, torch.tensor([500.0]), torch.randn(1, 4, 64), mode="block_causal", frames_per_block=3)
    assert out.shape == x.shape and model.tokens_per_frame(32, 32) == 64


def test_wan_init_zeroes_the_head():
    model = CausalWanModel.from_preset("tiny")
    x, t, c = inputs(frames=2)
    with torch.no_grad():
        assert model(x, t, c).abs().max() == 0


def test_sinusoid_is_cos_then_sin():
    e = sinusoidal_embedding(torch.tensor([0.0, 2.0]), 8)
    assert torch.equal(e[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    freqs = 10000 ** (-torch.arange(4, dtype=torch.float64) / 4)
    assert torch.allclose(e[1].double(), torch.cat([(2 * freqs).cos(), (2 * freqs).sin()]), atol=1e-7)


@torch.no_grad()
def test_timesteps_b_equals_repeated_b_f():
    model = tiny()
    x, t, c = inputs(frames=3)
    assert torch.equal(model(x, t[:, 0], c), model(x, t[:, :1].expand(2, 3), c))
    t2 = t[:, :1].expand(2, 3).clone()
    t2[:, 2] += 100
    out, out2 = model(x, t[:, :1].expand(2, 3), c, mode="block_causal"), model(x, t2, c, mode="block_causal")
    assert torch.equal(out[:, :, :2], out2[:, :, :2]) and not torch.equal(out[:, :, 2], out2[:, :, 2])
    with pytest.raises(ValueError, match="t has shape"):
        model(x, t[:, :2], c)


@torch.no_grad()
def test_return_hidden():
    model = tiny()
    x, t, c = inputs(frames=4)
    out, hidden = model(x, t, c, mode="block_causal", frames_per_block=2, return_hidden=(1, 0))
    assert torch.equal(out, model(x, t, c, mode="block_causal", frames_per_block=2))
    assert [h.shape for h in hidden] == [(2, 4 * 4, 32)] * 2
    assert not torch.equal(hidden[0], hidden[1])
    # teacher forcing: hidden states of the noisy half; cached: of the block
    _, tf_hidden = model(x, t, c, mode="teacher_forcing", clean_x=x, return_hidden=(-1,))
    assert tf_hidden[0].shape == (2, 16, 32)
    cache = KVCache.for_model(model, 2, 4, 4)
    outs = [
        model(x[:, :, s : s + 2], t[:, s : s + 2], c, cache=cache, start_frame=s, return_hidden=(0,))
        for s in (0, 2)
    ]
    assert (torch.cat([h[0] for _, h in outs], 1) - hidden[1]).abs().max() < 1e-5


def test_bf16_autocast_keeps_fp32_islands():
    model = tiny()
    x, t, c = inputs(frames=2)
    with torch.no_grad():
        ref = model(x, t, c, mode="block_causal")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            e, e0 = model._embed_time(t)
            out = model(x, t, c, mode="block_causal")
    assert e.dtype == e0.dtype == torch.float32 and out.dtype == torch.float32
    assert (out - ref).abs().max() / ref.abs().max() < 0.05
    # pure bf16 parameters (FSDP-style mixed precision, no autocast) run too
    with torch.no_grad():
        out16 = tiny().to(torch.bfloat16)(x, t, c, mode="block_causal")
    assert out16.dtype == torch.float32 and torch.isfinite(out16).all()


def test_mode_errors():
    model = tiny()
    x, t, c = inputs(frames=2)
    with pytest.raises(ValueError, match="causal mode"):
        model(x, t, c, local_window=2)
    with pytest.raises(ValueError, match="needs clean_x"):
        model(x, t, c, mode="teacher_forcing")
    with pytest.raises(ValueError, match="only used by"):
        model(x, t, c, mode="block_causal", clean_x=x)
    with pytest.raises(ValueError, match="unknown mode"):
        model(x, t, c, mode="causal")
    with pytest.raises(ValueError, match="cannot be combined"):
        model(x, t, c, clean_x=x, cache=KVCache.for_model(model, 2, 2, 4))


def test_from_pretrained_delegates_to_weights_with_its_class(monkeypatch):
    import forcing.models.wan as wan

    class Subclass(CausalWanModel):
        pass

    from torch import nn

    from forcing.provenance import weights_source

    calls = []
    monkeypatch.setattr(
        wan, "load_pretrained",
        lambda cls, path, preset=None, **kw: calls.append((cls, path, preset, kw)) or nn.Identity(),
    )
    loaded = CausalWanModel.from_pretrained("/some/dir", preset="tiny", num_layers=1)
    Subclass.from_pretrained("/other/dir")
    assert calls == [(CausalWanModel, "/some/dir", "tiny", {"num_layers": 1}), (Subclass, "/other/dir", None, {})]
    assert weights_source(loaded) == "/some/dir"  # the source checkpoints record (forcing.provenance)
