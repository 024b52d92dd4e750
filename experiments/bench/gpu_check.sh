#!/usr/bin/env bash
# The prepared GPU check (experiments/bench/README.md, "GPU check"): installs Hydra and diffusers from
# the wheels carried in .whl/ when they do not import, then runs `python3 -m experiments.bench.gpu_check`
# with the given flags (default --out: $OUT when set, else runs/gpu_check) under a hard time limit
# (GPU_CHECK_TIMEOUT seconds, default 450) that still leaves every finished stage's JSON on disk.
#   bash experiments/bench/gpu_check.sh                         # on the GPU machine, .whl/ carried
#   PYTHON=.venv/bin/python bash experiments/bench/gpu_check.sh --device cpu --tiny
set -uo pipefail
cd "$(dirname "$0")/../.."
py=${PYTHON:-python3}
if ! "$py" -c "import hydra, diffusers" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    site=${GPU_CHECK_SITE:-/tmp/site}
    "$py" -m pip install -q --no-index --no-deps --target "$site" .whl/*.whl || exit 1
    export PYTHONPATH="$site:${PYTHONPATH:-}"
  else
    echo "hydra/diffusers do not import and there is no .whl/: run ../shared/offline/wheels-py312.sh first" >&2
    exit 1
  fi
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
out=${OUT:-runs/gpu_check}
timeout "${GPU_CHECK_TIMEOUT:-450}" "$py" -m experiments.bench.gpu_check --out "$out" "$@"
