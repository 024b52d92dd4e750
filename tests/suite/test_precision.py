"""The precision policy of the Wan-scale hardware: fp32 master weights sharded by FSDP2 with bf16
compute, frozen networks in bf16, EMA in fp32 (conf/hardware/h100x8.yaml), against Lightning's
`bf16-true`, under which an lr-2e-6 AdamW step leaves almost every bf16 weight unchanged."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from forcing.parallel import cast_frozen
from lightning_modules.self_forcing import SelfForcing
from tests.suite.helpers import compose_run, tiny_module, torchrun

F32, BF16 = ["torch.float32"], ["torch.bfloat16"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> list[dict]:
    """Each rank's report of tests/suite/precision_worker.py (2 gloo processes)."""
    out = tmp_path_factory.mktemp("precision") / "report"
    torchrun("tests/suite/precision_worker.py", str(out), timeout=600)
    return [json.loads(out.with_name(f"report.rank{r}.json").read_text()) for r in range(2)]


def test_sharded_master_weights_are_fp32_and_compute_is_bf16(reports) -> None:
    for rank in reports:
        r = rank["bf16_policy"]
        assert r["sharded"] and r["generator"] == r["critic_net"] == F32
        assert r["compute"] == {"input": "torch.bfloat16", "weight": "torch.bfloat16"}
        assert r["grad_dtypes"] == F32  # reduced in fp32 onto the fp32 shards


def test_lr_2e6_adamw_step_changes_fp32_shards_but_not_bf16_ones(reports) -> None:
    for rank in reports:
        assert rank["bf16_policy"]["changed"] > 0.99
        assert rank["bf16_true"]["generator"] == BF16 and rank["bf16_true"]["changed"] < 0.05


def test_frozen_networks_are_bf16_and_ema_fp32(reports) -> None:
    for rank in reports:
        r = rank["bf16_policy"]
        assert r["real_score_net"] == BF16 and r["generator_ema"] == F32
        assert r["ema_changed"] > 0.9  # a decay-0.99 EMA of an lr-2e-6 step still moves in fp32
        assert rank["bf16_true"]["generator_ema"] == BF16 and rank["bf16_true"]["ema_changed"] < 0.01


def test_frozen_dtype_without_sharding() -> None:
    """Single process: the frozen real score is stored in bf16; trainable networks and EMA stay fp32."""
    module = tiny_module(SelfForcing, "self_forcing_dmd", "hardware.frozen_dtype=bfloat16")
    assert module.real_score_net in module.frozen_networks()
    assert {p.dtype for p in module.real_score_net.parameters()} == {torch.bfloat16}
    for net in (module.generator, module.generator_ema, module.critic_net):
        assert net not in module.frozen_networks() and {p.dtype for p in net.parameters()} == {torch.float32}
    assert module.encode_prompts(["a red square"]).dtype == torch.float32


def test_cast_frozen_casts_parameters_keeps_buffers_and_refuses_trainable() -> None:
    norm = nn.BatchNorm1d(4).requires_grad_(False)
    cast_frozen(norm, "bfloat16")
    assert norm.weight.dtype == torch.bfloat16 and norm.running_mean.dtype == torch.float32
    with pytest.raises(ValueError, match="trainable"):
        cast_frozen(nn.Linear(2, 2), "bfloat16")


@pytest.mark.parametrize("hardware", ["h100x8", "h100x64"])
def test_wan_hardware_keeps_fp32_master_weights(hardware: str) -> None:
    hw = compose_run("experiment=teacher_forcing", f"hardware={hardware}").hardware
    assert (hw.precision, hw.param_dtype, hw.reduce_dtype, hw.frozen_dtype) == (
        "32-true", "bfloat16", "float32", "bfloat16")


@pytest.mark.parametrize("hardware", ["cpu", "cpu_fsdp2"])
def test_cpu_hardware_is_fp32(hardware: str) -> None:
    hw = compose_run("experiment=teacher_forcing", f"hardware={hardware}").hardware
    assert (hw.precision, hw.param_dtype, hw.reduce_dtype, hw.frozen_dtype) == (
        "32-true", "float32", "float32", "float32")
