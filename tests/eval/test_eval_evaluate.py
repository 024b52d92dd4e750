"""`evaluate`: uniform keys at every horizon, perfect ground truth, corruptions move the right way."""

import math

import pytest
import torch

from forcing.eval import SCALARS, corrupt, evaluate, horizon_window

TRAIN_FRAMES = 12  # the `videos` fixture spans three such horizons
_H = (1, 2, 3)


def test_horizon_windows():
    assert horizon_window(1, 12) == range(0, 12)
    assert horizon_window(5, 12) == range(48, 60)
    assert horizon_window(0.5, 12) == range(0, 6)
    with pytest.raises(ValueError):
        horizon_window(0, 12)


def test_keys_are_uniform_and_ground_truth_is_perfect(specs, videos, feature_net):
    result = evaluate(videos, specs, _H, TRAIN_FRAMES, feature_net=feature_net)
    scalars, curves = result["scalars"], result["curves"]
    assert set(scalars) == {f"eval/{name}@{k}x" for name in SCALARS for k in _H}
    assert all(math.isfinite(v) for v in scalars.values())
    for k in _H:
        assert scalars[f"eval/drift_brightness@{k}x"] == 0 and scalars[f"eval/drift_saturation@{k}x"] == 0
        assert scalars[f"eval/count_error@{k}x"] == 0 and scalars[f"eval/size_error@{k}x"] == 0
        assert scalars[f"eval/stability@{k}x"] == pytest.approx(100.0)
        assert scalars[f"eval/alignment@{k}x"] == 1 and scalars[f"eval/motion@{k}x"] == 1
        assert scalars[f"eval/colour_fidelity@{k}x"] == 1 and scalars[f"eval/shape_fidelity@{k}x"] == 1
        assert scalars[f"eval/fvd@{k}x"] == pytest.approx(0.0, abs=1e-6)
    assert all(curve.shape == (videos.shape[2],) for curve in curves.values())
    assert torch.equal(curves["stability"], torch.full((videos.shape[2],), 100.0))
    without_net = evaluate(videos, specs, (1,), TRAIN_FRAMES, prefix="val")["scalars"]
    assert set(without_net) == {f"val/{name}@1x" for name in SCALARS if name != "fvd"}


def test_horizon_beyond_the_video_is_an_error(specs, videos):
    with pytest.raises(ValueError, match="horizon 4x"):
        evaluate(videos, specs, (1, 4), TRAIN_FRAMES)


def test_corruptions_move_the_summaries_the_right_way(specs, videos, feature_net):
    def run(video):
        return evaluate(video, specs, (1,), TRAIN_FRAMES, feature_net=feature_net)["scalars"]

    assert run(corrupt.brighten(videos))["eval/drift_brightness@1x"] > 0.05
    assert run(corrupt.darken(videos))["eval/drift_brightness@1x"] < -0.05
    frozen = run(corrupt.freeze(videos))
    assert (
        frozen["eval/motion@1x"] == 0 and frozen["eval/speed@1x"] == 0 and frozen["eval/alignment@1x"] < 0.75
    )
    for fn in (corrupt.blur, corrupt.noise):
        scores = run(fn(videos))
        assert scores["eval/stability@1x"] < 60 and scores["eval/fvd@1x"] > 0.5


def test_progressive_drift_accumulates_over_horizons(specs, videos):
    scalars = evaluate(corrupt.drift(videos, 0.3), specs, _H, TRAIN_FRAMES)["scalars"]
    drift = [scalars[f"eval/drift_brightness@{k}x"] for k in _H]
    stability = [scalars[f"eval/stability@{k}x"] for k in _H]
    assert drift[0] > drift[1] > drift[2] and drift[2] < -0.1
    assert stability[0] > stability[1] > stability[2]
