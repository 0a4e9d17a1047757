"""The model registry: ``models/<profile>/manifest.json`` lists the trained models of a profile
(name, QF2, head, loss, input channels, metrics, sha256). ``qpaper models`` prints them;
:func:`choose` picks the model for a file's QF2 (the paper, Section 5.2: a QF2 off by 2 costs
little); :func:`load` refuses a file whose sha256 differs from the manifest and loads with
``safe_mode=True`` only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .experiments import MODELS, models_dir
from .sources import atomic_write_bytes, sha256_file

PREFERENCE = ("paper", "mini", "smoke")  # when several profiles have a model for a QF2


class RegistryError(ValueError):
    """A missing, unknown or altered model; one line for the user."""


def manifest_entries(profile: str, root: Path | None = None) -> list[dict]:
    """The manifest entries of the trained models of ``profile`` (from their run folders), with
    the test metrics of ``results/<profile>/tables/tables1-4-summary.csv`` when present."""
    from .experiments import ROOT
    mdir = models_dir(profile)
    summary_csv = Path(root or ROOT) / "results" / profile / "tables" / "tables1-4-summary.csv"
    summary = pd.read_csv(summary_csv) if summary_csv.exists() else None
    out = []
    for name, (data, head, loss) in MODELS.items():
        run = mdir / name
        if not (run / "model.keras").exists():
            continue
        cfg = json.loads((run / "config.json").read_text())
        qf2 = int(cfg["dataset_spec"]["qf2"])
        metrics = {}
        if summary is not None:
            method = "proposed" if (head, loss) == ("class", "Lr") else "[10]" if head == "regression" else None
            for r in summary[(summary["qf2"] == qf2) & (summary["method"] == method)].itertuples():
                metrics[f"table{r.table}"] = {"test": r.test, "AvgAcc": r.AvgAcc, "AvgMSE": r.AvgMSE}
        out.append({"name": name, "path": f"{name}/model.keras", "profile": profile, "qf2": qf2, "head": head,
                    "loss": cfg["loss"], "channels": cfg["channels"], "arch": cfg.get("arch", "densenet"),
                    "depth": cfg["depth"] if cfg.get("arch", "densenet") == "densenet" else None, "metrics": metrics,
                    "sha256": sha256_file(run / "model.keras")})
    return out


def write_manifest(profile: str, root: Path | None = None) -> Path:
    path = models_dir(profile) / "manifest.json"
    atomic_write_bytes(path, json.dumps({"models": manifest_entries(profile, root)}, indent=1).encode())
    return path


def entries() -> list[dict]:
    """Every registered model of every profile (``models/*/manifest.json``), with its file path."""
    out = []
    root = models_dir("x").parent
    for m in sorted(root.glob("*/manifest.json")):
        for e in json.loads(m.read_text())["models"]:
            out.append({**e, "file": str(m.parent / e["path"])})
    return out


def choose(qf2: int, head: str = "class", loss: str = "Lr") -> tuple[dict, int]:
    """The registered model (the proposed estimator by default) trained for the QF2 nearest to
    ``qf2``, preferring the paper profile, then mini; returns (entry, |QF2 gap|)."""
    cands = [e for e in entries() if e["head"] == head and (head != "class" or e["loss"] == loss)]
    if not cands:
        raise RegistryError("no registered model (models/*/manifest.json); train one or pass --model")
    rank = {p: k for k, p in enumerate(PREFERENCE)}
    best = min(cands, key=lambda e: (abs(e["qf2"] - qf2), rank.get(e["profile"], 9), -e["qf2"]))
    return best, abs(best["qf2"] - qf2)


def load(entry_or_path):
    """Load a registered entry (sha256 checked first) or a plain ``.keras`` path, safe_mode=True."""
    from .train import load_model
    if isinstance(entry_or_path, dict):
        f = Path(entry_or_path["file"])
        if not f.is_file():
            raise RegistryError(f"registered model {entry_or_path['name']} is missing: {f}")
        if sha256_file(f) != entry_or_path["sha256"]:
            raise RegistryError(f"model {f} does not match the sha256 of its manifest; refusing to load it")
        return load_model(f)
    return load_model(entry_or_path)


def load_file(path):
    """Load a ``.keras`` file; when it is a registered model's file, its sha256 is checked first."""
    p = Path(path).resolve()
    for e in entries():
        if Path(e["file"]).resolve() == p:
            return load(e)
    return load(path)


def model_for(q2, path=None, cache: dict | None = None) -> tuple:
    """The model for a file whose last table is ``q2``: ``path`` when given, else the registered
    proposed estimator for the nearest QF2. Returns (model, name, trained QF2 or None, QF2 gap).
    With ``cache`` (a dict kept across files) each model is loaded once."""
    from .jpeg import nearest_standard_qf
    cache = {} if cache is None else cache
    if path:
        if str(path) not in cache:
            cache[str(path)] = load(path)
        return cache[str(path)], str(path), None, 0
    entry, gap = choose(nearest_standard_qf(q2)[0])
    if entry["file"] not in cache:
        cache[entry["file"]] = load(entry)
    return cache[entry["file"]], f"{entry['profile']}/{entry['name']}", entry["qf2"], gap
