"""The shipped base's card: what `forcing/assets/shapes_base` is and what it scores.

    python -m experiments.learnability.base_card [--folder forcing/assets/shapes_base] [--write]

Scores the base's samples of the shapes world's first 8 validation prompts (seed 0, the sampler of
`experiment=shapes_base`: 32 Euler steps, CFG 4, shift 3) at 1x with the suite's metrics, the
same computation as the training-time evaluation of a bidirectional model, and prints them; with
`--write` records them, with the weights' sha256, in the folder's `card.json` (its other keys, the
commands that made the weights and their training curve, are kept). tests/suite/test_shipped_base.py
checks the shipped folder against its card with the same function.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from forcing.provenance import file_sha256
from lightning_modules.config_resolvers import asset_path

#: the shipped folder
FOLDER = Path(asset_path("shapes_base"))
#: validation prompts scored (the training-time evaluation's `eval_num_videos` of experiment=shapes_base)
NUM_VIDEOS = 8


def base_module(folder: Path = FOLDER):  # noqa: ANN201 - a LightningModule
    """`experiment=shapes_base pretrained=shapes_base` with the weights of `folder` (generator and EMA)."""
    from hydra import compose, initialize_config_dir

    from lightning_modules.launch import paradigm_class

    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("run", overrides=["experiment=shapes_base", "pretrained=shapes_base",
                                        f"paradigm.generator_init.path={folder}"])  # fmt: skip
    cls = paradigm_class(cfg)
    cls.prepare_prerequisites(cfg)
    module = cls(cfg)
    module.configure_model()
    return module.eval()


@torch.no_grad()
def score(folder: Path = FOLDER, num_videos: int = NUM_VIDEOS) -> dict[str, float]:
    """`eval/*@1x` scalars of the base's samples of the first `num_videos` validation prompts."""
    from callbacks.evaluation import StreamingEvaluation
    from datamodules import validation_clips
    from forcing.eval.evaluate import evaluate
    from forcing.world import prompt_for

    module = base_module(folder)
    clips = validation_clips(module.cfg, num_videos)
    video, _, frames = StreamingEvaluation(every_n_steps=1, horizons=[1]).generate(module, [prompt_for(c) for c in clips])
    return {k: float(v) for k, v in evaluate(video, clips, [1], frames)["scalars"].items()}


def weights_file(folder: Path = FOLDER) -> Path:
    """The folder's safetensors file."""
    return folder / "diffusion_pytorch_model.safetensors"


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Score the folder; with --write record the scores and sha256 in its card.json."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folder", type=Path, default=FOLDER)
    p.add_argument("--write", action="store_true")
    a = p.parse_args(argv)
    scalars = score(a.folder)
    for key in sorted(scalars):
        print(f"{key}\t{scalars[key]:.4f}")
    if a.write:
        card_path = a.folder / "card.json"
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        card.update(sha256=file_sha256(weights_file(a.folder)), scores=scalars,
                    sampler={"steps": 32, "guidance_scale": 4.0, "shift": 3.0, "seed": 0, "videos": NUM_VIDEOS})  # fmt: skip
        card_path.write_text(json.dumps(card, indent=1) + "\n")
    return scalars


if __name__ == "__main__":
    main()
