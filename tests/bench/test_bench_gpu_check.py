"""The GPU check in its tiny CPU mode: the script and the driver run and write well-formed JSON with the
expected rows and keys (timings are never asserted); the Wan-size training configs compose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")

from experiments.bench import gpu_check  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STREAM_KEYS = {"fps_denoise", "fps_end_to_end", "first_chunk_s", "first_chunk_s_end_to_end", "peak_mem_bytes"}


@pytest.fixture(scope="module")
def tiny_check(tmp_path_factory) -> tuple[Path, dict]:
    """One tiny CPU run of the streaming and train stages (the slow part: ~30 s)."""
    out = tmp_path_factory.mktemp("gpu_check")
    docs = gpu_check.main(["--device", "cpu", "--tiny", "--out", str(out), "--stages", "streaming", "train"])
    return out, docs


def test_streaming_rows_and_keys(tiny_check) -> None:
    out, docs = tiny_check
    doc = json.loads((out / "streaming.json").read_text())
    assert doc == docs["streaming"] and doc["status"] == "done" and doc["error"] is None
    rows = doc["rows"]
    assert [(r["frames_per_block"], r["multiple"]) for r in rows] == [(3, 1), (1, 1), (3, 10), (1, 10)]
    for r in rows:
        assert STREAM_KEYS <= set(r)
        assert all(r[k] > 0 for k in ("fps_denoise", "fps_end_to_end", "first_chunk_s", "first_chunk_s_end_to_end"))
        assert r["peak_mem_bytes"] is None  # no allocator peak on CPU
        assert r["cache_frames"] == 6 and r["latent_frames"] == 6 * r["multiple"]
        assert r["video_frames"] == 1 + 4 * (r["latent_frames"] - 1)
        assert r["first_chunk_s"] < r["total_s_denoise"]


def test_train_rows_and_ratio(tiny_check) -> None:
    out, docs = tiny_check
    doc = json.loads((out / "train.json").read_text())
    assert doc["status"] == "done" and doc["skipped"] == []
    rows = {r["experiment"]: r for r in doc["rows"]}
    assert set(rows) == {"self_forcing_dmd", "teacher_forcing"}
    assert rows["self_forcing_dmd"]["iterations"] == 5  # 3 rounded up to a whole 1:5 cycle
    assert rows["teacher_forcing"]["iterations"] == 3
    assert all(len(r["iteration_s"]) == r["iterations"] and r["iteration_s_mean"] > 0 for r in rows.values())
    s = doc["summary"]
    assert s["iteration_ratio_sf_dmd_over_tf"] == pytest.approx(s["sf_dmd_iteration_s"] / s["tf_iteration_s"])


def test_check_json_and_table(tiny_check) -> None:
    out, _ = tiny_check
    check = json.loads((out / "check.json").read_text())
    assert check["torch"] == torch.__version__ and "--tiny" in check["command"]
    assert list(check["stages"]) == ["streaming", "train"]
    table = (out / "table.md").read_text()
    assert "### streaming: done" in table and "Iteration time ratio SF DMD / TF" in table


def test_out_of_time_stages_record_skips(tmp_path) -> None:
    docs = gpu_check.main(
        ["--device", "cpu", "--tiny", "--out", str(tmp_path), "--stages", "streaming", "--streaming-budget-s", "0"]
    )
    doc = json.loads((tmp_path / "streaming.json").read_text())
    assert doc == docs["streaming"] and doc["status"] == "partial" and doc["rows"] == []
    assert len(doc["skipped"]) == 4


def test_script_runs_the_tests_stage(tmp_path) -> None:
    """gpu_check.sh with the CPU venv: the `gpu` tests stage (skipped tests without CUDA) writes its JSON."""
    env = {**os.environ, "PYTHON": sys.executable}
    target = "tests/bench/test_bench_gpu_check.py::test_tiny_check_on_cuda"
    done = subprocess.run(
        ["bash", "experiments/bench/gpu_check.sh", "--device", "cpu", "--tiny", "--out", str(tmp_path),
         "--stages", "tests", "--gpu-tests", target],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((tmp_path / "tests.json").read_text())
    assert doc["status"] == "done" and len(doc["rows"]) == 1
    row = doc["rows"][0]
    assert row["returncode"] == 0 and ("skipped" in row["summary"] or "passed" in row["summary"])


def test_wan_size_train_configs_compose(tmp_path) -> None:
    from lightning_modules.artifacts import compose_experiment
    from lightning_modules.launch import paradigm_class
    from lightning_modules.train_check import SF_DMD, TF, check_overrides

    for name in (SF_DMD, TF):
        cfg = compose_experiment(name, *check_overrides(False, torch.device("cuda"), tmp_path))
        paradigm_class(cfg).validate_config(cfg)
        assert cfg.model.preset == "wan2.1-t2v-1.3b" and cfg.model.pretrained is None
        assert (cfg.world.num_frames, cfg.world.height, cfg.world.width) == (21, 60, 104)
        assert cfg.hardware.precision == "bf16-mixed" and cfg.model.gradient_checkpointing
        assert cfg.world.batch_size == 1 and cfg.world.text_encoder.max_length == 512


@pytest.mark.gpu
def test_tiny_check_on_cuda(tmp_path) -> None:
    docs = gpu_check.main(["--device", "cuda", "--tiny", "--out", str(tmp_path), "--stages", "streaming", "train"])
    assert all(r["peak_mem_bytes"] > 0 for r in docs["streaming"]["rows"] + docs["train"]["rows"])
