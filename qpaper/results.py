"""What the notebooks call to turn models and datasets into the paper's tables and figures
(Section 5): cached evaluations, AvgAcc/AvgMSE tables, per-coefficient curves, and files in
``results/<profile>/`` with a provenance sidecar each.

AvgAcc and AvgMSE follow the paper: accuracy and squared error of each of the nc coefficients,
averaged over the patches of one QF1, then over the coefficients and the QF1 values (each QF1
weighs the same).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import evaluate as ev
from . import experiments as ex
from .provenance import record, write_sidecar
from .sources import DATA_DIR, atomic_write_bytes, sha256_file

# The numbers the paper's text gives (the tables and figures themselves are images in the
# published version); every one cites where it is printed.
PAPER = {
    ("loss ablation, QF2 90", "class head, loss L"): (0.8511, 1.990, "Section 3.2"),
    ("loss ablation, QF2 90", "class head, loss Lr"): (0.8516, 0.9221, "Section 3.2"),
    ("QF2 mismatch (model QF2 90, test QF2 92)", "proposed"): (0.591, 0.859, "Section 5.2"),
    ("QF2 mismatch (model QF2 90, test QF2 92)", "[10]"): (0.500, 0.944, "Section 5.2"),
    ("QF2 mismatch, aligned", "proposed"): (0.579, 1.029, "Section 5.2"),
    ("QF2 mismatch, aligned", "[7]"): (0.331, 15.8, "Section 5.2"),
    ("QF2 mismatch, aligned", "[5]"): (0.397, 35.5, "Section 5.2"),
    ("dataset mismatch, QF2 90", "proposed"): (0.644, 0.538, "Section 5.2 (RAISE to Dresden)"),
    ("dataset mismatch, QF2 90", "[10]"): (0.523, 0.694, "Section 5.2 (RAISE to Dresden)"),
}

METHOD = {"class-Lr": "proposed", "regression": "[10]", "class-L": "class head, loss L",
          "galvan": "[7]", "bianchi": "[5]"}
BASELINES = ("galvan", "bianchi")  # the model-based methods of qpaper.baselines (aligned grid)


def method_of(model: str) -> str:
    """'qf2-90-class-Lr' -> 'proposed', 'qf2-90-regression' -> '[10]', 'galvan' -> '[7]'."""
    return METHOD[model if model in BASELINES else model.split("-", 2)[2]]


def _code_digest() -> str:
    import hashlib
    h = hashlib.sha256()
    for f in sorted((ex.ROOT / "qpaper" / "baselines").glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()


def results_dir(profile: str) -> Path:
    return Path(os.environ.get("QPAPER_RESULTS", ex.ROOT / "results")) / profile


# ---------------------------------------------------------------------------------------------
# Evaluations, cached by (model sha256, dataset content digest)

def evaluation(profile: str, model: str, dataset: str, batch: int = 128, progress: bool = True) -> pd.DataFrame:
    """The tidy evaluation table (QF1 x aligned x coefficient) of a registered model, or of a
    model-based method (``galvan``, ``bianchi``: aligned grid), on a registered dataset of
    ``profile``; computed once, then read from the cache."""
    data = ex.datasets_dir(profile) / dataset
    if not (data / "manifest.json").exists():
        raise FileNotFoundError(f"dataset {data} is not built (python -m qpaper.experiments datasets "
                                f"--profile {profile})")
    digest = json.loads((data / "manifest.json").read_text())["content_sha256"]
    if model in BASELINES:
        key = {"method": model, "code_sha256": _code_digest(), "data_content_sha256": digest}
    else:
        mpath = ex.model_path(profile, model)
        if not mpath.exists():
            raise FileNotFoundError(f"model {mpath} is missing (python -m qpaper.experiments models "
                                    f"--profile {profile})")
        key = {"model_sha256": sha256_file(mpath), "data_content_sha256": digest}
    cache = DATA_DIR / "processed" / "evaluations" / profile / f"{model}--{dataset}.csv"
    kfile = cache.with_suffix(".json")
    if cache.exists() and kfile.exists() and json.loads(kfile.read_text()) == key:
        return pd.read_csv(cache, dtype={"qf1": str})
    print(f"evaluating {model} on {dataset}", flush=True)
    if model in BASELINES:
        table, _, _ = ev.evaluate(model, data, progress=progress, aligned=True)
    else:
        from .train import load_model
        table, _, _ = ev.evaluate(load_model(mpath), data, batch, progress=progress)
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(cache, table.to_csv(index=False).encode())
    atomic_write_bytes(kfile, json.dumps(key).encode())
    return pd.read_csv(cache, dtype={"qf1": str})


def _subset(tidy: pd.DataFrame, aligned=None, qf1=None) -> pd.DataFrame:
    t = tidy if aligned is None else tidy[tidy["aligned"] == aligned]
    if qf1 == "<":
        t = t[pd.to_numeric(t["qf1"], errors="coerce") < t["qf2"]]
    elif qf1 == ">=":
        t = t[pd.to_numeric(t["qf1"], errors="coerce") >= t["qf2"]]
    return t


def per_qf1(tidy: pd.DataFrame, aligned=None) -> pd.DataFrame:
    """AvgAcc and AvgMSE per QF1 (mean over the nc coefficients)."""
    return ev.per_qf1(tidy, aligned).rename(columns={"accuracy": "AvgAcc", "mse": "AvgMSE"})


def averages(tidy: pd.DataFrame, aligned=None, qf1=None) -> tuple[float, float]:
    """(AvgAcc, AvgMSE) over the QF1 values of a subset (QF1 values weigh the same)."""
    p = per_qf1(_subset(tidy, None, qf1), aligned)
    return float(p["AvgAcc"].mean()), float(p["AvgMSE"].mean())


def per_coefficient(tidy: pd.DataFrame, aligned=None, qf1=None) -> pd.DataFrame:
    """Accuracy and MSE of each coefficient, averaged over the QF1 values (Figures 3-11)."""
    t = _subset(tidy, aligned, qf1)
    t = t.assign(w_acc=t["accuracy"] * t["patches"], w_mse=t["mse"] * t["patches"])
    g = t.groupby(["qf1", "coefficient"])[["w_acc", "w_mse", "patches"]].sum()
    g = pd.DataFrame({"accuracy": g["w_acc"] / g["patches"], "mse": g["w_mse"] / g["patches"]}).reset_index()
    return g.groupby("coefficient")[["accuracy", "mse"]].mean().reset_index()


def compare_per_qf1(tidies: dict, aligned=None) -> pd.DataFrame:
    """Tables 1-4: one row per QF1 and a last row 'all', AvgAcc and AvgMSE of each method."""
    cols = []
    for label, tidy in tidies.items():
        p = per_qf1(tidy, aligned).set_index("qf1")
        p.loc["all"] = [p["AvgAcc"].mean(), p["AvgMSE"].mean(), p["patches"].sum()]
        cols.append(p[["AvgAcc", "AvgMSE"]].add_prefix(f"{label} ").round(4))
        patches = p["patches"].astype(int)
    out = pd.concat(cols, axis=1)
    out.insert(0, "patches", patches)
    return out.reset_index().rename(columns={"index": "qf1"})


# ---------------------------------------------------------------------------------------------
# Figures

def plot_per_coefficient(curves: dict, title: str = "", axes=None):
    """Accuracy (top) and MSE (bottom) of each of the nc coefficients, one line per method, in the
    layout of Figures 3-10. ``curves``: label -> :func:`per_coefficient` frame."""
    import matplotlib.pyplot as plt
    if axes is None:
        fig, axes = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    else:
        fig = axes[0].figure
    markers = "osd^v<>"
    for i, (label, c) in enumerate(curves.items()):
        axes[0].plot(c["coefficient"], c["accuracy"], marker=markers[i % 7], label=label)
        axes[1].plot(c["coefficient"], c["mse"], marker=markers[i % 7], label=label)
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(0, 1.02)
    axes[1].set_ylabel("MSE")
    axes[1].set_xlabel("DCT coefficient (zig-zag index)")
    axes[1].set_xticks(range(1, 16))
    axes[0].legend(fontsize=8)
    for a in axes:
        a.grid(alpha=0.3)
    if title:
        axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Writing results with provenance

def provenance(profile: str, seed: int, started: float, models=(), datasets=(), **extra) -> dict:
    """Profile, seed, commit, hardware, versions, wall time, plus the sha256 of every model and
    the content digest of every dataset a result comes from, and the variant they used."""
    m = {}
    for name in models:
        if name in BASELINES:
            m[name] = {"method": METHOD[name], "code_sha256": _code_digest(), "grid": "aligned"}
            continue
        path = ex.model_path(profile, name)
        cfg = json.loads((path.parent / "config.json").read_text())
        m[name] = {"sha256": sha256_file(path), "head": cfg["head"], "loss": cfg["loss"], "c": cfg.get("c"),
                   "distance": cfg.get("distance"), "depth": cfg["depth"], "channels": cfg["channels"]}
    d = {}
    for name in datasets:
        man = json.loads((ex.datasets_dir(profile) / name / "manifest.json").read_text())
        s = man["spec"]
        d[name] = {"content_sha256": man["content_sha256"], "source": s["source"], "split": s["split"],
                   "qf2": s["qf2"], "grid_shift": s["grid_shift"], "channels": s["channels"],
                   "encoder": f"{s['encoder']} {s['subsampling']}", "scale": s.get("scale", 1.0)}
    from .report import data_manifests
    return record(profile, seed, started, models=m, datasets=d, data_manifests=data_manifests(), **extra)


def save_table(df: pd.DataFrame, profile: str, name: str, prov: dict) -> Path:
    """``results/<profile>/tables/<name>.csv`` and ``.md``, with the provenance sidecar."""
    from .report import write_table
    path = results_dir(profile) / "tables" / f"{name}.csv"
    write_table(df, path, prov)
    return path


def save_figure(fig, profile: str, name: str, prov: dict) -> Path:
    """``results/<profile>/figures/<name>.png`` (written to a temporary name, then renamed)."""
    import io
    path = results_dir(profile) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())
    write_sidecar(path, prov)
    return path


def now() -> float:
    return time.time()


def paper_rows(experiment: str) -> pd.DataFrame:
    """The paper's published AvgAcc/AvgMSE for one experiment, as rows."""
    rows = [{"experiment": e, "method": m, "AvgAcc": v[0], "AvgMSE": v[1], "source": f"paper, {v[2]}"}
            for (e, m), v in PAPER.items() if e == experiment]
    return pd.DataFrame(rows)


def nan_to_dash(df: pd.DataFrame) -> pd.DataFrame:
    return df.replace({np.nan: "-"})
