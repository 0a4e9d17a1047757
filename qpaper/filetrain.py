"""Whole double JPEGs for the file-level estimator (:mod:`qpaper.filelevel`): made, read as
``qpaper estimate`` reads them, and learned from (issue 31).

A case is one never-compressed photo of the training scenes, cropped to a random size (128 px
to the whole picture), compressed with a first table of a training family
(:data:`qpaper.tables.TRAIN_FAMILIES`: every IJG quality, IJG tables with every step perturbed,
Park's real tables), cropped by a random grid shift (or not: aligned), compressed again with a
last table of the QF2 mix (``q2-wide``: IJG 60..98, 30% perturbed). The file is then read exactly
as at inference (:func:`qpaper.filelevel.read_evidence`: the same grid search, so its errors are in
training) and reduced to its log-likelihoods. Every random choice comes from (seed, case index):
the same seed gives the same cases whatever the number of workers.
"""
from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from . import filelevel as fl
from . import jpeg, tables
from .jpeg import NC

FAMILY_WEIGHTS = {"libjpeg": 0.4, "perturbed": 0.3, "park": 0.3}
ALIGNED_SHARE = 0.5
MIN_SIDE = 128


def random_crop(img: np.ndarray, rng: np.random.Generator, min_side: int = MIN_SIDE) -> np.ndarray:
    """A crop whose area is log-uniform between min_side^2 and the whole image, aspect 1:2..2:1."""
    h, w = img.shape[:2]
    area = np.exp(rng.uniform(np.log(min_side ** 2), np.log(h * w)))
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
    ch = int(np.clip(np.sqrt(area * aspect), min_side, h))
    cw = int(np.clip(area / ch, min_side, w))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return np.ascontiguousarray(img[y:y + ch, x:x + cw])


def make_case(img: np.ndarray, rng: np.random.Generator, family: str | None = None, q2_table=None,
              shift=None, single: bool = False) -> dict:
    """One double (or, with ``single``, single) JPEG of a crop of ``img``: {"data", "q1" (zig-zag
    64, None when single), "family", "shift" (r, c)}."""
    crop = random_crop(img, rng)
    if family is None:
        fams = list(FAMILY_WEIGHTS)
        family = fams[int(rng.choice(len(fams), p=list(FAMILY_WEIGHTS.values())))]
    t1 = tables.draw(family, rng)
    sub = ("4:2:0", "4:4:4")[int(rng.integers(2))]
    t2 = tables.draw("q2-wide", rng) if q2_table is None else np.asarray(q2_table)
    if shift is None:
        shift = (0, 0) if rng.random() < ALIGNED_SHARE else tuple(int(v) for v in divmod(int(rng.integers(1, 64)), 8))
    if single:
        data = jpeg.encode_pillow(crop, table=t2, chroma_table=tables.chroma_for(t2), subsampling=sub)
        return {"data": data, "q1": None, "family": "single", "shift": (0, 0)}
    b1 = jpeg.encode_pillow(crop, table=t1, chroma_table=tables.chroma_for(t1), subsampling=sub)
    r, c = shift
    d1 = np.ascontiguousarray(jpeg.decode(b1)[r:, c:])
    data = jpeg.encode_pillow(d1, table=t2, chroma_table=tables.chroma_for(t2),
                              subsampling=("4:2:0", "4:4:4")[int(rng.integers(2))])
    return {"data": data, "q1": jpeg.zigzag(t1), "family": family, "shift": tuple(shift)}


def case_record(case: dict, seed: int = 0) -> dict:
    """The arrays the estimator learns from for one case (its file read as at inference)."""
    with tempfile.NamedTemporaryFile(suffix=".jpg") as f:
        f.write(case["data"])
        f.flush()
        ev = fl.read_evidence(f.name, seed=seed)
    ll = fl.file_log_likelihoods(ev)
    q1 = np.full(NC, 1) if case["q1"] is None else np.asarray(case["q1"])[:NC]
    return {"ll": ll.astype(np.float32), "q2": ev["q2"], "blocks": ev["blocks"], "aligned": ev["aligned"],
            "active": fl.active_share(ev), "grid_confidence": ev["grid_confidence"],
            "found_shift": np.array(ev["search_shift"]), "q1": q1, "family": case["family"],
            "true_shift": np.array(case["shift"]), "single": case["q1"] is None}


def _case_job(args):
    path, sha, seed, index, kw = args
    from .sources import load_image
    img = load_image(path, sha)
    rng = np.random.default_rng([seed, 0xF11E, index])
    return case_record(make_case(img, rng, **kw), seed)


def build_cases(records, n: int, seed: int = 0, workers: int | None = None, progress: bool = True,
                single_every: int = 0, start: int = 0, **kw) -> dict:
    """Cases ``start``..``start + n - 1`` over ``records`` (case i reads record i mod len), stacked
    into arrays; with ``single_every`` = m, every m-th case is single-compressed (q1 = 1)."""
    from concurrent.futures import ProcessPoolExecutor
    from tqdm import tqdm
    jobs = [(records[i % len(records)].path, records[i % len(records)].sha256, seed, i,
             {**kw, "single": bool(single_every) and i % single_every == single_every - 1})
            for i in range(start, start + n)]
    workers = workers or min(2, os.cpu_count() or 1)
    out = []
    with ProcessPoolExecutor(workers) as ex:
        for r in tqdm(ex.map(_case_job, jobs, chunksize=4), total=n, desc="file cases", disable=not progress,
                      unit="file"):
            out.append(r)
    return stack(out)


def stack(records: list[dict]) -> dict:
    keys = records[0].keys()
    return {k: np.array([r[k] for r in records]) for k in keys}


def save_cases(cases: dict, path) -> None:
    from .paths import atomic_write_bytes
    buf = io.BytesIO()
    np.savez_compressed(buf, **cases)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_cases(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# ---------------------------------------------------------------------------------------------
# Training

def fit(cases: dict, val: dict | None = None, epochs: int = 60, seed: int = 0, progress: bool = True,
        log=print) -> tuple:
    """Train the two passes of the estimator (:func:`qpaper.filelevel.build_model`): the first on
    the evidence alone, the second with the prior of the other coefficients computed from the
    first pass's answers. Returns (model1, model2, temperature, history)."""
    import keras
    keras.utils.set_random_seed(seed)
    y = fl.labels(cases["q1"]).reshape(-1)
    x1 = fl.features(cases)
    m1 = fl.build_model(x1.shape[-1])
    h1 = _train(m1, x1, y, epochs, seed, progress, log, "pass 1")
    p1 = fl.predict_probs(m1, x1, len(cases["q1"]))
    x2 = fl.features(cases, prior=fl.table_prior(p1))
    m2 = fl.build_model(x2.shape[-1])
    h2 = _train(m2, x2, y, epochs, seed, progress, log, "pass 2")
    temperature = 1.0
    if val is not None:
        pv = fl.two_pass(m1, m2, val, temperature=None)
        temperature = fl.fit_temperature(pv, fl.labels(val["q1"]))
    return m1, m2, temperature, {"pass1": h1, "pass2": h2}


def _train(model, x, y, epochs, seed, progress, log, name):
    import keras
    n = len(x)
    steps = max(1, n // 256) * epochs
    sched = keras.optimizers.schedules.CosineDecay(3e-3, steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(sched), loss=fl.loss)
    t = time.time()
    hist = model.fit(x, y, batch_size=256, epochs=epochs, verbose=0, shuffle=True)
    log(f"{name}: {epochs} epochs on {n} coefficients in {time.time() - t:.0f} s, loss "
        f"{hist.history['loss'][0]:.3f} -> {hist.history['loss'][-1]:.3f}")
    return hist.history["loss"]


# ---------------------------------------------------------------------------------------------
# A profile's cases and model

CHUNK = 400  # cases per cached file: a stopped build resumes at the first missing chunk
SINGLE_EVERY = 10  # every tenth case is single-compressed (the verdict's calibration)
PARTS = {"train": 0, "val": 1}  # seed offsets: the calibration files are other crops and tables of the same scenes


def cases_for(profile: str, part: str, seed: int = 0, progress: bool = True, log=print) -> dict:
    """The ``part`` (train or val) cases of ``profile``, made chunk by chunk into
    ``data/processed/filelevel/<profile>/`` and read back (a chunk on disk is never made again)."""
    from .paths import processed_dir
    from .profiles import get_profile
    from .sources import get_source, split_records
    p = get_profile(profile)
    n = p["file_level"][part]
    recs = split_records(get_source(p["train"]["source"]), p["train"]["split"], test_share=p["test_share"] or 0.25,
                         n_test=p["n_test"], seed=seed)
    folder = processed_dir() / "filelevel" / profile
    out = []
    for c, start in enumerate(range(0, n, CHUNK)):
        f = folder / f"{part}-s{seed}-c{c}-{min(CHUNK, n - start)}.npz"
        if not f.exists():
            log(f"file-level cases: {part} {start}..{min(n, start + CHUNK) - 1} of {n} -> {f}")
            save_cases(build_cases(recs, min(CHUNK, n - start), seed=seed + PARTS[part], start=start,
                                   single_every=SINGLE_EVERY, progress=progress), f)
        out.append(load_cases(f))
    return {k: np.concatenate([o[k] for o in out]) for k in out[0]}


def subset(cases: dict, mask) -> dict:
    return {k: v[mask] for k, v in cases.items()}


NO_TRACE_QUANTILE = 0.99  # an answer is supported above this quantile of single files' evidence for such a step
DOUBLE_FALSE_ALARMS = 0.01  # share of single-compressed calibration files the verdict may call double


def thresholds(single: dict) -> dict:
    """The evidence thresholds, from single-compressed files (whose every coefficient shows no
    first quantization): ``no_trace_nats`` and ``no_trace_below_nats``, the NO_TRACE_QUANTILE of
    their coefficients' best evidence for a step above q2 and for one below it (an answer with
    less is not told apart from no first compression); ``double_nats`` and
    ``double_coefficients``, the rule "at least that many coefficients with more evidence of a
    step above q2" that calls at most DOUBLE_FALSE_ALARMS of them double-compressed, with the
    fewest coefficients that allows."""
    g = fl.evidence_gain(single["ll"], single["q2"], ~single["aligned"])  # [N, NC]
    below = fl.evidence_gain(single["ll"], single["q2"], ~single["aligned"], above=False)
    no_trace = float(np.quantile(g, NO_TRACE_QUANTILE))
    no_trace_below = float(np.quantile(below, NO_TRACE_QUANTILE))
    for need in range(1, NC + 1):
        kth = np.sort(g, axis=1)[:, NC - need]  # the need-th largest evidence of each file
        nats = float(np.quantile(kth, 1 - DOUBLE_FALSE_ALARMS))
        if nats <= no_trace:
            break
    return {"no_trace_nats": round(no_trace, 2), "no_trace_below_nats": round(no_trace_below, 2),
            "double_nats": round(max(nats, no_trace), 2),
            "double_coefficients": need}


def train(profile: str, seed: int = 0, log=print, progress: bool = True, cases: tuple | None = None) -> Path:
    """Make the cases (or take ``cases`` = (train, val)), fit both passes, calibrate and save
    ``models/<profile>/file-q1``."""
    import json

    from .paths import models_dir
    from .profiles import get_profile
    t0 = time.time()
    cfg = get_profile(profile)["file_level"]
    tr, va = cases or (cases_for(profile, "train", seed, progress, log), cases_for(profile, "val", seed, progress, log))
    t1 = time.time()
    dbl_tr, dbl_va = subset(tr, ~tr["single"]), subset(va, ~va["single"])
    single = subset({**tr}, tr["single"])
    single = {k: np.concatenate([single[k], va[k][va["single"]]]) for k in single}
    m1, m2, temperature, hist = fit(dbl_tr, dbl_va, cfg["epochs"], seed, progress, log)
    cal = {"temperature": round(temperature, 4), **thresholds(single),
           "single_files": int(len(single["q1"]))}
    p = fl.two_pass(m1, m2, dbl_va, temperature=temperature)
    ans, conf = fl.classes(p)
    right = ans == np.minimum(dbl_va["q1"][:, :NC], tables.wide_sizes())  # the truth through the wide classes
    from .calibration import ece
    metrics = {"validation": {"files": int(len(right)), "accuracy": round(float(right.mean()), 4),
                              "ece": round(float(ece(conf.ravel(), right.ravel())), 4)}}
    run = models_dir(profile) / fl.NAME
    config = {"profile": profile, "seed": seed, "loss": "L", "train_files": int(len(dbl_tr["q1"])),
              "validation_files": int(len(dbl_va["q1"])), "epochs": cfg["epochs"], "candidates": fl.CAND,
              "families": list(FAMILY_WEIGHTS), "q2": "q2-wide", "aligned_share": ALIGNED_SHARE,
              "cases_seconds": round(t1 - t0), "fit_seconds": round(time.time() - t1), "metrics": metrics,
              "loss_history": {k: [round(float(v), 4) for v in h] for k, h in hist.items()}}
    fl.save_model(run, m1, m2, cal, config)
    log(f"file-level model: {run} (validation accuracy {metrics['validation']['accuracy']}, ECE "
        f"{metrics['validation']['ece']}, temperature {cal['temperature']}; {json.dumps(cal)})")
    return run
