"""The denoising paradigms (teacher, TF, DF) update their EMA after every optimiser step; the base
model's recipe (experiment shapes_base) samples and exports the EMA weights."""

import torch

from lightning_modules.launch import launch
from tests.suite.helpers import compose_run


def test_teacher_ema_follows_the_weights(tmp_path):
    cfg = compose_run(
        "experiment=shapes_base", "debug=fast", f"paths.runs={tmp_path / 'runs'}",
        "paradigm.ema_decay=0.5", "paradigm.ema_start=1", "trainer.fast_dev_run=3", "trainer.max_steps=3",
    )
    trainer = launch(cfg)
    module = trainer.lightning_module
    ema, weights = dict(module.generator_ema.named_parameters()), dict(module.generator.named_parameters())
    head = "head.head.weight"  # zero at init (Wan): an EMA that never moved would still be zero
    assert ema[head].abs().sum() > 0
    assert not torch.equal(ema[head], weights[head])  # a decayed average, not a copy
    assert module.sampling_generator() is module.generator_ema
