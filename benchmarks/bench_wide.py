"""Prediction speed of the committed any-QF2 model (``models/mini/any-qf2-wide``, the default of
``qpaper estimate``) against the per-QF2 mini model it replaced there (``qf2-90-class-Lr``), as
a ratio from one run: patches/s of ``qpaper.evaluate.predict_q1`` on the same patches, the same
batch, best of ``--repeats``. Writes ``results/benchmarks/speed-wide.txt`` with a provenance
sidecar.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from qpaper import dataset, evaluate, shards  # noqa: E402
from qpaper.djpeg import DatasetSpec  # noqa: E402
from qpaper.paths import atomic_write_bytes, model_path  # noqa: E402
from qpaper.profiles import EVAL_BATCH  # noqa: E402
from qpaper.provenance import hardware, record, write_sidecar  # noqa: E402
from qpaper.registry import load_file  # noqa: E402
from timing import rate  # noqa: E402

MODELS = ("qf2-90-class-Lr", "any-qf2-wide")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--patches", type=int, default=3072)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    t0 = time.time()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        spec = DatasetSpec(source="skimage", split="all", qf2=90, qf1=(60, 80, 95), patches_per_image=50,
                           patches_per_qf1=a.patches // 3)
        shards.build(spec, tmp, workers=1, progress=False, log=lambda *_: None)
        d = dataset.open_dataset(tmp)
        n = sum(len(x) for x in d["x"])
        for name in MODELS:
            m = load_file(model_path("mini", name))
            evaluate.predict_q1(m, d, EVAL_BATCH, progress=False)  # trace first
            out[name] = max(rate(n, evaluate.predict_q1, m, d, EVAL_BATCH, progress=False) for _ in range(a.repeats))
    ratio = out["any-qf2-wide"] / out["qf2-90-class-Lr"]
    text = (f"# prediction patches/s (qpaper.evaluate.predict_q1, batch {EVAL_BATCH}, {n} patches, best of "
            f"{a.repeats}), one run; {hardware()}\n"
            + "".join(f"{k}: {v:.0f} patches/s\n" for k, v in out.items())
            + f"any-qf2-wide / qf2-90-class-Lr: {ratio:.2f}\n")
    print(text, end="")
    path = Path(__file__).resolve().parent.parent / "results" / "benchmarks" / "speed-wide.txt"
    atomic_write_bytes(path, text.encode())
    write_sidecar(path, record("mini", 0, t0, command="python benchmarks/bench_wide.py " + " ".join(sys.argv[1:]),
                               patches_per_s=out, ratio=ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
