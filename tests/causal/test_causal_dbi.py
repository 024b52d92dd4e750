"""Causal Forcing's D_Bi protocol and the matched init comparison (REFERENCE §3, Causal Forcing):
the AR teacher learns the bidirectional teacher's samples, and the two ODE inits differ in the
teacher only (same prompts, guidance, pairs, steps, batch and optimiser)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from forcing.ode_pairs import read_shards
from lightning_modules.artifacts import prerequisite_config
from lightning_modules.causal_forcing_dbi import CausalODEDBi, TeacherForcingDBi
from lightning_modules.launch import launch
from lightning_modules.ode_init import ODEInit
from tests.suite.helpers import LossRecorder, compose_run, fast_overrides

ARMS = ("causal_init_bi", "causal_tf_dbi", "causal_ode_dbi")


def flat(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """The resolved config as {dotted key: leaf value}."""
    node = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) and value else {f"{prefix}{key}": value})
    return out


@pytest.mark.parametrize("budget", ["demo", "study"])
def test_init_comparison_is_matched(budget: str) -> None:
    """Causal Forcing stage 2's init comparison / App. D: both ODE datasets use the same prompts and guidance (CFG 6.0),
    compute is matched (3k ODE-init steps vs 2k TF + 1k causal ODE, scaled), batch and Adam
    (beta1 0) are the same; only the teacher differs."""
    bi, tf, ode = (compose_run(f"experiment={e}", f"budget={budget}") for e in ARMS)
    for cfg in (bi, tf, ode):
        assert float(cfg.paradigm.pair_guidance_scale) == 6.0
        assert int(cfg.paradigm.num_pairs) == int(bi.paradigm.num_pairs)
        assert int(cfg.world.batch_size) == int(bi.world.batch_size)
        assert dict(cfg.optim) == dict(bi.optim) and tuple(cfg.optim.betas) == (0.0, 0.999)
    assert bi.trainer.max_steps == tf.trainer.max_steps + ode.trainer.max_steps  # 3k = 2k + 1k
    assert tf.trainer.max_steps == 2 * ode.trainer.max_steps
    assert bi.teacher.experiment == tf.teacher.experiment == "shapes_teacher"  # the bidirectional teacher
    assert ode.teacher.experiment == "causal_tf_dbi"  # the AR teacher of D_Bi
    # the chain that stage 3 composes is this one at every budget
    dmd = compose_run("experiment=causal_ode_dmd", f"budget={budget}")
    assert prerequisite_config(dmd, "causal_ode_dbi").trainer.max_steps == ode.trainer.max_steps


@pytest.mark.parametrize("budget", ["demo", "study"])
def test_the_two_dmd_arms_differ_only_in_the_init(budget: str) -> None:
    """The init ablation's DMD rows: identical Self Forcing DMD (REFERENCE §3) but the generator init."""
    a, b = (flat(compose_run(f"experiment={e}", f"budget={budget}")) for e in ("causal_init_bi_dmd", "causal_ode_dmd"))
    diff = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert diff == {"experiment_name", "name", "paradigm.generator_init.experiment"}


def _run(tmp_path: Path, experiment: str):
    cfg = compose_run(f"experiment={experiment}", "model=tiny", *fast_overrides(tmp_path))
    recorder = LossRecorder()
    trainer = launch(cfg, extra_callbacks=[recorder])
    assert trainer.global_step >= 1 and recorder.losses and all(math.isfinite(x) for x in recorder.losses)
    return cfg


def test_dbi_chain_trains_the_ar_teacher_on_bidirectional_samples(tmp_path) -> None:
    """Causal Forcing stage 1 on D_Bi: the AR teacher's clips are the bidirectional teacher's
    samples (the endpoints of its ODE pairs, the very pairs of the bidirectional arm), it starts
    from that teacher; stage 2's clean context is D_Bi's clip of each pair seed."""
    cfg = _run(tmp_path, "causal_ode_dbi")  # makes shapes_teacher -> D_Bi -> causal_tf_dbi -> causal pairs
    assert Path(cfg.paradigm.init_from).parts[-3] == "causal_tf_dbi"  # the student starts from the AR teacher
    dbi_dir = CausalODEDBi.context_folder(cfg)
    dbi = read_shards(dbi_dir)
    made = dbi["config"]
    assert made["forward_kwargs"]["mode"] == "bidirectional" and made["guidance_scale"] == 6.0
    assert "shapes_teacher" in made["teacher"]["name"]
    # the bidirectional arm's ODE pairs are D_Bi itself: one artifact, same prompts and samples
    bi = compose_run("experiment=causal_init_bi", "model=tiny", *fast_overrides(tmp_path))
    ODEInit.prepare_prerequisites(bi)
    assert Path(bi.paradigm.pairs_path) == dbi_dir
    # stage 1: TF on D_Bi from the bidirectional teacher's weights
    ar = prerequisite_config(cfg, "causal_tf_dbi")
    TeacherForcingDBi.prepare_prerequisites(ar)
    assert Path(ar.paradigm.pairs_path) == dbi_dir and Path(ar.paradigm.init_from).parts[-3] == "shapes_teacher"
    dm = TeacherForcingDBi.build_datamodule(ar)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    rows = {int(s): i for i, s in enumerate(dbi["seeds"].tolist())}
    for seed, video in zip(batch["seed"].tolist(), batch["video"]):
        assert torch.equal(video, dbi["target"][rows[seed]].clamp(-1, 1))  # a bidirectional sample, not GT
    # stage 2: the causal pairs' clean context is D_Bi's clip of the same seed
    pairs = read_shards(cfg.paradigm.pairs_path)
    assert pairs["config"]["forward_kwargs"]["mode"] == "teacher_forcing"
    for seed, context in zip(pairs["seeds"].tolist(), pairs["context"]):
        assert torch.equal(context, dbi["target"][rows[seed]])
