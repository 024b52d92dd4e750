"""Video folders -> Wan VAE latent shards (`forcing.data`): reading, fitting, sharding over ranks,
resuming, and the latent-shard data module that reads them (with the tiny random Wan VAE)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from datamodules import build_datamodule
from datamodules.latents import LatentDataModule
from forcing.data.clips import fit_clip
from forcing.data.encode import encode_videos
from forcing.data.encode_videos import main as encode_main
from forcing.data.videos import list_clips, read_frames
from forcing.encoders import WanVAECodec
from forcing.errors import ConfigError
from tests.suite.helpers import compose_run
from tests.suite.wan_folders import save_tiny_vae

pytest.importorskip("diffusers")
imageio = pytest.importorskip("imageio.v2")

SIZE = {"num_frames": 5, "height": 16, "width": 16}  # 5 pixel frames -> 2 latent frames of 2x2
NAMES = ["a.mp4", "b/clip.mp4", "c", "d.pt", "e.mp4"]  # sorted; e.mp4 has too few frames
CAPTIONS = {"a.mp4": "a red circle", "b/clip.mp4": "a blue square", "c": "a red square",
            "d.pt": "a blue circle", "e.mp4": "a short clip"}  # fmt: skip


def _frames(n: int, h: int, w: int, seed: int) -> np.ndarray:
    return (np.random.RandomState(seed).rand(n, h, w, 3) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Four usable clips of every kind (mp4, nested mp4, frames folder, .pt) and a too-short one,
    each with its sidecar caption."""
    root = tmp_path_factory.mktemp("videos")
    (root / "b").mkdir()
    (root / "c").mkdir()
    for name, (n, h, w) in {"a.mp4": (7, 24, 32), "b/clip.mp4": (6, 32, 24), "e.mp4": (3, 16, 16)}.items():
        imageio.mimwrite(root / name, list(_frames(n, h, w, len(name))), fps=8, codec="libx264", macro_block_size=1)
    for i, frame in enumerate(_frames(5, 16, 16, 7)):
        imageio.imwrite(root / "c" / f"{i:03d}.png", frame)
    torch.save(torch.rand(3, 5, 20, 20) * 2 - 1, root / "d.pt")
    for name, caption in CAPTIONS.items():
        sidecar = root / (name.rsplit(".", 1)[0] + ".txt" if "." in name else name + ".txt")
        sidecar.write_text(caption + "\n")
    return root


@pytest.fixture(scope="module")
def vae_root(tmp_path_factory) -> Path:
    return save_tiny_vae(tmp_path_factory.mktemp("vae"))


@pytest.fixture(scope="module")
def codec(vae_root) -> WanVAECodec:
    return WanVAECodec.from_pretrained(vae_root)


@pytest.fixture(scope="module")
def latents(videos, codec, tmp_path_factory) -> Path:
    """The folder encoded by 2 ranks (shards of 2 clips: rank 0 writes shards 0 and 2, rank 1 shard 1)."""
    out = tmp_path_factory.mktemp("latents")
    assert encode_videos(videos, out, codec, shard_size=2, rank=0, world_size=2, progress=False, **SIZE) is None
    assert sorted(p.name for p in out.glob("shard-*")) == ["shard-00000.safetensors", "shard-00002.safetensors"]
    assert not (out / "manifest.json").exists()  # rank 1 has not finished
    manifest = encode_videos(videos, out, codec, shard_size=2, rank=1, world_size=2, progress=False, **SIZE)
    assert manifest == out / "manifest.json"
    return out


def _contents(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A shard's tensors and metadata (the header's byte order is not stable)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118


def _expected(videos: Path, codec: WanVAECodec, name: str) -> torch.Tensor:
    clip = fit_clip(read_frames(videos / name, 5), 5, 16, 16)
    return codec.encode(clip[None])[0].to(torch.bfloat16)


def test_clips_of_every_kind_are_listed_and_read(videos):
    assert [p.relative_to(videos).as_posix() for p in list_clips(videos)] == NAMES
    assert read_frames(videos / "a.mp4", 5).shape == (5, 24, 32, 3)
    assert read_frames(videos / "c").shape == (5, 16, 16, 3) and read_frames(videos / "d.pt").dtype == torch.uint8


def test_fit_clip_covers_then_crops_the_centre():
    frames = torch.arange(40, dtype=torch.uint8).repeat(2, 20, 1)[..., None].expand(2, 20, 40, 3)  # column index
    clip = fit_clip(frames, 1, 10, 10)  # 20x40 -> 10x20 (cover) -> columns 5..14 (centre)
    assert clip.shape == (3, 1, 10, 10)
    column = (clip[0, 0, 0] + 1) * 127.5  # each output column averages 2 input ones: 2c + 0.5
    torch.testing.assert_close(column, torch.arange(5, 15).float() * 2 + 0.5, atol=0.6, rtol=0)
    with pytest.raises(ValueError, match="fewer than 3"):
        fit_clip(frames, 3, 10, 10)


def test_shards_hold_each_clips_latents_caption_and_position(latents, videos, codec):
    manifest = json.loads((latents / "manifest.json").read_text())
    assert manifest["num_clips"] == 4 and manifest["skipped"] == ["e.mp4"]
    assert [s["num"] for s in manifest["shards"]] == [2, 2, 0]
    assert manifest["config"]["latent_shape"] == [4, 2, 2, 2] and manifest["config"]["dtype"] == "bfloat16"
    shard = load_file(str(latents / "shard-00001.safetensors"))
    assert shard["index"].tolist() == [2, 3] and shard["latents"].dtype == torch.bfloat16
    for row, name in enumerate(("c", "d.pt")):
        assert torch.equal(shard["latents"][row], _expected(videos, codec, name))


def test_resume_redoes_only_the_missing_shard(latents, videos, codec, monkeypatch, tmp_path):
    import shutil

    out = Path(shutil.copytree(latents, tmp_path / "copy"))
    before = {p.name: _contents(p) for p in out.glob("shard-*")}
    (out / "shard-00001.safetensors").unlink()
    (out / "manifest.json").unlink()
    encoded = []
    original = codec.encode
    monkeypatch.setattr(codec, "encode", lambda video: encoded.append(1) or original(video))
    for rank in (0, 1):  # rank 0 has nothing to do; rank 1 redoes its shard and finishes the folder
        encode_videos(videos, out, codec, shard_size=2, rank=rank, world_size=2, progress=False, **SIZE)
    assert len(encoded) == 2  # the two clips of shard 1, nothing else
    after = {p.name: _contents(p) for p in out.glob("shard-*")}
    assert after.keys() == before.keys()
    for name, (tensors, meta) in after.items():
        assert meta == before[name][1] and all(torch.equal(t, before[name][0][k]) for k, t in tensors.items())
    assert json.loads((out / "manifest.json").read_text())["num_clips"] == 4
    with pytest.raises(ConfigError, match="encoded with other settings"):
        encode_videos(videos, out, codec, shard_size=2, progress=False, num_frames=5, height=16, width=24)


def test_cli_with_a_captions_file(videos, codec, vae_root, tmp_path, monkeypatch, capsys):
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps({"a": "first", "clip.mp4": "second", "c": "third", "d.pt": "fourth", "e": "x"}))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    encode_main(["--videos", str(videos), "--vae", str(vae_root), "--out", str(tmp_path / "out"), "--captions",
                 str(captions), "--frames", "5", "--height", "16", "--width", "16", "--no-progress"])  # fmt: skip
    assert "finished" in capsys.readouterr().out
    dm = LatentDataModule(tmp_path / "out", val_size=0)
    assert [dm.clips[i]["prompt"] for i in range(4)] == ["first", "second", "third", "fourth"]
    assert torch.equal(dm.clips[0]["latents"], _expected(videos, codec, "a.mp4"))


def test_latent_module_ranks_batches_and_resume(latents, videos, codec):
    dm = LatentDataModule(latents, batch_size=1, val_size=1, seed=0, ranks=2)
    assert dm.latent_shape == [4, 2, 2, 2]
    parts = [list(dm.train_sampler(rank, 2)) for rank in range(2)]
    assert len(parts[0]) == len(parts[1]) == 1 and set(parts[0]).isdisjoint(parts[1])
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"latents", "prompt", "seed"} and batch["latents"].shape == (1, 4, 2, 2, 2)
    index = int(batch["seed"][0])
    assert batch["prompt"] == [CAPTIONS[NAMES[index]]]
    assert torch.equal(batch["latents"][0], _expected(videos, codec, NAMES[index]))
    val = next(iter(dm.val_dataloader()))
    assert val["seed"].tolist() == [3] and val["prompt"] == ["a blue circle"]  # the held-out last clip
    full = [int(b["seed"][0]) for b in dm.train_dataloader()]
    assert sorted(full) == [0, 1, 2]
    dm.load_state_dict({"batches_in_epoch": 2})
    assert [int(b["seed"][0]) for b in dm.train_dataloader()] == full[2:]
    with pytest.raises(ConfigError, match="fewer than 2 ranks x batch 2"):
        LatentDataModule(latents, batch_size=2, val_size=1, ranks=2)
    with pytest.raises(ConfigError, match="python -m forcing.data.encode_videos"):
        LatentDataModule(latents / "nowhere")


def test_wan_world_builds_the_latent_module_and_modules_skip_the_codec(latents):
    overrides = ("experiment=teacher_forcing", "world=wan", "world.data=latents", f"world.latents={latents}",
                 "world.height=16", "world.width=16", "world.val_size=1")  # fmt: skip
    dm = build_datamodule(compose_run(*overrides, "world.num_frames=2"))
    assert isinstance(dm, LatentDataModule) and len(dm.clips) == 4
    with pytest.raises(ConfigError, match="are 2 latent frames of 16x16 pixels, the world's clips 21"):
        build_datamodule(compose_run(*overrides))
    from lightning_modules.teacher_forcing import TeacherForcing

    module = TeacherForcing(compose_run("experiment=teacher_forcing"))  # no codec built: latents are used as is
    x = torch.randn(1, 4, 2, 2, 2).to(torch.bfloat16)
    got = module.clean_latents({"latents": x, "prompt": ["p"]})
    assert got.dtype == torch.float32 and torch.equal(got, x.float())
    with pytest.raises(ConfigError, match="prompts only: use world.data=latents"):
        module.clean_latents({"prompt": ["p"]})
