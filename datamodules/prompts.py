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

from torch.utils.data import Dataset

from datamodules.held_out import HeldOutListModule
from datamodules.sampling import Subset
from forcing.data.prompts import read_prompts


class PromptList(Dataset):
    """`dataset[i] -> {"prompt": prompts[i], "seed": i}`."""

    def __init__(self, prompts: list[str]) -> None:
        self.prompts = prompts

    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"prompt": self.prompts[index], "seed": int(index)}


class PromptDataModule(HeldOutListModule):
    """Prompts of a text file (`HeldOutListModule`: held-out tail, per-rank epochs, resumable)."""

    what = "prompts"

    def __init__(self, path: str | Path, **loading: Any) -> None:
        self.path = Path(path)
        self.prompts = PromptList(read_prompts(self.path))
        super().__init__(self.prompts, f"prompt file {self.path}", **loading)

    @property
    def train_prompts(self) -> Subset:
        """The training prompts: every prompt but the held-out tail."""
        return self.train_items
