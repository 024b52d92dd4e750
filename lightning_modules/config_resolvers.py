"""OmegaConf resolvers of the suite's configs (registered when `lightning_modules` is imported).

`${forcing_asset:NAME}`: the absolute path of a file or folder shipped in `forcing/assets/`, so a config
can name a shipped artifact (the shapes world's base model) whatever the working directory.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

#: where the shipped artifacts live
ASSETS = Path(__file__).resolve().parents[1] / "forcing" / "assets"


def asset_path(name: str) -> str:
    """Absolute path of the shipped asset `name` (it need not exist: validation names a missing one)."""
    return str(ASSETS / name)


def register() -> None:
    """Register the resolvers (idempotent)."""
    if not OmegaConf.has_resolver("forcing_asset"):
        OmegaConf.register_new_resolver("forcing_asset", asset_path)
