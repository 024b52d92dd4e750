"""HSDP (shard within a group of ranks, replicate across groups) and deferred gradient sync for
gradient accumulation (forcing/parallel.py) on 2 gloo ranks, against flat FSDP2 syncing every micro-batch."""

from __future__ import annotations

import json

import pytest

from forcing.errors import ConfigError
from lightning_modules.validation import check_shapes
from tests.suite.helpers import compose_run, torchrun


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("hsdp")
    torchrun("tests/suite/hsdp_worker.py", str(tmp / "out"))
    return [json.loads((tmp / f"out.rank{r}.json").read_text()) for r in range(2)]


def test_deferred_sync_reduces_once_with_the_same_gradients(results) -> None:
    for r in results:
        assert r["deferred_unreduced"], "a deferred micro-batch must not reduce gradients"
        assert r["grad_norm"] > 1e-3
        assert r["deferred_vs_every"] < 1e-6


def test_hsdp_mesh_and_gradients_match_flat_fsdp(results) -> None:
    for r in results:
        assert r["hsdp_mesh"] == [[2, 1], ["replicate", "shard"]]
        assert r["param_mesh"] == ["replicate", "shard"]
        assert r["hsdp_vs_flat"] < 1e-6


def test_replicate_must_divide_the_ranks() -> None:
    cfg = compose_run("experiment=teacher_forcing", "hardware=h100x64", "hardware.replicate=3", "world.batch_size=64")
    with pytest.raises(ConfigError, match="hardware.replicate=3"):
        check_shapes(cfg)
    check_shapes(compose_run("experiment=teacher_forcing", "hardware=h100x64", "world.batch_size=64"))
