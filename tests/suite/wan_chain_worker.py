"""The Wan-world chain on 2 gloo ranks (launched by torchrun; tests/suite/test_wan_chain.py reads what it
writes), every stage feeding the next, on the tiny Wan2.1 folder TMPDIR/wan (WAN_ROOT) and the clips of
TMPDIR/videos:

stage `train`: the clips encoded into VAE-latent shards (each rank its share), ODE pairs of the captions
from WAN_ROOT/transformer (each rank its shards; rank 1 is interrupted after its first shard, then both
rerun), an ODE-init run on the pairs (a DCP checkpoint at iteration 2, exported by rank 0), then Self
Forcing DMD from that export on the latent shards: `full` to iteration 3, and `split`, killed
(`os._exit` on every rank) once its iteration-2 checkpoint is complete, so the torchrun fails;
stage `resume`: `split` resumed with `ckpt_path=auto` to iteration 3.

usage: torchrun --nproc_per_node 2 tests/suite/wan_chain_worker.py {train,resume} TMPDIR
Rank r writes what it saw to TMPDIR/out/<stage>.rank<r>.json (`killed.rank<r>.json` just before the kill);
rank 0 writes the Self Forcing generator's initial weights to TMPDIR/out/sf_init.pt and the final state
(parameters and optimiser states, full tensors by name) of `full` and of the resumed `split` to
TMPDIR/out/final.<name>.pt.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import lightning as L  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

import forcing.ode_pairs as ode_pairs  # noqa: E402
from callbacks.iteration import iteration_in_progress  # noqa: E402
from forcing.ema import reshard  # noqa: E402
from lightning_modules.checkpoint_files import checkpoint_problem  # noqa: E402
from lightning_modules.launch import launch  # noqa: E402
from tests.suite.helpers import LossRecorder, RestoredState, compose_run  # noqa: E402
from tests.suite.wan_folders import TINY_WAN  # noqa: E402
from tests.suite.worker_exit import exit_cleanly  # noqa: E402

#: the clips' captions (one clip each) and the ODE pairs' prompts
CAPTIONS = ["a red circle", "a blue square", "a red square on black background", "a blue circle"]
#: pixel frames of a clip: 21 = 1 + 4 x 5 -> 6 latent frames, two blocks of 3
PIXEL_FRAMES = 21
LATENT_FRAMES = 6
#: ODE pairs: 4 shards of 2, so each rank makes 2 (rank 1 is interrupted after its first)
NUM_PAIRS, PAIR_SHARD = 8, 2
#: latent size (F, H, W) of the pairs: 16x16 pixels through the VAE's stride 8
PAIR_LATENT = (LATENT_FRAMES, 2, 2)
#: Self Forcing iterations, the iteration of the checkpoint the killed run leaves, its exit code
ITERATIONS, KILL_AFTER, KILLED = 3, 2, 17


class Preempted(RuntimeError):
    """The simulated interruption of an ODE-pair job."""


class ExitAfterCheckpoint(L.Callback):
    """Kill every rank with `os._exit` (no clean-up, as a preemption) at the start of the iteration after
    `at`, once the checkpoint `ckpt` of iteration `at` is complete; this rank's losses so far go to `out`."""

    def __init__(self, at: int, ckpt: Path, losses: LossRecorder, out: Path) -> None:
        self.at, self.ckpt, self.losses, self.out = at, ckpt, losses, out

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:  # noqa: D102
        if iteration_in_progress(trainer) <= self.at:
            return
        trainer.strategy.barrier("ExitAfterCheckpoint")  # every rank is past the checkpoint's publication
        problem = checkpoint_problem(self.ckpt)
        if problem is not None:
            raise RuntimeError(f"{self.ckpt} {problem} when the run was to be killed")
        self.out.write_text(json.dumps({"split": self.losses.losses}))
        trainer.strategy.barrier("ExitAfterCheckpoint.written")
        os._exit(KILLED)


class FinalState(RestoredState):
    """The module's parameters and each optimiser's state (full tensors, by name) when training ends."""

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:  # noqa: D102
        pass

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:  # noqa: D102
        reshard(module)  # the parameters the optimisers hold (FSDP2 leaves the roots unsharded)
        super().on_train_start(trainer, module)

    def save(self, path: Path) -> None:
        """Write the state (rank 0)."""
        if rank() == 0:
            torch.save({"params": self.params, "optimizers": self.optimizers}, path)


def rank() -> int:
    """This process's rank (torchrun's RANK)."""
    return int(os.environ["RANK"])


def barrier() -> None:
    """Wait for the other rank (the default gloo group, made here if no run made it yet)."""
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()


def counting(owner: Any, name: str, fail_on: int | None = None) -> list[int]:
    """Replace `owner.name` by a wrapper that counts its calls (one entry each in the returned list) and
    raises `Preempted` on call number `fail_on`; `restore` puts the original back."""
    original = getattr(owner, name)
    calls: list[int] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == fail_on:
            raise Preempted(f"{name} interrupted on call {fail_on}")
        return original(*args, **kwargs)

    wrapper.original = original  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)
    return calls


def restore(owner: Any, name: str) -> None:
    """Undo `counting`."""
    setattr(owner, name, getattr(owner, name).original)


def chain_overrides(tmp: Path, experiment: str, name: str, *extra: str) -> list[str]:
    """`experiment` on `world=wan` with the tiny parts on 2 FSDP2 ranks into TMPDIR/runs/<name>: checkpoints
    every 2 iterations, no samples, evaluation or validation, 6 latent frames, a global batch of 2."""
    return [
        f"experiment={experiment}", "world=wan", *TINY_WAN, "hardware=cpu_fsdp2", "teacher=wan", f"name={name}",
        f"paths.runs={tmp / 'runs'}", f"paths.artifacts={tmp / 'artifacts'}", "trainer.log_every_n_steps=1",
        "trainer.val_check_interval=1000", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "callbacks.checkpoint_every_n_steps=2", "callbacks.samples_every_n_steps=0", "callbacks.eval_every_n_steps=0",
        "callbacks.eval_at_start=false", "world.batch_size=2", "world.val_batch_size=1", "world.val_size=2",
        f"world.num_frames={LATENT_FRAMES}", *extra,
    ]  # fmt: skip


def self_forcing(tmp: Path, name: str, *extra: str) -> list[str]:
    """Self Forcing DMD from the exported ODE init on the latent shards, to `ITERATIONS`: generator steps
    (and EMA updates, from the start) at iterations 1 and 3, critic steps at every one."""
    return chain_overrides(
        tmp, "self_forcing_dmd", name, "paradigm.generator_init.experiment=null",
        f"paradigm.generator_init.path={tmp / 'ode_init_weights'}", "world.data=latents",
        f"world.latents={tmp / 'latents'}", f"trainer.max_steps={ITERATIONS}", "paradigm.ratio=2",
        "paradigm.ema_start=0", *extra,
    )  # fmt: skip


def train_losses(overrides: list[str], *callbacks: L.Callback) -> list[float]:
    """Train the run of `overrides`; this rank's losses."""
    recorder = LossRecorder()
    launch(compose_run(*overrides), extra_callbacks=[recorder, *callbacks])
    return recorder.losses


def encode(tmp: Path) -> int:
    """This rank's share of the clips encoded into TMPDIR/latents; the clips it encoded."""
    from forcing.data.encode import encode_videos
    from forcing.encoders import WanVAECodec

    codec = WanVAECodec.from_pretrained(tmp / "wan")
    calls = counting(codec, "encode")
    encode_videos(tmp / "videos", tmp / "latents", codec, num_frames=PIXEL_FRAMES, height=16, width=16,
                  shard_size=1, progress=False)  # fmt: skip
    return len(calls)


def make_pairs(tmp: Path, encoder: torch.nn.Module) -> Path | None:
    """This rank's shards of the captions' ODE pairs in TMPDIR/pairs (rank and world size: torchrun's)."""
    return ode_pairs.make_prompt_pairs(
        tmp / "wan" / "transformer", tmp / "pairs", CAPTIONS, text_encoder=encoder, latent_size=PAIR_LATENT,
        num=NUM_PAIRS, shard_size=PAIR_SHARD, batch_size=PAIR_SHARD, progress=False,
    )  # fmt: skip


def interrupted_pairs(tmp: Path) -> dict[str, Any]:
    """The ODE pairs, rank 1 interrupted after its first shard, then rerun on both ranks: the folder after
    the interruption and the shards this rank generated on the rerun."""
    from forcing.encoders import UMT5TextEncoder

    encoder = UMT5TextEncoder.from_pretrained(tmp / "wan", max_length=8)
    counting(ode_pairs, "generate_ode_pairs", fail_on=2 if rank() == 1 else None)
    try:
        make_pairs(tmp, encoder)
    except Preempted:
        pass
    finally:
        restore(ode_pairs, "generate_ode_pairs")
    barrier()
    left = sorted(p.name for p in (tmp / "pairs").iterdir())
    barrier()
    calls = counting(ode_pairs, "generate_ode_pairs")
    make_pairs(tmp, encoder)
    restore(ode_pairs, "generate_ode_pairs")
    barrier()
    return {"after_interruption": left, "rerun_shards": len(calls)}


def stage_train(tmp: Path) -> dict[str, Any]:
    """Encode, ODE pairs, ODE init and its export, Self Forcing `full`; then `split`, killed."""
    from lightning_modules.export import export

    result: dict[str, Any] = {"encoded": encode(tmp)}
    barrier()
    result.update(interrupted_pairs(tmp))
    ode_init = chain_overrides(
        tmp, "ode_init", "ode_init", f"paradigm.pairs_path={tmp / 'pairs'}",
        f"paradigm.init_from={tmp / 'wan' / 'transformer'}", "trainer.max_steps=2",
    )  # fmt: skip
    result["ode_init"] = train_losses(ode_init)
    if rank() == 0:
        export(tmp / "runs" / "ode_init" / "checkpoints" / "step000002.ckpt", tmp / "ode_init_weights")
    barrier()
    initial, final = RestoredState(), FinalState()  # the parameters when training starts: the initialisation
    result["full"] = train_losses(self_forcing(tmp, "full"), initial, final)
    final.save(tmp / "out" / "final.full.pt")
    if rank() == 0:
        generator = {k: v for k, v in initial.params.items() if k.startswith("generator.")}
        torch.save(generator, tmp / "out" / "sf_init.pt")
    write(tmp, "train", result)
    recorder = LossRecorder()
    ckpt = tmp / "runs" / "split" / "checkpoints" / f"step{KILL_AFTER:06d}.ckpt"
    killer = ExitAfterCheckpoint(KILL_AFTER, ckpt, recorder, tmp / "out" / f"killed.rank{rank()}.json")
    launch(compose_run(*self_forcing(tmp, "split")), extra_callbacks=[recorder, killer])
    raise AssertionError("the split run was not killed")


def write(tmp: Path, stage: str, result: dict[str, Any]) -> None:
    """This rank's results of `stage`."""
    (tmp / "out" / f"{stage}.rank{rank()}.json").write_text(json.dumps(result))


def stage_resume(tmp: Path) -> None:
    """`split` resumed from its newest complete checkpoint to `ITERATIONS`."""
    final = FinalState()
    write(tmp, "resume", {"resumed": train_losses(self_forcing(tmp, "split", "ckpt_path=auto"), final)})
    final.save(tmp / "out" / "final.split.pt")


STAGES: dict[str, Callable[[Path], Any]] = {"train": stage_train, "resume": stage_resume}


def main() -> None:
    stage, tmp = sys.argv[1], Path(sys.argv[2])
    os.environ["WAN_ROOT"] = str(tmp / "wan")
    torch.set_num_threads(1)  # as the test computes its one-process references: the same sums, the same bits
    (tmp / "out").mkdir(exist_ok=True)
    STAGES[stage](tmp)


if __name__ == "__main__":
    main()
    exit_cleanly()
