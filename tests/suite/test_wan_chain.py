"""The Wan-world chain with `hardware=cpu_fsdp2` (2 gloo ranks, tests/suite/wan_chain_worker.py; the runs
are the configs `python run.py experiment=<ode_init | self_forcing_dmd> world=wan hardware=cpu_fsdp2 ...`
composes) on tiny random Wan2.1 parts saved in their real formats (UMT5 + tokenizer, Wan VAE, a
diffusers-layout transformer; WAN_ROOT):

- 4 clips encoded into latent shards on 2 ranks, each rank its 2, as one process encodes them;
- ODE pairs of their captions sharded over the 2 ranks, rank 1 interrupted after its first shard: the
  rerun makes only the missing shard and the folder equals an uninterrupted one-process run's (tensors equal);
- an ODE-init run on those pairs writes a DCP directory at iteration 2 (`.metadata`, one `.distcp` per
  rank), which `ode_pairs.load_teacher` reads and `lightning_modules.export` exports; Self Forcing starts
  from that export;
- Self Forcing DMD on `world=wan`, `world.data=latents`: a run killed (`os._exit` on every rank) after its
  complete iteration-2 checkpoint (a DCP directory) and resumed with `ckpt_path=auto` gives the
  uninterrupted run's iteration-3 losses exactly, and the same final weights (generator, EMA, critic; the
  frozen real score too) and optimiser states, bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from forcing.data.encode import encode_videos
from forcing.data.latents import read_latent_manifest
from forcing.encoders import UMT5TextEncoder, WanVAECodec
from forcing.models import CausalWanModel
from forcing.ode_pairs import load_teacher, make_prompt_pairs, read_shards
from lightning_modules.checkpoint_io import read_checkpoint_dict
from tests.suite.helpers import torchrun
from tests.suite.wan_chain_worker import (
    CAPTIONS,
    ITERATIONS,
    KILL_AFTER,
    NUM_PAIRS,
    PAIR_LATENT,
    PAIR_SHARD,
    PIXEL_FRAMES,
)
from tests.suite.wan_folders import save_tiny_umt5, save_tiny_vae, save_tiny_videos, save_tiny_wan_teacher

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

WORKER = "tests/suite/wan_chain_worker.py"


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    """TMPDIR after the worker's `train` stage (its torchrun fails: the killed run) and `resume` stage."""
    tmp = tmp_path_factory.mktemp("wan_chain")
    save_tiny_umt5(tmp / "wan")
    save_tiny_vae(tmp / "wan")
    save_tiny_wan_teacher(tmp / "wan" / "transformer", layout="diffusers")
    save_tiny_videos(tmp / "videos", CAPTIONS, PIXEL_FRAMES)
    killed = torchrun(WORKER, "train", str(tmp), check=False)
    marks = [tmp / "out" / f"killed.rank{r}.json" for r in range(2)]
    assert killed.returncode != 0 and all(m.is_file() for m in marks), killed.stderr[-4000:]
    torchrun(WORKER, "resume", str(tmp))
    return tmp


@contextmanager
def one_thread() -> Iterator[None]:
    """Compute with one thread, as the worker's ranks do: the same sums, the same bits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def results(tmp: Path, stage: str) -> list[dict]:
    """What each rank wrote in `stage`."""
    return [json.loads((tmp / "out" / f"{stage}.rank{r}.json").read_text()) for r in range(2)]


def test_two_ranks_encode_what_one_process_encodes(chain, tmp_path) -> None:
    assert [r["encoded"] for r in results(chain, "train")] == [2, 2]  # each rank its share
    codec = WanVAECodec.from_pretrained(chain / "wan")
    with one_thread():
        encode_videos(chain / "videos", tmp_path, codec, num_frames=PIXEL_FRAMES, height=16, width=16,
                      shard_size=1, rank=0, world_size=1, progress=False)  # fmt: skip
    split = read_latent_manifest(chain / "latents")
    assert split == read_latent_manifest(tmp_path) and split["num_clips"] == len(CAPTIONS)
    for entry in split["shards"]:
        a, b = load_file(chain / "latents" / entry["file"]), load_file(tmp_path / entry["file"])
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), entry["file"]


def test_interrupted_pairs_on_two_ranks_resume_to_the_one_process_pairs(chain, tmp_path) -> None:
    ranks = results(chain, "train")
    shards = [f"shard-{i:05d}.safetensors" for i in range(3)]
    assert all(r["after_interruption"] == shards for r in ranks)  # rank 1 lost shard 3; no manifest
    assert [r["rerun_shards"] for r in ranks] == [0, 1]  # the rerun made the missing shard only
    encoder = UMT5TextEncoder.from_pretrained(chain / "wan", max_length=8)
    with one_thread():
        make_prompt_pairs(chain / "wan" / "transformer", tmp_path, CAPTIONS, text_encoder=encoder,
                          latent_size=PAIR_LATENT, num=NUM_PAIRS, shard_size=PAIR_SHARD, batch_size=PAIR_SHARD,
                          rank=0, world_size=1, progress=False)  # fmt: skip
    resumed, whole = read_shards(chain / "pairs"), read_shards(tmp_path)
    for key in ("states", "target", "grid_t", "seeds"):
        assert torch.equal(resumed[key], whole[key]), key
    assert resumed["prompts"] == whole["prompts"] and resumed["config"] == whole["config"]


def test_the_ode_init_dcp_checkpoint_initialises_self_forcing(chain) -> None:
    dcp = chain / "runs" / "ode_init" / "checkpoints" / "step000002.ckpt"
    assert (dcp / ".metadata").is_file() and len(list(dcp.glob("*.distcp"))) == 2
    for losses in (r["ode_init"] for r in results(chain, "train")):
        assert len(losses) == 2 and torch.isfinite(torch.tensor(losses)).all()
    exported = CausalWanModel.from_pretrained(str(chain / "ode_init_weights")).state_dict()
    assert json.loads((chain / "ode_init_weights" / "export.json").read_text())["iteration"] == 2
    teacher, run_cfg = load_teacher(dcp)  # a DCP directory is a teacher too
    assert run_cfg["paradigm"]["name"] == "ode_init"
    initial = torch.load(chain / "out" / "sf_init.pt")
    trained = read_checkpoint_dict(dcp)["state_dict"]
    for name, value in exported.items():
        assert torch.equal(value, trained[f"generator.{name}"]), name
        assert torch.equal(teacher.state_dict()[name], value), name
        assert torch.equal(initial[f"generator.{name}"], value), name  # Self Forcing starts from it


def test_a_killed_self_forcing_run_resumes_bit_exactly(chain) -> None:
    ckpts = chain / "runs" / "split" / "checkpoints"
    dcp = ckpts / f"step{KILL_AFTER:06d}.ckpt"
    assert (dcp / ".metadata").is_file() and (dcp / "meta.pt").is_file()  # complete, written by 2 ranks:
    assert len(list(dcp.glob("*.distcp"))) == 2
    stages = [results(chain, stage) for stage in ("train", "killed", "resume")]
    for full, killed, resumed in zip(*stages):
        assert len(full["full"]) == ITERATIONS and killed["split"] == full["full"][:KILL_AFTER]
        assert resumed["resumed"] == full["full"][KILL_AFTER:]  # iteration 3, exactly
    full, split = (torch.load(chain / "out" / f"final.{name}.pt") for name in ("full", "split"))
    trainable = {name.split(".")[0] for name in read_checkpoint_dict(dcp)["state_dict"]}
    assert trainable == {"generator", "generator_ema", "critic_net"}  # what a checkpoint holds
    assert full["params"].keys() == split["params"].keys()
    assert {name.split(".")[0] for name in full["params"]} >= trainable
    for name, value in full["params"].items():
        assert torch.equal(value, split["params"][name]), name
    assert len(full["optimizers"]) == len(split["optimizers"]) == 2  # generator and critic
    for a, b in zip(full["optimizers"], split["optimizers"]):
        assert a and a.keys() == b.keys()
        for name, moments in a.items():
            assert moments.keys() == b[name].keys(), name
            assert all(torch.equal(v, b[name][k]) for k, v in moments.items()), name
