"""Export a checkpoint's sampling generator (its EMA when it has one) as a weights folder.

    python -m lightning_modules.export RUN_DIR_OR_CKPT OUT [--dtype float16]

A checkpoint is a file or the DCP directory of an FSDP2 run (consolidated in memory). The folder
(`diffusion_pytorch_model.safetensors` + `config.json`, `forcing.models.weights`) is what `teacher.path`,
`paradigm.generator_init.path` and `model.pretrained` take: a base trained with `experiment=shapes_base`
becomes the teacher, or the start of a longer training (optimiser state is not exported).
`--dtype float16` halves the file (weights are cast back to the model's dtype when loaded).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from callbacks.iteration import checkpoint_iteration
from forcing.models.weights import save_pretrained
from lightning_modules.loading import module_from_checkpoint, read_checkpoint, resolve_checkpoint


def export(checkpoint: str | Path, out: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write the sampling generator of `checkpoint` to the folder `out` (optionally cast to `dtype`),
    with `export.json` naming the checkpoint, its iteration and the run's experiment."""
    path = resolve_checkpoint(checkpoint)
    ckpt = read_checkpoint(path)
    generator = module_from_checkpoint(ckpt, path).sampling_generator()
    if dtype is not None:
        generator = generator.to(dtype)
    folder = save_pretrained(generator, out)
    config = ckpt["hyper_parameters"]["config"]
    info = {"checkpoint": str(path), "iteration": checkpoint_iteration(ckpt),
            "experiment": config.get("experiment_name"), "dtype": str(dtype or "as trained")}  # fmt: skip
    (Path(out) / "export.json").write_text(json.dumps(info, indent=1) + "\n")
    return folder


def main(argv: Sequence[str] | None = None) -> None:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="a .ckpt file or DCP directory, or a run directory (its newest checkpoint)")
    p.add_argument("out", help="the weights folder to write")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default=None)
    a = p.parse_args(argv)
    print(export(a.checkpoint, a.out, getattr(torch, a.dtype) if a.dtype else None))


if __name__ == "__main__":
    main()
