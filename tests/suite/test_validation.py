"""Compose-time validation (`lightning_modules.validation`): every class of bad value is a one-line
`ConfigError` before anything is built or written; run.py reports it with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from forcing.errors import ConfigError
from lightning_modules.launch import validate
from lightning_modules.validation import RANGES, Range, check_group_options
from tests.suite.helpers import EXPERIMENTS, ROOT, compose_run, from_scratch

BAD = [
    # ranges: steps, batch, lr, frames, probabilities, shifts
    ("teacher_forcing", "trainer.max_steps=-5", "trainer.max_steps=-5 must be an integer >= 1"),
    ("teacher_forcing", "trainer.accumulate_grad_batches=0", "must be an integer >= 1"),
    ("teacher_forcing", "world.batch_size=0", "world.batch_size=0 must be an integer >= 1"),
    ("teacher_forcing", "world.num_frames=0", "world.num_frames=0 must be an integer >= 1"),
    ("teacher_forcing", "optim.lr=-1", "optim.lr=-1 must be a number > 0"),
    ("teacher_forcing", "optim.betas=[0.9,1.0]", "must be a number in [0, 1)"),
    ("teacher_forcing", "paradigm.prompt_dropout=1.5", "paradigm.prompt_dropout=1.5 must be a number in [0, 1]"),
    ("teacher_forcing", "paradigm.shift=0", "paradigm.shift=0 must be a number > 0"),
    ("self_forcing_dmd", "objective.shift=-1", "objective.shift=-1 must be a number > 0"),
    ("self_forcing_dmd", "paradigm.ema_decay=1.5", "must be a number in [0, 1] or null"),
    ("self_forcing_dmd", "paradigm.denoising_steps=[1000,0]", "must be a number in (0, 1000]"),
    ("self_forcing_dmd", "objective.min_t=990", "objective.min_t=990 must be below objective.max_t=980"),
    ("teacher_forcing", "trainer.fast_dev_run=-1", "trainer.fast_dev_run=-1 must be true, false or a number"),
    ("teacher_forcing", "trainer.max_steps=abc", "must be an integer >= 1"),
    # shapes: patch x codec stride, frames by the block, the evaluation window
    ("teacher_forcing", "world.height=30", "world.height=30 is not a multiple of 4 (patch 4 of model.preset=shapes"),
    ("teacher_forcing", "world.width=18", "world.width=18 is not a multiple of 4"),
    ("teacher_forcing", "world.num_frames=10", "does not divide into blocks of paradigm.frames_per_block=3"),
    ("teacher_forcing", "+world.codec.spatial_stride=3", "is not a multiple of 12 (patch 4 of model.preset=shapes x spatial stride 3"),
    ("teacher_forcing", "callbacks.eval_every_n_steps=5 callbacks.eval_window=2", "eval_window=2 is smaller than one block"),
    ("teacher_forcing", "hardware=cpu_fsdp2 world.batch_size=3", "world.batch_size=3 (the global batch of an iteration) "
                                                                "is not a multiple of 2 = 2 ranks (hardware) x 1"),
    ("self_forcing_dmd", "trainer.accumulate_grad_batches=3", "world.batch_size=4 (the global batch of an iteration) "
                                                              "is not a multiple of 3 = 1 ranks"),
    # names, with the valid ones listed
    ("teacher_forcing", "model.preset=nope", "model.preset='nope' is not one of: shapes, shapes_base, shapes_latent, tiny"),
    ("teacher_forcing", "objective.name=nope", "objective.name='nope' is not one of: dmd, fm, gan, sid"),
    # the objective's class (objective._target_) and the keywords instantiate will pass it
    ("self_forcing_dmd", "+objective.alpah=2", "objective.alpah is not a setting of forcing.objectives.DMD (it takes: "),
    ("self_forcing_sid", "+objective.r_sigma=0.1", "objective.r_sigma is not a setting of forcing.objectives.SiD"),
    ("self_forcing_dmd", "objective._target_=forcing.objectives.Nope", "objective._target_='forcing.objectives.Nope' "
                                                                       "cannot be imported"),
    ("self_forcing_dmd", "objective._target_=torch.nn.Linear", "objective._target_='torch.nn.Linear' is not a "
                                                               "DistributionMatching objective"),
    ("teacher_forcing", "hardware.strategy=ddp", "hardware.strategy='ddp' is not one of: auto, fsdp2"),
    ("teacher_forcing", "hardware.precision=8-bit", "hardware.precision='8-bit' is not one of"),
    ("teacher_forcing", "hardware.frozen_dtype=int8", "hardware.frozen_dtype='int8' is not one of"),
    # precision: Lightning's bf16-true would make the sharded master weights bf16
    ("teacher_forcing", "hardware=cpu_fsdp2 hardware.precision=bf16-true", "hardware.precision=bf16-true casts the "
                                                                          "master weights, AdamW state and EMA"),
    ("teacher_forcing", "+model.overrides.num_heads=3", "do not make a valid 'shapes' backbone"),
    # paths that must exist
    ("self_forcing_dmd", "teacher.path=/no/such/teacher", "teacher.path=/no/such/teacher does not exist (made by "
                                                          "`python run.py experiment=shapes_teacher`"),
    ("self_forcing_dmd", "paradigm.generator_init.path=/no/init", "paradigm.generator_init.path=/no/init does not exist"),
    ("ode_init", "paradigm.pairs_path=/no/pairs", "paradigm.pairs_path=/no/pairs does not exist"),
    ("self_forcing_dmd", "paradigm.real_score.path=/no/real", "paradigm.real_score.path=/no/real does not exist"),
    ("self_forcing_pp", "paradigm.critic.path=/no/critic", "paradigm.critic.path=/no/critic does not exist"),
    ("teacher_forcing", "model=wan_1_3b model.pretrained=/no/wan", "model.pretrained=/no/wan does not exist"),
]  # fmt: skip


@pytest.mark.parametrize(("experiment", "override", "message"), BAD, ids=[b[1] for b in BAD])
def test_bad_values_are_one_line_config_errors(experiment: str, override: str, message: str) -> None:
    cfg = compose_run(f"experiment={experiment}", *override.split())
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_every_experiment_is_valid_under_every_budget() -> None:
    for experiment in EXPERIMENTS:
        for budget in ("demo", "study"):
            validate(compose_run(f"experiment={experiment}", f"budget={budget}"))


def test_range_table() -> None:
    assert Range(0, 1, open_high=True).contains(0.0) and not Range(0, 1, open_high=True).contains(1.0)
    assert not Range(1, integer=True).contains(2.5) and not Range(1, integer=True).contains(True)
    assert Range(1, integer=True, nullable=True).contains(None) and not Range(1, integer=True).contains(None)
    assert RANGES["optim.lr"].describe() == "a number > 0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hardware=quantum"], "hardware=quantum is not an option of hardware: cpu, cpu_fsdp2, gpu, h100x64, h100x8"),
        (["paradigm=nope"], "paradigm=nope is not an option of paradigm: bidirectional, causal_cd"),
        (["-m", "objective=dmd,nope"], "objective=nope is not an option of objective: dmd, gan, none, sid"),
        (["experiment=nope"], "experiment=nope is not an option of experiment: causal_cd"),
    ],
)
def test_unknown_group_options(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(")):
        check_group_options(args)
    check_group_options(["hardware=cpu", "-m", "objective=dmd,sid", "trainer.max_steps=3", "~debug"])


@pytest.mark.parametrize(
    "args",
    [("experiment=teacher_forcing", "world.height=30"), ("hardware=quantum",),
     ("experiment=teacher_forcing", "hardware=cpu_fsdp2", "optim.lr=-1")],
    ids=["shape", "group option", "range under fsdp2"],
)
def test_cli_refuses_with_exit_2_one_line_and_no_run_dir(tmp_path, args) -> None:
    out = subprocess.run([sys.executable, "run.py", *from_scratch(args), f"paths.runs={tmp_path}/runs",
                          f"paths.artifacts={tmp_path}/artifacts"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert not out.stdout.strip()
    assert not (tmp_path / "runs").exists() and not (tmp_path / "artifacts").exists()
