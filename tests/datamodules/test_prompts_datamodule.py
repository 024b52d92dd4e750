"""The prompt-list data module: order per rank and epoch, held-out tail, resume, one-line errors, and
`world.data` at Wan scale (build_datamodule, the checks of validation)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules import build_datamodule, check_world_data, validation_clips
from datamodules.prompts import PromptDataModule, read_prompts
from forcing.errors import ConfigError
from lightning_modules.launch import paradigm_class
from tests.suite.helpers import compose_run

PROMPTS = [f"prompt number {i}" for i in range(12)]


@pytest.fixture()
def prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(PROMPTS[:5]) + "\n\n  \n" + "\n".join(f"  {p} " for p in PROMPTS[5:]) + "\n")
    return path


def _dm(path: Path, **kwargs) -> PromptDataModule:
    return PromptDataModule(path, **{"batch_size": 2, "val_size": 2, "seed": 3, **kwargs})


def _epoch(dm: PromptDataModule, rank: int, world: int, epoch: int) -> list[int]:
    sampler = dm.train_sampler(rank, world)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_prompts_are_read_stripped_without_blank_lines(prompt_file):
    assert read_prompts(prompt_file) == PROMPTS


def test_batches_hold_prompts_and_their_ids_and_validation_is_the_tail(prompt_file):
    dm = _dm(prompt_file)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"prompt", "seed"} and batch["seed"].dtype == torch.int64
    assert batch["prompt"] == [PROMPTS[i] for i in batch["seed"].tolist()]
    val = list(dm.val_dataloader())
    assert [p for b in val for p in b["prompt"]] == PROMPTS[-2:]
    train = [s for b in dm.train_dataloader() for s in b["seed"].tolist()]
    assert sorted(train) == list(range(10))  # every training prompt once per epoch, none of the tail


def test_ranks_take_disjoint_prompts_and_epochs_are_reshuffled(prompt_file):
    dm = _dm(prompt_file, batch_size=1, val_size=0)
    for epoch in range(2):
        ranks = [_epoch(dm, r, 3, epoch) for r in range(3)]
        assert all(len(r) == 4 for r in ranks)
        assert len(set().union(*ranks)) == 12  # disjoint, all prompts
        merged = [i for step in zip(*ranks) for i in step]
        assert merged == _epoch(dm, 0, 1, epoch)  # a W-rank run sees what one process sees
    assert _epoch(dm, 0, 1, 0) != _epoch(dm, 0, 1, 1) and sorted(_epoch(dm, 0, 1, 1)) == list(range(12))
    assert _epoch(dm, 1, 3, 1) == _epoch(_dm(prompt_file, batch_size=1, val_size=0), 1, 3, 1)  # deterministic
    assert _epoch(dm, 0, 1, 0) != _epoch(_dm(prompt_file, batch_size=1, val_size=0, seed=4), 0, 1, 0)


def test_mid_epoch_resume_skips_the_trained_batches_once(prompt_file):
    dm = _dm(prompt_file)
    full = [s for b in dm.train_dataloader() for s in b["seed"].tolist()]
    dm.load_state_dict({"batches_in_epoch": 3})
    assert [s for b in dm.train_dataloader() for s in b["seed"].tolist()] == full[6:]
    assert [s for b in dm.train_dataloader() for s in b["seed"].tolist()] == full


def test_bad_prompt_files_are_one_line_errors(tmp_path, prompt_file):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n   \n")
    cases = [
        (tmp_path / "missing.txt", {}, "prompt file .*missing.txt does not exist"),
        (empty, {}, "prompt file .*empty.txt holds no prompt"),
        (prompt_file, {"ranks": 4, "batch_size": 3}, r"has 10 training prompts .* fewer than 4 ranks x batch 3"),
        (prompt_file, {"val_size": 12}, "leaves no training prompt"),
    ]
    for path, kwargs, message in cases:
        with pytest.raises(ConfigError, match=message) as err:
            _dm(path, **kwargs)
        assert "\n" not in str(err.value)


def _wan(*overrides: str):
    return compose_run("experiment=self_forcing_dmd", "world=wan", "teacher.path=/unused", *overrides)


def test_wan_world_builds_the_prompt_module_and_checks_its_source(prompt_file, tmp_path):
    cfg = _wan(f"world.prompts={prompt_file}", "world.val_size=2", "world.batch_size=2")
    dm = build_datamodule(cfg)
    assert isinstance(dm, PromptDataModule) and dm.batch_size == 2 and len(dm.train_prompts) == 10
    assert validation_clips(cfg, 4) == []  # no closed-form ground truth: the streaming evaluation is skipped
    with pytest.raises(ConfigError, match="^world.data=prompts needs world.prompts=<a text file"):
        check_world_data(_wan(), needs_clips=False)
    with pytest.raises(ConfigError, match=f"^world.prompts={tmp_path}/nope.txt does not exist"):
        check_world_data(_wan(f"world.prompts={tmp_path}/nope.txt"), needs_clips=False)
    with pytest.raises(ConfigError, match=f"^world.latents={tmp_path} has no manifest.json"):
        check_world_data(_wan("world.data=latents", f"world.latents={tmp_path}"), needs_clips=True)
    with pytest.raises(ConfigError, match="^world.data='video' is not one of: prompts, latents"):
        check_world_data(_wan("world.data=video"), needs_clips=False)


def test_paradigms_that_train_on_clips_refuse_prompts_only(prompt_file):
    sf = _wan(f"world.prompts={prompt_file}")
    assert not paradigm_class(sf).needs_clips(sf)  # Self Forcing DMD, self rollout: prompts suffice
    for experiment in ("tf_dmd", "self_forcing_gan", "teacher_forcing"):
        cfg = compose_run(f"experiment={experiment}", "world=wan", f"world.prompts={prompt_file}")
        assert paradigm_class(cfg).needs_clips(cfg), experiment
        with pytest.raises(ConfigError, match="gives prompts only: use world.data=latents"):
            check_world_data(cfg, paradigm_class(cfg).needs_clips(cfg))
    tf = compose_run("experiment=teacher_forcing", "world=wan", f"world.prompts={prompt_file}")
    with pytest.raises(ConfigError, match="gives prompts only"):
        paradigm_class(tf).validate_config(tf)  # the paradigm's validation runs the check
    ode = compose_run("experiment=ode_init", "world=wan")
    assert not paradigm_class(ode).uses_world_data  # ODE pairs: the world's data is not read
