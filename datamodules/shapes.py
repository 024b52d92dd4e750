"""The shapes-world data module: procedural clips with prompts from deterministic seed streams.

Seeds. Validation clip i has seed i (i < val_size), the same for every run. Training clips come
from an infinite stream: stream index n has seed `train_seed(seed, n) >= TRAIN_SEED_BASE`, so
training and validation seeds never meet. Epoch e, global rank r of w ranks, takes stream indices
`e * train_size + j * w + r` (j < train_size // w): every rank and every epoch sees distinct clips,
and DataLoader workers split a rank's indices among themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import lightning as L
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from datamodules.resumable import ResumableEpoch
from datamodules.resumable import rank_and_world as _rank_and_world
from forcing.world import ClipSpec, prompt_for, render

#: Training seeds start here; validation seeds are [0, val_size) and val_size must stay below.
TRAIN_SEED_BASE = 2**32
#: Distance between the training streams of two base seeds (stream length before overlap).
STREAM_STRIDE = 2**40
#: Base seeds must be in [0, MAX_BASE_SEED) so that clip seeds fit an int64.
MAX_BASE_SEED = 2**22


def train_seed(base_seed: int, index: int) -> int:
    """Clip seed of training stream index `index` for the run seed `base_seed`."""
    if not 0 <= base_seed < MAX_BASE_SEED:
        raise ValueError(f"seed must be in [0, {MAX_BASE_SEED}), got {base_seed}")
    if not 0 <= index < STREAM_STRIDE:
        raise ValueError(f"stream index must be in [0, {STREAM_STRIDE}), got {index}")
    return TRAIN_SEED_BASE + base_seed * STREAM_STRIDE + index


@dataclass
class ShapesClips(Dataset):
    """Clips keyed by their seed: `dataset[seed] -> {"video": [3, F, H, W], "prompt": str, "seed": int}`.

    `len()` is the number of clips of an epoch; with the default sampler the keys are 0..len-1
    (the validation seeds); training keys come from `SeedStreamSampler`.
    """

    length: int
    num_frames: int
    height: int
    width: int
    max_shapes: int
    min_shapes: int = 1

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, seed: int) -> dict[str, Any]:
        spec = ClipSpec.sample(int(seed), max_shapes=self.max_shapes, min_shapes=self.min_shapes)
        video = render(spec, self.num_frames, self.height, self.width)
        return {"video": video, "prompt": prompt_for(spec), "seed": int(seed)}


class SeedStreamSampler(DistributedSampler):
    """Training clip seeds of one rank for the current epoch (an already-distributed sampler).

    It subclasses `DistributedSampler` so that Lightning uses it as is (no second sharding) and
    calls `set_epoch` every epoch; it yields clip seeds, not dataset positions.
    """

    def __init__(
        self, dataset: ShapesClips, base_seed: int, rank: int = 0, world_size: int = 1, batch_size: int = 1
    ) -> None:
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=False, drop_last=True)
        self.base_seed = base_seed
        self.batch_size = batch_size
        self.epoch_length = len(dataset)
        self.per_rank = self.epoch_length // world_size
        if self.per_rank == 0:
            raise ValueError(f"train_size={self.epoch_length} gives no clip to each of {world_size} ranks")
        self.skip = 0  # clips of the current epoch already trained on (mid-epoch resume)

    def __iter__(self) -> Iterator[int]:
        # Global batch k is the ranks' batches in rank order: rank r's j-th clip is stream index
        # (k * world + r) * batch + i with j = k * batch + i. A W-rank run sees the data of a
        # single process with W times the batch, and rank 0 sees exactly the single process's.
        start = self.epoch * self.epoch_length
        skip, self.skip = self.skip, 0  # only the resumed epoch starts late
        for j in range(skip, self.per_rank):
            k, i = divmod(j, self.batch_size)
            yield train_seed(self.base_seed, start + (k * self.num_replicas + self.rank) * self.batch_size + i)

    def __len__(self) -> int:
        return self.per_rank


class ShapesDataModule(ResumableEpoch, L.LightningDataModule):
    """Shapes-world clips and prompts; nothing is downloaded.

    Batches: {"video": [B, 3, F, H, W] float32 in [-1, 1], "prompt": list[str], "seed": int64 [B]}.
    `train_size` is the virtual epoch length (over all ranks), `val_size` the number of fixed
    validation clips (seeds 0..val_size-1, independent of `seed`).
    """

    def __init__(
        self,
        num_frames: int = 12,
        height: int = 32,
        width: int = 32,
        batch_size: int = 16,
        max_shapes: int = 3,
        min_shapes: int = 1,
        seed: int = 0,
        train_size: int = 10_000,
        val_size: int = 64,
        num_workers: int = 0,
        val_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        if not 0 < val_size <= TRAIN_SEED_BASE:
            raise ValueError(f"val_size must be in (0, {TRAIN_SEED_BASE}], got {val_size}")
        train_seed(seed, 0)  # validates the base seed
        self.num_frames, self.height, self.width = num_frames, height, width
        self.max_shapes, self.min_shapes = max_shapes, min_shapes
        self.train_size, self.val_size = train_size, val_size
        self.set_loading(batch_size, val_batch_size, num_workers, seed)
        self.save_hyperparameters()

    def prepare_data(self) -> None:
        """Nothing to download or prepare: clips are rendered on the fly."""

    def _clips(self, length: int) -> ShapesClips:
        return ShapesClips(length, self.num_frames, self.height, self.width, self.max_shapes, self.min_shapes)

    def train_sampler(self, rank: int | None = None, world_size: int | None = None) -> SeedStreamSampler:
        """The training seed sampler of a rank (default: this process's global rank and world size)."""
        default_rank, default_world = _rank_and_world(self.trainer)
        rank = default_rank if rank is None else rank
        world_size = default_world if world_size is None else world_size
        return SeedStreamSampler(self._clips(self.train_size), self.seed, rank, world_size, self.batch_size)

    def train_dataloader(self) -> DataLoader:
        """Infinite-stream training clips, distinct per rank, worker and epoch."""
        sampler = self.train_sampler()
        sampler.skip = self.take_resume_batches() * self.batch_size
        return self.make_loader(sampler.dataset, self.batch_size, sampler)


    def val_dataloader(self) -> DataLoader:
        """The fixed validation clips, seeds 0..val_size-1 in order."""
        return self.make_loader(self._clips(self.val_size), self.val_batch_size)

    def val_seeds(self) -> list[int]:
        """Seeds of the validation clips."""
        return list(range(self.val_size))

    def clip_spec(self, seed: int) -> ClipSpec:
        """The clip specification of a seed (with this module's shape counts)."""
        return ClipSpec.sample(int(seed), max_shapes=self.max_shapes, min_shapes=self.min_shapes)

    def prompt(self, seed: int) -> str:
        """The prompt of the clip of a seed."""
        return prompt_for(self.clip_spec(seed))

    def ground_truth(self, seed: int, num_frames: int, start_frame: int = 0) -> Tensor:
        """Frames [start_frame, start_frame + num_frames) of the clip of a seed, [3, F, H, W] in [-1, 1].

        Any horizon (e.g. 20x the training length) and any window, rendered in closed form.
        """
        return render(self.clip_spec(seed), num_frames, self.height, self.width, start_frame)
