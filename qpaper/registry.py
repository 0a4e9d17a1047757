"""The model registry: ``models/<profile>/manifest.json`` lists the trained models of a profile
(name, QF2, head, loss, input channels, metrics, sha256). ``qpaper models`` prints them;
:func:`choose` picks the model for a file's QF2 (the paper, Section 5.2: a QF2 off by 2 costs
little); :func:`load` refuses a file whose sha256 differs from the manifest and loads with
``safe_mode=True`` only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .profiles import MODELS
from .paths import atomic_write_bytes, models_dir, sha256_file

PREFERENCE = ("paper", "mini", "smoke")  # when several profiles have a model for a QF2


class RegistryError(ValueError):
    """A missing, unknown or altered model; one line for the user."""


def _summary(profile: str, root: Path | None = None):
    """``results/<profile>/tables/tables1-4-summary.csv`` (None before the notebooks ran)."""
    from .paths import results_dir
    path = results_dir(profile, root) / "tables" / "tables1-4-summary.csv"
    return pd.read_csv(path) if path.exists() else None


def _summary_rows(summary, qf2: int, head: str, loss: str) -> list:
    """The Tables 1-4 rows of the model trained with (head, loss) at ``qf2``."""
    method = "proposed" if (head, loss) == ("class", "Lr") else "[10]" if head == "regression" else None
    return list(summary[(summary["qf2"] == qf2) & (summary["method"] == method)].itertuples()) if method else []


def manifest_entries(profile: str, root: Path | None = None) -> list[dict]:
    """The manifest entries of the trained models of ``profile`` (from their run folders), with
    the test metrics of ``results/<profile>/tables/tables1-4-summary.csv`` when present."""
    mdir = models_dir(profile)
    summary = _summary(profile, root)
    out = []
    for name, (data, head, loss) in MODELS.items():
        run = mdir / name
        if not (run / "model.keras").exists():
            continue
        cfg = json.loads((run / "config.json").read_text())
        # a model given Q2 as an input (the wide head) serves every last table: its QF2 is "any"
        qf2 = None if head == "wide" else int(cfg["dataset_spec"]["qf2"])
        metrics = {}
        if summary is not None and qf2 is not None:
            for r in _summary_rows(summary, qf2, head, loss):
                metrics[f"table{r.table}"] = {"test": r.test, "AvgAcc": r.AvgAcc, "AvgMSE": r.AvgMSE}
        if head == "wide":
            metrics.update(_wild_metrics(profile, root))
        out.append({"name": name, "path": f"{name}/model.keras", "profile": profile, "qf2": qf2, "head": head,
                    "loss": cfg["loss"], "channels": cfg["channels"], "arch": cfg.get("arch", "densenet"),
                    "depth": cfg["depth"] if cfg.get("arch", "densenet") == "densenet" else None, "metrics": metrics,
                    "sha256": sha256_file(run / "model.keras")})
    out += file_entries(profile)
    return out


def file_entries(profile: str) -> list[dict]:
    """The manifest entry of the file-level estimator of ``profile`` (:mod:`qpaper.filelevel`),
    when trained: every file of it with its sha256."""
    from .filelevel import NAME, PASSES
    run = models_dir(profile) / NAME
    if not (run / PASSES[1]).exists():
        return []
    cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else {}
    files = {n: sha256_file(run / n) for n in PASSES + ("calibration.json",)}
    return [{"name": NAME, "path": f"{NAME}/{PASSES[1]}", "profile": profile, "qf2": None, "head": "file",
             "loss": cfg.get("loss", "L"), "channels": "luma", "arch": "file-histogram", "depth": None,
             "metrics": cfg.get("metrics", {}), "sha256": files[PASSES[1]], "files": files}]


def file_model(path=None, cache: dict | None = None) -> tuple:
    """The file-level estimator: the folder ``path`` when given (sha256-checked when it is a
    registered one), else the registered one of the preferred profile. Returns (FileModel,
    name); with ``cache`` each is loaded once."""
    from . import filelevel
    cache = {} if cache is None else cache
    regs = [e for e in entries() if e["head"] == "file"]
    if path:
        folder = Path(path)
        folder = folder.parent if folder.suffix == ".keras" else folder
        own = folder.parent / "manifest.json"  # a registered folder is checked wherever it was copied
        regs += [e for e in (read_manifest(own) if own.is_file() else []) if e["head"] == "file"]
        entry = next((e for e in regs if Path(e["file"]).parent.resolve() == folder.resolve()), None)
        name = str(path)
    else:
        if not regs:
            raise RegistryError("no registered file-level model (models/*/file-q1); train one or pass --method cnn")
        rank = {p: k for k, p in enumerate(PREFERENCE)}
        entry = min(regs, key=lambda e: rank.get(e["profile"], 9))
        folder, name = Path(entry["file"]).parent, f"{entry['profile']}/{entry['name']}"
    key = "file:" + str(folder.resolve())
    if key not in cache:
        sums = entry.get("files") if entry else None
        if entry and not isinstance(sums, dict):
            raise RegistryError(f"manifest entry {entry['name']} lists no sha256 of its files")
        cache[key] = filelevel.load_model(folder, sums)
    return cache[key], name


def _wild_metrics(profile: str, root: Path | None = None) -> dict:
    """The any-QF2 model's held-out scores per table family (``results/<profile>/tables/
    wild-families.csv``, written by ``qpaper report wild``), when present."""
    from .paths import results_dir
    path = results_dir(profile, root) / "tables" / "wild-families.csv"
    if not path.exists():
        return {}
    df = pd.read_csv(path)
    df = df[df["method"].str.startswith("any-QF2")]  # qpaper.wild.METHODS["any-qf2-wide"]
    return {"families": {f"{r.family} ({r.grid})": {"AvgAcc": r.AvgAcc, "ECE": r.ECE} for r in df.itertuples()}}


def write_manifest(profile: str, root: Path | None = None) -> Path:
    path = models_dir(profile) / "manifest.json"
    atomic_write_bytes(path, json.dumps({"models": manifest_entries(profile, root)}, indent=1).encode())
    return path


def model_cards(profile: str, root: Path | None = None) -> str:
    """``models/<profile>/README.md``: per model its data, budget, final log row, test metrics
    (from ``results/<profile>/tables/tables1-4-summary.csv`` when present), sha256, and what
    differs from the paper."""
    from .profiles import get_profile
    paper_fit = get_profile("paper")["fit"]
    mdir = models_dir(profile)
    summary = _summary(profile, root)
    out = [f"# Models of the {profile} profile", "",
           f"Trained by `make reproduce PROFILE={profile} TRAIN=1` (`qpaper experiments models`), "
           "each with `qpaper.train.train` (what `qpaper train` runs); loaded with `safe_mode=True`. This "
           f"file is written by `qpaper report models --profile {profile}`.", ""]
    for name, (data, head, loss) in MODELS.items():
        run = mdir / name
        if not (run / "model.keras").exists():
            continue
        cfg = json.loads((run / "config.json").read_text())
        log = pd.read_csv(run / "log.csv")
        last = log.iloc[-1]
        spec = cfg["dataset_spec"]
        seconds = float(log["seconds"].sum())
        arch = cfg.get("arch", "densenet")
        keys = ("depth", "lr", "epochs") if arch == "densenet" else ("lr", "batch", "epochs")
        diffs = [f"{k} {cfg[k]} (paper {paper_fit[k]})" for k in keys if cfg.get(k) != paper_fit[k]]
        if arch != "densenet":
            diffs.insert(0, "backbone: the block-DCT front end at all 64 grid phases (qpaper/dctfeatures.py) with "
                            f"dense layers of {cfg['width']} and {cfg['hidden']} units, not the DenseNet-40 on pixels")
        if cfg.get("schedule", "constant") != "constant":
            diffs.append(f"learning rate: {cfg['warmup']:.0%} linear warm-up to {cfg['lr']}, then cosine decay to 1% "
                         "(the paper: constant 1e-5)")
        if cfg.get("epoch_patches"):
            diffs.append(f"{cfg['epoch_patches']} patches per epoch (paper: the whole set of 1e5 per QF1)")
        diffs.append(f"trained on {spec['source']} ({spec['patches_per_qf1']} patches per QF1; paper: RAISE, 1e5)")
        out += [f"## {name}", "",
                f"- method: {_method_text(head, loss)}; "
                f"head `{cfg['head']}`, loss `{cfg['loss']}`" + (f" (c = {cfg['c']}, distance {cfg['distance']})" if head == "class" and cfg.get("c") else ""),
                f"- data: `{data}` = {spec['source']} split {spec['split']}, "
                + (f"last tables from `{spec['q2_mix']}`, first tables from the families {', '.join(spec['qf1'])} "
                   f"({spec['patches_per_qf1']} patches each)" if spec.get("q2_mix") else
                   f"QF2 {spec['qf2']}, QF1 {spec['qf1']}")
                + f", grid shift {spec['grid_shift']}, {spec['channels']} input, {spec['encoder']} {spec['subsampling']}; "
                f"content sha256 `{cfg['data_content_sha256'][:16]}`",
                f"- budget: " + (f"DenseNet-{cfg['depth']} (growth {cfg['growth']})" if arch == "densenet" else
                                 f"block-DCT backbone ({cfg.get('phases', 'all')} phases, width {cfg['width']}, "
                                 f"hidden {cfg['hidden']})")
                + f", Adam {cfg['lr']} ({cfg.get('schedule', 'constant')} schedule), batch {cfg['batch']}, "
                f"{int(last['epoch'])} epochs" + (f" = {int(last['patches'])} patches seen" if "patches" in log else "")
                + f", {seconds / 60:.1f} min of training"
                + (f" at {log['patches_per_s'].median():.0f} patches/s" if "patches_per_s" in log else "")
                + f" on the machine in the provenance of the results, seed {cfg['seed']}, backend {cfg['backend']}",
                f"- last epoch: training accuracy {float(last['accuracy']):.4f}, MSE {float(last['mse']):.3f}; "
                f"held-out scenes accuracy {float(last['val_accuracy']):.4f}, MSE {float(last['val_mse']):.3f}",
                f"- sha256 of `model.keras`: `{sha256_file(run / 'model.keras')}`",
                f"- load it in Python: `import qpaper; model = qpaper.load_model(\"models/{profile}/{name}/model.keras\")` "
                "(custom layers registered, `safe_mode=True`, sha256 checked against the manifest)"]
        if summary is not None:
            for r in _summary_rows(summary, int(spec["qf2"]), head, loss):
                out.append(f"- test, Table {r.table} ({r.test}): AvgAcc {r.AvgAcc:.4f}, AvgMSE {r.AvgMSE:.4f} "
                           f"([table](../../results/{profile}/tables/tables1-4-summary.md))")
        if head == "wide":
            out += _wide_card(profile, run, root)
        out += [f"- differs from the paper: {'; '.join(diffs)}", ""]
    out += _file_card(profile)
    return "\n".join(out)


def _file_card(profile: str) -> list:
    """The card of the file-level estimator (issue 31, :mod:`qpaper.filelevel`), when trained."""
    from .filelevel import CAND, NAME, PASSES
    run = models_dir(profile) / NAME
    if not (run / PASSES[1]).exists():
        return []
    cfg = json.loads((run / "config.json").read_text())
    cal = json.loads((run / "calibration.json").read_text())
    v = cfg["metrics"]["validation"]
    return [f"## {NAME} (the default of `qpaper estimate`)", "",
            "- method: the whole file's evidence, per zig-zag coefficient: the log-likelihood of every candidate first "
            f"step q = 1..{CAND} under the double-quantization model (Section 2 of the paper, after [5]) on the file's "
            "own quantized coefficients (aligned) and on the DCT of its luma on the best shifted grid of the search "
            "(`qpaper/grid.py`); one scorer (two dense layers of 96) shared by every candidate, coefficient and q2 "
            "gives the logits of a softmax over the candidates (the classification-like head, Section 3.1), read "
            "through the wide classes 1..R_k and 'at least R_k+1'; a second pass adds the prior that the other "
            "coefficients' answers put on each coefficient through the IJG tables; loss L (cross-entropy, Eq. 1)",
            f"- data: {cfg['train_files']} double JPEGs of the training scenes (`data/processed/filelevel/{profile}`, "
            + (f"made in {cfg['cases_seconds'] / 60:.0f} min" if cfg['cases_seconds'] >= 60 else "made before this fit")
            + f"; crops of 128 px to the whole picture; first tables {', '.join(cfg['families'])}; last tables "
            f"`{cfg['q2']}`; aligned {cfg['aligned_share']:.0%}, else a random grid shift; Pillow 4:2:0 or 4:4:4), "
            f"{cfg['validation_files']} more (other crops and tables of the same scenes) for the calibration, and "
            f"{cal['single_files']} single-compressed files for the thresholds",
            f"- budget: Adam, cosine decay from 3e-3, batch 256, {cfg['epochs']} epochs per pass, {cfg['fit_seconds']} s "
            f"of fitting, seed {cfg['seed']}",
            f"- calibration (`calibration.json`): temperature {cal['temperature']} (fitted on the calibration files); "
            f"'no trace' where the answer is q2 or a divisor of it, or the evidence for it is below {cal['no_trace_nats']} "
            f"nats (a step above q2) or {cal['no_trace_below_nats']} nats (below q2), the 99th percentiles of "
            f"single-compressed files' coefficients; 'double-compressed' when at least {cal['double_coefficients']} "
            f"coefficients show more than {cal['double_nats']} nats of a step above q2 (1% of the single-compressed "
            "training files)",
            f"- calibration files: accuracy {v['accuracy']:.4f}, ECE {v['ece']:.4f} over {v['files']} files; whole held-out "
            "files beside the peers: [`results/benchmarks/estimate.txt`](../../results/benchmarks/estimate.txt)",
            "- sha256: " + ", ".join(f"`{n}` `{sha256_file(run / n)[:16]}`" for n in PASSES + ("calibration.json",)),
            "- limits: a first step that divides the last one (or equals it) leaves no trace on an aligned grid, and a "
            "first step not above the last leaves none after a shift: those coefficients are marked 'no trace' and "
            "answered from the others; trained on 28 wallpapers; files of at least 128 px", ""]


def _method_text(head: str, loss: str) -> str:
    if head == "wide":
        return ("the any-QF2 estimator of `qpaper estimate` (issue 21): the coef backbone given Q2 as an input, one "
                "softmax per coefficient over the steps 1..R and a last class 'at least R + 1'")
    if head == "regression":
        return "the regression CNN of [10]"
    return "the proposed estimator" if loss == "Lr" else "class head with cross-entropy L (ablation)"


def _wide_card(profile: str, run: Path, root: Path | None = None) -> list:
    """The lines of the any-QF2 model's card beyond the common ones: its head range, calibration,
    held-out scores by family, and its limits."""
    from .tables import TEST_FAMILIES, WIDE_RANGE
    lines = [f"- head range R (steps named exactly; above: 'at least R + 1'): {' '.join(map(str, WIDE_RANGE))}",
             f"- families never trained on (the test protocol of `qpaper/wild.py`): {', '.join(TEST_FAMILIES)}"]
    cal = run / "calibration.json"
    if cal.exists():
        c = json.loads(cal.read_text())
        lines.append(f"- calibration: logits divided by the temperature {c['temperature']} fitted after training on "
                     f"{c['validation_patches']} patches of held-out training scenes (their ECE {c['ece_before']} -> "
                     f"{c['ece_after']}; `calibration.json`)")
    fam = _wild_metrics(profile, root).get("families")
    if fam:
        lines.append("- held-out scenes, AvgAcc / ECE of the confidence: "
                     + "; ".join(f"{k} {v['AvgAcc']:.3f} / {v['ECE']:.3f}" for k, v in fam.items())
                     + f" ([table](../../results/{profile}/tables/wild-families.md))")
    lines.append("- limits: a coefficient whose first step divides the last one or is below it keeps no trace (reported "
                 "'no trace': the answer there is a prior); a first compression equal to the last is invisible; "
                 "trained on 28 wallpapers, Pillow 4:2:0 files and three families of first tables; the confidence is "
                 "the windows' averaged probability (calibrated on single patches: how often one window is right); a "
                 "coefficient is marked 'uncertain' when fewer than half of the windows agree")
    return lines


def write_cards(profile: str, root: Path | None = None) -> tuple[Path, Path]:
    """``qpaper report models``: ``models/<profile>/README.md`` (the cards) and ``manifest.json``."""
    path = models_dir(profile) / "README.md"
    atomic_write_bytes(path, model_cards(profile, root).encode())
    return path, write_manifest(profile, root)


REQUIRED = {"name": str, "path": str, "profile": str, "head": str, "loss": str, "sha256": str}


def read_manifest(path: Path) -> list[dict]:
    """The entries of one ``manifest.json``, each with its ``file``; a malformed manifest, or an
    entry whose path leaves the manifest's folder, is refused in one line naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise RegistryError(f"{path}: not a readable manifest ({e.__class__.__name__})") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise RegistryError(f"{path}: 'models' must be a list of entries")
    home = path.parent.resolve()
    out = []
    for k, e in enumerate(models):
        if not isinstance(e, dict):
            raise RegistryError(f"{path}: entry {k} is not an object")
        bad = [key for key, t in REQUIRED.items() if not isinstance(e.get(key), t)]
        bad += [key for key in ("metrics",) if key in e and not isinstance(e[key], dict)]
        if bad or not (e.get("qf2") is None or (isinstance(e["qf2"], int) and not isinstance(e["qf2"], bool))):
            raise RegistryError(f"{path}: entry {k} lacks or mistypes {', '.join(bad or ['qf2'])}")
        f = (path.parent / e["path"]).resolve()
        if home not in f.parents:
            raise RegistryError(f"{path}: entry {e['name']} points outside {path.parent} ({e['path']}); refusing it")
        out.append({**e, "file": str(path.parent / e["path"])})
    return out


def entries() -> list[dict]:
    """Every registered model of every profile (``models/*/manifest.json``), with its file path."""
    out = []
    root = models_dir("x").parent
    for m in sorted(root.glob("*/manifest.json")):
        out += read_manifest(m)
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
    from .model import load_model
    if isinstance(entry_or_path, dict):
        f = Path(entry_or_path["file"])
        if not f.is_file():
            raise RegistryError(f"registered model {entry_or_path['name']} is missing: {f}")
        if sha256_file(f) != entry_or_path["sha256"]:
            raise RegistryError(f"model {f} does not match the sha256 of its manifest; refusing to load it")
        m = load_model(f)
    else:
        m = load_model(entry_or_path)
    from .model import check_estimator
    check_estimator(m, entry_or_path["file"] if isinstance(entry_or_path, dict) else entry_or_path)
    return m


def load_file(path):
    """Load a ``.keras`` file; when it is a registered model's file -- listed in this checkout's
    registry, or in the ``manifest.json`` of the profile folder that holds it, wherever that is --
    its sha256 is checked first."""
    p = Path(path).resolve()
    own = Path(path).parent.parent / "manifest.json"
    for e in entries() + (read_manifest(own) if own.is_file() else []):
        if Path(e["file"]).resolve() == p:
            return load(e)
    return load(path)


def default_entry(qf2: int) -> tuple[dict, int]:
    """The default estimator of ``qpaper estimate`` and ``localize``: the registered any-QF2
    model (wide head, Q2 an input; issue 21) when there is one, with gap 0; else the proposed
    estimator trained for the nearest QF2 (:func:`choose`)."""
    wide = [e for e in entries() if e["head"] == "wide"]
    if wide:
        rank = {p: k for k, p in enumerate(PREFERENCE)}
        return min(wide, key=lambda e: rank.get(e["profile"], 9)), 0
    return choose(qf2)


def model_for(q2, path=None, cache: dict | None = None) -> tuple:
    """The model for a file whose last table is ``q2``: ``path`` when given, else the default
    (:func:`default_entry`). Returns (model, name, trained QF2 or None, QF2 gap). With ``cache``
    (a dict kept across files) each model is loaded once."""
    from .jpeg import nearest_standard_qf
    cache = {} if cache is None else cache
    if path:
        if str(path) not in cache:
            cache[str(path)] = load_file(path)
        return cache[str(path)], str(path), None, 0
    entry, gap = default_entry(nearest_standard_qf(q2)[0])
    if entry["file"] not in cache:
        cache[entry["file"]] = load(entry)
    return cache[entry["file"]], f"{entry['profile']}/{entry['name']}", entry["qf2"], gap
