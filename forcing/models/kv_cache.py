"""KVCache: per-layer self-attention K/V ring buffers (with sink frames) and cross-attention K/V.

Self Forcing's rolling KV cache (Algorithm 2): a fixed capacity of `capacity_frames` frames per
layer; the first `sink_frames` frames are never evicted; the other slots form a ring in which a
new frame overwrites the oldest one. The slot of frame j is a pure function of j:

    slot(j) = j                                         if j < sink_frames
            = sink + (j - sink) mod (capacity - sink)   otherwise

so a cached forward of the block [start_frame, start_frame + F) always writes the same slots and
repeated denoising calls on one block re-write them (never append). All bookkeeping is Python
ints derived from start_frame (no `.item()`, no host-device sync); tensors are only sliced.

Keys are stored after the q/k RMSNorm next to each slot's absolute frame index; RoPE positions
are chosen by `positions`:
- "absolute" (default): every key keeps its absolute frame index; equals the masked path exactly.
  A key's rotation then never changes, so keys are stored ROTATED at write time
  (`rotated_keys`): a cached forward rotates only its own block (RoPE is elementwise per position,
  so the stored keys are bitwise those a rotation at read time would give).
- "cache": the visible frames are renumbered 0, 1, ... in order (sink frames sit just before the
  window), so query-key distances never exceed the cache capacity however long the stream. A key's
  position changes as the window rolls, so keys are stored unrotated and rotated at attention time.

Reads (`read_mode`): "window" attends views of the buffers when the visible slots and the
block's slots form one run in frame order (always before the ring wraps) and grad is off (the
block writes its K/V into its slots first); otherwise the visible slots are gathered into fresh
tensors. See forcing/models/README.md for the reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["CachePlan", "KVCache", "POSITION_MODES", "READ_MODES", "cache_dtype"]

POSITION_MODES = ("absolute", "cache")
READ_MODES = ("unrotated", "rotated", "window")  # see KVCache.read_mode


def cache_dtype(model: nn.Module, device: torch.device | str) -> torch.dtype:
    """The one dtype rule of the KV cache: K/V are stored in the dtype attention computes them in, the
    autocast dtype when autocast is on for `device` (bf16-mixed training), else the model's parameter dtype."""
    device_type = torch.device(device).type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return next(model.parameters()).dtype


def _version(t: torch.Tensor) -> int | None:
    """In-place version counter of `t` (None for inference tensors, which do not track one)."""
    return None if t.is_inference() else t._version


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """Group a list of ints into maximal runs of consecutive values: [(first, length), ...]."""
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and runs[-1][0] + runs[-1][1] == v:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((v, 1))
    return runs


def _arange_runs(runs: tuple[tuple[int, int], ...], device: torch.device) -> torch.Tensor:
    """cat(arange(first, first + length) for each run) as int64 on `device`."""
    return torch.cat([torch.arange(first, first + n, device=device) for first, n in runs])


@dataclass(frozen=True)
class CachePlan:
    """What one cached forward of the block [start_frame, start_frame + num_frames) reads and writes.

    Attributes:
        start_frame, num_frames: the block.
        read_frames: absolute indices of the visible cached frames, ascending.
        read_slots: slot runs [(first_slot, length)] holding `read_frames`, in the same order.
        write_slots: slot runs receiving the block's frames, in frame order.
        key_positions: RoPE frame positions of the keys [read frames..., block frames...].
        rope_positions: position runs rotated at attention time: the block's only when the cached
            keys are stored rotated, else `key_positions` (queries are always the last num_frames).
        window_slots: (first_slot, frames) when the read slots followed by the write slots form one
            run of slots in frame order (then one view of the buffers holds every key), else None.
    """

    start_frame: int
    num_frames: int
    read_frames: tuple[int, ...]
    read_slots: tuple[tuple[int, int], ...]
    write_slots: tuple[tuple[int, int], ...]
    key_positions: tuple[tuple[int, int], ...]  # runs (first_position, length)
    rope_positions: tuple[tuple[int, int], ...]  # runs (first_position, length)
    window_slots: tuple[int, int] | None

    def positions(self, device: torch.device) -> torch.Tensor:
        """[n_read + num_frames] int64 key positions on `device` (the block's are the last num_frames)."""
        return _arange_runs(self.key_positions, device)

    def rotation_positions(self, device: torch.device) -> torch.Tensor:
        """int64 positions of `rope_positions` on `device` (the block's are the last num_frames)."""
        return _arange_runs(self.rope_positions, device)


@dataclass(eq=False)
class KVCache:
    """Self-attention K/V ring buffers of every layer plus the cross-attention K/V of one prompt.

    Build with :meth:`for_model`. Tensors:
        keys[l], values[l]: [B, capacity_frames, tokens_per_frame, heads, head_dim]; keys rotated at
            their absolute positions when `rotated_keys` ("absolute" positions), else unrotated.
        cross_keys[l], cross_values[l]: [B, L, heads, head_dim] or None (not computed yet).
    Python metadata:
        slot_frames[s]: absolute frame index held by slot s (-1: empty).
        contiguous_reads: allow the "window" read mode (False: always gather; for tests and A/B).
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    sink_frames: int = 0
    positions: str = "absolute"
    slot_frames: list[int] = field(default_factory=list)
    cross_keys: list[torch.Tensor | None] = field(default_factory=list)
    cross_values: list[torch.Tensor | None] = field(default_factory=list)
    context: torch.Tensor | None = None
    context_version: int | None = -1
    contiguous_reads: bool = True

    def __post_init__(self) -> None:
        if not self.keys or len(self.keys) != len(self.values):
            raise ValueError("KVCache needs one key and one value buffer per layer")
        if self.positions not in POSITION_MODES:
            raise ValueError(f"unknown positions {self.positions!r}; expected one of {POSITION_MODES}")
        if not 0 <= self.sink_frames < self.capacity_frames:
            raise ValueError(
                f"sink_frames ({self.sink_frames}) must be in [0, capacity_frames={self.capacity_frames})"
            )
        if not self.slot_frames:
            self.slot_frames = [-1] * self.capacity_frames
        if not self.cross_keys:
            self.cross_keys = [None] * self.num_layers
            self.cross_values = [None] * self.num_layers

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        batch_size: int,
        capacity_frames: int,
        tokens_per_frame: int,
        sink_frames: int = 0,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        positions: str = "absolute",
    ) -> KVCache:
        """An empty cache shaped for `model`: capacity_frames = sink_frames + window frames.

        `model` is a `CausalWanModel` (its `config` and parameters are read); `tokens_per_frame` =
        (H / p_h) * (W / p_w) latent tokens of one frame; device defaults to the model's parameters,
        dtype to :func:`cache_dtype` (the one rule).
        """
        device = torch.device(device) if device is not None else next(model.parameters()).device
        dtype = dtype or cache_dtype(model, device)
        cfg = model.config
        shape = (batch_size, capacity_frames, tokens_per_frame, cfg.num_heads, cfg.head_dim)
        keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.num_layers)]
        values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(cfg.num_layers)]
        return cls(keys=keys, values=values, sink_frames=sink_frames, positions=positions)

    def reset(self) -> None:
        """Forget every frame and the prompt (buffers are kept; nothing is reallocated)."""
        self.slot_frames = [-1] * self.capacity_frames
        self.cross_keys = [None] * self.num_layers
        self.cross_values = [None] * self.num_layers
        self.context = None
        self.context_version = -1

    # ------------------------------------------------------------------ sizes
    @property
    def num_layers(self) -> int:
        """Layers of the model this cache belongs to."""
        return len(self.keys)

    @property
    def batch_size(self) -> int:
        """Batch size B of the buffers."""
        return self.keys[0].shape[0]

    @property
    def capacity_frames(self) -> int:
        """Frames each layer can hold (sink + window)."""
        return self.keys[0].shape[1]

    @property
    def window_frames(self) -> int:
        """Slots of the ring (capacity minus sink)."""
        return self.capacity_frames - self.sink_frames

    @property
    def tokens_per_frame(self) -> int:
        """Tokens of one latent frame."""
        return self.keys[0].shape[2]

    @property
    def rotated_keys(self) -> bool:
        """True when keys are stored rotated at their absolute positions ("absolute" positions)."""
        return self.positions == "absolute"

    @property
    def frames(self) -> list[int]:
        """Absolute indices of the frames held, ascending."""
        return sorted(f for f in self.slot_frames if f >= 0)

    def nbytes(self) -> int:
        """Bytes held by the self-attention buffers (constant for the cache's lifetime)."""
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))

    # ------------------------------------------------------------------ slot bookkeeping
    def slot_of(self, frame: int) -> int:
        """Slot of absolute frame `frame` (sink slots first, then the ring)."""
        if frame < self.sink_frames:
            return frame
        return self.sink_frames + (frame - self.sink_frames) % self.window_frames

    def plan(self, start_frame: int, num_frames: int, local_window: int | None = None) -> CachePlan:
        """Read/write plan of a cached forward of frames [start_frame, start_frame + num_frames).

        Visible cached frames j: held, j < start_frame, and j < sink_frames or
        j >= start_frame + num_frames - window (window = local_window, else the ring size); the
        block itself is always visible. Same rule as the masked block-causal path.
        """
        if start_frame < 0 or num_frames < 1:
            raise ValueError(f"invalid block: start_frame={start_frame}, num_frames={num_frames}")
        ring = self.window_frames
        if num_frames > ring:
            raise ValueError(f"a block of {num_frames} frames does not fit the cache ring of {ring} frames")
        if local_window is not None:
            if local_window < num_frames:
                raise ValueError(
                    f"local_window ({local_window}) is shorter than the block ({num_frames} frames)"
                )
            if local_window > ring:
                raise ValueError(
                    f"local_window ({local_window}) exceeds the cache window ({ring} frames = capacity "
                    f"{self.capacity_frames} - sink {self.sink_frames}); build a larger cache"
                )
        window = ring if local_window is None else local_window
        end = start_frame + num_frames
        visible = sorted(
            f
            for f in self.slot_frames
            if 0 <= f < start_frame and (f < self.sink_frames or f >= end - window)
        )
        read_slot_list = [self.slot_of(f) for f in visible]
        write_slot_list = [self.slot_of(f) for f in range(start_frame, end)]
        all_slots = _runs(read_slot_list + write_slot_list)
        if self.positions == "absolute":
            key_positions = _runs(visible) + [(start_frame, num_frames)]
        else:  # "cache": visible frames renumbered 0..n-1, the block right after them
            key_positions = [(0, len(visible) + num_frames)]
        return CachePlan(
            start_frame=start_frame,
            num_frames=num_frames,
            read_frames=tuple(visible),
            read_slots=tuple(_runs(read_slot_list)),
            write_slots=tuple(_runs(write_slot_list)),
            key_positions=tuple(key_positions),
            rope_positions=((start_frame, num_frames),) if self.rotated_keys else tuple(key_positions),
            window_slots=all_slots[0] if len(all_slots) == 1 else None,
        )

    def commit(self, plan: CachePlan) -> None:
        """Record that the block of `plan` now occupies its slots (call after every layer wrote)."""
        for frame in range(plan.start_frame, plan.start_frame + plan.num_frames):
            self.slot_frames[self.slot_of(frame)] = frame

    # ------------------------------------------------------------------ tensor access
    def read_mode(self, plan: CachePlan, dtype: torch.dtype) -> str:
        """How a cached forward of `plan` computing K/V in `dtype` receives the cached keys (READ_MODES).

        "unrotated": gathered (`read`), stored unrotated, rotated with the block at attention time;
        "rotated": gathered, stored rotated, only the block is rotated;
        "window": `window` views, stored rotated; the block writes its own K/V into its slots and
        attends the views (no copy). Only with grad off (autograd must never save a buffer view
        that a later write changes) and when the buffers are in `dtype` (so writing the block's
        K/V rounds nothing).
        """
        if not self.rotated_keys:
            return "unrotated"
        if (
            self.contiguous_reads
            and plan.window_slots is not None
            and not torch.is_grad_enabled()
            and self.keys[0].dtype == dtype
        ):
            return "window"
        return "rotated"

    def window(self, layer: int, plan: CachePlan) -> tuple[torch.Tensor, torch.Tensor]:
        """Views (keys, values) [B, (n_read + num_frames) * tokens_per_frame, heads, head_dim] of the
        slots `plan.window_slots`: the visible frames, then the block's own slots (no copy)."""
        if plan.window_slots is None:
            raise ValueError("the visible and block slots of this plan are not one run: use read()")
        s, n = plan.window_slots
        k = self.keys[layer][:, s : s + n].flatten(1, 2)  # [B, n*T, H, d] view
        v = self.values[layer][:, s : s + n].flatten(1, 2)
        return k, v

    def read(self, layer: int, plan: CachePlan) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Visible cached (keys, values) of `layer`, each [B, n_read * tokens_per_frame, heads, head_dim].

        Returns fresh tensors (never views of the buffers), so autograd and activation
        checkpointing never hold memory that a later write changes. None when nothing is visible.
        """
        if not plan.read_slots:
            return None
        k = torch.cat([self.keys[layer][:, s : s + n] for s, n in plan.read_slots], dim=1)  # [B, n, T, H, d]
        v = torch.cat([self.values[layer][:, s : s + n] for s, n in plan.read_slots], dim=1)
        return k.flatten(1, 2), v.flatten(1, 2)  # [B, n*T, H, d]

    @torch.no_grad()
    def write(self, layer: int, plan: CachePlan, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store the block's keys (rotated iff `rotated_keys`) and values [B, F * T, heads, head_dim]
        (detached) in its slots."""
        b, t = self.batch_size, self.tokens_per_frame
        k = k.detach().reshape(b, plan.num_frames, t, *k.shape[2:])  # [B, F, T, H, d]
        v = v.detach().reshape(b, plan.num_frames, t, *v.shape[2:])
        offset = 0
        for s, n in plan.write_slots:
            self.keys[layer][:, s : s + n].copy_(k[:, offset : offset + n])
            self.values[layer][:, s : s + n].copy_(v[:, offset : offset + n])
            offset += n

    # ------------------------------------------------------------------ cross-attention
    def holds_context(self, context: torch.Tensor) -> bool:
        """True when the cross-attention K/V were computed from this very tensor (unchanged since)."""
        return (
            self.context is context
            and self.context_version == _version(context)
            and all(k is not None for k in self.cross_keys)
        )

    def set_context(
        self, context: torch.Tensor, keys: list[torch.Tensor], values: list[torch.Tensor]
    ) -> None:
        """Keep the cross-attention K/V (detached) of `context` for every layer."""
        self.cross_keys = [k.detach() for k in keys]
        self.cross_values = [v.detach() for v in values]
        self.context = context
        self.context_version = _version(context)
