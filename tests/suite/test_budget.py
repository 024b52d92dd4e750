"""Training budgets (`budget=demo|study`): per-experiment specialisation, inherited by prerequisites."""

from __future__ import annotations

from lightning_modules.artifacts import identity, prerequisite_config, store_dir
from tests.suite.helpers import CONF, EXPERIMENTS, compose_run

STUDY = sorted(p.stem for p in (CONF / "budget" / "study").glob("*.yaml"))


def test_study_budget_specialises_experiments() -> None:
    """Every study file names an experiment and changes what that experiment trains."""
    assert STUDY, "the study budget specialises no experiment"
    for experiment in STUDY:
        assert experiment in EXPERIMENTS, f"budget/study/{experiment}.yaml names no experiment"
        demo = compose_run(f"experiment={experiment}")
        study = compose_run(f"experiment={experiment}", "budget=study")
        assert demo.budget_name == "demo" and study.budget_name == "study"
        assert identity(demo) != identity(study), experiment


def test_command_line_beats_budget() -> None:
    cfg = compose_run("experiment=shapes_teacher", "budget=study", "trainer.max_steps=7")
    assert cfg.trainer.max_steps == 7


def test_prerequisites_inherit_the_budget(tmp_path) -> None:
    """A study run's teacher is the study teacher (its own artifact), a demo run's the demo one."""
    paths = [f"paths.artifacts={tmp_path}"]
    demo = prerequisite_config(compose_run("experiment=self_forcing_dmd", *paths), "shapes_teacher")
    study = prerequisite_config(compose_run("experiment=self_forcing_dmd", "budget=study", *paths), "shapes_teacher")
    assert study.budget_name == "study" and demo.budget_name == "demo"
    assert study.trainer.max_steps == compose_run("experiment=shapes_teacher", "budget=study").trainer.max_steps
    assert demo.trainer.max_steps == compose_run("experiment=shapes_teacher").trainer.max_steps
    assert study.trainer.max_steps != demo.trainer.max_steps
    assert store_dir(study, "weights") != store_dir(demo, "weights")
    # two levels down (self_forcing_dmd -> ode_init -> shapes_teacher) the budget still holds
    ode = prerequisite_config(compose_run("experiment=self_forcing_dmd", "budget=study", *paths), "ode_init")
    assert prerequisite_config(ode, "shapes_teacher").trainer.max_steps == study.trainer.max_steps
