"""Evaluation (Section 5): predict a built dataset in batches and tabulate accuracy and MSE.

The tidy table has one row per (QF1, aligned, coefficient) with the patch count, the share of
exact estimates and the mean squared error. Per-patch accuracy and MSE are means over the nc
coefficients, so every average of the paper follows from the table (:func:`summarize`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from .baselines import METHODS
from .dataset import last_tables, open_dataset
from .jpeg import NC
from .losses import clip_labels
from .profiles import EVAL_BATCH
from .model import confidence, decode, head_of, inputs


def predict_q1(model, shards: dict, batch: int = EVAL_BATCH, progress: bool = True, with_confidence: bool = False):
    """Estimated first nc coefficients of every patch of a dataset, batch by batch (a model that
    takes Q2 is given each patch's last table); with ``with_confidence`` also the largest
    probability of each coefficient's block (the class and wide heads)."""
    head = head_of(model)
    out, conf = [], []
    total = sum(len(a) for a in shards["x"])
    with tqdm(total=total, unit="patch", desc="predicting", disable=not progress) as bar:
        for x, z2 in zip(shards["x"], last_tables(shards)):
            for a in range(0, len(x), batch):
                xb = np.asarray(x[a:a + batch], dtype="float32")
                pred = model.predict_on_batch(inputs(model, xb, z2[a:a + batch]))
                out.append(decode(pred, head))
                if with_confidence:
                    conf.append(confidence(pred, NC, head))
                bar.update(len(xb))
    q = np.concatenate(out) if out else np.zeros((0, NC), np.int64)
    return (q, np.concatenate(conf) if conf else np.zeros((0, NC))) if with_confidence else q


def tidy_table(q_true: np.ndarray, q_hat: np.ndarray, meta: np.ndarray, qf1_names: list, qf2: int) -> pd.DataFrame:
    """One row per QF1 x aligned x coefficient: patches, accuracy, mse."""
    nc = q_hat.shape[1]
    rows = []
    for qi, name in enumerate(qf1_names):
        for aligned in (False, True):
            sel = (meta["qf1"] == qi) & (meta["aligned"] == aligned)
            n = int(sel.sum())
            if not n:
                continue
            err = q_hat[sel] - q_true[sel]
            for k in range(nc):
                rows.append({"qf1": name, "qf2": qf2, "aligned": aligned, "coefficient": k + 1, "patches": n,
                             "accuracy": float((err[:, k] == 0).mean()), "mse": float((err[:, k] ** 2).mean())})
    return pd.DataFrame(rows)


def per_qf1(table: pd.DataFrame, aligned: bool | None = None) -> pd.DataFrame:
    """Accuracy and MSE per QF1, over all patches or only (non-)aligned ones."""
    t = table if aligned is None else table[table["aligned"] == aligned]
    t = t.assign(w_acc=t["accuracy"] * t["patches"], w_mse=t["mse"] * t["patches"])
    g = t.groupby("qf1", sort=False)[["w_acc", "w_mse", "patches"]].sum()
    nc = table["coefficient"].max()
    return pd.DataFrame({"accuracy": g["w_acc"] / g["patches"], "mse": g["w_mse"] / g["patches"],
                         "patches": g["patches"] // nc}).reset_index()


def summarize(table: pd.DataFrame) -> dict:
    """AvgAcc and AvgMSE (QF1 values weigh the same) over all patches, aligned and non-aligned
    patches, and QF1 < QF2 vs QF1 >= QF2."""
    out = {}
    qf2 = int(table["qf2"].iloc[0])
    for name, aligned in (("all", None), ("aligned", True), ("misaligned", False)):
        p = per_qf1(table, aligned)
        if len(p):
            out[name] = {"AvgAcc": float(p["accuracy"].mean()), "AvgMSE": float(p["mse"].mean()), "qf1_values": len(p)}
    p = per_qf1(table)
    num = pd.to_numeric(p["qf1"], errors="coerce")
    for name, sel in (("qf1<qf2", num < qf2), ("qf1>=qf2", num >= qf2)):
        if sel.any():
            out[name] = {"AvgAcc": float(p[sel]["accuracy"].mean()), "AvgMSE": float(p[sel]["mse"].mean()),
                         "qf1_values": int(sel.sum())}
    return out


def predict_q1_baseline(method: str, shards: dict, qf2: int, aligned: bool | None = True, batch: int = 512,
                        progress: bool = True) -> np.ndarray:
    """Q1 estimates of a model-based method ([5] ``bianchi`` or [7] ``galvan``) for every patch of
    a dataset, Q2 being the standard table of the dataset's QF2 (known from the file in practice)."""
    from .baselines import predict_q1_baseline as estimate
    from .jpeg import standard_table
    q2 = standard_table(qf2)
    out = []
    total = sum(len(a) for a in shards["x"])
    with tqdm(total=total, unit="patch", desc=f"{method}", disable=not progress) as bar:
        for x in shards["x"]:
            for a in range(0, len(x), batch):
                xb = np.asarray(x[a:a + batch])
                out.append(estimate(method, xb, q2, NC, aligned=aligned))
                bar.update(len(xb))
    return np.concatenate(out) if out else np.zeros((0, NC), np.int64)


def predict_dataset(model, data_dir, batch: int = EVAL_BATCH, progress: bool = True, aligned: bool | None = True):
    """Every patch's answer: {"q_hat", "q_true" [n, nc] int64, "meta" (image, scene, qf1 index,
    aligned...), "qf1_names", "qf2"} of a model (a Keras model, the name of a model-based method:
    ``galvan``, ``bianchi``, with ``aligned`` passed to it, or a constant estimate: an array of
    nc values) on a built dataset. The truth is the real Q1 (not clipped)."""
    d = open_dataset(data_dir, verify=False)
    m = d["manifest"]
    if isinstance(model, np.ndarray):  # a constant estimate for every patch (the prior)
        q_hat = np.repeat(model[None].astype(np.int64), sum(len(a) for a in d["x"]), axis=0)
    elif isinstance(model, str):
        q_hat = predict_q1_baseline(model, d, int(m["spec"]["qf2"]), aligned, progress=progress)
    else:
        q_hat = predict_q1(model, d, batch, progress)
    q_true = np.concatenate(d["q1"])[:, :q_hat.shape[1]].astype(np.int64)
    return {"q_hat": np.asarray(q_hat, np.int64), "q_true": q_true, "meta": np.concatenate(d["meta"]),
            "qf1_names": list(m["qf1"]), "qf2": int(m["spec"]["qf2"])}


def evaluate(model, data_dir, batch: int = EVAL_BATCH, progress: bool = True, aligned: bool | None = True,
             predictions: dict | None = None):
    """(tidy table, summary, count of true values above q_max) of a model on a built dataset
    (:func:`predict_dataset`, or its ``predictions`` when given). A class head cannot reach
    values above q_max, and that counts as an error."""
    p = predictions or predict_dataset(model, data_dir, batch, progress, aligned)
    n_clipped = clip_labels(p["q_true"], p["q_hat"].shape[1])[1]
    table = tidy_table(p["q_true"], p["q_hat"], p["meta"], p["qf1_names"], p["qf2"])
    return table, summarize(table), n_clipped


def run(model, data_dir, out, batch: int = EVAL_BATCH, aligned: bool | None = True, profile: str | None = None,
        seed: int = 0, progress: bool = True) -> tuple[dict, int]:
    """``qpaper evaluate``: :func:`evaluate` a ``.keras`` file (a path) or a model-based method (its
    name) on a built dataset, write the tidy table to ``out`` with its provenance sidecar, and
    return (summary, count of true values above q_max)."""
    import time

    from .model import load_model
    from .paths import atomic_write_bytes, sha256_file
    from .provenance import record, write_sidecar
    t0 = time.time()
    if model in METHODS:
        what, model_ = {"method": model, "grid": "aligned" if aligned else "estimate"}, model
    else:
        model_ = load_model(model)  # first: a missing or foreign file gets its one clear line
        what = {"model": str(model), "model_sha256": sha256_file(model)}
    table, summary, above = evaluate(model_, data_dir, batch, progress=progress, aligned=aligned)
    atomic_write_bytes(out, table.to_csv(index=False).encode())
    write_sidecar(out, record(profile or "unknown", seed, t0, command="qpaper evaluate", data=str(data_dir),
                              summary=summary, labels_above_q_max=above, batch=batch, **what))
    return summary, above
