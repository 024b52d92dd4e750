"""experiments/evaluate.py scores a checkpoint exactly as the training-time callback did."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.suite.helpers import ROOT


def _evaluate_module():
    spec = importlib.util.spec_from_file_location("evaluate_cli", ROOT / "experiments" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checkpoint_scores_equal_the_training_evaluation(eval_sweep: Path, tmp_path: Path) -> None:
    run = eval_sweep / "tf"
    trained = json.loads((run / "eval" / "metrics.jsonl").read_text().splitlines()[-1])
    scalars = _evaluate_module().main([str(run), "--out", str(tmp_path / "tf_eval")])
    assert scalars, "no scalars"
    keys = [k for k in scalars if k.startswith("eval/") and trained.get(k) is not None]
    assert "eval/stability@2x" in keys and "eval/motion@1x" in keys
    for key in keys:
        assert scalars[key] == pytest.approx(trained[key], rel=1e-4, abs=1e-5), key
    # the output is a run directory that compare.py reads like a training run
    from experiments.compare import scalars_at

    assert scalars_at(tmp_path / "tf_eval")["eval/stability@1x"] == pytest.approx(scalars["eval/stability@1x"])
    assert (tmp_path / "tf_eval" / "config.yaml").is_file()
    assert list((tmp_path / "tf_eval" / "eval").glob("stream_step*.mp4"))


def test_set_changes_known_keys_and_refuses_unknown_ones() -> None:
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"paradigm": {"guidance_scale": 4.0, "sample_shift": 1.0}})
    OmegaConf.set_struct(cfg, True)
    apply = _evaluate_module().apply_settings
    apply(cfg, ["paradigm.guidance_scale=2.5", "paradigm.sample_shift=3"])
    assert cfg.paradigm.guidance_scale == 2.5 and cfg.paradigm.sample_shift == 3
    with pytest.raises(SystemExit, match="paradigm.guidance"):
        apply(cfg, ["paradigm.guidance=3"])  # a typo is refused, not silently added
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        apply(cfg, ["paradigm.guidance_scale"])
