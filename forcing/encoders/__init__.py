"""Frozen text encoders and latent codecs: toy + identity (shapes world), UMT5 + Wan VAE (Wan2.1).

UMT5TextEncoder and WanVAECodec import transformers / diffusers lazily (on attribute access).
"""

from __future__ import annotations

from typing import Any

from forcing.encoders._folders import MissingPretrainedError
from forcing.encoders.factory import build_codec, build_text_encoder
from forcing.encoders.frozen import FrozenModule
from forcing.encoders.identity_codec import IdentityCodec
from forcing.encoders.toy_text import ToyTextEncoder

__all__ = [
    "FrozenModule",
    "IdentityCodec",
    "MissingPretrainedError",
    "ToyTextEncoder",
    "UMT5TextEncoder",
    "WanVAECodec",
    "build_codec",
    "build_text_encoder",
]


def __getattr__(name: str) -> Any:
    if name == "UMT5TextEncoder":
        from forcing.encoders.umt5 import UMT5TextEncoder

        return UMT5TextEncoder
    if name == "WanVAECodec":
        from forcing.encoders.wan_vae import WanVAECodec

        return WanVAECodec
    raise AttributeError(f"module 'forcing.encoders' has no attribute {name!r}")
