"""Self-Forcing++ configs and module: every experiment composes with the keys a paradigm must have,
bad options are refused, and one fast step runs end to end (extended DMD and GRPO)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from omegaconf import open_dict

from forcing.errors import ConfigError
from forcing.objectives.grpo import grpo_loss
from forcing.rollout import policy_logprobs, sliced_noise, stream_rollout
from lightning_modules.launch import launch, paradigm_class
from lightning_modules.self_forcing_pp import SelfForcingPP
from lightning_modules.sfpp_grpo import GRPOStage
from lightning_modules.sfpp_stage import DMDStage
from tests.suite.helpers import EXPERIMENTS, LossRecorder, compose_run, fast_overrides
from tests.suite.helpers import tiny_module as shared_tiny_module

SFPP = [e for e in EXPERIMENTS if e.startswith("self_forcing_pp")]
TINY = ["model=tiny", "paradigm.generator_init.experiment=null"]  # fast: no ODE-init prerequisite


def test_sfpp_experiments_exist() -> None:
    expected = {"self_forcing_pp", "self_forcing_pp_beta_window", "self_forcing_pp_uniform_exit",
                "self_forcing_pp_short_horizon", "self_forcing_pp_window_6", "self_forcing_pp_grpo",
                "self_forcing_pp_noisy_kv"}
    assert expected <= set(SFPP)


@pytest.mark.parametrize("experiment", SFPP)
def test_experiment_composes_and_validates(experiment: str) -> None:
    cfg = compose_run(f"experiment={experiment}")
    p = cfg.paradigm
    for key in ("name", "frames_per_block", "local_window", "guidance_scale"):
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
    assert p.backward_noise == "grid"  # eq. 1: t drawn from the grid, not tied to the exit step
    assert p.context_cache == ("noisy" if experiment.endswith("noisy_kv") else "clean")
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
        ("backward_noise", "exit", "backward_noise"),
        ("context_cache", "dirty", "context_cache"),
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
    cfg = compose_run("experiment=self_forcing_pp_grpo", "paradigm.context_cache=noisy")
    with pytest.raises(ConfigError, match="context_cache"):
        SelfForcingPP.validate_config(cfg)


def test_optimizer_steps_per_stage() -> None:
    assert SelfForcingPP.optimizer_steps(compose_run("experiment=self_forcing_pp"), 10) == 12  # ratio 5
    cfg = compose_run("experiment=self_forcing_pp_grpo", "paradigm.grpo.updates_per_batch=2")
    assert SelfForcingPP.optimizer_steps(cfg, 10) == 20


def tiny_module(*overrides: str) -> SelfForcingPP:
    """The module on the tiny backbone with random weights (no artifacts, no trainer)."""
    return shared_tiny_module(SelfForcingPP, "self_forcing_pp", *overrides)


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
    assert module.last_window == (60, roll.window_start, roll.noise_step)


def draws_at(module: SelfForcingPP, iterations: int) -> list[tuple[int, int]]:
    """(exit step, backward-noise step) of the module's draws at iterations 0..iterations-1."""
    out = []
    for i in range(iterations):
        module.step_index = lambda i=i: i  # the draws are keyed by the training step
        out.append((module.draw_exit_steps(4)[0], module.draw_noise_step()))
    return out


def test_backward_noise_t_is_its_own_draw_over_the_grid() -> None:
    """Self-Forcing++ eq. 1 / Alg. 1 line 4: the window is re-noised to t ~ U{t_1..t_T} of the
    few-step grid, drawn independently of the exit step (with exit = last it still varies)."""
    module = tiny_module()
    grid = module.grid()
    pairs = draws_at(module, 400)
    assert {s for s, _ in pairs} == {3}  # exit_step: last
    counts = Counter(j for _, j in pairs)
    assert sorted(counts) == [0, 1, 2, 3]  # every grid point t_j, and only grid points
    assert {grid[j] for _, j in pairs} == set(grid)  # t in {1000, 937.5, 833.3, 625}
    assert all(abs(c / 400 - 1 / 4) < 0.08 for c in counts.values())
    module = tiny_module("paradigm.exit_step=random")
    joint = Counter(draws_at(module, 800))
    assert len(joint) == 16  # every (exit step, noise step) pair occurs: not tied to each other
    assert all(abs(c / 800 - 1 / 16) < 0.04 for c in joint.values())
    module = tiny_module("paradigm.backward_noise=first")
    assert {j for _, j in draws_at(module, 20)} == {0}
    # the rollout uses the draw: its window restarts at t_j and exits at the last step
    module = tiny_module()
    module.step_index = lambda: 5
    j = module.draw_noise_step()
    batch, context, rngs = batch_of(module)
    with torch.no_grad():
        roll = module.rollout(batch, context, None, rngs)
    assert roll.noise_step == j and roll.exit_steps == [3] * 4
    assert module.last_window[2] == j


def test_noisy_kv_module_streams_with_the_noisy_cache() -> None:
    """Self-Forcing++ noisy-KV-cache ablation: inference (Alg. 2) as in training, `stream` keeps each
    block's noisy K/V instead of re-running the clean block."""
    module, clean_module = tiny_module("paradigm.context_cache=noisy"), tiny_module()
    for m in (module, clean_module):  # Wan's init zeroes the head: randomise the sampling generator alike
        torch.manual_seed(0)
        for p in m.sampling_generator().parameters():
            torch.nn.init.normal_(p, std=0.2)
    assert module.noisy_context()
    video = module.stream(["a red square"], 6, seed=3, cache_frames=6)
    gen = torch.Generator().manual_seed(3)
    noise = torch.randn((1, *module.latent_shape(6)), generator=gen)
    ref = stream_rollout(module.sampling_generator(), module.condition(["a red square"]), sliced_noise(noise), num_frames=6,
                         frames_per_block=3, timesteps=module.grid(), cache_frames=6, noisy_context=True,
                         generator=gen)
    assert torch.equal(video, ref)
    clean = clean_module.stream(["a red square"], 6, seed=3, cache_frames=6)
    assert torch.equal(clean[:, :, :3], video[:, :, :3]) and not torch.equal(clean, video)


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


def test_grpo_update_backpropagates_the_trajectory_ratio_block_by_block() -> None:
    """Self-Forcing++ A.6 / eq. 7: the module's block-by-block update has the gradient of the
    clipped objective with one ratio per trajectory, r = exp(sum of per-step log-prob differences),
    plus beta times the trajectory KL (sum over steps, mean over trajectories)."""
    module = tiny_module("experiment=self_forcing_pp_grpo", "paradigm.grpo.group_size=2",
                         "paradigm.grpo.rollout_frames=6")
    torch.manual_seed(0)
    for p in module.generator.parameters():
        torch.nn.init.normal_(p, std=0.2)
    module.reference_net.load_state_dict(module.generator.state_dict())
    context = module.condition(["a red square"] * 4).context
    rngs = [torch.Generator().manual_seed(i) for i in range(4)]
    traj = module.stage.sample_group(context, rngs)
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5], dtype=torch.float64)
    with torch.no_grad():  # a policy step away from the sampling one: ratios != 1, some clipped
        for p in module.generator.parameters():
            p.add_(0.02 * torch.randn_like(p))
    params = [p for p in module.generator.parameters() if p.requires_grad]
    g, beta = module.p.grpo, float(module.p.grpo.kl_weight)
    parts = list(policy_logprobs(module.generator, context, traj, cache_frames=module.cache_frames(),
                                 reduce=str(g.logprob_reduce), reference=module.reference_net))
    logp = torch.stack([part.logp for part in parts], 1)  # [B, blocks, steps]
    ratio = torch.exp(logp.detach().flatten(1).sum(1) - traj.logp_old.flatten(1).sum(1))
    g.clip_eps = float((ratio - 1).abs().median())  # half of the trajectories outside the trust region
    kl = torch.stack([part.kl for part in parts], 1).flatten(1).sum(1).mean()
    direct = grpo_loss(logp, traj.logp_old, advantages, float(g.clip_eps)) + beta * kl
    expected = torch.autograd.grad(direct, params)
    module.manual_backward = lambda loss: loss.backward()  # no trainer here
    module.generator.zero_grad(set_to_none=True)
    terms = module.stage.grpo_update(context, traj, advantages, scale=1.0)
    assert math.isclose(float(terms["loss"]), float(direct), rel_tol=1e-6)
    assert 0 < float(terms["clip_fraction"]) < 1
    for p, e in zip(params, expected):
        assert torch.allclose(p.grad, e.to(p.grad.dtype), rtol=1e-4, atol=1e-7)


def test_the_stage_is_chosen_once_and_keeps_the_checkpoint_keys() -> None:
    """`paradigm.stage` picks the strategy at construction; the networks stay attributes of the
    module, so the state_dict keys are those of the module's trainable networks (checkpoints leave the
    frozen ones out: the real score and the GRPO reference are rebuilt from their paths)."""
    dmd = tiny_module()
    grpo = tiny_module("experiment=self_forcing_pp_grpo", "paradigm.grpo.group_size=2")
    assert isinstance(dmd.stage, DMDStage) and isinstance(grpo.stage, GRPOStage)
    assert dmd.real_score_net is not None and grpo.reference_net is not None
    prefixes = {m: {k.split(".")[0] for k in m.state_dict()} for m in (dmd, grpo)}
    assert {"generator", "critic_net"} <= prefixes[dmd] and not {"real_score_net", "reference_net"} & prefixes[dmd]
    assert "generator" in prefixes[grpo] and not {"real_score_net", "critic_net", "reference_net"} & prefixes[grpo]
    assert [type(o) for o in grpo.configure_optimizers()] == [torch.optim.AdamW]
    assert len(dmd.configure_optimizers()) == 2  # generator and critic
