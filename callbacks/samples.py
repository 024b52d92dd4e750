"""Sample videos during training: ground truth | sample for validation prompts (the sample alone for
prompt-only data), to TensorBoard
(`samples/video`, plays in the Images tab's video pane) and as mp4 files in the run directory, named
and logged by training iteration (callbacks/iteration.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from callbacks.iteration import iteration
from forcing.video import for_tensorboard, side_by_side, stack_rows, write_mp4


class SampleVideos(L.Callback):
    """Every `every_n_steps` training iterations and at the end of fitting, sample and log videos (0: never)."""

    def __init__(self, every_n_steps: int, num_samples: int, fps: int, out_dir: str | Path) -> None:
        self.every_n_steps = every_n_steps
        self.num_samples = num_samples
        self.fps = fps
        self.out_dir = Path(out_dir)
        self._last_step = -1

    def _batch(self, trainer: L.Trainer) -> dict[str, Any]:
        """Validation prompts and their ground truth: the batch's video, or its decoded latents (latent
        shards, ODE pairs at Wan scale), or None for prompts only (world.data=prompts)."""
        loader = trainer.datamodule.val_dataloader()
        batch = next(iter(loader))
        n = min(self.num_samples, len(batch["prompt"]))
        video = batch.get("video")
        for key in ("latents", "target"):
            if video is None and key in batch:
                video = trainer.lightning_module.decode_video(batch[key][:n].float().to(trainer.lightning_module.device))
        return {"video": None if video is None else video[:n].cpu(), "prompt": list(batch["prompt"][:n])}

    @torch.no_grad()
    def log_samples(self, trainer: L.Trainer, module: L.LightningModule) -> Path | None:
        """Sample on every rank (sharded networks need all of them), write on rank 0."""
        step = iteration(trainer)
        if step == self._last_step:
            return None
        self._last_step = step
        batch = self._batch(trainer)
        was_training = module.training
        module.eval()
        latents = module.sample(batch["prompt"], num_frames=int(module.cfg.world.num_frames), seed=0)
        module.train(was_training)
        video = module.decode_video(latents).cpu()  # [B, 3, F, H, W]
        if not trainer.is_global_zero:
            return None
        truth = batch["video"]
        grid = stack_rows([side_by_side(gt, gen) for gt, gen in zip(truth, video)] if truth is not None else list(video))
        path = write_mp4(grid, self.out_dir / f"step{step:06d}.mp4", fps=self.fps)
        (self.out_dir / f"step{step:06d}.txt").write_text("\n".join(batch["prompt"]) + "\n")
        logger = trainer.logger
        if logger is not None and hasattr(logger, "experiment") and hasattr(logger.experiment, "add_video"):
            logger.experiment.add_video("samples/video", for_tensorboard(grid), global_step=step, fps=self.fps)
        return path

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:  # noqa: D102
        step = iteration(trainer)
        if self.every_n_steps > 0 and step > 0 and step % self.every_n_steps == 0:
            self.log_samples(trainer, module)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:  # noqa: D102
        if self.every_n_steps > 0:
            self.log_samples(trainer, module)
