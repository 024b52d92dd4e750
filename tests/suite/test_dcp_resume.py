"""FSDP2 on 2 ranks writes torch distributed checkpoints (DCP directories) of the trainable state;
`ckpt_path=auto` resumes them bit-exactly on 2 ranks, and in one process (consolidated on load); a
one-process checkpoint file resumes on 2 ranks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch.distributed.checkpoint import FileSystemReader

from forcing.models import CausalWanModel
from lightning_modules.checkpoint_io import read_checkpoint_dict
from lightning_modules.export import export
from lightning_modules.frozen_state import CHECKPOINT_KEY
from lightning_modules.launch import launch
from tests.suite.helpers import RestoredState, compose_run, tiny_distill_overrides, tiny_teacher, torchrun


@pytest.fixture(scope="module")
def fsdp2_runs(tmp_path_factory) -> tuple[Path, Path, list[dict[str, list[float]]]]:
    """(tmp, teacher, per-rank losses) of tests/suite/dcp_worker.py, after a one-process run tmp/runs/one."""
    tmp = tmp_path_factory.mktemp("dcp")
    teacher = tiny_teacher(tmp / "teacher")
    launch(compose_run(*tiny_distill_overrides(tmp, "one", 2, teacher)))
    torchrun("tests/suite/dcp_worker.py", str(tmp / "losses"), str(tmp), str(teacher))
    return tmp, teacher, [json.loads((tmp / f"losses.rank{r}.json").read_text()) for r in range(2)]


def test_two_ranks_write_dcp_directories_and_resume_bit_exactly(fsdp2_runs) -> None:
    tmp, teacher, ranks = fsdp2_runs
    ckpt = tmp / "runs" / "split" / "checkpoints" / "step000002.ckpt"
    assert ckpt.is_dir() and (ckpt / ".metadata").is_file() and (ckpt / "meta.pt").is_file()
    assert len(list(ckpt.glob("*.distcp"))) == 2  # one shard file per rank
    stored = FileSystemReader(ckpt).read_metadata().state_dict_metadata
    networks = {key.split(".")[1] for key in stored if key.startswith("state_dict.")}
    assert networks == {"generator", "generator_ema", "critic_net"}  # no real score, text encoder or codec
    assert any(key.startswith("optimizer_1.") for key in stored)
    meta = torch.load(ckpt / "meta.pt", weights_only=False)
    assert meta[CHECKPOINT_KEY]["real_score_net"]["source"] == str(teacher) and meta["iteration"] == 2
    for losses in ranks:
        assert len(losses["full"]) == 3 and len(losses["split"]) == 2 and len(losses["resumed"]) == 1
        assert losses["split"] + losses["resumed"] == losses["full"]


def test_a_two_rank_checkpoint_resumes_in_one_process(fsdp2_runs, tmp_path) -> None:
    tmp, teacher, _ = fsdp2_runs
    dcp = tmp / "runs" / "split" / "checkpoints" / "step000002.ckpt"
    shutil.copytree(dcp, tmp_path / "runs" / "one" / "checkpoints" / dcp.name)
    restored = RestoredState()
    trainer = launch(compose_run(*tiny_distill_overrides(tmp_path, "one", 3, teacher, "ckpt_path=auto")),
                     extra_callbacks=[restored])  # fmt: skip
    assert trainer.fit_loop.total_batch_idx + 1 == 3  # iteration 3 after the resumed 2
    restored.assert_equals(read_checkpoint_dict(dcp))  # weights and both optimisers' states, by name


def test_a_one_process_checkpoint_file_resumes_on_two_ranks(fsdp2_runs) -> None:
    tmp, _, _ = fsdp2_runs
    restored = RestoredState()
    vars(restored).update(torch.load(tmp / "losses.one.pt", weights_only=False))
    ckpts = tmp / "runs" / "one" / "checkpoints"
    restored.assert_equals(torch.load(ckpts / "step000002.ckpt", weights_only=False))
    assert (ckpts / "last.ckpt" / ".metadata").is_file()  # iteration 3 written on 2 ranks: a DCP directory


def test_export_reads_a_dcp_directory(fsdp2_runs, tmp_path) -> None:
    tmp, _, _ = fsdp2_runs
    dcp = tmp / "runs" / "split" / "checkpoints" / "step000002.ckpt"
    export(dcp, tmp_path / "weights")
    saved = read_checkpoint_dict(dcp)["state_dict"]
    for name, value in CausalWanModel.from_pretrained(str(tmp_path / "weights")).state_dict().items():
        assert torch.equal(value, saved[f"generator_ema.{name}"]), name
    assert json.loads((tmp_path / "weights" / "export.json").read_text())["iteration"] == 2
