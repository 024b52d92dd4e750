"""A prompt list as a data module: text-only training (Self Forcing with DMD needs no video).

The file `world.prompts` holds one prompt per line (blank lines are skipped; a prompt's id is its
position among the kept lines). The last `val_size` prompts are held out for validation, in order;
the others are the training prompts, in an order drawn per epoch from (`seed`, epoch) and dealt to
the ranks batch by batch (`datamodules.sampling.EpochSampler`: every rank different prompts, a W-rank
run sees what one process with W times the batch sees), resumable mid-epoch (`ResumableEpoch`).

Batches: {"prompt": list[str], "seed": int64 [B]} (the seed is the prompt's id: the per-clip
randomness of the modules is keyed by it). There is no "video": a paradigm that needs clips of
real data takes `world.data=latents` (checked when the run is validated, `datamodules.check_world_data`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from datamodules.resumable import ResumableEpoch
from datamodules.sampling import EpochSampler, Subset, check_held_out_split
from forcing.data.prompts import read_prompts


class PromptList(Dataset):
    """`dataset[i] -> {"prompt": prompts[i], "seed": i}`."""

    def __init__(self, prompts: list[str]) -> None:
        self.prompts = prompts

    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"prompt": self.prompts[index], "seed": int(index)}


class PromptDataModule(ResumableEpoch, L.LightningDataModule):
    """Prompts of a text file; `ranks` (data-parallel processes) is checked against the training prompts
    when the module is built, before any training: each rank needs a full batch."""

    def __init__(
        self,
        path: str | Path,
        batch_size: int = 1,
        val_size: int = 0,
        num_workers: int = 0,
        seed: int = 0,
        val_batch_size: int | None = None,
        ranks: int = 1,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.prompts = PromptList(read_prompts(self.path))
        check_held_out_split(len(self.prompts), val_size, ranks, batch_size, "prompts", f"prompt file {self.path}")
        self.val_size = val_size
        self.set_loading(batch_size, val_batch_size, num_workers, seed)

    @property
    def train_prompts(self) -> Subset:
        """The training prompts: every prompt but the held-out tail."""
        return Subset(self.prompts, 0, len(self.prompts) - self.val_size)

    def train_sampler(self, rank: int | None = None, world_size: int | None = None) -> EpochSampler:
        """The training sampler of a rank (default: this process's rank and world size)."""
        rank, world_size = self.data_rank(rank, world_size)
        return EpochSampler(self.train_prompts, self.seed, rank, world_size, self.batch_size, what="training prompts")

    def train_dataloader(self) -> DataLoader:
        """Training prompts, disjoint per rank, reshuffled every epoch."""
        return self.resumed_loader(self.train_sampler())

    def val_dataloader(self) -> DataLoader:
        """The held-out tail of the list, in order (empty when `val_size` is 0)."""
        n = len(self.prompts)
        return self.make_loader(Subset(self.prompts, n - self.val_size, n), self.val_batch_size)
