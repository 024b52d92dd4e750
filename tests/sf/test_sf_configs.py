"""Self Forcing experiments against REFERENCE §3: optimisers per objective, the §3.4 training
window, and Table 2's TF+DMD / DF+DMD rows differing from Self Forcing only in the context."""

from __future__ import annotations

from typing import Any

import pytest
from omegaconf import OmegaConf

from forcing.errors import ConfigError
from lightning_modules.self_forcing import SelfForcing, train_window_frames
from tests.suite.helpers import EXPERIMENTS, compose_run

#: experiments of the Self Forcing module (SF++ and Causal Forcing rows are tested with their paradigms)
SF = [e for e in EXPERIMENTS if e.startswith(("self_forcing_dmd", "self_forcing_sid", "self_forcing_gan",
                                              "tf_dmd", "df_dmd"))]
BUDGETS = ("demo", "study")
NAMING = {"experiment_name", "name"}


def flat(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """The resolved config as {dotted key: leaf value}."""
    node = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
    out: dict[str, Any] = {}
    for k, v in node.items():
        key = f"{prefix}{k}"
        out.update(flat(v, f"{key}.") if isinstance(v, dict) and v else {key: v})
    return out


def differing(a: str, b: str, budget: str) -> set[str]:
    """Dotted keys whose resolved values differ between experiments a and b under `budget`."""
    fa, fb = (flat(compose_run(f"experiment={e}", f"budget={budget}")) for e in (a, b))
    return {k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)}


def test_sf_experiments_exist() -> None:
    expected = {"self_forcing_dmd", "self_forcing_dmd_framewise", "self_forcing_sid", "self_forcing_sid_framewise",
                "self_forcing_gan", "self_forcing_gan_framewise", "tf_dmd", "tf_dmd_framewise", "df_dmd",
                "df_dmd_framewise", "self_forcing_dmd_no_window", "self_forcing_dmd_tf_init"}
    assert expected == set(SF)
    assert "sf_ode_dmd" not in EXPERIMENTS  # was self_forcing_dmd under another name


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("experiment", SF)
def test_optimiser_follows_the_papers_recipe(experiment: str, budget: str) -> None:
    """REFERENCE §3. DMD: AdamW betas (0, 0.999), weight decay 0.01, critic lr / generator lr = 0.2
    (2e-6 / 4e-7, ratio kept when the lrs are scaled), clip 10, ratio 1:5. SiD: Adam without weight
    decay, equal lrs. GAN: the DMD optimiser (REFERENCE gives it only batch 768 and ratio 1:1)."""
    cfg = compose_run(f"experiment={experiment}", f"budget={budget}")
    o, name = cfg.optim, cfg.objective.name
    assert tuple(o.betas) == tuple(o.critic_betas) == (0.0, 0.999)
    assert float(o.grad_clip) == 10.0
    lr_ratio = float(o.critic_lr) / float(o.lr)
    if name == "sid":
        assert lr_ratio == pytest.approx(1.0)
        assert float(o.weight_decay) == float(o.critic_weight_decay) == 0.0
    else:
        assert name in ("dmd", "gan")
        assert lr_ratio == pytest.approx(0.2)
        assert float(o.weight_decay) == float(o.critic_weight_decay) == 0.01
    assert int(cfg.paradigm.ratio) == (1 if name == "gan" else 5)
    assert (float(cfg.paradigm.ema_decay), int(cfg.paradigm.ema_start)) == (0.99, 200)
    assert list(cfg.paradigm.denoising_steps) == [1000, 750, 500, 250] and float(cfg.paradigm.warp) == 5.0


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("experiment", SF)
def test_training_window_is_the_default(experiment: str, budget: str) -> None:
    """Self Forcing §3.4 (REFERENCE §3): the last block cannot see the first; only the ablation has
    no window. (Was `train_window: null` everywhere: built, never enabled.)"""
    cfg = compose_run(f"experiment={experiment}", f"budget={budget}")
    frames, fpb = int(cfg.world.num_frames), int(cfg.paradigm.frames_per_block)
    window = train_window_frames(cfg)
    if experiment == "self_forcing_dmd_no_window":
        assert window is None
    else:
        assert window == frames - fpb and window % fpb == 0  # e.g. 12 frames in blocks of 3: 9


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("suffix", ["", "_framewise"])
def test_tf_and_df_dmd_differ_from_self_forcing_only_in_the_context(suffix: str, budget: str) -> None:
    """Table 2: TF+DMD and DF+DMD differ from Self Forcing only in the generator's context (clean /
    noisy ground truth): same critic, t sampling, steps, ratio, optimiser, window and evaluation."""
    for baseline in ("tf_dmd", "df_dmd"):
        assert differing(f"self_forcing_dmd{suffix}", f"{baseline}{suffix}", budget) == NAMING | {"paradigm.rollout"}


@pytest.mark.parametrize("budget", BUDGETS)
def test_ablations_differ_from_self_forcing_dmd_in_their_one_key(budget: str) -> None:
    assert differing("self_forcing_dmd", "self_forcing_dmd_no_window", budget) == NAMING | {"paradigm.train_window"}
    tf_init = "self_forcing_dmd_tf_init"
    assert differing("self_forcing_dmd", tf_init, budget) == NAMING | {"paradigm.generator_init.experiment"}
    assert compose_run(f"experiment={tf_init}").paradigm.generator_init.experiment == "teacher_forcing"


def test_no_two_sf_experiments_resolve_to_the_same_config() -> None:
    """A paper-table row is one file: two files that differ only in their names are one row twice."""
    seen: dict[tuple, str] = {}
    for experiment in SF:
        key = tuple(sorted((k, repr(v)) for k, v in flat(compose_run(f"experiment={experiment}")).items()
                           if k not in NAMING))
        assert key not in seen, f"{experiment} resolves to the same config as {seen.get(key)}"
        seen[key] = experiment


@pytest.mark.parametrize("window", ["10", "0", "whole"])
def test_a_window_that_splits_blocks_is_refused(window: str) -> None:
    """The window holds whole blocks (the cache evicts block by block): 10 frames in blocks of 3 would
    leave part of the first block in the last block's view."""
    cfg = compose_run("experiment=self_forcing_dmd", f"paradigm.train_window={window}")
    with pytest.raises(ConfigError, match="train_window"):
        SelfForcing.validate_config(cfg)
    SelfForcing.validate_config(compose_run("experiment=self_forcing_dmd", "paradigm.train_window=6"))
