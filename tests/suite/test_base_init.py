"""Paper-style initialisation: TF and DF fine-tune from the bidirectional base (as the papers do from
Wan2.1), so does Causal Forcing's AR teacher; a null init trains from scratch."""

from __future__ import annotations

import pytest
import torch

from forcing.models import CausalWanModel
from lightning_modules.artifacts import prerequisite_config
from lightning_modules.launch import launch, paradigm_class
from tests.suite.helpers import compose_run, fast_overrides, tiny_teacher


@pytest.mark.parametrize("experiment", ["teacher_forcing", "diffusion_forcing", "teacher_forcing_framewise"])
def test_denoising_baselines_fine_tune_from_the_base(experiment: str) -> None:
    init = compose_run(f"experiment={experiment}").paradigm.generator_init
    assert init.experiment == "shapes_teacher" and init.path is None
    assert compose_run("experiment=shapes_teacher").paradigm.generator_init.experiment is None  # the base: scratch


def test_causal_forcing_ar_teacher_is_tf_fine_tuned_from_the_base() -> None:
    causal = compose_run("experiment=causal_ode")
    ar_teacher = prerequisite_config(causal, str(causal.teacher.experiment))
    assert ar_teacher.experiment_name == "teacher_forcing"
    assert ar_teacher.paradigm.generator_init.experiment == "shapes_teacher"


def generator_of(cfg) -> dict[str, torch.Tensor]:
    """The generator's initial weights as the run builds them (prerequisites resolved)."""
    cls = paradigm_class(cfg)
    cls.prepare_prerequisites(cfg)
    module = cls(cfg)
    module.build_networks()
    return module.generator.state_dict()


@pytest.mark.parametrize("experiment", ["teacher_forcing", "diffusion_forcing"])
def test_training_starts_from_the_given_base_weights(experiment: str, tmp_path) -> None:
    base = tiny_teacher(tmp_path / "base")
    expected = CausalWanModel.from_pretrained(str(base), preset="tiny").state_dict()
    common = (f"experiment={experiment}", *fast_overrides(tmp_path))
    loaded = generator_of(compose_run(*common, f"paradigm.generator_init.path={base}"))
    assert loaded.keys() == expected.keys() and all(torch.equal(loaded[k], v) for k, v in expected.items())
    scratch = generator_of(compose_run(*common, "paradigm.generator_init.experiment=null"))
    assert not all(torch.equal(scratch[k], v) for k, v in expected.items())


def test_default_init_trains_the_base_first_and_loads_it(tmp_path) -> None:
    """TF with the default init: the base (shapes_teacher) is made in the (fast) store, then loaded."""
    store = tmp_path / "store"
    cfg = compose_run("experiment=teacher_forcing", *fast_overrides(tmp_path), f"paths.fast_dev_run_artifacts={store}")
    trainer = launch(cfg)
    assert trainer.global_step >= 1
    path = cfg.paradigm.generator_init.path
    assert path.startswith(str(store / "shapes_teacher")) and path.endswith("weights")
