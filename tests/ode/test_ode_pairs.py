"""ODE pairs: on the student's grid, deterministic, exact shards, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from ode_testing import LATENT, NUM_PAIRS

from forcing.diffusion import Conditioning, Denoiser, euler_timesteps, few_step_timesteps
from forcing.ode_pairs import (
    PAIR_SEED_BASE,
    GridMismatchError,
    clip_noise,
    generate_ode_pairs,
    read_shards,
    shapes_clips,
    write_shards,
)
from forcing.rollout import euler_sample
from lightning_modules.ode_pairs import main


def test_states_lie_on_the_student_grid_and_start_at_the_noise(pairs):
    assert torch.equal(pairs["grid_t"], few_step_timesteps())
    assert pairs["states"].shape == (NUM_PAIRS, 4, *LATENT) and pairs["target"].shape == (NUM_PAIRS, *LATENT)
    for n, seed in enumerate(pairs["seeds"].tolist()):
        assert torch.equal(pairs["states"][n, 0], clip_noise(seed, LATENT))
    # the trajectory moves: consecutive grid states differ
    assert (pairs["states"][:, 1] - pairs["states"][:, 0]).abs().max() > 1e-3
    assert pairs["config"]["shift"] == 5.0 and pairs["config"]["num_steps"] == 48
    assert pairs["config"]["grid_indices"] == [0, 12, 24, 36]


def test_endpoint_and_states_equal_the_same_euler_ode(pairs, teacher, encoder):
    n = 2
    noise = torch.stack([clip_noise(s, LATENT) for s in pairs["seeds"][:n].tolist()])
    cond = Conditioning(encoder(pairs["prompts"][:n]), encoder([""] * n))
    denoiser = Denoiser(teacher, guidance_scale=4.0, mode="bidirectional")
    x0, states = euler_sample(denoiser, noise, cond, euler_timesteps(48, 5.0), return_indices=(12, 24, 36))
    torch.testing.assert_close(pairs["target"][:n], x0, rtol=0, atol=1e-5)
    torch.testing.assert_close(pairs["states"][:n, 1:], torch.stack(states, 1), rtol=0, atol=1e-5)


def test_shift_8_grid_is_rejected(teacher, encoder):
    prompts, seeds = shapes_clips(1)
    with pytest.raises(GridMismatchError, match="student's grid"):
        generate_ode_pairs(teacher, encoder, prompts, seeds, LATENT, shift=8.0, guidance_scale=4.0)


def test_same_seeds_give_the_same_pairs_whatever_the_batch(pairs, teacher, encoder):
    again = generate_ode_pairs(
        teacher,
        encoder,
        pairs["prompts"][1:3],
        pairs["seeds"][1:3].tolist(),
        LATENT,
        guidance_scale=4.0,
        batch_size=1,
    )
    torch.testing.assert_close(again["states"], pairs["states"][1:3], rtol=0, atol=1e-6)
    torch.testing.assert_close(again["target"], pairs["target"][1:3], rtol=0, atol=1e-6)


def test_shapes_seeds_are_disjoint_from_validation_seeds():
    prompts, seeds = shapes_clips(4, base_seed=3)
    assert min(seeds) >= PAIR_SEED_BASE and len(set(seeds)) == 4 and all(isinstance(p, str) for p in prompts)
    assert shapes_clips(4, base_seed=3) == (prompts, seeds)


def test_shards_round_trip_exactly(pairs, pairs_dir):
    back = read_shards(pairs_dir)
    for key in ("states", "target", "grid_t", "seeds"):
        assert torch.equal(back[key], pairs[key]), key
    assert back["prompts"] == pairs["prompts"]
    manifest = json.loads((pairs_dir / "manifest.json").read_text())
    assert manifest["num_pairs"] == NUM_PAIRS and len(manifest["shards"]) == 2
    assert manifest["grid_t"] == pairs["grid_t"].tolist() and manifest["guidance_scale"] == 4.0
    assert len(manifest["teacher"]["sha256"]) == 16


def test_cli_writes_a_pairs_folder(teacher_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    main(["--teacher", str(teacher_dir), "--out", str(out), "--num", "3", "--frames", "3", "--height", "16",
          "--width", "16", "--shard-size", "2", "--batch-size", "3", "--device", "cpu"])  # fmt: skip
    back = read_shards(out)
    assert back["states"].shape == (3, 4, 3, 3, 16, 16) and torch.equal(back["grid_t"], few_step_timesteps())
    assert back["config"]["teacher"]["name"] == str(teacher_dir) and back["config"]["codec"] == "identity"
    assert back["prompts"] == shapes_clips(3)[0]
    assert "wrote 3 ODE pairs" in capsys.readouterr().out


def test_causal_teacher_with_clean_context(teacher, encoder, tmp_path):
    """Causal Forcing's door: an AR teacher with ground-truth clean context; the context is stored."""
    prompts, seeds = shapes_clips(3)
    context = torch.rand(3, *LATENT) * 2 - 1
    kwargs = {"mode": "teacher_forcing", "frames_per_block": 3}
    pairs = generate_ode_pairs(
        teacher, encoder, prompts, seeds, LATENT, num_steps=4, grid_indices=(0, 1, 2, 3),
        guidance_scale=6.0, batch_size=2, forward_kwargs=kwargs, context_video=context,
    )  # fmt: skip
    assert (
        torch.equal(pairs["context"], context)
        and pairs["config"]["forward_kwargs"]["clean_x"] == "tensor[3, 3, 12, 32, 32]"
    )
    noise = torch.stack([clip_noise(s, LATENT) for s in seeds])
    denoiser = Denoiser(teacher, guidance_scale=6.0, **kwargs)
    x0 = euler_sample(
        denoiser,
        noise,
        Conditioning(encoder(prompts), encoder([""] * 3)),
        euler_timesteps(4),
        clean_x=context,
    )
    torch.testing.assert_close(pairs["target"], x0, rtol=0, atol=1e-5)
    write_shards(pairs, tmp_path, shard_size=2)
    back = read_shards(tmp_path)
    assert torch.equal(back["context"], context) and torch.equal(back["states"], pairs["states"])
