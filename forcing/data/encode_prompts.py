"""Encode a prompt list once with the world's text encoder (UMT5-XXL at Wan scale) into one file.

    python -m forcing.data.encode_prompts --prompts prompts.txt --text-encoder $WAN_ROOT --out umt5.safetensors
        [--max-length 512] [--dtype bfloat16] [--device cuda]

The file (`forcing.encoders.precomputed_text`) replaces the encoder where only these prompts are
encoded: `python -m lightning_modules.ode_pairs ... --embeddings <file>`, or training with
`world.text_encoder.kind=precomputed world.text_encoder.path=<file>`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch

from forcing.data.prompts import read_prompts
from forcing.encoders import build_text_encoder
from forcing.encoders._folders import resolve_dtype
from forcing.encoders.precomputed_text import save_text_embeddings


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: write the embeddings of every prompt of the file and of the empty prompt."""
    parser = argparse.ArgumentParser(prog="python -m forcing.data.encode_prompts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", required=True, help="text file, one prompt per line")
    parser.add_argument("--text-encoder", required=True, help="UMT5 folder (or a diffusers Wan2.1 root)")
    parser.add_argument("--out", required=True, help="the embeddings file (.safetensors)")
    parser.add_argument("--max-length", type=int, default=512, help="tokens per prompt (Wan: 512)")
    parser.add_argument("--dtype", default="bfloat16", help="storage dtype")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    encoder = build_text_encoder(kind="umt5", path=args.text_encoder, max_length=args.max_length).to(args.device)
    out = save_text_embeddings(encoder, read_prompts(args.prompts), args.out, args.batch_size, resolve_dtype(args.dtype))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
