"""Speed and memory tables printed as markdown by ``python -m forcing.bench <section> [...]``.

One module per section, each registering itself with ``@section("name")`` (:mod:`.registry`) when
imported: :mod:`.backbone`, :mod:`.generation`, :mod:`.memory`, :mod:`.official` (against a local
clone of the official Self Forcing code: :mod:`.official_code` loads it, :mod:`.official_runs`
streams it). Shared pieces: :mod:`.timing`
(timed calls, the machine line), :mod:`.worlds` (random-input presets), :mod:`.streaming`
(generator configurations, timed streams), :mod:`.probes` (allocation probes; the KV cache probe is
:mod:`forcing.models.cache_probe`); the command line is :mod:`.cli`.

The GPU check (``experiments/bench/gpu_check.sh``) uses :mod:`.stages` (time budget, JSON stage
records), :mod:`.stream_check` (Wan-size streaming rows, end to end with the VAE) and :mod:`.vae`
(a randomly initialised Wan VAE); its training stage is :mod:`lightning_modules.train_check`.

The `train` section (training iterations of every experiment) needs the paradigms, so it lives with
them in :mod:`lightning_modules.bench`, which registers it here and runs the same command line:
``python -m lightning_modules.bench``. The library imports nothing from it.
"""

# Importing the section modules registers them; SECTIONS keeps import order, which is the default
# run order: backbone, generation, memory, official (alphabetical, so import sorting keeps it), then train
# when lightning_modules.bench registers it.
from forcing.bench.backbone import bench_backbone
from forcing.bench.cli import main, parse_args
from forcing.bench.generation import bench_generation
from forcing.bench.memory import bench_memory
from forcing.bench.official import bench_official
from forcing.bench.probes import CacheProbe, stream_alloc
from forcing.bench.registry import SECTIONS, section
from forcing.bench.streaming import GenSpec
from forcing.bench.timing import time_call
from forcing.bench.worlds import BenchWorld

__all__ = [
    "SECTIONS",
    "BenchWorld",
    "CacheProbe",
    "GenSpec",
    "bench_backbone",
    "bench_generation",
    "bench_memory",
    "bench_official",
    "main",
    "parse_args",
    "section",
    "stream_alloc",
    "time_call",
]
