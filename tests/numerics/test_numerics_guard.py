"""The numerics guard: every paradigm's fixed-seed 10-iteration run on the tiny backbone reproduces the
recorded per-iteration training terms exactly (CPU, one thread). A change meant to change the numbers
rerecords `reference_losses.json` (`python -m tests.numerics.guard`) in a commit of its own."""

from __future__ import annotations

import json

import pytest

from tests.numerics.guard import ITERATIONS, REFERENCE, RUNS, run_terms

REFERENCE_RUNS = json.loads(REFERENCE.read_text())["runs"]


def test_reference_covers_every_guard_run() -> None:
    assert sorted(REFERENCE_RUNS) == sorted(RUNS)
    for experiment, terms in REFERENCE_RUNS.items():
        assert "train/loss" in terms or "train/generator_loss" in terms, experiment
        assert all(len(values) == ITERATIONS for values in terms.values()), experiment


@pytest.mark.parametrize("experiment", sorted(RUNS))
def test_numerics_match_the_reference(experiment: str, tmp_path) -> None:
    terms = run_terms(experiment, tmp_path)
    reference = REFERENCE_RUNS[experiment]
    assert sorted(terms) == sorted(reference), f"{experiment}: logged terms changed"
    for key, values in reference.items():
        diverged = [i for i, (a, b) in enumerate(zip(terms[key], values, strict=True)) if a != b]
        assert not diverged, (
            f"{experiment} {key} differs from iteration {diverged[0] + 1}: {terms[key][diverged[0]]!r} != "
            f"{values[diverged[0]]!r} (a deliberate change: rerecord with python -m tests.numerics.guard)"
        )
