"""Self-Forcing++ configs and module: every experiment composes with the keys a paradigm must have,
bad options are refused, and one fast step runs end to end (extended DMD and GRPO)."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import open_dict

from forcing.errors import ConfigError
from lightning_modules.launch import launch, paradigm_class
from lightning_modules.self_forcing_pp import SelfForcingPP
from tests.suite.helpers import EXPERIMENTS, LossRecorder, compose_run, fast_overrides

SFPP = [e for e in EXPERIMENTS if e.startswith("self_forcing_pp")]
TINY = ["model=tiny", "paradigm.generator_init.experiment=null"]  # fast: no ODE-init prerequisite


def test_sfpp_experiments_exist() -> None:
    expected = {"self_forcing_pp", "self_forcing_pp_beta_window", "self_forcing_pp_uniform_exit",
                "self_forcing_pp_short_horizon", "self_forcing_pp_window_6", "self_forcing_pp_grpo"}
    assert expected <= set(SFPP)


@pytest.mark.parametrize("experiment", SFPP)
def test_experiment_composes_and_validates(experiment: str) -> None:
    cfg = compose_run(f"experiment={experiment}")
    p = cfg.paradigm
    for key in ("name", "frames_per_block", "local_window", "sample_steps", "guidance_scale"):
        assert key in p, key
    assert cfg.experiment_name == experiment
    assert (cfg.objective.name, cfg.teacher.experiment) == ("dmd", "shapes_teacher")
    assert paradigm_class(cfg) is SelfForcingPP
    SelfForcingPP.validate_config(cfg)
    horizon = cfg.world.num_frames
    assert p.local_window == (6 if experiment.endswith("window_6") else horizon)
    assert p.rollout_frames == (2 * horizon if experiment.endswith("short_horizon") else 5 * horizon)
    assert p.window_sampling == ("beta" if experiment.endswith("beta_window") else "uniform")
    assert p.exit_step == ("random" if experiment.endswith("uniform_exit") else "last")
    assert p.stage == ("grpo" if experiment.endswith("grpo") else "dmd")
    assert p.generator_init.experiment == ("self_forcing_pp" if p.stage == "grpo" else "ode_init")


def test_generator_init_can_be_a_self_forcing_checkpoint() -> None:
    cfg = compose_run("experiment=self_forcing_pp", "paradigm.generator_init.experiment=self_forcing_dmd")
    SelfForcingPP.validate_config(cfg)
    assert cfg.paradigm.generator_init.experiment == "self_forcing_dmd"


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("rollout_frames", 9, "rollout_frames"),
        ("rollout_frames", 61, "rollout_frames"),
        ("rollout_frames_start", 6, "rollout_frames_start"),
        ("window_sampling", "gaussian", "window_sampling"),
        ("backward_noise", "middle", "backward_noise"),
        ("stage", "ppo", "stage"),
        ("rollout", "teacher_forcing", "rollout"),
    ],
)
def test_bad_options_are_refused(key: str, value, match: str) -> None:
    cfg = compose_run("experiment=self_forcing_pp")
    with open_dict(cfg):
        cfg.paradigm[key] = value
    with pytest.raises(ConfigError, match=match):
        SelfForcingPP.validate_config(cfg)


def test_bad_grpo_options_are_refused() -> None:
    cfg = compose_run("experiment=self_forcing_pp_grpo")
    cfg.paradigm.grpo.group_size = 1
    with pytest.raises(ConfigError, match="group_size"):
        SelfForcingPP.validate_config(cfg)
    cfg = compose_run("experiment=self_forcing_pp_grpo", "paradigm.denoising_steps=[1000]")
    with pytest.raises(ConfigError, match="stochastic"):
        SelfForcingPP.validate_config(cfg)


def test_optimizer_steps_per_stage() -> None:
    assert SelfForcingPP.optimizer_steps(compose_run("experiment=self_forcing_pp"), 10) == 12  # ratio 5
    cfg = compose_run("experiment=self_forcing_pp_grpo", "paradigm.grpo.updates_per_batch=2")
    assert SelfForcingPP.optimizer_steps(cfg, 10) == 20


def tiny_module(*overrides: str) -> SelfForcingPP:
    """The module on the tiny backbone with random weights (no artifacts, no trainer)."""
    cfg = compose_run("experiment=self_forcing_pp", "model=tiny", *overrides)
    with open_dict(cfg):
        cfg.teacher.path = None
        cfg.paradigm.generator_init.path = None
    module = SelfForcingPP(cfg)
    module.configure_model()
    return module


def batch_of(module: SelfForcingPP) -> tuple[dict, torch.Tensor, list]:
    batch = {"prompt": ["a red square", "a blue circle"], "seed": torch.tensor([3, 4])}
    return batch, module.condition(batch["prompt"]).context, module.clip_rngs(batch, salt=0)


def test_module_rollout_is_a_window_of_the_long_rollout() -> None:
    module = tiny_module()
    batch, context, rngs = batch_of(module)
    roll = module.rollout(batch, context, None, rngs)
    assert roll.video.shape == (2, 3, 12, 32, 32) and roll.video.requires_grad
    assert roll.num_frames == 60 and roll.window_start % 3 == 0 and roll.window_start <= 48
    assert roll.exit_steps == [3] * 4  # exit_step: last
    assert module.last_window == (60, roll.window_start)


def test_module_rollout_length_schedule_starts_short() -> None:
    module = tiny_module("paradigm.rollout_frames_start=12", "paradigm.rollout_schedule_steps=100")
    assert module.rollout_frames() == 12  # iteration 0
    batch, context, rngs = batch_of(module)
    with torch.no_grad():
        roll = module.rollout(batch, context, None, rngs)
    assert (roll.num_frames, roll.window_start) == (12, 0)


def run_fast(tmp_path, *overrides: str) -> tuple:
    cfg = compose_run(*overrides, *fast_overrides(tmp_path), *TINY)
    recorder = LossRecorder()
    trainer = launch(cfg, extra_callbacks=[recorder])
    return trainer, recorder


def test_self_forcing_pp_runs_one_step(tmp_path) -> None:
    trainer, recorder = run_fast(tmp_path, "experiment=self_forcing_pp")
    assert trainer.global_step >= 1
    assert recorder.losses and all(math.isfinite(x) for x in recorder.losses)
    metrics = trainer.callback_metrics
    assert float(metrics["train/rollout_frames"]) == 60
    assert float(metrics["train/window_start"]) % 3 == 0 and float(metrics["train/window_start"]) <= 48
    module = trainer.lightning_module
    assert module.cache_frames() == 12


def test_self_forcing_pp_grpo_runs_one_step(tmp_path) -> None:
    trainer, recorder = run_fast(tmp_path, "experiment=self_forcing_pp_grpo", "paradigm.grpo.group_size=2",
                                 "paradigm.grpo.rollout_frames=12")
    assert trainer.global_step >= 1
    assert recorder.losses and all(math.isfinite(x) for x in recorder.losses)
    metrics = trainer.callback_metrics
    assert math.isfinite(float(metrics["train/reward"])) and float(metrics["train/reward"]) <= 0
    module = trainer.lightning_module
    assert module.real_score_net is None and module.critic_net is None  # GRPO builds no teacher networks
    assert module.reference_net is not None  # kl_weight > 0: the frozen initial policy
