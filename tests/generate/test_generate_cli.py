"""generate.py on a trained tiny TF run: long streams with a rolling window, outputs and reports."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

import generate
from tests.generate.conftest import HORIZON


def test_stream_20x_with_window_writes_outputs(tf_run, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    frames = 20 * HORIZON
    reports = generate.main(
        [
            "--ckpt",
            str(tf_run),
            "--prompt",
            "a red circle",
            "--prompt",
            "a blue square",
            "--frames",
            str(frames),
            "--window",
            str(HORIZON),
            "--out",
            str(out),
        ]
    )
    assert len(reports) == 2
    for i, r in enumerate(reports):
        assert r["streaming"] and r["paradigm"] == "TeacherForcing"
        assert r["latent_shape"] == [1, 3, frames, 16, 16]
        assert r["output_frames"] == frames and r["decode_included"]
        assert r["steps_per_block"] == 2 and r["cache_write_forwards_per_block"] == 1
        assert r["cfg_batch_factor"] == 2 and r["frames_per_block"] == 3
        assert r["fps"] > 0 and r["latent_fps"] > 0 and r["first_block_latency_s"] > 0
        assert r["first_block_latency_s"] < r["generate_s"]
        assert r["cache_capacity_frames"] == HORIZON and r["peak_cache_bytes"] > 0
        latents = load_file(r["latents_path"])["latents"]
        assert latents.shape == (3, frames, 16, 16)
        assert r["video_path"].endswith(".mp4") and (out / r["video_path"].split("/")[-1]).stat().st_size > 0
        assert r["seed"] == i
    printed = capsys.readouterr().out.splitlines()
    assert json.loads(printed[0])["prompt_index"] == 0 and "frames/s" in printed[1]
    assert len((out / "report.jsonl").read_text().splitlines()) == 2


def test_cache_bytes_flat_from_5x_to_20x(tf_run, tmp_path) -> None:
    def cache_bytes(multiple: int) -> int:
        (r,) = generate.main(
            [
                "--ckpt",
                str(tf_run / "checkpoints" / "last.ckpt"),
                "--prompt",
                "a red circle",
                "--no-decode",
                "--frames",
                str(multiple * HORIZON),
                "--sink",
                "3",
                "--out",
                str(tmp_path / f"x{multiple}"),
                "--warmup",
                "0",
            ]
        )
        assert r["video_path"] is None and not r["decode_included"] and r["window"] == HORIZON
        assert r["latent_frames"] == multiple * HORIZON
        return r["peak_cache_bytes"]

    assert cache_bytes(5) == cache_bytes(20) > 0


def test_frames_not_a_multiple_of_the_block_is_an_error(tf_run, tmp_path) -> None:
    with pytest.raises(generate.ConfigError, match="multiple of the block"):
        generate.main(["--ckpt", str(tf_run), "--prompt", "x", "--frames", "7", "--out", str(tmp_path)])


def test_unknown_prompt_word_is_a_config_error(tf_run, tmp_path) -> None:
    with pytest.raises(generate.ConfigError, match="unknown word"):
        generate.main(
            ["--ckpt", str(tf_run), "--prompt", "a purple unicorn", "--frames", "6", "--out", str(tmp_path)]
        )


def test_bidirectional_teacher_samples_its_whole_clip(teacher_run, tmp_path) -> None:
    (r,) = generate.main(
        ["--ckpt", str(teacher_run), "--prompt", "a red circle", "--frames", "6", "--out", str(tmp_path)]
    )
    assert not r["streaming"] and r["window"] is None and r["cache_write_forwards_per_block"] == 0
    assert r["paradigm"] == "BidirectionalDiffusion" and r["steps_per_block"] == 2
    assert r["latent_shape"] == [1, 3, 6, 16, 16] and r["peak_cache_bytes"] == 0
    assert r["first_block_latency_s"] == r["generate_s"]  # the whole clip is the first output


def test_few_step_generator_streams_with_its_ema(self_forcing_ckpt, tmp_path) -> None:
    (r,) = generate.main(
        [
            "--ckpt",
            str(self_forcing_ckpt),
            "--prompt",
            "a red circle",
            "--frames",
            str(4 * HORIZON),
            "--out",
            str(tmp_path),
            "--no-decode",
        ]
    )
    assert r["paradigm"] == "SelfForcing" and r["weights"] == "ema" and r["streaming"]
    assert r["steps_per_block"] == 4 and r["cfg_batch_factor"] == 1 and r["sampler"].startswith("few-step")
    assert r["latent_shape"] == [1, 3, 4 * HORIZON, 16, 16] and r["cache_capacity_frames"] == HORIZON
