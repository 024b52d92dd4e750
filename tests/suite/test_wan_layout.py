"""The Wan weights layout (README "Wan weights"): `world=wan` reads WAN_ROOT as a diffusers Wan2.1
folder (text_encoder/, tokenizer/, vae/, transformer/), checked when the run is composed; Self
Forcing's real score and critic load from `paradigm.real_score.path` / `paradigm.critic.path`, each
the teacher's weights when null."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from forcing.encoders import build_codec, build_text_encoder
from forcing.errors import ConfigError
from forcing.models import CausalWanModel
from lightning_modules.base import build_backbone
from lightning_modules.launch import validate
from lightning_modules.self_forcing import SelfForcing
from lightning_modules.validation import WAN_LAYOUT
from tests.suite.helpers import ROOT, compose_run, tiny_teacher
from tests.suite.wan_folders import save_tiny_wan_root

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

EXPECTED = "(expected the diffusers Wan2.1 layout: text_encoder/, tokenizer/, vae/, transformer/)"


@pytest.fixture(scope="module")
def wan_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny diffusers Wan2.1 folder in the real formats (and a prompt file, the data of Self Forcing)."""
    root = save_tiny_wan_root(tmp_path_factory.mktemp("Wan2.1-T2V-tiny-Diffusers"))
    (root / "prompts.txt").write_text("a red circle\n")
    return root


def compose_wan(*overrides: str) -> object:
    """Self Forcing DMD on the wan world, teacher=wan (WAN_ROOT read when the values are resolved),
    trained on the prompt file beside the weights."""
    return compose_run("experiment=self_forcing_dmd", "world=wan", "teacher=wan",
                       "world.prompts=${world.root}/prompts.txt", *overrides)  # fmt: skip


@pytest.mark.parametrize("model", ["wan_1_3b", "wan14b"])
def test_the_diffusers_layout_is_valid_and_every_part_reads_it(wan_root, monkeypatch, model) -> None:
    monkeypatch.setenv("WAN_ROOT", str(wan_root))
    cfg = compose_wan(f"model={model}")
    validate(cfg)
    assert cfg.model.pretrained == cfg.teacher.path == str(wan_root / "transformer")
    assert cfg.world.codec.path == str(wan_root / "vae") and cfg.world.text_encoder.path == str(wan_root)


def test_the_world_builds_from_the_layout(wan_root, monkeypatch) -> None:
    """The tiny folder's text encoder, VAE and transformer load from the paths the wan world composes."""
    monkeypatch.setenv("WAN_ROOT", str(wan_root))
    cfg = compose_wan("model=tiny", "world.text_encoder.max_length=8")
    validate(cfg)
    world = OmegaConf.to_container(cfg.world, resolve=True)
    assert build_text_encoder(**world["text_encoder"])(["a red circle"]).shape == (1, 8, 16)
    assert build_codec(**world["codec"]).latent_channels == 4
    teacher = build_backbone(cfg.model, path=cfg.teacher.path)
    assert teacher.config.num_layers == CausalWanModel.from_preset("tiny").config.num_layers


def partial_root(wan_root: Path, tmp_path: Path, without: str) -> Path:
    """A copy of `wan_root` (by links) without the subfolder `without`."""
    root = tmp_path / "wan"
    root.mkdir()
    for sub in WAN_LAYOUT:
        if sub != without:
            (root / sub).symlink_to(wan_root / sub, target_is_directory=True)
    return root


@pytest.mark.parametrize("missing", list(WAN_LAYOUT))
def test_each_missing_subfolder_is_named_in_one_line(wan_root, tmp_path, monkeypatch, missing) -> None:
    root = partial_root(wan_root, tmp_path, without=missing)
    monkeypatch.setenv("WAN_ROOT", str(root))
    with pytest.raises(ConfigError) as err:
        validate(compose_wan("model=wan_1_3b"))
    assert str(err.value) == f"world=wan: WAN_ROOT/{missing} is missing in {root} {EXPECTED}"


def test_a_subfolder_without_its_config_is_named(wan_root, tmp_path, monkeypatch) -> None:
    root = partial_root(wan_root, tmp_path, without="transformer")
    (root / "transformer").mkdir()
    monkeypatch.setenv("WAN_ROOT", str(root))
    with pytest.raises(ConfigError, match="^world=wan: WAN_ROOT/transformer has no config.json"):
        validate(compose_wan("model=wan_1_3b"))


def test_unset_wan_root_is_refused_before_any_path(monkeypatch) -> None:
    monkeypatch.delenv("WAN_ROOT", raising=False)
    with pytest.raises(ConfigError) as err:
        validate(compose_wan("model=wan_1_3b"))
    assert str(err.value) == f"world=wan needs the environment variable WAN_ROOT (or world.root=) {EXPECTED}"


def test_cli_refuses_unset_wan_root_with_exit_2_and_one_line(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WAN_ROOT"}
    out = subprocess.run([sys.executable, "run.py", "pretrained=none", "world=wan", "model=wan_1_3b", "teacher=wan",
                          f"paths.runs={tmp_path}/runs"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert lines[0].startswith("error: world=wan needs the environment variable WAN_ROOT")
    assert not (tmp_path / "runs").exists()


def weights(folder: Path) -> dict[str, torch.Tensor]:
    """The state dict a weights folder (either layout, or a diffusers root) loads into."""
    return CausalWanModel.from_pretrained(str(folder)).state_dict()


def same(net: torch.nn.Module, expected: dict[str, torch.Tensor]) -> bool:
    sd = net.state_dict()
    return sd.keys() == expected.keys() and all(torch.equal(sd[k], expected[k]) for k in sd)


def sf_networks(teacher: Path, *overrides: str) -> SelfForcing:
    """The tiny Self Forcing module's networks, teacher and generator init given by path."""
    cfg = compose_run("experiment=self_forcing_dmd", "model=tiny", f"teacher.path={teacher}", *overrides)
    validate(cfg)
    with open_dict(cfg):
        cfg.paradigm.generator_init.path = None  # the generator starts from the teacher too
    module = SelfForcing(cfg)
    module.configure_model()
    return module


def test_real_score_and_critic_load_the_weights_given_to_each(tmp_path) -> None:
    teacher = tiny_teacher(tmp_path / "teacher", seed=0)
    real = tmp_path / "real"  # a diffusers root: its transformer/ is read
    tiny_teacher(real / "transformer", seed=1, layout="diffusers")
    critic = tiny_teacher(tmp_path / "critic", seed=2)
    module = sf_networks(teacher, f"paradigm.real_score.path={real}", f"paradigm.critic.path={critic}")
    expected = {name: weights(folder) for name, folder in (("teacher", teacher), ("real", real), ("critic", critic))}
    assert same(module.real_score_net, expected["real"]) and not same(module.real_score_net, expected["teacher"])
    assert same(module.critic_net, expected["critic"]) and not same(module.critic_net, expected["real"])
    assert same(module.generator, expected["teacher"])
    assert not module.real_score_net.training and all(not p.requires_grad for p in module.real_score_net.parameters())


def test_real_score_and_critic_default_to_the_teacher(tmp_path) -> None:
    teacher = tiny_teacher(tmp_path / "teacher", seed=0)
    module = sf_networks(teacher)
    expected = weights(teacher)
    assert same(module.real_score_net, expected) and same(module.critic_net, expected)
    assert module.critic_net is not module.real_score_net
