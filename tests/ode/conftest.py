"""A tiny shapes-world teacher and its ODE pairs, shared by the ODE-init tests (single-threaded)."""

from __future__ import annotations

import pytest
import torch
from ode_testing import LATENT, NUM_PAIRS, tiny_teacher

from forcing.encoders import build_text_encoder
from forcing.models import CausalWanModel
from forcing.models.weights import save_pretrained
from forcing.ode_pairs import generate_ode_pairs, shapes_clips, write_shards


@pytest.fixture(scope="session")
def teacher() -> CausalWanModel:
    return tiny_teacher()


@pytest.fixture(scope="session")
def encoder() -> torch.nn.Module:
    return build_text_encoder(kind="toy", dim=64, max_length=24)


@pytest.fixture(scope="session")
def teacher_dir(teacher, tmp_path_factory):
    return save_pretrained(teacher, tmp_path_factory.mktemp("teacher") / "weights")


@pytest.fixture(scope="session")
def pairs(teacher, encoder) -> dict:
    """NUM_PAIRS shapes-world pairs of the real recipe: 48 steps, shift 5, CFG 4."""
    prompts, seeds = shapes_clips(NUM_PAIRS)
    return generate_ode_pairs(teacher, encoder, prompts, seeds, LATENT, guidance_scale=4.0, batch_size=4)


@pytest.fixture(scope="session")
def pairs_dir(pairs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    write_shards(pairs, folder, shard_size=4)  # two shards, the second partial
    return folder
