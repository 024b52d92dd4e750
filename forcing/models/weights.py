"""Weight loading and conversion for the Wan2.1 backbone.

One entry point per job:

- :func:`load_pretrained`: build a model of a given class (``CausalWanModel.from_pretrained`` passes
  itself) from a folder or file (original Wan weights, diffusers weights, Self Forcing / Causal
  Forcing training checkpoints) and load it strictly;
- :func:`save_pretrained`: write a model as ``diffusion_pytorch_model.safetensors`` + ``config.json``
  in the original Wan or the diffusers format (the latter loads with
  ``diffusers.WanTransformer3DModel.from_pretrained``);
- :func:`load_state_dict_strict`: load any state dict into a model, converting the layout when
  needed; every missing, unexpected or mis-shaped key is reported by name;
- :func:`wan_to_diffusers` / :func:`diffusers_to_wan`: exact key renaming either way.

The helpers live in :mod:`forcing.models.weights_keys` (key names, pure) and
:mod:`forcing.models.weights_io` (files and config.json). This module never imports the backbone
(:mod:`forcing.models.wan` imports it): the model class is an argument of :func:`load_pretrained`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from forcing.models.presets import PRESETS, WanConfig, get_preset
from forcing.models.weights_io import (
    config_from_folder,
    config_to_json,
    read_checkpoint,
    read_state_dict,
    write_folder,
)
from forcing.models.weights_keys import (
    CheckpointError,
    Layout,
    convert_layout,
    detect_layout,
    diffusers_to_wan,
    strip_wrapper_prefixes,
    unwrap_checkpoint,
    wan_to_diffusers,
)

__all__ = [
    "CheckpointError",
    "config_from_folder",
    "convert_layout",
    "detect_layout",
    "diffusers_to_wan",
    "load_pretrained",
    "load_state_dict_strict",
    "read_checkpoint",
    "read_state_dict",
    "save_pretrained",
    "strip_wrapper_prefixes",
    "unwrap_checkpoint",
    "wan_to_diffusers",
]

#: The model class :func:`load_pretrained` builds (``CausalWanModel`` or a subclass).
ModelT = TypeVar("ModelT", bound=nn.Module)

log = logging.getLogger(__name__)
_REPORT_LIMIT = 20  # keys listed per category in an error message


def _shape(t: torch.Tensor) -> list[int]:
    return list(t.shape)


def _listing(title: str, lines: list[str]) -> str:
    shown = lines[:_REPORT_LIMIT]
    more = f"\n    ... and {len(lines) - len(shown)} more" if len(lines) > len(shown) else ""
    return f"  {title} ({len(lines)}):\n    " + "\n    ".join(shown) + more


def _mismatch_report(
    model: nn.Module, sd: Mapping[str, torch.Tensor], origin: Mapping[str, str], header: str
) -> str | None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [origin.get(k, k) for k in sd if k not in expected]
    shapes = []
    for key, value in sd.items():
        if key in expected and value.shape != expected[key].shape:
            name = key if origin.get(key, key) == key else f"{key} (checkpoint key {origin[key]})"
            shapes.append(f"{name}: checkpoint {_shape(value)} vs model {_shape(expected[key])}")
    if not (missing or unexpected or shapes):
        return None
    parts = [header]
    if missing:
        parts.append(_listing("missing keys", missing))
    if unexpected:
        parts.append(_listing("unexpected keys", unexpected))
    if shapes:
        parts.append(_listing("shape mismatches", shapes))
    return "\n".join(parts)


def load_state_dict_strict(model: nn.Module, sd: Mapping[str, Any], prefer: str = "generator_ema") -> None:
    """Load ``sd`` into ``model`` exactly: every model key present, no extra key, every shape equal.

    ``sd`` may be in the original Wan or the diffusers layout, whichever ``model`` uses (a
    ``CausalWanModel`` or a ``diffusers.WanTransformer3DModel``), and may be a training checkpoint
    (unwrapped with :func:`unwrap_checkpoint`, ``prefer`` picking the network). Values are cast to
    the model's dtypes. Raises :class:`CheckpointError` listing every missing, unexpected and
    mis-shaped key by name (unexpected keys under their name in the checkpoint) before anything is
    copied, so a failed call leaves the model untouched.
    """
    sd = unwrap_checkpoint(sd, prefer)
    target = detect_layout(model.state_dict())
    source = detect_layout(sd)
    origin: dict[str, str] = {}
    if source != target:
        converted = (
            wan_to_diffusers(sd, strict=False)
            if target == "diffusers"
            else diffusers_to_wan(sd, strict=False)
        )
        origin = dict(zip(converted, sd))  # conversion keeps key order
        sd = converted
    header = f"cannot load a {source}-layout checkpoint into {type(model).__name__} ({target} layout):"
    report = _mismatch_report(model, sd, origin, header)
    if report is not None:
        raise CheckpointError(report)
    model.load_state_dict(sd, strict=True)


def _model_config(path: Path, preset: str | None, overrides: Mapping[str, Any]) -> WanConfig:
    fields = config_from_folder(path)
    if fields is not None:
        config = WanConfig(**fields).replace(**overrides)
        if preset is not None and _arch(get_preset(preset, **overrides)) != _arch(config):
            log.warning("config.json of %s differs from preset %r; using config.json", path, preset)
        return config
    if preset is None:
        raise CheckpointError(
            f"{path} has no config.json: pass preset= (one of {sorted(PRESETS)}) to say which architecture it holds"
        )
    return get_preset(preset, **overrides)


def _arch(config: Any) -> dict[str, Any]:
    skip = ("gradient_checkpointing", "attention_backend")
    return {k: v for k, v in config.to_dict().items() if k not in skip}


def load_pretrained(
    model_cls: Callable[[WanConfig], ModelT],
    path: str | Path,
    preset: str | None = None,
    *,
    prefer: str = "generator_ema",
    allow_pickle: bool = False,
    dtype: torch.dtype | None = None,
    **overrides: Any,
) -> ModelT:
    """Build ``model_cls(config)`` and load its weights from ``path`` (a folder or a weights file).

    The architecture comes from the ``config.json`` next to the weights (original Wan or diffusers
    format) when there is one, otherwise from ``preset``; neither raises :class:`CheckpointError`.
    ``overrides`` change ``WanConfig`` fields afterwards (run-time switches such as
    ``gradient_checkpointing=True``; architecture changes make the strict load fail). Weights may be
    in either layout, sharded, or a Self Forcing / Causal Forcing training checkpoint (``prefer``
    picks the network: ``generator_ema`` if present, else ``generator``). ``allow_pickle`` lets
    ``torch.load`` unpickle arbitrary objects (trusted files only). ``dtype`` is the parameter dtype
    of the returned model (default float32: bf16 weights are upcast exactly); the weights are cast
    while loading, so ``dtype=torch.bfloat16`` never holds a float32 copy of the model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint path not found: {path}")
    config = _model_config(path, preset, overrides)
    sd = read_state_dict(path, prefer=prefer, allow_pickle=allow_pickle)
    model = _empty_model(model_cls, config, dtype)
    try:
        load_state_dict_strict(model, sd)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    return model


def _empty_model(model_cls: Callable[[WanConfig], ModelT], config: WanConfig, dtype: torch.dtype | None) -> ModelT:
    """A CPU model whose parameters are about to be overwritten: skip the random init when safe.

    Built on the meta device and materialised uninitialised (seconds instead of minutes for 14B);
    the strict load then writes every parameter. A model with buffers (possibly non-persistent,
    hence not in any checkpoint) is built normally instead, so that they hold real values.
    """
    with torch.device("meta"):
        model = model_cls(config)
    if next(model.buffers(), None) is None:
        model = model.to_empty(device="cpu")
    else:
        model = model_cls(config)
    return model if dtype is None else model.to(dtype)


def save_pretrained(model: nn.Module, folder: str | Path, layout: Layout = "wan") -> Path:
    """Write ``model`` to ``folder`` as ``diffusion_pytorch_model.safetensors`` + ``config.json``.

    ``layout="wan"`` writes original Wan names and a Wan ``config.json``; ``layout="diffusers"``
    writes what ``diffusers.WanTransformer3DModel.from_pretrained(folder)`` loads. Both load back
    with :func:`load_pretrained`. ``model.config`` must be a ``WanConfig``. Returns the folder.
    """
    config = getattr(model, "config", None)
    if not hasattr(config, "to_dict"):
        raise TypeError(
            f"save_pretrained needs a model with a WanConfig on .config, got {type(model).__name__}"
        )
    sd = convert_layout(model.state_dict(), layout, strict=True)
    return write_folder(sd, folder, config_to_json(config.to_dict(), layout))
