"""A finite list of items as a data module: the last `val_size` are held out for validation, in order;
the others are dealt to the ranks in an order drawn per epoch from (`seed`, epoch)
(`datamodules.sampling.EpochSampler`), resumable mid-epoch (`ResumableEpoch`). The prompt-list and
latent-shard data modules are this over their own items."""

from __future__ import annotations

from typing import ClassVar

import lightning as L
from torch.utils.data import DataLoader, Dataset

from datamodules.resumable import ResumableEpoch
from datamodules.sampling import EpochSampler, Subset, check_held_out_split


class HeldOutListModule(ResumableEpoch, L.LightningDataModule):
    """`items` (from `where`, for messages) with a held-out tail; `ranks` (data-parallel processes) is
    checked against the training items when the module is built: each rank needs a full batch."""

    #: what an item is, plural ("prompts", "clips"), for messages
    what: ClassVar[str] = "items"

    def __init__(
        self,
        items: Dataset,
        where: str,
        batch_size: int = 1,
        val_size: int = 0,
        num_workers: int = 0,
        seed: int = 0,
        val_batch_size: int | None = None,
        ranks: int = 1,
    ) -> None:
        super().__init__()
        check_held_out_split(len(items), val_size, ranks, batch_size, self.what, where)
        self.items = items
        self.val_size = val_size
        self.set_loading(batch_size, val_batch_size, num_workers, seed)

    @property
    def train_items(self) -> Subset:
        """Every item but the held-out tail."""
        return Subset(self.items, 0, len(self.items) - self.val_size)

    def train_sampler(self, rank: int | None = None, world_size: int | None = None) -> EpochSampler:
        """The training sampler of a rank (default: this process's rank and world size)."""
        rank, world_size = self.data_rank(rank, world_size)
        return EpochSampler(self.train_items, self.seed, rank, world_size, self.batch_size, what=f"training {self.what}")

    def train_dataloader(self) -> DataLoader:
        """Training items, disjoint per rank, reshuffled every epoch."""
        return self.resumed_loader(self.train_sampler())

    def val_dataloader(self) -> DataLoader:
        """The held-out tail, in order (empty when `val_size` is 0)."""
        n = len(self.items)
        return self.make_loader(Subset(self.items, n - self.val_size, n), self.val_batch_size)
