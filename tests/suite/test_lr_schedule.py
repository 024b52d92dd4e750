"""The denoising paradigms' lr schedule: warm-up, constant or cosine decay, through the module's optimiser."""

import math

import pytest

from forcing.lr_schedule import lr_factor


def test_warmup_then_constant() -> None:
    assert lr_factor(0, 4) == pytest.approx(0.25)
    assert lr_factor(3, 4) == 1.0
    assert lr_factor(10_000, 4) == 1.0


def test_cosine_decay_reaches_min_ratio_and_holds() -> None:
    warmup, decay, floor = 10, 100, 0.1
    assert lr_factor(warmup - 1, warmup, decay, floor) == pytest.approx(1.0)
    midway = lr_factor(warmup - 1 + decay // 2, warmup, decay, floor)
    assert midway == pytest.approx(floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_factor(warmup - 1 + decay, warmup, decay, floor) == pytest.approx(floor)
    assert lr_factor(10 * decay, warmup, decay, floor) == pytest.approx(floor)
    values = [lr_factor(s, warmup, decay, floor) for s in range(warmup, warmup + decay)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_module_scheduler_follows_the_config() -> None:
    from lightning_modules.teacher_forcing import TeacherForcing
    from tests.suite.helpers import tiny_module

    module = tiny_module(TeacherForcing, "teacher_forcing", "optim.lr=1.0", "optim.warmup_steps=2",
                         "optim.decay_steps=4", "optim.min_lr_ratio=0.5")
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.5) and lrs[3] < 1.0
