"""The paper's experiments as data: which datasets and which models each profile needs (Section 4),
built and trained by ``make reproduce`` through ``python -m qpaper.experiments``.

Datasets (under ``data/processed/datasets/<profile>/``):

- ``qf2-90-train``, ``qf2-80-train``: the training sets (random grid shift, aligned 1/64).
- ``qf2-{90,80}-test`` and ``-aligned``: Tables 1-4 and Figures 3-7.
- ``qf2-92-test`` and ``-aligned``: the QF2-mismatch test (Section 5.2: a QF2-90 model on QF2 92).
- ``qf2-90-mismatch`` and ``qf2-90-halfres``: dataset and resolution mismatch (Figures 9, 10).
- ``qf2-90-photoshop`` and ``-aligned``: Photoshop tables as Q1, Pillow 4:4:4 (Figure 11).

Models (under ``models/<profile>/``): the proposed estimator (class head, loss Lr) and the
regression estimator of [10] for QF2 90 and 80, and the class head with plain cross-entropy L
for the loss ablation (Section 5.1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .profiles import dataset_spec, get_profile

PHOTOSHOP_Q1 = ("ps8", "ps9", "ps10", "ps12")
ROOT = Path(__file__).resolve().parent.parent


def datasets(profile: str, seed: int = 0) -> dict:
    """name -> DatasetSpec of every dataset the notebooks of ``profile`` read."""
    p = get_profile(profile)
    out = {}
    for qf2 in (90, 80):
        out[f"qf2-{qf2}-train"] = dataset_spec(profile, "train", qf2, seed)
        out[f"qf2-{qf2}-test"] = dataset_spec(profile, "test", qf2, seed)
        out[f"qf2-{qf2}-test-aligned"] = dataset_spec(profile, "test", qf2, seed, grid_shift="aligned")
    out["qf2-92-test"] = dataset_spec(profile, "test", 92, seed, qf1=p["qf1"][90])
    out["qf2-92-test-aligned"] = dataset_spec(profile, "test", 92, seed, qf1=p["qf1"][90], grid_shift="aligned")
    out["qf2-90-mismatch"] = dataset_spec(profile, "mismatch", 90, seed)
    out["qf2-90-halfres"] = dataset_spec(profile, "mismatch", 90, seed, scale=0.5)
    for shift, suffix in (("random", ""), ("aligned", "-aligned")):
        out[f"qf2-90-photoshop{suffix}"] = dataset_spec(profile, "test", 90, seed, grid_shift=shift, qf1=PHOTOSHOP_Q1,
                                                        encoder="pillow", subsampling="4:4:4")
    return out


# name -> (training dataset, head, loss); the loss of the class head is L (Eq. 1) or Lr (Eq. 5)
MODELS = {
    "qf2-90-class-Lr": ("qf2-90-train", "class", "Lr"),
    "qf2-90-regression": ("qf2-90-train", "regression", "mse"),
    "qf2-90-class-L": ("qf2-90-train", "class", "L"),
    "qf2-80-class-Lr": ("qf2-80-train", "class", "Lr"),
    "qf2-80-regression": ("qf2-80-train", "regression", "mse"),
}


def datasets_dir(profile: str) -> Path:
    from .sources import DATA_DIR
    return DATA_DIR / "processed" / "datasets" / profile


def models_dir(profile: str) -> Path:
    """``models/<profile>/`` (``QPAPER_MODELS`` replaces ``models/``)."""
    import os
    return Path(os.environ.get("QPAPER_MODELS", ROOT / "models")) / profile


def model_path(profile: str, name: str) -> Path:
    return models_dir(profile) / name / "model.keras"


def build_datasets(profile: str, seed: int = 0, names=None, workers=None, log=print) -> dict:
    """Build (or find already built) the datasets of ``profile``; returns name -> folder."""
    from .djpeg import build
    out = {}
    specs = datasets(profile, seed)
    for name in names or specs:
        folder = datasets_dir(profile) / name
        log(f"dataset {name}: {folder}")
        build(specs[name], folder, workers=workers)
        out[name] = folder
    return out


def train_models(profile: str, seed: int = 0, names=None, retrain: bool = False, log=print) -> None:
    """Train the models of ``profile`` that are missing (all of them with ``retrain``), each in
    a fresh process (TensorFlow keeps memory between runs), resuming a cut run."""
    import shutil
    import subprocess

    for name in names or MODELS:
        data, head, loss = MODELS[name]
        run = models_dir(profile) / name
        if (run / "model.keras").exists() and not retrain:
            log(f"model {name}: {run / 'model.keras'} exists (make reproduce TRAIN=1 retrains it)")
            continue
        resume = (run / "checkpoint.keras").exists() and not retrain
        if retrain and run.exists():
            shutil.rmtree(run)
        qf2 = int(name.split("-")[1])
        cmd = [sys.executable, "-m", "qpaper.cli", "train", "--profile", profile, "--qf2", str(qf2),
               "--head", head, "--data", _rel(datasets_dir(profile) / data), "--out", _rel(run), "--seed", str(seed)]
        if head == "class":
            cmd += ["--loss", loss]
        if resume:
            cmd.append("--resume")
        log(f"model {name}: training ({' '.join(cmd[2:])})")
        t0 = time.time()
        subprocess.run(cmd, check=True)
        log(f"model {name}: trained in {time.time() - t0:.0f} s")


def _rel(path: Path) -> str:
    """A path relative to the working directory where it lies below it (run configs stay portable)."""
    import os
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else str(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="qpaper experiments")
    sub = p.add_subparsers(dest="what", required=True)
    for what in ("datasets", "models", "list"):
        s = sub.add_parser(what)
        s.add_argument("--profile", default="smoke")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--only", nargs="*", help="these names only")
        if what == "datasets":
            s.add_argument("--workers", type=int)
        if what == "models":
            s.add_argument("--retrain", action="store_true")
    a = p.parse_args(argv)
    try:
        if a.what == "datasets":
            build_datasets(a.profile, a.seed, a.only, a.workers)
        elif a.what == "models":
            train_models(a.profile, a.seed, a.only, a.retrain)
        else:
            for name, spec in datasets(a.profile, a.seed).items():
                print(name, json.dumps(spec.to_dict(), sort_keys=True))
            for name, (data, head, loss) in MODELS.items():
                print(name, data, head, loss)
    except (ValueError, OSError) as e:
        print(f"qpaper: error: {e}", file=sys.stderr)
        return 2
    except subprocess_error() as e:
        print(f"qpaper: error: {e}", file=sys.stderr)
        return 1
    return 0


def subprocess_error():
    import subprocess
    return subprocess.CalledProcessError


if __name__ == "__main__":
    sys.exit(main())
