"""`experiment=causal_ode` and `experiment=causal_cd` run one fast step through run.py's path; their
prerequisites (the AR teacher, the causal pairs) come from the artifact store automatically."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from forcing.models import CausalWanModel
from forcing.ode_pairs import read_shards
from lightning_modules.causal_forcing import render_clips
from lightning_modules.launch import launch
from tests.suite.helpers import LossRecorder, compose_run, fast_overrides


def _run(tmp_path: Path, experiment: str, *extra: str):
    cfg = compose_run(f"experiment={experiment}", "model=tiny", *fast_overrides(tmp_path), *extra)
    recorder = LossRecorder()
    trainer = launch(cfg, extra_callbacks=[recorder])
    assert trainer.global_step >= 1
    assert recorder.losses and all(math.isfinite(x) for x in recorder.losses)
    return cfg, trainer


def test_causal_ode_one_fast_step(tmp_path):
    cfg, _ = _run(tmp_path, "causal_ode")
    teacher = Path(cfg.teacher.path if cfg.teacher.get("path") else cfg.paradigm.init_from)
    assert teacher.parts[-3] == "teacher_forcing"  # the AR teacher, from the artifact store
    pairs_dir = Path(cfg.paradigm.pairs_path)
    assert pairs_dir.parent.name == "teacher_forcing" and pairs_dir.name.startswith("causal_ode_pairs-")
    pairs = read_shards(pairs_dir)
    assert pairs["config"]["forward_kwargs"]["mode"] == "teacher_forcing"
    w = cfg.world  # the stored context is the ground-truth clip of each pair seed
    assert torch.equal(pairs["context"], render_clips(pairs["seeds"].tolist(), w.num_frames, w.height, w.width,
                                                      w.max_shapes))  # fmt: skip


def test_causal_cd_one_fast_step(tmp_path):
    cfg, trainer = _run(tmp_path, "causal_cd")
    module = trainer.lightning_module
    assert Path(cfg.teacher.path).parts[-3] == "teacher_forcing"
    teacher = CausalWanModel.from_pretrained(cfg.teacher.path, preset="tiny", **dict(cfg.model.overrides))
    student, ema = module.generator.state_dict(), module.generator_ema.state_dict()
    # before ema_start the EMA target copies the student after every optimizer step
    assert all(torch.equal(student[k], ema[k]) for k in student)
    assert any(not torch.equal(student[k], v) for k, v in teacher.state_dict().items())  # the student stepped
    assert all(torch.equal(module.teacher_net.state_dict()[k], v) for k, v in teacher.state_dict().items())


def test_stage_3_is_self_forcing_dmd_from_the_causal_ode_student(tmp_path):
    inits = {"causal_forcing_dmd": "causal_ode", "causal_forcing_dmd_framewise": "causal_ode_framewise",
             "causal_ode_dmd": "causal_ode", "sf_ode_dmd": "ode_init"}  # fmt: skip
    configs = {name: compose_run(f"experiment={name}", *fast_overrides(tmp_path)) for name in inits}
    for name, cfg in configs.items():
        assert cfg.experiment_name == name and cfg.paradigm.generator_init.experiment == inits[name]
        assert cfg.paradigm._target_.endswith("SelfForcing") and cfg.objective.name == "dmd"
        assert cfg.teacher.experiment == "shapes_teacher"  # asymmetric: bidirectional real score
    assert configs["causal_forcing_dmd_framewise"].paradigm.frames_per_block == 1
    ablation = [configs[n] for n in ("sf_ode_dmd", "causal_ode_dmd")]  # the same recipe but the init
    for section in ("paradigm", "objective", "optim", "trainer", "teacher"):
        a, b = (dict(c[section]) for c in ablation)
        a.pop("generator_init", None), b.pop("generator_init", None)
        assert a == b, section
