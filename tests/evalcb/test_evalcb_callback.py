"""The streaming evaluation callback logs uniform eval keys, metrics.jsonl, curves and a video."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from callbacks.evaluation import stream_length


def _events(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_tf_run_logs_eval_scalars_curves_and_video(eval_sweep: Path) -> None:
    run = eval_sweep / "tf"
    acc = _events(run)
    tags = acc.Tags()
    for key in ("eval/stability@1x", "eval/stability@2x", "eval/drift_brightness@2x", "eval/fvd@1x"):
        assert key in tags["scalars"], key
    (event,) = acc.Scalars("eval/stability@2x")  # once: iteration 2 and the end of fitting coincide
    assert event.step == 2 and 0 < event.value <= 100
    assert "eval/curves" in tags["images"]

    lines = [json.loads(x) for x in (run / "eval" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["step"] == 2 and lines[0]["mode"] == "stream"
    assert lines[0]["frames"] == 12 and lines[0]["train_frames"] == 6
    assert math.isclose(lines[0]["eval/stability@2x"], event.value, rel_tol=1e-5)
    curves = json.loads((run / "eval" / "curves.jsonl").read_text().splitlines()[0])["curves"]
    assert len(curves["stability"]) == 12
    assert (run / "eval" / "curves_step000002.png").stat().st_size > 0
    assert (run / "eval" / "stream_step000002.mp4").stat().st_size > 0


def test_teacher_is_evaluated_at_1x_only(eval_sweep: Path) -> None:
    tags = _events(eval_sweep / "teacher").Tags()
    assert "eval/stability@1x" in tags["scalars"] and "eval/stability@2x" not in tags["scalars"]
    line = json.loads((eval_sweep / "teacher" / "eval" / "metrics.jsonl").read_text().splitlines()[0])
    assert line["mode"] == "sample" and line["frames"] == 6


def test_stream_length_and_can_stream() -> None:
    from lightning_modules.bidirectional import BidirectionalDiffusion
    from lightning_modules.teacher_forcing import TeacherForcing

    assert stream_length([1, 5, 10, 20], 12, 3) == 240
    assert stream_length([0.5, 1.5], 6, 4) == 12
    assert not BidirectionalDiffusion.can_stream and TeacherForcing.can_stream
