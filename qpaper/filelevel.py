"""One answer from the whole file: Q1 estimated from every 8x8 block of a JPEG (issue 31).

The paper (Section 3) reads 64x64 patches; a whole file carries the same trace in all of its
blocks, and a window of 64 blocks holds too little of it to be pooled by probabilities. Here the
evidence of zig-zag coefficient k is its distribution over every block of the file (a seeded
sample of MAX_BLOCKS beyond that), under two hypotheses:

- aligned: the file's own quantized coefficients c_b (read exactly with ``jpeglib``, or
  recovered from the decoded luma, :func:`levels_from_luma`), i.e. the values c_b q2;
- shifted: the DCT of the decoded luma on the best shifted grid of :func:`qpaper.grid.find_grid`
  (read whatever the search's confidence; the confidence is a feature).

For every candidate step q = 1..CAND the double-quantization model of the paper's Section 2
(after Bianchi and Piva [5]) predicts that distribution: the never-compressed values (the DCT on
a grid offset by (4, 4), "calibration", smoothed) quantized with q, plus the rounding noise of
decompression, quantized with q2 (aligned) or seen through the second compression's noise
(shifted). Its log-likelihood, over all blocks and over the non-zero ones, against the best
candidate and against q = 1, in total and per block, with the number of blocks, k, q2 and the
divisibility of q and q2, are the features of one candidate; a small network with weights shared
by every coefficient, every q2 and every candidate scores each candidate, and a softmax over the
candidates is the classification-like answer (Section 3.1), read through the wide head's classes
1..R_k and "at least R_k+1" (:data:`qpaper.tables.WIDE_RANGE`). A second network is given, for
each coefficient, the prior that the first one's answers for the other coefficients put on it
through the IJG tables (where a coefficient shows nothing, e.g. q1 <= q2 after a shift, the
answer comes from the others). Training: :mod:`qpaper.filetrain`.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from . import grid, jpeg
from .jpeg import NC

CAND = 32  # candidate steps 1..CAND (a larger q1 is read as CAND: beyond every R_k)
EPS = 0.02  # share of the single-compression model mixed into every double one
NOISE_MAX = 1100  # |values| beyond are out of the model (the DC spans +-1024)
GRID_MIN = 0.5  # a shifted first grid is used when its confidence reaches this
MAX_BLOCKS = 200_000  # a seeded sample of blocks beyond this (a 12.8 MP file)
LIBJPEG_TABLES = np.stack([jpeg.zigzag(jpeg.standard_table(q))[:NC] for q in range(1, 101)]).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Evidence

def levels_from_file(path, size) -> np.ndarray:
    """The file's quantized luma coefficients [B, NC] (zig-zag) of its whole blocks (``size``
    (h, w): blocks that hold edge padding are left out), exactly as stored, via jpeglib."""
    import jpeglib
    y = np.asarray(jpeglib.read_dct(str(path)).Y)  # [by, bx, 8, 8] natural order
    y = y[:size[0] // 8, :size[1] // 8]
    return y.reshape(-1, 64)[:, jpeg.ZIGZAG[:NC]].astype(np.int64)


def levels_from_luma(luma: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """The same levels recovered from the decoded luma: round(DCT / q2) on the last grid. Equal
    to :func:`levels_from_file` where decoding's rounding and clipping stay below q2 / 2."""
    d = grid.grid_dct_all(luma, 0, 0, NC)
    return np.rint(d / jpeg.zigzag(q2)[:NC]).astype(np.int64)


def sample_rows(n: int, cap: int = MAX_BLOCKS, seed: int = 0) -> np.ndarray | slice:
    """A bounded, seeded sample of block indices (all of them up to ``cap``)."""
    if n <= cap:
        return slice(None)
    return np.sort(np.random.default_rng([seed, 0xB10C5]).choice(n, cap, replace=False))


def _calibration_offset(dy: int, dx: int) -> tuple[int, int]:
    cy, cx = (dy + 4) % 8, (dx + 4) % 8
    return (cy, (dx + 2) % 8) if (cy, cx) == (0, 0) else (cy, cx)


def evidence(luma: np.ndarray, q2: np.ndarray, levels: np.ndarray | None, shift, grid_confidence: float,
             seed: int = 0) -> dict:
    """Everything the estimator reads of one file, under both hypotheses: ``aligned``, the file's
    quantized coefficients ``levels`` (recovered from ``luma`` when None) with the calibration
    on the grid offset by (4, 4); ``shifted``, the DCT of the luma on the best shifted grid of
    the search, ``shift`` (r, c), with its own calibration grid. Values are rounded to 1/8 so
    that nothing depends on floating-point noise; a file of more than MAX_BLOCKS blocks is read
    through a seeded sample of them. ``shift`` reported is the search's answer when its
    confidence reaches GRID_MIN, else (0, 0)."""
    z2 = jpeg.zigzag(q2)[:NC].astype(np.int64)
    lv = levels_from_luma(luma, q2) if levels is None else np.asarray(levels)
    off = grid.rc_to_offset(*shift)
    y = grid.grid_dct_all(luma, off[0], off[1], NC)
    hyp = {"aligned": (lv, _calibration_offset(0, 0)), "shifted": (np.round(y * 8) / 8, _calibration_offset(*off))}
    out = {}
    for name, (values, cal_off) in hyp.items():
        cal = grid.grid_dct_all(luma, *cal_off, NC)
        out[name] = {"values": values[sample_rows(len(values), seed=seed)],
                     "cal": np.round(cal[sample_rows(len(cal), seed=seed + 1)] * 8) / 8}
    found = grid_confidence >= GRID_MIN
    return {"hyp": out, "q2": z2, "aligned": not found, "search_shift": tuple(int(v) for v in shift),
            "shift": tuple(int(v) for v in shift) if found else (0, 0), "grid_confidence": float(grid_confidence),
            "blocks": int(len(out["aligned"]["values"]))}


# ---------------------------------------------------------------------------------------------
# The double-quantization model, per coefficient and candidate

def _cdf(cal: np.ndarray):
    """CDF of the never-compressed values from the calibration values: a histogram on unit
    bins, smoothed (Gaussian, sigma 1), as a piecewise-linear function (callable on arrays)."""
    u = np.clip(np.rint(cal), -NOISE_MAX, NOISE_MAX).astype(np.int64) + NOISE_MAX
    h = np.bincount(u, minlength=2 * NOISE_MAX + 1).astype(np.float64)
    k = np.exp(-0.5 * np.arange(-3, 4) ** 2)
    h = np.convolve(h, k / k.sum(), mode="same") + 1e-3 / len(h)
    edges = np.arange(-NOISE_MAX - 0.5, NOISE_MAX + 1.0)
    F = np.concatenate([[0.0], np.cumsum(h)]) / h.sum()
    return lambda x: np.interp(x, edges, F)


SIGMAS_ALIGNED = (0.4, 0.7, 1.0)  # decoding noise of the aligned model (DCT units): integer pixels, clipping
SIGMAS_SHIFTED = (0.8, 1.6, 3.2)  # the second compression's noise seen on the first grid


def predicted(F, q: int, step: float, sigmas, lo: int, hi: int) -> np.ndarray:
    """P(observed bin = n) [len(sigmas), hi - lo + 1] for n = lo..hi under a first quantization
    with step ``q`` (Section 2): the never-compressed values (CDF ``F``) rounded to multiples of
    q, plus Gaussian noise of each ``sigma``, read in bins of width ``step`` centred on n * step
    (aligned: the second quantization, step q2; shifted: unit bins of the first grid's DCT)."""
    from scipy.special import ndtr
    M = int(max(abs(lo), abs(hi)) * step // q) + 2
    m = np.arange(-M, M + 1)
    p1 = F((m + 0.5) * q) - F((m - 0.5) * q)
    keep = p1 > 1e-12
    m, p1 = m[keep], p1[keep]
    reach = int(np.ceil(5 * max(sigmas) / step)) + 1
    centre = np.rint(m * q / step).astype(np.int64)
    n = (centre[None] + np.arange(-reach, reach + 1)[:, None]).ravel()  # [(2 reach + 1) * M]
    mq = np.tile(m * q, 2 * reach + 1).astype(np.float64)
    w1 = np.tile(p1, 2 * reach + 1)
    ok = (n >= lo) & (n <= hi)
    n, mq, w1 = n[ok], mq[ok], w1[ok]
    out = np.empty((len(sigmas), hi - lo + 1))
    for i, s in enumerate(sigmas):
        w = ndtr(((n + 0.5) * step - mq) / s) - ndtr(((n - 0.5) * step - mq) / s)
        out[i] = np.bincount(n - lo, weights=w1 * w, minlength=hi - lo + 1)
    return out


def log_likelihoods(values: np.ndarray, cal: np.ndarray, step: float, aligned: bool) -> np.ndarray:
    """Log-likelihoods [2, len(sigmas), CAND] of one coefficient's values under each candidate
    q = 1..CAND and noise level (q = 1: no first quantization the data can show), each double
    model mixed with EPS of the single one so that no observed bin has probability zero: [0]
    over every block; [1] over the blocks whose value is not rounded to zero, given that
    (the zero bin holds most blocks and its height depends on how peaked the never-compressed
    values are, which the calibration only approximates: a larger dead zone q "explains" that
    misfit on single-compressed files; the comb of q1 lives in the other bins)."""
    sigmas = SIGMAS_ALIGNED if aligned else SIGMAS_SHIFTED
    F = _cdf(cal)
    obs = np.asarray(values) if aligned else np.rint(np.asarray(values))
    lim = int(NOISE_MAX // step) + 1
    obs = np.clip(obs, -lim, lim).astype(np.int64)
    lo, hi = min(int(obs.min()), 0), max(int(obs.max()), 0)
    h = np.bincount(obs - lo, minlength=hi - lo + 1).astype(np.float64)
    used = h > 0
    zero = -lo  # the index of bin 0
    hz = h.copy()
    hz[zero] = 0.0
    h, hz = h[used], hz[used]
    p0all = predicted(F, 1, step, sigmas, lo, hi)
    out = np.empty((2, len(sigmas), CAND))
    for q in range(1, CAND + 1):
        pall = p0all if q == 1 else (1 - EPS) * predicted(F, q, step, sigmas, lo, hi) + EPS * p0all
        p = np.log(np.maximum(pall[:, used], 1e-12))
        out[0, :, q - 1] = p @ h
        nz = np.maximum(1.0 - pall[:, zero], 1e-12)
        out[1, :, q - 1] = p @ hz - np.log(nz) * hz.sum()
    return out


HYPOTHESES = ("aligned", "shifted")


def file_log_likelihoods(ev: dict) -> np.ndarray:
    """[NC, 2, 2, S, CAND] log-likelihoods of every coefficient under each hypothesis (aligned:
    steps of q2 on the last grid; shifted: unit bins on the search's best shifted grid), over
    all blocks or the non-zero ones (:func:`log_likelihoods`), noise level and candidate, for
    one file's evidence (:func:`evidence`)."""
    out = np.empty((NC, 2, 2, len(SIGMAS_ALIGNED), CAND))
    for h, name in enumerate(HYPOTHESES):
        e = ev["hyp"][name]
        for k in range(NC):
            step = float(ev["q2"][k]) if name == "aligned" else 1.0
            out[k, h] = log_likelihoods(e["values"][:, k], e["cal"][:, k], step, name == "aligned")
    return out


def decode_luma(data: bytes) -> np.ndarray:
    """The decoder's own luma plane (libjpeg's IDCT, no colour conversion): uint8 [H, W]."""
    from PIL import Image
    with Image.open(io.BytesIO(data)) as im:
        im.draft("YCbCr", im.size)
        return np.asarray(im.convert("YCbCr") if im.mode != "YCbCr" else im)[..., 0].copy()


def read_evidence(path, data: bytes | None = None, seed: int = 0, progress=None) -> dict:
    """:func:`evidence` of a JPEG file as ``qpaper estimate`` reads it: the decoder's luma, the
    file's own quantized coefficients (jpeglib; recovered from the luma if jpeglib cannot read
    the file) and the first grid from :func:`qpaper.grid.find_grid`."""
    data = Path(path).read_bytes() if data is None else data
    q2 = jpeg.luminance_table(data)
    luma = decode_luma(data)
    try:
        levels = levels_from_file(path, luma.shape)
    except Exception:  # jpeglib refuses what the decoder above accepted: the luma tells the same
        levels = None
    shift, conf = grid.find_grid(luma, progress=progress)
    return evidence(luma, q2, levels, shift, conf, seed)


def active_share(ev: dict) -> np.ndarray:
    """[NC] the share of blocks whose quantized level is not zero: where a coefficient is mostly
    zero it carries little of the trace."""
    return (ev["hyp"]["aligned"]["values"] != 0).mean(axis=0)


# ---------------------------------------------------------------------------------------------
# The learned estimator: one scorer for every candidate, coefficient and q2

def labels(q1) -> np.ndarray:
    """Training targets [N, NC]: the candidate index of the true step (CAND for any larger)."""
    return np.minimum(np.asarray(q1)[:, :NC], CAND).astype(np.int64) - 1


def _slog(x):
    return np.sign(x) * np.log1p(np.abs(x))


def features(cases: dict, prior: np.ndarray | None = None) -> np.ndarray:
    """Per (file, coefficient) the features [CAND, F] of every candidate step q: under each
    hypothesis (aligned, shifted), over all blocks and over the non-zero ones, its log-likelihood against that hypothesis' best candidate and
    against q = 1 (no first quantization), in total nats and per block, at each noise level and
    the best; the same (best level) for 2q and q/2, the candidates it is confused with; the
    number of blocks and the share that are not zero; log q, log q2 and their divisibility; the
    grid search's confidence; k (one-hot); with ``prior`` [N, NC, CAND], its log
    (:func:`table_prior`). Returns float32 [N * NC, CAND, F]."""
    ll = np.asarray(cases["ll"], dtype=np.float64)  # [N, NC, 2 hypotheses, 2 (all, non-zero), S, CAND]
    n = ll.shape[0]
    ll = ll.reshape(n, NC, 4, ll.shape[-2], CAND)
    ll = np.concatenate([ll, ll.max(axis=3, keepdims=True)], axis=3)  # + the best noise level
    B = np.asarray(cases["blocks"], dtype=np.float64)[:, None, None, None, None]
    rel = ll - ll.max(axis=-1, keepdims=True)
    gain = ll - ll[..., :1]
    f = np.concatenate([-np.log1p(-rel) / 5, np.clip(rel / B * 20, -5, 0), _slog(gain) / 5,
                        np.clip(gain / B * 20, -5, 5)], axis=3)  # [N, NC, 4, 4 (S + 1), CAND]
    f = f.reshape(n, NC, -1, CAND)
    best_rel = -np.log1p(-rel[:, :, :, -1]) / 5  # [N, NC, 4, CAND]
    dbl = np.full_like(best_rel, -3.0)
    dbl[..., :CAND // 2] = best_rel[..., 1:CAND:2]  # candidate 2q
    half = np.full_like(best_rel, -3.0)
    half[..., 1::2] = best_rel[..., 0:CAND // 2]  # candidate q/2 (q even)
    q = np.arange(1, CAND + 1)
    shape = (n, NC, CAND)
    q2 = np.asarray(cases["q2"], dtype=np.float64)[:, :NC, None]  # [N, NC, 1]
    qq = q[None, None].astype(np.float64)
    act = np.asarray(cases["active"], dtype=np.float64)[:, :, None]
    Bn = B[:, :, 0, 0]
    per = [np.broadcast_to(np.log(Bn) / 10, shape), np.broadcast_to(act, shape),
           np.broadcast_to(np.log1p(act * Bn) / 10, shape), np.broadcast_to(np.log(qq) / np.log(CAND), shape),
           np.broadcast_to(np.log(q2) / np.log(CAND), shape), np.log(qq / q2) / 3,
           (q2 % qq == 0).astype(np.float64), (qq % q2 == 0).astype(np.float64), (qq < q2).astype(np.float64),
           np.broadcast_to(np.asarray(cases["grid_confidence"], dtype=np.float64)[:, None, None], shape)]
    per = np.stack([np.broadcast_to(p, shape) for p in per], axis=2)  # [N, NC, 10, CAND]
    onehot = np.broadcast_to(np.eye(NC)[None, :, :, None], (n, NC, NC, CAND))
    blocks = [f, dbl, half, per, onehot]
    if prior is not None:
        blocks.append(np.log(np.asarray(prior)[:, :, None] + 1e-3) / 7)
    x = np.concatenate(blocks, axis=2).transpose(0, 1, 3, 2)  # [N, NC, CAND, F]
    return x.reshape(n * NC, CAND, -1).astype(np.float32)


def build_model(n_features: int, width: int = 96):
    """The scorer: the same two hidden layers for every candidate (its features -> one logit),
    a softmax over the CAND candidates of a coefficient (Section 3.1's classification-like
    answer; weights shared by all coefficients and all q2)."""
    import keras
    x = keras.Input((CAND, n_features))
    h = keras.layers.Dense(width, activation="relu")(x)
    h = keras.layers.Dense(width, activation="relu")(h)
    logit = keras.layers.Flatten()(keras.layers.Dense(1)(h))
    return keras.Model(x, keras.layers.Softmax()(logit))


def loss(y_true, y_pred):
    """Cross-entropy of the true step's candidate (the paper's L, Eq. 1)."""
    import keras
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)


def predict_probs(model, x: np.ndarray, n: int) -> np.ndarray:
    """[n, NC, CAND] softmax of every coefficient of n files."""
    return np.asarray(model.predict(x, batch_size=4096, verbose=0)).reshape(n, NC, CAND)


def table_prior(p: np.ndarray, floor: float = 1e-2) -> np.ndarray:
    """For each file and coefficient k, the prior [N, NC, CAND] that the other coefficients'
    answers put on k's step through the IJG tables: each quality weighted by how well its
    table fits the other coefficients' probabilities (leave k out), its step k counted."""
    t = np.minimum(LIBJPEG_TABLES, CAND) - 1  # [100, NC]
    lp = np.log(p[:, np.arange(NC)[None, :], t] + floor)  # [N, 100, NC]
    loo = lp.sum(axis=2, keepdims=True) - lp  # [N, 100, NC]
    w = np.exp(loo - loo.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    out = np.zeros((len(p), NC, CAND))
    for k in range(NC):
        np.add.at(out[:, k].T, t[:, k], w[:, :, k].T)
    return out


def two_pass(m1, m2, cases: dict, temperature: float | None = 1.0) -> np.ndarray:
    """[N, NC, CAND] probabilities of the full estimator: pass 1, the IJG prior from its answers,
    pass 2; with ``temperature``, the log-probabilities divided by it (calibration)."""
    n = len(cases["q2"])
    p1 = predict_probs(m1, features(cases), n)
    p2 = predict_probs(m2, features(cases, prior=table_prior(p1)), n)
    return p2 if not temperature else scale(p2, temperature)


def scale(p: np.ndarray, temperature: float) -> np.ndarray:
    lp = np.log(np.maximum(p, 1e-30)) / temperature
    lp -= lp.max(axis=-1, keepdims=True)
    e = np.exp(lp)
    return e / e.sum(axis=-1, keepdims=True)


def classes(p: np.ndarray, nc: int = NC) -> tuple[np.ndarray, np.ndarray]:
    """The wide head's reading of candidate probabilities [..., NC, CAND]: (answer, confidence)
    per coefficient, the answer in 1..R_k or R_k + 1 for "at least R_k + 1" (the mass of every
    larger candidate)."""
    from .tables import WIDE_RANGE
    R = WIDE_RANGE[:nc]
    ans = np.empty(p.shape[:-1], dtype=np.int64)
    conf = np.empty(p.shape[:-1])
    for k in range(nc):
        pk = np.concatenate([p[..., k, :R[k]], p[..., k, R[k]:].sum(axis=-1, keepdims=True)], axis=-1)
        ans[..., k] = pk.argmax(axis=-1) + 1
        conf[..., k] = pk.max(axis=-1)
    return ans, conf


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of the wide classes' answers on
    held-out files (Guo et al. 2017's temperature scaling, searched on a grid)."""
    best, tbest = np.inf, 1.0
    for t in np.exp(np.linspace(np.log(0.3), np.log(5), 60)):
        ps = scale(p, t)
        nll = -np.log(np.maximum(np.take_along_axis(ps, y[..., None], axis=-1), 1e-12)).mean()
        if nll < best:
            best, tbest = nll, float(t)
    return tbest


# ---------------------------------------------------------------------------------------------
# The trained estimator on disk, and one file's answer

NAME = "file-q1"  # models/<profile>/file-q1: pass1.keras, pass2.keras, calibration.json, config.json
PASSES = ("pass1.keras", "pass2.keras")


def candidate_gains(ll: np.ndarray, found) -> np.ndarray:
    """[..., NC, CAND] nats by which each candidate step explains a coefficient's non-zero values
    better than no first quantization (q = 1), at its best noise level, under the aligned
    hypothesis, or the shifted one where the search found its grid (``found``: its confidence
    reached GRID_MIN), whichever is larger."""
    ll = np.asarray(ll)[..., 1, :, :].max(axis=-2)  # non-zero blocks, best noise level: [..., NC, 2, CAND]
    g = ll - ll[..., :1]
    shifted = np.where(np.asarray(found)[..., None, None], g[..., 1, :], -np.inf)
    return np.maximum(g[..., 0, :], shifted)


def evidence_gain(ll: np.ndarray, q2: np.ndarray, found, above: bool = True) -> np.ndarray:
    """[..., NC] the evidence of each coefficient (:func:`candidate_gains`, at least 0) of its
    best candidate step above q2 (``above``: the steps that empty bins, a comb) or below it (the
    populations of q2's bins beat with q1; only on the aligned grid)."""
    g = candidate_gains(ll, found)
    q = np.arange(1, CAND + 1)
    z2 = np.asarray(q2)[..., :NC, None]
    mask = q > z2 if above else (q < z2) & (z2 % q != 0)
    return np.maximum(np.where(mask, g, -np.inf).max(axis=-1), 0.0)


def case_of(ev: dict, ll: np.ndarray) -> dict:
    """One file's evidence as a batch of one case (the arrays :func:`features` reads)."""
    return {"ll": ll[None], "q2": ev["q2"][None], "blocks": np.array([ev["blocks"]]),
            "active": active_share(ev)[None],
            "grid_confidence": np.array([ev["grid_confidence"]])}


class FileModel:
    """The two passes and their calibration (``calibration.json``: temperature, the evidence
    thresholds of the notes and of the verdict)."""

    def __init__(self, m1, m2, calibration: dict, name: str = NAME):
        self.m1, self.m2, self.calibration, self.name = m1, m2, calibration, name

    def probs(self, cases: dict) -> np.ndarray:
        n = len(cases["q2"])
        p1 = _call(self.m1, features(cases), n)
        p2 = _call(self.m2, features(cases, prior=table_prior(p1)), n)
        return scale(p2, self.calibration["temperature"])


def _call(model, x, n):
    import keras
    return keras.ops.convert_to_numpy(model(x, training=False)).reshape(n, NC, CAND)


def save_model(folder, m1, m2, calibration: dict, config: dict) -> None:
    """Write the estimator's files (each to a temporary name, then renamed)."""
    import json
    import tempfile

    from .paths import atomic_write_bytes
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for m, name in zip((m1, m2), PASSES):
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / name
            m.save(f)
            atomic_write_bytes(folder / name, f.read_bytes())
    atomic_write_bytes(folder / "calibration.json", json.dumps(calibration, indent=1).encode())
    atomic_write_bytes(folder / "config.json", json.dumps(config, indent=1).encode())


class ModelError(ValueError):
    """A missing, altered or foreign file-level model; one line for the user."""


def load_model(folder, sha256: dict | None = None) -> FileModel:
    """Load a saved estimator (``safe_mode=True``); with ``sha256`` ({file: digest}, from the
    manifest) each file is checked first and one that differs is refused."""
    import json

    import keras

    from .paths import sha256_file
    folder = Path(folder)
    for name in PASSES + ("calibration.json",):
        if not (folder / name).is_file():
            raise ModelError(f"file-level model {folder} lacks {name}")
        if sha256 is not None and sha256_file(folder / name) != sha256.get(name):
            raise ModelError(f"{folder / name} does not match the sha256 of its manifest; refusing to load it")
    m1, m2 = (keras.saving.load_model(folder / n, compile=False, safe_mode=True) for n in PASSES)
    for m in (m1, m2):
        shape = tuple(m.input_shape[1:]) if not isinstance(m.input_shape, list) else None
        if shape is None or shape[0] != CAND or tuple(m.output_shape[1:]) != (CAND,):
            raise ModelError(f"{folder}: not a file-level estimator (input {m.input_shape}, output {m.output_shape})")
    cal = json.loads((folder / "calibration.json").read_text())
    return FileModel(m1, m2, cal, folder.name)


def answer(ev: dict, fm: FileModel) -> dict:
    """One file's estimate: per coefficient the answer through the wide classes, its calibrated
    confidence, the evidence for that answer (nats over no first quantization,
    :func:`candidate_gains`) and the notes: ``no_trace`` where that evidence is below what 99% of
    single-compressed files show for a step on the same side of q2, or the answer is q2 or a
    divisor of it (the values look as if never quantized otherwise than by Q2: the answer is the
    network's guess from the other coefficients), ``at_least`` (the last class) and
    ``uncertain`` (confidence below 1/2); and whether the file shows a first compression (enough
    coefficients with comb evidence, :func:`evidence_gain`)."""
    ll = file_log_likelihoods(ev)
    p = fm.probs(case_of(ev, ll))[0]
    q1, conf = classes(p)
    cal = fm.calibration
    found = not ev["aligned"]
    gains = candidate_gains(ll, found)  # [NC, CAND]
    cand = np.arange(1, CAND + 1)[None]
    at_least = at_least_class(q1)
    answer = np.where(at_least[:, None], cand >= q1[:, None], cand == q1[:, None])  # the answer's candidates
    gain = np.maximum(np.where(answer, gains, -np.inf).max(axis=1), 0.0)  # the evidence for the answer itself
    z2 = ev["q2"]
    steps = np.minimum(q1, CAND)
    limit = np.where(steps > z2, cal["no_trace_nats"], cal["no_trace_below_nats"])
    no_trace = (gain < limit) | (steps == z2) | (z2 % steps == 0)
    comb = evidence_gain(ll, z2, found)
    traced = int((comb >= cal["double_nats"]).sum())
    return {"q1": q1, "confidence": conf, "evidence_nats": gain, "no_trace": no_trace,
            "at_least": at_least, "uncertain": conf < 0.5, "traced_coefficients": traced,
            "double": traced >= cal["double_coefficients"]}


def at_least_class(q1) -> np.ndarray:
    """Where an answer is the wide head's last class, "at least R_k + 1"."""
    from .tables import WIDE_RANGE
    return np.asarray(q1) > WIDE_RANGE[:NC]
