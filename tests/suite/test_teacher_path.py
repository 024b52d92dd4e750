"""A teacher given by path is the teacher of the whole prerequisite chain (ODE pairs, generator init,
real score, critic init) and part of every artifact's identity; a missing one is an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from forcing.errors import ConfigError
from forcing.ode_pairs import read_manifest
from lightning_modules.artifacts import identity, prerequisite_config, store_dir
from lightning_modules.launch import launch
from tests.suite.helpers import compose_run, fast_overrides, tiny_teacher


def test_given_teacher_reaches_every_prerequisite(tmp_path) -> None:
    given = tmp_path / "teacher"
    given.mkdir()
    sf = compose_run("experiment=self_forcing_dmd", f"teacher.path={given}")
    ode = prerequisite_config(sf, "ode_init")
    assert ode.teacher.path == str(given.resolve()) and ode.artifact_paths == {"shapes_teacher": str(given.resolve())}
    default = prerequisite_config(compose_run("experiment=self_forcing_dmd"), "ode_init")
    assert default.teacher.path is None and identity(ode) != identity(default)
    assert store_dir(ode, "weights") != store_dir(default, "weights")
    # two hops: causal_ode_dmd -> causal_ode_dbi (AR teacher) -> causal_tf_dbi (the bidirectional teacher)
    dmd = compose_run("experiment=causal_ode_dmd", f"teacher.path={given}")
    stage2 = prerequisite_config(dmd, "causal_ode_dbi")
    assert stage2.teacher.experiment == "causal_tf_dbi" and stage2.teacher.path is None  # another teacher
    assert prerequisite_config(stage2, "causal_tf_dbi").teacher.path == str(given.resolve())


def test_missing_teacher_path_is_an_error_before_anything_is_made(tmp_path) -> None:
    cfg = compose_run("experiment=self_forcing_dmd", f"teacher.path={tmp_path / 'nope'}", *fast_overrides(tmp_path),
                      f"paths.fast_dev_run_artifacts={tmp_path / 'store'}")  # fmt: skip
    with pytest.raises(ConfigError, match="teacher.path=.*nope does not exist"):
        launch(cfg)
    assert not (tmp_path / "store").exists() and not (tmp_path / "runs").exists()


def test_the_chain_trains_from_the_given_teacher(tmp_path) -> None:
    """Self Forcing with teacher.path: the ODE init's pairs and weights come from that teacher, and no
    shapes teacher is trained."""
    given = tiny_teacher(tmp_path / "teacher").resolve()
    store = tmp_path / "store"
    cfg = compose_run("experiment=self_forcing_dmd", f"teacher.path={given}", *fast_overrides(tmp_path),
                      f"paths.fast_dev_run_artifacts={store}")  # fmt: skip
    trainer = launch(cfg)
    assert trainer.global_step >= 1
    assert not (store / "shapes_teacher").exists()
    init = Path(cfg.paradigm.generator_init.path)  # <store>/ode_init/weights-<hash>/weights
    assert init.parts[-3] == "ode_init" and init.is_relative_to(store)
    assert OmegaConf.load(init.parent / "config.yaml").teacher.path == str(given)  # the artifact's identity
    ran = OmegaConf.load(init.parent / "run" / "ode_init" / "config.yaml")  # as it trained
    assert ran.paradigm.init_from == str(given)
    assert read_manifest(ran.paradigm.pairs_path)["teacher"]["name"] == str(given)
    assert Path(cfg.teacher.path) == given  # real score and critic
