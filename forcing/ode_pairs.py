"""ODE-initialisation pairs (REFERENCE §2-3): a teacher's probability-flow ODE trajectories on the
student's few-step grid, written as safetensors shards.

Each pair is one clip: the states ``x_t`` of a 48-step shifted (k = 5) Euler run with CFG at grid
indices [0, 12, 24, 36], which are exactly the student's 4-step grid t = 1000, 937.5, 833.3, 625
(checked at generation: the public Self Forcing script used shift 8 and missed that grid), and the
endpoint x0. The initial noise of a clip comes from a generator seeded with the clip's seed, so a
pair depends on its seed only, never on the batch it was generated in.

The teacher is bidirectional by default (Self Forcing / CausVid). ``forward_kwargs`` opens the door
to a causal AR teacher with clean ground-truth context (Causal Forcing stage 2:
``mode="teacher_forcing"``, ``clean_x`` = ground truth); ``context_video`` is stored with the pairs
(key ``context``) as the link to that clean context.

Layout of a pairs folder::

    shard-00000.safetensors   states [n, K, C, F, H, W], target [n, C, F, H, W] (fp32, or bf16 with
                              `dtype`), grid_t [K], seeds [n] int64, (context [n, C, F, H, W]);
                              metadata: prompts (JSON), config (JSON, the generation config)
    manifest.json             generation config (teacher, steps, shift, cfg, grid) + shard list;
                              written last, so a folder without it is unfinished

Two makers share this one writer and reader: `make_shapes_pairs` (shapes-world clips, their prompts
rendered from the seeds) and `make_prompt_pairs` (any teacher, a prompt list: pair i takes prompt
i mod N and seed `pair_seed(base_seed, i)`; sharded over ranks, resumable: `forcing.data.shards`).
The library takes every setting as an argument; the command line, which reads ``conf/world/<world>.yaml``
for its defaults, is :mod:`lightning_modules.ode_pairs`:
``python -m lightning_modules.ode_pairs --teacher <weights folder | .ckpt | DCP directory> --out <folder>
--num 256 [--guidance 4.0] [--frames 12 --height 32 --width 32] [--teacher-dtype bfloat16]``, or at Wan
scale ``--world wan --prompts <file>``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import Tensor, nn

from forcing.data.shards import (
    MANIFEST,
    all_present,
    rank_from_env,
    rank_shards,
    read_folder_manifest,
    read_header,
    save_shard,
    shard_name,
    shard_ranges,
    write_json,
)
from forcing.diffusion import Conditioning, Denoiser, euler_timesteps, few_step_timesteps
from forcing.errors import ConfigError
from forcing.provenance import weights_sha256
from forcing.rollout import euler_sample

FORMAT = "forcing.ode_pairs/1"
#: Indices of the 48-step shift-5 Euler grid that are the student's 4-step grid.
GRID_INDICES = (0, 12, 24, 36)
#: Seeds of shapes-world pair clips start here: far above the validation seeds [0, 2^32) and the
#: training streams of datamodules/shapes.py ([2^32, 2^32 + 2^62)).
PAIR_SEED_BASE = 2**62
#: Distance between the pair seeds of two base seeds.
PAIR_SEED_STRIDE = 2**40
#: The command that makes a pairs folder (quoted in error messages).
COMMAND = (
    "python -m lightning_modules.ode_pairs --teacher <teacher weights folder, .ckpt or DCP directory> --out <folder>"
    " --num 256"
    " (Wan scale: --world wan --prompts <file>)"
)


class GridMismatchError(ConfigError):
    """Stored ODE states that do not lie on the student's few-step grid."""


def check_student_grid(
    grid_t: Tensor | Sequence[float], student: Tensor | None = None, where: str = ""
) -> None:
    """Raise `GridMismatchError` unless `grid_t` equals the student's grid (default `few_step_timesteps()`)."""
    student = few_step_timesteps() if student is None else student.float().cpu()
    grid = torch.as_tensor(grid_t, dtype=torch.float32).cpu()
    if grid.shape != student.shape or not torch.allclose(grid, student, rtol=0.0, atol=1e-3):
        raise GridMismatchError(
            f"{where}ODE states at t={[round(float(t), 2) for t in grid]} do not lie on the student's grid "
            f"t={[round(float(t), 2) for t in student]} (a 48-step Euler grid needs shift 5 and indices "
            f"{list(GRID_INDICES)}; the public Self Forcing script's shift 8 misses it)"
        )


def pair_seed(base_seed: int, index: int) -> int:
    """Clip seed of pair `index` for the run seed `base_seed` (disjoint from validation seeds)."""
    if not 0 <= base_seed < 2**22 or not 0 <= index < PAIR_SEED_STRIDE:
        raise ValueError(f"need 0 <= base_seed < 2^22 and 0 <= index < 2^40, got {base_seed}, {index}")
    return PAIR_SEED_BASE + base_seed * PAIR_SEED_STRIDE + index


def clip_noise(seed: int, shape: Sequence[int]) -> Tensor:
    """Initial noise of a clip: N(0, I) of `shape` from a CPU generator seeded with the clip seed."""
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(int(seed)))


def model_fingerprint(model: nn.Module) -> str:
    """The first 16 hex digits of the model's `forcing.provenance.weights_sha256`."""
    return weights_sha256(model)[:16]


def dtype_name(dtype: torch.dtype | str) -> str:
    """A dtype as the configs record it: "float32", "bfloat16"."""
    return str(dtype).removeprefix("torch.")


def _plain(value: Any) -> Any:
    """A JSON-friendly description of a forward kwarg (tensors by shape)."""
    if isinstance(value, Tensor):
        return f"tensor{list(value.shape)}"
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


# ---------------------------------------------------------------------------------------------- generation
def pairs_config(
    teacher_name: str | None,
    fingerprint: str,
    *,
    num_steps: int,
    shift: float,
    guidance_scale: float,
    grid_indices: Sequence[int],
    latent_shape: Sequence[int],
    forward_kwargs: Mapping[str, Any],
    teacher_dtype: torch.dtype | str = torch.float32,
) -> dict[str, Any]:
    """The generation config of pairs (the manifest's): teacher, the dtype it computed in, ODE grid,
    CFG, shapes, attention."""
    grid_t = euler_timesteps(num_steps, shift)[list(grid_indices)]
    return {
        "teacher": {"name": teacher_name, "sha256": fingerprint},
        "teacher_dtype": dtype_name(teacher_dtype),
        "num_steps": int(num_steps),
        "shift": float(shift),
        "guidance_scale": float(guidance_scale),
        "cfg_convention": "v_uncond + w (v_cond - v_uncond)",
        "grid_indices": [int(i) for i in grid_indices],
        "grid_t": grid_t.tolist(),
        "latent_shape": [int(s) for s in latent_shape],
        "forward_kwargs": {k: _plain(v) for k, v in forward_kwargs.items()},
    }


@torch.no_grad()
def generate_ode_pairs(
    teacher: nn.Module,
    text_encoder: nn.Module,
    prompts: list[str],
    seeds: list[int],
    latent_shape: Sequence[int],
    *,
    num_steps: int = 48,
    shift: float = 5.0,
    guidance_scale: float,
    grid_indices: Sequence[int] = GRID_INDICES,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    forward_kwargs: dict[str, Any] | None = None,
    context_video: Tensor | None = None,
    teacher_name: str | None = None,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    """Run the teacher's shifted Euler ODE with CFG from each clip's seeded noise; keep the grid states.

    Returns {"states": [N, K, C, F, H, W], "target": [N, C, F, H, W] (the endpoint x0),
    "grid_t": [K], "seeds": int64 [N], "prompts": list[str], "config": the generation config,
    and "context": `context_video` when given}. `forward_kwargs` go to every teacher call (default
    full attention); tensors in it with N rows are per-clip and sliced per batch. With
    `mode="teacher_forcing"` and no `clean_x`, `context_video` is the clean context. Raises
    `GridMismatchError` when the grid points are not the student's grid (before any forward).
    `fingerprint`: the teacher's `model_fingerprint` when the caller has it (hashing a 14B teacher per
    call is slow; a caller that cast the teacher passes the hash of its stored weights). The teacher
    computes in the dtype of its weights (recorded as `teacher_dtype`); the Euler steps and the
    returned states are fp32.
    """
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts for {len(seeds)} seeds")
    grid = euler_timesteps(num_steps, shift)
    grid_t = grid[list(grid_indices)]
    check_student_grid(
        grid_t, where=f"{num_steps}-step shift-{shift} Euler grid at indices {list(grid_indices)}: "
    )
    n = len(seeds)
    kwargs = {"mode": "bidirectional", **(forward_kwargs or {})}
    if context_video is not None and kwargs["mode"] == "teacher_forcing":
        kwargs.setdefault("clean_x", context_video)
    per_clip = {k: v for k, v in kwargs.items() if isinstance(v, Tensor) and v.dim() > 0 and v.shape[0] == n}
    static = {k: v for k, v in kwargs.items() if k not in per_clip}
    denoiser = Denoiser(teacher, guidance_scale=guidance_scale, **static)
    states, targets = [], []
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        noise = torch.stack([clip_noise(s, latent_shape) for s in seeds[lo:hi]]).to(device)
        cond = Conditioning(
            context=text_encoder(list(prompts[lo:hi])).to(device),
            null_context=text_encoder([""] * (hi - lo)).to(device),
        )
        batch_kwargs = {k: v[lo:hi].to(device) for k, v in per_clip.items()}
        x0, kept = euler_sample(denoiser, noise, cond, grid, return_indices=grid_indices, **batch_kwargs)
        states.append(torch.stack(kept, dim=1).float().cpu())
        targets.append(x0.float().cpu())
    config = pairs_config(
        teacher_name, fingerprint or model_fingerprint(teacher), num_steps=num_steps, shift=shift,
        guidance_scale=guidance_scale, grid_indices=grid_indices, latent_shape=latent_shape, forward_kwargs=kwargs,
        teacher_dtype=next(teacher.parameters()).dtype,
    )  # fmt: skip
    pairs: dict[str, Any] = {
        "states": torch.cat(states),
        "target": torch.cat(targets),
        "grid_t": grid_t.float(),
        "seeds": torch.tensor([int(s) for s in seeds], dtype=torch.int64),
        "prompts": list(prompts),
        "config": config,
    }
    if context_video is not None:
        pairs["context"] = context_video.float().cpu()
    return pairs


# ---------------------------------------------------------------------------------------------- shards
#: the per-pair tensors of a shard (storage dtype applies to the float ones)
PAIR_TENSORS = ("states", "target", "context")


def write_shard(
    pairs: dict[str, Any], folder: str | Path, index: int, dtype: torch.dtype | None = None
) -> dict[str, Any]:
    """Write one shard of `pairs` (all of its rows; atomically, `forcing.data.shards.save_shard`), the
    pair tensors in `dtype` (None: as given, fp32); returns its manifest entry."""
    tensors = {k: pairs[k] for k in (*PAIR_TENSORS, "grid_t", "seeds") if k in pairs}
    if dtype is not None:
        tensors.update({k: tensors[k].to(dtype) for k in PAIR_TENSORS if k in tensors})
    metadata = {"format": FORMAT, "prompts": json.dumps(pairs["prompts"])}
    if "config" in pairs:
        metadata["config"] = json.dumps(pairs["config"])
    name = shard_name(index)
    save_shard(tensors, Path(folder) / name, metadata)
    return {"file": name, "num": int(pairs["seeds"].shape[0])}


def write_manifest(folder: str | Path, config: dict[str, Any], shards: list[dict[str, Any]]) -> Path:
    """Write manifest.json (last: it marks the folder finished)."""
    manifest = {"format": FORMAT, **config, "num_pairs": sum(s["num"] for s in shards), "shards": shards}
    return write_json(Path(folder) / MANIFEST, manifest)


def finish_manifest(folder: str | Path, num_shards: int, config: dict[str, Any]) -> Path | None:
    """Write manifest.json when all `num_shards` shards exist (whichever rank sees it first; the ranks
    write the same file), else None; the shards' row counts come from their headers."""
    if not all_present(folder, num_shards):
        return None
    entries = [{"file": shard_name(i), "num": read_header(Path(folder) / shard_name(i), "seeds")[0]}
               for i in range(num_shards)]  # fmt: skip
    return write_manifest(folder, config, entries)


def _rows(pairs: dict[str, Any], lo: int, hi: int) -> dict[str, Any]:
    out = {k: v[lo:hi] for k, v in pairs.items() if k in ("states", "target", "seeds", "context", "prompts")}
    return {**out, "grid_t": pairs["grid_t"]}


def write_shards(pairs: dict[str, Any], folder: str | Path, shard_size: int = 256) -> Path:
    """Write `pairs` (as returned by `generate_ode_pairs`) as shards of `shard_size` plus manifest.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = int(pairs["seeds"].shape[0])
    entries = [
        write_shard(_rows(pairs, lo, lo + shard_size), folder, i)
        for i, lo in enumerate(range(0, n, shard_size))
    ]
    return write_manifest(folder, pairs.get("config", {}), entries)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a finished pairs folder; `ConfigError` naming the command when there is none."""
    return read_folder_manifest(folder, "ODE pairs", FORMAT, "shards", COMMAND)


def read_shards(folder: str | Path) -> dict[str, Any]:
    """All pairs of a folder in memory, shards in order (the inverse of `write_shards`)."""
    manifest = read_manifest(folder)
    parts: list[dict[str, Any]] = []
    for entry in manifest["shards"]:
        with safe_open(str(Path(folder) / entry["file"]), framework="pt") as f:
            part = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
            part["prompts"] = json.loads(f.metadata()["prompts"])
        parts.append(part)
    pairs: dict[str, Any] = {
        k: torch.cat([p[k] for p in parts]) for k in parts[0] if k not in ("grid_t", "prompts")
    }
    pairs["grid_t"] = parts[0]["grid_t"]
    pairs["prompts"] = [prompt for p in parts for prompt in p["prompts"]]
    pairs["config"] = {k: v for k, v in manifest.items() if k not in ("format", "shards", "num_pairs")}
    return pairs


# ---------------------------------------------------------------------------------------------- shapes world
def load_teacher(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """A frozen teacher from a weights folder (`save_pretrained`) or a checkpoint of this suite: a
    Lightning `.ckpt` file or the DCP directory of an FSDP2 run (consolidated in memory), read by
    `forcing.checkpoints.read_checkpoint_dict` (trusted files only: unpickled).

    Returns (model, run config or {}): a checkpoint carries the resolved run config (model preset,
    world), used for the text encoder and the clip size; its sampling generator is loaded (the EMA
    when it has one, else the generator).
    """
    from forcing.checkpoints import is_dcp_checkpoint, read_checkpoint_dict
    from forcing.models import CausalWanModel
    from forcing.models.weights import load_state_dict_strict

    path = Path(path)
    if (path.is_file() and path.suffix == ".ckpt") or is_dcp_checkpoint(path):
        ckpt = read_checkpoint_dict(path)
        run_cfg = (ckpt.get("hyper_parameters") or {}).get("config") or {}
        if "model" not in run_cfg:
            raise ConfigError(f"{path} holds no run config (hyper_parameters.config): pass a weights folder")
        model = CausalWanModel.from_preset(
            run_cfg["model"]["preset"], **(run_cfg["model"].get("overrides") or {})
        )
        load_state_dict_strict(model, ckpt["state_dict"])  # generator_ema when present, else generator
    else:
        model, run_cfg = CausalWanModel.from_pretrained(str(path)), {}
    return model.requires_grad_(False).eval(), run_cfg


def shapes_clips(num: int, base_seed: int = 0, max_shapes: int = 3) -> tuple[list[str], list[int]]:
    """Prompts and seeds of `num` shapes-world clips for pairs (seeds from `pair_seed`)."""
    from forcing.world import ClipSpec, prompt_for

    seeds = [pair_seed(base_seed, i) for i in range(num)]
    return [prompt_for(ClipSpec.sample(s, max_shapes=max_shapes)) for s in seeds], seeds


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)


def render_clips(seeds: Sequence[int], num_frames: int, height: int, width: int, max_shapes: int) -> Tensor:
    """Ground-truth shapes-world clips of `seeds` (the clips their prompts describe): [N, 3, F, H, W]."""
    from forcing.world import ClipSpec, render

    return torch.stack(
        [render(ClipSpec.sample(int(s), max_shapes=max_shapes), num_frames, height, width) for s in seeds]
    )


def make_shapes_pairs(
    teacher_path: str | Path,
    out: str | Path,
    num: int,
    *,
    world: Mapping[str, Any],
    guidance_scale: float = 4.0,
    num_frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    max_shapes: int | None = None,
    base_seed: int = 0,
    batch_size: int = 8,
    shard_size: int = 256,
    device: torch.device | str = "cpu",
    text_encoder: dict[str, Any] | None = None,
    forward_kwargs: dict[str, Any] | None = None,
    context: Tensor | str | None = None,
    teacher_dtype: torch.dtype = torch.float32,
) -> Path:
    """Generate `num` shapes-world pairs from a teacher and write them to `out`, shard by shard.

    `world`: the shapes world's settings (the keys of conf/world/shapes.yaml: num_frames, height,
    width, max_shapes, text_encoder, codec), read by the caller; a Lightning checkpoint's own run
    config overrides them, and the explicit arguments override both. Returns the manifest path.
    Teacher-forcing pairs (Causal Forcing's causal ODE): `forward_kwargs` of the teacher's mode and
    a clean `context`: "ground_truth" (each seed's rendered clip, encoded) or latents
    [num, C, F, H, W] (e.g. the D_Bi sample of each seed). `teacher_dtype`: the teacher's compute dtype
    (bf16 halves its memory; the pairs stay fp32). (Also the artifact store's maker of ODE pairs.)
    """
    from forcing.encoders import build_codec, build_text_encoder

    teacher, run_cfg = load_teacher(teacher_path)
    world = {**world, **(run_cfg.get("world") or {})}
    frames, h, w = num_frames or world["num_frames"], height or world["height"], width or world["width"]
    shapes = max_shapes or world["max_shapes"]
    encoder = build_text_encoder(text_encoder or world["text_encoder"])
    fingerprint = model_fingerprint(teacher)  # of the stored weights, whatever the compute dtype
    teacher = teacher.to(device, teacher_dtype)
    prompts, seeds = shapes_clips(num, base_seed, shapes)
    codec_cfg = dict(world.get("codec") or {"kind": "identity"})
    codec = build_codec(codec_cfg)
    latent_shape = codec.latent_shape(frames, h, w)  # (C, F, H / stride, W / stride); identity: the pixels
    if latent_shape[0] != teacher.config.in_dim:
        raise ValueError(f"codec gives {latent_shape[0]} latent channels, the teacher takes {teacher.config.in_dim}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    entries, config = [], {}
    for index, (lo, hi) in enumerate(_chunks(num, shard_size)):
        clean = None
        if isinstance(context, str):  # the ground-truth clean context, in latent space
            with torch.no_grad():
                clean = codec.encode(render_clips(seeds[lo:hi], frames, h, w, shapes))
        elif context is not None:
            clean = context[lo:hi].float()
        pairs = generate_ode_pairs(
            teacher, encoder, prompts[lo:hi], seeds[lo:hi], latent_shape,
            guidance_scale=guidance_scale, batch_size=batch_size, device=device, teacher_name=str(teacher_path),
            forward_kwargs=forward_kwargs, context_video=clean, fingerprint=fingerprint,
        )  # fmt: skip
        entries.append(write_shard(pairs, folder, index))
        config = pairs["config"]
    config = {**config, "world": "shapes", "codec": codec_cfg.get("kind", "identity"), "base_seed": base_seed}
    return write_manifest(folder, config, entries)


# ---------------------------------------------------------------------------------------------- prompt lists
#: Config keys that name where things were, not what was made: not compared when resuming.
LOCATIONS = ("prompts_file",)


def prompt_pair_plan(prompts: Sequence[str], num: int | None = None, base_seed: int = 0) -> tuple[list[str], list[int]]:
    """Prompts and seeds of the pairs of a prompt list: pair i takes prompt i mod N and seed
    `pair_seed(base_seed, i)`; `num` defaults to one pair per prompt."""
    if not prompts:
        raise ConfigError("the prompt list is empty")
    num = len(prompts) if num is None else num
    return [prompts[i % len(prompts)] for i in range(num)], [pair_seed(base_seed, i) for i in range(num)]


def _settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a pairs config made (the teacher's weights, not its path; no file locations; shards
    written before the teacher's dtype was recorded were made in fp32)."""
    out = {"teacher_dtype": "float32", **{k: v for k, v in config.items() if k not in LOCATIONS}}
    if isinstance(out.get("teacher"), dict):
        out["teacher"] = {k: v for k, v in out["teacher"].items() if k != "name"}
    return out


def _shard_settings(path: Path) -> dict[str, Any] | None:
    meta = read_header(path, "seeds")[1]
    return _settings(json.loads(meta["config"])) if "config" in meta else None


@torch.no_grad()
def make_prompt_pairs(
    teacher_path: str | Path,
    out: str | Path,
    prompts: Sequence[str],
    *,
    text_encoder: nn.Module,
    latent_size: Sequence[int],
    num: int | None = None,
    guidance_scale: float = 4.0,
    base_seed: int = 0,
    batch_size: int = 8,
    shard_size: int = 64,
    dtype: torch.dtype | None = None,
    teacher_dtype: torch.dtype = torch.float32,
    rank: int | None = None,
    world_size: int | None = None,
    device: torch.device | str = "cpu",
    world: str = "wan",
    prompts_file: str | None = None,
    progress: bool = True,
) -> Path | None:
    """Generate this rank's shards of the pairs of a prompt list (any teacher, any world) into `out`.

    Pairs follow `prompt_pair_plan`; shard i holds pairs [i * shard_size, (i + 1) * shard_size) and rank
    r of W (default: torchrun's RANK / WORLD_SIZE) makes shards r, r + W, ... Existing shards are
    skipped after checking they were made with the same settings (teacher weights, prompts, seeds,
    grid, shapes, dtypes), so a rerun resumes and gives what an uninterrupted run gives. `text_encoder`:
    the world's (UMT5 at Wan scale) or pre-computed embeddings (`forcing.encoders.precomputed_text`);
    `latent_size` (F, H, W) in latent frames and pixels (the channels are the teacher's); `dtype`:
    storage dtype of the pair tensors (bf16 halves the folder); `teacher_dtype`: the teacher's compute
    dtype (bf16 halves its memory and speeds it up; the Euler steps stay fp32).
    Returns the manifest path when this call finished the folder (every shard present), else None.
    """
    from tqdm.auto import tqdm

    env_rank, env_world = rank_from_env()
    rank = env_rank if rank is None else rank
    world_size = env_world if world_size is None else world_size
    teacher, _ = load_teacher(teacher_path)
    latent_shape = [teacher.config.in_dim, *(int(n) for n in latent_size)]  # [C, F, H, W]
    pair_prompts, seeds = prompt_pair_plan(list(prompts), num, base_seed)
    fingerprint = model_fingerprint(teacher)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    ranges = shard_ranges(len(seeds), shard_size)
    digest = hashlib.sha256(json.dumps(list(prompts)).encode()).hexdigest()[:16]
    extra = {"world": world, "prompts_sha256": digest, "prompts_file": prompts_file, "base_seed": int(base_seed),
             "shard_size": int(shard_size), "storage_dtype": dtype_name(dtype or torch.float32)}  # fmt: skip
    grid = pairs_config(str(teacher_path), fingerprint, num_steps=48, shift=5.0, guidance_scale=guidance_scale,
                        grid_indices=GRID_INDICES, latent_shape=latent_shape, forward_kwargs={"mode": "bidirectional"},
                        teacher_dtype=teacher_dtype)  # fmt: skip
    config = {**grid, **extra}
    todo = []
    for i in rank_shards(len(ranges), rank, world_size):
        path = folder / shard_name(i)
        if not path.is_file():
            todo.append(i)
        elif _shard_settings(path) != _settings(config):
            raise ConfigError(f"{path} holds pairs made with other settings: use another --out or delete it")
    teacher = teacher.to(device, teacher_dtype)
    for i in tqdm(todo, desc=f"ODE pairs rank {rank}/{world_size}", position=rank, disable=not progress):
        lo, hi = ranges[i]
        pairs = generate_ode_pairs(
            teacher, text_encoder, pair_prompts[lo:hi], seeds[lo:hi], latent_shape, guidance_scale=guidance_scale,
            batch_size=batch_size, device=device, teacher_name=str(teacher_path), fingerprint=fingerprint,
        )  # fmt: skip
        write_shard({**pairs, "config": config}, folder, i, dtype)
    return finish_manifest(folder, len(ranges), config)
