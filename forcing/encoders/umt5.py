"""The UMT5 text encoder of Wan2.1 (transformers), loaded from a local folder."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from forcing.encoders._folders import (
    from_pretrained_kwargs,
    pretrained_dir,
    resolve_component,
)
from forcing.encoders.frozen import FrozenModule

_EXPECTED = (
    "a transformers UMT5EncoderModel (config.json + model.safetensors) and its tokenizer "
    "(tokenizer.json or spiece.model, tokenizer_config.json), either side by side or as the "
    "text_encoder/ and tokenizer/ subfolders of a diffusers Wan2.1 folder "
    "(e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers downloaded with `huggingface-cli download`)"
)


def clean_prompt(text: str) -> str:
    """Wan's prompt cleaning without ftfy: unescape HTML twice and collapse whitespace."""
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


class UMT5TextEncoder(FrozenModule):
    """Frozen UMT5 encoder: `encoder(prompts) -> [B, max_length, d_model]` (4096 for umt5-xxl).

    As in Wan, prompts are padded/truncated to `max_length` tokens (with the end-of-sequence
    token) and the hidden states beyond each prompt's attention mask are zeroed. The empty
    prompt "" is encoded like any prompt (its end-of-sequence token is not zero), as in Wan.
    """

    def __init__(self, model: nn.Module, tokenizer: Any, max_length: int = 512) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.dim = int(model.config.d_model)
        self.freeze()

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, max_length: int = 512, dtype: torch.dtype | str | None = None
    ) -> UMT5TextEncoder:
        """Load model and tokenizer from a local folder (local_files_only; nothing is downloaded).

        `folder` holds both, or is a diffusers Wan folder with text_encoder/ and tokenizer/.
        `dtype` (e.g. "bfloat16", as Wan runs it) defaults to the checkpoint's dtype.
        """
        from transformers import AutoTokenizer, UMT5EncoderModel

        model_dir = pretrained_dir(folder, "text_encoder", "UMT5 text encoder", _EXPECTED)
        tokenizer_dir = resolve_component(folder, "tokenizer", "UMT5 text encoder", _EXPECTED)
        model = UMT5EncoderModel.from_pretrained(model_dir, **from_pretrained_kwargs(dtype))
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
        return cls(model, tokenizer, max_length=max_length)

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> Tensor:
        """Encode prompts into [B, max_length, dim], zero beyond each prompt's tokens."""
        if isinstance(prompts, str):
            raise TypeError("UMT5TextEncoder expects a list of prompts, got a single string")
        tokens = self.tokenizer(
            [clean_prompt(p) for p in prompts],
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        device = next(self.model.parameters()).device
        ids, mask = tokens.input_ids.to(device), tokens.attention_mask.to(device)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return hidden * mask.gt(0).unsqueeze(-1).to(hidden.dtype)
