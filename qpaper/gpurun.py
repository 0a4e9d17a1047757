"""One session on a lent GPU (issues 13, 22): the paper's DenseNet-40 (Section 4.1) on the ``gpu``
profile's QF2 90 data, trained with :mod:`qpaper.fastfit` within a budget of minutes.

A session with no run to continue first *sweeps*: each recipe of :data:`RECIPES` it is given
trains a fresh network on the same number of patches; each is scored on the validation patches
(held-out training scenes) beside the constant prior, and the best one *continues* for the rest of
the budget (cosine decay from its rate). A session given a run (the committed
``models/gpu/qf2-90-class-Lr``, or ``resume_from``) continues it without a sweep. At the end the
network is scored on the held-out test scenes (random shift and aligned: AvgAcc and AvgMSE, each
QF1 weighing the same, as Tables 1-2) beside the prior, and the run folder holds at most 8 files,
each under the device tool's 16 MiB: config, state, log, sweep, checkpoint, eval, console log and
JAX's compilation cache.

``register`` brings a run back: into ``models/gpu`` (float32 model, card, manifest) only if it
learned (random-shift AvgAcc at least :data:`LEARNED_MARGIN` above the prior); otherwise its log
and evaluation go to ``results/gpu/<run>/`` as a measured negative result. Either way the
compilation cache goes to ``models/gpu-cache`` for the next session on the same kind of device.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np

from .jpeg import NC
from .paths import atomic_write_bytes, models_dir

NAME = "qf2-90-class-Lr"
QF2 = 90
LEARNED_MARGIN = 0.2  # item 5: a run is registered when it beats the prior by this much (random shift)
RUN_FILES = ("config.json", "state.json", "log.csv", "checkpoint.keras")
CACHE_FILE = "jax-cache.tar"
CACHE_LIMIT = 15 * 2 ** 20  # what one file may weigh to come back from the device (16 MiB)

# What a recipe may change, the first session's settings as defaults. ``precision`` and
# ``float32_stages`` (the stages computed in float32 under mixed precision) and ``stem`` (the
# initial conv's initialization) shape the network; ``lr`` (peak after a warm-up) and ``c`` (the
# weight of L in L^r; 1.0 = L alone) are inputs of the compiled step; ``ce_first`` and
# ``aligned_first``: the share of the recipe's sweep patches trained with c = 1 (L alone) and drawn
# from aligned patches (a curriculum: the strongest traces first); ``continue_aligned``: the share of
# aligned patches when the recipe is continued (the rest random shifts, the test's setting).
LR_BATCH = 256  # a recipe's rate is for this batch; at batch B it is scaled by sqrt(B / 256) (Adam)
RECIPE_DEFAULTS = {"precision": "mixed_bfloat16", "float32_stages": 0, "stem": "he", "lr": 2e-3, "c": 0.8,
                   "ce_first": 0.0, "aligned_first": 0.0, "continue_aligned": 0.0}
RECIPES = {
    # the first session's recipe (2026-12-04: did not leave the prior in 563,328 patches)
    "first-session": {},
    # suspect 1: bfloat16 on the pixels and the first layers; the stem and the first dense block
    # in float32
    "f32-stem": {"float32_stages": 2},
    # and the initial conv starting as zero-sum filters: it passes the detail, not the local mean
    "highpass": {"float32_stages": 2, "stem": "highpass"},
    # suspects 2 and 4: the expected distance dominating early, no curriculum
    "curriculum": {"float32_stages": 2, "stem": "highpass", "ce_first": 0.5, "aligned_first": 0.5},
    # everything in float32 (the reference the others are measured against)
    "float32": {"precision": "float32"},
    # the curriculum's two halves apart (its first half left the prior on the CPU, its second fell back):
    # L alone on aligned patches throughout, L alone on random shifts, L^r on aligned patches
    "ce-aligned": {"float32_stages": 2, "stem": "highpass", "c": 1.0, "aligned_first": 1.0, "continue_aligned": 0.5},
    "ce": {"float32_stages": 2, "stem": "highpass", "c": 1.0},
    "aligned": {"float32_stages": 2, "stem": "highpass", "aligned_first": 1.0},
}
# the prepared command's sweep (README, The GPU run): two recipes, so that each gets about a minute
# of the H200 (~10^6 patches at the aimed rate). On the CPU (results/gpu/cpu-recipes) only the recipes
# trained with L alone left the prior; every one trained with L^r from the start stayed on it.
SWEEP = ("ce", "ce-aligned")


def recipe(name: str) -> dict:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: one of {', '.join(RECIPES)}")
    return {**RECIPE_DEFAULTS, **RECIPES[name]}


def scaled_lr(rec: dict, batch: int, lr_batch: int = LR_BATCH) -> float:
    """The recipe's peak rate at ``batch``: batch and rate scaled together (square root, Adam),
    the recipe's rate being the one for ``lr_batch``."""
    return float(rec["lr"] * math.sqrt(batch / lr_batch))


def committed_run(arch: str = "densenet") -> Path:
    """Where the run of ``arch`` is committed: models/gpu/ (DenseNet-40) or models/gpu-dct/."""
    return models_dir("gpu" if arch == "densenet" else f"gpu-{arch}") / NAME


def cache_home() -> Path:
    return models_dir("gpu-cache")


def build_data(data_dir: Path, seed: int = 0, patches_per_qf1: int | None = None, test_per_qf1: int | None = None,
               aligned_per_qf1: int | None = None, workers=None, log=print) -> dict:
    """The gpu profile's QF2 90 training set (random shift), an aligned training set (the
    curriculum's; a quarter of the size) and the random-shift and aligned test sets."""
    from .shards import build
    from .profiles import dataset_spec, get_profile
    n = patches_per_qf1 or get_profile("gpu")["patches_per_qf1"]["train"]
    tover = {"patches_per_qf1": test_per_qf1} if test_per_qf1 else {}
    specs = {"train": dataset_spec("gpu", "train", QF2, seed, patches_per_qf1=n),
             "train-aligned": dataset_spec("gpu", "train", QF2, seed, "aligned",
                                           patches_per_qf1=aligned_per_qf1 or max(1, n // 4)),
             "test": dataset_spec("gpu", "test", QF2, seed, **tover),
             "test-aligned": dataset_spec("gpu", "test", QF2, seed, "aligned", **tover)}
    out = {}
    for name, spec in specs.items():
        t = time.time()
        m = build(spec, data_dir / f"qf2-{QF2}-{name}", workers=workers, progress=False, log=lambda *_: None)
        log(f"gpu: dataset {name}: {m['count']} patches in {time.time() - t:.0f} s")
        out[name] = data_dir / f"qf2-{QF2}-{name}"
    return out


# ---------------------------------------------------------------------------------------------
# Scores

def val_accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Share of exact coefficients over patches and coefficients (labels clipped to q_max), as
    the training log's ``val_accuracy``."""
    return float((pred == labels).mean())


def test_scores(q_hat: np.ndarray, data, part: str) -> dict:
    """AvgAcc and AvgMSE (each QF1 weighing the same, Tables 1-2) of estimates of one test part."""
    from .evaluate import summarize, tidy_table
    a, b = data.ranges[part]
    m = data.manifests[part]
    s = summarize(tidy_table(data.q1[a:b], q_hat, data.meta[a:b], m["qf1"], m["spec"]["qf2"]))["all"]
    return {k: round(v, 4) for k, v in s.items() if k != "qf1_values"}


def evaluate_tests(loop, data, prior: np.ndarray) -> dict:
    """The model and the constant prior on the random-shift and aligned test sets."""
    out = {"prior_q1": prior.tolist()}
    for part, key in (("test", "random shift"), ("test-aligned", "aligned")):
        q = loop.predict(data, data.index(part))
        const = np.repeat(prior[None], len(q), axis=0)
        out[key] = {"model": test_scores(q, data, part), "prior": test_scores(const, data, part)}
    return out


# ---------------------------------------------------------------------------------------------
# A session

def _fit_config(seed: int, arch: str, rec: dict, batch: int, depth=None, growth=None, dropout=None,
                lr_batch: int = LR_BATCH) -> dict:
    from .profiles import get_profile
    from .train import FIT_DEFAULTS
    fit = {**FIT_DEFAULTS, **get_profile("gpu")["fit"]}
    fit.update({k: v for k, v in (("depth", depth), ("growth", growth), ("dropout", dropout)) if v is not None})
    fit.update(arch=arch, batch=batch, lr=scaled_lr(rec, batch, lr_batch), precision=rec["precision"] if arch == "densenet" else "float32",
               float32_stages=rec["float32_stages"], stem=rec["stem"], c=rec["c"])
    return fit


def _new_model(fit: dict, channels: int, seed: int):
    import keras
    from .losses import get_loss
    from .model import build_model
    from .train import dtype_policy
    keras.utils.set_random_seed(seed)
    with dtype_policy(fit["precision"]):
        model = build_model("class", fit["depth"], fit["growth"], fit["dropout"], channels=channels, arch=fit["arch"],
                            width=fit["width"], hidden=fit["hidden"], phases=fit["phases"], nf=fit["nf"],
                            float32_stages=fit["float32_stages"], stem=fit["stem"])
        loss = get_loss("class", "L") if fit["c"] >= 1 else get_loss("class", "Lr", c=fit["c"])
        model.compile(optimizer=keras.optimizers.Adam(fit["lr"]), loss=loss)
    return model


class Stream:
    """Patch indices of a pool in successive seeded permutations (every patch once per pass)."""

    def __init__(self, pool: np.ndarray, key):
        self.pool, self.key, self.passes, self.buf = np.asarray(pool), tuple(int(k) for k in key), 0, np.zeros(0, np.int64)

    def take(self, n: int) -> np.ndarray:
        while len(self.buf) < n:
            perm = np.random.default_rng([*self.key, self.passes]).permutation(self.pool)
            self.buf, self.passes = np.concatenate([self.buf, perm]), self.passes + 1
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class Session:
    """What one session holds: the data on the device, the deadline, the log and the console."""

    def __init__(self, data, val_idx, train_idx, aligned_idx, batch, steps, deadline, seed, log, run_dir):
        self.data, self.val_idx, self.train_idx, self.aligned_idx = data, val_idx, train_idx, aligned_idx
        self.pools = {"train": train_idx, "aligned": aligned_idx}
        self.batch, self.steps, self.deadline, self.seed, self.log, self.run_dir = batch, steps, deadline, seed, log, run_dir
        from .losses import clip_labels
        self.val_labels = clip_labels(data.q1[val_idx])[0]
        from .results import constant_prior
        self.prior = constant_prior(data.q1[train_idx], "median", NC)
        # the line to leave: the better of the two constant estimates (median: what L^r's expected
        # distance drives to; mode: what L alone does) on the validation patches
        self.val_prior = max(val_accuracy(np.repeat(constant_prior(data.q1[train_idx], kind, NC)[None], len(val_idx), 0),
                                          self.val_labels) for kind in ("median", "mode"))
        self.rows = []
        self.first_call = float("nan")

    def left(self) -> float:
        return self.deadline - time.time()

    def draw(self, pool: np.ndarray, n: int, key) -> np.ndarray:
        """``n`` patch indices from ``pool``: successive seeded permutations (every patch once per pass)."""
        out, k = [], 0
        while sum(len(o) for o in out) < n:
            out.append(np.random.default_rng([self.seed, *key, k]).permutation(pool))
            k += 1
        return np.concatenate(out)[:n]

    def train(self, loop, recipe_name: str, phase: str, patches0: int, n_calls: int, lr_fn, c_fn, pool_fn,
              key, eval_every: float = 60.0) -> int:
        """``n_calls`` compiled calls (or until the deadline), each of ``steps`` steps; ``lr_fn``,
        ``c_fn`` and ``pool_fn`` give a step's rate, weight c and patch pool ("train" or "aligned") from its index in this
        phase. Logs a row (with the validation accuracy) every ``eval_every`` seconds and at the end."""
        per = self.batch * self.steps
        streams = {}
        t_row, acc = time.time(), []
        done = 0
        for k in range(n_calls):
            if self.left() <= 0:
                self.log(f"gpu: {recipe_name} {phase}: the budget is spent after {done} patches")
                break
            steps = np.arange(k * self.steps, (k + 1) * self.steps)
            pools = [pool_fn(s) for s in steps]
            for name in set(pools):
                if name not in streams:
                    streams[name] = Stream(self.pools[name], (self.seed, *key, len(streams)))
            idx = np.concatenate([streams[p].take(self.batch) for p in pools])
            t_call = time.time()
            acc.append(loop.run(self.data, idx, lr_fn(steps), c_fn(steps)))
            if k == 0:
                np.asarray(acc[-1])
                self.first_call = time.time() - t_call
                self.log(f"gpu: {recipe_name} {phase}: first call {self.first_call:.1f} s (compilation or cache, "
                         f"and {self.steps} steps)")
            done += per
            if time.time() - t_row >= eval_every or k == n_calls - 1 or self.left() <= 0:
                self._row(loop, recipe_name, phase, patches0 + done, done, t_row, np.concatenate(acc))
                t_row, acc = time.time(), []
        if acc:
            self._row(loop, recipe_name, phase, patches0 + done, done, t_row, np.concatenate(acc))
        return done

    def _row(self, loop, recipe_name, phase, patches, done, t_row, m):
        m = np.asarray(m)
        seconds = time.time() - t_row
        t = time.time()
        val = val_accuracy(loop.predict(self.data, self.val_idx), self.val_labels)
        row = {"recipe": recipe_name, "phase": phase, "patches": patches, "seconds": round(seconds, 1),
               "patches_per_s": round(len(m) * self.batch / max(seconds, 1e-9), 1),
               "loss": round(float(m[:, 0].mean()), 4), "ce": round(float(m[:, 1].mean()), 4),
               "distance": round(float(m[:, 2].mean()), 4), "accuracy": round(float(m[:, 3].mean()), 4),
               "val_accuracy": round(val, 4), "val_prior": round(self.val_prior, 4),
               "eval_seconds": round(time.time() - t, 1)}
        self.rows.append(row)
        self.log(f"gpu: {recipe_name} {phase} {patches} patches: loss {row['loss']} (L {row['ce']}, distance "
                 f"{row['distance']}), val accuracy {row['val_accuracy']} vs prior {row['val_prior']}, "
                 f"{row['patches_per_s']} patches/s")
        import pandas as pd
        _write(self.run_dir / "log.csv", pd.DataFrame(self.rows).to_csv(index=False))


def _write(path: Path, text: str):
    atomic_write_bytes(path, text.encode())


def _schedule(peak: float, warm: int, total: int | None = None, start: float | None = None):
    """Per-step learning rate: a linear warm-up over ``warm`` steps to ``peak``, then constant
    (``total`` None: a sweep) or a cosine decay from ``start`` (default peak) to 1% of ``peak``
    at step ``total``."""
    def lr(steps):
        s = np.asarray(steps, np.float64)
        if total is None:
            return peak * np.minimum(1.0, (s + 1) / max(warm, 1))
        a = start if start is not None else peak
        frac = np.clip(s / max(total, 1), 0, 1)
        cos = 0.01 * peak + (a - 0.01 * peak) * 0.5 * (1 + np.cos(math.pi * frac))
        return np.where(s < warm, a * (s + 1) / max(warm, 1), cos)
    return lr


def run(out, budget_minutes: float, arch: str = "densenet", seed: int = 0, reserve_minutes: float = 1.5,
        data_dir=None, patches_per_qf1: int | None = None, test_per_qf1: int | None = None, resume_from=None,
        recipes=SWEEP, sweep_patches: int | None = None, sweep_share: float = 0.5, batch: int | None = None,
        steps_per_call: int | None = None, depth: int | None = None, growth: int | None = None,
        dropout: float | None = None, warmup_steps: int = 200, autotune: int | None = 0, cache_dir=None,
        continue_best: bool = True, eval_every: float = 60.0, lr_batch: int = LR_BATCH, log=print) -> dict:
    """One session within ``budget_minutes`` (all of it: data, compilation, sweep, training,
    evaluation). Without a run to continue: a sweep of ``recipes`` on ``sweep_patches`` each
    (default: what ``sweep_share`` of the time left buys at the first recipe's measured rate), the
    best by validation accuracy continued; with one: continued. Writes ``out/run/`` and returns
    its eval."""
    t0 = time.time()
    out = Path(out)
    run_dir = out / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    src = Path(resume_from) if resume_from else committed_run(arch)
    resume = all((src / f).exists() for f in RUN_FILES)
    cache_dir = Path(cache_dir or out / "jax-cache")
    from . import fastfit
    machine = fastfit.configure(cache_dir, autotune)  # first: XLA_FLAGS count only before JAX starts
    machine["cache_restored"] = _restore_cache(cache_dir, machine, log)
    log(f"gpu: {machine['device_kind']} ({machine['platform']}), jax {machine['jax']}, XLA_FLAGS "
        f"'{machine['xla_flags']}', compilation cache {'restored' if machine['cache_restored'] else 'empty'}")
    import keras
    if keras.backend.backend() != "jax":
        raise ValueError("the gpu run trains with JAX: set KERAS_BACKEND=jax")
    parts = build_data(Path(data_dir or out / "data"), seed, patches_per_qf1, test_per_qf1, log=log)
    from .profiles import get_profile
    from .train import split_validation
    prof = get_profile("gpu")["fit"]
    batch = batch or 512
    steps = steps_per_call or 25
    t = time.time()
    data = fastfit.DeviceData(parts)
    a, b = data.ranges["train"]
    tr, val, _ = split_validation(data.meta[a:b], prof["val_share"], prof["val_max"], seed)
    tr, val = tr + a, val + a
    log(f"gpu: {data.nbytes / 2 ** 30:.2f} GiB of patches on the device in {time.time() - t:.0f} s "
        f"({len(tr)} training, {len(val)} validation patches)")
    deadline = t0 + (budget_minutes - reserve_minutes) * 60
    sess = Session(data, val, tr, data.index("train-aligned"), batch, steps, deadline, seed, log, run_dir)
    per = batch * steps
    channels = int(data.x.shape[-1])

    sweep, state, cfg = [], None, None
    if resume:
        cfg = json.loads((src / "config.json").read_text())
        state = json.loads((src / "state.json").read_text())
        if cfg.get("trainer") != "fastfit":
            raise ValueError(f"{src} was not trained by this loop (no 'trainer': 'fastfit' in its config)")
        if src.resolve() != run_dir.resolve():
            for f in RUN_FILES + ("sweep.csv",):
                if (src / f).exists():
                    shutil.copy2(src / f, run_dir / f)
        import pandas as pd
        sess.rows = pd.read_csv(run_dir / "log.csv").to_dict("records")
        from .model import load_model
        from .train import dtype_policy
        with dtype_policy(cfg["precision"]):
            model = load_model(run_dir / "checkpoint.keras")
        best = cfg["recipe"]
        loop = fastfit.Loop(model, batch, steps)
        log(f"gpu: resuming {src} ({best}, {state['patches']} patches seen, session {state['sessions'] + 1})")
        patches0 = state["patches"]
    else:
        best, best_score, loop, patches0 = None, None, None, 0
        n_calls = math.ceil(sweep_patches / per) if sweep_patches else None
        loops = {}  # one compiled program per network: recipes that differ in rate, c, data or
        # initial weights only share it
        for k, name in enumerate(recipes):
            rec = recipe(name)
            fit = _fit_config(seed, arch, rec, batch, depth, growth, dropout, lr_batch)
            t = time.time()
            model = _new_model(fit, channels, seed)
            net = (fit["precision"], fit["float32_stages"])
            if net in loops:
                cand = loops[net]
                cand.load(model)
            else:
                cand = loops[net] = fastfit.Loop(model, batch, steps)
            built = time.time() - t
            if n_calls is None:  # the sweep's size: what sweep_share of the time left buys at this rate
                init = cand.copy_state()
                first, _ = cand.time_first_call(data, sess.draw(tr, per, (9, 9)), np.zeros(steps), np.full(steps, 0.8))
                rate = fastfit.synthetic_rate(cand, data, 3.0)
                cand.state = init  # the recipe starts from its initial weights
                n_calls = max(1, int(sweep_share * sess.left() * rate / per / len(recipes)))
                log(f"gpu: model built in {built:.1f} s, first call {first:.1f} s (compilation + {steps} steps); "
                    f"synthetic data {rate:.0f} patches/s; sweep of {len(recipes)} recipes x {n_calls * per} patches")
            warm = min(warmup_steps, max(1, n_calls * steps // 10))
            lr = _schedule(fit["lr"], warm)
            ce_until = rec["ce_first"] * n_calls * steps
            al_until = rec["aligned_first"] * n_calls * steps
            t1 = time.time()
            done = sess.train(cand, name, "sweep", 0, n_calls, lr,
                              lambda s, u=ce_until, c=rec["c"]: np.where(np.asarray(s) < u, 1.0, c),
                              lambda s, u=al_until: "aligned" if s < u else "train", (1, k), eval_every)
            seconds = time.time() - t1
            score = sess.rows[-1]["val_accuracy"] - sess.val_prior if sess.rows else -1
            real = done / max(seconds, 1e-9)
            tests = evaluate_tests(cand, data, sess.prior)
            sweep.append({"recipe": name, **rec, "patches": done, "seconds": round(seconds, 1),
                          "test_random_shift": tests["random shift"]["model"]["AvgAcc"],
                          "test_aligned": tests["aligned"]["model"]["AvgAcc"],
                          "test_prior": tests["random shift"]["prior"]["AvgAcc"],
                          "build_s": round(built, 1), "first_call_s": round(sess.first_call, 1),
                          "patches_per_s": round(real, 1),
                          "val_accuracy": sess.rows[-1]["val_accuracy"] if sess.rows else None,
                          "val_prior": round(sess.val_prior, 4), "val_gain": round(score, 4)})
            import pandas as pd
            _write(run_dir / "sweep.csv", pd.DataFrame(sweep).to_csv(index=False))
            if best_score is None or score > best_score:
                best, best_score, loop, cfg_fit = name, score, cand, fit
                best_state, patches0 = cand.copy_state(), done
            if sess.left() <= 0:
                break
        loop.state = best_state  # its loop may have trained a later recipe since
        fit = cfg_fit
        cfg = _run_config(fit, best, parts, seed, machine, batch, steps)
        state = {"patches": patches0, "sessions": 0, "segments": [{"phase": "sweep", "recipe": best,
                                                                   "patches": patches0}]}
        log(f"gpu: sweep done, best {best} (validation gain {best_score:+.4f} over the prior)")
    # continue the best (or the resumed run) until the deadline: cosine from its rate
    rec = recipe(best)
    peak = cfg["lr"] * (0.5 if resume else 1.0)
    rate = max(r["patches_per_s"] for r in sess.rows if r["recipe"] == best) if sess.rows else 1.0
    if continue_best and sess.left() > 0:
        calls = max(1, int(sess.left() * rate / per))
        lr = _schedule(peak, 0 if not resume else min(warmup_steps, calls * steps // 10), calls * steps)
        done = sess.train(loop, best, "continue", patches0, calls, lr, lambda s: np.full(len(s), rec["c"]),
                          lambda s, a=rec["continue_aligned"]: "aligned" if int((s + 1) * a) > int(s * a) else "train",
                          (2, state["sessions"]), eval_every)
        state["patches"] = patches0 + done
        state["segments"].append({"phase": "continue", "recipe": best, "patches": done, "peak_lr": peak})
    state["sessions"] += 1
    loop.sync()
    from .train import save_model
    save_model(loop.model, run_dir / "checkpoint.keras")
    _write(run_dir / "config.json", json.dumps(cfg, indent=1, sort_keys=True))
    _write(run_dir / "state.json", json.dumps(state, indent=1))
    t = time.time()
    ev = evaluate_tests(loop, data, sess.prior)
    gain = ev["random shift"]["model"]["AvgAcc"] - ev["random shift"]["prior"]["AvgAcc"]
    ev.update(arch=arch, recipe=best, patches_seen=state["patches"], sessions=state["sessions"],
              learned=bool(gain >= LEARNED_MARGIN), gain_random_shift=round(gain, 4),
              patches_per_s=max((r["patches_per_s"] for r in sess.rows[-3:]), default=0.0),
              session_minutes=round((time.time() - t0) / 60, 2), eval_seconds=round(time.time() - t, 1),
              backend="jax", seed=seed, machine=machine,
              patches={k: int(v[1] - v[0]) for k, v in data.ranges.items()})
    _write(run_dir / "eval.json", json.dumps(ev, indent=1))
    _save_cache(cache_dir, run_dir / CACHE_FILE, machine, log)
    log("gpu: " + json.dumps({k: ev[k] for k in ("random shift", "aligned", "patches_seen", "recipe", "learned")}))
    return ev


def _run_config(fit: dict, best: str, parts: dict, seed: int, machine: dict, batch: int, steps: int) -> dict:
    manifest = json.loads((Path(parts["train"]) / "manifest.json").read_text())
    return {"profile": "gpu", "head": "class", "loss": "L" if fit["c"] >= 1 else "Lr", "distance": "abs", "seed": seed,
            "nc": NC,
            "data": str(parts["train"]), "data_content_sha256": manifest["content_sha256"],
            "dataset_spec": manifest["spec"], "channels": manifest["spec"]["channels"], **fit,
            "optimizer": "adam", "backend": "jax", "trainer": "fastfit", "recipe": best, "recipe_settings": recipe(best),
            "batch": batch, "steps_per_call": steps, "machine": machine}


# ---------------------------------------------------------------------------------------------
# JAX's compilation cache, carried between sessions on the same kind of device

def _cache_key(machine: dict) -> dict:
    import keras
    return {k: machine[k] for k in ("platform", "device_kind", "jax", "jaxlib")} | {"keras": keras.__version__}


KEY_FILE = "qpaper-cache-key.json"


def _restore_cache(cache_dir: Path, machine: dict, log) -> bool:
    """Unpack ``models/gpu-cache/jax-cache.tar`` into ``cache_dir`` when it was written on a
    device of the same kind with the same jax, jaxlib and keras (its key file inside says); its
    programs would not match otherwise."""
    tar = cache_home() / CACHE_FILE
    if not tar.exists():
        return False
    try:
        with tarfile.open(tar) as t:
            want = json.loads(t.extractfile(KEY_FILE).read())
            here = _cache_key(machine)
            if want != here:
                log(f"gpu: the committed compilation cache is for {want}, this machine is {here}: not used")
                return False
            cache_dir.mkdir(parents=True, exist_ok=True)
            t.extractall(cache_dir, filter="data")
    except (tarfile.TarError, KeyError, OSError, ValueError) as e:
        log(f"gpu: the committed compilation cache is unreadable ({e}): not used")
        return False
    return True


def _save_cache(cache_dir: Path, dest: Path, machine: dict, log):
    """The compilation cache as one tar (with its key) beside the run, if it is small enough to
    come back from the device."""
    if not cache_dir.is_dir():
        return
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        key = json.dumps(_cache_key(machine), indent=1).encode()
        info = tarfile.TarInfo(KEY_FILE)
        info.size = len(key)
        t.addfile(info, io.BytesIO(key))
        for p in sorted(cache_dir.rglob("*")):
            if p.is_file() and p.name != KEY_FILE:
                t.add(p, arcname=str(p.relative_to(cache_dir)))
    if buf.tell() > CACHE_LIMIT:
        log(f"gpu: the compilation cache ({buf.tell() / 2 ** 20:.1f} MiB) is over what comes back; not kept")
        return
    atomic_write_bytes(dest, buf.getvalue())
    log(f"gpu: compilation cache kept ({buf.tell() / 2 ** 20:.1f} MiB)")


# ---------------------------------------------------------------------------------------------
# Back here

def register(run_dir, root=None, log=print) -> Path:
    """Bring a finished session's run folder back. A run that learned (eval.json ``learned``)
    replaces ``models/gpu/qf2-90-class-Lr`` with a float32 ``model.keras`` any CPU loads, its
    card and the manifest; one that did not goes to ``results/gpu/<run>/`` (config, state, log,
    sweep, eval, console log: a measured negative result, no network). The compilation cache goes
    to ``models/gpu-cache``. Returns the folder written."""
    from .paths import ROOT, sha256_file
    src = Path(run_dir)
    missing = [f for f in RUN_FILES + ("eval.json",) if not (src / f).exists()]
    if missing:
        raise ValueError(f"{src} is not a finished gpu run (missing {', '.join(missing)})")
    cfg = json.loads((src / "config.json").read_text())
    ev = json.loads((src / "eval.json").read_text())
    if cfg.get("trainer") != "fastfit":
        raise ValueError(f"{src} is a run of the old loop (no 'trainer': 'fastfit'); nothing to register")
    if (src / CACHE_FILE).exists():
        cache_home().mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / CACHE_FILE, cache_home() / CACHE_FILE)
    kept = [f for f in ("config.json", "state.json", "log.csv", "sweep.csv", "eval.json", "console.log")
            if (src / f).exists()]
    if not ev.get("learned"):
        stamp = time.strftime("%Y-%m-%d", time.gmtime((src / "eval.json").stat().st_mtime))
        dest = Path(root or ROOT) / "results" / "gpu" / f"{stamp}-{ev['recipe']}-{ev['patches_seen']}"
        dest.mkdir(parents=True, exist_ok=True)
        for f in kept:
            shutil.copy2(src / f, dest / f)
        atomic_write_bytes(dest / "README.md", model_card(cfg, ev, "results/gpu", learned=False).encode())
        log(f"gpu: the run did not learn (random shift {ev['gain_random_shift']:+.4f} over the prior, "
            f"{LEARNED_MARGIN} needed): its log and evaluation are in {dest}, no model registered")
        return dest
    from . import train
    from .model import load_model
    dest = committed_run(cfg["arch"])
    dest.mkdir(parents=True, exist_ok=True)
    for f in RUN_FILES + tuple(kept):
        shutil.copy2(src / f, dest / f)
    ckpt = load_model(dest / "checkpoint.keras")
    train.export_model(ckpt, cfg, dest / "model.keras")
    profile = dest.parent.name
    atomic_write_bytes(dest / "model-card.md", model_card(cfg, ev, f"models/{profile}").encode())
    entry = {"name": NAME, "path": f"{NAME}/model.keras", "profile": profile, "qf2": QF2, "head": "class",
             "loss": cfg["loss"], "channels": cfg["channels"], "arch": cfg["arch"],
             "depth": cfg["depth"] if cfg["arch"] == "densenet" else None,
             "metrics": {"gpu": {k: ev[k] for k in ("random shift", "aligned", "patches_seen", "recipe")}},
             "sha256": sha256_file(dest / "model.keras")}
    atomic_write_bytes(dest.parent / "manifest.json", json.dumps({"models": [entry]}, indent=1).encode())
    log(f"gpu: registered {dest} ({ev['patches_seen']} patches seen, recipe {ev['recipe']}, random shift "
        f"{ev['gain_random_shift']:+.4f} over the prior)")
    return dest


def model_card(cfg: dict, ev: dict, folder: str, learned: bool = True) -> str:
    """What a reader needs to trust (or not) a GPU run: its network, data, recipe, sweep and
    scores beside the constant prior."""
    arch = (f"DenseNet-{cfg['depth']} (k = {cfg['growth']}) on pixels, the paper's Section 4.1" if cfg["arch"] ==
            "densenet" else f"block-DCT backbone (nf {cfg['nf']})")
    r, a = ev["random shift"], ev["aligned"]
    rec = cfg["recipe_settings"]
    m = ev.get("machine", {})
    head = (f"# {NAME} (profile gpu, trained on a lent GPU)" if learned else
            f"# A GPU run that did not learn: {ev['recipe']}, {ev['patches_seen']:,} patches (a measured negative result)")
    text = f"""{head}

- Network: {arch}, classification-like head, loss {"L (Eq. 1) alone" if cfg['c'] >= 1 else f"L^r (c = {cfg['c']}, distance {cfg['distance']})"}.
- Data: the prepared wallpapers' training scenes, QF2 {QF2}, QF1 60..98, random grid shift,
  {cfg['dataset_spec']['patches_per_qf1']} patches per QF1, seed {cfg['seed']} (RAISE cannot travel to the device).
- Recipe `{cfg['recipe']}`: precision {rec['precision']}, float32 stages {rec['float32_stages']}, stem {rec['stem']},
  peak rate {cfg['lr']:.3g} at batch {cfg['batch']} (Adam; the recipe's {rec['lr']}, scaled by the square root of the
  batch ratio), L alone for the first {rec['ce_first']:.0%} and aligned patches
  for the first {rec['aligned_first']:.0%} of its sweep; chosen by validation accuracy among the session's sweep
  (sweep.csv), then continued with a cosine decay. Why not the paper's Adam 1e-5 at batch 32: in the
  minutes a session has it does not leave the constant prior; the paper's setting stays the `paper` profile's.
- Trained: {ev['patches_seen']:,} patches over {ev['sessions']} session(s), {ev['patches_per_s']} patches/s at the end,
  on {m.get('device_kind', '?')} (jax {m.get('jax', '?')}); this session {ev['session_minutes']} minutes.
- Held-out wallpaper scenes ({ev['patches']['test']} random-shift, {ev['patches']['test-aligned']} aligned patches):

| test | AvgAcc | AvgMSE | constant prior AvgAcc | prior AvgMSE |
|---|---|---|---|---|
| random shift | {r['model']['AvgAcc']} | {r['model']['AvgMSE']} | {r['prior']['AvgAcc']} | {r['prior']['AvgMSE']} |
| aligned | {a['model']['AvgAcc']} | {a['model']['AvgMSE']} | {a['prior']['AvgAcc']} | {a['prior']['AvgMSE']} |

A model whose row does not beat the prior's has not learned; one is registered only when its
random-shift AvgAcc is at least {LEARNED_MARGIN} above the prior's.
"""
    if learned:
        text += f"""
Load it in Python (model.keras is float32, no optimizer; checkpoint.keras resumes training):

```python
import qpaper
model = qpaper.load_model("{folder}/{NAME}/model.keras")  # custom layers, safe_mode, sha256
probs = model.predict(patches)  # [N, 64, 64, 3] pixels 0..255 -> 15 softmax blocks
```
"""
    return text


# ---------------------------------------------------------------------------------------------
# Issue 22, item 3, measured on the CPU: what each recipe leaves of the traces, and how fast it learns

FORMATS = {"float32": 24, "TF32 (tensor cores' float32)": 11, "float16": 11, "bfloat16": 8}  # significant bits


def round_significant(x, bits: int) -> np.ndarray:
    """``x`` (float) rounded to ``bits`` significant bits, to nearest even: what a float format
    with that many (bfloat16: 8, TF32 and float16: 11) keeps of each value."""
    m, e = np.frexp(np.asarray(x, np.float64))
    return np.ldexp(np.round(m * 2.0 ** bits) / 2.0 ** bits, e)


def precision_probe(model, parts: dict, batch: int = 256):
    """A trained estimator that reads exact block DCTs (the mini QF2 90 ``dct`` model) on the test
    sets ``parts`` ({"random shift": dir, "aligned": dir}) when its pixels pass through each of
    :data:`FORMATS` as x / 255 (what the first layer of a network in that format is given): the
    share of pixels moved and the AvgAcc left. The information a bfloat16 stem destroys, without
    training anything."""
    import pandas as pd
    from .dataset import open_dataset
    from .evaluate import summarize, tidy_table
    from .model import decode
    rows = []
    for fmt, bits in FORMATS.items():
        row = {"format": fmt, "significant bits": bits}
        for key, folder in parts.items():
            d = open_dataset(folder, verify=False)
            x = np.concatenate(d["x"])
            moved, q = 0.0, []
            for a in range(0, len(x), batch):
                xb = x[a:a + batch].astype(np.float64)
                r = (round_significant(xb / 255.0, bits) * 255.0).astype(np.float32)
                moved += float(np.abs(r - xb).max(axis=-1).__ge__(0.25).sum())
                q.append(decode(model.predict_on_batch(r), "class"))
            m = d["manifest"]
            s = summarize(tidy_table(np.concatenate(d["q1"])[:, :NC].astype(np.int64), np.concatenate(q),
                                     np.concatenate(d["meta"]), m["qf1"], m["spec"]["qf2"]))["all"]
            row[f"{key} AvgAcc"] = round(s["AvgAcc"], 4)
            row[f"{key}: pixels moved by >= 1/4 grey level"] = round(moved / (x.shape[0] * x.shape[1] * x.shape[2]), 4)
        rows.append(row)
    return pd.DataFrame(rows)


def search_report(run_dir, data_dir, out_dir, probe_model=None, command: str = "", log=print) -> Path:
    """Issue 22, item 3, into ``out_dir`` (results/gpu/cpu-recipes): the sweep's learning curves
    (validation accuracy minus the constant prior's, per recipe, against patches trained on), its
    table, the precision probe of ``probe_model`` (default: the mini QF2 90 model) on the test sets
    of ``data_dir``, and a README that says what was run, where and with which seed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from .model import load_model
    from .paths import ROOT
    from .provenance import git_commit, hardware
    from .results import _markdown
    runs = [Path(r) for r in (run_dir if isinstance(run_dir, (list, tuple)) else [run_dir])]
    data_dir, out = Path(data_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_rows = pd.concat([pd.read_csv(r / "log.csv") for r in runs], ignore_index=True)
    sweep = pd.concat([pd.read_csv(r / "sweep.csv") for r in runs], ignore_index=True)
    cfg = json.loads((runs[0] / "config.json").read_text())
    from .dataset import open_dataset
    from .losses import clip_labels
    from .profiles import get_profile
    from .results import constant_prior
    from .train import split_validation
    d = open_dataset(data_dir / f"qf2-{QF2}-train", verify=False)
    fit = get_profile("gpu")["fit"]
    tr, va, _ = split_validation(np.concatenate(d["meta"]), fit["val_share"], fit["val_max"], cfg["seed"])
    q = np.concatenate(d["q1"])[:, :NC]
    priors = {kind: val_accuracy(np.repeat(constant_prior(q[tr], kind, NC)[None], len(va), 0), clip_labels(q[va])[0])
              for kind in ("median", "mode")}
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, g in log_rows[log_rows["phase"] == "sweep"].groupby("recipe", sort=False):
        ax.plot(g["patches"], g["val_accuracy"] - g["val_prior"], marker="o", ms=3, label=name)
    ax.axhline(0, color="black", lw=1, ls="--", label="constant prior (median)")
    ax.axhline(priors["mode"] - priors["median"], color="grey", lw=1, ls=":", label="constant prior (mode)")
    ax.set_xlabel("training patches")
    ax.set_ylabel("validation accuracy - prior's")
    ax.set_title(f"DenseNet-{cfg['depth']} (k={cfg['growth']}) on pixels, 2 CPU cores: does a recipe leave the prior?",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = out / ".curves.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(out / "curves.png")
    model = probe_model or load_model(ROOT / "models" / "mini" / "qf2-90-class-Lr" / "model.keras")
    probe = precision_probe(model, {"random shift": data_dir / f"qf2-{QF2}-test",
                                    "aligned": data_dir / f"qf2-{QF2}-test-aligned"})
    for name, df in (("sweep.csv", sweep), ("log.csv", log_rows), ("precision-probe.csv", probe)):
        atomic_write_bytes(out / name, df.to_csv(index=False).encode())
    cols = ["recipe", "precision", "float32_stages", "stem", "lr", "c", "ce_first", "aligned_first", "patches",
            "patches_per_s", "first_call_s", "val_accuracy", "val_prior", "val_gain"]
    rows = log_rows[log_rows["phase"] == "sweep"].groupby("recipe", sort=False)
    best_seen = (rows["val_accuracy"].max() - sweep.set_index("recipe")["val_prior"]).round(4)
    sweep = sweep.assign(best_val_gain=sweep["recipe"].map(best_seen),
                         best_train_accuracy=sweep["recipe"].map(rows["accuracy"].max().round(4)))
    text = f"""# Which recipe leaves the prior: DenseNet on pixels, measured on 2 CPU cores (issue 22, item 3)

Command: `{command}` (seed {cfg['seed']}), commit `{git_commit()[:12]}`, {hardware()}, JAX {cfg['machine']['jax']} on
the CPU. Data: the gpu profile's QF2 90 training set (QF1 60..98, random shift, wallpapers' training
scenes) at {cfg['dataset_spec']['patches_per_qf1']} patches per QF1; validation: the patches of held-out
training scenes (the constant priors' accuracy there: median {priors['median']:.4f}, mode {priors['mode']:.4f};
the recipes trained with L alone drift towards the mode, those with L^r towards the median, so a gain
over the median of less than {priors['mode'] - priors['median']:.4f} is no learning).
Network: DenseNet-{cfg['depth']} (k = {cfg['growth']}, dropout {cfg['dropout']}) with the classification-like head,
batch {cfg['batch']}; every recipe from the same initial weights on the same patches
(`qpaper.gpurun.RECIPES`; the loop is the GPU session's, `qpaper.fastfit`).

![learning curves](curves.png)

{_markdown(sweep[[c for c in cols if c in sweep] + ['best_val_gain', 'best_train_accuracy']])}

`val_gain`: validation accuracy (random shift, held-out training scenes) minus the prior's at the end
of the recipe's patches; `best_val_gain`: the largest seen along its curve; `best_train_accuracy`: the
largest share of exact coefficients on the training batches between two rows (aligned ones while a
recipe draws aligned patches; the prior's is about 0.09). log.csv has every row.

## What bfloat16 does to the pixels (no training)

A trained estimator that reads exact block DCTs (`models/mini/qf2-90-class-Lr`) on the same test
sets, its pixels passed through each float format as x / 255, which is what the first layer of a
network in that format is given (`qpaper.gpurun.precision_probe`):

{_markdown(probe)}
"""
    atomic_write_bytes(out / "README.md", text.encode())
    log(f"gpu: search report in {out}")
    return out
