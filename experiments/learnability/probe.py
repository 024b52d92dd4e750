"""Learnability probe: train the shapes world's bidirectional base with one recipe, without the
Lightning glue, and record quality against CPU minutes (jsonl).

Each row of `experiments/learnability/README.md` is one call of this script. It uses the suite's own
backbone, toy text encoder, renderer and metrics; only the loop is bare, so that many recipes can be
compared in CPU time. The recipe that wins goes into `conf/experiment/shapes_teacher.yaml`, and the
shipped base is trained with the suite's command (`python run.py experiment=shapes_teacher`).

    python -m experiments.learnability.probe --out runs/probe/a --minutes 20 --shift 1 --t-sampling logit_normal
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from forcing.diffusion import Conditioning, Denoiser
from forcing.diffusion.flow import add_noise, sigma_from_t, velocity_target
from forcing.diffusion.schedule import euler_timesteps, shift_t
from forcing.encoders.toy_text import ToyTextEncoder
from forcing.eval import evaluate
from forcing.models import CausalWanModel
from forcing.rollout import euler_sample
from forcing.world import ClipSpec, prompt_for, render

#: (flag, type, default, help) of every probe setting
OPTIONS: tuple[tuple[str, type, object, str], ...] = (
    ("--minutes", float, 20.0, "training wall-clock budget"),
    ("--eval-every", float, 5.0, "minutes between evaluations"),
    ("--threads", int, 1, ""),
    ("--size", int, 32, ""),
    ("--frames", int, 12, ""),
    ("--min-shapes", int, 1, ""),
    ("--max-shapes", int, 3, ""),
    ("--dim", int, 128, ""),
    ("--layers", int, 4, ""),
    ("--heads", int, 4, ""),
    ("--patch", int, 4, ""),
    ("--rope-theta", float, 10000.0, ""),
    ("--batch", int, 4, ""),
    ("--lr", float, 3e-4, ""),
    ("--warmup", int, 50, ""),
    ("--shift", float, 3.0, "training timestep shift"),
    ("--ema", float, 0.0, "EMA decay for sampling (0: none)"),
    ("--dropout", float, 0.1, "prompt dropout (CFG)"),
    ("--sample-steps", int, 32, ""),
    ("--sample-shift", float, 5.0, ""),
    ("--cfg", float, 4.0, ""),
    ("--eval-videos", int, 8, ""),
    ("--seed", int, 0, ""),
)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    for flag, kind, default, text in OPTIONS:
        p.add_argument(flag, type=kind, default=default, help=text or None)
    p.add_argument("--t-sampling", default="uniform", choices=["uniform", "logit_normal"])
    p.add_argument("--codec", default=None, help="shapes codec .safetensors (default: identity, pixels)")
    return p.parse_args()


def clips(seeds: list[int], a: argparse.Namespace) -> tuple[list[ClipSpec], torch.Tensor, list[str]]:
    specs = [ClipSpec.sample(s, max_shapes=a.max_shapes, min_shapes=a.min_shapes) for s in seeds]
    video = torch.stack([render(s, a.frames, a.size, a.size) for s in specs])
    return specs, video, [prompt_for(s) for s in specs]


def draw_t(n: int, a: argparse.Namespace, g: torch.Generator) -> torch.Tensor:
    """One training timestep per clip in (0, 1000)."""
    if a.t_sampling == "logit_normal":  # SD3: sigma = sigmoid(N(0, 1))
        sigma = torch.sigmoid(torch.randn(n, generator=g))
    else:
        sigma = torch.rand(n, generator=g)
    t = sigma * 1000.0
    return shift_t(t, a.shift) if a.shift != 1.0 else t


def build_codec(a: argparse.Namespace) -> torch.nn.Module:
    """The probe's codec: the learned shapes codec or the identity."""
    from forcing.encoders import IdentityCodec
    from forcing.encoders.shapes_codec import ShapesCodec

    return ShapesCodec.from_file(a.codec) if a.codec else IdentityCodec()


def build_model(a: argparse.Namespace, codec: torch.nn.Module) -> CausalWanModel:
    """The probe's backbone: the shapes preset resized by the probe's arguments."""
    return CausalWanModel.from_preset(
        "shapes", dim=a.dim, ffn_dim=4 * a.dim, num_layers=a.layers, num_heads=a.heads,
        patch_size=(1, a.patch, a.patch), rope_theta=a.rope_theta,
        in_dim=codec.latent_channels, out_dim=codec.latent_channels,
    )


@torch.no_grad()
def score(model: CausalWanModel, text: ToyTextEncoder, a: argparse.Namespace, codec: torch.nn.Module) -> dict[str, float]:
    seeds = list(range(a.eval_videos))
    specs, _, prompts = clips(seeds, a)
    cond = Conditioning(text(prompts), text([""] * len(prompts)))
    g = torch.Generator().manual_seed(1234)
    noise = torch.randn(len(seeds), *codec.latent_shape(a.frames, a.size, a.size), generator=g)
    den = Denoiser(model, guidance_scale=a.cfg, mode="bidirectional")
    z = euler_sample(den, noise, cond, euler_timesteps(a.sample_steps, shift=a.sample_shift))
    video = codec.decode(z).clamp(-1, 1)
    out = evaluate(video, specs, horizons=(1,), train_frames=a.frames)["scalars"]
    torch.save(video, Path(a.out) / "samples.pt")
    return {k.removeprefix("eval/").removesuffix("@1x"): v for k, v in out.items()}


def main() -> None:
    a = parse()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "args.json").write_text(json.dumps(vars(a), indent=1))
    codec = build_codec(a)
    model = build_model(a, codec)
    ema = copy.deepcopy(model).requires_grad_(False) if a.ema > 0 else None
    text = ToyTextEncoder(64, 24)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.999), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, a.warmup)))
    g = torch.Generator().manual_seed(a.seed)
    log = (out / "log.jsonl").open("a")
    train_s, step, next_eval, seed = 0.0, 0, a.eval_every, 10**9
    losses: list[float] = []
    buckets: dict[int, list[float]] = {i: [] for i in range(5)}
    while True:
        t0 = time.process_time() if a.threads == 1 else time.time()
        seeds = list(range(seed, seed + a.batch))
        seed += a.batch
        _, video, prompts = clips(seeds, a)
        with torch.no_grad():
            x0 = codec.encode(video)
        prompts = [p if float(torch.rand(1, generator=g)) >= a.dropout else "" for p in prompts]
        ctx = text(prompts)
        t = draw_t(a.batch, a, g)
        eps = torch.randn(x0.shape, generator=g)
        x_t = add_noise(x0, eps, sigma_from_t(t))
        v = model(x_t, t, ctx, mode="bidirectional")
        err = ((v - velocity_target(x0, eps)) ** 2).mean(dim=(1, 2, 3, 4))  # flow-matching MSE per clip
        loss = err.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if ema is not None:
            with torch.no_grad():
                decay = min(a.ema, (1 + step) / (10 + step))  # EMA with warm-up (timm / diffusers style)
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1 - decay)
        step += 1
        train_s += (time.process_time() if a.threads == 1 else time.time()) - t0
        losses.append(float(loss.detach()))
        for ti, e in zip(t.tolist(), err.tolist()):
            buckets[min(4, int(ti // 200))].append(e)
        done = train_s >= a.minutes * 60
        if train_s >= next_eval * 60 or done:
            next_eval += a.eval_every
            scores = score(ema or model, text, a, codec)
            row = {
                "step": step, "cpu_min": round(train_s / 60, 2), "loss": sum(losses) / len(losses),
                "loss_by_t": {f"{200 * i}-{200 * i + 200}": (sum(b) / len(b) if b else None) for i, b in buckets.items()},
                **{k: scores[k] for k in ("stability", "alignment", "count_error", "size_error", "sharpness",
                                          "colour_fidelity", "shape_fidelity", "motion")},
            }
            print(json.dumps(row), flush=True)
            log.write(json.dumps(row) + "\n")
            log.flush()
            losses, buckets = [], {i: [] for i in range(5)}
            torch.save({"model": (ema or model).state_dict(), "args": vars(a), "step": step}, out / "model.pt")
        if done:
            break


if __name__ == "__main__":
    main()
