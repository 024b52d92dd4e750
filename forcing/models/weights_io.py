"""Reading and writing Wan2.1 weights and config.json files (original Wan and diffusers formats).

Nothing here builds a model: files in, state dicts and plain config dicts out (and back).
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from forcing.models.weights_keys import CheckpointError, Layout, unwrap_checkpoint

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "config_format",
    "config_from_folder",
    "config_to_json",
    "find_weight_files",
    "read_checkpoint",
    "read_config_json",
    "read_state_dict",
    "write_folder",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"  # the name both Wan and diffusers repos use
_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
_DIFFUSERS_CLASSES = ("WanTransformer3DModel", "SkyReelsV2Transformer3DModel")


# ----------------------------------------------------------------------------------------------
# Weights
# ----------------------------------------------------------------------------------------------


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for truncated/garbled files
        raise CheckpointError(f"cannot read safetensors file {path}: {_why(exc)}") from exc


def _torch_load(path: Path, weights_only: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        return torch.load(path, map_location="cpu", weights_only=weights_only)  # legacy (non-zip) format


def read_checkpoint(path: str | Path, allow_pickle: bool = False) -> Any:
    """Read one weights file as it was saved (a state dict, or a dict of them).

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(weights_only=True)`` (memory-mapped when the file allows it). A file that pickles
    arbitrary objects is refused with an error naming it, unless ``allow_pickle`` (only for files
    you trust: unpickling runs code). Missing or corrupt files raise errors naming the path.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint is not a file: {path}")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    try:
        return _torch_load(path, weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if refused is None:
            raise CheckpointError(
                f"cannot read checkpoint {path} (corrupt or not a torch file): {_why(exc)}"
            ) from exc
        if not allow_pickle:
            raise CheckpointError(
                f"checkpoint {path} pickles {refused.group(1)}, so torch.load(weights_only=True) refused it; "
                f"re-save it as a plain dict of tensors, or pass allow_pickle=True if you trust the file"
            ) from exc
    except Exception as exc:
        raise CheckpointError(
            f"cannot read checkpoint {path} (corrupt or not a torch file): {_why(exc)}"
        ) from exc
    try:
        return _torch_load(path, weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {_why(exc)}") from exc


def _why(exc: BaseException) -> str:
    """A short reason: torch's own unpickler reason when there is one, else the first line."""
    text = str(exc).strip()
    inner = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(\n\n|\Z)", text, flags=re.S)
    first = inner.group(1) if inner else (text.splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"


def _resolve_folder(folder: Path) -> Path:
    """A diffusers pipeline folder keeps the transformer in ``transformer/``: descend into it."""
    sub = folder / "transformer"
    own = [
        p
        for p in folder.iterdir()
        if p.is_file() and (p.suffix == ".safetensors" or p.suffix in _TORCH_SUFFIXES)
    ]
    if not own and not (folder / CONFIG_NAME).is_file() and sub.is_dir():
        return sub
    return folder


def _shards_from_index(folder: Path) -> list[Path] | None:
    indexes = sorted(folder.glob("*.safetensors.index.json"))
    if not indexes:
        return None
    preferred = [p for p in indexes if p.name == WEIGHTS_NAME + ".index.json"]
    if len(indexes) > 1 and not preferred:
        raise CheckpointError(
            f"several weight indexes in {folder}: {[p.name for p in indexes]}; point at one file"
        )
    index = (preferred or indexes)[0]
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"cannot read weight index {index}: {exc}") from exc
    shards = [folder / name for name in dict.fromkeys(weight_map.values())]
    missing = [str(p) for p in shards if not p.is_file()]
    if missing:
        raise CheckpointError(f"weight index {index} lists missing shard(s): {missing}")
    return shards


def find_weight_files(folder: str | Path) -> list[Path]:
    """The files holding a model's weights in ``folder``, in load order.

    In order of preference: the shards of a ``*.safetensors.index.json``; the
    ``diffusion_pytorch_model*.safetensors`` files; all ``*.safetensors`` files; the single
    ``.pt/.pth/.bin/.ckpt`` file. A diffusers pipeline folder is searched in ``transformer/``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"weights folder not found: {folder}")
    folder = _resolve_folder(folder)
    shards = _shards_from_index(folder)
    if shards is not None:
        return shards
    for pattern in ("diffusion_pytorch_model*.safetensors", "*.safetensors"):
        files = sorted(folder.glob(pattern))
        if files:
            return files
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _TORCH_SUFFIXES)
    if len(files) > 1:
        raise CheckpointError(
            f"several checkpoint files in {folder}: {[p.name for p in files]}; point at one"
        )
    if not files:
        raise CheckpointError(f"no weights (*.safetensors, *.pt, *.pth, *.bin, *.ckpt) in folder {folder}")
    return files


def _merge_shards(parts: list[tuple[Path, dict[str, torch.Tensor]]]) -> dict[str, torch.Tensor]:
    merged: dict[str, torch.Tensor] = {}
    origin: dict[str, Path] = {}
    for path, sd in parts:
        for key, value in sd.items():
            if key in merged:
                raise CheckpointError(f"key {key!r} is in two shards: {origin[key]} and {path}")
            merged[key], origin[key] = value, path
    return merged


def read_state_dict(
    path: str | Path, prefer: str = "generator_ema", allow_pickle: bool = False
) -> dict[str, torch.Tensor]:
    """Read a model's state dict from a file or a folder, in whatever layout it was saved.

    ``path`` is a weights file or a folder (see :func:`find_weight_files`). Training checkpoints
    are unwrapped with :func:`~forcing.models.weights_keys.unwrap_checkpoint` (``prefer`` picks
    the network, by default ``generator_ema`` else ``generator``) and lose their wrapper prefixes.
    The key layout (Wan or diffusers) is left as found.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint path not found: {path}")
    files = [path] if path.is_file() else find_weight_files(path)
    if len(files) == 1:
        obj = read_checkpoint(files[0], allow_pickle)
        try:
            return unwrap_checkpoint(obj, prefer)
        except CheckpointError as exc:
            raise CheckpointError(f"{files[0]}: {exc}") from exc
    parts = []
    for file in files:
        sd = read_checkpoint(file, allow_pickle)
        if not isinstance(sd, Mapping):
            raise CheckpointError(f"shard {file} is not a state dict")
        parts.append((file, dict(sd)))
    try:
        return unwrap_checkpoint(_merge_shards(parts), prefer)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc


def _standalone(tensor: torch.Tensor, seen: set[int]) -> torch.Tensor:
    """A CPU tensor that owns its whole storage (safetensors refuses views and shared storage)."""
    tensor = tensor.detach().to("cpu").contiguous()
    storage = tensor.untyped_storage()
    if storage.data_ptr() in seen or storage.nbytes() != tensor.numel() * tensor.element_size():
        tensor = tensor.clone()
    seen.add(tensor.untyped_storage().data_ptr())
    return tensor


def write_folder(sd: Mapping[str, torch.Tensor], folder: str | Path, config: Mapping[str, Any]) -> Path:
    """Write ``sd`` as ``diffusion_pytorch_model.safetensors`` and ``config`` as ``config.json``.

    Refuses a folder that already holds other weight files (they would shadow or mix with the new
    ones when read back). Returns the folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    others = [
        p.name
        for p in folder.iterdir()
        if p.name != WEIGHTS_NAME
        and (p.suffix in (".safetensors", *_TORCH_SUFFIXES) or p.name.endswith(".safetensors.index.json"))
    ]
    if others:
        raise CheckpointError(
            f"{folder} already holds other weights {sorted(others)}; save to an empty folder"
        )
    seen: set[int] = set()
    tensors = {key: _standalone(value, seen) for key, value in sd.items()}
    save_file(tensors, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    (folder / CONFIG_NAME).write_text(json.dumps(dict(config), indent=2, sort_keys=True) + "\n")
    return folder


# ----------------------------------------------------------------------------------------------
# config.json: original Wan format <-> diffusers format <-> the model's WanConfig fields
# ----------------------------------------------------------------------------------------------

# What each format's own model class assumes when config.json leaves a field out.
_WAN_DEFAULTS: dict[str, Any] = {
    "in_dim": 16, "out_dim": 16, "text_dim": 4096, "freq_dim": 256, "patch_size": (1, 2, 2), "eps": 1e-6,
    "cross_attn_norm": True, "qk_norm": True, "model_type": "t2v",
}  # fmt: skip
_WAN_REQUIRED = ("dim", "ffn_dim", "num_heads", "num_layers")
_DIFFUSERS_DEFAULTS: dict[str, Any] = {
    "in_channels": 16, "out_channels": None, "text_dim": 4096, "freq_dim": 256, "patch_size": (1, 2, 2),
    "eps": 1e-6, "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads",
}  # fmt: skip
_DIFFUSERS_REQUIRED = ("num_attention_heads", "attention_head_dim", "ffn_dim", "num_layers")
_DIFFUSERS_RENAMES = {
    "in_channels": "in_dim", "out_channels": "out_dim", "text_dim": "text_dim", "freq_dim": "freq_dim",
    "ffn_dim": "ffn_dim", "num_layers": "num_layers", "patch_size": "patch_size", "eps": "eps",
    "cross_attn_norm": "cross_attn_norm",
}  # fmt: skip
# Architecture fields written to config.json (the rest of WanConfig are run-time switches).
_ARCH_FIELDS = ("dim", "ffn_dim", "freq_dim", "text_dim", "num_heads", "num_layers", "in_dim", "out_dim",
                "patch_size", "eps", "cross_attn_norm")  # fmt: skip
_WAN_TEXT_LEN = 512  # UMT5 tokens; Wan's own code pads the context to this length
_ROPE_THETA = 10000.0  # fixed in Wan and diffusers; written to config.json only when it differs


def read_config_json(path: str | Path) -> dict[str, Any] | None:
    """The raw ``config.json`` of a weights folder (or of a weights file's folder); None if absent."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint path not found: {path}")
    folder = _resolve_folder(path) if path.is_dir() else path.parent
    file = folder / CONFIG_NAME
    if not file.is_file():
        return None
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {file}: {exc}") from exc
    if not isinstance(raw, dict):
        raise CheckpointError(f"{file} is not a JSON object")
    return raw


def config_format(raw: Mapping[str, Any]) -> Layout | None:
    """Say "wan" for an original Wan ``config.json``, "diffusers" for a diffusers one, else None."""
    if raw.get("_class_name") in _DIFFUSERS_CLASSES or "num_attention_heads" in raw:
        return "diffusers"
    if "dim" in raw and "num_heads" in raw:
        return "wan"
    return None


def _require(raw: Mapping[str, Any], names: tuple[str, ...], where: str) -> None:
    missing = [name for name in names if raw.get(name) is None]
    if missing:
        raise CheckpointError(f"{where} lacks required field(s) {missing}")


def _from_diffusers(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    _require(raw, _DIFFUSERS_REQUIRED, where)
    for key in ("image_dim", "added_kv_proj_dim", "pos_embed_seq_len"):
        if raw.get(key) is not None:
            raise CheckpointError(
                f"{where} sets {key}={raw[key]!r}: image conditioning (I2V) is not supported"
            )
    raw = {**_DIFFUSERS_DEFAULTS, **raw}
    if raw["qk_norm"] != "rms_norm_across_heads":
        raise CheckpointError(
            f"{where} sets qk_norm={raw['qk_norm']!r}; only 'rms_norm_across_heads' is supported"
        )
    heads = raw["num_attention_heads"]
    cfg = {"dim": heads * raw["attention_head_dim"], "num_heads": heads}
    cfg.update({ours: raw[theirs] for theirs, ours in _DIFFUSERS_RENAMES.items()})
    if cfg["out_dim"] is None:
        cfg["out_dim"] = cfg["in_dim"]
    return cfg


def _from_wan(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    _require(raw, _WAN_REQUIRED, where)
    raw = {**_WAN_DEFAULTS, **raw}
    if raw["model_type"] != "t2v":
        raise CheckpointError(f"{where} has model_type={raw['model_type']!r}; only 't2v' is supported")
    if not raw["qk_norm"]:
        raise CheckpointError(f"{where} sets qk_norm=false; the model always normalises q and k")
    return {key: raw[key] for key in _ARCH_FIELDS}


def config_from_folder(path: str | Path) -> dict[str, Any] | None:
    """Read ``config.json`` next to the weights as keyword arguments of the model's ``WanConfig``.

    Both the original Wan format (``dim``, ``num_heads``, ``in_dim``, ``model_type``, ...) and
    diffusers' format (``num_attention_heads``, ``attention_head_dim``, ``in_channels``, ...) are
    understood; fields the file leaves out take the defaults of that format's own model class.
    Returns None when there is no ``config.json``. A file of neither format, a missing required
    field, or an unsupported variant (I2V, no qk-norm) raises :class:`CheckpointError` naming it.
    """
    raw = read_config_json(path)
    if raw is None:
        return None
    path = Path(path)
    where = f"config.json of {path}"
    kind = config_format(raw)
    if kind is None:
        raise CheckpointError(f"{where} is neither a Wan nor a diffusers Wan config: keys {sorted(raw)}")
    cfg = _from_diffusers(raw, where) if kind == "diffusers" else _from_wan(raw, where)
    cfg["patch_size"] = tuple(cfg["patch_size"])
    if "rope_theta" in raw:
        cfg["rope_theta"] = float(raw["rope_theta"])
    return cfg


def config_to_json(cfg: Mapping[str, Any], layout: Layout) -> dict[str, Any]:
    """Write ``WanConfig`` fields (a dict) as a ``config.json`` dict in the Wan or diffusers format."""
    if layout == "wan":
        out: dict[str, Any] = {"_class_name": "WanModel", "model_type": "t2v", "text_len": _WAN_TEXT_LEN,
                               "qk_norm": True, "window_size": [-1, -1]}  # fmt: skip
        out.update({key: cfg[key] for key in _ARCH_FIELDS})
        out["patch_size"] = list(out["patch_size"])
    elif layout == "diffusers":
        out = _to_diffusers(cfg)
    else:
        raise ValueError(f"unknown layout {layout!r}; expected 'wan' or 'diffusers'")
    if cfg.get("rope_theta", _ROPE_THETA) != _ROPE_THETA:
        out["rope_theta"] = cfg["rope_theta"]
    return out


def _to_diffusers(cfg: Mapping[str, Any]) -> dict[str, Any]:
    import diffusers

    if cfg["dim"] % cfg["num_heads"]:
        raise CheckpointError(f"dim {cfg['dim']} is not a multiple of num_heads {cfg['num_heads']}")
    return {
        "_class_name": "WanTransformer3DModel",
        "_diffusers_version": diffusers.__version__,
        "patch_size": list(cfg["patch_size"]),
        "num_attention_heads": cfg["num_heads"],
        "attention_head_dim": cfg["dim"] // cfg["num_heads"],
        "in_channels": cfg["in_dim"],
        "out_channels": cfg["out_dim"],
        "text_dim": cfg["text_dim"],
        "freq_dim": cfg["freq_dim"],
        "ffn_dim": cfg["ffn_dim"],
        "num_layers": cfg["num_layers"],
        "cross_attn_norm": cfg["cross_attn_norm"],
        "qk_norm": "rms_norm_across_heads",
        "eps": cfg["eps"],
        "image_dim": None,
        "added_kv_proj_dim": None,
        "rope_max_seq_len": 1024,
        "pos_embed_seq_len": None,
    }
