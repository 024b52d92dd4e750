"""Frechet distance, the shapes feature net (training, save/load, cache) and FVD."""

import pytest
import torch

from forcing.eval import (
    ShapesFeatureNet,
    clip_labels,
    corrupt,
    frechet_distance,
    fvd,
    ground_truth,
    label_accuracy,
    load_feature_net,
    load_or_train_feature_net,
    save_feature_net,
    train_feature_net,
    video_features,
)
from forcing.eval.feature_net import LABEL_GROUPS, NUM_LABELS, _training_clips
from forcing.world import ClipSpec, ShapeSpec


def test_frechet_distance_of_shifted_and_scaled_gaussians():
    x = torch.randn(500, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    assert frechet_distance(x, x + shift) == pytest.approx(float(shift.square().sum()), rel=1e-6)
    # N(m, S) vs N(2m, 4S): |m|^2 + Tr(S + 4S - 2 * 2S) = |m|^2 + Tr(S)
    expected = float(x.mean(0).square().sum() + torch.cov(x.T).trace())
    assert frechet_distance(x, 2 * x) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError):
        frechet_distance(x[:1], x)


def test_labels_name_what_the_clip_contains():
    spec = ClipSpec("gray", (ShapeSpec("circle", "red", 0.15, (0.5, 0.5), (0.05, 0.0)),))
    labels = clip_labels(spec)
    names = [f"{g}:{n}" for g, ns in LABEL_GROUPS.items() for n in ns]
    on = {names[i] for i in labels.nonzero().flatten().tolist()}
    assert labels.shape == (NUM_LABELS,)
    assert on == {"colour:red", "kind:circle", "direction:right", "speed:fast", "background:gray", "count:1"}


def test_training_learns_the_labels(feature_net):
    videos, labels = _training_clips(48, 12, 32, 32, seed=123)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = ShapesFeatureNet().eval()
    assert label_accuracy(feature_net, videos, labels) > label_accuracy(untrained, videos, labels) + 0.1


def test_training_is_deterministic_and_keeps_the_global_rng():
    state = torch.get_rng_state()
    a = train_feature_net(2, batch_size=2, pool_size=4, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    b = train_feature_net(2, batch_size=2, pool_size=4, seed=5)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_save_load_and_cache(tmp_path, feature_net, videos):
    path = save_feature_net(feature_net, tmp_path / "net.safetensors")
    loaded = load_feature_net(path)
    clip = videos[:2, :, :12]
    assert torch.equal(video_features(loaded, clip), video_features(feature_net, clip))
    settings = {"steps": 1, "batch_size": 2, "pool_size": 2}
    first = load_or_train_feature_net(tmp_path / "cache", **settings)
    (cached,) = (tmp_path / "cache").glob("shapes_feature_net-*.safetensors")
    second = load_or_train_feature_net(tmp_path / "cache", **settings)
    assert torch.equal(video_features(first, clip), video_features(second, clip))
    load_or_train_feature_net(tmp_path / "cache", **dict(settings, seed=1))
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2 and cached.exists()


def test_features_do_not_depend_on_the_batch(feature_net, videos):
    clip = videos[:, :, :12]
    together = video_features(feature_net, clip)
    alone = torch.cat([video_features(feature_net, clip[i : i + 1]) for i in range(clip.shape[0])])
    assert torch.allclose(together, alone, atol=1e-5)


def test_fvd_separates_corrupted_from_same_distribution(feature_net):
    first = ground_truth([ClipSpec.sample(seed) for seed in range(1000, 1064)], 12, 32, 32)
    second = ground_truth([ClipSpec.sample(seed) for seed in range(2000, 2064)], 12, 32, 32)
    same = fvd(feature_net, second, first)
    assert fvd(feature_net, first, first) == pytest.approx(0.0, abs=1e-6)
    for name, fn in {"blur": corrupt.blur, "noise": corrupt.noise, "freeze": corrupt.freeze}.items():
        assert fvd(feature_net, fn(second), first) > 4 * same, name
