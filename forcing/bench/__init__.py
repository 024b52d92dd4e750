"""Speed and memory tables printed as markdown by ``python -m forcing.bench <section> [...]``.

One module per section, each registering itself with ``@section("name")`` (:mod:`.registry`) when
imported: :mod:`.backbone`, :mod:`.generation`, :mod:`.memory`, :mod:`.train`. Shared pieces:
:mod:`.timing` (timed calls, the machine line), :mod:`.worlds` (random-input presets),
:mod:`.streaming` (generator configurations, timed streams), :mod:`.probes` (KV cache and
allocation probes), :mod:`.experiments` (``conf/experiment``); the command line is :mod:`.cli`.
"""

# Importing the section modules registers them; SECTIONS keeps import order, which is the default
# run order: backbone, generation, memory, train (alphabetical, so import sorting keeps it).
from forcing.bench.backbone import bench_backbone
from forcing.bench.cli import main, parse_args
from forcing.bench.experiments import CONF_DIR, discover_experiments
from forcing.bench.generation import bench_generation
from forcing.bench.memory import bench_memory
from forcing.bench.probes import CacheProbe, stream_alloc
from forcing.bench.registry import SECTIONS, section
from forcing.bench.streaming import GenSpec
from forcing.bench.timing import time_call
from forcing.bench.train import bench_train
from forcing.bench.worlds import BenchWorld

__all__ = [
    "CONF_DIR",
    "SECTIONS",
    "BenchWorld",
    "CacheProbe",
    "GenSpec",
    "bench_backbone",
    "bench_generation",
    "bench_memory",
    "bench_train",
    "discover_experiments",
    "main",
    "parse_args",
    "section",
    "stream_alloc",
    "time_call",
]
