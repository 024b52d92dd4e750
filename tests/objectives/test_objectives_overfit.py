"""Overfitting check of the teacher's training path: flow matching on one fixed shapes-world clip with
one fixed noise must learn to reproduce the clip (learnability issue, point 1).

The backbone has only relative positions (RoPE), so from fresh noise it cannot know where a given
clip's shape is; with the noise fixed the ODE path is one straight line (v = eps - x0 at every t,
Rectified Flow eq. 1), and a correct loss, timestep embedding, attention and head learn it. A bug in any
of them (wrong target sign, t in the wrong units, a mask that hides the clip, a dead head) fails here.
"""

import torch

from forcing.diffusion import Conditioning, Denoiser
from forcing.diffusion.schedule import euler_timesteps
from forcing.encoders.toy_text import ToyTextEncoder
from forcing.models import CausalWanModel
from forcing.objectives import flow_matching_loss
from forcing.rollout import euler_sample
from forcing.world import ClipSpec, prompt_for, render


def _overfit(steps: int) -> tuple[float, float]:
    """(MSE of the sample to the clip, MSE of the untrained model's sample) after `steps` updates."""
    torch.manual_seed(0)
    spec = ClipSpec.sample(3, max_shapes=2, min_shapes=2)
    x0 = render(spec, 3, 16, 16)[None]  # [1, 3, F, H, W]
    text = ToyTextEncoder(16, 24)
    cond = Conditioning(text([prompt_for(spec)]), text([""]))
    model = CausalWanModel.from_preset("shapes", dim=64, ffn_dim=256, num_layers=2, text_dim=16, freq_dim=32)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    den = Denoiser(model, mode="bidirectional")
    grid = euler_timesteps(8, shift=1.0)

    def sample_error() -> float:
        with torch.no_grad():
            return float(((euler_sample(den, noise, cond, grid) - x0) ** 2).mean())

    before = sample_error()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(2)
    for _ in range(steps):
        t = torch.rand(4, generator=g) * 1000.0
        loss = flow_matching_loss(den, x0.expand(4, -1, -1, -1, -1), t, noise.expand(4, -1, -1, -1, -1),
                                  Conditioning(cond.context.expand(4, -1, -1)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return sample_error(), before


def test_teacher_reproduces_one_fixed_clip():
    """300 flow-matching steps on one clip and one noise bring the sample's MSE to the clip below 1%
    of the untrained model's (measured: 2.0 -> 0.0064; 30 steps: 0.82)."""
    after, before = _overfit(300)
    assert before > 0.3
    assert after < 0.01 * before, f"sample MSE {after:.4f} after 300 steps (untrained {before:.3f})"
