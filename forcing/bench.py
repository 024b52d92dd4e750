"""Speed and memory tables: ``python -m forcing.bench <section> [...]`` prints markdown.

Sections register themselves with :func:`section`; each takes the parsed arguments and returns a
markdown string. Only benchmarks time things (tests never do).

    python -m forcing.bench backbone                 # shapes preset, CPU
    python -m forcing.bench backbone --repeats 20 --threads 1
    python -m forcing.bench backbone --device cuda
    python -m forcing.bench generation memory train  # streaming speed, flat memory, training iterations
    python -m forcing.bench --tiny                   # every section on the tiny preset (seconds; tests)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "SECTIONS",
    "BenchWorld",
    "CacheProbe",
    "GenSpec",
    "main",
    "parse_args",
    "stream_alloc",
    "section",
    "time_call",
]

SECTIONS: dict[str, Callable[[argparse.Namespace], str]] = {}
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def section(
    name: str,
) -> Callable[[Callable[[argparse.Namespace], str]], Callable[[argparse.Namespace], str]]:
    """Register a benchmark section under `name` (a function args -> markdown)."""

    def register(fn: Callable[[argparse.Namespace], str]) -> Callable[[argparse.Namespace], str]:
        SECTIONS[name] = fn
        return fn

    return register


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 2
) -> tuple[float, float]:
    """(median, min) wall time of `fn()` in seconds over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} torch threads"
    return f"torch {torch.__version__}, {what}"


# ---------------------------------------------------------------------------------------------- backbone
@section("backbone")
def bench_backbone(args: argparse.Namespace) -> str:
    """Masked block-causal forward over a clip vs cached streaming of the same clip, `shapes` preset."""
    from forcing.models import CausalWanModel

    device = torch.device(args.device)
    frames, fpb, size, text_len = 12, 3, 32, 16
    model = CausalWanModel.from_preset(args.preset).to(device).eval()
    tpf = model.tokens_per_frame(size, size)
    rows = []
    for batch in args.batch:
        rows += _backbone_rows(model, batch, frames, fpb, size, text_len, args.repeats)

    lines = [
        f"### backbone: `{args.preset}` preset, {frames} frames of {size}x{size} ({tpf} tokens/frame), "
        f"{text_len} text tokens, fp32, {args.repeats} timed runs after 2 warm-up runs",
        "",
        f"{_machine(device)}",
        "",
        "| mode | batch | forwards | ms / clip (median) | ms / clip (min) | ms / forward | frames / s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {n} | {b} | {c} | {ms:.1f} | {lo:.1f} | {mf:.1f} | {fps:.0f} |"
        for n, b, c, ms, lo, mf, fps in rows
    ]
    return "\n".join(lines)


def _backbone_rows(
    model: torch.nn.Module, batch: int, frames: int, fpb: int, size: int, text_len: int, repeats: int
) -> list[tuple]:
    """Timings of the three ways to run one clip: (name, batch, forwards, median ms, min ms, ms/forward, fps)."""
    from forcing.models import KVCache

    cfg = model.config
    device = next(model.parameters()).device
    x = torch.randn(batch, cfg.in_dim, frames, size, size, device=device)
    t = torch.full((batch, frames), 500.0, device=device)
    context = torch.randn(batch, text_len, cfg.text_dim, device=device)
    cache = KVCache.for_model(model, batch, frames, model.tokens_per_frame(size, size))

    def bidirectional() -> None:
        model(x, t, context)

    def masked() -> None:
        model(x, t, context, mode="block_causal", frames_per_block=fpb)

    def cached() -> None:
        cache.reset()
        for s in range(0, frames, fpb):
            model(x[:, :, s : s + fpb], t[:, s : s + fpb], context, cache=cache, start_frame=s)

    rows = []
    for name, fn, calls in (
        ("bidirectional (reference)", bidirectional, 1),
        (f"block_causal masked ({frames // fpb} blocks x {fpb} frames, one forward)", masked, 1),
        (f"cached streaming ({frames // fpb} forwards of {fpb} frames)", cached, frames // fpb),
    ):
        with torch.inference_mode():
            sec, best = time_call(fn, device, repeats)
        rows.append((name, batch, calls, sec * 1e3, best * 1e3, sec * 1e3 / calls, batch * frames / sec))
    return rows


# ---------------------------------------------------------------------------------------------- streaming helpers
@dataclass(frozen=True)
class BenchWorld:
    """Random-input world used with a preset: latent frame size, text length, training horizon."""

    preset: str
    height: int
    width: int
    text_len: int
    horizon: int  # training length in latent frames
    model_group: str  # conf/model option used by the `train` section
    overrides: tuple[tuple[str, Any], ...] = ()

    def model(self, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
        """The preset's backbone with random (Wan-initialised) weights, in eval mode."""
        from forcing.models import CausalWanModel

        with torch.device(device):
            model = CausalWanModel.from_preset(self.preset, **dict(self.overrides))
        torch.nn.init.normal_(model.head.head.weight, std=0.02)  # Wan zero-initialises the output head
        return model.to(dtype=dtype).eval()


BENCH_WORLDS: dict[str, BenchWorld] = {
    "tiny": BenchWorld("tiny", 8, 8, 8, 6, "tiny", (("in_dim", 3), ("out_dim", 3))),
    "shapes": BenchWorld("shapes", 32, 32, 24, 12, "shapes"),
}
#: Wan2.1-T2V-1.3B at 832x480, 81 video frames: 21 latent frames of 60x104 (VAE stride 4x8x8), UMT5 512 tokens
WAN_WORLD = BenchWorld("wan2.1-t2v-1.3b", 60, 104, 512, 21, "wan_1_3b")
WAN_VIDEO_FRAMES = 81


def _world(args: argparse.Namespace) -> BenchWorld:
    if args.preset not in BENCH_WORLDS:
        raise SystemExit(
            f"sections generation/memory/train take --preset {sorted(BENCH_WORLDS)}, not {args.preset!r}"
        )
    return BENCH_WORLDS[args.preset]


@dataclass(frozen=True)
class GenSpec:
    """A sampler configuration of the AR generator (what `sampler_settings` returns for a paradigm)."""

    name: str
    frames_per_block: int
    timesteps: tuple[float, ...]
    stochastic: bool
    guidance_scale: float = 1.0

    @property
    def forwards(self) -> str:
        """Forwards per block: denoising steps + the cache-writing forward (CFG: batch doubled)."""
        cfg = ", CFG batch x2" if self.guidance_scale != 1.0 else ""
        return f"{len(self.timesteps)} + 1{cfg}"


def generator_specs(many_steps: int) -> list[GenSpec]:
    """Few-step chunk-wise and frame-wise (Self Forcing: 4 steps) and many-step CFG (TF/DF) samplers."""
    from forcing.diffusion import euler_timesteps, few_step_timesteps

    few = tuple(float(t) for t in few_step_timesteps())
    many = tuple(float(t) for t in euler_timesteps(many_steps)[:-1])
    return [
        GenSpec("few-step chunk-wise (3 frames/block)", 3, few, True),
        GenSpec("few-step frame-wise (1 frame/block)", 1, few, True),
        GenSpec(f"{many_steps}-step Euler chunk-wise, CFG w=4", 3, many, False, 4.0),
    ]


def random_inputs(
    model: torch.nn.Module, world: BenchWorld, frames: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, Any]:
    """Noise [1, C, frames, H, W] and a random text context (no text encoder) with a null context."""
    from forcing.diffusion import Conditioning

    cfg = model.config
    noise = torch.randn(1, cfg.in_dim, frames, world.height, world.width, device=device, dtype=dtype)
    context = torch.randn(1, world.text_len, cfg.text_dim, device=device, dtype=dtype)
    return noise, Conditioning(context=context, null_context=torch.zeros_like(context))


def stream_once(
    model: torch.nn.Module,
    spec: GenSpec,
    noise: torch.Tensor,
    cond: Any,
    decode: Callable[[torch.Tensor], object] | None = None,
    cache_frames: int | None = None,
) -> tuple[float, float]:
    """(first-block latency, total) seconds of one AR stream; `decode` runs on every finished block."""
    from forcing.rollout import generate

    device = noise.device
    first: list[float] = []

    def on_block(index: int, block: torch.Tensor) -> None:
        if decode is not None:
            decode(block)
        if index == 0:
            _sync(device)
            first.append(time.perf_counter() - start)

    _sync(device)
    start = time.perf_counter()
    generate(
        model,
        noise,
        cond,
        frames_per_block=spec.frames_per_block,
        timesteps=spec.timesteps,
        stochastic=spec.stochastic,
        guidance_scale=spec.guidance_scale,
        cache_frames=cache_frames,
        on_block=on_block,
    )
    _sync(device)
    return first[0], time.perf_counter() - start


def time_stream(
    model: torch.nn.Module, spec: GenSpec, noise: torch.Tensor, cond: Any, decode: Any, repeats: int
) -> tuple[float, float, float]:
    """Median first-block latency, median and min total seconds of `repeats` streams after one warm-up."""
    stream_once(model, spec, noise, cond, decode)
    runs = [stream_once(model, spec, noise, cond, decode) for _ in range(repeats)]
    totals = [r[1] for r in runs]
    return statistics.median(r[0] for r in runs), statistics.median(totals), min(totals)


# ---------------------------------------------------------------------------------------------- generation
GEN_HEADER = (
    "| generator | device | dtype | forwards / block (steps + cache write) | decode | latent frames (blocks) "
    "| first-block latency (ms) | total (ms) | total, best run (ms) | latent frames / s |\n"
    "|---|---|---|---|---|---:|---:|---:|---:|---:|"
)


@section("generation")
def bench_generation(args: argparse.Namespace) -> str:
    """Streaming throughput and first-block latency of few-step and many-step AR generators (random weights)."""
    from forcing.encoders import build_codec

    device, world = torch.device(args.device), _world(args)
    model = world.model(device)
    codec = build_codec(kind="identity")
    rows = []
    for spec in generator_specs(args.many_steps):
        noise, cond = random_inputs(model, world, world.horizon, device, torch.float32)
        for decode in (None, lambda block: codec.decode(block).clamp(-1, 1)):
            with torch.inference_mode():
                first, total, best = time_stream(model, spec, noise, cond, decode, args.gen_repeats)
            blocks = world.horizon // spec.frames_per_block
            rows.append(
                f"| {spec.name} | {device.type} | fp32 | {spec.forwards} | {'yes (identity codec)' if decode else 'no'} "
                f"| {world.horizon} ({blocks}) | {first * 1e3:.1f} | {total * 1e3:.1f} | {best * 1e3:.1f} "
                f"| {world.horizon / total:.1f} |"
            )
    lines = [
        f"### generation: `{world.preset}` preset, random weights and random text context, batch 1, "
        f"{world.horizon} latent frames of {world.height}x{world.width} (the training length), full KV cache; "
        f"median of {args.gen_repeats} streams after 1 warm-up; frames / s = latent frames / median total",
        "",
        _machine(device),
        "",
        GEN_HEADER,
        *rows,
    ]
    if device.type == "cuda":
        lines += ["", *_wan_generation(args, device)]
    else:
        lines += [
            "",
            "(Wan2.1-1.3B-size rows need CUDA: `python -m forcing.bench generation --device cuda`.)",
        ]
    return "\n".join(lines)


def _wan_generation(args: argparse.Namespace, device: torch.device) -> list[str]:
    """Wan2.1-1.3B size, bf16, random weights and context, no text encoder and no VAE (decode excluded)."""
    model = WAN_WORLD.model(device, torch.bfloat16)
    noise, cond = random_inputs(model, WAN_WORLD, WAN_WORLD.horizon, device, torch.bfloat16)
    rows = []
    for spec in generator_specs(args.many_steps)[:2]:
        with torch.inference_mode():
            first, total, best = time_stream(model, spec, noise, cond, None, args.gen_repeats)
        blocks = WAN_WORLD.horizon // spec.frames_per_block
        rows.append(
            f"| {spec.name} | {device.type} | bf16 | {spec.forwards} | no (no VAE) | {WAN_WORLD.horizon} ({blocks}) "
            f"| {first * 1e3:.1f} | {total * 1e3:.1f} | {best * 1e3:.1f} | {WAN_WORLD.horizon / total:.2f} "
            f"(= {WAN_VIDEO_FRAMES / total:.1f} video FPS) |"
        )
    return [
        f"### generation at Wan2.1-T2V-1.3B size: 832x480 -> {WAN_WORLD.horizon} latent frames of "
        f"{WAN_WORLD.height}x{WAN_WORLD.width} ({model.tokens_per_frame(WAN_WORLD.height, WAN_WORLD.width)} "
        f"tokens/frame), bf16 parameters, random weights, random {WAN_WORLD.text_len}-token context, batch 1, "
        f"full KV cache; no text encoder, no VAE (video FPS = {WAN_VIDEO_FRAMES} frames / latent generation "
        "time, decode NOT included)",
        "",
        _machine(device),
        "",
        GEN_HEADER,
        *rows,
    ]


# ---------------------------------------------------------------------------------------------- memory
class CacheProbe:
    """Records every KV cache passed to a backbone's forward (`cache=` keyword): the most bytes held."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.peak_bytes = 0
        self.capacity_frames = 0
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        cache = kwargs.get("cache")
        if cache is not None and cache.nbytes() > self.peak_bytes:
            self.peak_bytes, self.capacity_frames = cache.nbytes(), cache.capacity_frames

    def close(self) -> None:
        """Remove the hook."""
        self._handle.remove()


BLOCK_MARK = "forcing.bench.block_done"


def stream_alloc(
    run: Callable[[Callable[[int, torch.Tensor], None]], object], device: torch.device
) -> tuple[int, int]:
    """(peak, per-block peak) bytes allocated while `run(on_block)` streams, above the level before it.

    per-block peak: the largest rise of allocated memory within one block (from one `on_block` call
    to the next: the block's activations and its new latents; the cache already exists).
    CUDA: `torch.cuda` allocator statistics. CPU: the torch profiler's allocation events
    (`profile_memory=True`) summed in time order, blocks delimited by a `record_function` marker
    (tracemalloc does not see torch's allocator).
    """
    if device.type == "cuda":
        return _cuda_stream_alloc(run, device)
    from torch.profiler import ProfilerActivity, profile, record_function

    def mark(index: int, block: torch.Tensor) -> None:
        with record_function(BLOCK_MARK):
            pass

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run(mark)
    # raw allocator events (bytes > 0: allocation, < 0: free) and the markers, in time order;
    # `prof.events()` would build a Python event tree first (100x slower on long streams)
    raw = [e for e in prof.profiler.kineto_results.events() if e.name() in ("[memory]", BLOCK_MARK)]
    level = peak = since_mark = 0
    mark_level, block_peaks = None, []
    for event in sorted(raw, key=lambda e: e.start_ns()):
        if event.name() == BLOCK_MARK:
            if mark_level is not None:
                block_peaks.append(since_mark - mark_level)
            mark_level = since_mark = level
            continue
        if event.device_type() == torch.autograd.DeviceType.CPU:
            level += event.nbytes()
            peak, since_mark = max(peak, level), max(since_mark, level)
    return peak, max(block_peaks, default=0)


def _cuda_stream_alloc(run: Callable[[Callable], object], device: torch.device) -> tuple[int, int]:
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    peaks, block_peaks, mark_level = [], [], None

    def mark(index: int, block: torch.Tensor) -> None:
        nonlocal mark_level
        torch.cuda.synchronize(device)
        top = torch.cuda.max_memory_allocated(device)
        peaks.append(top)
        if mark_level is not None:
            block_peaks.append(top - mark_level)
        mark_level = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)

    run(mark)
    torch.cuda.synchronize(device)
    peaks.append(torch.cuda.max_memory_allocated(device))
    return max(peaks) - base, max(block_peaks, default=0)


@section("memory")
def bench_memory(args: argparse.Namespace) -> str:
    """Rolling-window streams of 1x..20x the training length: cache bytes and per-block memory stay flat."""
    from forcing.rollout import generate

    device, world = torch.device(args.device), _world(args)
    model = world.model(device)
    spec = generator_specs(args.many_steps)[0]
    rows = []
    for multiple in args.multiples:
        frames = multiple * world.horizon
        noise, cond = random_inputs(model, world, frames, device, torch.float32)
        probe = CacheProbe(model)

        def run(on_block: Callable, noise: torch.Tensor = noise, cond: Any = cond) -> None:
            with torch.inference_mode():
                generate(
                    model,
                    noise,
                    cond,
                    frames_per_block=spec.frames_per_block,
                    timesteps=spec.timesteps,
                    stochastic=True,
                    cache_frames=world.horizon,
                    on_block=on_block,
                )

        peak, block_peak = stream_alloc(run, device)
        probe.close()
        out = 2 * noise.nbytes  # finished blocks + their concatenation: the returned video itself
        rows.append(
            f"| {multiple}x | {frames} | {world.horizon} | {probe.capacity_frames} | {_mib(probe.peak_bytes)} "
            f"| {_mib(block_peak)} | {_mib(out)} | {_mib(peak)} |"
        )
    how = "torch.cuda allocator statistics" if device.type == "cuda" else "torch profiler allocation events"
    return "\n".join(
        [
            f"### memory: `{world.preset}` preset, {spec.name}, 4 steps + 1 cache write per block, fp32, batch 1, "
            f"rolling KV window of {world.horizon} frames (the training length), no decode",
            "",
            f"{_machine(device)}; allocations above the input noise, measured with {how}. Per-block peak: the "
            "largest rise of allocated memory within one block (activations + the block's latents). Peak: the "
            "whole stream, which also holds the output latents (finished blocks + their concatenation, 2 x F "
            "frames) that `generate` returns: only they grow with the video.",
            "",
            "| length | latent frames | window | cache capacity (frames) | KV cache (MiB) | per-block peak (MiB) "
            "| output latents (MiB) | peak alloc (MiB) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f}"


# ---------------------------------------------------------------------------------------------- train
def discover_experiments(conf_dir: Path | None = None) -> list[str]:
    """Every experiment of `conf/experiment/*.yaml` (new paradigms appear there over time)."""
    conf_dir = conf_dir or CONF_DIR
    return sorted(p.stem for p in (conf_dir / "experiment").glob("*.yaml"))


def compose_config(*overrides: str) -> Any:
    """The config `python run.py <overrides>` would see (Hydra compose, no run directory)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("run", overrides=list(overrides))


def step_timer(device: torch.device) -> Any:
    """A Lightning callback timing each training iteration (forward, backward, optimiser step): `.times`."""
    import lightning as L

    class StepTimer(L.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._start = 0.0

        def on_train_batch_start(self, *args: Any) -> None:
            _sync(device)
            self._start = time.perf_counter()

        def on_train_batch_end(self, *args: Any) -> None:
            _sync(device)
            self.times.append(time.perf_counter() - self._start)

    return StepTimer()


def time_training(cfg: Any, steps: int, device: torch.device, root: Path) -> tuple[str, list[float]]:
    """(paradigm class, seconds per timed iteration): one epoch of 1 warm-up + `steps` batches, plain Trainer.

    Prerequisites (teacher, initialised generator, ODE pairs) are not prepared: paradigms that fall
    back to random weights without them are timed as such; those that cannot be built raise.
    """
    import lightning as L

    from lightning_modules.launch import paradigm_class

    cls = paradigm_class(cfg)
    cls.validate_config(cfg)
    L.seed_everything(int(cfg.seed), verbose=False)
    timer = step_timer(device)
    trainer = L.Trainer(
        accelerator=cfg.hardware.accelerator,
        devices=1,
        precision=cfg.hardware.precision,
        max_epochs=1,
        max_steps=-1,  # manual-optimisation paradigms count every optimiser's step
        limit_train_batches=1 + steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
        default_root_dir=str(root),
        use_distributed_sampler=False,
    )
    trainer.fit(cls(cfg), datamodule=cls.build_datamodule(cfg))
    if len(timer.times) != 1 + steps:
        raise RuntimeError(f"expected {1 + steps} training iterations, timed {len(timer.times)}")
    return cls.__name__, timer.times[1:]


def iteration_note(p: Any) -> str:
    """What one iteration of a paradigm does when it is not a single loss: stage, critic/generator ratio."""
    if p.get("stage") == "grpo":
        return "GRPO stage: rollouts + reward + clipped policy update"
    if p.get("ratio"):
        ratio = int(p.ratio)
        if ratio == 1:
            return "generator and critic step every iteration"
        return (
            f"critic steps every iteration, generator every {ratio}th (timed in whole cycles: use the mean)"
        )
    return ""


def train_row(name: str, args: argparse.Namespace, device: torch.device, root: Path) -> str:
    """One markdown row: the training iteration time of experiment `name` (raises if it cannot be built)."""
    world = _world(args)
    cfg = compose_config(
        f"experiment={name}",
        f"model={world.model_group}",
        f"hardware={'gpu' if device.type == 'cuda' else 'cpu'}",
        f"world.batch_size={args.train_batch}",
        f"paths.runs={root}/runs",
        "callbacks.samples_every_n_steps=0",
    )
    p = cfg.paradigm
    cycle = int(p.get("ratio") or 1) if p.get("stage") != "grpo" else 1
    steps = -(-args.train_steps // cycle) * cycle  # whole generator/critic cycles, so the mean is fair
    paradigm, times = time_training(cfg, steps, device, root)
    med, mean = statistics.median(times), statistics.fmean(times)
    note = iteration_note(p)
    return (
        f"| {name} | {paradigm} | {p.frames_per_block} | {device.type} | {cfg.hardware.precision} "
        f"| {args.train_batch} x {cfg.world.num_frames} | {len(times)} | {mean * 1e3:.0f} | {med * 1e3:.0f} "
        f"| {min(times) * 1e3:.0f} | {args.train_batch / mean:.2f} | {note} |"
    )


@section("train")
def bench_train(args: argparse.Namespace) -> str:
    """Training iteration time of every experiment's paradigm on the same backbone and batch."""
    import logging
    import tempfile
    import warnings

    import lightning.pytorch  # noqa: F401 - sets its loggers' levels on import; quieten them after

    device, world = torch.device(args.device), _world(args)
    rows, skipped = [], []
    quiet = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in args.experiments or discover_experiments():
                try:
                    rows.append(train_row(name, args, device, Path(tmp)))
                except Exception as err:  # noqa: BLE001 - a module that cannot be built is a note, not a crash
                    reason = (str(err).splitlines() or [""])[0][:200]
                    skipped.append(f"- `{name}`: skipped ({type(err).__name__}: {reason})")
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)
    lines = [
        f"### train: one iteration (forward, backward, optimiser step(s); data loading excluded) per experiment "
        f"of `conf/experiment`, `model={world.model_group}`, batch {args.train_batch}, random weights "
        f"(prerequisites such as teachers are not prepared); {args.train_steps} timed iterations after 1 warm-up "
        "(rounded up to whole generator/critic cycles)",
        "",
        _machine(device),
        "",
        "| experiment | paradigm | frames / block | device | precision | batch x latent frames | iterations "
        "| ms / iteration (mean) | ms (median) | ms (min) | clips / s | notes |",
        "|---|---|---:|---|---|---|---:|---:|---:|---:|---:|---|",
        *rows,
    ]
    if skipped:
        lines += ["", "Not built (noted, not timed):", *skipped]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- cli
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m forcing.bench` (`--tiny`: every section small and fast)."""
    parser = argparse.ArgumentParser(prog="python -m forcing.bench", description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", help=f"one or more of {sorted(SECTIONS)} (default: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--preset", default="shapes", help=f"backbone: any preset; other sections: {sorted(BENCH_WORLDS)}"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--gen-repeats", type=int, default=3, help="timed streams per generation row")
    parser.add_argument("--many-steps", type=int, default=32, help="Euler steps of the many-step generator")
    parser.add_argument(
        "--multiples", type=int, nargs="+", default=[1, 5, 20], help="memory: x training length"
    )
    parser.add_argument("--train-steps", type=int, default=3, help="timed training iterations per experiment")
    parser.add_argument("--train-batch", type=int, default=2, help="clips per training iteration")
    parser.add_argument(
        "--experiments", nargs="+", default=None, help="train: these experiments (default: all)"
    )
    parser.add_argument("--tiny", action="store_true", help="tiny preset, 1 repeat, 1 training step")
    args = parser.parse_args(argv)
    if args.tiny:
        args.preset, args.repeats, args.gen_repeats, args.train_steps, args.batch = "tiny", 1, 1, 1, [1]
        args.many_steps = 8
    unknown = [name for name in args.sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; available: {sorted(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Command line: run the named sections (all when none is named) and print their tables."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name in args.sections or list(SECTIONS):
        print(SECTIONS[name](args), flush=True)
        print()


if __name__ == "__main__":
    main()
