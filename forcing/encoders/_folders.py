"""Locating pretrained components in local folders (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from forcing.errors import ConfigError


class MissingPretrainedError(ConfigError, FileNotFoundError):
    """A local pretrained folder (or its config) is missing; the message says what to put there."""


def resolve_component(folder: str | Path, subfolder: str, what: str, expected: str) -> Path:
    """The folder holding a component: `folder/subfolder` (diffusers layout) or `folder` itself.

    Raises MissingPretrainedError (a FileNotFoundError and ConfigError) naming the folder and
    what must be put there.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise MissingPretrainedError(f"{what} folder {str(root)!r} does not exist: put there {expected}")
    nested = root / subfolder
    return nested if nested.is_dir() else root


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """A torch dtype from a dtype or its name ("bfloat16", "float32", ...), None unchanged."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype).removeprefix("torch."), None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}")
    return resolved


def pretrained_dir(folder: str | Path, subfolder: str, what: str, expected: str) -> Path:
    """`resolve_component`, and the folder must hold a `config.json` (a Hugging Face model folder)."""
    found = resolve_component(folder, subfolder, what, expected)
    if not (found / "config.json").is_file():
        raise MissingPretrainedError(f"no config.json in {what} folder {str(found)!r}: put there {expected}")
    return found


def from_pretrained_kwargs(dtype: torch.dtype | str | None, dtype_key: str = "dtype") -> dict[str, Any]:
    """Keywords of a local-only `from_pretrained` (nothing downloaded), with `dtype` under `dtype_key`
    (transformers takes `dtype`, diffusers `torch_dtype`) when given."""
    kwargs: dict[str, Any] = {"local_files_only": True}
    if dtype is not None:
        kwargs[dtype_key] = resolve_dtype(dtype)
    return kwargs
