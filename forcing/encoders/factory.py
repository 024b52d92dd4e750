"""Factories building encoders and codecs from simple (Hydra) keyword arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from forcing.encoders.identity_codec import IdentityCodec
from forcing.encoders.toy_text import ToyTextEncoder
from forcing.errors import ConfigError
from forcing.provenance import set_weights_source


def _options(cfg: Mapping[str, Any] | None, overrides: dict[str, Any]) -> dict[str, Any]:
    options = dict(cfg.items()) if cfg is not None else {}
    options.update(overrides)
    return options


def _described(module: nn.Module, kind: str, options: dict[str, Any]) -> nn.Module:
    """`module` with its weights' source: a code-built network is described by its kind and options."""
    settings = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
    return set_weights_source(module, f"{kind}({settings})")


def build_text_encoder(cfg: Mapping[str, Any] | None = None, **overrides: Any) -> nn.Module:
    """A frozen text encoder from `kind` and its options (a mapping and/or keyword arguments).

    kind="toy": ToyTextEncoder(dim=64, max_length=24, seed=0);
    kind="umt5": UMT5TextEncoder.from_pretrained(path, max_length=512, dtype=None);
    kind="precomputed": PrecomputedText.from_file(path) (embeddings of a prompt list, other keys ignored).
    The encoder records its weights' source (`forcing.provenance`): the folder or file, or kind and options.
    """
    options = _options(cfg, overrides)
    kind = options.pop("kind", "toy")
    if kind == "toy":
        return _described(ToyTextEncoder(**options), kind, options)
    if kind == "umt5":
        from forcing.encoders.umt5 import UMT5TextEncoder

        if options.get("path") is None:
            raise ConfigError("text encoder kind='umt5' needs path=<local folder of the UMT5 encoder>")
        path = options.pop("path")
        return set_weights_source(UMT5TextEncoder.from_pretrained(path, **options), str(path))
    if kind == "precomputed":
        from forcing.encoders.precomputed_text import PrecomputedText

        if options.get("path") is None:
            raise ConfigError("text encoder kind='precomputed' needs path=<file of save_text_embeddings>")
        return set_weights_source(PrecomputedText.from_file(options["path"]), str(options["path"]))
    raise ConfigError(f"unknown text encoder kind {kind!r}; expected 'toy', 'umt5' or 'precomputed'")


def build_codec(cfg: Mapping[str, Any] | None = None, **overrides: Any) -> nn.Module:
    """A frozen latent codec from `kind` and its options (a mapping and/or keyword arguments).

    kind="identity": IdentityCodec(); kind="shapes": ShapesCodec.from_file(path) (the shapes world's
    learned autoencoder); kind="wan_vae": WanVAECodec.from_pretrained(path, dtype=None).
    The codec records its weights' source (`forcing.provenance`): the file or folder, or kind and options.
    """
    options = _options(cfg, overrides)
    kind = options.pop("kind", "identity")
    if kind == "identity":
        return _described(IdentityCodec(**options), kind, options)
    if kind == "shapes":
        from forcing.encoders.shapes_codec import SHIPPED_CODEC, ShapesCodec

        path = options.pop("path", None) or SHIPPED_CODEC
        if options:
            raise ConfigError(f"codec kind='shapes' takes only path, got {sorted(options)}")
        return set_weights_source(ShapesCodec.from_file(path), str(path))
    if kind == "wan_vae":
        from forcing.encoders.wan_vae import WanVAECodec

        if options.get("path") is None:
            raise ConfigError("codec kind='wan_vae' needs path=<local folder of the Wan VAE>")
        path = options.pop("path")
        return set_weights_source(WanVAECodec.from_pretrained(path, **options), str(path))
    raise ConfigError(f"unknown codec kind {kind!r}; expected 'identity', 'shapes' or 'wan_vae'")
