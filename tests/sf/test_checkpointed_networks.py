"""Which Self Forcing networks recompute their blocks in backward (issue: the critic's backward over
a whole clip does not fit at Wan scale): the generator by `model.gradient_checkpointing`, critic and
real score by their own settings, as the generator when null."""

from __future__ import annotations

import pytest

from lightning_modules.self_forcing import SelfForcing
from tests.suite.helpers import tiny_module


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (("model.gradient_checkpointing=false",), {"generator": False, "critic": False, "real_score": False}),
        (("model.gradient_checkpointing=true",), {"generator": True, "critic": True, "real_score": True}),
        (("model.gradient_checkpointing=true", "paradigm.real_score.gradient_checkpointing=false"),
         {"generator": True, "critic": True, "real_score": False}),
        (("model.gradient_checkpointing=false", "paradigm.critic.gradient_checkpointing=true"),
         {"generator": False, "critic": True, "real_score": False}),
    ],
)
def test_checkpointed_networks(overrides, expected) -> None:
    module = tiny_module(SelfForcing, "self_forcing_dmd", *overrides, "model.checkpoint_every=2")
    nets = {"generator": module.generator, "critic": module.critic_net, "real_score": module.real_score_net}
    for name, net in nets.items():
        assert net.gradient_checkpointing is expected[name], name
        if expected[name]:
            assert net.checkpoint_every == 2
    assert not module.generator_ema.gradient_checkpointing
