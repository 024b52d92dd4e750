"""Key names of Wan2.1 checkpoints: original Wan <-> diffusers layout, wrappers and layout detection.

Pure functions on state dicts (``dict[str, Tensor]``); nothing here builds a model or touches disk.

The original Wan layout (``WanModel`` of Wan2.1, and every Self Forcing descendant) and the diffusers
layout (``WanTransformer3DModel``, also ``SkyReelsV2Transformer3DModel``) hold the same tensors with
the same shapes under different names. The mapping is a table of name templates applied in either
direction, so the conversion is a bijection on the keys it knows and tensors are passed through
untouched (no copy, no reshape): ``diffusers_to_wan(wan_to_diffusers(sd))`` equals ``sd`` exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import torch

from forcing.errors import ConfigError

Layout = Literal["wan", "diffusers"]

__all__ = [
    "CheckpointError",
    "Layout",
    "NETWORK_KEYS",
    "convert_layout",
    "detect_layout",
    "diffusers_to_wan",
    "is_state_dict",
    "strip_wrapper_prefixes",
    "unwrap_checkpoint",
    "wan_to_diffusers",
]


class CheckpointError(ConfigError):
    """A checkpoint that cannot be read, converted or loaded; the message names the keys or the path.

    A :class:`~forcing.errors.ConfigError` (hence a ``ValueError``), so ``run.py`` reports it as one line.
    """


# ----------------------------------------------------------------------------------------------
# The name table. "{i}" is a block index, "{p}" a parameter leaf ("weight", "bias", ...).
# Left: original Wan; right: diffusers. Every pattern is anchored (full match), and no two
# patterns of one side can match the same key, so the table is a bijection.
# ----------------------------------------------------------------------------------------------


def _attention_rules(wan: str, diffusers: str) -> list[tuple[str, str]]:
    rules = [(f"blocks.{{i}}.{wan}.{x}.{{p}}", f"blocks.{{i}}.{diffusers}.to_{x}.{{p}}") for x in "qkv"]
    rules.append((f"blocks.{{i}}.{wan}.o.{{p}}", f"blocks.{{i}}.{diffusers}.to_out.0.{{p}}"))
    rules += [
        (f"blocks.{{i}}.{wan}.norm_{x}.{{p}}", f"blocks.{{i}}.{diffusers}.norm_{x}.{{p}}") for x in "qk"
    ]
    return rules


_RULES: list[tuple[str, str]] = [
    # embeddings
    ("patch_embedding.{p}", "patch_embedding.{p}"),
    ("text_embedding.0.{p}", "condition_embedder.text_embedder.linear_1.{p}"),
    ("text_embedding.2.{p}", "condition_embedder.text_embedder.linear_2.{p}"),
    ("time_embedding.0.{p}", "condition_embedder.time_embedder.linear_1.{p}"),
    ("time_embedding.2.{p}", "condition_embedder.time_embedder.linear_2.{p}"),
    ("time_projection.1.{p}", "condition_embedder.time_proj.{p}"),
    # blocks
    *_attention_rules("self_attn", "attn1"),
    *_attention_rules("cross_attn", "attn2"),
    # Wan's affine norm3 (before cross-attention) is diffusers' norm2; the parameter-free norms
    # swap the other way (they hold no tensors, the rule only keeps the table a bijection).
    ("blocks.{i}.norm3.{p}", "blocks.{i}.norm2.{p}"),
    ("blocks.{i}.norm2.{p}", "blocks.{i}.norm3.{p}"),
    ("blocks.{i}.norm1.{p}", "blocks.{i}.norm1.{p}"),
    ("blocks.{i}.ffn.0.{p}", "blocks.{i}.ffn.net.0.proj.{p}"),
    ("blocks.{i}.ffn.2.{p}", "blocks.{i}.ffn.net.2.{p}"),
    ("blocks.{i}.modulation", "blocks.{i}.scale_shift_table"),
    # head
    ("head.head.{p}", "proj_out.{p}"),
    ("head.modulation", "scale_shift_table"),
    # image conditioning of the I2V / FLF2V checkpoints (not used by the T2V model, but converted
    # so that such checkpoints round-trip and are reported key by key instead of failing early)
    ("blocks.{i}.cross_attn.k_img.{p}", "blocks.{i}.attn2.add_k_proj.{p}"),
    ("blocks.{i}.cross_attn.v_img.{p}", "blocks.{i}.attn2.add_v_proj.{p}"),
    ("blocks.{i}.cross_attn.norm_k_img.{p}", "blocks.{i}.attn2.norm_added_k.{p}"),
    ("img_emb.proj.0.{p}", "condition_embedder.image_embedder.norm1.{p}"),
    ("img_emb.proj.1.{p}", "condition_embedder.image_embedder.ff.net.0.proj.{p}"),
    ("img_emb.proj.3.{p}", "condition_embedder.image_embedder.ff.net.2.{p}"),
    ("img_emb.proj.4.{p}", "condition_embedder.image_embedder.norm2.{p}"),
    ("img_emb.emb_pos", "condition_embedder.image_embedder.pos_embed"),
]

_FIELDS = {"i": r"(?P<i>\d+)", "p": r"(?P<p>[A-Za-z_][A-Za-z0-9_]*)"}


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[ip]\})", template)
    body = "".join(_FIELDS[part[1]] if part in ("{i}", "{p}") else re.escape(part) for part in parts)
    return re.compile(body + r"\Z")


_WAN_TO_DIFFUSERS = [(_compile(src), dst) for src, dst in _RULES]
_DIFFUSERS_TO_WAN = [(_compile(dst), src) for src, dst in _RULES]


def _rename(key: str, table: list[tuple[re.Pattern[str], str]]) -> str | None:
    for pattern, target in table:
        match = pattern.match(key)
        if match is not None:
            return target.format(**match.groupdict())
    return None


def _convert(
    sd: Mapping[str, Any], table: list[tuple[re.Pattern[str], str]], name: str, strict: bool
) -> dict:
    out: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in sd.items():
        new_key = _rename(key, table)
        if new_key is None:
            unknown.append(key)
            new_key = key
        if new_key in out:
            raise CheckpointError(f"{name}: two keys map to {new_key!r} (second one: {key!r})")
        out[new_key] = value
    if strict and unknown:
        raise CheckpointError(f"{name}: {len(unknown)} key(s) not in the Wan key table: {_preview(unknown)}")
    return out


def wan_to_diffusers(sd: Mapping[str, Any], strict: bool = True) -> dict[str, Any]:
    """Rename an original-Wan state dict to diffusers' ``WanTransformer3DModel`` names.

    Tensors are passed through unchanged. With ``strict`` an unknown key raises
    :class:`CheckpointError` naming it; otherwise unknown keys are kept under their own name.
    """
    return _convert(sd, _WAN_TO_DIFFUSERS, "wan_to_diffusers", strict)


def diffusers_to_wan(sd: Mapping[str, Any], strict: bool = True) -> dict[str, Any]:
    """Rename a diffusers ``WanTransformer3DModel`` state dict to the original Wan names.

    Exact inverse of :func:`wan_to_diffusers`; same ``strict`` semantics.
    """
    return _convert(sd, _DIFFUSERS_TO_WAN, "diffusers_to_wan", strict)


def convert_layout(sd: Mapping[str, Any], to: Layout, strict: bool = True) -> dict[str, Any]:
    """Return ``sd`` in layout ``to`` ("wan" or "diffusers"), converting only if needed."""
    if to not in ("wan", "diffusers"):
        raise ValueError(f"unknown layout {to!r}; expected 'wan' or 'diffusers'")
    if detect_layout(sd) == to:
        return dict(sd)
    return wan_to_diffusers(sd, strict) if to == "diffusers" else diffusers_to_wan(sd, strict)


# ----------------------------------------------------------------------------------------------
# Layout detection
# ----------------------------------------------------------------------------------------------

_WAN_MARKERS = re.compile(
    r"(blocks\.\d+\.(self_attn|cross_attn|modulation\Z|ffn\.[02]\.|norm3\.)|head\.head\.|head\.modulation\Z"
    r"|text_embedding\.|time_embedding\.|time_projection\.)"
)
_DIFFUSERS_MARKERS = re.compile(
    r"(blocks\.\d+\.(attn1|attn2|scale_shift_table\Z|ffn\.net\.|norm2\.)|proj_out\.|\Ascale_shift_table\Z"
    r"|condition_embedder\.)"
)


def detect_layout(sd: Mapping[str, Any]) -> Layout:
    """Tell whether ``sd`` uses original Wan names ("wan") or diffusers names ("diffusers").

    Raises :class:`CheckpointError` when the keys carry markers of both layouts or of neither
    (wrapper prefixes such as ``model.`` must be stripped first: see :func:`unwrap_checkpoint`).
    """
    wan = [k for k in sd if _WAN_MARKERS.match(k)]
    diff = [k for k in sd if _DIFFUSERS_MARKERS.match(k)]
    if wan and not diff:
        return "wan"
    if diff and not wan:
        return "diffusers"
    if wan and diff:
        raise CheckpointError(
            f"state dict mixes original-Wan keys ({_preview(wan, 3)}) and diffusers keys ({_preview(diff, 3)})"
        )
    raise CheckpointError(
        f"state dict has neither original-Wan nor diffusers Wan keys; first keys: {_preview(sd, 5)}"
    )


# ----------------------------------------------------------------------------------------------
# Training-checkpoint wrappers (Self Forcing, Causal Forcing, FSDP, torch.compile, DDP, Lightning)
# ----------------------------------------------------------------------------------------------

#: Networks stored side by side in Self Forcing / Causal Forcing checkpoints, in order of preference.
NETWORK_KEYS = ("generator_ema", "generator", "critic", "fake_score", "real_score")

_WRAPPER_SEGMENTS = frozenset(
    {"_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod", "_forward_module", "module"}
)
_LEADING_PREFIXES = ("model.", "diffusion_model.")
_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model")


def is_state_dict(obj: Any) -> bool:
    """True when ``obj`` is a non-empty mapping from strings to tensors."""
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def strip_wrapper_prefixes(sd: Mapping[str, Any]) -> dict[str, Any]:
    """Drop wrapper segments from every key.

    Removes the segments ``_fsdp_wrapped_module``, ``_checkpoint_wrapped_module``, ``_orig_mod``
    (torch.compile), ``_forward_module`` (Lightning Fabric) and ``module`` (DDP) wherever they
    occur, then leading ``model.`` and ``diffusion_model.`` prefixes (Self Forcing's wrapper,
    ComfyUI single files). Two keys that collapse to one name raise :class:`CheckpointError`.
    """
    out: dict[str, Any] = {}
    for key, value in sd.items():
        new_key = ".".join(seg for seg in key.split(".") if seg not in _WRAPPER_SEGMENTS)
        stripped = True
        while stripped:
            stripped = False
            for prefix in _LEADING_PREFIXES:
                if new_key.startswith(prefix):
                    new_key, stripped = new_key[len(prefix) :], True
        if new_key in out:
            raise CheckpointError(f"keys collide after stripping wrapper prefixes: {key!r} -> {new_key!r}")
        out[new_key] = value
    return out


def _pick_network(names: Iterable[str], prefer: str) -> str | None:
    names = list(names)
    if prefer in names:
        return prefer
    if prefer == "generator_ema" and "generator" in names:
        return "generator"
    return None


def _split_by_network(sd: Mapping[str, Any], prefer: str) -> dict[str, dict[str, Any]]:
    """Group a flat dict whose keys start with ``<network>.`` (e.g. a Lightning ``state_dict``)."""
    groups: dict[str, dict[str, Any]] = {}
    for key, value in sd.items():
        head, _, rest = key.partition(".")
        if (head in NETWORK_KEYS or head == prefer) and rest:
            groups.setdefault(head, {})[rest] = value
    return groups


def unwrap_checkpoint(obj: Any, prefer: str = "generator_ema") -> dict[str, torch.Tensor]:
    """Extract one network's plain state dict from a training checkpoint.

    Accepts a plain state dict (returned with wrapper prefixes stripped), a Self Forcing / Causal
    Forcing dict ``{"generator": sd, "generator_ema": sd, "critic": sd, ...}``, a container
    ``{"state_dict": ...}`` / ``{"model": ...}``, or a flat dict whose keys start with a network
    name (``generator.blocks.0...``; keys of other modules are ignored). ``prefer`` picks the
    network (one of :data:`NETWORK_KEYS` or any other top-level name): the default
    ``"generator_ema"`` falls back to ``"generator"`` when the checkpoint has no EMA (saved before
    EMA started); any other name must exist. Keys lose wrapper prefixes and segments
    (:func:`strip_wrapper_prefixes`).
    """
    current = obj
    for _ in range(4):  # a few levels of nesting at most
        if not isinstance(current, Mapping):
            raise CheckpointError(
                f"checkpoint is a {type(current).__name__}, not a state dict or a dict of them"
            )
        nets = [k for k in current if k in (*NETWORK_KEYS, prefer) and isinstance(current[k], Mapping)]
        if nets:
            choice = _pick_network(nets, prefer)
            if choice is None:
                raise CheckpointError(f"checkpoint has no network {prefer!r}; it holds {sorted(nets)}")
            current = current[choice]
            continue
        if is_state_dict(current):
            groups = _split_by_network(current, prefer)
            if groups:  # other top-level modules of a training wrapper (heads, encoders) are ignored
                current = groups
                continue
            return strip_wrapper_prefixes(current)
        container = next((k for k in _CONTAINER_KEYS if isinstance(current.get(k), Mapping)), None)
        if container is None:
            raise CheckpointError(
                f"cannot find a state dict in checkpoint with keys {_preview(current, 8)}; expected tensors, "
                f"networks {list(NETWORK_KEYS)}, or a container {list(_CONTAINER_KEYS)}"
            )
        current = current[container]
    raise CheckpointError("checkpoint nesting is too deep to find a state dict")


def _preview(keys: Iterable[Any], limit: int = 10) -> str:
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f", ... and {len(keys) - limit} more" if len(keys) > limit else "")
