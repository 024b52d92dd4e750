"""ODE-initialisation pairs as a data module (shards written by `forcing.ode_pairs`).

Pairs are read lazily from the safetensors shards (memory-mapped, one pair at a time) and put in
order of their clip seed, so the shard layout never matters. Validation: the `val_size` pairs with
the smallest seeds, in order. Training: the rest, in an order drawn per epoch from (`seed`, epoch);
global batch k is the ranks' batches in rank order (rank r of W takes positions
`(k * W + r) * batch + i`), so ranks see disjoint pairs and a W-rank run sees what one process with
W times the batch sees. Mid-epoch resume skips the batches already trained on, like
datamodules/shapes.py.

Batches: {"states": [B, K, C, F, H, W], "target": [B, C, F, H, W], "grid_t": [K],
"prompt": list[str], "seed": int64 [B]} (+ "context" when the pairs store a clean context, and
"video" = the target clamped to [-1, 1] when `target_is_video`: pixels of an identity codec).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors import safe_open
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from datamodules.resumable import ResumableEpoch
from datamodules.shapes import _rank_and_world
from forcing.errors import ConfigError
from forcing.ode_pairs import check_student_grid, read_manifest


class ODEPairs(Dataset):
    """Pairs of a folder in clip-seed order: `dataset[i]` -> one pair (tensors without batch axis)."""

    def __init__(self, folder: str | Path, manifest: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.files = [entry["file"] for entry in manifest["shards"]]
        rows: list[tuple[int, int, int, str]] = []  # (seed, shard, row, prompt)
        for shard, name in enumerate(self.files):
            path = self.folder / name
            if not path.is_file():
                raise ConfigError(f"ODE pairs shard {path} listed in manifest.json is missing")
            with safe_open(str(path), framework="pt") as f:
                seeds = f.get_tensor("seeds").tolist()
                prompts = json.loads(f.metadata()["prompts"])
                if shard == 0:
                    self.grid_t = f.get_tensor("grid_t").float()
                    self.keys = [k for k in ("states", "target", "context") if k in f.keys()]  # noqa: SIM118
            rows.extend((int(s), shard, r, p) for r, (s, p) in enumerate(zip(seeds, prompts)))
        rows.sort(key=lambda row: row[0])
        if len({row[0] for row in rows}) != len(rows):
            raise ConfigError(f"ODE pairs in {self.folder} repeat clip seeds")
        self.rows = rows
        self._handles: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": {}}  # open files do not travel to workers

    def _handle(self, shard: int) -> Any:
        if shard not in self._handles:
            self._handles[shard] = safe_open(str(self.folder / self.files[shard]), framework="pt")
        return self._handles[shard]

    def __getitem__(self, index: int) -> dict[str, Any]:
        seed, shard, row, prompt = self.rows[index]
        f = self._handle(shard)
        item: dict[str, Any] = {k: f.get_slice(k)[row] for k in self.keys}
        return {**item, "prompt": prompt, "seed": seed}

    @property
    def seeds(self) -> list[int]:
        """Clip seeds in dataset order."""
        return [row[0] for row in self.rows]


class Subset(Dataset):
    """Positions `[start, stop)` of an `ODEPairs`."""

    def __init__(self, pairs: ODEPairs, start: int, stop: int) -> None:
        self.pairs, self.start, self.stop = pairs, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.pairs[self.start + index]


class PairSampler(DistributedSampler):
    """Training positions of one rank for the current epoch (an already-distributed sampler).

    A `DistributedSampler` so that Lightning uses it as is and calls `set_epoch` every epoch.
    """

    def __init__(
        self, dataset: Subset, base_seed: int, rank: int = 0, world_size: int = 1, batch_size: int = 1,
        shuffle: bool = True,
    ) -> None:  # fmt: skip
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, drop_last=True)
        self.base_seed = base_seed
        self.batch_size = batch_size
        self.size = len(dataset)
        self.per_rank = self.size // (world_size * batch_size) * batch_size
        if self.per_rank == 0:
            raise ConfigError(
                f"{self.size} training pairs give no full batch of {batch_size} to each of {world_size} ranks"
            )
        self.skip = 0  # pairs of the current epoch already trained on (mid-epoch resume)

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


def collate(items: list[dict[str, Any]], grid_t: Tensor, target_is_video: bool = False) -> dict[str, Any]:
    """Stack pairs into a batch; `grid_t` [K] is shared by the batch."""
    batch: dict[str, Any] = {
        k: torch.stack([it[k] for it in items]) for k in items[0] if k not in ("prompt", "seed")
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

    def train_sampler(self, rank: int | None = None, world_size: int | None = None) -> PairSampler:
        """The training sampler of a rank (default: this process's rank and world size)."""
        default_rank, default_world = _rank_and_world(self.trainer)
        rank = default_rank if rank is None else rank
        world_size = default_world if world_size is None else world_size
        train = Subset(self.pairs, self.val_size, len(self.pairs))
        return PairSampler(train, self.seed, rank, world_size, self.batch_size, self.shuffle)

    def train_dataloader(self) -> DataLoader:
        """Training pairs, disjoint per rank, in a per-epoch order."""
        sampler = self.train_sampler()
        sampler.skip = self.take_resume_batches() * self.batch_size
        return self._loader(sampler.dataset, self.batch_size, sampler)

    def val_dataloader(self) -> DataLoader:
        """The validation pairs (smallest clip seeds), in seed order."""
        return self._loader(Subset(self.pairs, 0, self.val_size), self.val_batch_size)

