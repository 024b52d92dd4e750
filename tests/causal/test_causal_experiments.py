"""`experiment=causal_ode` and `experiment=causal_cd` run one fast step through run.py's path; their
prerequisites (the AR teacher, the causal pairs) come from the artifact store automatically."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from forcing.models import CausalWanModel
from forcing.ode_pairs import read_shards, render_clips
from lightning_modules.launch import launch
from tests.suite.helpers import CONF, LossRecorder, compose_run, fast_overrides


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


#: Causal Forcing stage-3 rows and the stage-2 student each starts from
STAGE_3 = {"causal_forcing_dmd": "causal_ode", "causal_forcing_dmd_framewise": "causal_ode_framewise",
           "causal_cd_dmd": "causal_cd", "causal_ode_dmd": "causal_ode_dbi",
           "causal_init_bi_dmd": "causal_init_bi"}  # fmt: skip


def test_stage_3_is_self_forcing_dmd_from_a_stage_2_student(tmp_path):
    """Causal Forcing §3 stage 3: asymmetric DMD exactly as Self Forcing (bidirectional real score)
    from the stage-2 student: causal ODE, causal CD ("CD -> DMD"), the D_Bi chain, or the init
    comparison's bidirectional arm."""
    configs = {name: compose_run(f"experiment={name}", *fast_overrides(tmp_path)) for name in STAGE_3}
    for name, cfg in configs.items():
        assert cfg.experiment_name == name and cfg.paradigm.generator_init.experiment == STAGE_3[name]
        assert cfg.paradigm._target_.endswith("SelfForcing") and cfg.objective.name == "dmd"
        assert cfg.teacher.experiment == "shapes_teacher"  # asymmetric: bidirectional real score
    assert configs["causal_forcing_dmd_framewise"].paradigm.frames_per_block == 1


def test_no_two_causal_rows_are_one_run() -> None:
    """`causal_ode_dmd` was `causal_forcing_dmd` under another name; now every row is its own run."""
    rows = sorted(p.stem for p in (CONF / "experiment").glob("causal_*.yaml"))
    seen: dict[str, str] = {}
    for name in rows:
        cfg = OmegaConf.to_container(compose_run(f"experiment={name}"), resolve=True)
        cfg.pop("experiment_name"), cfg.pop("name")
        key = json.dumps(cfg, sort_keys=True, default=str)
        assert key not in seen, f"{name} is {seen.get(key)}"
        seen[key] = name


@pytest.mark.parametrize("budget", ["demo", "study"])
def test_every_causal_forcing_stage_uses_adam_beta1_0(budget: str) -> None:
    """Causal Forcing App. D: Adam, beta1 0, beta2 0.999 in every stage (stage 3: Self Forcing's
    AdamW (0, 0.999) with critic / generator lr 0.2, REFERENCE §3)."""
    rows = sorted(p.stem for p in (CONF / "experiment").glob("causal_*.yaml"))
    for name in rows:
        o = compose_run(f"experiment={name}", f"budget={budget}").optim
        assert tuple(o.betas) == (0.0, 0.999), name
        if name in STAGE_3:
            assert tuple(o.critic_betas) == (0.0, 0.999)
            assert float(o.critic_lr) / float(o.lr) == pytest.approx(0.2), name
        else:
            assert float(o.weight_decay) == 0.0, name  # Adam
