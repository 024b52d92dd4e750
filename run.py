"""The one entry point: `python run.py experiment=<name> [group=option ...] [key=value ...]`.

Hydra composes `conf/run.yaml`; the run is validated before anything is trained or written
(one-line errors), then the paradigm's LightningModule is fitted.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from forcing.errors import ConfigError


@hydra.main(config_path="conf", config_name="run", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Validate the composed config, build the run and train it."""
    from lightning_modules.launch import launch  # heavy imports after Hydra's own checks

    try:
        launch(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
