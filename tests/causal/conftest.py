"""A tiny AR teacher, small shapes-world clips and their causal ODE pairs (single-threaded)."""

from __future__ import annotations

import pytest
import torch

from forcing.encoders import build_text_encoder
from forcing.models import CausalWanModel
from forcing.ode_pairs import render_clips, shapes_clips, write_shards
from lightning_modules.causal_forcing import generate_causal_pairs

#: small clips: 6 latent frames (2 chunk-wise blocks) of 16x16 RGB (identity codec)
FRAMES, SIZE, NUM = 6, 16, 6
WORLD = (f"world.num_frames={FRAMES}", f"world.height={SIZE}", f"world.width={SIZE}")


def tiny_model(seed: int = 0) -> CausalWanModel:
    """`model=tiny` with a random (non-zero) output head, so that its ODE moves."""
    torch.manual_seed(seed)
    model = CausalWanModel.from_preset("tiny", in_dim=3, out_dim=3, text_dim=64, patch_size=(1, 4, 4))
    torch.nn.init.normal_(model.head.head.weight, std=0.05)
    return model.requires_grad_(False).eval()


@pytest.fixture(scope="session")
def make_model():
    """Factory of tiny models with a non-zero head: `make_model(seed)`."""
    return tiny_model


@pytest.fixture(scope="session")
def world_overrides() -> tuple[str, ...]:
    """Hydra overrides of the small clips (with model=tiny)."""
    return ("model=tiny", *WORLD)


@pytest.fixture(scope="session")
def ar_teacher() -> CausalWanModel:
    return tiny_model()


@pytest.fixture(scope="session")
def encoder() -> torch.nn.Module:
    return build_text_encoder(kind="toy", dim=64, max_length=24)


@pytest.fixture(scope="session")
def clips() -> tuple[list[str], list[int], torch.Tensor]:
    """Prompts, seeds and ground-truth clips [N, 3, F, H, W] of NUM pair seeds."""
    prompts, seeds = shapes_clips(NUM)
    return prompts, seeds, render_clips(seeds, FRAMES, SIZE, SIZE, max_shapes=3)


@pytest.fixture(scope="session")
def causal_pairs(ar_teacher, encoder, clips) -> dict:
    """Causal ODE pairs of the real recipe (48 steps, shift 5, CFG 6) with the GT context."""
    prompts, seeds, video = clips
    return generate_causal_pairs(ar_teacher, encoder, prompts, seeds, video, frames_per_block=3,
                                 guidance_scale=6.0)  # fmt: skip


@pytest.fixture(scope="session")
def causal_pairs_dir(causal_pairs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("causal_pairs")
    write_shards(causal_pairs, folder)
    return folder
