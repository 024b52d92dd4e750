"""The `official` benchmark section: weights under the official Self Forcing names, the import
isolation, the re-noising alignment, and (with a clone in SELF_FORCING_OFFICIAL) the side-by-side run.

Timings are never asserted; the side-by-side test asserts the table and the output equality.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest
import torch

from forcing import bench
from forcing.bench.official_code import (
    CLONE_PACKAGES,
    isolated_imports,
    official_model_kwargs,
    official_state_dict,
)
from forcing.bench.official_runs import our_renoising_draws
from forcing.models import CausalWanModel
from forcing.models.weights import load_state_dict_strict, wan_to_diffusers

CLONE = os.environ.get("SELF_FORCING_OFFICIAL")


def test_official_state_dict_round_trips(model: CausalWanModel) -> None:
    theirs = official_state_dict(model.state_dict())
    assert theirs.keys() == model.state_dict().keys()  # the original Wan names, which theirs keeps
    assert official_state_dict(wan_to_diffusers(theirs)).keys() == theirs.keys()  # from diffusers too
    assert all(t.data_ptr() != p.data_ptr() for t, p in zip(theirs.values(), model.state_dict().values()))
    fresh = CausalWanModel(model.config)
    load_state_dict_strict(fresh, theirs)
    x, t, ctx = torch.randn(1, 4, 3, 8, 8), torch.full((1,), 500.0), torch.randn(1, 8, 16)
    assert torch.equal(fresh(x, t, ctx), model(x, t, ctx))


def test_official_model_kwargs_match_the_architecture(model: CausalWanModel) -> None:
    cfg = model.config
    kwargs = official_model_kwargs(cfg, text_len=8, local_attn_size=6)
    assert (kwargs["dim"], kwargs["ffn_dim"], kwargs["num_heads"], kwargs["num_layers"]) == (
        cfg.dim,
        cfg.ffn_dim,
        cfg.num_heads,
        cfg.num_layers,
    )
    assert kwargs["patch_size"] == (1, 2, 2) and kwargs["text_len"] == 8 and kwargs["local_attn_size"] == 6
    assert kwargs["sink_size"] == 0 and kwargs["cross_attn_norm"] is True


def test_isolated_imports_restore_sys_modules(tmp_path: Path) -> None:
    (tmp_path / "utils").mkdir()
    (tmp_path / "utils" / "probe.py").write_text("VALUE = 7\n")
    outside = types.ModuleType("utils")
    sys.modules["utils"] = outside
    try:
        with isolated_imports(tmp_path):
            import utils.probe  # the clone's `utils`, not the one outside

            assert utils.probe.VALUE == 7
        assert sys.modules["utils"] is outside and "utils.probe" not in sys.modules
        assert all(name not in sys.modules for name in CLONE_PACKAGES if name != "utils")
    finally:
        del sys.modules["utils"]


def test_renoising_draws_are_ours_in_their_layout() -> None:
    class Scheduler:  # their FlowMatchScheduler.add_noise, reduced to sigma = 1 (returns the noise)
        def add_noise(self, clean, noise, timestep):
            return noise

    pipe = types.SimpleNamespace(scheduler=Scheduler(), num_frame_per_block=3)
    clean = torch.zeros(3, 4, 2, 2)  # [B*F, C, H, W], B = 1
    with our_renoising_draws(pipe, torch.Generator().manual_seed(5)):
        theirs = pipe.scheduler.add_noise(clean, torch.randn_like(clean), None)
    ours = torch.randn((1, 4, 3, 2, 2), generator=torch.Generator().manual_seed(5))  # our sampler's draw
    assert torch.equal(theirs, ours[0].permute(1, 0, 2, 3))
    assert "add_noise" not in vars(pipe.scheduler)  # their method is back


def test_section_without_a_clone_says_why() -> None:
    md = bench.SECTIONS["official"](bench.parse_args(["official", "--tiny"]))
    assert "skipped" in md and "--official PATH" in md


@pytest.mark.skipif(CLONE is None, reason="set SELF_FORCING_OFFICIAL to a clone of guandeh17/Self-Forcing")
def test_side_by_side_outputs_match() -> None:
    args = bench.parse_args(["official", "--tiny", "--official", CLONE, "--official-frames", "9"])
    md = bench.SECTIONS["official"](args)
    rows = [[c.strip() for c in r.strip("|").split("|")] for r in md.splitlines() if r.startswith("| ")][1:]
    assert [(r[0], r[1]) for r in rows] == [("whole video", "9 (3)"), ("rolling, 6 frames", "9 (3)")]
    assert all(float(r[8]) < 1e-5 and float(r[9]) < 1e-5 for r in rows)  # the same algorithm, fp32
