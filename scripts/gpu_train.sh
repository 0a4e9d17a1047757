#!/usr/bin/env bash
# One lent-GPU session (issues 13, 22), run ON the device machine from the repository root:
#   OUT=$OUT bash scripts/gpu_train.sh
# It installs the carried Keras wheels (the device has JAX, no TensorFlow), then `qpaper gpu run`:
# builds the gpu profile's QF2 90 data (QF1 60..98, random shift, wallpapers' training scenes, an
# aligned set for the curriculum; held-out test scenes random-shift and aligned) on all cores, puts
# it in the GPU's memory, and either continues the committed run (models/gpu/qf2-90-class-Lr) or
# sweeps the recipes (GPU_RECIPES), each on the same number of patches, and continues the one with
# the best validation accuracy until GPU_MINUTES (all of it, data and evaluation included) leaves
# the reserve; evaluates beside the constant prior. It writes $OUT/run: config.json, state.json,
# log.csv, sweep.csv, checkpoint.keras, eval.json, jax-cache.tar (the compilation cache, reused by
# the next session on the same kind of device) and console.log: 8 files, each under 16 MiB.
# Back here: `make gpu-register RUN=<files_at>/run`, then commit what it wrote.
#
# What travels (the `run` tool's carry): .whl (`make gpu-wheels`) and data/processed/wallpapers
# (`make data`). Knobs (environment): GPU_MINUTES (8.5), GPU_RECIPES (the default sweep),
# GPU_BATCH (512), GPU_AUTOTUNE (XLA GPU autotuning level, 0), GPU_SEED (0), GPU_ARGS (more
# `qpaper gpu run` arguments), GPU_WHEELS (.whl), GPU_DATA (/tmp/qpaper-gpu-data), PYTHON (python3).
# The tests rehearse it on CPU with tiny settings (tests/test_train.py).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder that receives the run}"
PYTHON=${PYTHON:-python3}
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
# before JAX starts: autotuning off unless asked (the first session spent ~230 s compiling with it)
export XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_autotune_level=${GPU_AUTOTUNE:-0}"
wheels=${GPU_WHEELS:-.whl}
if compgen -G "$wheels/*.whl" >/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/qpaper-site "$wheels"/*.whl
  export PYTHONPATH=/tmp/qpaper-site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
[ -f data/processed/wallpapers/manifest.tsv ] || { echo "gpu_train: data/processed/wallpapers is missing (run make data, carry it)" >&2; exit 2; }
mkdir -p "$OUT/run"
recipes=()
[ -n "${GPU_RECIPES:-}" ] && recipes=(--recipes "$GPU_RECIPES")
{
  echo "# $(date -u +%FT%TZ) host=$(hostname) cores=$(nproc) commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  "$PYTHON" -m qpaper.cli gpu run --out "$OUT" --data "${GPU_DATA:-/tmp/qpaper-gpu-data}" --cache "$OUT/jax-cache" \
    --minutes "${GPU_MINUTES:-8.5}" --batch "${GPU_BATCH:-512}" --autotune -1 --seed "${GPU_SEED:-0}" \
    "${recipes[@]}" ${GPU_ARGS:-}
} 2>&1 | tee "$OUT/run/console.log"
