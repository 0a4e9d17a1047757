"""``qpaper estimate`` on whole double JPEGs of held-out scenes, beside the released peers
(issue 31, item 4): one table per first-table family, aligned and shifted, QF2 90 and the other
last qualities, plus single-compressed files (item 6).

Files: crops (128 px to the whole picture, :func:`qpaper.filetrain.random_crop`) of the 17
photos of scenes no qpaper model trained on (the 8 skimage photos and the 9 test wallpapers).
First table per file from a family (:mod:`qpaper.tables`): ``libjpeg`` (IJG QF1 60..95, first
encoder OpenCV or Pillow), and the families no qpaper model trained on, ``perturbed-heldout``,
``park-heldout``, ``photoshop`` (Pillow, 4:2:0); then a seeded grid shift (r, c) != (0, 0) or
none; then OpenCV at QF2. ``--per-cell`` files per (family, grid) at QF2 90 and as many per
(family, grid) spread over QF2 70, 75, 80, 85, 95. Single-compressed: the photos at QF 50, 75, 90,
100, synthetic screenshots and gradients, 4:2:0 and 4:4:4.

Methods: ``file`` (the default of ``qpaper estimate``, :mod:`qpaper.filelevel`), ``cnn`` (the
any-QF2 window model, the default before), [7] ``galvan`` and [5] ``bianchi`` as ``qpaper
estimate --method`` runs them, and two peers in their own environments: ``pyifd`` (pyIFD 0.0.3's
ADQ2, ``--pyifd-venv``) and ``cnn-fqe`` (the released CNN-FQE models of Battiato et al. 2022,
``--cnn-fqe-venv`` with tf-keras 2.x and ``--cnn-fqe-models``, the ``net_models`` folder of
github ictlab-unict/jpeg-forensics-cnn-fqe; see ``benchmarks/peers/cnn_fqe_runner.py``). A peer
whose environment is missing is skipped with a line saying so.

Scores (per file, averaged): ``exact`` = share of the 15 zig-zag coefficients right, read
through the wide classes (a step above R_k and an answer "at least R_k+1" agree; 0 without a
table); ``honest`` = right, or marked "no trace" where the true first step is not above the
last (only ``file`` and ``cnn`` mark coefficients); ``double`` = share of files called
double-compressed (``file``: its verdict; ``cnn``, ``galvan``, ``bianchi``: a verdict starting
"double"; the peers, which give tables only: an estimate that differs from Q2 and from all-ones on
at least 3 coefficients, a rule of this benchmark). Writes ``results/benchmarks/estimate.txt``
(+ ``estimate-reliability.png``, provenance sidecar). With ``--rows-cache PATH`` every file's row
is kept in PATH and the methods already there are not run again (the committed run:
``results/benchmarks/estimate-rows.csv``, made in three calls on one cache: the peers and
baselines, then ``file``, then the tables).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from qpaper import calibration, estimate, jpeg, tables, wild  # noqa: E402
from qpaper.filetrain import random_crop  # noqa: E402
from qpaper.paths import atomic_write_bytes  # noqa: E402
from qpaper.provenance import hardware, record, write_sidecar  # noqa: E402
from qpaper.sources import get_source, load_image, split_records  # noqa: E402

FAMILIES = ("libjpeg",) + tables.TEST_FAMILIES
LAST_QF2 = (70, 75, 80, 85, 95)
METHODS = ("file", "cnn", "galvan", "bianchi", "pyifd", "cnn-fqe")
AIMS = {"aligned exact": 0.97, "shifted honest": 0.90, "libjpeg QF2 90 exact": 0.98, "QF2 75 aligned exact": 0.85,
        "QF2 75 shifted honest": 0.90, "ECE": 0.05, "single called double": 0.02, "double detected": 0.98}
OUT = Path(__file__).resolve().parent.parent / "results" / "benchmarks" / "estimate.txt"
PYIFD = """
import json, sys
import numpy as np
from pyIFD.ADQ2 import getJmap
out = []
for p in sys.argv[1:]:
    try:
        out.append(np.asarray(getJmap(p)[1]).astype(int).tolist())
    except Exception:
        out.append(None)
print(json.dumps(out))
"""


def photos():
    """The held-out photos: (id, RGB) of the skimage photos and the test wallpapers."""
    recs = list(get_source("skimage")) + split_records(get_source("wallpapers"), "test")
    return [(r.id, load_image(r.path, r.sha256)) for r in recs]


def first_table(family: str, rng) -> tuple[np.ndarray, str]:
    if family == "libjpeg":
        qf = int(rng.integers(60, 96))
        return jpeg.standard_table(qf).astype(np.int64), f"QF {qf}"
    return tables.draw(family, rng), family


def double_case(img, family, qf2, shifted, rng):
    crop = random_crop(img, rng)
    t1, name = first_table(family, rng)
    if family == "libjpeg" and rng.random() < 0.5:
        b1 = jpeg.encode_opencv(crop, int(name.split()[1]))
    else:
        b1 = jpeg.encode_pillow(crop, table=t1, chroma_table=tables.chroma_for(t1), subsampling="4:2:0")
    k = int(rng.integers(1, 64)) if shifted else 0
    r, c = divmod(k, 8)
    d1 = np.ascontiguousarray(jpeg.decode(b1)[r:, c:])
    return jpeg.encode_opencv(d1, qf2), jpeg.zigzag(jpeg.luminance_table(b1)), name


def screenshot(rng, h=480, w=640) -> np.ndarray:
    """A synthetic screen capture: flat panels, text, a few icons."""
    img = np.full((h, w, 3), 245, np.uint8)
    for _ in range(6):
        x, y = int(rng.integers(0, w - 100)), int(rng.integers(0, h - 60))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(60, 300)), y + int(rng.integers(20, 120))), colour, -1)
    for line in range(14):
        cv2.putText(img, f"File  Edit  View  {int(rng.integers(1e6))} qpaper report line {line}", (10, 30 + 32 * line),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    return img


def gradient(rng, h=512, w=768) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    a = rng.uniform(0.1, 0.4, 3)
    img = (x[..., None] * a[None, None] + y[..., None] * a[::-1][None, None]) % 256
    return np.clip(img + rng.normal(0, 0.5, img.shape), 0, 255).astype(np.uint8)


def single_cases(pics, rng):
    """(kind, name, file bytes) of the single-compressed files."""
    out = []
    for i, (pid, img) in enumerate(pics):
        for qf in (50, 75, 90, 100):
            sub = ("4:2:0", "4:4:4")[(i + qf) % 2]
            out.append(("photo", f"{pid} QF {qf}", jpeg.encode_opencv(random_crop(img, rng), qf, sub)))
    for i in range(5):
        for qf in (75, 90):
            out.append(("screenshot", f"screen{i} QF {qf}", jpeg.encode_opencv(screenshot(rng), qf, ("4:2:0", "4:4:4")[i % 2])))
            out.append(("gradient", f"gradient{i} QF {qf + 5}", jpeg.encode_opencv(gradient(rng), qf + 5, ("4:2:0", "4:4:4")[i % 2])))
    return out


def run_peer(cmd: list, files: list, chunk: int = 200) -> list:
    out = []
    for s in range(0, len(files), chunk):
        res = subprocess.run(cmd + [str(f) for f in files[s:s + chunk]], capture_output=True, text=True)
        if res.returncode:
            raise SystemExit(f"peer {cmd[0]} failed: {res.stderr[-1500:]}")
        out += json.loads(res.stdout.strip().splitlines()[-1])
    return out


def peer_double(est, z2) -> bool:
    est = np.asarray(est)
    return int(((est != z2) & (est != 1) & (est > 0)).sum()) >= 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-cell", type=int, default=40, help="files per (family, grid) at QF2 90, and over the others")
    ap.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    ap.add_argument("--pyifd-venv", default="/tmp/pyifd-venv")
    ap.add_argument("--cnn-fqe-venv", default="/tmp/fqe-venv")
    ap.add_argument("--cnn-fqe-models", default="/tmp/cnn-fqe/net_models")
    ap.add_argument("--rows-cache", help="a CSV of rows kept across runs: methods already in it (same seed and "
                    "--per-cell, so the same files) are read from it, not run again")
    ap.add_argument("--rerun", nargs="*", default=[], choices=METHODS,
                    help="methods run again even where --rows-cache holds their rows (after a change to them)")
    a = ap.parse_args()
    t0 = time.time()
    rng = np.random.default_rng([a.seed, 0xE57, 31])
    pics = photos()
    methods = list(a.methods)
    notes = []
    cached_methods = set()
    if a.rows_cache and Path(a.rows_cache).exists():  # a peer whose rows are kept needs no environment
        kept = pd.read_csv(a.rows_cache, usecols=["key", "method"])
        cached_methods = set(kept[kept.key == f"seed {a.seed} per-cell {a.per_cell}"].method) - set(a.rerun)
    if "pyifd" in methods and "pyifd" not in cached_methods and not Path(a.pyifd_venv, "bin", "python").exists():
        methods.remove("pyifd")
        notes.append(f"pyifd skipped: no {a.pyifd_venv} (python3 -m venv {a.pyifd_venv} && {a.pyifd_venv}/bin/pip install pyIFD)")
    if "cnn-fqe" in methods and "cnn-fqe" not in cached_methods and not (
            Path(a.cnn_fqe_venv, "bin", "python").exists() and Path(a.cnn_fqe_models).is_dir()):
        methods.remove("cnn-fqe")
        notes.append(f"cnn-fqe skipped: no {a.cnn_fqe_venv} with tf-keras or no {a.cnn_fqe_models}")
    cases = []
    for family in FAMILIES:
        for grid in ("aligned", "shifted"):
            for i in range(a.per_cell):
                cases.append(("QF2 90", family, grid, 90, i))
            for i in range(a.per_cell):
                cases.append(("other QF2", family, grid, LAST_QF2[i % len(LAST_QF2)], i))
    rows, calib = [], []
    cache = {}  # loaded models, kept across files
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for n, (part, family, grid, qf2, i) in enumerate(cases):
            pid, img = pics[(n * 7 + i) % len(pics)]
            data, q1, name = double_case(img, family, qf2, grid == "shifted", rng)
            f = Path(tmp) / f"d{n:04d}.jpg"
            f.write_bytes(data)
            files.append((f, dict(part=part, family=family, grid=grid, qf2=qf2, first=name, photo=pid, q1=q1,
                                  z2=jpeg.zigzag(jpeg.luminance_table(data))[:15], single=False,
                                  megapixels=jpeg.decode(data).shape[0] * jpeg.decode(data).shape[1] / 1e6)))
        for n, (kind, name, data) in enumerate(single_cases(pics, rng)):
            f = Path(tmp) / f"s{n:04d}.jpg"
            f.write_bytes(data)
            files.append((f, dict(part="single", family=kind, grid="-", qf2=jpeg.nearest_standard_qf(jpeg.luminance_table(data))[0],
                                  first=name, photo=name, q1=None, z2=jpeg.zigzag(jpeg.luminance_table(data))[:15],
                                  single=True, megapixels=0.0)))
        print(f"{len(files)} files made ({time.time() - t0:.0f} s)", flush=True)
        cached = pd.DataFrame()
        key = f"seed {a.seed} per-cell {a.per_cell}"
        if a.rows_cache and Path(a.rows_cache).exists():
            cached = pd.read_csv(a.rows_cache, dtype={"hits": str, "confidences": str})
            cached = cached[(cached.key == key) & ~cached.method.isin(a.rerun)]
        done = set(cached.method) if len(cached) else set()
        todo = [m for m in methods if m not in done]
        peers = {}
        if "pyifd" in todo:
            tabs = run_peer([f"{a.pyifd_venv}/bin/python", "-c", PYIFD], [f for f, _ in files])
            peers["pyifd"] = [None if t is None else jpeg.zigzag(np.asarray(t))[:15] for t in tabs]
            print(f"pyifd done ({time.time() - t0:.0f} s)", flush=True)
        if "cnn-fqe" in todo:
            runner = str(Path(__file__).resolve().parent / "peers" / "cnn_fqe_runner.py")
            peers["cnn-fqe"] = [np.asarray(e) for e in run_peer([f"{a.cnn_fqe_venv}/bin/python", runner, a.cnn_fqe_models],
                                                                 [f for f, _ in files])]
            print(f"cnn-fqe done ({time.time() - t0:.0f} s)", flush=True)
        for j, (f, meta) in enumerate(files):
            truth = None if meta["single"] else wild.in_classes(meta["q1"][None])[0]
            above = None if meta["single"] else meta["q1"][:15] > meta["z2"]
            for method in todo:
                t = time.perf_counter()
                marked = np.zeros(15, bool)
                if method in peers:
                    est = peers[method][j]
                    q1 = None if est is None else np.asarray(est)
                    double = q1 is not None and peer_double(q1, meta["z2"])
                    conf = None
                else:
                    r = estimate.run(f, method=method, seed=a.seed, progress=False, models=cache)
                    q1 = None if r["q1"] is None else np.asarray(r["q1"])
                    double = bool(r.get("double")) if method == "file" else r["verdict"].startswith("double")
                    if "no_trace" in r and q1 is not None:
                        marked = np.asarray(r["no_trace"])
                    conf = r.get("confidence")
                sec = time.perf_counter() - t
                row = dict(meta, method=method, seconds=sec, double=double, table=q1 is not None, index=j, key=key)
                del row["q1"], row["z2"]
                if not meta["single"]:
                    hit = np.zeros(15, bool) if q1 is None else wild.in_classes(q1[None])[0] == truth
                    row.update(exact=float(hit.mean()), honest=float((hit | (marked & ~above)).mean()),
                               all15=bool(hit.all()), traced=bool(above.any()))
                    if method == "file" and conf is not None:  # kept in the rows: the calibration below
                        row.update(confidences=" ".join(f"{c:.4f}" for c in conf), hits="".join("01"[int(h)] for h in hit))
                rows.append(row)
            if j % 50 == 0:
                print(f"{j}/{len(files)} files estimated ({time.time() - t0:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    if a.rows_cache:
        old = pd.read_csv(a.rows_cache, dtype={"hits": str, "confidences": str}) if Path(a.rows_cache).exists() \
            else pd.DataFrame(columns=["key", "method"])
        old = old[~((old.key == key) & old.method.isin(a.rerun))]  # rows run again replace theirs
        both = pd.concat([old, df])
        atomic_write_bytes(Path(a.rows_cache), both.to_csv(index=False).encode())
    df = pd.concat([cached[cached.method.isin(done & set(methods))], df], ignore_index=True) if len(cached) else df
    df = df.sort_values(["index", "method"], kind="stable").reset_index(drop=True)
    if "confidences" in df:
        for r in df[df.confidences.notna()].itertuples():
            calib += [{"family": r.family, "confidence": float(c), "right": h == "1"}
                      for c, h in zip(r.confidences.split(), r.hits)]
    lines = [f"# qpaper estimate on whole JPEGs of held-out scenes (the 8 skimage photos and the 9 test wallpapers; "
             f"crops of 128 px to the whole photo, {df.megapixels[df.megapixels > 0].min():.3f}-{df.megapixels.max():.2f} MP); "
             f"seed {a.seed}; {hardware()}",
             "# exact = share of the 15 zig-zag coefficients right (through the wide classes; 0 without a table); honest = "
             "right, or marked 'no trace' where the true first step is not above the last (file and cnn mark); all15 = "
             "every coefficient right; double = share called double-compressed",
             "# file = the default of qpaper estimate (models/mini/file-q1); cnn = the any-QF2 window model (the default "
             "before); galvan [7], bianchi [5] as qpaper estimate --method runs them; pyifd = pyIFD ADQ2; cnn-fqe = the "
             "released CNN-FQE models (Battiato et al., JVCIR 2022; q2 2..22 only, q1 <= 22)",
             "# families: libjpeg (IJG QF1 60-95, OpenCV or Pillow first); never trained on by any qpaper model: "
             f"{', '.join(tables.TEST_FAMILIES)}", *[f"# {n}" for n in notes], ""]
    df.loc[df.method.isin(["pyifd", "cnn-fqe"]), "seconds"] = np.nan  # run in batches in their own environments
    dbl = df[~df.single]
    agg = dict(exact=("exact", "mean"), honest=("honest", "mean"), all15=("all15", "mean"), double=("double", "mean"),
               files=("exact", "size"), s_per_file=("seconds", "mean"))
    for part in ("QF2 90", "other QF2"):
        t = dbl[dbl.part == part].pivot_table(index=["family", "grid"], columns="method", values="exact", aggfunc="mean")
        h = dbl[dbl.part == part].pivot_table(index=["family", "grid"], columns="method", values="honest", aggfunc="mean")
        lines += [f"## {part}: exact", t[[m for m in methods]].round(3).to_string(), "",
                  f"## {part}: honest", h[[m for m in methods]].round(3).to_string(), ""]
    per = dbl[dbl.part == "other QF2"].pivot_table(index=["qf2", "grid"], columns="method", values="exact", aggfunc="mean")
    lines += ["## other QF2, every family: exact per QF2", per[[m for m in methods]].round(3).to_string(), ""]
    per = dbl[dbl.part == "other QF2"].pivot_table(index=["qf2", "grid"], columns="method", values="honest", aggfunc="mean")
    lines += ["## other QF2, every family: honest per QF2", per[[m for m in methods]].round(3).to_string(), ""]
    lines += ["## file against the best other method of each cell: paired difference of exact (honest after a shift), "
              "95% bootstrap interval over the cell's files (2000 resamples); 'higher' or 'lower' only where it excludes 0",
              paired_table(dbl, [m for m in methods if m != "file"], a.seed).to_string(index=False), ""]
    summ = dbl.groupby(["part", "family", "grid", "method"], sort=False).agg(**agg).reset_index()
    lines += ["## every cell", summ.round(4).to_string(index=False), ""]
    fdf = dbl[dbl.method == "file"].copy()
    if len(fdf):
        fdf["size"] = pd.cut(fdf.megapixels, [0, 0.1, 0.5, 100], labels=["< 0.1 MP", "0.1-0.5 MP", "> 0.5 MP"])
        lines += ["## file: exact by file size (all families, grids, QF2)",
                  fdf.groupby(["size", "grid"], observed=True)[["exact", "honest"]].mean().round(3).to_string(), ""]
    det = df[df.single].groupby(["family", "method"])["double"].mean().unstack()[methods]
    det.loc["all single"] = df[df.single].groupby("method")["double"].mean()[methods]
    traced = dbl[dbl.traced]
    det.loc["double, a step above the last (detected)"] = traced.groupby("method")["double"].mean()[methods]
    lines += ["## single or double: share called double-compressed", det.round(3).to_string(), ""]
    extra = {}
    if calib:
        c = pd.DataFrame(calib)
        held = c[c.family.isin(tables.TEST_FAMILIES)]
        extra = {"ece_file_all": calibration.ece(c.confidence, c.right),
                 "ece_file_heldout": calibration.ece(held.confidence, held.right)}
        lines += [f"## calibration of file's per-coefficient confidence: ECE {extra['ece_file_all']:.4f} over all "
                  f"{len(c)} coefficients, {extra['ece_file_heldout']:.4f} over the {len(held)} of held-out families "
                  f"({calibration.BINS} bins)", calibration.reliability(held.confidence, held.right).round(4).to_string(index=False), ""]
        from qpaper import figures
        figures.reliability_figure({"whole files, held-out families": calibration.reliability(held.confidence, held.right),
                                    "whole files, all": calibration.reliability(c.confidence, c.right)},
                                   OUT.with_name("estimate-reliability.png"))
    speed = {}
    if "file" in methods:
        speed = file_speed(pics, cache, a.seed)
        lines += ["## file: seconds per file on 2 cores (model loaded; median of 3 runs; a double JPEG, QF1 70 -> 90, "
                  "shifted by (3, 5); the 12 MP one is a test wallpaper upscaled)",
                  *[f"{k}: {v:.2f} s" for k, v in speed.items()], ""]
    aims = aims_table(df, methods, speed, extra.get("ece_file_heldout"))
    lines += ["## the aims of issue 31 (file = the default)", aims.to_string(index=False), ""]
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_bytes(OUT, text.encode())
    write_sidecar(OUT, record("bench", a.seed, t0, command="python benchmarks/bench_estimate.py " + " ".join(sys.argv[1:]),
                              files=len(files), methods=methods, **extra))
    print(f"wrote {OUT}")
    return 0


def paired_table(dbl: pd.DataFrame, others, seed: int) -> pd.DataFrame:
    """Per (part, family, grid): the other method with the best mean score, and file's paired
    difference from it with a bootstrap interval over files."""
    rng = np.random.default_rng([seed, 0xB007])
    out = []
    for (part, family, grid), cell in dbl.groupby(["part", "family", "grid"], sort=False):
        col = "exact" if grid == "aligned" else "honest"
        wide = cell.pivot_table(index="index", columns="method", values=col)
        if "file" not in wide or not len(others):
            continue
        best = max(others, key=lambda m: wide[m].mean() if m in wide else -1)
        d = (wide["file"] - wide[best]).to_numpy()
        boot = np.array([d[rng.integers(0, len(d), len(d))].mean() for _ in range(2000)])
        lo, hi = np.quantile(boot, [0.025, 0.975])
        out.append({"part": part, "family": family, "grid": grid, "score": col, "file": round(wide["file"].mean(), 3),
                    "best other": best, "its score": round(wide[best].mean(), 3), "difference": round(d.mean(), 3),
                    "95% interval": f"[{lo:+.3f}, {hi:+.3f}]",
                    "file is": "higher" if lo > 0 else "lower" if hi < 0 else "about the same"})
    return pd.DataFrame(out)


def speed_files(pics, tmp):
    """(label, path) of the timed files: a 1 MP and a 12 MP double JPEG (QF1 70 -> 90, shifted by
    (3, 5)) from the largest test photo, resized, written in the folder ``tmp``."""
    big = max((img for _, img in pics), key=lambda i: i.shape[0] * i.shape[1])
    for name, mp in (("1 MP", 1.0), ("12 MP", 12.0)):
        f = np.sqrt(mp * 1e6 / (big.shape[0] * big.shape[1]))
        img = cv2.resize(big, (int(big.shape[1] * f) // 16 * 16, int(big.shape[0] * f) // 16 * 16),
                         interpolation=cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA)
        d1 = np.ascontiguousarray(jpeg.decode(jpeg.encode_opencv(img, 70))[3:, 5:])
        p = Path(tmp) / f"{mp:g}mp.jpg"
        p.write_bytes(jpeg.encode_opencv(d1, 90))
        yield f"{name} ({d1.shape[1]}x{d1.shape[0]})", p


def file_speed(pics, cache, seed) -> dict:
    """Seconds of ``qpaper estimate`` (file) on a 1 MP and a 12 MP double JPEG, model loaded."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, p in speed_files(pics, tmp):
            times = []
            for _ in range(3):
                t = time.perf_counter()
                estimate.run(p, method="file", seed=seed, progress=False, models=cache)
                times.append(time.perf_counter() - t)
            out[label] = float(np.median(times))
    return out


def aims_table(df: pd.DataFrame, methods, speed: dict | None = None, ece: float | None = None) -> pd.DataFrame:
    """Each aim of issue 31 with what every method measured (the file estimator's verdict: met?)."""
    dbl = df[~df.single]
    rows = []

    def add(aim, target, sel, col, higher=True):
        vals = {m: sel[sel.method == m][col].mean() for m in methods}
        v = vals.get("file", np.nan)
        rows.append({"aim": aim, "target": f"{'>=' if higher else '<='} {target}", **{m: round(x, 3) for m, x in vals.items()},
                     "met (file)": bool(v >= target if higher else v <= target)})

    for fam in FAMILIES:
        add(f"aligned exact, {fam}, QF2 90", AIMS["aligned exact"], dbl[(dbl.family == fam) & (dbl.grid == "aligned") & (dbl.part == "QF2 90")], "exact")
        add(f"shifted honest, {fam}, QF2 90", AIMS["shifted honest"], dbl[(dbl.family == fam) & (dbl.grid == "shifted") & (dbl.part == "QF2 90")], "honest")
    lib = dbl[(dbl.family == "libjpeg") & (dbl.part == "QF2 90")]
    add("libjpeg QF2 90 exact, aligned", AIMS["libjpeg QF2 90 exact"], lib[lib.grid == "aligned"], "exact")
    add("libjpeg QF2 90 exact, shifted", AIMS["libjpeg QF2 90 exact"], lib[lib.grid == "shifted"], "exact")
    q75 = dbl[dbl.qf2 == 75]
    add("QF2 75 aligned exact", AIMS["QF2 75 aligned exact"], q75[q75.grid == "aligned"], "exact")
    add("QF2 75 shifted honest", AIMS["QF2 75 shifted honest"], q75[q75.grid == "shifted"], "honest")
    add("single-compressed called double", AIMS["single called double"], df[df.single], "double", higher=False)
    add("double (a step above the last) detected", AIMS["double detected"], dbl[dbl.traced], "double")
    if ece is not None:
        rows.append({"aim": "ECE of the confidence, held-out families", "target": f"<= {AIMS['ECE']}",
                     "file": round(ece, 4), "met (file)": ece <= AIMS["ECE"]})
    for (name, sec), target in zip((speed or {}).items(), (0.3, 2.0)):
        rows.append({"aim": f"seconds, {name}", "target": f"<= {target}", "file": round(sec, 2), "met (file)": sec <= target})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    sys.exit(main())
