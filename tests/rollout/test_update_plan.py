"""Which optimiser steps at which batch: the generator:critic ratio with gradient accumulation."""

from __future__ import annotations

import pytest

from forcing.schedule_updates import update_plan


@pytest.mark.parametrize(
    ("ratio", "accumulate", "table"),
    [
        # batch: (generator computes grad, generator steps, critic steps)
        (5, 1, {0: (1, 1, 1), 1: (0, 0, 1), 4: (0, 0, 1), 5: (1, 1, 1), 9: (0, 0, 1), 10: (1, 1, 1)}),
        (1, 1, {0: (1, 1, 1), 1: (1, 1, 1), 2: (1, 1, 1)}),
        # accumulate 2: iteration = 2 batches; steps only at the iteration's last batch
        (5, 2, {0: (1, 0, 0), 1: (1, 1, 1), 2: (0, 0, 0), 3: (0, 0, 1), 9: (0, 0, 1), 10: (1, 0, 0), 11: (1, 1, 1)}),
        (2, 3, {0: (1, 0, 0), 2: (1, 1, 1), 3: (0, 0, 0), 5: (0, 0, 1), 6: (1, 0, 0), 8: (1, 1, 1)}),
    ],
)
def test_update_table(ratio: int, accumulate: int, table: dict[int, tuple[int, int, int]]) -> None:
    for batch, (grad, gen_step, critic_step) in table.items():
        plan = update_plan(batch, ratio, accumulate)
        assert (plan.generator_grad, plan.generator_step, plan.critic_step) == (bool(grad), bool(gen_step),
                                                                              bool(critic_step)), batch


def test_counts_over_a_run() -> None:
    plans = [update_plan(b, ratio=5, accumulate=4) for b in range(400)]
    assert sum(p.critic_step for p in plans) == 100  # one per iteration of 4 batches
    assert sum(p.generator_step for p in plans) == 20  # every 5th iteration
    assert sum(p.generator_grad for p in plans) == 80  # all 4 batches of those iterations


def test_rejects_bad_ratio() -> None:
    with pytest.raises(ValueError):
        update_plan(0, ratio=0)


@pytest.mark.parametrize(("ratio", "accumulate", "warmup"), [(5, 1, 0), (5, 1, 3), (2, 3, 4), (1, 2, 5)])
def test_critic_warmup_delays_the_generator_and_the_step_count_agrees(ratio: int, accumulate: int, warmup: int) -> None:
    from omegaconf import OmegaConf

    from forcing.schedule_updates import generator_steps
    from lightning_modules.self_forcing import SelfForcing

    iterations = 23
    plans = [update_plan(b, ratio, accumulate, critic_warmup=warmup) for b in range(iterations * accumulate)]
    stepping = [p.iteration for p in plans if p.generator_step]
    assert stepping == list(range(warmup, iterations, ratio))  # first at the warmup's end, then every ratio-th
    assert all(p.critic_step for p in plans if p.generator_step)  # the critic steps every iteration throughout
    assert sum(p.critic_step for p in plans) == iterations
    assert generator_steps(iterations, ratio, warmup) == len(stepping)
    cfg = OmegaConf.create({"paradigm": {"ratio": ratio, "critic_warmup": warmup}})
    assert SelfForcing.optimizer_steps(cfg, iterations) == iterations + len(stepping)  # trainer.max_steps
    with pytest.raises(ValueError):
        update_plan(0, ratio, critic_warmup=-1)
