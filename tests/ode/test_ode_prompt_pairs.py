"""ODE pairs of any teacher from a prompt list (`forcing.ode_pairs.make_prompt_pairs`): the plan, two
simulated ranks, an interrupted-then-resumed run, bf16 storage, a bf16 teacher (close pairs, recorded,
a resume in another teacher dtype refused), pre-computed text embeddings and the `--world wan --prompts`
command line (tiny random Wan2.1 parts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import forcing.ode_pairs as ode_pairs
from datamodules.ode_pairs import ODEPairsDataModule
from forcing.data.encode_prompts import main as encode_prompts
from forcing.encoders import UMT5TextEncoder
from forcing.encoders.precomputed_text import PrecomputedText
from forcing.errors import ConfigError
from forcing.ode_pairs import clip_noise, make_prompt_pairs, pair_seed, read_shards
from lightning_modules.ode_pairs import main
from tests.suite.wan_folders import save_tiny_umt5, save_tiny_wan_teacher

pytest.importorskip("transformers")

PROMPTS = ["a red circle", "a blue square", "a red square on black background", "a blue circle", "red"]
LATENT = (4, 2, 2, 2)  # [C, F, H, W]: the tiny teacher's 4 channels, 2 latent frames of 16x16 pixels
NUM = 6  # pair 5 wraps around to prompt 0


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A Wan2.1-like folder: the tiny UMT5 (text_encoder/, tokenizer/) and a teacher fitting it."""
    root = save_tiny_umt5(tmp_path_factory.mktemp("wan"))
    save_tiny_wan_teacher(root / "transformer")
    (root / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    return root


@pytest.fixture(scope="module")
def encoder(root) -> UMT5TextEncoder:
    return UMT5TextEncoder.from_pretrained(root, max_length=8)


def make(root: Path, out: Path, encoder, **kwargs) -> Path | None:
    options = {"num": NUM, "shard_size": 2, "batch_size": 2, "rank": 0, "world_size": 1, "progress": False}
    return make_prompt_pairs(root / "transformer", out, PROMPTS, text_encoder=encoder, latent_size=LATENT[1:],
                             **{**options, **kwargs})  # fmt: skip


@pytest.fixture(scope="module")
def whole(root, encoder, tmp_path_factory) -> dict:
    """The pairs of one uninterrupted single-process run."""
    out = tmp_path_factory.mktemp("whole")
    assert make(root, out, encoder) == out / "manifest.json"
    return read_shards(out)


def assert_same_pairs(a: dict, b: dict) -> None:
    for key in ("states", "target", "grid_t", "seeds"):
        assert torch.equal(a[key], b[key]), key
    assert a["prompts"] == b["prompts"] and a["config"] == b["config"]


def test_pairs_follow_the_prompt_list(whole, root):
    assert whole["prompts"] == [*PROMPTS, PROMPTS[0]]
    assert whole["seeds"].tolist() == [pair_seed(0, i) for i in range(NUM)]
    assert whole["states"].shape == (NUM, 4, *LATENT) and whole["target"].shape == (NUM, *LATENT)
    for n, seed in enumerate(whole["seeds"].tolist()):
        assert torch.equal(whole["states"][n, 0], clip_noise(seed, LATENT))
    assert (whole["target"] - whole["states"][:, 0]).abs().max() > 1e-3  # the teacher's ODE moved
    assert whole["config"]["world"] == "wan" and whole["config"]["teacher"]["name"] == str(root / "transformer")


def test_two_ranks_make_what_one_process_makes(whole, root, encoder, tmp_path):
    assert make(root, tmp_path, encoder, rank=0, world_size=2) is None  # rank 1's shard is missing
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == ["shard-00000.safetensors", "shard-00002.safetensors"]
    assert not (tmp_path / "manifest.json").exists()
    assert make(root, tmp_path, encoder, rank=1, world_size=2) == tmp_path / "manifest.json"
    assert_same_pairs(read_shards(tmp_path), whole)


def test_an_interrupted_run_resumes_to_the_uninterrupted_pairs(whole, root, encoder, tmp_path, monkeypatch):
    generate = ode_pairs.generate_ode_pairs
    calls: list[int] = []

    def crash_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("preempted")
        return generate(*args, **kwargs)

    monkeypatch.setattr(ode_pairs, "generate_ode_pairs", crash_on_second)
    with pytest.raises(RuntimeError, match="preempted"):
        make(root, tmp_path, encoder)
    assert [p.name for p in tmp_path.iterdir()] == ["shard-00000.safetensors"]  # no partial file, no manifest
    calls.clear()
    monkeypatch.setattr(ode_pairs, "generate_ode_pairs", lambda *a, **k: calls.append(1) or generate(*a, **k))
    assert make(root, tmp_path, encoder) == tmp_path / "manifest.json"
    assert len(calls) == 2  # shards 1 and 2 only
    assert_same_pairs(read_shards(tmp_path), whole)
    with pytest.raises(ConfigError, match="other settings"):
        make(root, tmp_path, encoder, guidance_scale=5.0)


def test_bf16_storage_and_precomputed_embeddings(whole, root, encoder, tmp_path):
    file = tmp_path / "umt5.safetensors"
    encode_prompts(["--prompts", str(root / "prompts.txt"), "--text-encoder", str(root), "--out", str(file),
                    "--max-length", "8", "--dtype", "float32", "--device", "cpu"])  # fmt: skip
    precomputed = PrecomputedText.from_file(file)
    torch.testing.assert_close(precomputed(["", PROMPTS[2]]), encoder(["", PROMPTS[2]]), rtol=0, atol=1e-6)
    with pytest.raises(KeyError, match="no pre-computed embedding"):
        precomputed(["a square"])
    out = tmp_path / "bf16"
    make(root, out, precomputed, dtype=torch.bfloat16)
    stored = read_shards(out)
    assert stored["states"].dtype == torch.bfloat16 and stored["config"]["storage_dtype"] == "bfloat16"
    torch.testing.assert_close(stored["states"].float(), whole["states"], rtol=1e-2, atol=1e-2)
    batch = next(iter(ODEPairsDataModule(out, batch_size=2, val_size=2).train_dataloader()))
    assert batch["states"].dtype == batch["target"].dtype == torch.float32  # modules get fp32 whatever is stored


def test_a_bf16_teacher_makes_close_pairs_and_is_recorded(whole, root, encoder, tmp_path):
    out = tmp_path / "bf16_teacher"
    assert make(root, out, encoder, teacher_dtype=torch.bfloat16) == out / "manifest.json"
    stored = read_shards(out)
    assert whole["config"]["teacher_dtype"] == "float32" and stored["config"]["teacher_dtype"] == "bfloat16"
    assert stored["config"]["teacher"] == whole["config"]["teacher"]  # the same weights (hashed in fp32)
    assert stored["states"].dtype == torch.float32  # storage stays --dtype (fp32 by default)
    assert torch.equal(stored["states"][:, 0], whole["states"][:, 0])  # the same seeded noise
    assert not torch.equal(stored["target"], whole["target"])  # the teacher did compute in bf16
    torch.testing.assert_close(stored["states"], whole["states"], rtol=0.02, atol=0.02)
    torch.testing.assert_close(stored["target"], whole["target"], rtol=0.02, atol=0.02)
    with pytest.raises(ConfigError, match="other settings"):
        make(root, out, encoder)  # resuming the bf16 folder with an fp32 teacher


def test_shards_without_a_recorded_teacher_dtype_were_made_in_fp32():
    config = {"teacher": {"name": "a", "sha256": "0"}, "storage_dtype": "float32"}
    assert ode_pairs._settings(config) == ode_pairs._settings({**config, "teacher_dtype": "float32"})
    assert ode_pairs._settings(config) != ode_pairs._settings({**config, "teacher_dtype": "bfloat16"})


def test_cli_makes_wan_pairs_from_a_prompt_file(root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cli"
    main(["--world", "wan", "--root", str(root), "--prompts", str(root / "prompts.txt"), "--out", str(out),
          "--frames", "2", "--height", "16", "--width", "16", "--shard-size", "3", "--batch-size", "3",
          "--rank", "0", "--world-size", "1", "--dtype", "bfloat16", "--teacher-dtype", "bfloat16", "--device", "cpu",
          "--no-progress"])  # fmt: skip
    assert "wrote ODE pairs" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_pairs"] == len(PROMPTS) and manifest["latent_shape"] == list(LATENT)
    assert manifest["teacher_dtype"] == manifest["storage_dtype"] == "bfloat16"
    assert manifest["teacher"]["name"] == str(root / "transformer") and manifest["prompts_file"].endswith("prompts.txt")
    monkeypatch.delenv("WAN_ROOT", raising=False)
    with pytest.raises(ConfigError, match="WAN_ROOT or --root"):
        main(["--world", "wan", "--prompts", str(root / "prompts.txt"), "--out", str(out)])
