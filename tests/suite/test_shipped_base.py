"""The shipped base of the shapes world (forcing/assets/shapes_base) and `pretrained=shapes_base`: the
weights are the ones their card names (sha256), fit the `shapes_base` preset, score what the card
records on the 8 validation prompts, and every prerequisite that needs the world's bidirectional
teacher (real score, critic, ODE pairs and student, TF / DF fine-tuning) resolves to them."""

from __future__ import annotations

import json

import pytest

from experiments.learnability.base_card import FOLDER, score, weights_file
from forcing.models import CausalWanModel
from forcing.models.presets import get_preset
from forcing.provenance import file_sha256
from lightning_modules.artifacts import prerequisite_config, resolve_path
from tests.suite.helpers import compose_run

CARD = json.loads((FOLDER / "card.json").read_text())


def test_the_shipped_weights_are_the_carded_ones_and_fit_the_preset() -> None:
    assert file_sha256(weights_file()) == CARD["sha256"]
    assert weights_file().stat().st_size <= 10 * 2**20
    model = CausalWanModel.from_pretrained(str(FOLDER))
    assert model.config == get_preset("shapes_base")
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(3.9e6, rel=0.05)


def test_the_base_scores_what_its_card_records() -> None:
    scalars = score()
    recorded = CARD["scores"]
    # the same computation on the same weights: equal up to float reordering across machines
    assert scalars["eval/stability@1x"] >= recorded["eval/stability@1x"] - 1.0
    assert scalars["eval/alignment@1x"] >= recorded["eval/alignment@1x"] - 0.05
    assert scalars["eval/stability@1x"] > 30  # recognisable shapes, not the patch noise of a scratch teacher


@pytest.mark.parametrize(
    ("experiment", "section"),
    [("self_forcing_dmd", "teacher"), ("teacher_forcing", "paradigm.generator_init"), ("ode_init", "teacher")],
)
def test_pretrained_shapes_base_gives_the_shipped_weights_to_every_run(experiment: str, section: str) -> None:
    from omegaconf import OmegaConf

    cfg = compose_run(f"experiment={experiment}", "pretrained=shapes_base")
    assert cfg.world.codec.kind == "shapes" and cfg.model.preset == "shapes_base"
    assert resolve_path(cfg, OmegaConf.select(cfg, section), "teacher") == FOLDER


def test_prerequisites_inherit_the_shipped_base() -> None:
    cfg = compose_run("experiment=self_forcing_dmd", "pretrained=shapes_base")
    ode = prerequisite_config(cfg, "ode_init")  # the generator init of Self Forcing
    assert ode.model.preset == "shapes_base" and ode.world.codec.kind == "shapes"
    assert resolve_path(ode, ode.teacher, "teacher") == FOLDER  # pairs and student init from the base
    own = compose_run("experiment=ode_init", "pretrained=shapes_base")  # with conf/pretrained/shapes_base/ode_init.yaml
    assert ode.paradigm.num_pairs == own.paradigm.num_pairs != compose_run("experiment=ode_init").paradigm.num_pairs
    assert ode.trainer.max_steps == own.trainer.max_steps
    ar_teacher = prerequisite_config(compose_run("experiment=causal_ode", "pretrained=shapes_base"), "teacher_forcing")
    assert resolve_path(ar_teacher, ar_teacher.paradigm.generator_init, "init") == FOLDER  # CF's AR teacher: TF from the base


def test_without_the_pretrained_base_the_suite_trains_its_own_teacher() -> None:
    cfg = compose_run("experiment=self_forcing_dmd", "pretrained=none")
    assert cfg.model.preset == "shapes" and not cfg.get("artifact_paths")


def test_python_run_py_is_the_main_job_on_the_shipped_base() -> None:
    from hydra import compose, initialize_config_dir

    from lightning_modules.validation import validate_run
    from tests.suite.helpers import CONF

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("run")  # `python run.py`, no overrides
    assert cfg.experiment_name == "self_forcing_dmd" and cfg.pretrained_name == "shapes_base"
    assert cfg.world.codec.kind == "shapes" and cfg.model.preset == "shapes_base"
    assert resolve_path(cfg, cfg.teacher, "teacher") == FOLDER
    validate_run(cfg)


@pytest.mark.parametrize(
    ("override", "named"), [("world=wan", "world.name=wan"), ("model=tiny", "model.preset=tiny"), ("world=shapes", "world.codec.kind=identity")]
)
def test_a_world_or_architecture_the_base_does_not_fit_is_refused_with_the_way_out(override: str, named: str) -> None:
    from forcing.errors import ConfigError
    from lightning_modules.validation import validate_run

    with pytest.raises(ConfigError, match=f"pretrained=shapes_base is a base of .*this run has {named}: add pretrained=none"):
        validate_run(compose_run("pretrained=shapes_base", override))
    validate_run(compose_run("pretrained=none", "model=tiny"))  # without the base: any architecture


def test_artifacts_of_the_base_are_keyed_by_its_weights_not_its_path(tmp_path) -> None:
    import shutil

    from lightning_modules.artifacts import identity

    cfg = compose_run("experiment=ode_init", "pretrained=shapes_base")
    copy = shutil.copytree(FOLDER, tmp_path / "elsewhere")
    moved = compose_run("experiment=ode_init", "pretrained=shapes_base", f"artifact_paths.shapes_teacher={copy}")
    assert identity(moved) == identity(cfg)  # a clone elsewhere reuses its store
    pairs = prerequisite_config(compose_run("pretrained=shapes_base"), "ode_init")  # teacher.path: the base's folder
    elsewhere = prerequisite_config(compose_run("pretrained=shapes_base", f"artifact_paths.shapes_teacher={copy}"), "ode_init")
    assert pairs.teacher.path != elsewhere.teacher.path and identity(pairs) == identity(elsewhere)
    card = json.loads((copy / "card.json").read_text())
    (copy / "card.json").write_text(json.dumps({**card, "sha256": "0" * 64}))
    assert identity(moved) != identity(cfg)  # new weights: new ODE pairs and initialisations
