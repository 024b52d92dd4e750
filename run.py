"""The one entry point: `python run.py experiment=<name> [group=option ...] [key=value ...]`.

Hydra composes `conf/run.yaml`; the run is validated before anything is trained or written
(one-line errors, exit code 2), then the paradigm's LightningModule is fitted; a run that diverges
(non-finite loss or gradient) stops with one line and exit code 3, its last good checkpoint kept.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from forcing.errors import ConfigError, DivergedError


def fail(err: Exception, code: int) -> None:
    """Report `err` as one line on stderr and exit with `code`."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(code)


@hydra.main(config_path="conf", config_name="run", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Validate the composed config, build the run and train it."""
    from lightning_modules.launch import launch  # heavy imports after Hydra's own checks

    try:
        launch(cfg)
    except ConfigError as err:
        fail(err, 2)
    except DivergedError as err:
        fail(err, 3)


if __name__ == "__main__":
    from lightning_modules.validation import check_group_options

    try:
        check_group_options(sys.argv[1:])  # `hardware=quantum`: one line, not Hydra's report
    except ConfigError as err:
        fail(err, 2)
    main()
