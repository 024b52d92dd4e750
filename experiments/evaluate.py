"""Score a checkpoint with the suite's streaming evaluation, outside training.

    python experiments/evaluate.py RUN_DIR_OR_CKPT --out DIR [--horizons 1 5 10 20] [--num-videos 4]
        [--window N] [--sink N] [--artifacts DIR] [--threads N] [--set paradigm.guidance_scale=3 ...]

The same callback as during training (`callbacks/evaluation.py`, the same `eval/*` keys): the
checkpoint's generator (EMA if present) streams the first validation prompts of its shapes world
to max(horizons) x the training length with a rolling KV window (a paradigm that cannot stream,
the bidirectional teacher, is scored at 1x), and the metrics, curves and a video go to DIR as a run
directory: TensorBoard events at the checkpoint's iteration, `eval/metrics.jsonl`, `eval/curves.jsonl`,
PNGs, an mp4, and the run's `config.yaml`. `experiments/compare.py DIR ...` then puts it in a table
next to training runs. Defaults come from the run's own `callbacks.eval_*` settings; `--set KEY=VALUE`
changes the module's config before sampling (another sampler: `paradigm.guidance_scale`,
`paradigm.sample_shift`, `paradigm.sample_steps`), recorded in DIR's config.yaml.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from callbacks.evaluation import StreamingEvaluation  # noqa: E402
from callbacks.iteration import checkpoint_iteration  # noqa: E402
from datamodules import validation_clips  # noqa: E402
from lightning_modules.loading import load_module, read_checkpoint, resolve_checkpoint  # noqa: E402

_MISSING = object()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a run directory (its checkpoints/last.ckpt) or a .ckpt file")
    p.add_argument("--out", type=Path, required=True, help="output run directory")
    p.add_argument("--horizons", type=float, nargs="+", default=None, help="default: the run's callbacks.eval_horizons")
    p.add_argument("--num-videos", type=int, default=None, help="default: the run's callbacks.eval_num_videos")
    p.add_argument("--window", type=int, default=None, help="rolling KV window in latent frames (default: the run's)")
    p.add_argument("--sink", type=int, default=None, help="sink frames (default: the run's callbacks.eval_sink)")
    p.add_argument("--artifacts", type=Path, default=None, help="artifact store of the FVD feature net (default: the run's)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="config values to change before sampling, e.g. paradigm.guidance_scale=3")
    return p.parse_args(argv)


def apply_settings(cfg: Any, settings: Sequence[str]) -> None:
    """Set each `KEY=VALUE` (VALUE parsed as YAML) in `cfg`; an unknown key is an error."""
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE with a KEY of the run's config")
        OmegaConf.update(cfg, key, yaml.safe_load(value), merge=False)


def main(argv: Sequence[str] | None = None) -> dict[str, float] | None:
    """Evaluate the checkpoint; returns the scalars."""
    from torch.utils.tensorboard import SummaryWriter

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    path = resolve_checkpoint(args.checkpoint)
    ckpt = read_checkpoint(path)
    cfg = OmegaConf.create(ckpt["hyper_parameters"]["config"])
    step = checkpoint_iteration(ckpt)
    del ckpt
    cbs = cfg.callbacks
    window = args.window if args.window is not None else cbs.get("eval_window")
    num_videos = args.num_videos or int(cbs.eval_num_videos)
    callback = StreamingEvaluation(
        every_n_steps=1,
        horizons=args.horizons or list(cbs.eval_horizons),
        num_videos=num_videos,
        window=None if window is None else int(window),
        sink=int(args.sink if args.sink is not None else cbs.eval_sink),
        out_dir=args.out / "eval",
        feature_net_dir=(args.artifacts or Path(cfg.paths.artifacts)) / "eval",
        fps=int(cbs.sample_fps),
        clips=validation_clips(cfg, num_videos),
    )
    module = load_module(path)
    apply_settings(module.cfg, args.set)
    apply_settings(cfg, args.set)
    args.out.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, args.out / "config.yaml")
    writer = SummaryWriter(str(args.out))
    try:
        scalars = callback.evaluate_module(module, step, writer=writer)
        for key, value in (scalars or {}).items():
            writer.add_scalar(key, value, step)
    finally:
        writer.close()
    for key, value in sorted((scalars or {}).items()):
        print(f"{key}\t{value:.4f}")
    return scalars


if __name__ == "__main__":
    main()
