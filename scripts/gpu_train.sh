#!/usr/bin/env bash
# Paper-profile training on a lent GPU machine, with the JAX backend (issue 3).
#
# Runs on the device machine from the repository root; everything it needs travels with the tree:
#   .whl/                        keras, namex, optree wheels for Python 3.12 (`make gpu-wheels` here)
#   data/processed/wallpapers/   the prepared images (`make data` here)
# It builds a training set with the paper's settings for QF2 90 (QF1 60..98) from the prepared
# wallpapers on all cores (RAISE cannot be carried), trains DenseNet-40 with the classification-like
# head, Lr, Adam 1e-5, batch 32 for GPU_MINUTES, and writes the run folder (config, log,
# checkpoint, state) and the console log to $OUT.
#
# Knobs (environment): GPU_MINUTES (8), GPU_PATCHES_PER_QF1 (10000), GPU_QF2 (90), GPU_SEED (0),
# GPU_TRAIN_ARGS (extra `qpaper train` arguments), GPU_WHEELS (.whl), GPU_DATA (where the patches go),
# KERAS_BACKEND (jax), PYTHON (python3).
# The tests run it on CPU with tiny settings.
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
mkdir -p "$OUT"
data=${GPU_DATA:-/tmp/qpaper-gpu-data}
{
  echo "# $(date -u +%FT%TZ) backend=$KERAS_BACKEND host=$(hostname) cores=$(nproc)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  "$PYTHON" -m qpaper.cli dataset build --profile paper --split train --qf2 "${GPU_QF2:-90}" \
    --source wallpapers --patches-per-qf1 "${GPU_PATCHES_PER_QF1:-10000}" --seed "${GPU_SEED:-0}" \
    --out "$data" --quiet
  "$PYTHON" -m qpaper.cli train --profile paper --qf2 "${GPU_QF2:-90}" --data "$data" --out "$OUT/run" \
    --seed "${GPU_SEED:-0}" --max-minutes "${GPU_MINUTES:-8}" --quiet ${GPU_TRAIN_ARGS:-}
} 2>&1 | tee "$OUT/console.log"
