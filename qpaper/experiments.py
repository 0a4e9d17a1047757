"""Building the datasets and training the models of the paper's experiments (Sections 4-5) that
a profile's notebooks need, through ``qpaper experiments datasets|models`` (the list is data, in
:mod:`qpaper.profiles`: :func:`~qpaper.profiles.datasets` and :data:`~qpaper.profiles.MODELS`).
"""

from __future__ import annotations

import time

from .paths import dataset_dir, models_dir, relative
from .profiles import MODELS, datasets


def build_datasets(profile: str, seed: int = 0, names=None, workers=None, log=print, progress: bool = True,
                   scheduler: str | None = None) -> dict:
    """Build (or find already built) the datasets of ``profile``; returns name -> folder. ``log``,
    ``progress`` (the bar) and ``scheduler`` (a Dask cluster) go to :func:`qpaper.shards.build`."""
    from .shards import build
    out = {}
    specs = datasets(profile, seed)
    for name in names or specs:
        folder = dataset_dir(profile, name, seed)
        log(f"dataset {name}: {folder}")
        build(specs[name], folder, workers=workers, progress=progress, log=log, scheduler=scheduler)
        out[name] = folder
    return out


def train_models(profile: str, seed: int = 0, names=None, retrain: bool = False, log=print) -> None:
    """Train the models of ``profile`` that are missing (all of them with ``retrain``), resuming
    a cut run from its checkpoint; one :func:`qpaper.train.train` call each, in this process."""
    import shutil

    from . import filelevel
    specs = datasets(profile, seed)
    for name in names or [*MODELS, filelevel.NAME]:
        if name == filelevel.NAME:
            _train_file_model(profile, seed, retrain, log)
            continue
        data, head, loss = MODELS[name]
        if data not in specs:
            log(f"model {name}: the {profile} profile has no dataset {data}; skipped")
            continue
        run = models_dir(profile) / name
        if (run / "model.keras").exists() and not retrain:
            log(f"model {name}: {run / 'model.keras'} exists (make reproduce TRAIN=1 retrains it)")
            continue
        resume = (run / "checkpoint.keras").exists() and not retrain
        if retrain and run.exists():
            shutil.rmtree(run)
        from . import train
        import keras
        keras.utils.clear_session()  # a fresh graph per model: the last one's layers are not kept
        log(f"model {name}: training ({head} head, loss {loss}, data {relative(dataset_dir(profile, data, seed))})")
        t0 = time.time()
        train.train(relative(dataset_dir(profile, data, seed)), relative(run), profile=profile, head=head, loss=loss,
                    seed=seed, resume=resume, log=log)
        log(f"model {name}: trained in {time.time() - t0:.0f} s")


def _train_file_model(profile: str, seed: int, retrain: bool, log) -> None:
    """The file-level estimator (issue 31, :mod:`qpaper.filetrain`), when missing or ``retrain``."""
    from . import filelevel, filetrain
    run = models_dir(profile) / filelevel.NAME
    if (run / filelevel.PASSES[1]).exists() and not retrain:
        log(f"model {filelevel.NAME}: {run} exists (make reproduce TRAIN=1 retrains it)")
        return
    import keras
    keras.utils.clear_session()
    t0 = time.time()
    log(f"model {filelevel.NAME}: whole files of the training scenes, then both passes")
    filetrain.train(profile, seed, log=log)
    log(f"model {filelevel.NAME}: trained in {time.time() - t0:.0f} s")
