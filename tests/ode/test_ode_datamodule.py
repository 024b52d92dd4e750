"""The ODE-pairs data module: batches, grid check, clear errors, ranks, epochs, resume."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from ode_testing import LATENT, NUM_PAIRS

from datamodules.ode_pairs import ODEPairsDataModule
from forcing.diffusion import euler_timesteps, few_step_timesteps
from forcing.errors import ConfigError
from forcing.ode_pairs import GridMismatchError, write_shards


def _dm(folder, **kwargs) -> ODEPairsDataModule:
    options = {"batch_size": 2, "val_size": 2, "seed": 0}
    options.update(kwargs)
    return ODEPairsDataModule(folder, **options)


def test_batches(pairs, pairs_dir):
    dm = _dm(pairs_dir, target_is_video=True)
    assert dm.latent_shape == list(LATENT)
    batch = next(iter(dm.train_dataloader()))
    assert batch["states"].shape == (2, 4, *LATENT) and batch["target"].shape == (2, *LATENT)
    assert torch.equal(batch["grid_t"], few_step_timesteps())
    assert batch["seed"].dtype == torch.int64 and isinstance(batch["prompt"], list)
    assert torch.equal(batch["video"], batch["target"].clamp(-1, 1))
    for b, seed in enumerate(batch["seed"].tolist()):
        n = pairs["seeds"].tolist().index(seed)
        assert (
            torch.equal(batch["states"][b], pairs["states"][n]) and batch["prompt"][b] == pairs["prompts"][n]
        )
    val = torch.cat([b["seed"] for b in dm.val_dataloader()]).tolist()
    assert val == sorted(pairs["seeds"].tolist())[:2]


def test_val_fraction_and_deterministic_epochs(pairs_dir):
    assert _dm(pairs_dir, val_size=None, val_fraction=0.5).val_size == NUM_PAIRS // 2
    a, b = _dm(pairs_dir).train_sampler(0, 1), _dm(pairs_dir).train_sampler(0, 1)
    assert list(a) == list(b) and sorted(a) == list(range(NUM_PAIRS - 2))
    assert list(_dm(pairs_dir, shuffle=False).train_sampler(0, 1)) == list(range(NUM_PAIRS - 2))


def test_ranks_take_disjoint_slices(pairs_dir):
    dm = _dm(pairs_dir, batch_size=1)
    for epoch in range(2):
        parts = []
        for rank in range(2):
            sampler = dm.train_sampler(rank, 2)
            sampler.set_epoch(epoch)
            parts.append(list(sampler))
        assert len(parts[0]) == len(parts[1]) == 2 and set(parts[0]).isdisjoint(parts[1])
        single = dm.train_sampler(0, 1)
        single.set_epoch(epoch)
        merged = [x for pair in zip(*parts) for x in pair]
        assert merged == list(single)  # global batch = the ranks' batches in rank order
    with pytest.raises(ConfigError, match="no full batch"):
        _dm(pairs_dir, batch_size=4).train_sampler(0, 2)


def test_mid_epoch_resume_skips_trained_batches(pairs_dir):
    dm = _dm(pairs_dir, batch_size=1)
    full = torch.cat([b["seed"] for b in dm.train_dataloader()]).tolist()
    dm.load_state_dict({"batches_in_epoch": 3})
    resumed = torch.cat([b["seed"] for b in dm.train_dataloader()]).tolist()
    assert resumed == full[3:]
    assert torch.cat([b["seed"] for b in dm.train_dataloader()]).tolist() == full  # only once


def test_missing_or_empty_folder_names_the_command(tmp_path):
    for folder in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(ConfigError, match="python -m lightning_modules.ode_pairs"):
            _dm(folder)


def test_shift_8_grid_is_rejected(pairs, tmp_path):
    bad = {**pairs, "grid_t": euler_timesteps(48, 8.0)[[0, 12, 24, 36]]}
    bad["config"] = {**pairs["config"], "shift": 8.0, "grid_t": bad["grid_t"].tolist()}
    write_shards(bad, tmp_path, shard_size=8)
    with pytest.raises(GridMismatchError, match="student's grid"):
        _dm(tmp_path)
    # a manifest edited to the right grid does not hide shards stored off the grid
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["grid_t"] = few_step_timesteps().tolist()
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(GridMismatchError, match="first shard"):
        _dm(tmp_path)


def test_missing_shard_is_a_clear_error(pairs_dir, tmp_path):
    copy = shutil.copytree(pairs_dir, tmp_path / "copy")
    (copy / "shard-00001.safetensors").unlink()
    with pytest.raises(ConfigError, match="shard-00001.safetensors"):
        _dm(copy)
