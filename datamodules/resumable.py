"""Mid-epoch resume for data modules whose loaders can skip the batches already trained on."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset


def rank_and_world(trainer: Any) -> tuple[int, int]:
    """Data-parallel rank and size of this process: the trainer's strategy (its data-parallel
    rank and size, equal to the global rank and world size under DDP and FSDP), else
    torch.distributed, else (0, 1)."""
    if trainer is not None:
        kwargs = getattr(trainer, "distributed_sampler_kwargs", None)
        if kwargs:
            return int(kwargs["rank"]), int(kwargs["num_replicas"])
        return int(trainer.global_rank), int(trainer.world_size)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ResumableEpoch:
    """Mixin for a LightningDataModule: checkpoints record how many batches of the current epoch
    were trained on; after `load_state_dict` the next training loader skips them
    (`take_resume_batches()` returns the count once, then 0)."""

    _resume_batches: int = 0
    num_workers: int = 0

    def state_dict(self) -> dict[str, int]:
        """Saved in checkpoints: how many batches of the current epoch were trained on."""
        trainer = self.trainer
        if trainer is None:
            return {"batches_in_epoch": 0}
        return {"batches_in_epoch": int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume mid-epoch: the next training loader skips the batches already trained on."""
        self._resume_batches = int(state.get("batches_in_epoch", 0))

    def set_loading(self, batch_size: int, val_batch_size: int | None, num_workers: int, seed: int) -> None:
        """The loader settings every data module has (validation batch defaults to the training one)."""
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed

    def data_rank(self, rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
        """(rank, world size) of a training sampler: the given ones, else this process's."""
        default_rank, default_world = rank_and_world(getattr(self, "trainer", None))
        return (default_rank if rank is None else rank), (default_world if world_size is None else world_size)

    def take_resume_batches(self) -> int:
        """Batches to skip in the next training loader (consumed by the call)."""
        batches, self._resume_batches = self._resume_batches, 0
        return batches

    def make_loader(self, dataset: Dataset, batch_size: int, sampler: Any = None, collate_fn: Any = None) -> DataLoader:
        """A loader in the sampler's order (training: drop the last partial batch)."""
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=sampler is not None,
            collate_fn=collate_fn,
        )

    def resumed_loader(self, sampler: Any, collate_fn: Any = None) -> DataLoader:
        """The training loader of a sampler with a `skip` (items of its epoch to pass over): after
        `load_state_dict` it starts at the batch a checkpoint stopped at, once."""
        sampler.skip = self.take_resume_batches() * self.batch_size
        return self.make_loader(sampler.dataset, self.batch_size, sampler, collate_fn)
