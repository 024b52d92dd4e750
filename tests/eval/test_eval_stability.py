"""The 0-100 visual-stability score."""

import torch

from forcing.eval import TOLERANCES, corrupt, frame_metrics, stability_curve


def test_formula_halves_at_each_tolerance():
    zeros = {name: torch.zeros(1, 3) for name in TOLERANCES}
    assert torch.equal(stability_curve(zeros), torch.full((1, 3), 100.0))
    for name, tau in TOLERANCES.items():
        one = dict(zeros, **{name: torch.full((1, 3), -tau)})  # the sign of an error does not matter
        assert torch.allclose(stability_curve(one), torch.full((1, 3), 50.0))
    two = dict(zeros, brightness=torch.full((1, 1), TOLERANCES["brightness"]), count=torch.ones(1, 1))
    assert torch.allclose(stability_curve(two), torch.full((1, 1), 25.0))


def test_ground_truth_scores_100(specs, videos):
    assert torch.equal(
        frame_metrics(videos, specs).stability, torch.full((len(specs), videos.shape[2]), 100.0)
    )


def test_every_corruption_lowers_stability(specs, videos):
    scores = {
        name: float(frame_metrics(fn(videos), specs).stability.mean())
        for name, fn in {
            "brighten": corrupt.brighten,
            "darken": corrupt.darken,
            "freeze": corrupt.freeze,
            "blur": corrupt.blur,
            "noise": corrupt.noise,
            "slight noise": lambda v: corrupt.noise(v, 0.05),
        }.items()
    }
    assert all(score < 60 for name, score in scores.items() if name != "slight noise"), scores
    assert scores["noise"] < scores["slight noise"] < 98


def test_progressive_drift_lowers_stability_over_time(specs, videos):
    curve = frame_metrics(corrupt.drift(videos, final_factor=0.3), specs).stability.mean(0)
    assert curve[0] > 90 and curve[-1] < 10
    assert curve[:12].mean() > curve[12:24].mean() > curve[24:].mean()
