"""CausalWanModel: the Wan2.1 text-to-video DiT with bidirectional, block-causal, teacher-forcing and
cached (streaming) attention from one set of weights, under the original Wan parameter names.

Per block (Wan2.1, 6-way AdaLN from the per-frame timestep embedding e0 + block.modulation):
    x = x + gate1 * SelfAttn(norm1(x) * (1 + scale1) + shift1)          # RoPE, qk RMSNorm
    x = x + CrossAttn(norm3(x), text)                                     # affine LayerNorm
    x = x + gate2 * FFN(norm2(x) * (1 + scale2) + shift2)                 # GELU-tanh MLP
Head: Linear(norm(x) * (1 + scale) + shift) with a 2-way per-frame modulation.

Mixed precision: the residual stream, the timestep embedding, the modulation, every norm and the
RoPE rotation run in fp32 (islands); the linear layers and attention run in the autocast / parameter
dtype. Modulation is per frame and broadcast over the frame's tokens (never expanded per token).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from forcing.models.attention import MASK_MODES, attention, build_mask, mask_kind
from forcing.models.kv_cache import KVCache, cache_dtype
from forcing.models.presets import WanConfig, get_preset
from forcing.models.rope import apply_rope, rope_cos_sin
from forcing.models.weights import load_pretrained
from forcing.provenance import RANDOM_INIT, set_weights_source

__all__ = ["CausalWanModel", "sinusoidal_embedding"]


# ---------------------------------------------------------------------------------------------- helpers
def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Wan's timestep embedding [cos(t w), sin(t w)], w_i = 10000^(-i / (dim/2)); float64, returned fp32.

    t: [M] (any real dtype) -> [M, dim].
    """
    half = dim // 2
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)  # [dim/2]
    args = torch.outer(t.to(torch.float64), freqs)  # [M, dim/2]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1).float()


def _fp32_mlp(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Run a Sequential of Linear / activation layers in fp32 with autocast off (mixed-precision island)."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float()
        for layer in layers:
            if isinstance(layer, nn.Linear):
                bias = layer.bias.float() if layer.bias is not None else None
                x = F.linear(x, layer.weight.float(), bias)
            else:
                x = layer(x)
    return x


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """AdaLN x * (1 + scale) + shift with per-frame shift/scale [B, F, dim] broadcast over x [B, F*T, dim]."""
    b, n, d = x.shape
    f = shift.shape[1]
    out = x.view(b, f, n // f, d) * (1 + scale[:, :, None]) + shift[:, :, None]  # [B, F, T, dim]
    return out.view(b, n, d)


def _gate(y: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """y * gate with a per-frame gate [B, F, dim] broadcast over y [B, F*T, dim]; fp32 result."""
    b, n, d = y.shape
    f = gate.shape[1]
    return (y.float().view(b, f, n // f, d) * gate[:, :, None]).view(b, n, d)


def _in_dtype(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """Cast an fp32 island's output to a layer's parameter dtype (no-op under autocast with fp32 weights)."""
    return x.to(layer.weight.dtype)


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 (parameters, if any, cast to fp32); returns fp32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps)


class RMSNorm(nn.Module):
    """RMSNorm over the full width (Wan's q/k norm): x / sqrt(mean(x^2) + eps) * weight, in fp32."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps).to(x.dtype)


# ---------------------------------------------------------------------------------------------- attention
class _Projections(nn.Module):
    """The q, k, v, o projections and the full-width qk RMSNorms of a Wan attention layer."""

    def __init__(self, dim: int, num_heads: int, eps: float, backend: str = "auto") -> None:
        super().__init__()
        self.num_heads = num_heads
        self.backend = backend
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)


class SelfAttention(_Projections):
    """Multi-head self-attention with qk RMSNorm and 3-axis RoPE; keys/values may be prefixed by a cache."""

    def forward(
        self,
        x: torch.Tensor,
        rope_q: tuple[torch.Tensor, torch.Tensor],
        rope_k: tuple[torch.Tensor, torch.Tensor],
        mask: Any = None,
        past_k: torch.Tensor | None = None,
        past_v: torch.Tensor | None = None,
        past_mode: str = "unrotated",
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, N, dim] -> (out [B, N, dim], k [B, N, H, d] as a cache stores it, v [B, N, H, d]).

        past_k / past_v [B, M, H, d] come from a cache; `past_mode` (`KVCache.read_mode`) says how:
        - "unrotated": stored unrotated, prepended; rope_k covers the M + N keys; k returned unrotated.
        - "rotated": stored rotated, prepended; rope_k covers the N new keys; k returned rotated.
        - "window": buffer views whose last N tokens are this block's slots: the rotated k and v are
          written there and the views attended as they are (no-grad only); k returned rotated.
        rope_q covers the N queries.
        """
        b, n, _ = x.shape
        q = self.norm_q(self.q(x)).view(b, n, self.num_heads, -1)  # [B, N, H, d]
        k = self.norm_k(self.k(x)).view(b, n, self.num_heads, -1)  # [B, N, H, d]
        v = self.v(x).view(b, n, self.num_heads, -1)  # [B, N, H, d]
        q_rot = apply_rope(q, *rope_q)
        if past_mode == "unrotated":  # cached and new keys rotated together at their current positions
            k_store = k
            k_all, v_all = _with_past(k, v, past_k, past_v, in_place=False)  # [B, M + N, H, d]
            k_all = apply_rope(k_all, *rope_k)
        else:
            k_store = apply_rope(k, *rope_k)  # [B, N, H, d] rotated at the block's positions
            k_all, v_all = _with_past(k_store, v, past_k, past_v, past_mode == "window")
        out = attention(q_rot, k_all, v_all, mask, self.backend)  # [B, N, H, d]
        return self.o(out.flatten(2)), k_store, v


def _with_past(
    k: torch.Tensor, v: torch.Tensor, past_k: torch.Tensor | None, past_v: torch.Tensor | None, in_place: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys/values [B, M + N, H, d] of a cached attention from the block's k, v [B, N, H, d] (rotated).

    in_place: past_k / past_v are buffer views [B, M + N, H, d] ending with the block's own slots;
    k, v are written there (same dtype required: nothing is rounded) and the views returned.
    Otherwise past_k / past_v [B, M, H, d] (or None) are concatenated before k, v.
    """
    if in_place:
        if past_k is None or past_v is None or past_k.dtype != k.dtype or past_v.dtype != v.dtype:
            raise ValueError("the window read mode needs buffer views in the dtype of the block's K/V")
        n = k.shape[1]
        past_k[:, -n:].copy_(k)
        past_v[:, -n:].copy_(v)
        return past_k, past_v
    if past_k is None or past_v is None:
        return k, v
    return torch.cat([past_k.to(k.dtype), k], dim=1), torch.cat([past_v.to(v.dtype), v], dim=1)


class CrossAttention(_Projections):
    """Multi-head attention from video tokens to text tokens (qk RMSNorm, no RoPE, no mask)."""

    def context_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedded text [B, L, dim] -> (k, v) [B, L, H, d] (what a KVCache keeps per prompt)."""
        b, n, _ = context.shape
        k = self.norm_k(self.k(context)).view(b, n, self.num_heads, -1)
        v = self.v(context).view(b, n, self.num_heads, -1)
        return k, v

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """x [B, N, dim], k/v [B, L, H, d] -> [B, N, dim]."""
        b, n, _ = x.shape
        q = self.norm_q(self.q(x)).view(b, n, self.num_heads, -1)  # [B, N, H, d]
        out = attention(q, k.to(q.dtype), v.to(q.dtype), None, self.backend)  # [B, N, H, d]
        return self.o(out.flatten(2))


# ---------------------------------------------------------------------------------------------- block / head
class WanBlock(nn.Module):
    """One Wan2.1 transformer block (parameter names as in the original checkpoints)."""

    def __init__(self, cfg: WanConfig) -> None:
        super().__init__()
        dim = cfg.dim
        self.norm1 = FP32LayerNorm(dim, cfg.eps, elementwise_affine=False)
        self.self_attn = SelfAttention(dim, cfg.num_heads, cfg.eps, cfg.attention_backend)
        self.norm3 = (
            FP32LayerNorm(dim, cfg.eps, elementwise_affine=True) if cfg.cross_attn_norm else nn.Identity()
        )
        self.cross_attn = CrossAttention(dim, cfg.num_heads, cfg.eps, cfg.attention_backend)
        self.norm2 = FP32LayerNorm(dim, cfg.eps, elementwise_affine=False)
        self.ffn = nn.Sequential(
            nn.Linear(dim, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, dim)
        )
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def forward(
        self,
        x: torch.Tensor,
        e0: torch.Tensor,
        context: torch.Tensor | None,
        cross_k: torch.Tensor | None,
        cross_v: torch.Tensor | None,
        cos_q: torch.Tensor,
        sin_q: torch.Tensor,
        cos_k: torch.Tensor,
        sin_k: torch.Tensor,
        mask: Any = None,
        past_k: torch.Tensor | None = None,
        past_v: torch.Tensor | None = None,
        past_mode: str = "unrotated",
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, F*T, dim] fp32, e0 [B, F, 6, dim] fp32 -> (x, k_new, v_new, cross_k, cross_v).

        Cross-attention K/V are taken from (cross_k, cross_v) when given, else computed here from
        the embedded `context` [B, L, dim] (inside the block, so that per-block FSDP sharding and
        activation checkpointing cover them). All cache reads arrive as inputs (past_k / past_v,
        `past_mode` as in `SelfAttention.forward`); k_new is what the cache stores.
        """
        # AdaLN-Zero style 6-way modulation (Wan2.1): shift/scale/gate for attention and FFN.  [B, F, dim] each
        shift1, scale1, gate1, shift2, scale2, gate2 = (self.modulation.float()[:, None] + e0.float()).unbind(
            2
        )
        if cross_k is None:
            cross_k, cross_v = self.cross_attn.context_kv(context)

        h = _modulate(self.norm1(x), shift1, scale1)  # [B, N, dim] fp32
        y, k_new, v_new = self.self_attn(
            _in_dtype(h, self.self_attn.q), (cos_q, sin_q), (cos_k, sin_k), mask, past_k, past_v, past_mode
        )
        x = x + _gate(y, gate1)

        h = self.norm3(x)  # [B, N, dim] (affine LayerNorm, or Identity without cross_attn_norm)
        x = x + self.cross_attn(_in_dtype(h, self.cross_attn.q), cross_k, cross_v).float()

        h = _modulate(self.norm2(x), shift2, scale2)
        y = self.ffn(_in_dtype(h, self.ffn[0]))  # [B, N, dim]
        x = x + _gate(y, gate2)
        return x, k_new, v_new, cross_k, cross_v


class Head(nn.Module):
    """Output head: per-frame 2-way modulated LayerNorm, then a Linear to patch pixels."""

    def __init__(self, cfg: WanConfig) -> None:
        super().__init__()
        self.norm = FP32LayerNorm(cfg.dim, cfg.eps, elementwise_affine=False)
        self.head = nn.Linear(cfg.dim, cfg.out_dim * math.prod(cfg.patch_size))
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """x [B, F*T, dim], e [B, F, dim] (time embedding) -> [B, F*T, out_dim * prod(patch)]."""
        shift, scale = (self.modulation.float()[:, None] + e.float()[:, :, None]).unbind(2)  # [B, F, dim]
        h = _modulate(self.norm(x), shift, scale)
        return self.head(_in_dtype(h, self.head))


# ---------------------------------------------------------------------------------------------- model
class CausalWanModel(nn.Module):
    """Wan2.1 T2V DiT with four attention modes (see `forward`) and a KV cache for streaming."""

    def __init__(self, config: WanConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.patch_embedding = nn.Conv3d(
            config.in_dim, dim, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.text_embedding = nn.Sequential(
            nn.Linear(config.text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim)
        )
        self.time_embedding = nn.Sequential(nn.Linear(config.freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.blocks = nn.ModuleList([WanBlock(config) for _ in range(config.num_layers)])
        self.head = Head(config)
        self.gradient_checkpointing = config.gradient_checkpointing
        self.checkpoint_every = 1
        self.init_weights()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> CausalWanModel:
        """Randomly initialised model of a named preset ("tiny", "shapes", "wan2.1-t2v-1.3b", "wan2.1-t2v-14b")."""
        return set_weights_source(cls(get_preset(name, **overrides)), f"{RANDOM_INIT} (preset {name})")

    @classmethod
    def from_pretrained(cls, path: str, preset: str | None = None, **overrides: Any) -> CausalWanModel:
        """Load weights (original Wan, diffusers or Self-Forcing-style checkpoints): `forcing.models.weights`;
        `path` is recorded as the weights' source (`forcing.provenance`)."""
        return set_weights_source(load_pretrained(cls, path, preset=preset, **overrides), str(path))

    def init_weights(self) -> None:
        """Wan2.1's initialisation: Xavier linears with zero bias, N(0, 0.02) embeddings, zero output head."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.patch_embedding.weight.flatten(1))
        for seq in (self.text_embedding, self.time_embedding):
            for m in seq:
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, std=0.02)
        nn.init.zeros_(self.head.head.weight)

    def enable_gradient_checkpointing(self, enabled: bool = True, every: int = 1) -> None:
        """Recompute blocks in backward (torch.utils.checkpoint, use_reentrant=False); also with a cache.

        `every`: checkpoint blocks 0, every, 2 * every, ... (1: all blocks; 2: half of them, trading
        memory for less recomputation)."""
        if every < 1:
            raise ValueError(f"checkpoint every {every} blocks: must be >= 1")
        self.gradient_checkpointing = enabled
        self.checkpoint_every = every
        self.config = self.config.replace(gradient_checkpointing=enabled)

    def tokens_per_frame(self, height: int, width: int) -> int:
        """Tokens of one latent frame of size height x width (what KVCache.for_model needs)."""
        _, ph, pw = self.config.patch_size
        return (height // ph) * (width // pw)

    # ------------------------------------------------------------------ pieces
    def _frame_timesteps(
        self, t: torch.Tensor | float, batch: int, frames: int, device: torch.device
    ) -> torch.Tensor:
        """t: scalar, [B] or [B, F] (latent frames) -> [B, F / p_t] per token frame."""
        t = torch.as_tensor(t, device=device)
        if t.ndim == 0:
            t = t.expand(batch, frames)
        elif t.ndim == 1:
            if t.shape[0] != batch:
                raise ValueError(f"t has shape {tuple(t.shape)}, expected [{batch}] or [{batch}, {frames}]")
            t = t[:, None].expand(batch, frames)
        elif t.shape != (batch, frames):
            raise ValueError(f"t has shape {tuple(t.shape)}, expected [{batch}] or [{batch}, {frames}]")
        return t[:, :: self.config.patch_size[0]]

    def _embed_time(self, t_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """t [B, F] -> (e [B, F, dim], e0 [B, F, 6, dim]), fp32 island."""
        b, f = t_frames.shape
        e = _fp32_mlp(self.time_embedding, sinusoidal_embedding(t_frames.reshape(-1), self.config.freq_dim))
        e0 = _fp32_mlp(self.time_projection, e)  # [B*F, 6*dim]
        return e.view(b, f, -1), e0.view(b, f, 6, -1)

    def _embed_video(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, F, H, W] -> tokens [B, F*h*w, dim] (fp32 residual stream), frame-major order."""
        tokens = self.patch_embedding(x.to(self.patch_embedding.weight.dtype))  # [B, dim, f, h, w]
        return tokens.flatten(2).transpose(1, 2).float().contiguous()  # [B, N, dim]

    def _unpatchify(self, out: torch.Tensor, f: int, h: int, w: int) -> torch.Tensor:
        """[B, f*h*w, p_t*p_h*p_w*C] -> [B, C, f*p_t, h*p_h, w*p_w]."""
        pt, ph, pw = self.config.patch_size
        b = out.shape[0]
        out = out.view(b, f, h, w, pt, ph, pw, -1)
        return out.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, -1, f * pt, h * ph, w * pw)

    def _check_cache(self, cache: KVCache, batch: int, tokens_per_frame: int, sink_frames: int) -> KVCache:
        if sink_frames not in (0, cache.sink_frames):
            raise ValueError(f"sink_frames={sink_frames} differs from the cache's {cache.sink_frames}")
        layers = self.config.num_layers
        if (cache.batch_size, cache.tokens_per_frame, cache.num_layers) != (batch, tokens_per_frame, layers):
            raise ValueError(
                f"cache shaped for batch {cache.batch_size}, {cache.tokens_per_frame} tokens/frame, "
                f"{cache.num_layers} layers; got batch {batch}, {tokens_per_frame} tokens/frame, {layers} layers"
            )
        return cache

    @staticmethod
    def _check_mode(
        mode: str, local_window: int | None, sink_frames: int, x: torch.Tensor, clean_x: torch.Tensor | None
    ) -> bool:
        """Validate a masked-mode call; True for teacher forcing (which then has a valid clean_x)."""
        if mode not in MASK_MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MASK_MODES}")
        if mode == "bidirectional" and (local_window is not None or sink_frames):
            raise ValueError(
                "local_window / sink_frames need a causal mode (block_causal or teacher_forcing)"
            )
        if mode != "teacher_forcing":
            if clean_x is not None:
                raise ValueError(f"clean_x is only used by mode='teacher_forcing', not {mode!r}")
            return False
        if clean_x is None:
            raise ValueError("teacher_forcing needs clean_x")
        if clean_x.shape != x.shape:
            raise ValueError(f"clean_x {tuple(clean_x.shape)} must match x {tuple(x.shape)}")
        return True

    def _run_block(self, index: int, block: WanBlock, *args: Any) -> tuple[torch.Tensor, ...]:
        if self.gradient_checkpointing and torch.is_grad_enabled() and index % self.checkpoint_every == 0:
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        context: torch.Tensor,
        mode: str = "bidirectional",
        frames_per_block: int = 1,
        local_window: int | None = None,
        sink_frames: int = 0,
        clean_x: torch.Tensor | None = None,
        clean_t: torch.Tensor | None = None,
        cache: KVCache | None = None,
        start_frame: int = 0,
        return_hidden: Sequence[int] = (),
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Predict the flow-matching velocity.

        Args:
            x: [B, C, F, H, W] noisy latents.
            t: [B] or [B, F] timesteps in [0, 1000] (per frame).
            context: [B, L, text_dim] text embeddings.
            mode: "bidirectional" | "block_causal" | "teacher_forcing" (ignored when `cache` is given).
            frames_per_block: frames per causal block (1 frame-wise, 3 chunk-wise).
            local_window: attention window in frames, counted back from the end of the query's
                block (the block included), sink excluded; None = unlimited.
            sink_frames: frames [0, sink) that stay visible whatever the window.
            clean_x / clean_t: teacher_forcing clean context [B, C, F, H, W] and its timesteps
                ([B] or [B, F], default 0); shares RoPE positions with x; only x's half is returned.
            cache: KVCache; the call is one block [start_frame, start_frame + F) attending itself and
                the cache's visible frames, and writes the block's K/V (detached) into its slots.
            start_frame: absolute index of x's first frame (cache slots and RoPE offset).
            return_hidden: block indices whose outputs [B, N, dim] are also returned.
        Returns:
            velocity [B, out_dim, F, H, W] (fp32), or (velocity, [hidden...]) when return_hidden.
        """
        cfg = self.config
        b, _, frames, height, width = x.shape
        pt, ph, pw = cfg.patch_size
        if frames % pt or height % ph or width % pw:
            raise ValueError(f"input {tuple(x.shape)} is not divisible by the patch size {cfg.patch_size}")
        f, h, w = frames // pt, height // ph, width // pw
        tpf = h * w
        device = x.device
        hidden_ids = [i % cfg.num_layers for i in return_hidden]

        tokens = self._embed_video(x)  # [B, N, dim]
        t_frames = self._frame_timesteps(t, b, frames, device)  # [B, f]
        plan, mask, n_skip = None, None, 0  # n_skip: leading tokens not returned (TF's clean half)
        read_mode = "unrotated"
        if cache is not None:
            if clean_x is not None:
                raise ValueError("clean_x (teacher forcing) cannot be combined with a cache")
            plan = self._check_cache(cache, b, tpf, sink_frames).plan(start_frame, f, local_window)
            read_mode = cache.read_mode(plan, cache_dtype(self, device))
            rope_positions = plan.rotation_positions(device)  # the block's only, or every key's
            cos_k, sin_k = rope_cos_sin(rope_positions, h, w, cfg.head_dim, cfg.rope_theta)
            cos_q, sin_q = cos_k[-f * tpf :], sin_k[-f * tpf :]  # the block's queries: last keys
        else:
            positions = torch.arange(start_frame, start_frame + f, device=device)
            if self._check_mode(mode, local_window, sink_frames, x, clean_x):
                clean_t = torch.zeros(b, device=device) if clean_t is None else clean_t
                tokens = torch.cat([self._embed_video(clean_x), tokens], dim=1)  # [B, 2N, dim]
                t_frames = torch.cat([self._frame_timesteps(clean_t, b, frames, device), t_frames], dim=1)
                positions = torch.cat([positions, positions])  # both halves share RoPE positions
                n_skip = f * tpf
            cos_q, sin_q = rope_cos_sin(positions, h, w, cfg.head_dim, cfg.rope_theta)
            cos_k, sin_k = cos_q, sin_q
            kind = mask_kind(device, cfg.attention_backend)
            mask = build_mask(mode, f, tpf, frames_per_block, local_window, sink_frames, device, kind)

        e, e0 = self._embed_time(t_frames)  # [B, f', dim], [B, f', 6, dim]
        use_cached_text = cache is not None and not torch.is_grad_enabled() and cache.holds_context(context)
        text = (
            None if use_cached_text else self.text_embedding(context.to(self.text_embedding[0].weight.dtype))
        )

        hidden: list[torch.Tensor] = []
        cross_keys, cross_values = [], []
        for i, block in enumerate(self.blocks):
            ck, cv = (cache.cross_keys[i], cache.cross_values[i]) if use_cached_text else (None, None)
            past = None
            if cache is not None:
                past = cache.window(i, plan) if read_mode == "window" else cache.read(i, plan)
            past_k, past_v = past if past is not None else (None, None)
            tokens, k_new, v_new, ck, cv = self._run_block(
                i,
                block, tokens, e0, text, ck, cv, cos_q, sin_q, cos_k, sin_k, mask, past_k, past_v, read_mode
            )
            if cache is not None:
                if read_mode != "window":  # the window mode wrote the block's K/V inside the block
                    cache.write(i, plan, k_new, v_new)
                cross_keys.append(ck)
                cross_values.append(cv)
            if i in hidden_ids:
                hidden.append(tokens[:, n_skip:])
        if cache is not None:
            cache.commit(plan)
            if not use_cached_text:
                cache.set_context(context, cross_keys, cross_values)

        out = self.head(tokens[:, n_skip:], e[:, e.shape[1] - f :])  # [B, N, p*C]
        video = self._unpatchify(out.float(), f, h, w)  # [B, C_out, F, H, W]
        if return_hidden:
            by_block = dict(zip(sorted(set(hidden_ids)), hidden))
            return video, [by_block[i] for i in hidden_ids]
        return video
