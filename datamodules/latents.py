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
from typing import Any

from datamodules.held_out import HeldOutListModule
from datamodules.shard_rows import ShardRows
from forcing.data.latents import read_latent_manifest


class LatentDataModule(HeldOutListModule):
    """Clips of a latents folder (`HeldOutListModule`: held-out tail, per-rank epochs, resumable)."""

    what = "clips"

    def __init__(self, path: str | Path, **loading: Any) -> None:
        self.path = Path(path)
        self.manifest = read_latent_manifest(self.path)
        files = [entry["file"] for entry in self.manifest["shards"]]
        self.clips = ShardRows(self.path, files, "index", ["latents"], "latent clips")
        super().__init__(self.clips, f"latents folder {self.path}", **loading)

    @property
    def latent_shape(self) -> list[int]:
        """[C, F, H, W] of the stored latents."""
        return [int(s) for s in self.manifest["config"]["latent_shape"]]
