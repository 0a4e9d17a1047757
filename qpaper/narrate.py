"""The words of the notebooks' sentences, chosen by the numbers they are about (issue 33).

A notebook's interpretation is an f-string; where it compares, counts or numbers something, the
wording comes from here, so that a test can hold it to the data:

- :func:`compare`: "ahead of" / "behind" only when the paired bootstrap interval of the
  difference excludes 0, "about the same as" otherwise (with the interval either way);
- :func:`paper_table`: the paper's numbering of Tables 1-4, the one place notebooks, tables and
  the README read it from;
- :func:`chance_counts`: how many aligned draws chance gives a random-shift set;
- :func:`range_text`: a range as it is in the data (lowest, highest, mean), never a round guess;
- :func:`paired_files`: the paired bootstrap over whole files of ``results/benchmarks/estimate-rows.csv``;
- :func:`environment`, :func:`layer_table`, :func:`source`: what a student needs beside a
  result (versions and hardware, the network's layers in plain text, the code itself).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd

# Section 5.1 of the paper: Tables 1-4 (and notebook 3, and the README).
PAPER_TABLES = {(90, "random shift"): 1, (90, "aligned"): 2, (80, "random shift"): 3, (80, "aligned"): 4}
_GRIDS = {"random": "random shift", "random shift": "random shift", "random shift (aligned 1/64)": "random shift",
          "non-aligned": "random shift", "aligned": "aligned"}



def paper_table(qf2: int, grid: str) -> int:
    """The paper's table number of a test setting: QF2 90 random shift 1, aligned 2; QF2 80
    random shift 3, aligned 4."""
    try:
        return PAPER_TABLES[int(qf2), _GRIDS[str(grid)]]
    except KeyError:
        raise ValueError(f"no table of the paper for QF2 {qf2}, grid {grid!r}") from None


# ---------------------------------------------------------------------------------------------
# Comparisons

def verdict(low: float, high: float, better: str = "higher") -> str:
    """'ahead', 'behind' or 'same' for a difference (this one minus the other) whose interval
    is [low, high]: ahead or behind only when the interval excludes 0. ``better``: 'higher' for
    accuracies, 'lower' for errors."""
    if better not in ("higher", "lower"):
        raise ValueError("better must be higher or lower")
    if low > 0:
        return "ahead" if better == "higher" else "behind"
    if high < 0:
        return "behind" if better == "higher" else "ahead"
    return "same"


def interval_text(low: float, high: float, level: float = 0.95, fmt: str = "+.3f") -> str:
    return f"{level:.0%} interval {low:{fmt}} to {high:{fmt}}"


def compare(diff: float, low: float, high: float, other: str, better: str = "higher", fmt: str = "+.3f",
            level: float = 0.95) -> str:
    """'ahead of OTHER by D (95% interval L to H)', 'behind OTHER by D (...)' or 'about the same
    as OTHER (D, 95% interval L to H, which holds 0)' for a paired difference D = this minus
    OTHER with its bootstrap interval [L, H]."""
    v = verdict(low, high, better)
    iv = interval_text(low, high, level, fmt)
    if v == "same":
        return f"about the same as {other} ({diff:{fmt}}, {iv}, which holds 0)"
    return f"{'ahead of' if v == 'ahead' else 'behind'} {other} by {diff:{fmt}} ({iv})"


def paired(preds: dict, a: str, b: str, aligned=None, metric: str = "accuracy", n: int = 1000, seed: int = 0) -> dict:
    """The paired bootstrap (over test images, :func:`qpaper.results.bootstrap`) of ``a`` minus
    ``b`` (labels of ``preds``, label -> :func:`qpaper.results.predictions`): ``diff``, ``low``,
    ``high``, the two values, ``images``; ``metric`` 'accuracy' (AvgAcc) or 'mse' (AvgMSE)."""
    from .results import bootstrap
    t = bootstrap({a: preds[a], b: preds[b]}, n=n, seed=seed, aligned=aligned, metric=metric).set_index("method")
    col = "AvgAcc" if metric == "accuracy" else "AvgMSE"
    r = t.loc[b]
    return {"diff": -float(r[f"minus {a}"]), "low": -float(r["diff high"]), "high": -float(r["diff low"]),
            "a": float(t.loc[a, col]), "b": float(r[col]), "images": int(r["images"]),
            "better": "higher" if metric == "accuracy" else "lower"}


def said(p: dict, other: str, fmt: str = "+.3f") -> str:
    """:func:`compare` on a :func:`paired` result."""
    return compare(p["diff"], p["low"], p["high"], other, p["better"], fmt)


def paired_files(rows: pd.DataFrame, a: str, b: str, score: str = "exact", n: int = 2000, seed: int = 0,
                 level: float = 0.95) -> dict:
    """Paired bootstrap over whole files of one cell of ``estimate-rows.csv`` (rows of one part,
    family and grid): the mean ``score`` of method ``a`` minus that of ``b`` on the same files,
    resampled ``n`` times: ``diff``, ``low``, ``high``, ``a``, ``b``, ``files``."""
    key = ["part", "family", "grid", "qf2", "first", "photo", "index", "key"]
    w = rows[rows["method"].isin([a, b])].pivot_table(index=key, columns="method", values=score, aggfunc="first")
    w = w.dropna()
    if w.empty:
        raise ValueError(f"no file scored by both {a} and {b}")
    d = (w[a] - w[b]).to_numpy(float)
    rng = np.random.default_rng(seed)
    draws = d[rng.integers(0, len(d), size=(n, len(d)))].mean(1)
    q = (1 - level) / 2
    return {"diff": float(d.mean()), "low": float(np.quantile(draws, q)), "high": float(np.quantile(draws, 1 - q)),
            "a": float(w[a].mean()), "b": float(w[b].mean()), "files": int(len(d)), "better": "higher"}


# ---------------------------------------------------------------------------------------------
# Counts and ranges

def chance_counts(n: int, p: float = 1 / 64, level: float = 0.95) -> tuple[int, int]:
    """The central ``level`` range of the number of aligned draws among ``n`` (binomial n, p):
    a set whose count falls outside it is unusual for chance."""
    from scipy.stats import binom
    a = (1 - level) / 2
    return int(binom.ppf(a, n, p)), int(binom.ppf(1 - a, n, p))


def range_text(values, fmt: str = ".0f", unit: str = "") -> str:
    """'LO-HI UNIT (mean M)' of ``values`` as they are."""
    v = np.asarray(values, float)
    u = f" {unit}" if unit else ""
    return f"{v.min():{fmt}}-{v.max():{fmt}}{u} (mean {v.mean():{fmt}})"


def share_text(k: int, n: int) -> str:
    return f"{k} of {n}"


# ---------------------------------------------------------------------------------------------
# What a student needs beside a result

def environment(profile: str, seed: int) -> str:
    """One Markdown paragraph: the profile and seed, the commit, Python and the libraries'
    versions, the CPU and any GPU the backend sees."""
    import platform

    from .provenance import git_commit, hardware
    from importlib.metadata import PackageNotFoundError, version
    libs = []
    for name in ("numpy", "tensorflow", "keras", "jpeglib", "scipy", "pandas", "matplotlib"):
        try:
            libs.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    try:
        import tensorflow as tf
        gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:  # another backend, or none
        gpus = []
    return (f"**Run:** profile `{profile}`, seed {seed}, commit `{git_commit()[:12]}`. **Software:** Python "
            f"{platform.python_version()}, {', '.join(libs)}. **Hardware:** {hardware()}; "
            + (f"GPU: {', '.join(gpus)}." if gpus else "no GPU (everything here runs on the CPU).")
            + " Terms (AvgAcc, q_max, R_k, ECE, traced, constant prior): the glossary of `notebooks/README.md` "
            "([from an executed copy](../../../notebooks/README.md#glossary) in `results/<profile>/notebooks/`).")


def layer_table(model) -> pd.DataFrame:
    """The network's layers in plain text (no terminal colour codes): name, type, output shape,
    parameters (trainable ones)."""
    rows = []
    for layer in model.layers:
        try:
            shape = layer.output.shape if not isinstance(layer.output, (list, tuple)) else \
                [tuple(o.shape) for o in layer.output]
        except (AttributeError, ValueError):
            shape = ""
        rows.append({"layer": layer.name, "type": type(layer).__name__, "output shape": str(tuple(shape))
                     if not isinstance(shape, list) else str(shape), "parameters": int(layer.count_params())})
    return pd.DataFrame(rows)


def source(obj, lines: tuple[int, int] | None = None) -> str:
    """The source of a function or class as a Markdown code block headed by its file and line
    (``lines``: only those lines of it, 1-based, inclusive): the code shown, not paraphrased."""
    src, start = inspect.getsourcelines(obj)
    if lines is not None:
        src, start = src[lines[0] - 1:lines[1]], start + lines[0] - 1
    path = Path(inspect.getsourcefile(obj)).resolve()
    try:
        path = path.relative_to(Path(__file__).resolve().parents[1])
    except ValueError:
        pass
    return f"`{path}`, lines {start}-{start + len(src) - 1}:\n\n```python\n{''.join(src).rstrip()}\n```"


def aligned_draws(dataset_dir, p: float = 1 / 64, level: float = 0.95) -> dict:
    """A random-shift dataset counted in *draws*: the builder draws one grid shift per unit (an
    image and a QF1; the training sets cut several units from an image), for all of that unit's patches. {"draws", "aligned" (units whose draw is aligned),
    "lo", "hi" (the central ``level`` range chance gives, :func:`chance_counts`), "inside"}."""
    from .dataset import open_dataset
    d = open_dataset(dataset_dir, verify=False)
    meta = np.concatenate([np.asarray(m) for m in d["meta"]])
    units = pd.DataFrame({"unit": meta["unit"], "aligned": meta["aligned"].astype(bool)})
    u = units.groupby("unit")["aligned"].agg(["min", "max"])
    if (u["min"] != u["max"]).any():
        raise ValueError(f"{dataset_dir}: a unit's patches disagree on their grid shift")
    n, k = len(u), int(u["max"].sum())
    lo, hi = chance_counts(n, p, level)
    return {"draws": n, "aligned": k, "lo": lo, "hi": hi, "inside": lo <= k <= hi}


# The settings each backbone reads (qpaper.model.build_model); the others in a config are not used.
USED_SETTINGS = {
    "dct": ("arch", "head", "loss", "c", "distance", "nf", "width", "hidden", "phases", "channels"),
    "densenet": ("arch", "head", "loss", "c", "distance", "depth", "growth", "dropout", "channels"),
    "coef": ("arch", "head", "loss", "c", "distance", "width", "hidden", "dropout", "channels"),
}
TRAINING_SETTINGS = ("batch", "lr", "schedule", "warmup", "epochs", "epoch_patches", "val_share", "val_max", "backend")


def used_settings(config: dict) -> dict:
    """The settings of a run's ``config.json`` that its network and its training read: the
    backbone's own (a ``dct`` model has no depth or growth), then the training loop's. The loss
    settings (``c``, ``distance``) only with a loss that has them."""
    arch = config.get("arch", "densenet")
    keep = [k for k in USED_SETTINGS[arch] + TRAINING_SETTINGS if k in config]
    if config.get("loss") != "Lr" or config.get("head") == "regression":
        keep = [k for k in keep if k not in ("c", "distance")]
    if config.get("head") == "regression":
        keep = [k for k in keep if k != "loss"]
    return {k: config[k] for k in keep}


def comb_feature(k: int, q: int, nf: int, wide: bool = False) -> int:
    """The position, in a phase's :class:`qpaper.dctfeatures.CombStrength` features, of the comb
    strength of zig-zag coefficient ``k`` (1-based; 1 is DC) at candidate step ``q``."""
    from .dctfeatures import candidates
    cand = candidates(nf, wide)
    if not 1 <= k <= nf or not 1 <= q <= cand[k - 1]:
        raise ValueError(f"coefficient {k} has candidate steps 1..{cand[k - 1] if 1 <= k <= nf else '?'}")
    return int(cand[:k - 1].sum() + q - 1)


def subset(pred: dict, mask) -> dict:
    """The patches of a :func:`qpaper.results.predictions` dict where ``mask`` is true."""
    mask = np.asarray(mask, bool)
    return {k: (v[mask] if isinstance(v, np.ndarray) and len(v) == len(mask) else v) for k, v in pred.items()}


def constant_answer(pred: dict, q1) -> dict:
    """The same patches answered by one constant table ``q1`` (first nc steps), for a paired
    comparison with a method (:func:`paired`)."""
    out = dict(pred)
    out["q_hat"] = np.broadcast_to(np.asarray(q1, np.int64)[None, :pred["q_hat"].shape[1]], pred["q_hat"].shape).copy()
    return out


def unpaired(a: dict, b: dict, what_a: str, what_b: str) -> str:
    """Two AvgAcc with their own bootstrap intervals (rows of :func:`qpaper.results.bootstrap`:
    ``AvgAcc``, ``low``, ``high``) on different test sets, where no paired difference exists:
    'higher' or 'lower' only when the intervals do not overlap."""
    ta = f"{a['AvgAcc']:.3f} (95% interval {a['low']:.3f} to {a['high']:.3f}) {what_a}"
    tb = f"{b['AvgAcc']:.3f} ({b['low']:.3f} to {b['high']:.3f}) {what_b}"
    if a["low"] > b["high"]:
        return f"{ta}, higher than {tb}: the intervals do not overlap"
    if a["high"] < b["low"]:
        return f"{ta}, lower than {tb}: the intervals do not overlap"
    return f"{ta} and {tb}: the intervals overlap, so this test does not tell them apart"


def paired_by_group(va, vb, groups, n: int = 1000, seed: int = 0, level: float = 0.95, better: str = "higher") -> dict:
    """Paired bootstrap of mean(va) - mean(vb), two per-item values on the same items, resampling
    whole ``groups`` (the test images: items of one image move together): ``diff``, ``low``,
    ``high``, ``a``, ``b``, ``groups``, ``better``."""
    va, vb = np.asarray(va, float), np.asarray(vb, float)
    g, idx = np.unique(np.asarray(groups), return_inverse=True)
    sa, sb, cnt = (np.bincount(idx, weights=w, minlength=len(g)) for w in (va, vb, np.ones_like(va)))
    rng = np.random.default_rng(seed)
    w = rng.multinomial(len(g), np.full(len(g), 1 / len(g)), size=n).astype(float)
    d = (w @ sa) / (w @ cnt) - (w @ sb) / (w @ cnt)
    q = (1 - level) / 2
    return {"diff": float(va.mean() - vb.mean()), "low": float(np.quantile(d, q)), "high": float(np.quantile(d, 1 - q)),
            "a": float(va.mean()), "b": float(vb.mean()), "groups": int(len(g)), "better": better}


# ---------------------------------------------------------------------------------------------
# Notebook 8: every patch of the wild test sets, and the whole-file benchmark

def wild_patch_scores(profile: str, seed: int = 0) -> dict:
    """Per patch, the share of its 15 coefficients each method gets right on ``wild-test`` and
    ``wild-test-aligned``, scored as :func:`qpaper.wild.family_rows` scores them (through the
    wide classes; the per-QF2 models by the QF2 nearest to each patch's last table; [7] and [5]
    on the aligned grid; the constant prior of the any-QF2 model's training labels), so that two
    methods can be paired over the test images: {grid: {"right": {method: [N]}, "family": [N]
    names, "image": [N]}}."""
    from . import wild
    from .dataset import open_dataset
    from .evaluate import predict_q1
    from .paths import dataset_dir, model_path
    from .registry import load_file
    from .results import constant_prior
    import logging
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # no retracing warnings in a notebook's outputs
    wide = load_file(model_path(profile, "any-qf2-wide"))
    per_qf2 = {q: load_file(model_path(profile, f"qf2-{q}-class-Lr")) for q in (90, 80)
               if model_path(profile, f"qf2-{q}-class-Lr").exists()}
    prior = constant_prior(wild.in_classes(np.concatenate(open_dataset(dataset_dir(profile, "wild-train", seed),
                                                                       verify=False)["q1"])))
    out = {}
    for name, grid in wild.WILD_TESTS.items():
        d = open_dataset(dataset_dir(profile, name, seed), verify=False)
        n = sum(len(a) for a in d["x"])
        est = {"any-qf2-wide": predict_q1(wide, d, progress=False)}
        if per_qf2:
            est["per-qf2"] = wild.per_qf2_estimates(per_qf2, d)
        for method in ("galvan", "bianchi"):
            est[method] = wild.baseline_estimates(method, d)
        est["prior"] = np.repeat(prior[None], n, axis=0)
        truth = wild.in_classes(np.concatenate([np.asarray(a) for a in d["q1"]]))
        meta = np.concatenate([np.asarray(a) for a in d["meta"]])
        out[grid] = {"right": {wild.METHODS[k]: (wild.in_classes(v) == truth).mean(1) for k, v in est.items()},
                     "family": np.asarray(d["manifest"]["qf1"], dtype=object)[meta["qf1"]],
                     "image": meta["image"]}
    return out


FILE_METHODS = {"file": "file (default)", "cnn": "cnn (window model)", "cnn-fqe": "CNN-FQE", "pyifd": "pyIFD ADQ2",
                "galvan": "[7] galvan", "bianchi": "[5] bianchi"}


def file_cells(rows: pd.DataFrame, part: str = "QF2 90") -> pd.DataFrame:
    """The whole-file benchmark's cells (``results/benchmarks/estimate-rows.csv``) of one part:
    per family and grid, each method's mean share of the 15 coefficients right, *exact* on
    aligned files and *honest* after a shift (a 'no trace' note where the true first step is not
    above the last counts as right), as ``results/benchmarks/estimate.txt`` scores them."""
    r = rows[(rows["part"] == part) & ~rows["single"].astype(bool)].copy()
    r["score"] = np.where(r["grid"] == "aligned", r["exact"], r["honest"])
    t = r.pivot_table(index=["family", "grid"], columns="method", values="score", aggfunc="mean", sort=False)
    return t[[m for m in FILE_METHODS if m in t.columns]].rename(columns=FILE_METHODS)


def file_versus(rows: pd.DataFrame, part: str = "QF2 90", seed: int = 0) -> pd.DataFrame:
    """Per family and grid of one part, the file-level estimator paired with every other method
    over the cell's files (:func:`paired_files` on the score of :func:`file_cells`)."""
    r = rows[(rows["part"] == part) & ~rows["single"].astype(bool)].copy()
    r["score"] = np.where(r["grid"] == "aligned", r["exact"], r["honest"])
    out = []
    for (family, grid), cell in r.groupby(["family", "grid"], sort=False):
        for m in FILE_METHODS:
            if m == "file" or m not in set(cell["method"]):
                continue
            p = paired_files(cell, "file", m, "score", seed=seed)
            out.append({"family": family, "grid": grid, "other": FILE_METHODS[m], "file": round(p["a"], 3),
                        "other score": round(p["b"], 3), "difference": round(p["diff"], 3),
                        "low": round(p["low"], 3), "high": round(p["high"], 3), "files": p["files"],
                        "file is": {"ahead": "higher", "behind": "lower", "same": "about the same"}[
                            verdict(p["low"], p["high"])]})
    return pd.DataFrame(out)
