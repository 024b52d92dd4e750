"""The ODEInit paradigm: its inputs, its loss, its initialisation, and one run through run.py's path."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from datamodules.ode_pairs import ODEPairsDataModule
from forcing.diffusion import few_step_timesteps, sigma_from_t
from forcing.errors import ConfigError
from forcing.ode_pairs import load_teacher, read_shards
from lightning_modules.launch import launch
from lightning_modules.ode_init import ODEInit
from lightning_modules.ode_pairs import main
from tests.suite.helpers import LossRecorder, compose_run, fast_overrides


def _cfg(tmp_path, pairs_dir, *extra: str):
    return compose_run("experiment=ode_init", f"paradigm.pairs_path={pairs_dir}", "model=tiny",
                       *fast_overrides(tmp_path), *extra)  # fmt: skip


def _module(cfg) -> tuple[ODEInit, dict]:
    module = ODEInit(cfg)
    module.configure_model()
    batch = next(iter(ODEInit.build_datamodule(cfg).train_dataloader()))
    return module, batch


def test_inputs_take_a_grid_state_per_block(tmp_path, pairs_dir):
    module, batch = _module(_cfg(tmp_path, pairs_dir))
    seen = []
    for step in range(4):
        x_t, t, idx = module.student_inputs(batch, module.clip_rngs(batch, salt=0, step=step))
        assert x_t.shape == batch["target"].shape and t.shape == idx.shape == (2, 12)
        blocks = idx.view(2, 4, 3)
        assert torch.equal(blocks, blocks[..., :1].expand_as(blocks))  # one index per block
        assert torch.equal(t, batch["grid_t"][idx])
        for b in range(2):
            for f in range(12):
                assert torch.equal(x_t[b, :, f], batch["states"][b, idx[b, f], :, f])
        seen.append(blocks[..., 0])
    seen = torch.stack(seen)  # [steps, B, blocks]
    assert any(len(set(row.tolist())) > 1 for row in seen.reshape(-1, 4))  # blocks differ
    assert not torch.equal(seen[:, 0], seen[:, 1])  # clips differ (keyed by their seeds)


def test_frame_wise_draws_an_index_per_frame(tmp_path, pairs_dir):
    cfg = compose_run("experiment=ode_init_framewise", f"paradigm.pairs_path={pairs_dir}", "model=tiny",
                      *fast_overrides(tmp_path))  # fmt: skip
    module, batch = _module(cfg)
    _, _, idx = module.student_inputs(batch, module.clip_rngs(batch, salt=0))
    assert cfg.paradigm.frames_per_block == 1 and len(set(idx[0].tolist())) > 1


def test_student_from_teacher_weights_gets_gradients(tmp_path, pairs_dir, teacher, teacher_dir):
    module, batch = _module(_cfg(tmp_path, pairs_dir, f"paradigm.init_from={teacher_dir}"))
    for key, value in teacher.state_dict().items():
        assert torch.equal(module.generator.state_dict()[key], value), key
    assert all(p.requires_grad for p in module.generator.parameters())
    loss = module.loss_terms(batch, module.clip_rngs(batch, salt=0))["loss"]
    loss.backward()
    assert loss.item() > 0
    for name in ("patch_embedding.weight", "blocks.0.self_attn.q.weight", "head.head.weight"):
        grad = module.generator.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_a_student_that_predicts_the_endpoint_has_zero_loss(tmp_path, pairs_dir, monkeypatch):
    module, batch = _module(_cfg(tmp_path, pairs_dir))
    target = batch["target"]

    def exact(x, t, context, **kwargs):  # v = (x_t - x0) / sigma
        assert kwargs["mode"] == "block_causal" and kwargs["frames_per_block"] == 3
        return (x - target) / sigma_from_t(t)[:, None, :, None, None]

    monkeypatch.setattr(module.generator, "forward", exact)
    loss = module.loss_terms(batch, module.clip_rngs(batch, salt=0))["loss"]
    assert loss.item() < 1e-10


def test_sampler_settings_are_the_distilled_four_step_sampler(tmp_path, pairs_dir):
    module = ODEInit(_cfg(tmp_path, pairs_dir, "paradigm.frames_per_block=1"))
    settings = module.sampler_settings()
    assert list(settings.timesteps) == few_step_timesteps().tolist() and settings.stochastic is True
    assert settings.guidance_scale == 1.0 and settings.frames_per_block == 1


def test_datamodule_errors_are_one_line_config_errors(tmp_path, pairs_dir):
    with pytest.raises(ConfigError, match="python -m lightning_modules.ode_pairs"):
        ODEInit.build_datamodule(compose_run("experiment=ode_init", "model=tiny"))
    with pytest.raises(ConfigError, match="world.num_frames"):
        ODEInit.build_datamodule(_cfg(tmp_path, pairs_dir, "world.num_frames=6"))
    with pytest.raises(ConfigError, match="init_from"):
        ODEInit.validate_config(_cfg(tmp_path, pairs_dir, f"paradigm.init_from={tmp_path / 'none'}"))
    assert isinstance(ODEInit.build_datamodule(_cfg(tmp_path, pairs_dir)), ODEPairsDataModule)


def test_run_py_one_fast_step(tmp_path, pairs_dir):
    recorder = LossRecorder()
    trainer = launch(_cfg(tmp_path, pairs_dir), extra_callbacks=[recorder])
    assert trainer.global_step >= 1
    assert recorder.losses and all(math.isfinite(x) for x in recorder.losses)
    assert list((tmp_path / "runs" / "ode_init-fm-s0" / "samples").glob("*.mp4"))


def test_a_lightning_checkpoint_is_a_teacher(tmp_path, pairs_dir):
    cfg = _cfg(tmp_path, pairs_dir, "trainer.fast_dev_run=false", "trainer.max_steps=1",
               "callbacks.samples_every_n_steps=0", "trainer.limit_val_batches=0")  # fmt: skip
    module = launch(cfg).lightning_module
    ckpt = tmp_path / "runs" / "ode_init-fm-s0" / "checkpoints" / "last.ckpt"
    model, run_cfg = load_teacher(ckpt)
    assert run_cfg["paradigm"]["name"] == "ode_init"
    for key, value in module.generator.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    main(
        [
            "--teacher",
            str(ckpt),
            "--out",
            str(tmp_path / "p"),
            "--num",
            "2",
            "--frames",
            "3",
            "--device",
            "cpu",
        ]
    )
    assert read_shards(tmp_path / "p")["states"].shape == (2, 4, 3, 3, 32, 32)  # size from the run config


def _as_dcp_directory(ckpt: Path, folder: Path) -> Path:
    """The checkpoint file `ckpt` in the layout FSDP2 writes on several ranks: a DCP directory of the
    tensors (`state_dict`, `optimizer_<i>`) and `meta.pt` with the rest (written by one process here)."""
    import torch.distributed.checkpoint as dcp

    checkpoint = torch.load(ckpt, weights_only=False)
    tensors = {"state_dict": checkpoint.pop("state_dict")}
    tensors.update({f"optimizer_{i}": state for i, state in enumerate(checkpoint.pop("optimizer_states"))})
    dcp.save(tensors, checkpoint_id=folder)
    torch.save(checkpoint, folder / "meta.pt")
    return folder


def test_a_dcp_checkpoint_is_a_teacher(tmp_path, pairs_dir):
    cfg = _cfg(tmp_path, pairs_dir, "trainer.fast_dev_run=false", "trainer.max_steps=1",
               "callbacks.samples_every_n_steps=0", "trainer.limit_val_batches=0")  # fmt: skip
    launch(cfg)
    ckpt = tmp_path / "runs" / "ode_init-fm-s0" / "checkpoints" / "last.ckpt"
    dcp = _as_dcp_directory(ckpt, tmp_path / "step000001.ckpt")
    assert (dcp / ".metadata").is_file() and list(dcp.glob("*.distcp"))
    model, run_cfg = load_teacher(dcp)
    from_file, file_cfg = load_teacher(ckpt)
    assert run_cfg == file_cfg and run_cfg["paradigm"]["name"] == "ode_init"
    for key, value in from_file.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    main(["--teacher", str(dcp), "--out", str(tmp_path / "p"), "--num", "2", "--frames", "3", "--device", "cpu"])
    assert read_shards(tmp_path / "p")["config"]["teacher"]["name"] == str(dcp)
