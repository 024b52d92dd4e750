"""The config base: experiments compose under every budget, each has its own budget entry, none
duplicates another, and the shared blocks live in one place (conf/experiment/base/, budget families).
"""

from __future__ import annotations

from typing import Any

import pytest
from omegaconf import OmegaConf

from forcing.errors import ConfigError
from lightning_modules.validation import check_budget
from tests.suite.helpers import CONF, EXPERIMENTS, compose_run

#: budgets (conf/budget/*.yaml)
BUDGETS = sorted(p.stem for p in (CONF / "budget").glob("*.yaml"))
#: Keys that name a run rather than configure it: `experiment_name` is the experiment's own name and
#: `name` is derived from it (`${experiment_name}-${objective.name}-s${seed}`). Two experiment files
#: that resolve to the same config but for these train the same thing twice under two names.
IDENTITY_KEYS = ("experiment_name", "name")


def resolved(experiment: str, budget: str) -> dict[str, Any]:
    """The resolved config of `experiment` under `budget`, without its naming keys."""
    data = OmegaConf.to_container(compose_run(f"experiment={experiment}", f"budget={budget}"), resolve=True)
    for key in IDENTITY_KEYS:
        data.pop(key)
    return data


@pytest.mark.parametrize("budget", BUDGETS)
def test_every_experiment_composes_under_every_budget(budget: str) -> None:
    for experiment in EXPERIMENTS:
        cfg = compose_run(f"experiment={experiment}", f"budget={budget}")
        assert cfg.experiment_name == experiment, "an experiment file is named after its experiment_name"
        assert cfg.budget_name == budget
        check_budget(cfg)  # an entry where the budget has entries: no silent fallback


@pytest.mark.parametrize("budget", BUDGETS)
def test_no_two_experiments_resolve_to_the_same_config(budget: str) -> None:
    seen: dict[str, str] = {}
    for experiment in EXPERIMENTS:
        key = OmegaConf.to_yaml(OmegaConf.create(resolved(experiment, budget)), sort_keys=True)
        assert key not in seen, f"{experiment} resolves to {seen.get(key)}'s config under budget={budget}"
        seen[key] = experiment


def test_budget_folders_have_one_entry_per_experiment() -> None:
    """Every budget with per-experiment entries has one for each experiment, and only for experiments."""
    for folder in (p for p in (CONF / "budget").iterdir() if p.is_dir()):
        entries = {p.stem for p in folder.glob("*.yaml")}
        assert entries == set(EXPERIMENTS), folder.name


def test_a_missing_budget_entry_is_refused() -> None:
    cfg = compose_run("experiment=self_forcing_dmd", "budget=study")
    cfg.experiment_name = "no_such_experiment"
    with pytest.raises(ConfigError, match="budget=study has no entry for experiment no_such_experiment"):
        check_budget(cfg)
    demo = compose_run("experiment=self_forcing_dmd")
    demo.experiment_name = "no_such_experiment"
    check_budget(demo)  # demo: every experiment's own recipe, no entries


def test_families_are_shared_not_copied() -> None:
    """No two budget entries or families are the same file (identical recipes select one family)."""
    files = [p for p in (CONF / "budget").rglob("*.yaml")]
    bodies: dict[str, str] = {}
    for path in files:
        body = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#"))
        if "defaults:" in body and body.count("\n") == 1:
            continue  # an entry that only selects its family
        assert body not in bodies, f"{path} repeats {bodies.get(body)}"
        bodies[body] = str(path)


def test_dead_keys_are_gone() -> None:
    """`teacher.guidance_scale` (the paradigm's own scales rule) and `sample_steps` of few-step
    paradigms (their sampler is the fixed 4-step grid) are read nowhere."""
    for experiment in EXPERIMENTS:
        cfg = compose_run(f"experiment={experiment}")
        assert "guidance_scale" not in cfg.teacher, experiment
        if cfg.paradigm.name not in ("teacher", "tf", "df", "causal_tf_dbi"):
            assert "sample_steps" not in cfg.paradigm, experiment
