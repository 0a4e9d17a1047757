"""Which front end learns on two CPU cores: the same training time, data and head for each.

Each candidate trains with ``qpaper.train.train`` (class head, loss Lr, the mini profile's
schedule: warm-up then cosine decay, sized to the candidate's own measured speed so that every
one of them finishes its schedule inside the same budget) on the mini QF2-90 training set, and
is scored on the held-out test scenes, random shift and aligned:

- ``densenet13``: the pixel DenseNet-13 the mini profile used before (the paper's backbone, smaller);
- ``dct-grid``: the block-DCT front end on the grid of the last compression only (blind to a
  shifted first grid);
- ``dct-all-nf15``: the block-DCT front end at all 64 grid phases, reading the 15 coefficients
  it estimates;
- ``dct-all``: the same reading the first 28 (the mini profile's choice).

Every dct candidate takes the rest of its settings from the mini profile (nf 28 unless said).

Writes ``results/benchmarks/arch.txt`` (and a provenance sidecar). Needs the mini datasets
(``make datasets``). Takes about 4 x ``--minutes`` plus evaluation.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from qpaper import evaluate, losses, model, paths, results, train  # noqa: E402
from qpaper.profiles import get_profile  # noqa: E402
from qpaper.provenance import hardware, record, write_sidecar  # noqa: E402
from qpaper.paths import atomic_write_bytes  # noqa: E402

CANDIDATES = {
    "densenet13": {"arch": "densenet", "depth": 13, "growth": 12, "batch": 32, "lr": 1e-3},
    "dct-grid": {"arch": "dct", "phases": "grid"},
    "dct-all-nf15": {"arch": "dct", "phases": "all", "nf": 15},
    "dct-all": {"arch": "dct", "phases": "all"},
}


def speed(data: dict, cfg: dict, steps: int = 6) -> float:
    """Training patches/s of a candidate, measured on a few batches after a warm-up."""
    m = model.build_model("class", cfg["depth"], cfg["growth"], cfg["dropout"], arch=cfg["arch"], width=cfg["width"],
                          hidden=cfg["hidden"], phases=cfg["phases"], nf=cfg["nf"])
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses.BlockLoss(losses.C), jit_compile=train._jit())
    seq = train.Patches(data, np.arange(cfg["batch"] * (steps + 2)), cfg["batch"], seed=1)
    for i in range(2):
        m.train_on_batch(*seq[i])
    t = time.perf_counter()
    for i in range(2, steps + 2):
        m.train_on_batch(*seq[i])
    return steps * cfg["batch"] / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=8.0, help="training time of each candidate")
    ap.add_argument("--only", nargs="*", choices=list(CANDIDATES))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.time()
    ddir = paths.datasets_dir("mini")
    train_dir = ddir / "qf2-90-train"
    tests = {"random shift": ddir / "qf2-90-test", "aligned": ddir / "qf2-90-test-aligned"}
    for p in [train_dir, *tests.values()]:
        if not (p / "manifest.json").exists():
            sys.exit(f"bench_arch: {p} is not built (make datasets)")
    from qpaper import dataset
    data = dataset.open_dataset(train_dir, verify=False)
    fit = {**train.FIT_DEFAULTS, **get_profile("mini")["fit"]}
    rows = []
    prior = {name: results.averages(evaluate.evaluate(results.prior_estimate("mini", "prior-90"), d,
                                                      progress=False)[0]) for name, d in tests.items()}
    for name in a.only or CANDIDATES:
        cfg = {**fit, **CANDIDATES[name]}
        rate = speed(data, cfg)
        budget = rate * a.minutes * 60
        epochs = 8
        over = {**CANDIDATES[name], "epochs": epochs, "epoch_patches": max(cfg["batch"], int(budget / epochs)),
                "val_max": 300}
        print(f"{name}: {rate:.1f} patches/s measured; schedule sized for {budget:.0f} patches", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            train.train(train_dir, Path(tmp) / "run", profile="mini", head="class", loss="Lr", seed=a.seed,
                        max_minutes=a.minutes * 1.15, verbose=2, log=lambda *_: None, **over)
            log = train_log(Path(tmp) / "run")
            m = model.load_model(Path(tmp) / "run" / "checkpoint.keras")
            scores = {t: results.averages(evaluate.evaluate(m, d, progress=False)[0]) for t, d in tests.items()}
        seen = int(log["patches"])
        rows.append({"candidate": name, "arch": cfg["arch"], "params": m.count_params(),
                     "train_seconds": round(log["seconds"], 1), "patches_seen": seen,
                     "train_patches_per_s": round(seen / log["seconds"], 1),
                     **{f"{t} AvgAcc": round(v[0], 4) for t, v in scores.items()},
                     **{f"{t} AvgMSE": round(v[1], 4) for t, v in scores.items()}})
        print(json.dumps(rows[-1]), flush=True)
        keras.backend.clear_session()
    lines = [f"# front ends for the same training time ({a.minutes:g} min each), mini QF2-90 training set, "
             f"class head, loss Lr; held-out test scenes; {hardware()}, backend {keras.backend.backend()}",
             f"# constant prior (median of the training labels): random shift AvgAcc {prior['random shift'][0]:.4f} "
             f"AvgMSE {prior['random shift'][1]:.4f}; aligned AvgAcc {prior['aligned'][0]:.4f} "
             f"AvgMSE {prior['aligned'][1]:.4f}",
             f"{'candidate':<13} {'params':>8} {'train s':>8} {'patches':>8} {'p/s':>8} {'random AvgAcc':>14} "
             f"{'aligned AvgAcc':>15} {'random AvgMSE':>14} {'aligned AvgMSE':>15}"]
    for r in rows:
        lines.append(f"{r['candidate']:<13} {r['params']:>8} {r['train_seconds']:>8.0f} {r['patches_seen']:>8} "
                     f"{r['train_patches_per_s']:>8.1f} {r['random shift AvgAcc']:>14.4f} {r['aligned AvgAcc']:>15.4f} "
                     f"{r['random shift AvgMSE']:>14.4f} {r['aligned AvgMSE']:>15.4f}")
    print("\n".join(lines))
    out = Path(__file__).resolve().parent.parent / "results" / "benchmarks" / "arch.txt"
    atomic_write_bytes(out, ("\n".join(lines) + "\n").encode())
    write_sidecar(out, record("mini", a.seed, t0, command="python benchmarks/bench_arch.py " + " ".join(sys.argv[1:]),
                              rows=rows, prior=prior, train_content_sha256=data["manifest"]["content_sha256"]))
    print(f"wrote {out}")
    return 0


def train_log(run: Path) -> dict:
    """Seconds of training and patches seen, from the run's log.csv."""
    import pandas as pd
    log = pd.read_csv(run / "log.csv")
    return {"seconds": float(log["seconds"].sum()), "patches": int(log["patches"].iloc[-1])}


if __name__ == "__main__":
    sys.exit(main())
