"""A frozen toy text encoder over the shapes-world prompt grammar."""

from __future__ import annotations

import math
import random

import torch
from torch import Tensor

from forcing.encoders.frozen import FrozenModule
from forcing.world.prompts import VOCABULARY, tokenize


def _gaussian_table(rows: int, dim: int, seed: int) -> Tensor:
    """A [rows, dim] N(0, 1) table from Python's `random.Random` (identical on every machine)."""
    rng = random.Random(seed)
    table = [[rng.gauss(0.0, 1.0) for _ in range(dim)] for _ in range(rows)]
    return torch.tensor(table, dtype=torch.float32, device="cpu").view(rows, dim)


def _sinusoidal_positions(length: int, dim: int) -> Tensor:
    """The [length, dim] sinusoidal position code (sin on even, cos on odd channels)."""
    rows = []
    for position in range(length):
        row = []
        for channel in range(dim):
            frequency = 10000.0 ** (-(channel - channel % 2) / dim)
            angle = position * frequency
            row.append(math.sin(angle) if channel % 2 == 0 else math.cos(angle))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float32, device="cpu").view(length, dim)


class ToyTextEncoder(FrozenModule):
    """Frozen embedding of shapes-world prompts: word embedding plus sinusoidal position code.

    `encoder(prompts) -> [B, max_length, dim]`, each prompt's words at positions [0, n) and
    zeros after; the empty prompt "" encodes to all zeros (the null prompt of classifier-free
    guidance). The word table is drawn from `random.Random(seed)`, so the encoding is identical
    across processes and machines. It has no parameters; its tables are non-persistent buffers
    (rebuilt from `seed`, not stored in checkpoints).
    """

    def __init__(self, dim: int = 64, max_length: int = 24, seed: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.max_length = max_length
        self.seed = seed
        self.vocabulary = VOCABULARY
        self._index = {word: i for i, word in enumerate(VOCABULARY)}
        self.register_buffer("word_table", _gaussian_table(len(VOCABULARY), dim, seed), persistent=False)
        self.register_buffer("position_table", _sinusoidal_positions(max_length, dim), persistent=False)
        self.freeze()

    def token_ids(self, prompt: str) -> list[int]:
        """Token ids of a prompt; raises ValueError naming an unknown word or an overlong prompt."""
        ids = []
        for word in tokenize(prompt):
            if word not in self._index:
                raise ValueError(
                    f"unknown word {word!r} in prompt {prompt!r}: not in the shapes-world VOCABULARY"
                )
            ids.append(self._index[word])
        if len(ids) > self.max_length:
            raise ValueError(
                f"prompt has {len(ids)} words, more than max_length={self.max_length}: {prompt!r} "
                "(raise max_length, e.g. 8 words per shape)"
            )
        return ids

    def forward(self, prompts: list[str]) -> Tensor:
        """Encode a batch of prompts into [B, max_length, dim] (zero-padded; "" -> zeros)."""
        if isinstance(prompts, str):
            raise TypeError("ToyTextEncoder expects a list of prompts, got a single string")
        out = self.word_table.new_zeros(len(prompts), self.max_length, self.dim)
        for b, prompt in enumerate(prompts):
            ids = self.token_ids(prompt)
            if ids:
                index = torch.tensor(ids, device=self.word_table.device)
                out[b, : len(ids)] = self.word_table[index] + self.position_table[: len(ids)]
        return out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_length={self.max_length}, seed={self.seed}, vocabulary={len(self.vocabulary)}"
