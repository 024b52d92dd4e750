"""`python -m lightning_modules.export`: a checkpoint's sampling generator as a weights folder that a
later run starts from (`paradigm.generator_init.path`)."""

from __future__ import annotations

import json

import torch

from forcing.models import CausalWanModel
from lightning_modules.export import main
from lightning_modules.launch import launch, paradigm_class
from lightning_modules.loading import load_module
from tests.suite.helpers import compose_run

SMALL = ["model=tiny", "world.batch_size=2", "world.val_size=2", "world.num_frames=6", "trainer.max_steps=3",
         "callbacks.checkpoint_every_n_steps=3", "callbacks.samples_every_n_steps=0",
         "callbacks.eval_every_n_steps=0", "trainer.val_check_interval=1000", "trainer.enable_progress_bar=false"]  # fmt: skip


def test_export_writes_the_ema_generator_and_a_run_starts_from_it(tmp_path) -> None:
    launch(compose_run("experiment=shapes_teacher", *SMALL, "paradigm.ema_decay=0.5", f"paths.runs={tmp_path}/runs",
                       "name=base"))  # fmt: skip
    run = tmp_path / "runs" / "base"
    main([str(run), str(tmp_path / "base16"), "--dtype", "float16"])
    module = load_module(run)
    ema = module.sampling_generator()
    assert ema is module.generator_ema is not None  # the EMA is what is exported
    assert not all(torch.equal(module.generator.state_dict()[k], v) for k, v in ema.state_dict().items())
    exported = CausalWanModel.from_pretrained(str(tmp_path / "base16"), preset="tiny")
    expected = {k: v.half().float() for k, v in ema.state_dict().items()}
    assert all(torch.equal(exported.state_dict()[k], v) for k, v in expected.items())
    info = json.loads((tmp_path / "base16" / "export.json").read_text())
    assert info["iteration"] == 3 and info["experiment"] == "shapes_teacher"
    # the base's fine-tuning starts from exactly these weights
    tf = compose_run("experiment=teacher_forcing", *SMALL, f"paths.runs={tmp_path}/runs",
                     f"paradigm.generator_init.path={tmp_path / 'base16'}", "train=false")  # fmt: skip
    cls = paradigm_class(tf)
    cls.prepare_prerequisites(tf)
    module = cls(tf)
    module.build_networks()
    assert all(torch.equal(module.generator.state_dict()[k], v) for k, v in expected.items())
