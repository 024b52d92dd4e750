"""The official Self Forcing code (a local clone, github.com/guandeh17/Self-Forcing) loaded into this
process for the `official` section; none of its code is copied into this project.

What is used from the clone, unchanged: `wan/modules/causal_model.py` (`CausalWanModel`, its
KV-cached `_forward_inference`), `utils/wan_wrapper.py` (`WanDiffusionWrapper`: flow -> x0),
`utils/scheduler.py` (`FlowMatchScheduler`: warp and re-noising), `pipeline/causal_inference.py`
(`CausalInferencePipeline.inference`: the block loop) and `configs/{default_config,self_forcing_dmd}.yaml`.

Stand-ins, only inside this process, each for a reason (file: line of the clone at commit 33593df):
- package `__init__` files are skipped (`wan/__init__.py` imports the whole T2V/I2V stack, easydict,
  xfuser; `pipeline/__init__.py` every pipeline): `wan`, `wan.modules`, `pipeline`, `utils`, `demo_utils`
  are registered as bare packages of the clone's folders while its modules are imported, and every
  name is taken out of `sys.modules` again afterwards (so a project `utils` is never shadowed);
- `einops` (`wan/modules/model.py:8`, `wan/modules/vae.py:8`) and `ftfy` (`wan/modules/tokenizers.py:5`)
  when not installed: modules whose functions raise (only the GAN branch, the VAE and the tokenizer
  call them, never this benchmark);
- `demo_utils/memory.py:9` and `wan/modules/t5.py:478` (a default argument) call
  `torch.cuda.current_device()` at import: without CUDA, stand-in modules (the benchmark uses neither
  `low_memory` nor the UMT5 text encoder: it gives both models the same random text embeddings);
- attention: `wan/modules/model.py:189` (`flash_attention`, cross-attention) asserts a CUDA device and
  needs flash-attn; `wan/modules/attention.py:177` (`attention`, the cached self-attention) falls back to
  SDPA but casts q/k/v to bf16 and returns bf16, which the fp32 output projection rejects. Both are
  replaced by fp32 `scaled_dot_product_attention` (what our model runs on CPU);
- `utils/wan_wrapper.py:127` loads `wan_models/<name>/` (`CausalWanModel.from_pretrained`): the
  wrapper is built by its own `__init__` with `from_pretrained` answering the tiny model built here;
- `pipeline/causal_inference.py:33-34,285-296,308` hard-code Wan-1.3B sizes (30 blocks, 1560 tokens/frame,
  KV caches of 12 heads x 128 and 512 text tokens, 32760 tokens without a window): set to the tiny
  model's sizes (the same allocation with other shapes).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from forcing.models.presets import WanConfig
from forcing.models.weights_keys import convert_layout

__all__ = [
    "OfficialCode",
    "isolated_imports",
    "load_official",
    "official_model_kwargs",
    "official_state_dict",
    "sdpa_fp32",
]

#: packages of the clone registered without running their __init__
CLONE_PACKAGES = ("wan", "wan.modules", "pipeline", "utils", "demo_utils")
#: modules the benchmark imports from the clone
CLONE_MODULES = (
    "wan.modules.model",
    "wan.modules.causal_model",
    "utils.wan_wrapper",
    "pipeline.causal_inference",
)
#: third-party modules replaced by raising stand-ins when not installed
OPTIONAL_THIRD_PARTY = ("einops", "ftfy")
#: the clone's real dependencies, imported before the stand-ins exist (diffusers probes for ftfy)
DEPENDENCIES = ("diffusers.configuration_utils", "diffusers.models.modeling_utils", "omegaconf")


def sdpa_fp32(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """Stand-in for their `attention` / `flash_attention`: q [B, Lq, H, d], k/v [B, Lk, H, d] -> [B, Lq, H, d]
    in q's dtype; no padding masks (they pass q_lens = k_lens = None on this path)."""
    lens = [kwargs.get(name) for name in ("q_lens", "k_lens")]
    if any(x is not None for x in lens) or kwargs.get("causal"):
        raise NotImplementedError("sdpa_fp32 stand-in: padding masks / causal=True are not used by inference")
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2).to(q.dtype)


def _raising_module(name: str, attributes: tuple[str, ...], why: str) -> types.ModuleType:
    """A module whose named functions raise RuntimeError(why) when called."""
    module = types.ModuleType(name)

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{name} stand-in of the official benchmark was called: {why}")

    for attribute in attributes:
        setattr(module, attribute, stand_in)
    return module


def _stand_ins() -> dict[str, types.ModuleType]:
    """Stand-ins needed on this machine (missing optional packages; demo_utils.memory without CUDA)."""
    out = {}
    if importlib.util.find_spec("einops") is None:
        out["einops"] = _raising_module("einops", ("rearrange", "repeat"), "einops is not installed")
    if importlib.util.find_spec("ftfy") is None:
        out["ftfy"] = _raising_module("ftfy", ("fix_text",), "ftfy is not installed")
    if not torch.cuda.is_available():
        memory = _raising_module(
            "demo_utils.memory",
            ("get_cuda_free_memory_gb", "move_model_to_device_with_memory_preservation"),
            "its import needs CUDA",
        )
        memory.gpu = torch.device("cpu")
        memory.DynamicSwapInstaller = None
        out["demo_utils.memory"] = memory
        out["wan.modules.t5"] = _raising_module("wan.modules.t5", ("umt5_xxl",), "its import needs CUDA")
    return out


def _owned(name: str) -> bool:
    """True for the module names this loader may put into sys.modules."""
    tops = {p.split(".")[0] for p in CLONE_PACKAGES} | set(OPTIONAL_THIRD_PARTY)
    return name.split(".")[0] in tops


@contextlib.contextmanager
def isolated_imports(root: Path) -> Iterator[None]:
    """Import from the clone at `root` inside the block; sys.modules is as before afterwards."""
    saved = {name: module for name, module in sys.modules.items() if _owned(name)}
    for name in saved:
        del sys.modules[name]
    try:
        for name in CLONE_PACKAGES:
            package = types.ModuleType(name)
            package.__path__ = [str(root.joinpath(*name.split(".")))]
            sys.modules[name] = package
        sys.modules.update(_stand_ins())
        yield
    finally:
        for name in [n for n in sys.modules if _owned(n)]:
            del sys.modules[name]
        sys.modules.update(saved)


@dataclass(frozen=True)
class OfficialCode:
    """The clone's modules (imported, attention stand-ins installed) and its merged inference config."""

    root: Path
    causal_model: types.ModuleType
    wan_wrapper: types.ModuleType
    pipeline: types.ModuleType
    config: Any  # OmegaConf: default_config.yaml merged with self_forcing_dmd.yaml (as inference.py does)

    def build_model(self, cfg: WanConfig, text_len: int, local_attn_size: int) -> torch.nn.Module:
        """Their CausalWanModel with our architecture (random init; load `official_state_dict` into it)."""
        return self.causal_model.CausalWanModel(**official_model_kwargs(cfg, text_len, local_attn_size))

    def build_pipeline(
        self, model: torch.nn.Module, tokens_per_frame: int, max_frames: int, text: Any, vae: Any
    ) -> Any:
        """Their CausalInferencePipeline around `model` (text encoder / VAE: the given stand-ins); its KV
        cache holds `local_attn_size` frames, or `max_frames` without a window (theirs: 21 frames)."""
        wrapper_module = self.wan_wrapper
        real = wrapper_module.CausalWanModel
        wrapper_module.CausalWanModel = types.SimpleNamespace(from_pretrained=lambda *a, **k: model)
        try:  # their own __init__: scheduler (shift, sigma_min 0, extra step), 1000 training timesteps
            wrapper = wrapper_module.WanDiffusionWrapper(
                **self.config.get("model_kwargs", {}),
                is_causal=True,
                local_attn_size=model.local_attn_size,
            )
        finally:
            wrapper_module.CausalWanModel = real
        with contextlib.redirect_stdout(None):
            pipe = self.pipeline.CausalInferencePipeline(
                self.config, device=torch.device("cpu"), generator=wrapper, text_encoder=text, vae=vae
            )
        _resize_pipeline(pipe, model, tokens_per_frame, max_frames)
        return pipe


def _resize_pipeline(pipe: Any, model: Any, tokens_per_frame: int, max_frames: int) -> None:
    """Replace the 1.3B constants of their pipeline and its two cache initialisers by the model's sizes."""
    pipe.num_transformer_blocks = model.num_layers
    pipe.frame_seq_length = tokens_per_frame
    heads, head_dim = model.num_heads, model.dim // model.num_heads
    window = model.local_attn_size if model.local_attn_size != -1 else max_frames
    size = window * tokens_per_frame  # theirs: local_attn_size * 1560, or 32760 tokens (21 frames)

    def init_kv_cache(self: Any, batch_size: int, dtype: torch.dtype, device: torch.device) -> None:
        shape = [batch_size, size, heads, head_dim]
        self.kv_cache1 = [
            {
                "k": torch.zeros(shape, dtype=dtype, device=device),
                "v": torch.zeros(shape, dtype=dtype, device=device),
                "global_end_index": torch.tensor([0], dtype=torch.long, device=device),
                "local_end_index": torch.tensor([0], dtype=torch.long, device=device),
            }
            for _ in range(self.num_transformer_blocks)
        ]

    def init_crossattn_cache(self: Any, batch_size: int, dtype: torch.dtype, device: torch.device) -> None:
        shape = [batch_size, model.text_len, heads, head_dim]
        self.crossattn_cache = [
            {
                "k": torch.zeros(shape, dtype=dtype, device=device),
                "v": torch.zeros(shape, dtype=dtype, device=device),
                "is_init": False,
            }
            for _ in range(self.num_transformer_blocks)
        ]

    pipe._initialize_kv_cache = types.MethodType(init_kv_cache, pipe)
    pipe._initialize_crossattn_cache = types.MethodType(init_crossattn_cache, pipe)


def load_official(root: str | Path) -> OfficialCode:
    """Import the official code from the clone at `root` (see the module docstring for the stand-ins)."""
    root = Path(root).expanduser().resolve()
    missing = [m for m in CLONE_MODULES if not root.joinpath(*m.split(".")).with_suffix(".py").is_file()]
    if missing:
        raise FileNotFoundError(f"{root} is not a Self Forcing clone: no {', '.join(missing)}")
    for name in DEPENDENCIES:
        importlib.import_module(name)
    with isolated_imports(root):
        modules = {name: importlib.import_module(name) for name in CLONE_MODULES}
    modules["wan.modules.model"].flash_attention = sdpa_fp32  # cross-attention (WAN_CROSSATTENTION_CLASSES)
    modules["wan.modules.causal_model"].attention = sdpa_fp32  # cached self-attention
    omegaconf = sys.modules["omegaconf"].OmegaConf
    config = omegaconf.merge(
        omegaconf.load(root / "configs" / "default_config.yaml"),
        omegaconf.load(root / "configs" / "self_forcing_dmd.yaml"),
    )
    return OfficialCode(
        root,
        modules["wan.modules.causal_model"],
        modules["utils.wan_wrapper"],
        modules["pipeline.causal_inference"],
        config,
    )


def official_model_kwargs(cfg: WanConfig, text_len: int, local_attn_size: int) -> dict[str, Any]:
    """Keyword arguments of their `CausalWanModel.__init__` for our architecture `cfg`.

    `text_len`: their model pads every prompt to it (set to our prompt length: no padding tokens);
    `local_attn_size`: their attention window in frames (-1: unlimited), no sink.
    """
    return {
        "model_type": "t2v",
        "patch_size": tuple(cfg.patch_size),
        "text_len": text_len,
        "in_dim": cfg.in_dim,
        "dim": cfg.dim,
        "ffn_dim": cfg.ffn_dim,
        "freq_dim": cfg.freq_dim,
        "text_dim": cfg.text_dim,
        "out_dim": cfg.out_dim,
        "num_heads": cfg.num_heads,
        "num_layers": cfg.num_layers,
        "local_attn_size": local_attn_size,
        "sink_size": 0,
        "qk_norm": True,
        "cross_attn_norm": cfg.cross_attn_norm,
        "eps": cfg.eps,
    }


def official_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our weights under their module names: the original Wan layout (theirs keeps Wan's names),
    converted from either layout; tensors cloned, so loading theirs never aliases ours."""
    return {k: v.detach().clone() for k, v in convert_layout(state_dict, "wan").items()}
