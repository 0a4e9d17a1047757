"""Training and prediction throughput of qpaper's loops against plain Keras, as ratios from one run.

- training: ``qpaper.train.Patches`` (memory-mapped shards, per-epoch seeded shuffle, label
  clipping) fed to ``model.fit``, against ``model.fit`` on the same patches as in-memory arrays;
- prediction: ``qpaper.evaluate.predict_q1`` (batched ``predict_on_batch`` and decoding), against
  ``model.predict`` on in-memory arrays.
Same model (DenseNet-22 by default; --depth 13 for the mini profile's, 40 for the paper's), same
patches, one process.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from qpaper import dataset, evaluate, losses, model, shards, train  # noqa: E402
from qpaper.djpeg import DatasetSpec  # noqa: E402
from qpaper.provenance import hardware, record, write_sidecar  # noqa: E402
from qpaper.paths import atomic_write_bytes  # noqa: E402
from timing import rate  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=22)
    ap.add_argument("--patches", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        spec = DatasetSpec(source="skimage", split="all", qf2=90, qf1=(60, 80, 95), patches_per_image=16,
                           patches_per_qf1=a.patches // 3)
        shards.build(spec, tmp, workers=1, progress=False, log=lambda *_: None)
        d = dataset.open_dataset(tmp)
        n = sum(len(x) for x in d["x"])
        seq = train.Patches(d, np.arange(n), a.batch, seed=0)
        x, y = seq.take(np.arange(n))
        keras.utils.set_random_seed(0)
        m = model.build_model("class", depth=a.depth)
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses.BlockLoss(losses.C), metrics=model.metrics_for("class"),
                  jit_compile=train._jit())
        # trace both input paths once before timing
        m.fit(x[: a.batch * 2], y[: a.batch * 2], batch_size=a.batch, epochs=1, verbose=0)
        m.fit(train.Patches(d, np.arange(a.batch * 2), a.batch, seed=1), epochs=1, verbose=0)
        fit_plain, fit_ours, pred_plain, pred_ours = [], [], [], []
        for _ in range(a.repeats):  # alternate the two, keep each one's best: less exposed to noise
            fit_plain.append(rate(n, m.fit, x, y, batch_size=a.batch, epochs=1, verbose=0))
            fit_ours.append(rate(n, m.fit, seq, epochs=1, verbose=0))
            pred_plain.append(rate(n, m.predict, x, batch_size=256, verbose=0))
            pred_ours.append(rate(n, evaluate.predict_q1, m, d, 256, progress=False))
        plain_fit, ours_fit, plain_pred, ours_pred = map(max, (fit_plain, fit_ours, pred_plain, pred_ours))
    lines = [f"# model benchmark on {hardware()}, backend {keras.backend.backend()}, "
             f"DenseNet-{a.depth} class head, {n} patches 64x64x3, batch {a.batch}, best of {a.repeats} alternated runs",
             f"{'':<12} {'plain Keras p/s':>16} {'qpaper p/s':>11} {'ratio':>6}",
             f"{'training':<12} {plain_fit:>16.1f} {ours_fit:>11.1f} {ours_fit / plain_fit:>6.2f}",
             f"{'prediction':<12} {plain_pred:>16.1f} {ours_pred:>11.1f} {ours_pred / plain_pred:>6.2f}"]
    print("\n".join(lines))
    out = Path(__file__).resolve().parent.parent / "results" / "benchmarks" / f"model-depth{a.depth}.txt"
    atomic_write_bytes(out, ("\n".join(lines) + "\n").encode())
    write_sidecar(out, record("bench", 0, t0, command=f"python benchmarks/bench_model.py --depth {a.depth}"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
