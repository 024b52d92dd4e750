"""The shapes-world data module: batches, seed streams, ranks, workers and epochs."""

from types import SimpleNamespace

import lightning as L
import pytest
import torch

from datamodules.shapes import (
    TRAIN_SEED_BASE,
    SeedStreamSampler,
    ShapesDataModule,
    _rank_and_world,
    train_seed,
)
from forcing.world import ClipSpec, prompt_for, render


def _dm(**kwargs) -> ShapesDataModule:
    options = {"batch_size": 4, "train_size": 16, "val_size": 8}
    options.update(kwargs)
    return ShapesDataModule(**options)


def test_batch_shapes_dtypes_ranges_and_contents():
    dm = _dm(num_frames=6, height=24, width=40)
    dm.prepare_data()
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"video", "prompt", "seed"}
    video, prompts, seeds = batch["video"], batch["prompt"], batch["seed"]
    assert video.shape == (4, 3, 6, 24, 40) and video.dtype == torch.float32
    assert video.min() >= -1 and video.max() <= 1
    assert isinstance(prompts, list) and len(prompts) == 4 and all(isinstance(p, str) for p in prompts)
    assert seeds.dtype == torch.int64 and seeds.shape == (4,)
    for b, seed in enumerate(seeds.tolist()):
        spec = ClipSpec.sample(seed, max_shapes=3)
        assert prompts[b] == prompt_for(spec) == dm.prompt(seed)
        assert torch.equal(video[b], render(spec, 6, 24, 40))
        assert torch.equal(video[b], dm.ground_truth(seed, 6))


def test_train_epoch_length_and_val_batches():
    dm = _dm()
    train = list(dm.train_dataloader())
    assert len(train) == 4 and sum(len(b["seed"]) for b in train) == 16
    val = list(dm.val_dataloader())
    assert torch.cat([b["seed"] for b in val]).tolist() == list(range(8)) == dm.val_seeds()


def test_val_seeds_are_fixed_and_disjoint_from_train_seeds():
    seeds_a = [b["seed"] for b in _dm(seed=0).val_dataloader()]
    seeds_b = [b["seed"] for b in _dm(seed=5).val_dataloader()]
    videos_a = [b["video"] for b in _dm(seed=0).val_dataloader()]
    videos_b = [b["video"] for b in _dm(seed=5).val_dataloader()]
    assert all(torch.equal(a, b) for a, b in zip(seeds_a, seeds_b))
    assert all(torch.equal(a, b) for a, b in zip(videos_a, videos_b))
    val = set(torch.cat(seeds_a).tolist())
    for base in (0, 5):
        sampler = _dm(seed=base).train_sampler(rank=0, world_size=1)
        for epoch in range(3):
            sampler.set_epoch(epoch)
            assert val.isdisjoint(sampler)
    assert min(train_seed(0, 0), train_seed(5, 0)) >= TRAIN_SEED_BASE > max(val)


def test_different_ranks_workers_and_epochs_get_different_seeds():
    dm = _dm(train_size=32)
    seen = []
    for epoch in range(2):
        for rank in range(4):
            sampler = dm.train_sampler(rank=rank, world_size=4)
            sampler.set_epoch(epoch)
            seeds = list(sampler)
            assert len(seeds) == len(sampler) == 8
            seen.extend(seeds)
    assert len(seen) == len(set(seen)) == 64
    # the same rank and epoch gives the same seeds again
    again = dm.train_sampler(rank=2, world_size=4)
    again.set_epoch(1)
    assert list(again) == seen[8 * 6 : 8 * 7]
    # different base seeds give different streams
    assert set(_dm(seed=1).train_sampler(0, 1)).isdisjoint(_dm(seed=0).train_sampler(0, 1))


def test_workers_split_the_rank_seeds():
    dm = _dm(train_size=12, num_workers=2, batch_size=2)
    seeds = torch.cat([b["seed"] for b in dm.train_dataloader()]).tolist()
    assert sorted(seeds) == sorted(dm.train_sampler(0, 1)) and len(set(seeds)) == 12


def test_rank_comes_from_the_trainer_strategy():
    assert _rank_and_world(None) == (0, 1)
    trainer = SimpleNamespace(
        distributed_sampler_kwargs={"rank": 3, "num_replicas": 8}, global_rank=3, world_size=8
    )
    assert _rank_and_world(trainer) == (3, 8)
    trainer = SimpleNamespace(distributed_sampler_kwargs=None, global_rank=1, world_size=2)
    assert _rank_and_world(trainer) == (1, 2)
    assert isinstance(_dm().train_sampler(), SeedStreamSampler)


class _Recorder(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seeds: list[list[int]] = []

    def on_train_epoch_start(self):
        self.seeds.append([])

    def training_step(self, batch, batch_idx):
        self.seeds[-1].extend(batch["seed"].tolist())
        return (self.weight * batch["video"].mean()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_lightning_sets_the_epoch_of_the_stream(tmp_path):
    dm, model = _dm(train_size=8), _Recorder()
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    first, second = model.seeds
    assert len(first) == len(second) == 8 and set(first).isdisjoint(second)


def test_long_horizon_ground_truth_and_windows():
    dm = _dm(num_frames=12)
    seed = dm.val_seeds()[3]
    long = dm.ground_truth(seed, 240)
    assert long.shape == (3, 240, 32, 32)
    batch = next(iter(dm.val_dataloader()))
    assert torch.equal(long[:, :12], batch["video"][3])
    assert torch.equal(dm.ground_truth(seed, 12, start_frame=200), long[:, 200:212])


def test_invalid_arguments():
    with pytest.raises(ValueError, match="seed"):
        ShapesDataModule(seed=-1)
    with pytest.raises(ValueError, match="ranks"):
        _dm(train_size=3).train_sampler(rank=0, world_size=4)
