"""Causal consistency distillation (Causal Forcing++): one CFG UniPC (or Euler) step of the frozen AR
teacher, an EMA target network (checkpointed), clean GT context in teacher-forcing mode for all three nets."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from forcing.diffusion import Conditioning, euler_timesteps, sigma_from_t, x0_from_velocity
from forcing.errors import ConfigError
from forcing.objectives.consistency import (
    consistency_loss,
    teacher_euler_step,
    teacher_unipc_step,
    unipc_flow_scheduler,
)
from forcing.ode_pairs import render_clips
from lightning_modules.causal_forcing import CausalConsistency
from tests.suite.helpers import compose_run, fast_overrides


def _module(tmp_path, world_overrides, make_model, *extra: str) -> CausalConsistency:
    """A module with random tiny nets: student = EMA (a copy) and a different teacher."""
    module = CausalConsistency(
        compose_run("experiment=causal_cd", *world_overrides, *fast_overrides(tmp_path), *extra)
    )
    module.configure_model()
    module.generator.load_state_dict(make_model(1).state_dict())
    module.generator_ema.load_state_dict(make_model(1).state_dict())
    module.teacher_net.load_state_dict(make_model(2).state_dict())
    return module


def _batch(clips) -> dict:
    prompts, seeds, video = clips
    return {"video": video[:2], "prompt": prompts[:2], "seed": torch.tensor(seeds[:2])}


def _perturb(net: nn.Module, seed: int = 3) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))


class Spy(nn.Module):
    """Records the calls of a network and forwards them."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, []

    def forward(self, x, t, context, **kwargs):  # noqa: D102
        self.calls.append({"x": x, "t": t, "context": context, **kwargs})
        return self.net(x, t, context, **kwargs)


def test_timesteps_are_adjacent_points_of_the_48_step_grid_per_block(
    tmp_path, world_overrides, make_model, clips
):
    module = _module(tmp_path, world_overrides, make_model)
    grid = euler_timesteps(48, 5.0)
    assert module.grid().numel() == 49 and torch.equal(module.grid(), grid)
    draws = []
    for step in range(6):
        t_n, t_next = module.consistency_timesteps(module.clip_rngs(_batch(clips), salt=0, step=step))
        n = (t_n[..., None] == grid).float().argmax(-1)
        assert torch.equal(grid[n], t_n) and torch.equal(grid[n + 1], t_next)  # t_{n+1} is the next point
        assert torch.equal(t_n[:, :3], t_n[:, :1].expand(-1, 3))  # one index per block
        draws.append(n[:, ::3])
    assert len(set(torch.stack(draws).flatten().tolist())) > 3


def test_target_is_the_ema_network(tmp_path, world_overrides, make_model, clips):
    module = _module(tmp_path, world_overrides, make_model)
    _perturb(module.generator_ema)  # EMA != student
    batch = _batch(clips)
    spies = {name: Spy(getattr(module, name)) for name in ("generator", "generator_ema", "teacher_net")}
    for name, spy in spies.items():
        setattr(module, name, spy)
    loss = module.loss_terms(batch, module.clip_rngs(batch, salt=0))["loss"]
    (student_call,), (ema_call,) = spies["generator"].calls, spies["generator_ema"].calls
    assert len(spies["teacher_net"].calls) == 2  # UniPC: (batched CFG) forwards at x_{t_n} and at the prediction
    first, second = spies["teacher_net"].calls
    assert torch.equal(first["t"][:2], student_call["t"])
    torch.testing.assert_close(second["t"][:2], ema_call["t"], rtol=0, atol=2e-3)  # t_{n+1}, diffusers' sigma
    x0 = batch["video"]
    for call in (student_call, ema_call, first, second):
        assert call["mode"] == "teacher_forcing" and call["frames_per_block"] == 3
        assert torch.equal(call["clean_x"][: len(x0)], x0)  # the clean GT context
    assert ema_call["t"].le(student_call["t"]).all() and ema_call["t"].lt(student_call["t"]).any()

    def x0_of(net, call):
        with torch.no_grad():
            v = net(
                call["x"], call["t"], call["context"], mode="teacher_forcing", frames_per_block=3, clean_x=x0
            )
        return x0_from_velocity(call["x"], v, sigma_from_t(call["t"]))

    student = x0_of(spies["generator"].net, student_call)
    with_ema = consistency_loss(student, x0_of(spies["generator_ema"].net, ema_call))
    with_student = consistency_loss(student, x0_of(spies["generator"].net, ema_call))
    torch.testing.assert_close(loss.detach(), with_ema, rtol=1e-5, atol=1e-10)
    assert abs(with_student.item() - loss.item()) > 1e-6 * loss.item()

    loss.backward()  # gradients reach the student only
    assert all(p.grad is None for p in spies["generator_ema"].net.parameters())
    assert all(p.grad is None for p in spies["teacher_net"].net.parameters())
    assert spies["generator"].net.head.head.weight.grad.abs().sum() > 0


def test_loss_moves_with_the_ema_and_the_ema_is_updated_and_checkpointed(
    tmp_path, world_overrides, make_model, clips
):
    module = _module(tmp_path, world_overrides, make_model)
    batch = _batch(clips)
    rngs = lambda: module.clip_rngs(batch, salt=0)  # noqa: E731 - the same draws every call
    base = module.loss_terms(batch, rngs())["loss"].item()
    _perturb(module.generator_ema)
    perturbed = module.loss_terms(batch, rngs())["loss"].item()
    assert abs(perturbed - base) > 1e-8  # the target is the EMA

    before = [p.clone() for p in module.generator_ema.parameters()]
    student = [p.detach().clone() for p in module.generator.parameters()]
    module.update_target(step=250)  # after ema_start: theta_ema <- 0.99 theta_ema + 0.01 theta
    for e0, s, e in zip(before, student, module.generator_ema.parameters()):
        torch.testing.assert_close(e, 0.99 * e0 + 0.01 * s)
    assert abs(module.loss_terms(batch, rngs())["loss"].item() - perturbed) > 1e-10  # the target moved
    module.update_target(step=10)  # before ema_start: a copy of the student
    assert all(torch.equal(e, s) for e, s in zip(module.generator_ema.parameters(), student))
    assert module.loss_terms(batch, rngs())["loss"].item() == base

    _perturb(module.generator_ema, seed=4)
    state = module.state_dict()
    ema_keys = [k for k in state if k.startswith("generator_ema.")]
    assert ema_keys and len(ema_keys) == len([k for k in state if k.startswith("generator.")])
    fresh = _module(tmp_path, world_overrides, make_model)
    fresh.load_state_dict(state)
    for a, b in zip(fresh.generator_ema.parameters(), module.generator_ema.parameters()):
        assert torch.equal(a, b)


def test_teacher_step_is_one_cfg_euler_step(tmp_path, world_overrides, make_model):
    module = _module(tmp_path, world_overrides, make_model, "paradigm.teacher_guidance_scale=3.0",
                     "paradigm.teacher_solver=euler")

    class Linear(nn.Module):  # v = x * mean(context) + 1: cond and null rows differ
        calls = 0

        def forward(self, x, t, context, **kwargs):  # noqa: D102
            Linear.calls += 1
            assert kwargs["mode"] == "teacher_forcing" and kwargs["clean_x"].shape == x.shape
            return x * context.mean(dim=(1, 2))[:, None, None, None, None] + 1.0

    module.teacher_net = Linear()
    x = torch.randn(2, 3, 6, 16, 16)
    cond = Conditioning(context=torch.full((2, 4, 64), 2.0), null_context=torch.zeros(2, 4, 64))
    t_n = torch.full((2, 6), 833.3)
    t_next = torch.full((2, 6), 800.0)
    out = module.teacher_step(x, t_n, t_next, cond, module.forward_kwargs(render_clips([1, 2], 6, 16, 16, 3)))
    v_c, v_u = 2 * x + 1, torch.ones_like(x)
    expected = x + (sigma_from_t(800.0) - sigma_from_t(833.3)) * (v_u + 3.0 * (v_c - v_u))  # Euler, CFG w = 3
    torch.testing.assert_close(out, expected)
    assert Linear.calls == 1


# ---------------------------------------------------------------------------------------------- UniPC (App. D)
N = 48
GRID = euler_timesteps(N, 5.0)


def gaussian_velocity(s: float = 0.5):
    """Exact PF-ODE velocity of data N(0, s^2 I): v = x (sigma - (1 - sigma) s^2) / V, V = (1 - sigma)^2 s^2 + sigma^2."""

    def v(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sigma = (t / 1000.0)[:, None, :, None, None]
        return x * (sigma - (1 - sigma) * s**2) / ((1 - sigma) ** 2 * s**2 + sigma**2)

    return v


def test_unipc_teacher_step_is_diffusers_unipc_per_frame():
    """Causal Forcing App. D: the teacher's step is diffusers' UniPC (flow matching, shift 5 grid of
    48 steps): per frame, a fresh scheduler's `step` at n and the corrector its `step` at n + 1
    applies (its `last_sample`), with the teacher re-evaluated at the predicted point."""
    scheduler = unipc_flow_scheduler(N, 5.0)
    torch.testing.assert_close(scheduler.sigmas, GRID / 1000, rtol=0, atol=2e-6)  # our grid
    velocity = gaussian_velocity()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 5, 5)
    index = torch.tensor([[0, 0, 17, 17], [30, 30, 46, 46]])  # per-block n (blocks of 2 frames)
    out = teacher_unipc_step(velocity, x, velocity(x, GRID[index]), index, scheduler)
    for b in range(2):
        for f in range(4):
            n = int(index[b, f])
            ref = unipc_flow_scheduler(N, 5.0)  # straight from diffusers, one frame at a time
            ref.set_begin_index(n)
            xf = x[b : b + 1, :, f : f + 1]
            t = ref.sigmas[n : n + 2] * 1000
            pred = ref.step(velocity(xf, t[:1].view(1, 1)), ref.timesteps[n], xf).prev_sample
            ref.step(velocity(pred, t[1:].view(1, 1)), ref.timesteps[n + 1], pred)  # applies UniC to pred
            torch.testing.assert_close(out[b : b + 1, :, f : f + 1], ref.last_sample, rtol=1e-5, atol=1e-6)


def test_unipc_from_a_fresh_state_is_euler_then_a_second_order_correction():
    """App. D, the order of the teacher step: UniP-1 from a fresh state is DDIM = the Euler step of
    x0 = x - sigma v; the UniC-1 corrector makes it second order (error far below Euler's)."""
    velocity = gaussian_velocity()
    torch.manual_seed(1)
    x = torch.randn(1, 3, 1, 8, 8)
    for n in (1, 12, 30, 40):
        scheduler = unipc_flow_scheduler(N, 5.0)
        scheduler.set_begin_index(n)
        t_n, t_next = GRID[n].view(1, 1), GRID[n + 1].view(1, 1)
        v = velocity(x, t_n)
        euler = teacher_euler_step(x, v, t_n, t_next)
        torch.testing.assert_close(scheduler.step(v, scheduler.timesteps[n], x).prev_sample, euler, rtol=1e-5, atol=1e-5)
        unipc = teacher_unipc_step(velocity, x, v, torch.tensor([[n]]), unipc_flow_scheduler(N, 5.0))
        s_n, s_next = float(t_n) / 1000, float(t_next) / 1000
        exact = x * math.sqrt(((1 - s_next) ** 2 * 0.25 + s_next**2) / ((1 - s_n) ** 2 * 0.25 + s_n**2))
        err_euler, err_unipc = (euler - exact).abs().max(), (unipc - exact).abs().max()
        assert err_unipc < 0.2 * err_euler, (n, err_unipc, err_euler)
    # the last interval ends at sigma 0: both give the teacher's x0 prediction x - sigma v
    v = velocity(x, GRID[N - 1].view(1, 1))
    last = teacher_unipc_step(velocity, x, v, torch.tensor([[N - 1]]), unipc_flow_scheduler(N, 5.0))
    torch.testing.assert_close(last, x - GRID[N - 1] / 1000 * v, rtol=1e-5, atol=1e-6)


def test_teacher_solver_option(tmp_path, world_overrides, make_model):
    """Causal Forcing App. D: UniPC by default, Euler kept as an option, anything else refused."""
    assert compose_run("experiment=causal_cd").paradigm.teacher_solver == "unipc"
    cfg = compose_run("experiment=causal_cd", "paradigm.teacher_solver=heun")
    with pytest.raises(ConfigError, match="teacher_solver"):
        CausalConsistency.validate_config(cfg)
