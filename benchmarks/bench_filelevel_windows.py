"""Issue 31, item 3: could the file-level estimator (:mod:`qpaper.filelevel`) serve ``localize``?
It is applied to single 64x64 windows (64 blocks: the evidence of one window) of the mini
patch test sets of the any-QF2 model (``wild-test``, random grid shift, and ``wild-test-aligned``;
held-out scenes; first tables libjpeg and the never-trained families), beside the any-QF2 window
model (``models/mini/any-qf2-wide``, the default of ``localize``), on the same seeded sample of
patches. Score: share of the 15 coefficients right through the wide classes (AvgAcc), per family
and grid. The window's luma is the patch's (``jpeg.to_luma``), its levels are recovered from it
(:func:`qpaper.filelevel.levels_from_luma`; a patch has no file), the grid search runs on the
window. Writes ``results/benchmarks/filelevel-windows.txt`` with a provenance sidecar.

Usage: python benchmarks/bench_filelevel_windows.py [--per-family 150] [--seed 0]
(builds the two test sets of the mini profile first if they are missing).
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from qpaper import filelevel as fl  # noqa: E402
from qpaper import grid, jpeg  # noqa: E402
from qpaper.paths import atomic_write_bytes, dataset_dir, model_path, models_dir  # noqa: E402
from qpaper.provenance import hardware, record, write_sidecar  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "results" / "benchmarks" / "filelevel-windows.txt"
TESTS = {"wild-test": "random shift", "wild-test-aligned": "aligned"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-family", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.time()
    from qpaper import experiments
    from qpaper.dataset import last_tables, open_dataset
    from qpaper.evaluate import predict_q1
    from qpaper.registry import file_model, load_file
    from qpaper.wild import in_classes
    experiments.build_datasets("mini", a.seed, names=list(TESTS))
    wide = load_file(model_path("mini", "any-qf2-wide"))
    fm, _ = file_model(models_dir("mini") / fl.NAME)
    rng = np.random.default_rng([a.seed, 0x3164])
    rows = []
    for name, gname in TESTS.items():
        d = open_dataset(dataset_dir("mini", name, a.seed), verify=False)
        x = np.concatenate([np.asarray(v) for v in d["x"]])
        q1 = np.concatenate([np.asarray(v) for v in d["q1"]])
        z2 = np.concatenate([np.asarray(v) for v in last_tables(d)])
        fam = np.concatenate([np.asarray(v) for v in d["meta"]])["qf1"]
        families = d["manifest"]["qf1"]
        pick = np.sort(np.concatenate([rng.choice(np.flatnonzero(fam == f), min(a.per_family, int((fam == f).sum())),
                                                  replace=False) for f in range(len(families))]))
        sub = {"x": [x[pick]], "q2": [z2[pick]], "manifest": d["manifest"]}
        window = predict_q1(wide, sub, progress=False)
        cases = []
        for i in pick:
            luma = jpeg.to_luma(x[i])
            shift, conf = grid.find_grid(luma)
            ev = fl.evidence(luma, jpeg.unzigzag(z2[i]), None, shift, conf, a.seed)
            cases.append(fl.case_of(ev, fl.file_log_likelihoods(ev)))
        batch = {k: np.concatenate([c[k] for c in cases]) for k in cases[0]}
        ans, _ = fl.classes(fm.probs(batch))
        truth = in_classes(q1[pick])
        for f, fname in enumerate(families):
            m = fam[pick] == f
            rows.append({"grid": gname, "family": fname, "patches": int(m.sum()),
                         "file-level on the window": float((ans[m] == truth[m]).mean()),
                         "any-QF2 window model": float((in_classes(window[m]) == truth[m]).mean())})
        print(f"{name}: done ({time.time() - t0:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    text = "\n".join([
        f"# The file-level estimator on single 64x64 windows vs the any-QF2 window model (issue 31, item 3): the same "
        f"{a.per_family} seeded patches per family and grid of the mini test sets (held-out scenes); AvgAcc through the "
        f"wide classes; seed {a.seed}; {hardware()}",
        df.round(3).to_string(index=False), ""]) + "\n"
    print(text)
    atomic_write_bytes(OUT, text.encode())
    write_sidecar(OUT, record("mini", a.seed, t0, command="python benchmarks/bench_filelevel_windows.py "
                              + " ".join(sys.argv[1:]), rows=df.round(4).to_dict("records")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
