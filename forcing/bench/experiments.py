"""The project's experiments as the `train` section sees them: `conf/experiment/*.yaml`, Hydra-composed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["CONF_DIR", "compose_config", "discover_experiments"]

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def discover_experiments(conf_dir: Path | None = None) -> list[str]:
    """Every experiment of `conf/experiment/*.yaml` (new paradigms appear there over time)."""
    conf_dir = conf_dir or CONF_DIR
    return sorted(p.stem for p in (conf_dir / "experiment").glob("*.yaml"))


def compose_config(*overrides: str) -> Any:
    """The config `python run.py <overrides>` would see (Hydra compose, no run directory)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("run", overrides=list(overrides))
