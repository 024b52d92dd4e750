"""Periodic streaming evaluation: long AR rollouts of validation prompts scored against the shapes
world's ground truth (`forcing.eval.evaluate`), the same keys for every paradigm.

Every `every_n_steps` training iterations (and at the end of fitting) the generator streams
`num_videos` validation prompts for max(horizons) x the training horizon with a rolling KV cache
(`module.stream`). Scalars (`eval/stability@10x`, `eval/drift_brightness@1x`, `eval/fvd@1x`, ...)
go to every logger at the current iteration and to `<out_dir>/metrics.jsonl`; per-frame curves
(error accumulation) go to TensorBoard as a figure, to `<out_dir>/curves.jsonl` and as a PNG; one
long streamed video (ground truth | generated) goes to TensorBoard and to an mp4 in `out_dir`.
A paradigm that cannot stream (the bidirectional teacher) is evaluated at 1x with `module.sample`.
Files and x-axes are numbered by iteration (callbacks/iteration.py). The clips to score are given
(`datamodules.validation_clips` of the run's config): the callback knows no data module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from matplotlib.figure import Figure
from torch import Tensor

from callbacks.iteration import iteration
from forcing.eval import ShapesFeatureNet, evaluate, ground_truth, load_or_train_feature_net
from forcing.video import for_tensorboard, side_by_side, write_mp4
from forcing.world import ClipSpec, prompt_for

#: Curves drawn in the error-accumulation figure: (name, y label, ideal value).
CURVE_PANELS: tuple[tuple[str, str, float], ...] = (
    ("stability", "visual stability (0-100)", 100.0),
    ("drift_brightness", "brightness drift", 0.0),
    ("drift_saturation", "saturation drift", 0.0),
    ("motion", "motion (speed ratio)", 1.0),
    ("count_error", "count error", 0.0),
    ("sharpness", "sharpness (log2 ratio)", 0.0),
)


def stream_length(horizons: Sequence[float], train_frames: int, frames_per_block: int) -> int:
    """Latent frames to stream: max(horizons) x train_frames, rounded up to whole blocks."""
    frames = math.ceil(max(horizons) * train_frames)
    return max(1, math.ceil(frames / frames_per_block)) * frames_per_block


def _finite(value: float) -> float | None:
    """JSON-safe float (NaN and inf -> None)."""
    return value if math.isfinite(value) else None


def curve_figure(curves: dict[str, Tensor], train_frames: int, title: str = "") -> Figure:
    """Error accumulation over frame index: one panel per `CURVE_PANELS` entry, training horizons dotted."""
    panels = [p for p in CURVE_PANELS if p[0] in curves]
    cols = 3
    rows = max(1, math.ceil(len(panels) / cols))
    fig = Figure(figsize=(4 * cols, 2.8 * rows), layout="constrained")
    num_frames = max((len(curves[name]) for name, _, _ in panels), default=0)
    for i, (name, label, ideal) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.plot(torch.as_tensor(curves[name]).float().numpy(), lw=1.2)
        ax.axhline(ideal, color="grey", lw=0.8, ls="--")
        for k in range(train_frames, num_frames, train_frames):
            ax.axvline(k - 0.5, color="grey", lw=0.5, ls=":")
        ax.set_xlabel("frame")
        ax.set_ylabel(label)
    if title:
        fig.suptitle(title)
    return fig


class StreamingEvaluation(L.Callback):
    """Stream, decode and score validation prompts every `every_n_steps` iterations (0: never).

    Args:
        every_n_steps: training iterations between evaluations (also once at the end of fitting).
        horizons: multiples of the training horizon to report ("@kx"); those beyond the generated
            video are skipped.
        num_videos: validation prompts streamed (the first val seeds of the datamodule).
        window: rolling KV window in latent frames (None: the training horizon `world.num_frames`).
        sink: sink frames kept in the cache besides the window.
        out_dir: where metrics.jsonl, curves.jsonl, curve PNGs and mp4s are written (rank 0).
        feature_net_dir: cache directory of the shared FVD feature network (None: no FVD).
        fps: frame rate of the logged video.
        seed: noise seed of the rollouts (fixed, so evaluations of one run are comparable).
        at_start: also evaluate before the first step (the initial generator, e.g. the ODE init).
        clips: the validation clips to stream and score (their prompts and ground truth); none: a
            world without ground truth (evaluation skipped with one warning).
    """

    def __init__(
        self,
        every_n_steps: int,
        horizons: Sequence[float] = (1, 5, 10, 20),
        num_videos: int = 4,
        window: int | None = None,
        sink: int = 0,
        out_dir: str | Path = "eval",
        feature_net_dir: str | Path | None = None,
        fps: int = 8,
        seed: int = 0,
        at_start: bool = False,
        clips: Sequence[ClipSpec] = (),
    ) -> None:
        if not horizons or min(horizons) <= 0:
            raise ValueError(f"eval horizons must be positive, got {list(horizons)}")
        self.every_n_steps = int(every_n_steps)
        self.horizons = [float(h) for h in horizons]
        self.num_videos = int(num_videos)
        self.window = window
        self.sink = int(sink)
        self.out_dir = Path(out_dir)
        self.feature_net_dir = Path(feature_net_dir) if feature_net_dir is not None else None
        self.fps = int(fps)
        self.seed = int(seed)
        self.at_start = bool(at_start)
        self.clips = list(clips)[: self.num_videos]
        self._net: ShapesFeatureNet | None = None
        self.last_scalars: dict[str, float] | None = None  # of the latest evaluation (rank 0): the run's summary
        self._last_step = -1
        self._warned = False

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:  # noqa: D102
        if self.every_n_steps <= 0:
            return
        window = self.window if self.window is not None else int(module.cfg.world.num_frames)
        if module.can_stream:
            fpb = module.sampler_settings().frames_per_block
            if window < fpb:
                raise ValueError(f"callbacks.eval_window={window} is smaller than one block ({fpb} frames)")
        if trainer.is_global_zero:
            self.feature_net()  # train once (cached on disk) before any rank waits on a collective
        trainer.strategy.barrier("eval_feature_net")

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """With `at_start`, score the initial generator of a fresh run (the baseline of the curves)."""
        if self.every_n_steps > 0 and self.at_start and iteration(trainer) == 0:
            self.run(trainer, module)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:  # noqa: D102
        if self.every_n_steps > 0 and iteration(trainer) % self.every_n_steps == 0:
            self.run(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:  # noqa: D102
        if self.every_n_steps > 0:
            self.run(trainer, module)

    # ------------------------------------------------------------------ evaluation
    def feature_net(self) -> ShapesFeatureNet | None:
        """The shared FVD feature network (trained once per artifact store), or None without a cache dir."""
        if self._net is None and self.feature_net_dir is not None:
            self._net = load_or_train_feature_net(self.feature_net_dir)
        return self._net

    def _clips(self) -> list[ClipSpec] | None:
        """The clips to score, or None (warned once) for a world without ground truth."""
        if not self.clips:
            if not self._warned:
                rank_zero_warn("StreamingEvaluation: no validation clips with ground truth (world); skipped")
                self._warned = True
            return None
        return self.clips

    @torch.no_grad()
    def generate(self, module: L.LightningModule, prompts: list[str]) -> tuple[Tensor, str, int]:
        """Decoded videos [B, 3, F, H, W] (CPU), the mode ("stream" | "sample") and latent frames per horizon."""
        train_frames = int(module.cfg.world.num_frames)
        was_training = module.training
        module.eval()
        try:
            if module.can_stream:
                fpb = module.sampler_settings().frames_per_block
                window = self.window if self.window is not None else train_frames
                latents = module.stream(
                    prompts,
                    stream_length(self.horizons, train_frames, fpb),
                    seed=self.seed,
                    cache_frames=int(window) + self.sink,
                    sink_frames=self.sink,
                )
                mode = "stream"
            else:
                latents = module.sample(prompts, train_frames, seed=self.seed)
                mode = "sample"
        finally:
            module.train(was_training)
        video = module.decode_video(latents).float().cpu()
        # training horizon in decoded frames (a temporal codec stride changes the frame count)
        pixel_train_frames = max(1, round(video.shape[2] * train_frames / latents.shape[2]))
        return video, mode, pixel_train_frames

    def run(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, float] | None:
        """Evaluate at the current iteration (once per iteration); every rank generates, rank 0 scores
        and logs. Returns the scalars on rank 0, else None."""
        step = iteration(trainer)
        if step == self._last_step:
            return None
        self._last_step = step
        specs = self._clips()
        if not specs:
            return None
        meta = {"step": step, "optimizer_steps": trainer.global_step}
        scalars = self.score(module, specs, meta, trainer.loggers, _tensorboard(trainer), trainer.is_global_zero)
        self.last_scalars = scalars or self.last_scalars
        trainer.strategy.barrier("eval_done")
        return scalars

    def evaluate_module(self, module: L.LightningModule, step: int, loggers: Sequence[Any] = (),
                        writer: Any = None) -> dict[str, float] | None:
        """Evaluate a module outside training (e.g. a checkpoint: `experiments/evaluate.py`), logged
        at iteration `step` to `loggers`, `writer` (a TensorBoard SummaryWriter) and `out_dir`."""
        specs = self._clips()
        if not specs:
            return None
        return self.score(module, specs, {"step": step, "optimizer_steps": None}, loggers, writer, True)

    def score(self, module: L.LightningModule, specs: Sequence[ClipSpec], meta: dict[str, Any],
              loggers: Sequence[Any], writer: Any, scorer: bool) -> dict[str, float] | None:
        """Generate the videos of `specs`; on the scoring process score them and write everything."""
        video, mode, train_frames = self.generate(module, [prompt_for(s) for s in specs])
        if not scorer:
            return None
        horizons = [k for k in self.horizons if round(k * train_frames) <= video.shape[2]]
        skipped = [k for k in self.horizons if k not in horizons]
        if skipped:
            rank_zero_info(
                f"StreamingEvaluation ({mode}, {video.shape[2]} frames): horizons "
                f"{', '.join(f'{k:g}x' for k in skipped)} skipped"
            )
        result = evaluate(video, specs, horizons, train_frames, feature_net=self.feature_net())
        meta = {**meta, "mode": mode, "frames": int(video.shape[2]), "train_frames": train_frames}
        self._log(loggers, writer, int(meta["step"]), result["scalars"], result["curves"], video, specs, meta)
        return result["scalars"]

    # ------------------------------------------------------------------ output (rank 0)
    def _log(
        self,
        loggers: Sequence[Any],
        writer: Any,
        step: int,
        scalars: dict[str, float],
        curves: dict[str, Tensor],
        video: Tensor,
        specs: Sequence[ClipSpec],
        meta: dict[str, Any],
    ) -> None:
        for logger in loggers:
            logger.log_metrics(scalars, step=step)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({**meta, **{k: _finite(v) for k, v in scalars.items()}}) + "\n")
        curve_lists = {k: [_finite(float(x)) for x in v.tolist()] for k, v in curves.items()}
        with open(self.out_dir / "curves.jsonl", "a") as f:
            f.write(json.dumps({**meta, "curves": curve_lists}) + "\n")
        title = (
            f"step {step}: {meta['mode']}, {meta['frames']} frames (training horizon {meta['train_frames']})"
        )
        fig = curve_figure(curves, meta["train_frames"], title)
        fig.savefig(self.out_dir / f"curves_step{step:06d}.png", dpi=80)
        gt = ground_truth(specs[:1], video.shape[2], video.shape[3], video.shape[4])[0]
        grid = side_by_side(gt, video[0])
        write_mp4(grid, self.out_dir / f"stream_step{step:06d}.mp4", fps=self.fps)
        if writer is not None:
            writer.add_figure("eval/curves", fig, global_step=step)
            writer.add_video("eval/video", for_tensorboard(grid), global_step=step, fps=self.fps)
            if meta["mode"] != "stream":
                writer.add_text("eval/note", "cannot stream: evaluated at 1x with `sample`", global_step=step)
            writer.flush()


def _tensorboard(trainer: L.Trainer) -> Any:
    """The SummaryWriter of the trainer's TensorBoard logger, or None."""
    for logger in trainer.loggers:
        writer = getattr(logger, "experiment", None)
        if hasattr(writer, "add_figure") and hasattr(writer, "add_video"):
            return writer
    return None
