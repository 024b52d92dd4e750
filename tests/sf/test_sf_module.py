"""The Self Forcing module on the tiny backbone (random weights, no trainer): the §3.4 window of the
default experiments and Algorithm 1's fresh rollout for the critic update."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from lightning_modules.self_forcing import SelfForcing
from tests.suite.helpers import read_frames
from tests.suite.helpers import tiny_module as shared_tiny_module


def tiny_module(experiment: str, *overrides: str) -> SelfForcing:
    """`experiment` on the tiny backbone with random weights (no artifacts, no trainer)."""
    return shared_tiny_module(SelfForcing, experiment, *overrides)


def batch_of(module: SelfForcing) -> dict[str, Any]:
    return {"prompt": ["a red square", "a blue circle"], "seed": torch.tensor([3, 4])}


@pytest.mark.parametrize(
    ("experiment", "last_start", "visible"),
    [
        ("self_forcing_dmd", 9, set(range(3, 9))),               # window 9: blocks 1-2, not block 0
        ("self_forcing_dmd_framewise", 11, set(range(1, 11))),   # window 11: every frame but frame 0
        ("self_forcing_dmd_no_window", 9, set(range(0, 9))),     # the ablation: the whole past
    ],
)
def test_last_block_never_attends_the_first_by_default(experiment, last_start, visible, monkeypatch) -> None:
    """Self Forcing §3.4 (REFERENCE §3): the default experiments' training rollout keeps the first
    block out of the last block's attention; self_forcing_dmd_no_window does not."""
    module = tiny_module(experiment)
    batch = batch_of(module)
    with torch.no_grad():
        seen = read_frames(monkeypatch, lambda: module.rollout(
            batch, module.condition(batch["prompt"]).context, None, module.clip_rngs(batch, salt=0)))
    assert max(seen) == last_start and seen[last_start] == visible


class Spy:
    """Records the rollouts and the videos the objective's losses receive during training steps."""

    def __init__(self, module: SelfForcing) -> None:
        self.rollouts: list[bool] = []  # grad enabled, per rollout
        self.videos: dict[str, torch.Tensor] = {}
        rollout, obj = module.rollout, module.objective
        gen_loss, critic_loss = obj.generator_loss, obj.critic_loss

        def spy_rollout(*args, **kwargs):
            self.rollouts.append(torch.is_grad_enabled())
            return rollout(*args, **kwargs)

        def spy_loss(name, fn):
            def wrapped(inputs):
                self.videos[name] = inputs.x_gen.detach().clone()
                return fn(inputs)
            return wrapped

        module.rollout = spy_rollout
        obj.generator_loss, obj.critic_loss = spy_loss("generator", gen_loss), spy_loss("critic", critic_loss)

    def reset(self) -> None:
        self.rollouts, self.videos = [], {}


def trained(module: SelfForcing) -> tuple[Spy, Any]:
    """The module wired for `training_step` without a trainer; returns the spy and a step runner."""
    opts = module.configure_optimizers()
    module.optimizers = lambda: opts
    module.manual_backward = lambda loss: loss.backward()
    module.log = module.log_train = lambda *args, **kwargs: None
    spy = Spy(module)

    def step(index: int) -> None:
        spy.reset()
        module.step_index = lambda: index
        module.training_step(batch_of(module), index)

    return spy, step


def test_critic_learns_from_a_fresh_rollout_by_default() -> None:
    """Self Forcing Alg. 1 (and the public trainer): the critic update draws its own no-grad rollout.
    Generator iterations (every `ratio`-th) roll out twice: with grad for the generator, then without
    for the critic; critic-only iterations once, without grad. (Was: the critic reused the generator's
    video.)"""
    module = tiny_module("self_forcing_dmd")
    assert module.p.critic_reuses_rollout is False
    spy, step = trained(module)
    step(0)  # iteration 0: generator and critic
    assert spy.rollouts == [True, False]
    assert not torch.allclose(spy.videos["generator"], spy.videos["critic"])
    step(1)  # iteration 1 (ratio 5): critic only
    assert spy.rollouts == [False] and "generator" not in spy.videos


def test_critic_reuses_the_rollout_when_asked() -> None:
    """`paradigm.critic_reuses_rollout: true` saves one rollout per generator iteration."""
    module = tiny_module("self_forcing_dmd", "paradigm.critic_reuses_rollout=true")
    spy, step = trained(module)
    step(0)
    assert spy.rollouts == [True]
    assert torch.equal(spy.videos["generator"], spy.videos["critic"])
    step(1)
    assert spy.rollouts == [False]


def test_critic_rollout_has_its_own_random_stream() -> None:
    """The critic's rollout draws its own exit steps, noise and re-noising (not a replay of the
    generator's), still keyed by (seed, step, salt) only, so identical on every rank and after resume."""
    module = tiny_module("self_forcing_dmd")
    outside = [module.rng(salt=s).initial_seed() for s in (1, 3, 4)]
    with module.critic_draw():
        inside = [module.rng(salt=s).initial_seed() for s in (1, 3, 4)]
        again = [module.rng(salt=s).initial_seed() for s in (1, 3, 4)]
    assert inside == again and not set(inside) & set(outside)
    assert [module.rng(salt=s).initial_seed() for s in (1, 3, 4)] == outside  # the context restores the stream


def test_critic_warmup_trains_only_the_critic_until_its_end() -> None:
    """`paradigm.critic_warmup: 2`: iterations 0 and 1 roll out without grad and step only the critic
    (the generator's weights stay); iteration 2 is the first generator iteration, then every `ratio`-th."""
    module = tiny_module("self_forcing_dmd", "paradigm.critic_warmup=2")
    spy, step = trained(module)
    start = [p.detach().clone() for p in module.generator.parameters()]
    critic = [p.detach().clone() for p in module.critic_net.parameters()]
    for index in (0, 1):
        step(index)
        assert spy.rollouts == [False] and "generator" not in spy.videos
    assert all(torch.equal(a, b) for a, b in zip(start, module.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(critic, module.critic_net.parameters()))
    step(2)
    assert spy.rollouts == [True, False]
    assert any(not torch.equal(a, b) for a, b in zip(start, module.generator.parameters()))
