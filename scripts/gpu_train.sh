#!/usr/bin/env bash
# One lent-GPU session (issue 13), run ON the device machine from the repository root:
#   OUT=$OUT bash scripts/gpu_train.sh
# It installs the carried Keras wheels (the device has JAX, no TensorFlow), then
# `qpaper gpu run`: builds the gpu profile's QF2 90 data (QF1 60..98, random shift, wallpapers'
# training scenes; held-out test scenes random-shift and aligned) on all cores, resumes the
# committed run (models/gpu/qf2-90-class-Lr: weights, optimizer, schedule position), trains
# DenseNet-40 (warm-up + cosine to 2e-3, batch 256, bfloat16) until GPU_MINUTES (all of it, data
# and evaluation included) leaves the reserve, evaluates beside the constant prior and writes
# $OUT/run (config, state, log.csv with patches/s, checkpoint.keras, eval.json) and
# $OUT/run/console.log. Back here: `qpaper gpu register <files_at>/run`, then commit models/gpu.
#
# What travels (the `run` tool's carry): .whl (`make gpu-wheels`) and data/processed/wallpapers
# (`make data`). Knobs (environment): GPU_MINUTES (8.5), GPU_ARCH (densenet | dct), GPU_SEED (0),
# GPU_ARGS (extra `qpaper gpu run` arguments), GPU_WHEELS (.whl), GPU_DATA (/tmp/qpaper-gpu-data),
# KERAS_BACKEND (jax), PYTHON (python3). The tests rehearse it on CPU with tiny settings.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder that receives the run}"
PYTHON=${PYTHON:-python3}
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
wheels=${GPU_WHEELS:-.whl}
if compgen -G "$wheels/*.whl" >/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/qpaper-site "$wheels"/*.whl
  export PYTHONPATH=/tmp/qpaper-site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
[ -f data/processed/wallpapers/manifest.tsv ] || { echo "gpu_train: data/processed/wallpapers is missing (run make data, carry it)" >&2; exit 2; }
mkdir -p "$OUT/run"
{
  echo "# $(date -u +%FT%TZ) backend=$KERAS_BACKEND host=$(hostname) cores=$(nproc) commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  "$PYTHON" -m qpaper.cli gpu run --out "$OUT" --data "${GPU_DATA:-/tmp/qpaper-gpu-data}" \
    --minutes "${GPU_MINUTES:-8.5}" --arch "${GPU_ARCH:-densenet}" --seed "${GPU_SEED:-0}" ${GPU_ARGS:-}
} 2>&1 | tee "$OUT/run/console.log"
