"""The training order shared by the data modules over a finite list (ODE pairs, prompts, latent shards).

Positions of a dataset of `size` items are drawn in an order fixed by (`seed`, epoch), the same on every
rank; global batch k is the ranks' batches in rank order (rank r of W takes positions
`(k * W + r) * batch + i`), so ranks see disjoint items and a W-rank run sees what one process with W
times the batch sees. Mid-epoch resume skips the items already trained on (`ResumableEpoch`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, DistributedSampler

from forcing.errors import ConfigError


class Subset(Dataset):
    """Positions `[start, stop)` of a dataset."""

    def __init__(self, data: Dataset, start: int, stop: int) -> None:
        self.data, self.start, self.stop = data, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: int) -> Any:
        return self.data[self.start + index]


class EpochSampler(DistributedSampler):
    """Training positions of one rank for the current epoch (an already-distributed sampler).

    A `DistributedSampler` so that Lightning uses it as is and calls `set_epoch` every epoch.
    `what` names the items in the error raised when a rank would get no full batch.
    """

    def __init__(
        self, dataset: Dataset, base_seed: int, rank: int = 0, world_size: int = 1, batch_size: int = 1,
        shuffle: bool = True, what: str = "training items",
    ) -> None:  # fmt: skip
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, drop_last=True)
        self.base_seed = base_seed
        self.batch_size = batch_size
        self.size = len(dataset)
        self.per_rank = self.size // (world_size * batch_size) * batch_size
        if self.per_rank == 0:
            raise ConfigError(
                f"{self.size} {what} give no full batch of {batch_size} to each of {world_size} ranks"
            )
        self.skip = 0  # items of the current epoch already trained on (mid-epoch resume)

    def order(self) -> list[int]:
        """All training positions in this epoch's order (the same on every rank)."""
        if not self.shuffle:
            return list(range(self.size))
        gen = torch.Generator().manual_seed(hash((int(self.base_seed), int(self.epoch))) % (2**62))
        return torch.randperm(self.size, generator=gen).tolist()

    def __iter__(self) -> Iterator[int]:
        order = self.order()
        skip, self.skip = self.skip, 0  # only the resumed epoch starts late
        for j in range(skip, self.per_rank):
            k, i = divmod(j, self.batch_size)
            yield order[(k * self.num_replicas + self.rank) * self.batch_size + i]

    def __len__(self) -> int:
        return self.per_rank


def check_held_out_split(n: int, val_size: int, ranks: int, batch_size: int, what: str, where: str) -> None:
    """A list of `n` `what` (e.g. "prompts") in `where` whose last `val_size` are held out must leave
    training items, a full batch for each of `ranks` ranks; a one-line `ConfigError` otherwise."""
    if not 0 <= val_size < n:
        raise ConfigError(f"world.val_size={val_size} leaves no training {what[:-1]} of the {n} in {where}")
    if n - val_size < ranks * batch_size:
        raise ConfigError(
            f"{where} has {n - val_size} training {what} ({n} - world.val_size={val_size}), "
            f"fewer than {ranks} ranks x batch {batch_size}"
        )
