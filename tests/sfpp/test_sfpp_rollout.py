"""Self-Forcing++ long rollout: the training rollout is the inference rollout (rolling cache of M
frames, absolute positions past any table), gradients only at the window's exit steps, and memory
that does not grow with the rollout length."""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from forcing.diffusion import Conditioning
from forcing.diffusion.schedule import few_step_timesteps
from forcing.models import KVCache
from forcing.rollout import drawn_noise, generate, sliced_noise, stream_rollout, window_rollout

GRID = few_step_timesteps().tolist()
M, FPB = 4, 2  # teacher horizon (= window = cache) and frames per block of the tiny tests


def roll(model, noise, context, frames, start, **kw):
    kw = {"exit_steps": [len(GRID) - 1] * (M // FPB), "generator": torch.Generator().manual_seed(2), **kw}
    return window_rollout(model, context, noise, num_frames=frames, window_start=start, window_frames=M,
                          frames_per_block=FPB, timesteps=kw.pop("timesteps", GRID), cache_frames=M, **kw)


def test_training_rollout_is_the_inference_rollout(model) -> None:
    torch.manual_seed(1)
    frames = 4 * M
    noise, context = torch.randn(2, 4, frames, 4, 4), torch.randn(2, 8, 16)
    r = roll(model, sliced_noise(noise), context, frames, frames - M, keep_history=True)
    with torch.no_grad():
        ref = generate(model, noise, Conditioning(context), frames_per_block=FPB, timesteps=GRID, stochastic=True,
                       cache_frames=M, generator=torch.Generator().manual_seed(2))
        first = generate(model, noise[:, :, :M], Conditioning(context), frames_per_block=FPB, timesteps=GRID,
                         stochastic=True, cache_frames=M, generator=torch.Generator().manual_seed(2))
    video = torch.cat([r.history, r.video.detach()], dim=2)
    assert torch.equal(video[:, :, :M], first)  # the first M frames
    assert torch.equal(video, ref)  # ... and the whole rollout, window included (exit last)
    assert r.video.requires_grad and r.history.device.type == "cpu"


def test_rolling_cache_holds_at_most_m_frames_and_absolute_positions(model) -> None:
    torch.manual_seed(1)
    frames, fpb = 1040, 4  # past the 1024-frame RoPE table of the public code
    context = torch.randn(1, 8, 16)
    seen: list[tuple[int, list[int], str]] = []

    def on_block(start: int, cache: KVCache) -> None:
        seen.append((start, cache.frames, cache.positions))

    r = window_rollout(model, context, drawn_noise([torch.Generator().manual_seed(3)], (4, 4, 4)),
                       num_frames=frames, window_start=frames - 8, window_frames=8, frames_per_block=fpb,
                       timesteps=[1000.0, 500.0], exit_steps=[1, 1], cache_frames=8, on_block=on_block,
                       generator=torch.Generator().manual_seed(2))
    assert [s for s, _, _ in seen] == list(range(0, frames, fpb))
    for start, held, positions in seen:
        end = start + fpb
        assert len(held) <= 8 and held == list(range(max(0, end - 8), end))  # the most recent M frames
        assert positions == "absolute"  # keys at their absolute frame index (as at inference)
    assert seen[-1][1][-1] == frames - 1 > 1024
    assert torch.isfinite(r.video).all()


def test_gradient_only_at_the_windows_exit_step(model) -> None:
    torch.manual_seed(1)
    frames, start = 3 * M, 2 * M
    noise, context = torch.randn(1, 4, frames, 4, 4), torch.randn(1, 8, 16)
    params = list(model.parameters())
    for exit_step, noise_step in [(3, 0), (0, 0), (3, 2), (2, 2)]:
        leaf = noise.clone().requires_grad_(True)
        r = roll(model, sliced_noise(leaf), context, frames, start, exit_steps=[exit_step] * 2, noise_step=noise_step,
                 backward_generator=torch.Generator().manual_seed(4))
        loss = r.video.square().sum()
        grads = torch.autograd.grad(loss, [leaf, *params], allow_unused=True)
        g_noise = grads[0] if grads[0] is not None else torch.zeros_like(noise)
        assert g_noise[:, :, :start].abs().max() == 0  # nothing flows into the rollout before the window
        if exit_step == 0 and noise_step == 0:  # grad at step 0: only the window's own input gets it
            assert g_noise[:, :, start:].abs().max() > 0
        else:  # steps before the exit step and the clean window carry no graph
            assert g_noise.abs().max() == 0
        assert any(g is not None and g.abs().max() > 0 for g in grads[1:])  # the exit step trains the student
    # ...although the window depends on the rollout before it (through the cache)
    with torch.no_grad():
        bumped = noise.clone()
        bumped[:, :, :FPB] += 1.0
        a = roll(model, sliced_noise(noise), context, frames, start).video
        b = roll(model, sliced_noise(bumped), context, frames, start).video
    assert (a - b).abs().max() > 1e-4


def test_noisy_kv_cache_keeps_the_last_noisy_kv_in_training_and_at_inference(model) -> None:
    """Self-Forcing++ noisy-KV-cache ablation: no clean re-run of finished blocks (Alg. 1/2 write
    clean K/V); the cache keeps what each block's last denoising step wrote. The training rollout
    (history + window, exit last, t_0 restart) is the noisy inference rollout."""
    torch.manual_seed(1)
    frames = 3 * M
    noise, context = torch.randn(2, 4, frames, 4, 4), torch.randn(2, 8, 16)
    seen: list[float] = []
    hook = model.register_forward_pre_hook(lambda _m, args: seen.append(float(args[1].reshape(-1)[0])))
    r = roll(model, sliced_noise(noise), context, frames, frames - M, keep_history=True, noisy_context=True)
    hook.remove()
    assert seen == GRID * (frames // FPB)  # every forward is a denoising step: no re-run at t = 0
    cond = Conditioning(context)
    kw = {"num_frames": frames, "frames_per_block": FPB, "timesteps": GRID, "cache_frames": M}
    noisy = stream_rollout(model, cond, sliced_noise(noise), noisy_context=True,
                           generator=torch.Generator().manual_seed(2), **kw)
    assert torch.equal(torch.cat([r.history, r.video.detach()], dim=2), noisy)  # training = inference
    clean = stream_rollout(model, cond, sliced_noise(noise), generator=torch.Generator().manual_seed(2), **kw)
    ref = generate(model, noise, cond, frames_per_block=FPB, timesteps=GRID, stochastic=True, cache_frames=M,
                   generator=torch.Generator().manual_seed(2))
    assert torch.equal(clean, ref)  # the clean stream is Algorithm 2
    assert torch.equal(noisy[:, :, :FPB], clean[:, :, :FPB])  # the first block sees no cache
    assert (noisy[:, :, FPB:] - clean[:, :, FPB:]).abs().max() > 1e-4  # later blocks see other K/V


class LiveTensorBytes(TorchDispatchMode):
    """Peak of the summed sizes of live tensor storages created under the mode (CPU and CUDA)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self.tracked: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: D105
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.track(t.untyped_storage())
        return out

    def track(self, storage: torch.UntypedStorage) -> None:
        key, size = storage.data_ptr(), storage.nbytes()
        if size == 0 or key in self.tracked:
            return
        self.tracked.add(key)
        self.live += size
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self.free, key, size)

    def free(self, key: int, size: int) -> None:
        self.tracked.discard(key)
        self.live -= size


def peak_bytes(model, frames: int, keep_history: bool = False) -> int:
    context = torch.randn(1, 8, 16)
    noise = drawn_noise([torch.Generator().manual_seed(3)], (4, 8, 8))
    with LiveTensorBytes() as meter:
        r = roll(model, noise, context, frames, frames - M, keep_history=keep_history)  # longest history
        r.video.square().sum().backward()
        del r
    return meter.peak


def test_memory_is_flat_in_the_rollout_length(model) -> None:
    frame_bytes = 4 * 8 * 8 * 4  # one latent frame
    short, long = peak_bytes(model, 2 * M), peak_bytes(model, 8 * M)
    assert abs(long - short) <= 0.02 * short  # N = 8M costs what N = 2M costs
    # the meter sees growth: keeping the history grows the peak with N
    kept = peak_bytes(model, 8 * M, keep_history=True)
    assert kept - long >= (8 * M - M) * frame_bytes
