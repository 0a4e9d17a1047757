"""One run on a lent GPU (issue 13): the paper's DenseNet-40 (Section 4.1; or the dct backbone)
trained on the ``gpu`` profile for a fixed budget of minutes, resumed from the committed
checkpoint, evaluated on held-out scenes beside the constant prior, all written to one folder.

``run`` builds the data on the machine's cores, copies ``models/gpu[-dct]/qf2-90-class-Lr`` (the
last session's run: weights, optimizer and schedule position) when it exists, trains until the
budget leaves ``reserve`` minutes, then evaluates the checkpoint on the random-shift and aligned
test sets (AvgAcc and AvgMSE, each QF1 weighing the same, as Tables 1-2 compute them) and the
per-coefficient median of the training labels on the same sets. ``register`` brings the run folder
back into ``models/`` with a float32 copy any CPU loads, a model card and a manifest entry.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path


from .jpeg import NC
from .paths import models_dir

NAME = "qf2-90-class-Lr"
QF2 = 90
RUN_FILES = ("config.json", "state.json", "log.csv", "checkpoint.keras")


def committed_run(arch: str = "densenet") -> Path:
    """Where the run of ``arch`` is committed: models/gpu/ (DenseNet-40) or models/gpu-dct/."""
    return models_dir("gpu" if arch == "densenet" else f"gpu-{arch}") / NAME


def build_data(data_dir: Path, seed: int = 0, patches_per_qf1: int | None = None, test_per_qf1: int | None = None,
               workers=None, log=print) -> dict:
    """The gpu profile's QF2 90 training set and its random-shift and aligned test sets."""
    from .shards import build
    from .profiles import dataset_spec
    over = {"patches_per_qf1": patches_per_qf1} if patches_per_qf1 else {}
    tover = {"patches_per_qf1": test_per_qf1} if test_per_qf1 else {}
    specs = {"train": dataset_spec("gpu", "train", QF2, seed, **over),
             "test": dataset_spec("gpu", "test", QF2, seed, **tover),
             "test-aligned": dataset_spec("gpu", "test", QF2, seed, "aligned", **tover)}
    out = {}
    for name, spec in specs.items():
        t = time.time()
        m = build(spec, data_dir / f"qf2-{QF2}-{name}", workers=workers, progress=False, log=lambda *_: None)
        log(f"gpu: dataset {name}: {m['count']} patches in {time.time() - t:.0f} s")
        out[name] = data_dir / f"qf2-{QF2}-{name}"
    return out


def evaluate_run(model, data: dict, nc: int = NC) -> dict:
    """AvgAcc / AvgMSE of ``model`` and of the constant prior (per-coefficient median of the
    training labels) on the random-shift and aligned test sets."""
    from .dataset import open_dataset
    from .evaluate import evaluate
    from .results import constant_prior
    prior = constant_prior(open_dataset(data["train"], verify=False)["q1"], "median", nc)
    out = {"prior_q1": prior.tolist()}
    for test in ("test", "test-aligned"):
        key = "random shift" if test == "test" else "aligned"
        for who, m in (("model", model), ("prior", prior)):
            _, summary, _ = evaluate(m, data[test], progress=False)
            out.setdefault(key, {})[who] = {k: round(v, 4) for k, v in summary["all"].items() if k != "qf1_values"}
    return out


def run(out, budget_minutes: float, arch: str = "densenet", seed: int = 0, reserve_minutes: float = 1.5,
        data_dir=None, patches_per_qf1: int | None = None, test_per_qf1: int | None = None, resume_from=None,
        log=print, **overrides) -> dict:
    """Build, resume, train within ``budget_minutes`` (all of it, data and evaluation included),
    evaluate; writes ``out/run/`` (the run folder, ``eval.json`` inside) and returns the eval."""
    from . import train
    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = build_data(Path(data_dir or out / "data"), seed, patches_per_qf1, test_per_qf1, log=log)
    run_dir = out / "run"
    src = Path(resume_from) if resume_from else committed_run(arch)
    resume = all((src / f).exists() for f in RUN_FILES)
    if resume and src.resolve() != run_dir.resolve():
        run_dir.mkdir(parents=True, exist_ok=True)
        for f in RUN_FILES:
            shutil.copy2(src / f, run_dir / f)
    prev = json.loads((run_dir / "state.json").read_text()) if resume else {"epochs_completed": 0}
    log(f"gpu: {'resuming ' + str(src) + ' at epoch ' + str(prev['epochs_completed']) if resume else 'a new run'}")
    if arch != "densenet":
        overrides.setdefault("precision", "float32")
    minutes = budget_minutes - reserve_minutes - (time.time() - t0) / 60
    if minutes <= 0.2:
        raise ValueError(f"no time left to train: the data took {(time.time() - t0) / 60:.1f} of "
                         f"{budget_minutes} minutes")
    log(f"gpu: training for at most {minutes:.1f} minutes")
    state = train.train(data["train"], run_dir, profile="gpu", head="class", loss="Lr", seed=seed, resume=resume,
                        max_minutes=minutes, verbose=2, log=log, arch=arch, **overrides)
    from .model import load_model
    model = load_model(run_dir / ("model.keras" if (run_dir / "model.keras").exists() else "checkpoint.keras"))
    t = time.time()
    ev = evaluate_run(model, data)
    import pandas as pd
    log_rows = pd.read_csv(run_dir / "log.csv")
    last = log_rows.iloc[-1] if len(log_rows) else {}
    cfg = json.loads((run_dir / "config.json").read_text())
    ev.update(arch=arch, epochs_completed=state["epochs_completed"], epochs_planned=cfg["epochs"], patches_seen=int(last.get("patches", 0)),
              patches_per_s=float(last.get("patches_per_s", 0)),
              session_epochs=state["epochs_completed"] - prev["epochs_completed"],
              session_minutes=round((time.time() - t0) / 60, 2), eval_seconds=round(time.time() - t, 1),
              backend=cfg["backend"], seed=seed,
              patches={k: int(json.loads((v / "manifest.json").read_text())["count"]) for k, v in data.items()})
    from .paths import atomic_write_bytes
    atomic_write_bytes(run_dir / "eval.json", json.dumps(ev, indent=1).encode())
    log("gpu: " + json.dumps({k: ev[k] for k in ("random shift", "aligned", "patches_seen", "epochs_completed")}))
    return ev


def register(run_dir, arch: str | None = None, log=print) -> Path:
    """Copy a finished session's run folder into ``models/`` (replacing the last session's), write
    a float32 ``model.keras`` any CPU loads, its card and the profile's ``manifest.json``."""
    from . import train
    from .paths import atomic_write_bytes, sha256_file
    src = Path(run_dir)
    missing = [f for f in RUN_FILES + ("eval.json",) if not (src / f).exists()]
    if missing:
        raise ValueError(f"{src} is not a finished gpu run (missing {', '.join(missing)})")
    cfg = json.loads((src / "config.json").read_text())
    arch = arch or cfg["arch"]
    dest = committed_run(arch)
    dest.mkdir(parents=True, exist_ok=True)
    for f in RUN_FILES + ("eval.json",) + (("console.log",) if (src / "console.log").exists() else ()):
        shutil.copy2(src / f, dest / f)
    from .model import load_model
    ckpt = load_model(dest / "checkpoint.keras")
    train.export_model(ckpt, {**cfg, "precision": cfg.get("precision", "float32")}, dest / "model.keras")
    ev = json.loads((dest / "eval.json").read_text())
    profile = dest.parent.name
    atomic_write_bytes(dest / "model-card.md", model_card(cfg, ev, profile).encode())
    entry = {"name": NAME, "path": f"{NAME}/model.keras", "profile": profile, "qf2": QF2, "head": "class",
             "loss": cfg["loss"], "channels": cfg["channels"], "arch": cfg["arch"],
             "depth": cfg["depth"] if cfg["arch"] == "densenet" else None,
             "metrics": {"gpu": {k: ev[k] for k in ("random shift", "aligned", "patches_seen", "epochs_completed")}},
             "sha256": sha256_file(dest / "model.keras")}
    atomic_write_bytes(dest.parent / "manifest.json", json.dumps({"models": [entry]}, indent=1).encode())
    log(f"gpu: registered {dest} ({ev['patches_seen']} patches seen, {ev['epochs_completed']} of "
        f"{ev['epochs_planned']} epochs)")
    return dest


def model_card(cfg: dict, ev: dict, folder: str = "gpu") -> str:
    """What a reader needs to trust (or not) the registered GPU model."""
    arch = (f"DenseNet-{cfg['depth']} (k = {cfg['growth']}) on pixels, the paper's Section 4.1" if cfg["arch"] ==
            "densenet" else f"block-DCT backbone (nf {cfg['nf']})")
    r, a = ev["random shift"], ev["aligned"]
    return f"""# {NAME} (profile {cfg['profile']}, trained on a lent GPU)

- Network: {arch}, classification-like head, loss L^r (c = {cfg['c']}, distance {cfg['distance']}).
- Data: the prepared wallpapers' training scenes, QF2 {QF2}, QF1 60..98, random grid shift,
  {cfg['dataset_spec']['patches_per_qf1']} patches per QF1, seed {cfg['seed']} (RAISE cannot travel to the device).
- Schedule: Adam, {cfg['schedule']} to a peak of {cfg['lr']} after a {cfg['warmup']:.0%} warm-up, batch {cfg['batch']},
  precision {cfg.get('precision', 'float32')}; planned {cfg['epochs']} epochs of {cfg['epoch_patches']} patches.
  Why not the paper's Adam 1e-5 at batch 32: in the minutes a session has it does not leave the
  constant prior (the first mini models); the paper's setting stays the `paper` profile's.
- Trained so far: {ev['epochs_completed']} of {ev['epochs_planned']} epochs, {ev['patches_seen']} patches seen,
  {ev['patches_per_s']} patches/s in the last epoch ({ev['backend']} backend); this session
  {ev['session_epochs']} epoch(s) in {ev['session_minutes']} minutes.
- Held-out wallpaper scenes ({ev['patches']['test']} random-shift, {ev['patches']['test-aligned']} aligned patches):

| test | AvgAcc | AvgMSE | constant prior AvgAcc | prior AvgMSE |
|---|---|---|---|---|
| random shift | {r['model']['AvgAcc']} | {r['model']['AvgMSE']} | {r['prior']['AvgAcc']} | {r['prior']['AvgMSE']} |
| aligned | {a['model']['AvgAcc']} | {a['model']['AvgMSE']} | {a['prior']['AvgAcc']} | {a['prior']['AvgMSE']} |

A model whose row does not beat the prior's has not learned.

Load it in Python (model.keras is float32, no optimizer; checkpoint.keras resumes training):

```python
import qpaper
model = qpaper.load_model("models/{folder}/{NAME}/model.keras")  # custom layers, safe_mode, sha256
probs = model.predict(patches)  # [N, 64, 64, 3] pixels 0..255 -> 15 softmax blocks
```
"""
