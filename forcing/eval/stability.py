"""Visual stability: a 0-100 score of drift and structural collapse (Self-Forcing++'s metric, made exact).

Per frame f of a video conditioned on a clip's prompt, with errors measured against the prompt's
envelope (`forcing.eval.envelope`: the ground-truth clip and the same clip with every size and speed at
the low / high end of what the prompt allows; "outside" = distance outside the references' range, 0
inside), see `forcing.eval.analysis`:

    e_brightness = |mean luma_gen outside the references'|       (luma in [0, 1])
    e_saturation = |mean chroma_gen outside the references'|      (max - min of RGB, in [0, 1])
    e_count      = #objects_gen outside [fewest a reference shows, the prompt's count]
    e_size       = |log2 total object area_gen outside the references'|   (areas + 1 pixel)
    e_colour     = 1 - Jaccard(colours present_gen, those of the ground truth or of the prompt)
    e_shape      = 1 - fraction of objects shown with the same colour and kind (ground truth or prompt)
    e_sharpness  = |log2 gradient energy_gen outside the references'|     (blur < 0 < noise)
    e_motion     = |log2(speed_gen / speed_ref)| outside the references', 9-frame window (+0.1 px/frame)

    stability(f) = 100 * prod_i 2 ** (-e_i / tau_i) = 100 * 2 ** (-sum_i e_i / tau_i)

with the tolerances tau_i of `TOLERANCES` (the error that alone halves the score). A video's score
over a window of frames is the mean of stability(f) over those frames. The ground truth scores
exactly 100; every term is in (0, 1], so the score is in (0, 100]. Another clip of the same prompt (a
perfect generator) scores ~89 (it was ~23 against the one ground-truth clip: `experiments/calibration`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

#: tau_i: the error of each term that alone halves the score.
TOLERANCES: dict[str, float] = {
    "brightness": 0.1,
    "saturation": 0.1,
    "count": 1.0,
    "size": 0.5,
    "colour": 0.5,
    "shape": 0.5,
    "sharpness": 1.0,
    "motion": 1.0,
}


def stability_curve(errors: Mapping[str, Tensor]) -> Tensor:
    """Per-frame stability in (0, 100] from non-negative errors keyed like `TOLERANCES` (each `[B, F]`)."""
    missing = set(TOLERANCES) - set(errors)
    if missing:
        raise KeyError(f"stability needs the errors {sorted(missing)}")
    total = sum(errors[name].abs().nan_to_num(0.0) / tau for name, tau in TOLERANCES.items())
    return 100.0 * torch.exp2(-total)
