"""Checkpoints hold the trainable state and reference the frozen networks by source and hash; they are
written atomically, `ckpt_path=auto` takes the newest complete one, and only the newest k are kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from forcing.errors import ConfigError
from forcing.models import CausalWanModel
from forcing.provenance import weights_sha256
from lightning_modules import checkpoint_files
from lightning_modules.checkpoint_files import newest_complete
from lightning_modules.frozen_state import CHECKPOINT_KEY
from lightning_modules.launch import launch
from tests.suite.helpers import LossRecorder, compose_run, tiny_distill_overrides, tiny_teacher

FROZEN = ("text_encoder.", "codec.", "real_score_net.")


@pytest.fixture(scope="module")
def distilled(tmp_path_factory) -> tuple[Path, Path]:
    """(tmp, teacher folder) of a tiny Self Forcing DMD run of 2 iterations in tmp/runs/sf."""
    tmp = tmp_path_factory.mktemp("distilled")
    teacher = tiny_teacher(tmp / "teacher")
    launch(compose_run(*tiny_distill_overrides(tmp, "sf", 2, teacher)))
    return tmp, teacher


def test_checkpoint_holds_trainable_state_and_references_frozen_networks(distilled) -> None:
    tmp, teacher = distilled
    ckpt = torch.load(tmp / "runs" / "sf" / "checkpoints" / "last.ckpt", weights_only=False)
    keys = ckpt["state_dict"].keys()
    assert not [k for k in keys if k.startswith(FROZEN)]
    assert {k.split(".")[0] for k in keys} == {"generator", "generator_ema", "critic_net"}
    assert len(ckpt["optimizer_states"]) == 2
    records = ckpt[CHECKPOINT_KEY]
    assert sorted(records) == ["codec", "real_score_net", "text_encoder"]
    assert records["real_score_net"]["source"] == str(teacher)
    assert records["real_score_net"]["sha256"] == weights_sha256(CausalWanModel.from_pretrained(str(teacher)))
    assert records["text_encoder"]["source"].startswith("toy(")


def test_changed_frozen_network_is_refused_on_resume(distilled) -> None:
    tmp, teacher = distilled
    tiny_teacher(teacher, seed=1)  # other weights at the same path
    with pytest.raises(ConfigError) as err:
        launch(compose_run(*tiny_distill_overrides(tmp, "sf", 3, teacher, "ckpt_path=auto")))
    message = str(err.value)
    assert "\n" not in message
    assert f"frozen network real_score_net from {teacher} has changed since checkpoint" in message


def tf_run(tmp: Path, max_steps: int, *extra: str) -> list[float]:
    """Teacher forcing on the tiny backbone into tmp/runs/tf, a checkpoint every iteration; its losses."""
    cfg = compose_run(
        "experiment=teacher_forcing", "model=tiny", f"paths.runs={tmp / 'runs'}", "name=tf",
        f"trainer.max_steps={max_steps}", "trainer.val_check_interval=1000", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "callbacks.checkpoint_every_n_steps=1",
        "callbacks.samples_every_n_steps=0", "world.batch_size=2", "world.num_frames=6", *extra,
    )  # fmt: skip
    recorder = LossRecorder()
    launch(cfg, extra_callbacks=[recorder])
    return recorder.losses


def test_interrupted_writes_are_never_resumed_and_only_the_newest_k_are_kept(tmp_path, monkeypatch) -> None:
    ckpts = tmp_path / "runs" / "tf" / "checkpoints"
    publish = checkpoint_files.publish

    def crash_at_iteration_4(partial: Path, final: Path) -> None:
        if final.name == "step000004.ckpt":
            raise OSError("the job was killed while writing")
        publish(partial, final)

    monkeypatch.setattr("callbacks.checkpoint.publish", crash_at_iteration_4)
    with pytest.raises(OSError, match="killed while writing"):
        tf_run(tmp_path, 5, "callbacks.keep_last_k=2")
    monkeypatch.undo()
    assert (ckpts / "step000004.ckpt.partial").is_file()
    assert sorted(p.name for p in ckpts.glob("*.ckpt")) == ["last.ckpt", "step000002.ckpt", "step000003.ckpt"]
    assert (ckpts / "last.ckpt").resolve().name == "step000003.ckpt"
    # an interrupted DCP write left under the final name (no .metadata / meta.pt) is skipped too
    (ckpts / "step000005.ckpt").mkdir()
    (ckpts / "step000005.ckpt" / "__0_0.distcp").write_bytes(b"half a shard")
    assert newest_complete(ckpts) == ckpts / "last.ckpt"

    losses = tf_run(tmp_path, 6, "callbacks.keep_last_k=2", "ckpt_path=auto")
    assert len(losses) == 3  # iterations 4, 5 and 6 after the resumed 3
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt", "step000005.ckpt", "step000006.ckpt"]
    assert (ckpts / "step000005.ckpt").is_file() and (ckpts / "last.ckpt").resolve().name == "step000006.ckpt"
    assert torch.load(ckpts / "last.ckpt", weights_only=False)["iteration"] == 6


def test_a_run_directory_with_only_incomplete_checkpoints_is_refused(tmp_path) -> None:
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    (ckpts / "step000002.ckpt").mkdir()
    with pytest.raises(ConfigError, match="no complete checkpoint .* incomplete distributed checkpoint"):
        newest_complete(ckpts)
