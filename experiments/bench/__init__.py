"""The GPU check (``python -m experiments.bench.gpu_check``); the benchmark tables are in README.md."""
