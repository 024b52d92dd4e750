"""Prompt lists: a text file, one prompt per line (the data of text-only training and of ODE pairs)."""

from __future__ import annotations

from pathlib import Path

from forcing.errors import ConfigError


def read_prompts(path: str | Path) -> list[str]:
    """The prompts of a text file, one per line (stripped; blank lines skipped); `ConfigError` naming
    the file when it is missing or holds no prompt."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"prompt file {path} does not exist (a text file, one prompt per line)")
    prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    prompts = [p for p in prompts if p]
    if not prompts:
        raise ConfigError(f"prompt file {path} holds no prompt (one prompt per line)")
    return prompts
