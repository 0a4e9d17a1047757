"""What the notebooks call to turn models and datasets into the paper's tables and figures
(Section 5): cached evaluations, AvgAcc/AvgMSE tables, per-coefficient curves, and files in
``results/<profile>/`` with a provenance sidecar each.

AvgAcc and AvgMSE follow the paper: accuracy and squared error of each of the nc coefficients,
averaged over the patches of one QF1, then over the coefficients and the QF1 values (each QF1
weighs the same).
"""

from __future__ import annotations

import io
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
        p = ev.predict_dataset(model.split("-")[0], data, progress=progress,
                               aligned=None if model in GRID_BASELINES else True)
    elif is_prior(model):
        p = ev.predict_dataset(prior_estimate(profile, model, seed=seed), data, progress=progress)
    else:
        from .model import load_model
        p = ev.predict_dataset(load_model(mpath), data, batch, progress=progress)
    table, _, _ = ev.evaluate(None, data, predictions=p)
    cache.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, q_hat=p["q_hat"].astype(np.int16), q_true=p["q_true"].astype(np.int16), meta=p["meta"])
    atomic_write_bytes(cache.with_suffix(".npz"), buf.getvalue())  # every patch's answer (notebooks' confusions)
    atomic_write_bytes(cache, table.to_csv(index=False).encode())
    atomic_write_bytes(kfile, json.dumps(key).encode())
    return pd.read_csv(cache, dtype={"qf1": str})


def predictions(profile: str, model: str, dataset: str, seed: int = 0) -> dict:
    """Every patch's answer behind :func:`evaluation` (computed with it, cached beside it):
    {"q_hat", "q_true" [n, nc] int64, "meta" (image, scene, qf1 index, aligned...), "qf1_names"}."""
    cache = evaluations_dir(profile) / f"{model}--{dataset}.npz"
    evaluation(profile, model, dataset, seed=seed, progress=False)
    if not cache.exists():  # an evaluation cached before the answers were kept: once more, keeping them
        cache.with_suffix(".json").unlink(missing_ok=True)
        evaluation(profile, model, dataset, seed=seed, progress=False)
    with np.load(cache) as z:
        out = {k: z[k] for k in z.files}
    out["q_hat"], out["q_true"] = out["q_hat"].astype(np.int64), out["q_true"].astype(np.int64)
    out["qf1_names"] = json.loads((dataset_dir(profile, dataset, seed) / "manifest.json").read_text())["qf1"]
    return out


def _subset(tidy: pd.DataFrame, aligned=None, qf1=None) -> pd.DataFrame:
    t = tidy if aligned is None else tidy[tidy["aligned"] == aligned]
    if qf1 == "<":
        t = t[pd.to_numeric(t["qf1"], errors="coerce") < t["qf2"]]
    elif qf1 == ">=":
        t = t[pd.to_numeric(t["qf1"], errors="coerce") >= t["qf2"]]
    return t


def aligned_share(tidy: pd.DataFrame) -> float:
    """The share of an evaluation's patches whose two grids coincide (the ``aligned`` rows)."""
    t = tidy[tidy["coefficient"] == tidy["coefficient"].min()]
    return float(t.loc[t["aligned"].astype(bool), "patches"].sum() / t["patches"].sum())


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


# ---------------------------------------------------------------------------------------------
# Every patch's answer: what the tables average away (issue 24)

def nearest_qf(q_hat: np.ndarray) -> np.ndarray:
    """The nearest standard QF (1..100) of each row of estimates (mean absolute difference over
    its nc zig-zag values; ties go to the higher quality, as :func:`qpaper.jpeg.nearest_tables`)."""
    from .jpeg import standard_table, zigzag
    q_hat = np.asarray(q_hat)
    tables = np.array([zigzag(standard_table(q))[:q_hat.shape[1]] for q in range(1, 101)], np.float64)
    d = np.abs(q_hat[:, None, :].astype(np.float64) - tables[None]).mean(-1)  # [n, 100]
    return 100 - np.argmin(d[:, ::-1], axis=1)  # argmin over 100..1: the first minimum is the highest QF


def qf1_confusion(pred: dict, aligned=None) -> pd.DataFrame:
    """Rows: the true QF1; columns: the standard QF nearest to the estimated table; cells: the
    share of that QF1's patches (each row sums to 1). ``aligned``: only (non-)aligned patches."""
    sel = np.ones(len(pred["q_hat"]), bool) if aligned is None else pred["meta"]["aligned"] == aligned
    true = np.array(pred["qf1_names"], dtype=object)[pred["meta"]["qf1"][sel]]
    est = nearest_qf(pred["q_hat"][sel])
    t = pd.crosstab(pd.Series(true, name="true QF1"), pd.Series(est, name="estimated (nearest QF)"), normalize="index")
    order = sorted(t.index, key=lambda q: (not str(q).isdigit(), int(q) if str(q).isdigit() else 0, str(q)))
    return t.loc[order]


def coefficient_confusion(pred: dict, k: int, aligned=None) -> pd.DataFrame:
    """Rows: the true q1 of coefficient ``k`` (1-based zig-zag); columns: the estimated one;
    cells: the share of that true value's patches (each row sums to 1)."""
    sel = np.ones(len(pred["q_hat"]), bool) if aligned is None else pred["meta"]["aligned"] == aligned
    return pd.crosstab(pd.Series(pred["q_true"][sel, k - 1], name=f"true q1 of coefficient {k}"),
                       pd.Series(pred["q_hat"][sel, k - 1], name=f"estimated q1 of coefficient {k}"), normalize="index")


def bootstrap(preds: dict, n: int = 1000, seed: int = 0, aligned=None, level: float = 0.95,
              metric: str = "accuracy") -> pd.DataFrame:
    """AvgAcc of each method (label -> :func:`predictions` of one dataset) with a bootstrap
    interval over the test *images* (patches of one image move together; QF1 values weigh the
    same, as in the tables), and each method's difference from the first one on the same draws
    (paired): a difference whose interval holds 0 is not a finding of this test set.
    ``metric="mse"``: AvgMSE instead (the squared error of each coefficient, averaged the same way;
    column ``AvgMSE``)."""
    if metric not in ("accuracy", "mse"):
        raise ValueError("metric must be accuracy or mse")
    labels = list(preds)
    first = preds[labels[0]]
    meta = first["meta"]
    sel = np.ones(len(meta), bool) if aligned is None else meta["aligned"] == aligned
    images, img_idx = np.unique(meta["image"][sel], return_inverse=True)
    qf = meta["qf1"][sel]
    nq = int(qf.max()) + 1
    counts = np.zeros((len(images), nq))
    np.add.at(counts, (img_idx, qf), 1)
    rng = np.random.default_rng(seed)
    w = rng.multinomial(len(images), np.full(len(images), 1 / len(images)), size=n).astype(np.float64)  # [n, images]
    present = counts.sum(0) > 0
    stats = {}
    for lab in labels:
        p = preds[lab]
        if len(p["meta"]) != len(meta) or not np.array_equal(p["meta"]["image"], meta["image"]):
            raise ValueError(f"{lab}: predictions of another dataset")
        acc = ((p["q_hat"][sel] == p["q_true"][sel]) if metric == "accuracy" else
               (p["q_hat"][sel] - p["q_true"][sel]).astype(np.float64) ** 2).mean(1)
        sums = np.zeros((len(images), nq))
        np.add.at(sums, (img_idx, qf), acc)
        point = (sums.sum(0)[present] / counts.sum(0)[present]).mean()
        with np.errstate(invalid="ignore", divide="ignore"):
            per_q = (w @ sums)[:, present] / (w @ counts)[:, present]  # a QF1 that a draw misses is left out
        stats[lab] = (point, np.nanmean(per_q, axis=1))
    a = (1 - level) / 2
    rows = []
    for lab in labels:
        point, draws = stats[lab]
        diff = draws - stats[labels[0]][1]
        rows.append({"method": lab, "AvgAcc" if metric == "accuracy" else "AvgMSE": round(float(point), 4),
                     "low": round(float(np.quantile(draws, a)), 4), "high": round(float(np.quantile(draws, 1 - a)), 4),
                     f"minus {labels[0]}": round(float(point - stats[labels[0]][0]), 4),
                     "diff low": round(float(np.quantile(diff, a)), 4), "diff high": round(float(np.quantile(diff, 1 - a)), 4)})
    return pd.DataFrame(rows).assign(images=len(images), draws=n)
