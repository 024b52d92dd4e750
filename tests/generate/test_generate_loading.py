"""load_module: any paradigm from its checkpoint (file or run directory), clear errors otherwise."""

from __future__ import annotations

import pytest
import torch
from omegaconf import open_dict

from forcing.errors import ConfigError
from lightning_modules.loading import load_module, with_objective_target
from lightning_modules.teacher_forcing import TeacherForcing
from tests.suite.helpers import compose_run


def test_loads_run_directory_strictly_in_eval_mode(tf_run) -> None:
    module = load_module(tf_run)
    assert isinstance(module, TeacherForcing) and not module.training
    assert module.generator_ema is None and module.sampling_generator() is module.generator
    ckpt = torch.load(tf_run / "checkpoints" / "last.ckpt", weights_only=False)
    for name, value in module.state_dict().items():
        torch.testing.assert_close(value, ckpt["state_dict"][name], rtol=0, atol=0)


def test_ema_weights_are_the_sampling_generator(tf_run, tmp_path) -> None:
    ckpt = torch.load(tf_run / "checkpoints" / "last.ckpt", weights_only=False)
    ckpt["hyper_parameters"]["config"]["paradigm"]["ema_decay"] = 0.99
    ema = {
        k.replace("generator.", "generator_ema.", 1): v + 1.0
        for k, v in ckpt["state_dict"].items()
        if k.startswith("generator.")
    }
    ckpt["state_dict"].update(ema)
    torch.save(ckpt, tmp_path / "ema.ckpt")
    module = load_module(tmp_path / "ema.ckpt")
    assert module.sampling_generator() is module.generator_ema
    name = next(iter(ema))
    torch.testing.assert_close(module.state_dict()[name], ema[name])


def test_missing_path_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="nowhere.ckpt does not exist"):
        load_module(tmp_path / "nowhere.ckpt")


def test_run_directory_without_last_ckpt_is_a_config_error(tmp_path) -> None:
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(ConfigError, match="no checkpoints/last.ckpt"):
        load_module(tmp_path / "run")


def test_corrupt_and_truncated_files_are_config_errors(tf_run, tmp_path) -> None:
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ConfigError, match="garbage.ckpt is corrupt"):
        load_module(garbage)
    data = (tf_run / "checkpoints" / "last.ckpt").read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="truncated.ckpt"):
        load_module(truncated)


def test_checkpoint_without_config_or_mismatched_weights(tf_run, tmp_path) -> None:
    ckpt = torch.load(tf_run / "checkpoints" / "last.ckpt", weights_only=False)
    torch.save({"state_dict": ckpt["state_dict"]}, tmp_path / "noconfig.ckpt")
    with pytest.raises(ConfigError, match="no run config"):
        load_module(tmp_path / "noconfig.ckpt")
    del ckpt["state_dict"]["generator.head.head.weight"]
    torch.save(ckpt, tmp_path / "partial.ckpt")
    with pytest.raises(ConfigError, match="does not match"):
        load_module(tmp_path / "partial.ckpt")


def test_initial_weight_sources_are_not_needed(tf_run, tmp_path) -> None:
    ckpt = torch.load(tf_run / "checkpoints" / "last.ckpt", weights_only=False)
    ckpt["hyper_parameters"]["config"]["model"]["pretrained"] = str(tmp_path / "moved-away-wan-folder")
    torch.save(ckpt, tmp_path / "moved.ckpt")
    module = load_module(tmp_path / "moved.ckpt")
    torch.testing.assert_close(
        module.generator.head.head.weight, ckpt["state_dict"]["generator.head.head.weight"]
    )


def test_a_config_stored_before_objective_targets_gets_its_class() -> None:
    """Checkpoints written before `objective._target_` existed still build their objective."""
    cfg = compose_run("experiment=self_forcing_gan")
    with open_dict(cfg):
        del cfg.objective["_target_"]
    assert with_objective_target(cfg).objective._target_ == "forcing.objectives.GANObjective"
    plain = compose_run("experiment=teacher_forcing")  # objective fm: no option declares a class
    assert "_target_" not in with_objective_target(plain).objective
