"""Save, load and cache a trained `ShapesFeatureNet` (safetensors, with its configuration as metadata)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from forcing.eval.feature_net import ShapesFeatureNet, train_feature_net

#: Part of the cache key: bump when the network or its training changes, so stale files are not reused.
FEATURE_NET_VERSION = 1


def save_feature_net(net: ShapesFeatureNet, path: str | Path, training: dict[str, Any] | None = None) -> Path:
    """Write the net's weights and config (and the training settings, if given) to a safetensors file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"config": json.dumps(net.config), "training": json.dumps(training or {}, sort_keys=True)}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)  # atomic: concurrent readers never see a half-written file
    return path


def read_training_settings(path: str | Path) -> dict[str, Any]:
    """The training settings stored with a saved net ({} if none)."""
    with safe_open(str(path), framework="pt") as f:
        return json.loads((f.metadata() or {}).get("training", "{}"))


def load_feature_net(path: str | Path) -> ShapesFeatureNet:
    """Load a net written by `save_feature_net`, in eval mode without gradients."""
    with safe_open(str(path), framework="pt") as f:
        config = json.loads(f.metadata()["config"])
    net = ShapesFeatureNet(**config)
    net.load_state_dict(load_file(str(path)))
    return net.eval().requires_grad_(False)


def default_cache_dir() -> Path:
    """`$FORCING_ARTIFACTS/eval` (default `artifacts/eval`), next to the suite's other artifacts."""
    return Path(os.environ.get("FORCING_ARTIFACTS", "artifacts")) / "eval"


def load_or_train_feature_net(cache_dir: str | Path | None = None, **training: Any) -> ShapesFeatureNet:
    """The net trained with `training` (keyword arguments of `train_feature_net`), cached on disk.

    The file name carries a hash of the settings and `FEATURE_NET_VERSION`, so different settings
    never share a file; the first call trains and saves (atomically), later calls load. Under
    several processes, train on one (e.g. rank 0) first, or each trains the same net once.
    """
    settings = {"version": FEATURE_NET_VERSION, **training}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    path = (
        Path(cache_dir if cache_dir is not None else default_cache_dir())
        / f"shapes_feature_net-{key}.safetensors"
    )
    if path.exists():
        return load_feature_net(path)
    net = train_feature_net(**training)
    save_feature_net(net, path, settings)
    return net
