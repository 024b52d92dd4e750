"""Pre-computed text embeddings (e.g. UMT5-XXL over a prompt list) as a frozen text encoder.

Encoding a prompt list once and reading the embeddings back spares every later job (ODE pairs of a
teacher, training) the 11 GB UMT5-XXL. The file is one safetensors file::

    embeddings [N, L, D]   the embedding of prompt i (zero beyond its tokens, as the encoder gives it)
    null       [L, D]      the embedding of the empty prompt "" (the CFG null condition)
    metadata   prompts: JSON list of the N prompts, format
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor, nn

from forcing.encoders.frozen import FrozenModule
from forcing.errors import ConfigError

FORMAT = "forcing.text_embeddings/1"


@torch.no_grad()
def save_text_embeddings(
    encoder: nn.Module, prompts: Sequence[str], path: str | Path, batch_size: int = 16,
    dtype: torch.dtype = torch.bfloat16,
) -> Path:  # fmt: skip
    """Encode `prompts` (and "") with `encoder` and write them to `path` in `dtype`."""
    from forcing.data.shards import save_shard

    prompts = list(dict.fromkeys(prompts))  # unique, in order
    parts = [encoder(list(prompts[lo : lo + batch_size])).cpu() for lo in range(0, len(prompts), batch_size)]
    tensors = {"embeddings": torch.cat(parts).to(dtype), "null": encoder([""])[0].cpu().to(dtype)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_shard(tensors, path, {"format": FORMAT, "prompts": json.dumps(prompts)})


class PrecomputedText(FrozenModule):
    """`encoder(prompts) -> [B, L, D]` looked up in a file of `save_text_embeddings` ("" -> the null
    embedding); a prompt that is not in the file is a `KeyError` naming it."""

    def __init__(self, prompts: Sequence[str], embeddings: Tensor, null: Tensor) -> None:
        super().__init__()
        self.index = {p: i for i, p in enumerate(prompts)}
        self.register_buffer("embeddings", embeddings, persistent=False)  # [N, L, D]
        self.register_buffer("null", null, persistent=False)  # [L, D]
        self.dim = int(embeddings.shape[-1])
        self.max_length = int(embeddings.shape[-2])
        self.freeze()

    @classmethod
    def from_file(cls, path: str | Path) -> PrecomputedText:
        """Load the embeddings of `save_text_embeddings`; `ConfigError` naming a missing or foreign file."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"text embeddings file {path} does not exist")
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise ConfigError(f"{path} is not a {FORMAT} file (forcing.encoders.precomputed_text)")
            return cls(json.loads(meta["prompts"]), f.get_tensor("embeddings"), f.get_tensor("null"))

    def forward(self, prompts: list[str]) -> Tensor:
        """The embeddings of `prompts`: [B, L, D] in float32 (whatever the file stores)."""
        if isinstance(prompts, str):
            raise TypeError("PrecomputedText expects a list of prompts, got a single string")
        rows = []
        for prompt in prompts:
            if prompt == "":
                rows.append(self.null)
            elif prompt in self.index:
                rows.append(self.embeddings[self.index[prompt]])
            else:
                raise KeyError(f"prompt {prompt!r} has no pre-computed embedding")
        return torch.stack(rows).float()
