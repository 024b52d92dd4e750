"""Latent shards of real videos as a data module (`python -m forcing.data.encode_videos`): the clips of
Teacher / Diffusion Forcing at Wan scale, already encoded by the Wan VAE.

Clips are read lazily from the shards and put in the order of their position in the encoded folder's
clip list. The last `val_size` clips are held out for validation, in order; the others are dealt to the
ranks in an order drawn per epoch from (`seed`, epoch) (`datamodules.sampling.EpochSampler`), resumable
mid-epoch (`ResumableEpoch`).

Batches: {"latents": [B, C, F, H, W] in the stored dtype (bf16 by default), "prompt": list[str],
"seed": int64 [B] (the clip's position)}. The modules take "latents" as the clean clip and skip their
codec (`ForcingModule.clean_latents`).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from datamodules.resumable import ResumableEpoch
from datamodules.sampling import EpochSampler, Subset, check_held_out_split
from datamodules.shard_rows import ShardRows
from forcing.data.latents import read_latent_manifest


class LatentDataModule(ResumableEpoch, L.LightningDataModule):
    """Clips of a latents folder; `ranks` (data-parallel processes) is checked against the training clips
    when the module is built: each rank needs a full batch."""

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
        self.manifest = read_latent_manifest(self.path)
        files = [entry["file"] for entry in self.manifest["shards"]]
        self.clips = ShardRows(self.path, files, "index", ["latents"], "latent clips")
        check_held_out_split(len(self.clips), val_size, ranks, batch_size, "clips", f"latents folder {self.path}")
        self.val_size = val_size
        self.set_loading(batch_size, val_batch_size, num_workers, seed)

    @property
    def latent_shape(self) -> list[int]:
        """[C, F, H, W] of the stored latents."""
        return [int(s) for s in self.manifest["config"]["latent_shape"]]

    def train_sampler(self, rank: int | None = None, world_size: int | None = None) -> EpochSampler:
        """The training sampler of a rank (default: this process's rank and world size)."""
        rank, world_size = self.data_rank(rank, world_size)
        train = Subset(self.clips, 0, len(self.clips) - self.val_size)
        return EpochSampler(train, self.seed, rank, world_size, self.batch_size, what="training clips")

    def train_dataloader(self) -> DataLoader:
        """Training clips, disjoint per rank, reshuffled every epoch."""
        return self.resumed_loader(self.train_sampler())

    def val_dataloader(self) -> DataLoader:
        """The held-out last clips, in order."""
        n = len(self.clips)
        return self.make_loader(Subset(self.clips, n - self.val_size, n), self.val_batch_size)
