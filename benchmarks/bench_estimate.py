"""``qpaper estimate`` on whole double JPEGs made from photos outside every training scene, by
first-table family and last quality (issue 21, items 5-6).

The skimage photos (never in a mini training set). Three parts:

- ``libjpeg, QF2 90``: QF1 {60, 70, 80, 85, 95}, first compression by OpenCV (4:2:0) or by
  Pillow (4:4:4), then OpenCV at QF2 90 (the cases of the earlier benchmark, unchanged);
- ``held-out families, QF2 90``: a first table drawn per photo from each family the any-QF2 model
  never trained on (:data:`qpaper.tables.TEST_FAMILIES`), Pillow 4:2:0, then OpenCV at QF2 90;
- ``last quality``: QF2 {70, 75, 80, 85, 95} by OpenCV, first tables drawn per photo from
  ``libjpeg`` (a trained family) and the held-out ``perturbed-heldout`` and ``park-heldout``.

Every file is made aligned and with a seeded random grid shift (r, c) != (0, 0) between the
compressions. Methods: ``cnn``, the default of ``qpaper estimate`` (the registered any-QF2
model when there is one); ``cnn-per-qf2``, the per-QF2 mini models as the default picked them
before (the model of the nearest of QF2 80 and 90); [7] ``galvan`` and [5] ``bianchi`` as
``qpaper estimate --method`` runs them (first grid sought first). Scored as
:mod:`qpaper.wild` scores patches: the share of the 15 coefficients right through the wide
head's classes (0 without a table), and on the coefficients with a trace (true q1 above q2). For
``cnn`` with a wide head, the expected calibration error of its per-coefficient confidence on
whole files and a reliability figure. Writes ``results/benchmarks/estimate.txt`` (and
``estimate-reliability.png``) with a provenance sidecar.
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

from qpaper import calibration, estimate, jpeg, tables, wild  # noqa: E402
from qpaper.paths import atomic_write_bytes, models_dir  # noqa: E402
from qpaper.provenance import hardware, record, write_sidecar  # noqa: E402
from qpaper.sources import get_source, load_image  # noqa: E402

QF1 = (60, 70, 80, 85, 95)
FIRST = (("opencv", "4:2:0"), ("pillow", "4:4:4"))
LAST_QF2 = (70, 75, 80, 85, 95)
LAST_FAMILIES = ("libjpeg", "perturbed-heldout", "park-heldout")
METHODS = ("cnn", "cnn-per-qf2", "galvan", "bianchi")
OUT = Path(__file__).resolve().parent.parent / "results" / "benchmarks" / "estimate.txt"


def double_jpeg(img: np.ndarray, first, qf2: int, shift) -> tuple[bytes, np.ndarray]:
    """(the final file, the true Q1 zig-zag 64) of one case; ``first`` compresses the photo."""
    b1 = first(img)
    r, c = shift
    d1 = np.ascontiguousarray(jpeg.decode(b1)[r:, c:])
    return jpeg.encode_opencv(d1, qf2), jpeg.zigzag(jpeg.luminance_table(b1))


def cases(img: np.ndarray, photo: int, seed: int):
    """(part, family, first-table name, QF2, first-compression function) of one photo."""
    for qf1 in QF1:
        for enc, sub in FIRST:
            yield "libjpeg, QF2 90", "libjpeg", f"{enc} {qf1}", 90, lambda a, q=qf1, e=enc, s=sub: jpeg.encode(a, q, e, s)
    draws = {}
    for fam in set(tables.TEST_FAMILIES) | set(LAST_FAMILIES):
        t = tables.draw(fam, tables.family_rng(fam, seed, "bench", photo))
        draws[fam] = (t, lambda a, t=t: jpeg.encode_pillow(a, table=t, chroma_table=tables.chroma_for(t),
                                                          subsampling="4:2:0"))
    for fam in tables.TEST_FAMILIES:
        yield "held-out families, QF2 90", fam, fam, 90, draws[fam][1]
    for qf2 in LAST_QF2:
        for fam in LAST_FAMILIES:
            yield "last quality", fam, fam, qf2, draws[fam][1]


def per_qf2_model(qf2: int) -> str:
    """The per-QF2 mini model the default of ``qpaper estimate`` picked before the any-QF2 one."""
    q = min((80, 90), key=lambda m: (abs(m - qf2), -m))
    return str(models_dir("mini") / f"qf2-{q}-class-Lr" / "model.keras")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    ap.add_argument("--photos", type=int, default=None, help="only the first N photos (a quick look)")
    a = ap.parse_args()
    t0 = time.time()
    rng = np.random.default_rng([a.seed, 0xE57])
    recs = get_source("skimage")[:a.photos]
    rows, calib = [], []
    cache = {}
    with tempfile.TemporaryDirectory() as tmp:
        for p, rec in enumerate(recs):
            img = load_image(rec.path, rec.sha256)
            for part, family, first_name, qf2, first in cases(img, p, a.seed):
                k = int(rng.integers(1, 64))
                for grid, shift in (("aligned", (0, 0)), ("random shift", (k // 8, k % 8))):
                    data, q1 = double_jpeg(img, first, qf2, shift)
                    f = Path(tmp) / f"{rec.id}-{first_name.replace(' ', '')}-{qf2}-{shift[0]}{shift[1]}.jpg"
                    f.write_bytes(data)
                    z2 = jpeg.zigzag(jpeg.luminance_table(data))
                    truth, tr = wild.in_classes(q1[None])[0], wild.traced(q1[None], z2[None])[0]
                    for method in a.methods:
                        t = time.perf_counter()
                        kw = dict(method="cnn", model=per_qf2_model(qf2)) if method == "cnn-per-qf2" else dict(method=method)
                        r = estimate.run(f, seed=a.seed, progress=False, models=cache, **kw)
                        hit = np.zeros(15, bool) if r["q1"] is None else wild.in_classes(np.array([r["q1"]]))[0] == truth
                        rows.append({"part": part, "family": family, "first": first_name, "qf2": qf2, "grid": grid,
                                     "image": rec.id, "method": method, "accuracy": float(hit.mean()),
                                     "traced_acc": float(hit[tr].mean()) if tr.any() else np.nan,
                                     "exact": bool(hit.all()), "table": r["q1"] is not None,
                                     "grid_found": (r["grid_shift"] == list(shift)) if "grid_shift" in r else None,
                                     "supported": r["nearest"].get("supported") if r["nearest"] else None,
                                     "seconds": time.perf_counter() - t, "model": r.get("model", "")})
                        if method == "cnn" and "no_trace" in r:
                            calib += [{"part": part, "family": family, "confidence": c, "right": h}
                                      for c, h in zip(r["confidence"], hit)]
            print(f"{rec.id}: done ({time.time() - t0:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    df["grid_found"] = df["grid_found"].astype(float)
    models = ", ".join(sorted(set(df[df.method == "cnn"]["model"])))
    lines = [f"# qpaper estimate on whole double JPEGs: {len(df) // len(a.methods)} files from the {len(recs)} "
             f"skimage photos (no mini training scene), aligned or a random grid shift; {hardware()}",
             "# accuracy = share of the 15 zig-zag coefficients right (0 without a table), read through the wide head's "
             "classes (a step above R_k and an answer 'at least R_k+1' agree); traced_acc = the same on the coefficients "
             "whose true q1 is above q2; exact = all 15 right; table = share of files given a table; grid_found = share "
             "whose first grid was found (galvan and bianchi seek it first; bianchi then uses its non-aligned model, "
             "galvan gives no table on a shifted grid)",
             f"# cnn = the default of qpaper estimate: {models}; cnn-per-qf2 = models/mini/qf2-{{80,90}}-class-Lr, the "
             "nearest QF2 (the default before the any-QF2 model)",
             f"# families: libjpeg trained on by the any-QF2 model; held out (never trained on): "
             f"{', '.join(tables.TEST_FAMILIES)} (qpaper/tables.py)", ""]
    agg = dict(accuracy=("accuracy", "mean"), traced_acc=("traced_acc", "mean"), exact=("exact", "mean"),
               table=("table", "mean"), grid_found=("grid_found", "mean"), files=("accuracy", "size"),
               s_per_file=("seconds", "mean"))
    summary = df.groupby(["part", "family", "grid", "method"], sort=False).agg(**agg).reset_index()
    for part in df["part"].unique():
        lines += [f"## {part}", summary[summary.part == part].drop(columns="part").round(4).to_string(index=False), ""]
    last = df[df.part == "last quality"].pivot_table(index=["family", "grid", "qf2"], columns="method",
                                                      values="accuracy", aggfunc="mean")
    lines += ["## last quality: accuracy per QF2", last[[m for m in a.methods]].round(3).to_string(), ""]
    by = df[df.part == "libjpeg, QF2 90"].pivot_table(index=["grid", "first"], columns="method", values="accuracy",
                                                      aggfunc="mean")
    lines += ["## libjpeg, QF2 90: accuracy per first encoder and QF1", by[[m for m in a.methods]].round(3).to_string(), ""]
    extra = {}
    if calib:
        c = pd.DataFrame(calib)
        held = c[c.family.isin(tables.TEST_FAMILIES)]
        extra = {"ece_files_all": calibration.ece(c.confidence, c.right),
                 "ece_files_heldout": calibration.ece(held.confidence, held.right)}
        lines += [f"## calibration of the cnn's per-coefficient confidence on whole files: ECE {extra['ece_files_all']:.4f} "
                  f"over all {len(c)} coefficients, {extra['ece_files_heldout']:.4f} over the {len(held)} of held-out "
                  f"families ({calibration.BINS} bins)", calibration.reliability(held.confidence, held.right).round(4).to_string(index=False), ""]
        from qpaper import figures
        figures.reliability_figure({"whole files, held-out families": calibration.reliability(held.confidence, held.right),
                                    "whole files, all": calibration.reliability(c.confidence, c.right)},
                                   OUT.with_name("estimate-reliability.png"))
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_bytes(OUT, text.encode())
    write_sidecar(OUT, record("bench", a.seed, t0, command="python benchmarks/bench_estimate.py " + " ".join(sys.argv[1:]),
                              summary=summary.round(4).to_dict("records"), **extra))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
