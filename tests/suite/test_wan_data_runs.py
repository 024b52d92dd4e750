"""Runs on `world=wan` data (tiny random Wan2.1 parts): Self Forcing DMD from a prompt list (no video:
prompt batches, validation and sample videos without ground truth) and Teacher Forcing from VAE-latent
shards (the module takes the batch's latents, no codec pass)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from forcing.data.encode import encode_videos
from forcing.encoders import WanVAECodec
from lightning_modules.launch import launch
from tests.suite.helpers import LossRecorder, compose_run
from tests.suite.wan_folders import TINY_WAN, save_tiny_umt5, save_tiny_vae, save_tiny_wan_teacher

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

#: the tiny Wan parts' sizes, in one process
TINY = (*TINY_WAN, "hardware=cpu")


@pytest.fixture(scope="module")
def wan_root(tmp_path_factory) -> Path:
    """text_encoder/, tokenizer/, vae/ and a transformer/ that fits them."""
    root = tmp_path_factory.mktemp("wan")
    save_tiny_umt5(root)
    save_tiny_vae(root)
    save_tiny_wan_teacher(root / "transformer")
    (root / "prompts.txt").write_text("a red circle\na blue square\na red square\na blue circle\n")
    return root


def _run(tmp_path: Path, *overrides: str) -> Path:
    """One training iteration (and one validation batch, sample videos at the end); its run folder."""
    cfg = compose_run("world=wan", *TINY, "debug=fast", f"paths.runs={tmp_path / 'runs'}", "name=run",
                      "callbacks.samples_every_n_steps=1", *overrides)  # fmt: skip
    losses = LossRecorder()
    launch(cfg, extra_callbacks=[losses])
    assert len(losses.losses) == 1 and torch.isfinite(torch.tensor(losses.losses)).all()
    return tmp_path / "runs" / "run"


def test_self_forcing_dmd_trains_on_a_prompt_list(wan_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WAN_ROOT", str(wan_root))
    run = _run(tmp_path, "experiment=self_forcing_dmd", "teacher=wan", "paradigm.generator_init.experiment=null",
               f"world.prompts={wan_root / 'prompts.txt'}", "world.num_frames=6", "world.val_size=2")  # fmt: skip
    assert len(list((run / "samples").glob("*.mp4"))) == 1  # sampled without ground truth
    assert (run / "samples" / "step000001.txt").read_text() == "a red square\n"  # the first held-out prompt


def test_teacher_forcing_trains_on_latent_shards(wan_root, tmp_path, monkeypatch):
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(3):
        torch.save(torch.rand(3, 9, 16, 16) * 2 - 1, videos / f"clip{i}.pt")
        (videos / f"clip{i}.txt").write_text("a red circle\n")
    codec = WanVAECodec.from_pretrained(wan_root)
    encode_videos(videos, tmp_path / "latents", codec, num_frames=9, height=16, width=16, progress=False)
    calls: list[int] = []
    monkeypatch.setattr(WanVAECodec, "encode", lambda self, video: calls.append(1))
    monkeypatch.setenv("WAN_ROOT", str(wan_root))
    _run(tmp_path, "experiment=teacher_forcing", "paradigm.generator_init.experiment=null", "world.data=latents",
         f"world.latents={tmp_path / 'latents'}", "world.num_frames=3", "world.val_size=1", "world.batch_size=2")  # fmt: skip
    assert calls == []  # the latents were trained on as they are


def test_self_forcing_dmd_trains_on_precomputed_embeddings_without_umt5(wan_root, tmp_path, monkeypatch):
    from forcing.data.encode_prompts import main as encode_prompts
    from forcing.encoders import UMT5TextEncoder

    file = tmp_path / "umt5.safetensors"
    encode_prompts(["--prompts", str(wan_root / "prompts.txt"), "--text-encoder", str(wan_root), "--out", str(file),
                    "--max-length", "8", "--dtype", "float32", "--device", "cpu"])  # fmt: skip
    monkeypatch.setattr(UMT5TextEncoder, "from_pretrained", lambda *a, **k: pytest.fail("UMT5 was loaded"))
    monkeypatch.setenv("WAN_ROOT", str(wan_root))
    _run(tmp_path, "experiment=self_forcing_dmd", "teacher=wan", "paradigm.generator_init.experiment=null",
         f"world.prompts={wan_root / 'prompts.txt'}", "world.num_frames=6", "world.val_size=2",
         "world.text_encoder.kind=precomputed", f"world.text_encoder.path={file}")  # fmt: skip
