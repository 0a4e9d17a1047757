"""Evaluation by table family (issue 21): how the estimators fare on first tables they were never
trained on, with a confidence that is checked against the answers.

The protocol, fixed before training: the any-QF2 model trains on the ``libjpeg``, ``perturbed``
and ``park`` families (:data:`qpaper.tables.TRAIN_FAMILIES`) of the training scenes; it is tested
on held-out scenes with the ``libjpeg`` family and three families it never saw
(:data:`qpaper.tables.TEST_FAMILIES`: another seed of perturbations, a fifth of Park's tables
held out by their pattern, Photoshop), every last table drawn from ``q2-wide``, random grid shift
and aligned (``wild-test``, ``wild-test-aligned``). Nothing is tuned on those sets.

Scoring: a coefficient is right when the estimate equals the true step, both read through the
wide head's classes (a step above R_k and an answer "at least R_k + 1" agree; any method's answer
above R_k counts as that claim). ``traced`` restricts to the coefficients whose true q1 is above
q2 (where q1 divides q2 or is below it, the second compression leaves no comb to read).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .jpeg import NC
from .calibration import ece
from .tables import TEST_FAMILIES, TRAIN_FAMILIES, WIDE_RANGE, wide_sizes

WILD_TESTS = {"wild-test": "random shift", "wild-test-aligned": "aligned"}


def in_classes(q, nc: int = NC) -> np.ndarray:
    """Steps read through the wide head's classes: above R_k becomes R_k + 1 ("at least")."""
    return np.minimum(np.asarray(q)[:, :nc].astype(np.int64), wide_sizes(nc))


def traced(q1, q2, nc: int = NC) -> np.ndarray:
    """[N, nc] bool: the true q1 is above q2, so the second quantization left a comb of q1."""
    return np.asarray(q1)[:, :nc].astype(np.int64) > np.asarray(q2)[:, :nc].astype(np.int64)


def baseline_estimates(method: str, shards: dict, progress: bool = False) -> np.ndarray:
    """[N, nc] estimates of a model-based method ([7] galvan, [5] bianchi; aligned grid, as in
    Tables 1-4; candidate steps up to the wide head's R) given each patch's own last table: the
    patches are grouped by last table."""
    from .baselines import predict_q1_baseline
    from .dataset import last_tables
    from .jpeg import unzigzag
    x = np.concatenate([np.asarray(a) for a in shards["x"]])
    z2 = np.concatenate([np.asarray(a) for a in last_tables(shards)])
    out = np.zeros((len(x), NC), np.int64)
    tables, inverse = np.unique(z2, axis=0, return_inverse=True)
    for t in range(len(tables)):
        sel = np.flatnonzero(inverse.ravel() == t)
        out[sel] = predict_q1_baseline(method, x[sel], unzigzag(tables[t]), NC, aligned=True, qmax=WIDE_RANGE)
    return out


def per_qf2_estimates(models: dict, shards: dict, progress: bool = False) -> np.ndarray:
    """[N, nc] estimates of the per-QF2 models (QF2 -> Keras model) as ``qpaper estimate`` picked
    them before the any-QF2 model: each patch by the model of the QF2 nearest to its last table's."""
    from .dataset import last_tables
    from .evaluate import predict_q1
    from .jpeg import nearest_standard_qf, unzigzag
    z2 = np.concatenate([np.asarray(a) for a in last_tables(shards)])
    tables, inverse = np.unique(z2, axis=0, return_inverse=True)
    qf2 = np.array([nearest_standard_qf(unzigzag(t))[0] for t in tables])[inverse.ravel()]
    pick = np.array([min(models, key=lambda m: (abs(m - q), -m)) for q in qf2])
    out = np.zeros((len(z2), NC), np.int64)
    for q, model in models.items():
        if (pick == q).any():
            out[pick == q] = predict_q1(model, shards, progress=progress)[pick == q]
    return out


def family_rows(estimates: dict, shards: dict, grid: str, confidences: dict | None = None) -> list[dict]:
    """Rows (family, grid, method, patches, AvgAcc, traced accuracy, share traced, AvgMSE, ECE)
    of every method's estimates [N, nc] on one wild test set."""
    from .dataset import last_tables
    q1 = np.concatenate([np.asarray(a) for a in shards["q1"]])
    z2 = np.concatenate([np.asarray(a) for a in last_tables(shards)])
    meta = np.concatenate([np.asarray(a) for a in shards["meta"]])
    truth, tr = in_classes(q1), traced(q1, z2)
    names = shards["manifest"]["qf1"]
    rows = []
    for fi, family in enumerate(names):
        sel = meta["qf1"] == fi
        for method, est in estimates.items():
            right = in_classes(est)[sel] == truth[sel]
            err = (in_classes(est)[sel] - truth[sel]).astype(float)
            row = {"family": family, "seen": family in TRAIN_FAMILIES, "grid": grid, "method": method,
                   "patches": int(sel.sum()), "AvgAcc": float(right.mean()),
                   "traced_acc": float(right[tr[sel]].mean()) if tr[sel].any() else np.nan,
                   "traced_share": float(tr[sel].mean()), "AvgMSE": float((err ** 2).mean()), "ECE": np.nan}
            if confidences and method in confidences:
                row["ECE"] = ece(confidences[method][sel], right)
            rows.append(row)
    return rows


def held_out(families) -> list:
    """The families of a list that the any-QF2 model never trained on."""
    return [f for f in families if f in TEST_FAMILIES]


METHODS = {"any-qf2-wide": "any-QF2 model (wide head)", "per-qf2": "per-QF2 models (proposed, QF2 80/90)",
           "galvan": "[7]", "bianchi": "[5]", "prior": "constant prior (median)"}


def evaluate_families(profile: str, seed: int = 0, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """Every method of :data:`METHODS` on ``wild-test`` and ``wild-test-aligned`` of a profile:
    (the :func:`family_rows` table, {grid: (confidence [N, nc], right [N, nc], family index [N],
    family names)} of the any-QF2 model for the reliability diagrams). The constant prior is the
    per-coefficient median of the any-QF2 model's training labels in its classes."""
    from .dataset import open_dataset
    from .evaluate import predict_q1
    from .paths import dataset_dir, model_path
    from .registry import load_file
    from .results import constant_prior
    wide = load_file(model_path(profile, "any-qf2-wide"))
    per_qf2 = {q: load_file(model_path(profile, f"qf2-{q}-class-Lr")) for q in (90, 80)
               if model_path(profile, f"qf2-{q}-class-Lr").exists()}
    prior = constant_prior(in_classes(np.concatenate(open_dataset(dataset_dir(profile, "wild-train", seed),
                                                                  verify=False)["q1"])))
    rows, calib = [], {}
    for name, grid in WILD_TESTS.items():
        d = open_dataset(dataset_dir(profile, name, seed), verify=False)
        n = sum(len(a) for a in d["x"])
        q_hat, conf = predict_q1(wide, d, progress=progress, with_confidence=True)
        est = {"any-qf2-wide": q_hat}
        if per_qf2:
            est["per-qf2"] = per_qf2_estimates(per_qf2, d, progress)
        for method in ("galvan", "bianchi"):
            est[method] = baseline_estimates(method, d, progress)
        est["prior"] = np.repeat(prior[None], n, axis=0)
        rows += family_rows({METHODS[k]: v for k, v in est.items()}, d, grid, {METHODS["any-qf2-wide"]: conf})
        truth = in_classes(np.concatenate([np.asarray(a) for a in d["q1"]]))
        meta = np.concatenate([np.asarray(a) for a in d["meta"]])
        calib[grid] = (conf, in_classes(q_hat) == truth, meta["qf1"], d["manifest"]["qf1"])
    return pd.DataFrame(rows), calib


def qf2_rows(evaluation) -> pd.DataFrame:
    """The any-QF2 model beside the per-QF2 proposed estimator and the constant prior on the
    datasets of Tables 1-4 (QF2 90 and 80; random shift over all patches, aligned), averaged as
    those tables are (:func:`qpaper.results.averages`). ``evaluation(model, dataset)``: a cached
    tidy table (:meth:`qpaper.figures.Setup.evaluation`)."""
    from .results import averages, method_of, prior
    rows = []
    for qf2, (t_random, t_aligned) in ((90, (1, 2)), (80, (3, 4))):  # the paper's numbering (notebook 3)
        for ds, grid, t in ((f"qf2-{qf2}-test", "random shift", t_random),
                            (f"qf2-{qf2}-test-aligned", "aligned", t_aligned)):
            for model in ("any-qf2-wide", f"qf2-{qf2}-class-Lr", prior(qf2)):
                acc, mse = averages(evaluation(model, ds), True if grid == "aligned" else None)
                name = METHODS["any-qf2-wide"] if model == "any-qf2-wide" else method_of(model)
                rows.append({"table": t, "qf2": qf2, "grid": grid, "method": name, "AvgAcc": round(acc, 4),
                             "AvgMSE": round(mse, 4)})
    return pd.DataFrame(rows)
