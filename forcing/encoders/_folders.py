"""Locating pretrained components in local folders (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

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
