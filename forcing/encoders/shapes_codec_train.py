"""Train the shapes world's autoencoder (`ShapesCodec`) on rendered frames and ship it.

    python -m forcing.encoders.shapes_codec_train --out forcing/assets/shapes_codec.safetensors

Frames come from the training seed stream (never the validation seeds); the loss is L1 + MSE of the
reconstruction, with Gaussian noise (10% of each latent channel's spread) on the latents so that the
decoder tolerates a diffusion model's small latent errors (a common latent-diffusion practice). After
training the latents are normalised per channel to zero mean and unit variance (Wan's VAE does the
same with its latents_mean / latents_std). The reconstruction is scored with the suite's own metrics.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from forcing.encoders.shapes_codec import ShapesAEConfig, ShapesAutoencoder, ShapesCodec, save_shapes_codec
from forcing.world import ClipSpec, render

#: first clip seed of the codec's training frames (disjoint from validation seeds [0, 2**32))
SEED_BASE = 3 * 2**40


def frames_batch(step: int, batch: int, size: int, max_shapes: int, min_shapes: int) -> torch.Tensor:
    """`batch` single frames [batch, 3, H, W] of training clips, at frame offsets 0..59."""
    out = []
    for i in range(batch):
        seed = SEED_BASE + step * batch + i
        spec = ClipSpec.sample(seed, max_shapes=max_shapes, min_shapes=min_shapes)
        out.append(render(spec, 1, size, size, start_frame=seed % 60)[:, 0])
    return torch.stack(out)


def train(
    steps: int = 3000,
    batch: int = 32,
    lr: float = 1e-3,
    size: int = 32,
    max_shapes: int = 3,
    min_shapes: int = 1,
    latent_noise: float = 0.1,
    config: ShapesAEConfig | None = None,
    seed: int = 0,
    log_every: int = 250,
    init: ShapesAutoencoder | None = None,
    first_step: int = 0,
) -> tuple[ShapesAutoencoder, list[dict]]:
    """Train an autoencoder (from `init` when given, on frames from stream step `first_step` on);
    returns it (normalisation set) and its training log."""
    torch.manual_seed(seed)
    ae = init if init is not None else ShapesAutoencoder(config or ShapesAEConfig())
    if init is not None:  # continue on the raw latent scale
        ae.latent_mean.zero_()
        ae.latent_std.fill_(1.0)
    opt = torch.optim.AdamW(ae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    g = torch.Generator().manual_seed(seed)
    log, start, running = [], time.time(), 0.0
    for step in range(steps):
        x = frames_batch(first_step + step, batch, size, max_shapes, min_shapes)
        z = ae.encoder(x)
        spread = z.detach().std(dim=(0, 2, 3), keepdim=True)
        z = z + latent_noise * spread * torch.randn(z.shape, generator=g)
        rec = ae.decoder(z)
        loss = (rec - x).abs().mean() + ((rec - x) ** 2).mean()  # L1 + MSE reconstruction
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running += float(loss.detach())
        if (step + 1) % log_every == 0:
            log.append({"step": step + 1, "loss": running / log_every, "wall_min": round((time.time() - start) / 60, 2)})
            print(json.dumps(log[-1]), flush=True)
            running = 0.0
    normalise(ae, size, max_shapes, min_shapes)
    return ae, log


@torch.no_grad()
def normalise(ae: ShapesAutoencoder, size: int, max_shapes: int, min_shapes: int, frames: int = 2048) -> None:
    """Set the per-channel latent mean / std from `frames` training frames."""
    z = ae.encoder(frames_batch(10**6, frames, size, max_shapes, min_shapes))
    ae.latent_mean.copy_(z.mean(dim=(0, 2, 3)))
    ae.latent_std.copy_(z.std(dim=(0, 2, 3)).clamp_min(1e-4))


@torch.no_grad()
def reconstruction_scores(codec: ShapesCodec, num_videos: int = 16, frames: int = 12, size: int = 32,
                          max_shapes: int = 3) -> dict[str, float]:
    """The suite's metrics (@1x) of decode(encode(ground truth)) on the validation clips."""
    from forcing.eval import evaluate

    specs = [ClipSpec.sample(i, max_shapes=max_shapes) for i in range(num_videos)]
    gt = torch.stack([render(s, frames, size, size) for s in specs])
    rec = codec.decode(codec.encode(gt)).clamp(-1, 1)
    out = evaluate(rec, specs, horizons=(1,), train_frames=frames)["scalars"]
    return {k.removeprefix("eval/").removesuffix("@1x"): v for k, v in out.items()} | {
        "mse": float(((rec - gt) ** 2).mean())
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=48)
    p.add_argument("--latent-channels", type=int, default=16)
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--init", default=None, help="continue training this codec file")
    p.add_argument("--first-step", type=int, default=0, help="frame-stream step to start from (with --init)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    start = time.time()
    cfg = ShapesAEConfig(latent_channels=a.latent_channels, width=a.width, levels=a.levels)
    init = ShapesCodec.from_file(a.init).autoencoder.requires_grad_(True) if a.init else None
    ae, log = train(steps=a.steps, batch=a.batch, lr=a.lr, config=cfg, init=init, first_step=a.first_step)
    scores = reconstruction_scores(ShapesCodec(ae))
    command = "python -m forcing.encoders.shapes_codec_train " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items())
    save_shapes_codec(ae, a.out, {"command": command, "scores": scores, "log": log,
                                  "wall_min": round((time.time() - start) / 60, 2)})
    print(json.dumps({"reconstruction": scores, "wall_min": round((time.time() - start) / 60, 2)}))


if __name__ == "__main__":
    main()
