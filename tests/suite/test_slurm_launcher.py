"""The SLURM launcher configs (hydra-submitit-launcher) match the hardware they launch: one task
per GPU, as many tasks as `hardware.devices x hardware.num_nodes` ranks, requeue enabled."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from tests.suite.helpers import CONF


@pytest.mark.parametrize(("launcher", "hardware"), [("slurm_h100x64", "h100x64"), ("slurm_h100x8", "h100x8")])
def test_launcher_matches_hardware(launcher: str, hardware: str) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("run", overrides=[f"hydra/launcher={launcher}", f"hardware={hardware}"], return_hydra_config=True)
    slurm, hw = cfg.hydra.launcher, cfg.hardware
    assert slurm._target_.endswith("SlurmLauncher")
    assert slurm.nodes == hw.num_nodes
    assert slurm.tasks_per_node == slurm.gpus_per_node == hw.devices
    assert slurm.max_num_timeout > 0 and slurm.signal_delay_s > 0
    if hw.get("replicate"):
        assert hw.replicate == hw.num_nodes  # HSDP: a shard group is one node
