"""Compose the suite's Hydra config in-process and record per-step losses."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def from_scratch(overrides: list[str] | tuple[str, ...]) -> list[str]:
    """`overrides` with `pretrained=none` first unless they name a base: the suite's tests build tiny
    models on the pixel world; the default run's base (`pretrained=shapes_base`) is tested by name."""
    named = any(o.split("=")[0].lstrip("+~") == "pretrained" for o in overrides)
    return list(overrides) if named else ["pretrained=none", *overrides]


def compose_run(*overrides: str) -> DictConfig:
    """The config `python run.py pretrained=none <overrides>` would see (`from_scratch`)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("run", overrides=from_scratch(overrides), return_hydra_config=False)


def free_port() -> int:
    """A free local TCP port (the rendezvous of a `torchrun`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(
    script: str, *args: str, nproc: int = 2, timeout: int = 1200, check: bool = True
) -> subprocess.CompletedProcess:
    """Run `script` (a path under the repository) on `nproc` gloo processes; fail with its stderr unless
    it succeeds (`check=False`: return the finished process, e.g. of a run that is killed on purpose)."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", str(free_port()),
        script, *args,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert not check or proc.returncode == 0, proc.stderr[-4000:]
    return proc


#: experiments of paradigms that learn from data by flow matching (single optimiser)
DENOISING = [e for e in EXPERIMENTS if e.startswith(("shapes_teacher", "teacher_forcing", "diffusion_forcing"))]


def fast_overrides(tmp: Path) -> list[str]:
    """One fast step into tmp (artifacts: the session's store, see tests/conftest.py)."""
    return ["debug=fast", f"paths.runs={tmp / 'runs'}"]


class LossRecorder(L.Callback):
    """Collect `train/loss` of every optimiser step on this rank."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, *args: Any) -> None:  # noqa: D102
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            loss = trainer.callback_metrics.get("train/loss")
        self.losses.append(float(loss))


def tiny_teacher(folder: Path, seed: int = 0, layout: str = "wan") -> Path:
    """A random tiny backbone (`model=tiny` on the shapes world) saved as a weights folder in the
    original Wan or the diffusers `layout`: teacher, real score and critic. Every weight is perturbed
    so that the zero-initialised output head does not make the teacher predict 0 (ODE pairs would be
    the noise itself and the ODE losses exactly 0)."""
    import torch

    from forcing.models import CausalWanModel
    from forcing.models.weights import save_pretrained

    torch.manual_seed(seed)
    model = CausalWanModel.from_preset("tiny", in_dim=3, out_dim=3, text_dim=64, patch_size=(1, 4, 4))
    with torch.no_grad():
        for weight in model.parameters():
            weight.add_(0.02 * torch.randn_like(weight))
    return save_pretrained(model, folder, layout=layout)  # type: ignore[arg-type]


def tiny_config(experiment: str, *overrides: str) -> DictConfig:
    """`experiment` on the tiny backbone with random weights (no teacher or initialisation artifacts)."""
    from omegaconf import open_dict

    cfg = compose_run(f"experiment={experiment}", "model=tiny", *overrides)
    with open_dict(cfg):
        cfg.teacher.path = None
        cfg.paradigm.generator_init.path = None
    return cfg


def tiny_module(cls: type, experiment: str, *overrides: str) -> Any:
    """`experiment`'s module `cls` on the tiny backbone with random weights (no artifacts, no trainer)."""
    module = cls(tiny_config(experiment, *overrides))
    module.configure_model()
    return module


def read_frames(monkeypatch: Any, run: Any) -> dict[int, set[int]]:
    """Cached frames the forwards of each block may attend while `run()` runs, keyed by the block's
    start frame (a spy on `KVCache.plan`)."""
    from forcing.models import KVCache

    seen: dict[int, set[int]] = {}
    plan = KVCache.plan

    def spy(cache: Any, start_frame: int, num_frames: int, local_window: int | None = None) -> Any:
        out = plan(cache, start_frame, num_frames, local_window)
        seen.setdefault(start_frame, set()).update(out.read_frames)
        return out

    monkeypatch.setattr(KVCache, "plan", spy)
    run()
    return seen


def tiny_distill_overrides(tmp: Path, name: str, max_steps: int, teacher: Path, *extra: str) -> list[str]:
    """`experiment=self_forcing_dmd` on the tiny backbone with the weights folder `teacher` (real score
    and critic init; no artifact store), into `tmp/runs/name`: checkpoints every 2 iterations, no samples
    or evaluation, 6 latent frames, a global batch of 2."""
    return [
        "experiment=self_forcing_dmd", "model=tiny", f"paths.runs={tmp / 'runs'}", f"paths.artifacts={tmp / 'artifacts'}",
        f"teacher.path={teacher}", "paradigm.generator_init.experiment=null", f"name={name}",
        f"trainer.max_steps={max_steps}", "trainer.log_every_n_steps=1", "trainer.val_check_interval=1000",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "callbacks.checkpoint_every_n_steps=2",
        "callbacks.samples_every_n_steps=0", "callbacks.eval_every_n_steps=0", "callbacks.eval_at_start=false",
        "world.batch_size=2", "world.val_batch_size=2", "world.val_size=2", "world.num_frames=6", *extra,
    ]  # fmt: skip


def _full(value: Any) -> Any:
    """A tensor's full value (an FSDP2 DTensor gathered), detached on CPU; other values as they are."""
    import torch

    if not isinstance(value, torch.Tensor):
        return value
    value = value.full_tensor() if hasattr(value, "full_tensor") else value
    return value.detach().cpu().clone()


class RestoredState(L.Callback):
    """The module's parameters and each optimiser's state, by parameter name and as full tensors, when
    training starts (after a checkpoint was restored)."""

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:  # noqa: D102
        names = {id(p): name for name, p in module.named_parameters()}
        self.params = {name: _full(p) for name, p in module.named_parameters()}
        self.optimizers = [
            {names[id(p)]: {k: _full(v) for k, v in opt.state[p].items()} for p in opt.state} for opt in trainer.optimizers
        ]
        #: each optimiser's parameter names in its order (what torch's position keys refer to)
        self.orders = [[names[id(p)] for g in opt.param_groups for p in g["params"]] for opt in trainer.optimizers]

    def assert_equals(self, checkpoint: dict[str, Any]) -> None:
        """Every weight of `checkpoint` and every optimiser state (keyed by parameter name or position) restored exactly."""
        import torch

        for name, value in checkpoint["state_dict"].items():
            torch.testing.assert_close(self.params[name], value, rtol=0, atol=0)
        assert all(self.optimizers) and len(self.optimizers) == len(checkpoint["optimizer_states"])
        for state, saved, order in zip(self.optimizers, checkpoint["optimizer_states"], self.orders):
            by_name = {order[k] if isinstance(k, int) else k: v for k, v in saved["state"].items()}
            assert set(state) == set(by_name)
            for name, moments in state.items():
                for key, value in moments.items():
                    torch.testing.assert_close(value, by_name[name][key], rtol=0, atol=0)
