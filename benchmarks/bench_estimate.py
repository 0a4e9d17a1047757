"""``qpaper estimate`` on whole double JPEGs made from photos outside every training scene.

The skimage photos (never in a mini training set), QF1 {60, 70, 80, 85, 95}, first compression
by OpenCV (4:2:0) or by Pillow (4:4:4), then cropped by a grid shift (aligned: none; random: a
seeded (r, c) != (0, 0)), then OpenCV at QF2 90. Each file is estimated by the registered CNN
(the default of ``qpaper estimate``), by [7] galvan and by [5] bianchi (as ``qpaper estimate
--method`` runs them: the first grid is sought first; bianchi uses its non-aligned model on a
shifted grid, galvan gives no table there), and scored by the share of the 15 coefficients that
equal the true Q1 read from the first file (0 when no table is given), with the share of files
given a table and, for galvan and bianchi, the share whose first grid was found. Writes ``results/benchmarks/estimate.txt`` with a
provenance sidecar.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from qpaper import estimate, jpeg  # noqa: E402
from qpaper.provenance import hardware, record, write_sidecar  # noqa: E402
from qpaper.sources import get_source, load_image  # noqa: E402
from qpaper.paths import atomic_write_bytes

QF1 = (60, 70, 80, 85, 95)
FIRST = (("opencv", "4:2:0"), ("pillow", "4:4:4"))
METHODS = ("cnn", "galvan", "bianchi")


def double_jpeg(img: np.ndarray, qf1: int, encoder: str, subsampling: str, shift) -> tuple[bytes, np.ndarray]:
    """(the final file, the true Q1 zig-zag 15) of one case."""
    b1 = jpeg.encode(img, qf1, encoder, subsampling)
    r, c = shift
    d1 = np.ascontiguousarray(jpeg.decode(b1)[r:, c:])
    return jpeg.encode_opencv(d1, 90), jpeg.zigzag(jpeg.luminance_table(b1))[:15]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    a = ap.parse_args()
    t0 = time.time()
    rng = np.random.default_rng([a.seed, 0xE57])
    recs = get_source("skimage")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rec in recs:
            img = load_image(rec.path, rec.sha256)
            for qf1 in QF1:
                for encoder, sub in FIRST:
                    k = int(rng.integers(1, 64))
                    for grid, shift in (("aligned", (0, 0)), ("random shift", (k // 8, k % 8))):
                        data, q1 = double_jpeg(img, qf1, encoder, sub, shift)
                        f = Path(tmp) / f"{rec.id}-{encoder}{qf1}-{shift[0]}{shift[1]}.jpg"
                        f.write_bytes(data)
                        for method in a.methods:
                            t = time.perf_counter()
                            r = estimate.run(f, method=method, seed=a.seed, progress=False)
                            hit = np.zeros(15, bool) if r["q1"] is None else np.array(r["q1"]) == q1
                            rows.append({"image": rec.id, "qf1": qf1, "first": f"{encoder} {sub}", "grid": grid,
                                         "shift": f"{shift[0]},{shift[1]}", "method": method,
                                         "accuracy": float(hit.mean()), "exact": bool(hit.all()),
                                         "table": r["q1"] is not None,
                                         "grid_found": (r["grid_shift"] == list(shift)) if "grid_shift" in r else None,
                                         "nearest_qf1": r["nearest"]["qf"] if r["nearest"] else None,
                                         "seconds": time.perf_counter() - t,
                                         "windows": r["windows"], "model": r.get("model", "")})
                print(f"{rec.id} QF1 {qf1}: done", flush=True)
    df = pd.DataFrame(rows)
    lines = [f"# qpaper estimate on whole double JPEGs: {len(df) // len(a.methods)} files from the {len(recs)} "
             f"skimage photos (no mini training scene), QF1 {list(QF1)} -> OpenCV QF2 90, first compression by "
             f"OpenCV 4:2:0 or Pillow 4:4:4, aligned or a random grid shift; {hardware()}",
             "# accuracy = share of the 15 zig-zag coefficients equal to the true Q1 (0 without a table); exact = all "
             "15 right; table = share of files given a table; grid_found = share whose first grid was found (galvan and "
             "bianchi seek it first, as qpaper estimate --method does; bianchi then uses its non-aligned model, "
             "galvan gives no table on a shifted grid)",
             f"# cnn = the registered model for QF2 90: {', '.join(sorted(set(df[df.method == 'cnn']['model'])))}",
             ""]
    df["grid_found"] = df["grid_found"].astype(float)
    summary = df.groupby(["grid", "method"], sort=False).agg(accuracy=("accuracy", "mean"), exact=("exact", "mean"),
                                                            table=("table", "mean"), grid_found=("grid_found", "mean"),
                                                            files=("accuracy", "size"),
                                                            s_per_file=("seconds", "mean")).reset_index()
    lines.append(summary.round(4).to_string(index=False))
    lines.append("")
    by = df.pivot_table(index=["grid", "first", "qf1"], columns="method", values="accuracy", aggfunc="mean")
    lines.append("accuracy per QF1 and first encoder:")
    lines.append(by[[m for m in a.methods]].round(3).to_string())
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).resolve().parent.parent / "results" / "benchmarks" / "estimate.txt"
    atomic_write_bytes(out, text.encode())
    write_sidecar(out, record("bench", a.seed, t0, command="python benchmarks/bench_estimate.py "
                              + " ".join(sys.argv[1:]), summary=summary.round(4).to_dict("records")))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
