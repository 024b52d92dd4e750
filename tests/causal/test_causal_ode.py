"""Causal ODE (Causal Forcing stage 2): AR-teacher trajectories with the ground-truth context, and a
student that regresses their endpoints in teacher-forcing mode over the same clean context."""

from __future__ import annotations

import pytest
import torch

from forcing.diffusion import few_step_timesteps, sigma_from_t
from forcing.errors import ConfigError
from forcing.ode_pairs import clip_noise, write_shards
from lightning_modules.causal_forcing import CausalODE, generate_causal_pairs
from lightning_modules.ode_init import ODEInit
from tests.suite.helpers import compose_run, fast_overrides


def _cfg(tmp_path, pairs_dir, world_overrides, *extra: str):
    return compose_run("experiment=causal_ode", f"paradigm.pairs_path={pairs_dir}", *world_overrides,
                       *fast_overrides(tmp_path), *extra)  # fmt: skip


def _module(cfg) -> tuple[CausalODE, dict]:
    module = CausalODE(cfg)
    module.configure_model()
    batch = next(iter(CausalODE.build_datamodule(cfg).train_dataloader()))
    return module, batch


def test_trajectories_follow_the_ground_truth_context(causal_pairs, clips, ar_teacher, encoder):
    prompts, seeds, video = clips
    states, target = causal_pairs["states"], causal_pairs["target"]
    assert torch.equal(causal_pairs["grid_t"], few_step_timesteps())  # on the student's 4-step grid
    assert states.shape == (len(seeds), 4, *video.shape[1:]) and torch.equal(causal_pairs["context"], video)
    assert causal_pairs["config"]["forward_kwargs"]["mode"] == "teacher_forcing"
    assert causal_pairs["config"]["num_steps"] == 48 and causal_pairs["config"]["shift"] == 5.0
    for i, seed in enumerate(seeds):
        assert torch.equal(states[i, 0], clip_noise(seed, video.shape[1:]))  # index 0 = the clip's noise

    other = video.flip(0)  # the same prompts and noise with another clip's ground truth as context
    changed = generate_causal_pairs(ar_teacher, encoder, prompts, seeds, other, frames_per_block=3,
                                    guidance_scale=6.0)  # fmt: skip
    block0, later = slice(0, 3), slice(3, None)
    torch.testing.assert_close(
        changed["states"][..., block0, :, :], states[..., block0, :, :], rtol=0, atol=1e-6
    )
    torch.testing.assert_close(changed["target"][:, :, block0], target[:, :, block0], rtol=0, atol=1e-6)
    assert (changed["target"][:, :, later] - target[:, :, later]).abs().amax() > 1e-3
    assert (changed["states"][:, 1:, :, later] - states[:, 1:, :, later]).abs().amax() > 1e-4


def test_student_runs_teacher_forcing_over_the_stored_context(
    tmp_path, causal_pairs_dir, world_overrides, monkeypatch
):
    module, batch = _module(_cfg(tmp_path, causal_pairs_dir, world_overrides))
    assert "context" in batch and batch["context"].shape == batch["target"].shape
    rngs = module.clip_rngs(batch, salt=0)
    loss = module.loss_terms(batch, rngs)["loss"]
    perturbed = {**batch, "context": batch["context"].roll(1, dims=2)}  # another clean context
    assert abs(module.loss_terms(perturbed, rngs)["loss"].item() - loss.item()) > 1e-8

    target, context = batch["target"], batch["context"]

    def exact(x, t, text, **kwargs):  # v = (x_t - x0) / sigma, and the TF arguments checked
        assert kwargs["mode"] == "teacher_forcing" and kwargs["frames_per_block"] == 3
        assert torch.equal(kwargs["clean_x"], context)
        return (x - target) / sigma_from_t(t)[:, None, :, None, None]

    monkeypatch.setattr(module.generator, "forward", exact)
    assert module.loss_terms(batch, rngs)["loss"].item() < 1e-10


def test_pairs_without_clean_context_are_refused(tmp_path, causal_pairs, world_overrides):
    bidirectional = {k: v for k, v in causal_pairs.items() if k != "context"}
    bidirectional["config"] = {**causal_pairs["config"], "forward_kwargs": {"mode": "bidirectional"}}
    write_shards(bidirectional, tmp_path / "bi")
    with pytest.raises(ConfigError, match="teacher_forcing"):
        CausalODE.build_datamodule(_cfg(tmp_path, tmp_path / "bi", world_overrides))
    with pytest.raises(ConfigError, match="frames per block"):
        write_shards(causal_pairs, tmp_path / "c")
        CausalODE.build_datamodule(
            _cfg(tmp_path, tmp_path / "c", world_overrides, "paradigm.frames_per_block=1")
        )


def test_pairs_kind_names_the_ar_teacher_and_mode(tmp_path):
    cfg = compose_run("experiment=causal_ode_framewise", *fast_overrides(tmp_path))
    kind = CausalODE.pairs_kind(cfg, 6)
    assert kind.startswith("causal_ode_pairs-teacher_forcing_framewise-teacher_forcing-b1-")
    assert not kind.startswith("ode_pairs") and cfg.teacher.experiment == "teacher_forcing_framewise"
    assert issubclass(CausalODE, ODEInit) and CausalODE.mode == "teacher_forcing"
    by_path = compose_run("experiment=causal_ode", f"teacher.path={tmp_path}", *fast_overrides(tmp_path))
    assert CausalODE.pairs_kind(by_path, 6).startswith("causal_ode_pairs-path-teacher_forcing-b3-")
