"""Weight loading and conversion: Wan <-> diffusers names, training-checkpoint unwrapping, folders, errors."""

from __future__ import annotations

import json
import re

import pytest
import torch
from diffusers import WanTransformer3DModel
from safetensors.torch import load_file, save_file
from wan_testing import diffusers_kwargs

from forcing.models import PRESETS, CausalWanModel, WanConfig
from forcing.models.weights import (
    CheckpointError,
    config_from_folder,
    detect_layout,
    diffusers_to_wan,
    load_pretrained,
    load_state_dict_strict,
    read_state_dict,
    save_pretrained,
    unwrap_checkpoint,
    wan_to_diffusers,
)

# ------------------------------------------------------------------------------------------ helpers


def _randomize(model: torch.nn.Module, scale: float = 0.2) -> torch.nn.Module:
    """Non-trivial weights everywhere (the default init zeroes the head, hiding output differences)."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, scale)
    return model.eval()


def _tiny(**overrides) -> CausalWanModel:
    return _randomize(CausalWanModel.from_preset("tiny", **overrides))


def _diffusers_twin(cfg: WanConfig) -> WanTransformer3DModel:
    return WanTransformer3DModel(**diffusers_kwargs(cfg)).eval()


def _inputs(cfg: WanConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.randn(2, cfg.in_dim, 3, 4, 6)
    t = torch.tensor([120.0, 730.0])
    context = torch.randn(2, 5, cfg.text_dim)
    return x, t, context


def _assert_same_state_dict(a: dict, b: dict) -> None:
    assert set(a) == set(b), set(a) ^ set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


def _assert_same_model(a: CausalWanModel, b: CausalWanModel) -> None:
    _assert_same_state_dict(a.state_dict(), b.state_dict())
    x, t, context = _inputs(a.config)
    with torch.no_grad():
        assert torch.equal(a(x, t, context), b(x, t, context))


class _NotATensor:
    """A pickled object that torch.load(weights_only=True) refuses."""


# ------------------------------------------------------------------------------------------ key mapping


def test_wan_diffusers_round_trip_is_exact():
    sd = _tiny().state_dict()
    there = wan_to_diffusers(sd)
    back = diffusers_to_wan(there)
    assert set(there).isdisjoint({"head.head.weight", "blocks.0.self_attn.q.weight", "blocks.0.norm3.weight"})
    assert list(back) == list(sd)
    for key, value in sd.items():
        assert torch.equal(back[key], value), key
        assert back[key] is value  # tensors pass through untouched


def test_converted_keys_equal_a_real_diffusers_model():
    model = _tiny()
    twin = _diffusers_twin(model.config)
    theirs = twin.state_dict()
    ours = wan_to_diffusers(model.state_dict())
    assert set(ours) == set(theirs), set(ours) ^ set(theirs)
    for key, value in ours.items():
        assert value.shape == theirs[key].shape, key
    assert ours["scale_shift_table"].shape == (1, 2, model.config.dim)
    assert ours["blocks.1.scale_shift_table"].shape == (1, 6, model.config.dim)
    twin.load_state_dict(ours, strict=True)
    # and the other way: a diffusers state dict becomes our model's key set
    assert set(diffusers_to_wan(theirs)) == set(model.state_dict())


def test_full_size_names_and_shapes_match_diffusers():
    cfg = PRESETS["wan2.1-t2v-1.3b"]
    with torch.device("meta"):
        ours = wan_to_diffusers(CausalWanModel(cfg).state_dict())
        theirs = _diffusers_twin(cfg).state_dict()
    assert set(ours) == set(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    assert ours["blocks.29.scale_shift_table"].shape == (1, 6, 1536)


def test_diffusers_model_with_converted_weights_gives_the_same_output():
    # Key sets cannot tell norm2 from norm3 (same shapes): equal outputs can.
    model = _tiny()
    twin = _diffusers_twin(model.config)
    load_state_dict_strict(twin, model.state_dict())
    x, t, context = _inputs(model.config)
    with torch.no_grad():
        ours = model(x, t, context)
        theirs = twin(x, t, context, return_dict=False)[0]
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_strict_conversion_names_unknown_keys():
    sd = _tiny().state_dict()
    sd["blocks.0.self_attn.qq.weight"] = sd.pop("blocks.0.self_attn.q.weight")
    with pytest.raises(CheckpointError, match=r"blocks\.0\.self_attn\.qq\.weight"):
        wan_to_diffusers(sd)
    assert "blocks.0.self_attn.qq.weight" in wan_to_diffusers(sd, strict=False)


def test_detect_layout():
    sd = _tiny().state_dict()
    assert detect_layout(sd) == "wan"
    assert detect_layout(wan_to_diffusers(sd)) == "diffusers"
    with pytest.raises(CheckpointError, match="neither"):
        detect_layout({"foo.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="mixes"):
        detect_layout({"head.head.weight": torch.zeros(1), "proj_out.weight": torch.zeros(1)})


# ------------------------------------------------------------------------------------------ unwrapping


def _prefixed(sd: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in sd.items()}


def test_self_forcing_checkpoint_unwraps_to_the_ema_weights():
    gen, ema, critic = _tiny().state_dict(), _tiny().state_dict(), _tiny().state_dict()
    ckpt = {
        "generator": _prefixed(gen, "model."),
        "generator_ema": _prefixed(ema, "model."),
        "critic": _prefixed(critic, "model."),
    }
    _assert_same_state_dict(unwrap_checkpoint(ckpt), ema)
    _assert_same_state_dict(unwrap_checkpoint(ckpt, prefer="generator"), gen)
    _assert_same_state_dict(unwrap_checkpoint(ckpt, prefer="critic"), critic)
    del ckpt["generator_ema"]  # saved before EMA started: the default falls back to the generator
    _assert_same_state_dict(unwrap_checkpoint(ckpt), gen)
    with pytest.raises(CheckpointError, match="fake_score"):
        unwrap_checkpoint(ckpt, prefer="fake_score")


@pytest.mark.parametrize(
    "prefix",
    ["model._fsdp_wrapped_module.", "_orig_mod.model.", "module.model._checkpoint_wrapped_module.", ""],
)
def test_wrapper_segments_are_stripped(prefix):
    sd = _tiny().state_dict()
    wrapped = {prefix + k.replace("blocks.0.", "blocks.0._fsdp_wrapped_module."): v for k, v in sd.items()}
    _assert_same_state_dict(unwrap_checkpoint({"generator": wrapped}), sd)
    _assert_same_state_dict(unwrap_checkpoint(wrapped), sd)


def test_lightning_style_checkpoints_unwrap():
    gen, ema = _tiny().state_dict(), _tiny().state_dict()
    flat = {**_prefixed(gen, "generator.model."), **_prefixed(ema, "generator_ema._forward_module.model.")}
    flat["gan_head.register_tokens"] = torch.zeros(4, 32)  # other modules of the training wrapper
    _assert_same_state_dict(unwrap_checkpoint({"state_dict": flat, "epoch": 3}), ema)
    _assert_same_state_dict(unwrap_checkpoint({"state_dict": flat}, prefer="generator"), gen)


# ------------------------------------------------------------------------------------------ folders and files


@pytest.mark.parametrize("layout", ["wan", "diffusers"])
def test_load_pretrained_reproduces_a_saved_folder(tmp_path, layout):
    model = _tiny()
    save_pretrained(model, tmp_path, layout=layout)
    config = json.loads((tmp_path / "config.json").read_text())
    assert ("num_attention_heads" in config) == (layout == "diffusers")
    assert detect_layout(read_state_dict(tmp_path)) == layout
    loaded = load_pretrained(CausalWanModel, tmp_path)
    assert loaded.config == model.config
    _assert_same_model(model.eval(), loaded.eval())
    via_class = CausalWanModel.from_pretrained(str(tmp_path), gradient_checkpointing=True)
    assert via_class.config.gradient_checkpointing
    _assert_same_state_dict(via_class.state_dict(), model.state_dict())


def test_load_pretrained_casts_while_loading(tmp_path):
    model = _tiny()
    save_pretrained(model.to(torch.bfloat16), tmp_path)
    loaded = load_pretrained(CausalWanModel, tmp_path)  # float32 model, bf16 weights upcast exactly
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert all(torch.equal(a.float(), b) for a, b in zip(model.parameters(), loaded.parameters()))
    half = load_pretrained(CausalWanModel, tmp_path, dtype=torch.bfloat16)
    _assert_same_state_dict(half.state_dict(), model.state_dict())


def test_diffusers_loads_an_exported_folder(tmp_path):
    model = _tiny()
    save_pretrained(model, tmp_path, layout="diffusers")
    # What WanTransformer3DModel.from_pretrained does (it needs `accelerate`, absent here): config + weights.
    twin = WanTransformer3DModel.from_config(WanTransformer3DModel.load_config(tmp_path)).eval()
    twin.load_state_dict(load_file(tmp_path / "diffusion_pytorch_model.safetensors"), strict=True)
    x, t, context = _inputs(model.config)
    with torch.no_grad():
        torch.testing.assert_close(
            model(x, t, context), twin(x, t, context, return_dict=False)[0], atol=1e-4, rtol=1e-4
        )


@pytest.mark.parametrize("layout", ["wan", "diffusers"])
def test_folder_without_config_needs_a_preset(tmp_path, layout):
    model = _tiny()
    save_pretrained(model, tmp_path, layout=layout)
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="preset"):
        load_pretrained(CausalWanModel, tmp_path)
    _assert_same_model(model, load_pretrained(CausalWanModel, tmp_path, preset="tiny").eval())


def test_self_forcing_pt_file_loads_the_ema(tmp_path):
    gen, ema = _tiny(), _tiny()
    path = tmp_path / "self_forcing_dmd.pt"
    torch.save(
        {
            "generator": _prefixed(gen.state_dict(), "model._fsdp_wrapped_module."),
            "generator_ema": _prefixed(ema.state_dict(), "model."),
            "critic": _prefixed(_tiny().state_dict(), "model."),
        },
        path,
    )
    _assert_same_model(ema, load_pretrained(CausalWanModel, path, preset="tiny").eval())
    _assert_same_model(gen, load_pretrained(CausalWanModel, path, preset="tiny", prefer="generator").eval())
    folder_copy = load_pretrained(CausalWanModel, tmp_path, preset="tiny")  # a folder holding one .pt file
    _assert_same_state_dict(folder_copy.state_dict(), ema.state_dict())


def test_sharded_diffusers_pipeline_folder(tmp_path):
    model = _tiny()
    sd = wan_to_diffusers({k: v.contiguous() for k, v in model.state_dict().items()})
    keys = list(sd)
    shards = {"diffusion_pytorch_model-00001-of-00002.safetensors": keys[::2],
              "diffusion_pytorch_model-00002-of-00002.safetensors": keys[1::2]}  # fmt: skip
    folder = tmp_path / "transformer"
    save_pretrained(model, folder, layout="diffusers")
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    for name, names in shards.items():
        save_file({k: sd[k] for k in names}, str(folder / name))
    index = {"metadata": {}, "weight_map": {k: name for name, names in shards.items() for k in names}}
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "model_index.json").write_text("{}")
    _assert_same_model(model, load_pretrained(CausalWanModel, tmp_path).eval())  # the pipeline root: reads transformer/
    with pytest.raises(CheckpointError, match="other weights"):  # would shadow the new file
        save_pretrained(model, folder)
    (folder / "diffusion_pytorch_model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="00002-of-00002"):
        read_state_dict(folder)


WAN_1_3B_CONFIG = {
    "_class_name": "WanModel", "_diffusers_version": "0.30.0", "dim": 1536, "eps": 1e-06, "ffn_dim": 8960,
    "freq_dim": 256, "in_dim": 16, "model_type": "t2v", "num_heads": 12, "num_layers": 30, "out_dim": 16,
    "text_len": 512,
}  # fmt: skip
DIFFUSERS_1_3B_CONFIG = {
    "_class_name": "WanTransformer3DModel", "_diffusers_version": "0.33.0.dev0", "added_kv_proj_dim": None,
    "attention_head_dim": 128, "cross_attn_norm": True, "eps": 1e-06, "ffn_dim": 8960, "freq_dim": 256,
    "image_dim": None, "in_channels": 16, "num_attention_heads": 12, "num_layers": 30, "out_channels": 16,
    "patch_size": [1, 2, 2], "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 1024, "text_dim": 4096,
}  # fmt: skip


@pytest.mark.parametrize("raw", [WAN_1_3B_CONFIG, DIFFUSERS_1_3B_CONFIG], ids=["wan", "diffusers"])
def test_released_config_files_map_to_the_preset(tmp_path, raw):
    (tmp_path / "config.json").write_text(json.dumps(raw))
    assert WanConfig(**config_from_folder(tmp_path)) == PRESETS["wan2.1-t2v-1.3b"]


@pytest.mark.parametrize(
    "raw",
    [
        {"dim": 1536, "ffn_dim": 8960, "num_heads": 12, "num_layers": 30},
        {"num_attention_heads": 12, "attention_head_dim": 128, "ffn_dim": 8960, "num_layers": 30},
    ],
    ids=["wan", "diffusers"],
)
def test_minimal_config_files_take_their_format_defaults(tmp_path, raw):
    (tmp_path / "config.json").write_text(json.dumps(raw))
    assert WanConfig(**config_from_folder(tmp_path)) == PRESETS["wan2.1-t2v-1.3b"]
    del raw["ffn_dim"]
    (tmp_path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="ffn_dim"):
        config_from_folder(tmp_path)


def test_config_from_folder_rejects_unknown_and_i2v_configs(tmp_path):
    assert config_from_folder(tmp_path) is None
    (tmp_path / "config.json").write_text(json.dumps({"lr": 1e-4}))
    with pytest.raises(CheckpointError, match="neither"):
        config_from_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**WAN_1_3B_CONFIG, "model_type": "i2v"}))
    with pytest.raises(CheckpointError, match="i2v"):
        config_from_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**DIFFUSERS_1_3B_CONFIG, "image_dim": 1280}))
    with pytest.raises(CheckpointError, match="image_dim"):
        config_from_folder(tmp_path)


# ------------------------------------------------------------------------------------------ errors


# The same fault written in each layout's names; the model always reports its own (Wan) names.
_FAULT_NAMES = {
    "wan": ("blocks.1.cross_attn.q.weight", "blocks.1.cross_attn.qq.weight", "blocks.1.cross_attn.q.lora_A"),
    "diffusers": ("blocks.1.attn2.to_q.weight", "blocks.1.attn2.to_qq.weight", "blocks.1.attn2.to_q.lora_A"),
}


@pytest.mark.parametrize("layout", ["wan", "diffusers"])
@pytest.mark.parametrize("fault", ["renamed", "missing", "extra", "shape"])
def test_strict_load_names_the_faulty_key(fault, layout):
    model = CausalWanModel.from_preset("tiny")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sd = _tiny().state_dict()
    sd = dict(sd) if layout == "wan" else wan_to_diffusers(sd)
    key, renamed, extra = _FAULT_NAMES[layout]
    missing_msg = r"missing keys \(1\):\s+blocks\.1\.cross_attn\.q\.weight(\s|$)"
    if fault == "renamed":
        sd[renamed] = sd.pop(key)
        expected = [missing_msg, r"unexpected keys \(1\):\s+" + re.escape(renamed)]
    elif fault == "missing":
        del sd[key]
        expected = [missing_msg]
    elif fault == "extra":
        sd[extra] = torch.zeros(2, 2)
        expected = [r"unexpected keys \(1\):\s+" + re.escape(extra)]
    else:
        sd[key] = torch.zeros(32, 31)
        expected = [r"blocks\.1\.cross_attn\.q\.weight.*\[32, 31\] vs model \[32, 32\]"]
        if layout == "diffusers":  # also under the checkpoint's own name
            expected.append(r"blocks\.1\.cross_attn\.q\.weight \(checkpoint key " + re.escape(key) + r"\)")
    with pytest.raises(CheckpointError) as info:
        load_state_dict_strict(model, sd)
    for pattern in expected:
        assert re.search(pattern, str(info.value), flags=re.S), (pattern, str(info.value))
    _assert_same_state_dict(model.state_dict(), before)  # nothing was copied


def test_architecture_override_that_does_not_fit_the_weights_fails_by_key(tmp_path):
    save_pretrained(_tiny(), tmp_path)
    with pytest.raises(CheckpointError, match=r"(?s)unexpected keys.*blocks\.1\.") as info:
        load_pretrained(CausalWanModel, tmp_path, num_layers=1)
    assert str(tmp_path) in str(info.value)


def test_missing_path_and_empty_folder_name_the_path(tmp_path):
    missing = tmp_path / "no_such_checkpoint"
    for call in (lambda: load_pretrained(CausalWanModel, missing, preset="tiny"), lambda: read_state_dict(missing)):
        with pytest.raises(FileNotFoundError, match="no_such_checkpoint"):
            call()
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="empty_run"):
        load_pretrained(CausalWanModel, empty, preset="tiny")


@pytest.mark.parametrize("name", ["broken.safetensors", "broken.pt"])
def test_corrupt_file_names_the_path(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".pt"):
        torch.save(_tiny().state_dict(), path)
        path.write_bytes(path.read_bytes()[:300])  # truncated download
    else:
        path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        read_state_dict(path)
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        load_pretrained(CausalWanModel, path, preset="tiny")


def test_pickled_objects_are_refused_unless_allowed(tmp_path):
    model = _tiny()
    path = tmp_path / "with_objects.pt"
    torch.save({"generator": model.state_dict(), "extra": _NotATensor()}, path)
    with pytest.raises(CheckpointError, match=r"with_objects\.pt.*allow_pickle"):
        read_state_dict(path)
    _assert_same_state_dict(read_state_dict(path, allow_pickle=True), model.state_dict())


def test_save_pretrained_needs_a_wan_config(tmp_path):
    with pytest.raises(TypeError):
        save_pretrained(torch.nn.Linear(2, 2), tmp_path)
