"""`ShapesFeatureNet`: a small video encoder whose features define the FVD on the shapes world.

The network is trained briefly (CPU, well under a minute) to recognise what the world's ground truth
gives for free: the colours, kinds, count and background of a clip and the directions and speed
classes of its shapes at the first frame (27 binary labels, `clip_labels`). Its features (`features`)
are that label embedding (content) plus the log energies of its fixed first layer (appearance:
exposure, edges, fine detail, motion), so the distance sees both wrong content and degraded
pictures. No normalisation across the batch: a video's features do not depend on its batch.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from forcing.eval._threads import torch_threads
from forcing.world import (
    BACKGROUNDS,
    COLOURS,
    DIRECTIONS,
    KINDS,
    SPEEDS,
    ClipSpec,
    direction_name,
    render,
    speed_name,
    state_at,
)

#: Label layout: colours, kinds, directions, speeds present; background one-hot; count one-hot (1, 2, 3+).
LABEL_GROUPS: dict[str, tuple[str, ...]] = {
    "colour": tuple(COLOURS),
    "kind": KINDS,
    "direction": tuple(DIRECTIONS),
    "speed": tuple(SPEEDS),
    "background": tuple(BACKGROUNDS),
    "count": ("1", "2", "3+"),
}
NUM_LABELS = sum(len(names) for names in LABEL_GROUPS.values())

#: Clips the feature net trains on have seeds from here (away from validation [0, n) and training >= 2**32).
FEATURE_SEED_BASE = 10**9


def filter_bank() -> Tensor:
    """The fixed first layer: `[15, 6, 3, 3]` filters on (frame RGB, frame difference RGB).

    Five filters, each per colour channel (output 3 * filter + channel): identity, horizontal and
    vertical central differences and the Laplacian of the frame, and the identity of the difference
    to the previous frame (motion).
    """
    identity = torch.zeros(3, 3)
    identity[1, 1] = 1.0
    dx = torch.tensor([[0.0, 0.0, 0.0], [-0.5, 0.0, 0.5], [0.0, 0.0, 0.0]])
    laplacian = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    weight = torch.zeros(15, 6, 3, 3)
    for c in range(3):
        for j, kernel in enumerate((identity, dx, dx.T, laplacian)):
            weight[3 * j + c, c] = kernel
        weight[12 + c, 3 + c] = identity
    return weight


class ShapesFeatureNet(nn.Module):
    """Video encoder `[B, 3, F, H, W]` in [-1, 1] -> FVD features `[B, feature_dim + 5]` (any F, H, W).

    A fixed filter bank (`filter_bank`) on every frame and its difference to the previous frame,
    strided 2D convolutions and a spatial mean/max per frame, a temporal convolution and a temporal
    mean/max, and a linear map to the embedding that the label head reads. Factorised (2D + 1D)
    rather than 3D convolutions: several times faster on a CPU.
    """

    def __init__(self, width: int = 16, feature_dim: int = 16, num_labels: int = NUM_LABELS) -> None:
        super().__init__()
        self.config = {"width": width, "feature_dim": feature_dim, "num_labels": num_labels}
        self.register_buffer("bank", filter_bank(), persistent=False)
        chans = (self.bank.shape[0], width, 2 * width, 4 * width)
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.SiLU()]
        self.spatial = nn.Sequential(*layers)
        self.temporal = nn.Conv1d(chans[-1], chans[-1], 3, padding=1)
        self.embed = nn.Linear(2 * chans[-1], feature_dim)
        self.head = nn.Linear(feature_dim, num_labels)

    def _trunk(self, videos: Tensor) -> tuple[Tensor, Tensor]:
        """Embedding `[B, feature_dim]` and the log energies `[B, 5]` of the bank's filters (summed over colours)."""
        x = videos.float()
        batch, _, frames, height, width = x.shape
        delta = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], 2)
        x = torch.cat([x, delta], 1).transpose(1, 2).reshape(batch * frames, 6, height, width)
        responses = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.bank)
        energy = (
            responses.square().mean((2, 3)).view(batch, frames, -1, 3).mean(1)
        )  # [B, 5 filters, 3 colours]
        energy = energy.sum(-1).add(1e-3).log()
        x = self.spatial(responses)
        x = torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1).view(batch, frames, -1)  # [B, F, 2C]
        c = x.shape[-1] // 2
        mean, peak = x[..., :c].transpose(1, 2), x[..., c:].transpose(1, 2)  # [B, C, F]
        mixed = F.silu(self.temporal(mean))
        return self.embed(torch.cat([mixed.mean(2), peak.amax(2)], 1)), energy

    def features(self, videos: Tensor) -> Tensor:
        """FVD features `[B, feature_dim + 5]`: the layer-normalised embedding and the bank's log energies.

        The embedding describes what the labels name and is mostly invariant to exposure, blur and
        noise; the log energies of the fixed filters (intensity, edges, Laplacian, frame differences,
        each summed over colour channels) are not. Layer normalisation keeps the embedding's scale
        fixed as training goes on, so that neither part swamps the other in the Frechet distance.
        """
        embedding, energy = self._trunk(videos)
        embedding = F.layer_norm(embedding, embedding.shape[-1:])
        return torch.cat([embedding, energy], 1)

    def forward(self, videos: Tensor) -> Tensor:
        """Label logits `[B, NUM_LABELS]`."""
        return self.head(F.silu(self._trunk(videos)[0]))


def clip_labels(spec: ClipSpec, start_frame: int = 0, height: int = 32, width: int = 32) -> Tensor:
    """The 27 binary labels `[NUM_LABELS]` of a clip starting at `start_frame` (layout `LABEL_GROUPS`)."""
    state = state_at(spec, [start_frame], height, width)
    values = {
        "colour": {shape.colour for shape in spec.shapes},
        "kind": {shape.kind for shape in spec.shapes},
        "direction": {direction_name(*map(float, v)) for v in state["velocities"][0] if float(v.norm()) > 0},
        "speed": {speed_name(shape.speed) for shape in spec.shapes},
        "background": {spec.background},
        "count": {LABEL_GROUPS["count"][min(len(spec.shapes), 3) - 1]},
    }
    return torch.tensor(
        [float(name in values[group]) for group, names in LABEL_GROUPS.items() for name in names]
    )


def _training_clips(
    count: int, num_frames: int, height: int, width: int, seed: int, max_start: int = 64
) -> tuple[Tensor, Tensor]:
    """`count` rendered clips `[N, 3, F, H, W]` and their labels `[N, NUM_LABELS]`, deterministic in `seed`."""
    rng = random.Random(seed)
    videos, labels = [], []
    for i in range(count):
        spec = ClipSpec.sample(FEATURE_SEED_BASE + seed * 1_000_003 + i)
        start = rng.randrange(max_start)
        videos.append(render(spec, num_frames, height, width, start_frame=start))
        labels.append(clip_labels(spec, start, height, width))
    return torch.stack(videos), torch.stack(labels)


def train_feature_net(
    steps: int = 300,
    *,
    num_frames: int = 12,
    height: int = 32,
    width: int = 32,
    batch_size: int = 16,
    lr: float = 3e-3,
    pool_size: int = 512,
    seed: int = 0,
    width_mult: int = 16,
    feature_dim: int = 16,
    threads: int | None = 1,
) -> ShapesFeatureNet:
    """Train a `ShapesFeatureNet` on shapes-world clips with their free labels (BCE); returns it in eval mode.

    Deterministic in `seed`; leaves the global RNG untouched. A pool of `min(pool_size, steps *
    batch_size)` clips (random start frames, so mid-flight and bounced states are seen) is rendered
    once and sampled with replacement. `threads`: torch intra-op threads while training (the small
    convolutions run fastest on one; None keeps the current count). 300 steps take about 10-20 s on
    one CPU core.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = ShapesFeatureNet(width=width_mult, feature_dim=feature_dim)
    videos, labels = _training_clips(
        max(1, min(pool_size, steps * batch_size)), num_frames, height, width, seed
    )
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    net.train()
    with torch_threads(threads):
        for _ in range(steps):
            index = torch.randint(len(videos), (batch_size,), generator=generator)
            loss = F.binary_cross_entropy_with_logits(net(videos[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval().requires_grad_(False)


def label_accuracy(net: ShapesFeatureNet, videos: Tensor, labels: Tensor) -> float:
    """Fraction of the binary labels the net gets right (logit > 0) on `videos`."""
    with torch.no_grad():
        return float(((net(videos) > 0).float() == labels).float().mean())
