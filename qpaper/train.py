"""Training (Section 4.3): one ``fit`` over cached double-JPEG shards, with a checkpoint every epoch,
``resume`` after a kill, a CSV log, validation on held-out scenes, a time limit and seeds.

A run folder holds ``config.json`` (everything that defines the run), ``checkpoint.keras`` (model
and optimizer after the last epoch), ``state.json`` (epochs completed), ``log.csv`` and, at the end,
``model.keras``. Every file is written under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path

import keras
import numpy as np

from .dataset import last_tables, open_dataset
from .jpeg import NC
from .losses import C, clip_labels, get_loss
from .model import ARCHS, build_model, head_sizes, load_model, metrics_for
from .profiles import get_profile
from .paths import atomic_write_bytes


# ---------------------------------------------------------------------------------------------
# Feeding shards to Keras

class Patches(keras.utils.PyDataset):
    """Batches of (x float32 0..255, q1 first nc values clipped to the head's classes) gathered
    from the memory-mapped shards of a built dataset; reshuffled every epoch from (seed, epoch).
    ``head="wide"``: the inputs are {"patch": x, "q2": the last table's first nc steps} (stored
    per patch with a ``q2_mix``, else the spec's QF2 table) and the labels fill the wide classes."""

    def __init__(self, shards: dict, index: np.ndarray, batch_size: int, nc: int = NC, seed: int | None = None,
                 epoch: int = 0, epoch_size: int | None = None, head: str = "class"):
        super().__init__()
        self.epoch_size = epoch_size  # patches per epoch: a seeded draw from the whole set (None: all)
        self.x, self.q1 = shards["x"], shards["q1"]
        self.head, self.sizes = head, head_sizes(head, nc)
        self.q2 = last_tables(shards) if head == "wide" else None
        self.starts = np.concatenate([[0], np.cumsum([len(a) for a in self.x])])
        self.index, self.batch_size, self.nc, self.seed = np.asarray(index, np.int64), batch_size, nc, seed
        self.epoch = epoch
        self._order()

    def _order(self):
        if self.seed is None:
            self.order = self.index
        else:
            self.order = self._perm(self.epoch) if not self.epoch_size else self._slice()

    def _perm(self, k):
        return np.random.default_rng([self.seed, k]).permutation(self.index)

    def _slice(self):
        """Epochs of ``epoch_size`` patches cut from successive seeded passes over the whole set,
        so that every patch is seen once per pass."""
        n, e = len(self.index), min(self.epoch_size, len(self.index))
        a = self.epoch * e
        first = a // n
        order = np.concatenate([self._perm(first), self._perm(first + 1)])
        return order[a - first * n:a - first * n + e]

    def __len__(self):
        return math.ceil(len(self.order) / self.batch_size)

    def take(self, idx: np.ndarray):
        idx = np.sort(idx)  # locality in the memory maps; the batch's order does not matter
        shard = np.searchsorted(self.starts, idx, side="right") - 1
        x = np.concatenate([self.x[k][idx[shard == k] - self.starts[k]] for k in np.unique(shard)])
        q = np.concatenate([self.q1[k][idx[shard == k] - self.starts[k]] for k in np.unique(shard)])
        y = clip_labels(q, self.nc, self.sizes)[0].astype("float32")
        if self.q2 is None:
            return x.astype("float32"), y
        q2 = np.concatenate([self.q2[k][idx[shard == k] - self.starts[k]] for k in np.unique(shard)])
        return {"patch": x.astype("float32"), "q2": q2[:, :self.nc].astype("float32")}, y

    def __getitem__(self, i):
        return self.take(self.order[i * self.batch_size:(i + 1) * self.batch_size])

    def on_epoch_end(self):
        self.epoch += 1
        self._order()


def holdout_scenes(meta: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Scene indices held out for validation: a seeded ``share`` of the scenes, none when there are
    fewer than 3."""
    present = np.unique(meta["scene"])
    if len(present) < 3 or share <= 0:
        return np.array([], dtype=np.int64)
    k = max(1, int(round(share * len(present))))
    return np.sort(np.random.default_rng([seed, 0x7A1]).choice(present, size=k, replace=False))


def split_validation(meta: np.ndarray, share: float, val_max: int, seed: int):
    """(training indices, validation indices, held-out scenes): the patches of the
    :func:`holdout_scenes` validate (a seeded sample of at most ``val_max``), the others train."""
    held = holdout_scenes(meta, share, seed)
    is_val = np.isin(meta["scene"], held)
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if len(val_idx) > val_max:
        val_idx = np.sort(np.random.default_rng([seed, 0x7A2]).choice(val_idx, val_max, replace=False))
    return train_idx, val_idx, held


# ---------------------------------------------------------------------------------------------
# Callbacks

class Checkpoint(keras.callbacks.Callback):
    """After every epoch: the model with its optimizer, then state.json (written last)."""

    def __init__(self, out: Path, started_epochs: int):
        super().__init__()
        self.out, self.done = out, started_epochs
        self.t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        partial = bool(getattr(self.model, "stop_training", False) and getattr(self.model, "_qpaper_timeout", False))
        save_model(self.model, self.out / "checkpoint.keras")
        if not partial:
            self.done = epoch + 1
        state = {"epochs_completed": self.done, "last_epoch_partial": partial,
                 "seconds": round(time.time() - self.t0, 1)}
        atomic_write_bytes(self.out / "state.json", json.dumps(state).encode())


class TimeLimit(keras.callbacks.Callback):
    """Stop after ``minutes`` of training (checked after every batch)."""

    def __init__(self, minutes: float | None):
        super().__init__()
        self.limit = None if minutes is None else minutes * 60
        self.t0 = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self.limit is not None and time.time() - self.t0 > self.limit:
            self.model._qpaper_timeout = True
            self.model.stop_training = True


class CSVLog(keras.callbacks.Callback):
    """One row per epoch: epoch, seconds, whether it was cut by the time limit, patches trained
    on since the run began (all sessions) and per second in this epoch, loss, accuracy, mse and
    their validation values."""

    FIELDS = ("epoch", "seconds", "partial", "patches", "patches_per_s", "loss", "accuracy", "mse", "val_loss",
              "val_accuracy", "val_mse")

    def __init__(self, path: Path, data: "Patches"):
        super().__init__()
        self.path, self.data = path, data
        self.t0, self.steps, self.size = time.time(), 0, 0
        self.patches = 0
        if path.exists():
            import pandas as pd
            old = pd.read_csv(path)
            if "patches" in old and len(old):
                self.patches = int(old["patches"].iloc[-1])

    def on_epoch_begin(self, epoch, logs=None):
        self.t0, self.steps, self.size = time.time(), 0, len(self.data.order)
        self.t_train = self.t0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        self.t_train = time.time()  # the end of the last training batch: the speed leaves validation out

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        seconds = time.time() - self.t0
        n = min(self.steps * self.data.batch_size, self.size)
        self.patches += n
        logs.update(epoch=epoch + 1, seconds=round(seconds, 1), patches=self.patches,
                    patches_per_s=round(n / max(self.t_train - self.t0, 1e-9), 1),
                    partial=int(bool(getattr(self.model, "_qpaper_timeout", False))))
        row = ",".join(_fmt(logs.get(f, "")) for f in self.FIELDS) + "\n"
        old = self.path.read_text() if self.path.exists() else ",".join(self.FIELDS) + "\n"
        atomic_write_bytes(self.path, (old + row).encode())


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def save_model(model, path: Path) -> None:
    from .paths import temporary_beside
    fd, tmp = temporary_beside(path, ".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------------------------------------

# fit settings a profile may leave out (runs configured before they existed keep these meanings)
FIT_DEFAULTS = {"arch": "densenet", "width": 128, "hidden": 512, "phases": "all", "nf": NC, "schedule": "constant",
                "warmup": 0.0, "precision": "float32", "c": C, "float32_stages": 0, "stem": "he"}
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# what may differ when a run is resumed elsewhere: the dataset's folder (its content digest must
# match) and the backend (a TensorFlow checkpoint continues on JAX)
RESUME_MAY_DIFFER = ("data", "backend")


def run_config(profile: str, head: str, loss: str, data_dir, seed: int, distance: str = "abs",
               regression_loss: str = "mse", **overrides) -> dict:
    """Everything that defines a training run: the profile's ``fit`` settings plus overrides (for
    the ``wide`` head, the profile's ``fit_wide`` over ``fit``, and the ``coef`` backbone)."""
    prof = get_profile(profile)
    fit = {**FIT_DEFAULTS, **prof["fit"], **(prof.get("fit_wide", {"arch": "coef"}) if head == "wide" else {})}
    fit.update({k: v for k, v in overrides.items() if v is not None})
    if fit["arch"] not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}")
    if fit["precision"] not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    if fit["arch"] in ("dct", "coef") and fit["precision"] != "float32":
        raise ValueError(f"the {fit['arch']} backbone needs precision float32: its block DCT must be exact to the unit")
    manifest = json.loads((Path(data_dir) / "manifest.json").read_text())
    c = fit.pop("c")
    classes = head in ("class", "wide")  # the heads trained with L or L^r
    return {"profile": profile, "head": head, "loss": loss if classes else regression_loss,
            "distance": distance if classes and loss == "Lr" else None, "c": c if classes and loss == "Lr" else None,
            "seed": seed, "nc": NC, "data": str(data_dir), "data_content_sha256": manifest["content_sha256"],
            "dataset_spec": manifest["spec"], "channels": manifest["spec"]["channels"], **fit,
            "optimizer": "adam", "backend": keras.backend.backend()}


def train(data_dir, out_dir, profile: str = "smoke", head: str = "class", loss: str = "Lr", seed: int = 0,
          distance: str = "abs", regression_loss: str = "mse", resume: bool = False, max_minutes: float | None = None,
          devices: int = 1, verbose: int = 1, log=print, **overrides) -> dict:
    """Train a model on a built dataset. ``overrides`` replace the profile's ``fit`` settings
    (arch, depth, growth, dropout, width, hidden, phases, batch, lr, schedule, warmup, epochs,
    epoch_patches, val_share, val_max). Returns the final state."""
    strategy = _strategy(devices)  # first: logical devices must be set before TensorFlow starts
    out = Path(out_dir)
    cfg_path = out / "config.json"
    d = open_dataset(data_dir, verify=False)
    cfg = run_config(profile, head, loss, data_dir, seed, distance, regression_loss, **overrides)
    if resume:
        if not cfg_path.exists() or not (out / "checkpoint.keras").exists():
            raise ValueError(f"nothing to resume in {out}")
        old = {**FIT_DEFAULTS, **json.loads(cfg_path.read_text())}
        differ = sorted(k for k in cfg if k not in RESUME_MAY_DIFFER and old.get(k) != cfg[k]
                        and not (k == "epochs" and cfg[k] > old[k]))
        if differ:
            raise ValueError(f"{out} holds a run with other settings ({', '.join(differ)}); resume with the same "
                             "arguments")
        if cfg["epochs"] > old["epochs"]:  # a longer plan: the checkpoint's learning-rate schedule goes on as saved
            log(f"train: extending the plan from {old['epochs']} to {cfg['epochs']} epochs")
            atomic_write_bytes(cfg_path, json.dumps({**old, "epochs": cfg["epochs"]}, indent=1, sort_keys=True).encode())
        state = json.loads((out / "state.json").read_text())
    else:
        if cfg_path.exists():
            raise ValueError(f"{out} already holds a run: use --resume, or another folder")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cfg_path, json.dumps(cfg, indent=1, sort_keys=True).encode())
        state = {"epochs_completed": 0}
    keras.utils.set_random_seed(seed)
    meta = np.concatenate(d["meta"])
    train_idx, val_idx, held = split_validation(meta, cfg["val_share"], cfg["val_max"], seed)
    start = state["epochs_completed"]
    train_seq = Patches(d, train_idx, cfg["batch"], seed=seed, epoch=start, epoch_size=cfg.get("epoch_patches"),
                        head=head)
    val_seq = Patches(d, val_idx, max(cfg["batch"], 64), head=head) if len(val_idx) else None
    log(f"train: {len(train_idx)} patches, validation: {len(val_idx)} patches from held-out scenes "
        f"{[d['manifest']['scenes'][k] for k in held]}; epochs {start}..{cfg['epochs']}")
    if devices > 1:
        n = strategy.num_replicas_in_sync if strategy else len(keras.distribution.list_devices()[:devices])
        log(f"train: data-parallel over {n} replicas ({keras.backend.backend()} backend)")
    # layers built or loaded take the run's precision (mixed: bfloat16 compute, float32 weights)
    with dtype_policy(cfg["precision"]), strategy.scope() if strategy else contextlib.nullcontext():
        if resume:
            model = load_model(out / "checkpoint.keras")
        else:
            model = build_model(head, cfg["depth"], cfg["growth"], cfg["dropout"],
                                channels=d["x"][0].shape[-1], patch=d["x"][0].shape[1], arch=cfg["arch"],
                                width=cfg["width"], hidden=cfg["hidden"], phases=cfg["phases"], nf=cfg["nf"],
                                float32_stages=cfg["float32_stages"], stem=cfg["stem"])
            steps = cfg["epochs"] * len(train_seq)
            model.compile(optimizer=keras.optimizers.Adam(learning_rate(cfg, steps)),
                          loss=get_loss(head, loss, distance, regression_loss, cfg["c"] or C), metrics=metrics_for(head),
                          jit_compile=_jit())
    if start < cfg["epochs"]:
        model.fit(train_seq, validation_data=val_seq, epochs=cfg["epochs"], initial_epoch=start, verbose=verbose,
                  callbacks=[TimeLimit(max_minutes), CSVLog(out / "log.csv", train_seq), Checkpoint(out, start)])
    state = json.loads((out / "state.json").read_text()) if (out / "state.json").exists() else state
    if state["epochs_completed"] >= cfg["epochs"]:
        if head == "wide" and val_seq is not None:
            model = calibrate(model, val_seq, out / "calibration.json", log)
        export_model(model, cfg, out / "model.keras")
        log(f"train: done, {state['epochs_completed']} epochs; model in {out / 'model.keras'}")
    else:
        log(f"train: stopped after {state['epochs_completed']} complete epochs (time limit); "
            f"continue with --resume")
    return state


TEMPERATURES = np.round(np.geomspace(0.5, 8.0, 49), 4)  # the grid calibrate() searches


def calibrate(model, val_seq: "Patches", path: Path, log=print):
    """Temperature scaling of the wide head (Guo et al. 2017): the T of :data:`TEMPERATURES`
    that minimises the cross-entropy of the validation patches (held-out training scenes, never
    a test family) when every coefficient's logits are divided by T. Writes ``path`` (T, the
    cross-entropy and expected calibration error before and after) and returns the model with
    T in its :class:`~qpaper.model.BlockSoftmax` (the same network otherwise)."""
    from .model import BlockSoftmax
    from .calibration import ece
    layer = next(l for l in model.layers if isinstance(l, BlockSoftmax))
    logit_model = keras.Model(model.input, layer.input)
    logits, labels = [], []
    for i in range(len(val_seq)):
        x, y = val_seq[i]
        logits.append(np.asarray(logit_model.predict_on_batch(x), np.float64))
        labels.append(np.asarray(y, np.int64) - 1)
    z, y = np.concatenate(logits), np.concatenate(labels)
    blocks_ = [(a, b) for a, b in zip(np.cumsum([0] + layer.sizes[:-1]), np.cumsum(layer.sizes))]

    def scores(t):
        nll, conf, right = 0.0, [], []
        for k, (a, b) in enumerate(blocks_):
            v = z[:, a:b] / t
            v = v - v.max(1, keepdims=True)
            logp = v - np.log(np.exp(v).sum(1, keepdims=True))
            nll -= logp[np.arange(len(y)), y[:, k]].mean()
            conf.append(np.exp(logp.max(1)))
            right.append(logp.argmax(1) == y[:, k])
        return nll / len(blocks_), ece(np.stack(conf, 1), np.stack(right, 1))

    nll = {float(t): scores(t)[0] for t in TEMPERATURES}
    best = min(nll, key=nll.get)
    before, after = scores(1.0), scores(best)
    info = {"temperature": best, "validation_patches": int(len(y)), "nll_before": round(before[0], 4),
            "nll_after": round(after[0], 4), "ece_before": round(before[1], 4), "ece_after": round(after[1], 4)}
    atomic_write_bytes(path, json.dumps(info, indent=1).encode())
    log(f"train: temperature {best} on {len(y)} validation patches (ECE {before[1]:.3f} -> {after[1]:.3f})")
    config = model.get_config()
    for lc in config["layers"]:
        if lc["class_name"].endswith("BlockSoftmax"):
            lc["config"]["temperature"] = best
    calibrated = model.__class__.from_config(config)
    calibrated.set_weights(model.get_weights())
    return calibrated


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras's global dtype policy set to ``name`` inside the block, restored after it."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def export_model(model, cfg: dict, path: Path) -> None:
    """Save the model a user loads: as trained, or for a mixed-precision run the same network
    rebuilt in float32 with the trained weights (no optimizer), which any CPU runs."""
    if cfg.get("precision", "float32") == "float32":
        save_model(model, path)
        return
    with dtype_policy("float32"):
        plain = build_model(cfg["head"], cfg["depth"], cfg["growth"], cfg["dropout"], channels=model.input_shape[-1],
                            patch=model.input_shape[1], arch=cfg["arch"], width=cfg["width"], hidden=cfg["hidden"],
                            phases=cfg["phases"], nf=cfg["nf"])
    plain.set_weights([np.asarray(w, dtype="float32") for w in model.get_weights()])
    save_model(plain, path)


def learning_rate(cfg: dict, steps: int):
    """The profile's schedule: ``constant`` (the paper: Adam at ``lr`` throughout) or ``cosine``:
    a linear warm-up over the first ``warmup`` share of the ``steps``, then a cosine decay to
    1% of ``lr`` at the last step (a short CPU run must move fast at first and settle at the end)."""
    if cfg["schedule"] == "constant":
        return cfg["lr"]
    if cfg["schedule"] != "cosine":
        raise ValueError("schedule must be constant or cosine")
    warm = int(round(cfg["warmup"] * steps))
    return keras.optimizers.schedules.CosineDecay(0.0 if warm else cfg["lr"], max(1, steps - warm), alpha=0.01,
                                                  warmup_target=cfg["lr"] if warm else None, warmup_steps=warm)


def _jit():
    """XLA is 3-6x slower than plain graph mode on TensorFlow on these CPUs; JAX always compiles."""
    return False if keras.backend.backend() == "tensorflow" else "auto"


def _strategy(devices: int):
    """Data parallelism over ``devices`` devices with the backend's own mechanism: tf.distribute
    MirroredStrategy on TensorFlow (CPU cores split into logical devices when there is no GPU),
    the Keras DataParallel distribution on JAX. Returns a strategy with ``scope()`` or None."""
    if devices <= 1:
        return None
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        if len(gpus) >= devices:
            names = [f"/gpu:{i}" for i in range(devices)]
        else:
            cpu = tf.config.list_physical_devices("CPU")[0]
            try:  # must happen before TensorFlow creates its first tensor
                tf.config.set_logical_device_configuration(
                    cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)])
            except RuntimeError:
                if len(tf.config.list_logical_devices("CPU")) < devices:
                    raise ValueError(f"cannot split the CPU into {devices} devices after TensorFlow has "
                                     "started; call train() first in a fresh process") from None
            names = [f"/cpu:{i}" for i in range(devices)]
        return tf.distribute.MirroredStrategy(names)
    if backend == "jax":
        devs = keras.distribution.list_devices()[:devices]
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devs))
        return None
    raise ValueError(f"data parallelism is not wired for the {backend} backend")
