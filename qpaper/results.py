"""What the notebooks call to turn models and datasets into the paper's tables and figures
(Section 5): cached evaluations, AvgAcc/AvgMSE tables, per-coefficient curves, and files in
``results/<profile>/`` with a provenance sidecar each.

AvgAcc and AvgMSE follow the paper: accuracy and squared error of each of the nc coefficients,
averaged over the patches of one QF1, then over the coefficients and the QF1 values (each QF1
weighs the same).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import evaluate as ev
from .profiles import MODELS
from .jpeg import NC, q_max
from .tables import wide_sizes
from .profiles import EVAL_BATCH
from .provenance import record, write_sidecar
from . import paths
from .paths import ROOT, atomic_write_bytes, dataset_dir, evaluations_dir, model_path, models_dir, results_dir, sha256_file

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

METHOD = {"class-Lr": "proposed", "regression": "[10]", "class-L": "class head, loss L", "wide": "any-QF2 (wide head)",
          "galvan": "[7]", "bianchi": "[5]", "bianchi-grid": "[5], grid estimated"}
BASELINES = ("galvan", "bianchi")  # the model-based methods of qpaper.baselines (aligned grid)
# [5] with its own grid-shift estimate first (the non-aligned case): slow (about 17 patches/s)
GRID_BASELINES = ("bianchi-grid",)
PRIOR = {"median": "constant prior (median)", "mode": "constant prior (mode)"}


def method_of(model: str) -> str:
    """'qf2-90-class-Lr' -> 'proposed', 'qf2-90-regression' -> '[10]', 'galvan' -> '[7]',
    'prior-90' -> 'constant prior (median)', 'prior-90-mode' -> 'constant prior (mode)'."""
    if is_prior(model):
        return PRIOR[_prior_parts(model)[1]]
    return METHOD[model if model in BASELINES + GRID_BASELINES else model.split("-", 2)[2]]


def prior(model: int | str = 90, kind: str = "median") -> str:
    """The name of the constant predictor from the labels of the QF2 ``qf2`` training set."""
    if kind not in PRIOR:
        raise ValueError(f"kind must be one of {tuple(PRIOR)}")
    return f"prior-{int(model)}" + ("-mode" if kind == "mode" else "")


def is_prior(model: str) -> bool:
    return model.startswith("prior-")


def _prior_parts(model: str) -> tuple[int, str]:
    parts = model.split("-")
    return int(parts[1]), parts[2] if len(parts) > 2 else "median"


def prior_estimate(profile: str, model: str, nc: int = NC, seed: int = 0) -> np.ndarray:
    """The best answer that ignores the image: per coefficient, the median (the best constant
    for MSE-like losses) or the mode (for the cross-entropy L) of the first nc zig-zag Q1 values
    of the training set's patches. A model whose rows do not beat it has not learned."""
    from .dataset import open_dataset
    qf2, kind = _prior_parts(model)
    return constant_prior(open_dataset(dataset_dir(profile, f"qf2-{qf2}-train", seed), verify=False)["q1"], kind, nc)


def constant_prior(q1, kind: str = "median", nc: int = NC) -> np.ndarray:
    """Per coefficient, the median (rounded half up) or the mode of the first nc zig-zag values
    of training labels ``q1`` (an array [N, >= nc] or a list of such arrays)."""
    q = (np.concatenate(q1) if isinstance(q1, (list, tuple)) else np.asarray(q1))[:, :nc]
    if kind == "median":
        return np.floor(np.median(q.astype(np.float64), axis=0) + 0.5).astype(np.int64)
    return np.array([np.bincount(q[:, k]).argmax() for k in range(nc)], dtype=np.int64)


def validation_prior(profile: str, name: str, seed: int = 0) -> dict:
    """Accuracy and MSE of the constant prior (median and mode) on the held-out validation patches
    of a trained run, computed as its ``log.csv`` computes ``val_accuracy`` and ``val_mse``
    (means over patches and coefficients, labels clipped to q_max): the line a learning curve
    must leave to show that the network learned something."""
    from .dataset import open_dataset
    from .losses import clip_labels
    from .train import split_validation
    run = models_dir(profile) / name
    cfg = json.loads((run / "config.json").read_text())
    d = open_dataset(dataset_dir(profile, MODELS[name][0], seed), verify=False)
    _, val, _ = split_validation(np.concatenate(d["meta"]), cfg["val_share"], cfg["val_max"], cfg["seed"])
    wide = cfg["head"] == "wide"  # its own training labels, in its own classes ("at least R + 1" included)
    q = clip_labels(np.concatenate(d["q1"]), cfg["nc"], wide_sizes(cfg["nc"]) if wide else None)[0]
    qf2 = int(cfg["dataset_spec"]["qf2"])
    out = {}
    for kind in PRIOR:
        if wide:
            p = constant_prior(np.delete(q, val, axis=0), kind, cfg["nc"])
        else:
            p = np.minimum(prior_estimate(profile, prior(qf2, kind), cfg["nc"], seed), q_max(cfg["nc"]))
        err = q[val] - p
        out[kind] = {"accuracy": float((err == 0).mean()), "mse": float((err.astype(float) ** 2).mean())}
    return out


def _train_digest(profile: str, model: str, seed: int = 0) -> str:
    qf2, _ = _prior_parts(model)
    man = dataset_dir(profile, f"qf2-{qf2}-train", seed) / "manifest.json"
    if not man.exists():
        raise FileNotFoundError(f"dataset {man.parent} is not built (qpaper experiments datasets "
                                f"--profile {profile})")
    return json.loads(man.read_text())["content_sha256"]


def _code_digest() -> str:
    import hashlib
    h = hashlib.sha256()
    for f in sorted((ROOT / "qpaper" / "baselines").glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Evaluations, cached by (model sha256, dataset content digest)

def evaluation(profile: str, model: str, dataset: str, batch: int = EVAL_BATCH, progress: bool = True,
               seed: int = 0) -> pd.DataFrame:
    """The tidy evaluation table (QF1 x aligned x coefficient) of a registered model, or of a
    model-based method (``galvan``, ``bianchi``: aligned grid; ``bianchi-grid``: the grid shift
    estimated first), or of a constant prior (:func:`prior`), on a registered dataset of
    ``profile`` built with ``seed``; computed once, then read from the cache."""
    data = dataset_dir(profile, dataset, seed)
    if not (data / "manifest.json").exists():
        raise FileNotFoundError(f"dataset {data} is not built (qpaper experiments datasets "
                                f"--profile {profile})")
    digest = json.loads((data / "manifest.json").read_text())["content_sha256"]
    if model in BASELINES + GRID_BASELINES:
        key = {"method": model, "code_sha256": _code_digest(), "data_content_sha256": digest}
    elif is_prior(model):
        key = {"method": model, "train_content_sha256": _train_digest(profile, model, seed),
               "data_content_sha256": digest}
    else:
        mpath = model_path(profile, model)
        if not mpath.exists():
            raise FileNotFoundError(f"model {mpath} is missing (qpaper experiments models "
                                    f"--profile {profile})")
        key = {"model_sha256": sha256_file(mpath), "data_content_sha256": digest}
    cache = evaluations_dir(profile) / f"{model}--{dataset}.csv"
    kfile = cache.with_suffix(".json")
    if cache.exists() and kfile.exists() and json.loads(kfile.read_text()) == key:
        return pd.read_csv(cache, dtype={"qf1": str})
    print(f"evaluating {model} on {dataset}", flush=True)
    if model in BASELINES + GRID_BASELINES:
        table, _, _ = ev.evaluate(model.split("-")[0], data, progress=progress,
                                  aligned=None if model in GRID_BASELINES else True)
    elif is_prior(model):
        table, _, _ = ev.evaluate(prior_estimate(profile, model, seed=seed), data, progress=progress)
    else:
        from .model import load_model
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
# Writing results with provenance

def provenance(profile: str, seed: int, started: float, models=(), datasets=(), **extra) -> dict:
    """Profile, seed, commit, hardware, versions, wall time, plus the sha256 of every model and
    the content digest of every dataset a result comes from, and the variant they used."""
    m = {}
    for name in models:
        if name in BASELINES + GRID_BASELINES:
            m[name] = {"method": METHOD[name], "code_sha256": _code_digest(),
                       "grid": "estimated" if name in GRID_BASELINES else "aligned"}
            continue
        if is_prior(name):
            qf2, kind = _prior_parts(name)
            m[name] = {"method": PRIOR[kind], "labels_of": f"qf2-{qf2}-train",
                       "train_content_sha256": _train_digest(profile, name, seed),
                       "estimate": prior_estimate(profile, name, seed=seed).tolist()}
            continue
        path = model_path(profile, name)
        cfg = json.loads((path.parent / "config.json").read_text())
        m[name] = {"sha256": sha256_file(path), "head": cfg["head"], "loss": cfg["loss"], "c": cfg.get("c"),
                   "distance": cfg.get("distance"), "arch": cfg.get("arch", "densenet"),
                   **({"depth": cfg["depth"]} if cfg.get("arch", "densenet") == "densenet" else
                      {"width": cfg["width"], "hidden": cfg["hidden"], "phases": cfg["phases"]}),
                   "channels": cfg["channels"], "schedule": cfg.get("schedule", "constant")}
    d = {}
    for name in datasets:
        man = json.loads((dataset_dir(profile, name, seed) / "manifest.json").read_text())
        s = man["spec"]
        d[name] = {"content_sha256": man["content_sha256"], "source": s["source"], "split": s["split"],
                   "qf2": s["qf2"], "grid_shift": s["grid_shift"], "channels": s["channels"],
                   "encoder": f"{s['encoder']} {s['subsampling']}", "scale": s.get("scale", 1.0)}
    return record(profile, seed, started, models=m, datasets=d, data_manifests=data_manifests(), **extra)


def datasets_table(datasets_dir) -> pd.DataFrame:
    """One row per (dataset, QF1): patches, aligned share, images, scenes and the content digest."""
    rows = []
    for d in sorted(Path(datasets_dir).iterdir()):
        mpath = d / "manifest.json"
        if not mpath.exists():
            continue
        m = json.loads(mpath.read_text())
        s = m["spec"]
        for c in m["counts"]:
            rows.append({"dataset": d.name, "source": s["source"], "split": s["split"], "qf2": s["qf2"],
                         "qf1": c["qf1"], "patches": c["patches"], "aligned": c["aligned"],
                         "aligned_share": round(c["aligned"] / c["patches"], 4) if c["patches"] else 0.0,
                         "images": len(m["images"]), "scenes": len(m["scenes"]),
                         "grid_shift": s["grid_shift"], "channels": s["channels"],
                         "encoder": f"{s['encoder']} {s['subsampling']}",
                         "build_seconds": m["build_seconds"], "content_sha256": m["content_sha256"][:16]})
    if not rows:
        raise ValueError(f"no built dataset under {datasets_dir}")
    return pd.DataFrame(rows)


def data_manifests() -> dict:
    """sha256 of the manifests that pin the prepared images (where present)."""
    out = {}
    for name in ("processed/wallpapers/manifest.tsv", "raw/raise/manifest.tsv", "raw/dresden/manifest.tsv"):
        p = paths.DATA_DIR / name
        if p.exists():
            out[name] = sha256_file(p)
    return out


def write_table(df: pd.DataFrame, path: Path, prov: dict) -> None:
    """A table as CSV and Markdown, with its provenance sidecar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, df.to_csv(index=False).encode())
    atomic_write_bytes(path.with_suffix(".md"), df.to_markdown(index=False).encode()
                       if _has_tabulate() else _markdown(df).encode())
    write_sidecar(path, prov)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False


def _markdown(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in df.itertuples(index=False))


def save_table(df: pd.DataFrame, profile: str, name: str, prov: dict) -> Path:
    """``results/<profile>/tables/<name>.csv`` and ``.md``, with the provenance sidecar."""
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
