"""Score a probe's saved model with other sampler settings (CFG scale, sampler shift, steps).

    python -m experiments.learnability.rescore runs/probe/a --cfg 2 --sample-shift 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from experiments.learnability.probe import build_codec, build_model, score
from forcing.encoders.toy_text import ToyTextEncoder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--cfg", type=float, nargs="+", default=[4.0])
    p.add_argument("--sample-shift", type=float, nargs="+", default=[3.0])
    p.add_argument("--sample-steps", type=int, default=32)
    p.add_argument("--eval-videos", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(1)
    saved = torch.load(Path(args.run) / "model.pt")
    a = argparse.Namespace(**saved["args"])
    a.codec = getattr(a, "codec", None)
    codec = build_codec(a)
    model = build_model(a, codec)
    model.load_state_dict(saved["model"])
    text = ToyTextEncoder(64, 24)
    for cfg in args.cfg:
        for shift in args.sample_shift:
            a.cfg, a.sample_shift, a.sample_steps, a.eval_videos = cfg, shift, args.sample_steps, args.eval_videos
            s = score(model, text, a, codec)
            print(json.dumps({"cfg": cfg, "sample_shift": shift, "stability": s["stability"],
                              "alignment": s["alignment"], "sharpness": s["sharpness"],
                              "count_error": s["count_error"], "size_error": s["size_error"]}), flush=True)


if __name__ == "__main__":
    main()
