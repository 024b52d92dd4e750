"""ODE-initialisation pairs as a data module (shards written by `forcing.ode_pairs`).

Pairs are read lazily from the safetensors shards (memory-mapped, one pair at a time) and put in
order of their clip seed, so the shard layout never matters. Validation: the `val_size` pairs with
the smallest seeds, in order. Training: the rest, in an order drawn per epoch from (`seed`, epoch);
global batch k is the ranks' batches in rank order (`datamodules.sampling.EpochSampler`), so ranks
see disjoint pairs and a W-rank run sees what one process with W times the batch sees. Mid-epoch
resume skips the batches already trained on, like datamodules/shapes.py.

Batches, float32 whatever the shards store (bf16 pairs: `--dtype bfloat16` of the command):
{"states": [B, K, C, F, H, W], "target": [B, C, F, H, W], "grid_t": [K],
"prompt": list[str], "seed": int64 [B]} (+ "context" when the pairs store a clean context, and
"video" = the target clamped to [-1, 1] when `target_is_video`: pixels of an identity codec).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors import safe_open
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from datamodules.resumable import ResumableEpoch
from datamodules.sampling import EpochSampler, Subset
from datamodules.shard_rows import ShardRows
from forcing.errors import ConfigError
from forcing.ode_pairs import check_student_grid, read_manifest


class ODEPairs(ShardRows):
    """Pairs of a folder in clip-seed order: `dataset[i]` -> one pair (tensors without batch axis)."""

    def __init__(self, folder: str | Path, manifest: dict[str, Any]) -> None:
        files = [entry["file"] for entry in manifest["shards"]]
        first = Path(folder) / files[0]
        if first.is_file():
            with safe_open(str(first), framework="pt") as f:
                self.grid_t = f.get_tensor("grid_t").float()
                keys = [k for k in ("states", "target", "context") if k in f.keys()]  # noqa: SIM118
        else:
            keys = []  # ShardRows names the missing shard
        super().__init__(folder, files, "seeds", keys, "ODE pairs")
        self.keys = keys


def collate(items: list[dict[str, Any]], grid_t: Tensor, target_is_video: bool = False) -> dict[str, Any]:
    """Stack pairs into a batch in float32 (whatever the storage dtype); `grid_t` [K] is shared by the batch."""
    batch: dict[str, Any] = {
        k: torch.stack([it[k] for it in items]).float() for k in items[0] if k not in ("prompt", "seed")
    }
    batch["grid_t"] = grid_t.clone()
    batch["prompt"] = [it["prompt"] for it in items]
    batch["seed"] = torch.tensor([it["seed"] for it in items], dtype=torch.int64)
    if target_is_video:
        batch["video"] = batch["target"].clamp(-1, 1)
    return batch


class _Collate:
    """Picklable collate function (DataLoader workers)."""

    def __init__(self, grid_t: Tensor, target_is_video: bool) -> None:
        self.grid_t, self.target_is_video = grid_t, target_is_video

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return collate(items, self.grid_t, self.target_is_video)


class ODEPairsDataModule(ResumableEpoch, L.LightningDataModule):
    """ODE-initialisation pairs of a folder made by `python -m lightning_modules.ode_pairs`."""

    def __init__(
        self,
        path: str | Path,
        batch_size: int = 4,
        val_size: int | None = None,
        val_fraction: float | None = None,
        num_workers: int = 0,
        seed: int = 0,
        val_batch_size: int | None = None,
        shuffle: bool = True,
        student_grid: Tensor | None = None,
        target_is_video: bool = False,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        where = f"ODE pairs {self.path} ({self.path / 'manifest.json'}): "
        check_student_grid(self.manifest.get("grid_t", []), student_grid, where=where)
        self.pairs = ODEPairs(self.path, self.manifest)
        check_student_grid(self.pairs.grid_t, student_grid, where=where.replace("manifest", "first shard"))
        n = len(self.pairs)
        if val_size is None:
            val_size = int(round(n * float(val_fraction or 0.0)))
        if not 0 <= val_size < n:
            raise ConfigError(f"val_size={val_size} leaves no training pair out of {n} in {self.path}")
        self.val_size = val_size
        self.set_loading(batch_size, val_batch_size, num_workers, seed)
        self.shuffle = shuffle
        self.target_is_video = target_is_video

    @property
    def latent_shape(self) -> list[int]:
        """[C, F, H, W] of the stored latents."""
        return [int(s) for s in self.pairs[0]["target"].shape]

    def _loader(self, dataset: Dataset, batch_size: int, sampler: Any = None) -> DataLoader:
        return self.make_loader(dataset, batch_size, sampler, _Collate(self.pairs.grid_t, self.target_is_video))

    def train_sampler(self, rank: int | None = None, world_size: int | None = None) -> EpochSampler:
        """The training sampler of a rank (default: this process's rank and world size)."""
        rank, world_size = self.data_rank(rank, world_size)
        train = Subset(self.pairs, self.val_size, len(self.pairs))
        return EpochSampler(train, self.seed, rank, world_size, self.batch_size, self.shuffle, "training pairs")

    def train_dataloader(self) -> DataLoader:
        """Training pairs, disjoint per rank, in a per-epoch order."""
        return self.resumed_loader(self.train_sampler(), _Collate(self.pairs.grid_t, self.target_is_video))

    def val_dataloader(self) -> DataLoader:
        """The validation pairs (smallest clip seeds), in seed order."""
        return self._loader(Subset(self.pairs, 0, self.val_size), self.val_batch_size)

