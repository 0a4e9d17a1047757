"""Q1 estimation after Bianchi & Piva, "Image forgery localization via block-grained analysis of
JPEG artifacts", IEEE TIFS 7(3) 2012 (the reproduced paper's reference [5]), aligned (A-DJPG)
and non-aligned (NA-DJPG) cases.

Model (Sec. III of Bianchi & Piva): the coefficients of a doubly compressed region follow the
distribution of the never-compressed coefficients p_U pushed through both quantizers, those of
a singly compressed region through the last one only; the observed histogram is a mixture of
the two with weight alpha, and (alpha, Q1) are estimated by maximum likelihood, alpha by EM
(Sec. IV, "estimation of the model parameters"), Q1 by exhaustive search of the candidates.

A-DJPG, for each zig-zag coefficient k with last step q2 (Sec. III-A):
- p_U: kernel-smoothed histogram of the calibrated coefficients (DCT on the grid shifted by
  (4, 4), see :mod:`.common`), Gaussian kernel of ``sigma`` = 1 coefficient unit.
- single quantization p_SQ(x) = P_U([(x - 1/2) q2, (x + 1/2) q2));
- double quantization p_DQ(x; q1) = sum over v with round(v q1 / q2) = x of
  P_U([(v - 1/2) q1, (v + 1/2) q1))  (the paper's p(x | H1) for the aligned case);
  to model the rounding/truncation errors the paper adds as noise, p_DQ is mixed with a small
  share ``eps`` of p_SQ, so that no observed bin gets probability zero;
- likelihood of the observed indices x_b = round(D_b / q2), b over blocks:
  L(q1, alpha) = sum_b log(alpha p_DQ(x_b; q1) + (1 - alpha) p_SQ(x_b)); alpha by EM (``iters``
  iterations from alpha = 1/2), then q1 = argmax over candidates.
- Ambiguity: when q1 divides q2 (q1 == q2 included) p_DQ == p_SQ and the likelihood is flat in
  alpha: double compression leaves no trace. Such candidates form the single-compression
  hypothesis; the best other candidate is returned only if its log-likelihood ratio against it
  exceeds ``tau`` nats per observed block (0.2: the gain of a wrong candidate on singly
  compressed data is ~0.01-0.05 nats/block on 256x256 crops but up to ~0.8 on 64x64 patches,
  that of the right one 0.3-2 nats/block for QF1 < QF2), otherwise the estimate is q2 (clipped to the class range), as in
  :mod:`.galvan`. So q1 == q2 is answered right and a proper divisor of q2 is answered q2.

NA-DJPG (Sec. III-B): the DCT on the grid of the first compression gives y = v q1 + e, with e
the error of the second compression, approximately Gaussian with variance
sigma_e^2 = mean(Q2^2)/12 + 1/12 (orthonormal DCT of a white error; 1/12 for the rounding to
integers). p(y | H1) = sum_v P_U([(v-1/2) q1, (v+1/2) q1)) N(y; v q1, sigma_e^2) and
p(y | H0) = p_U smoothed by the same noise, alpha by EM and q1 by maximum likelihood as above.

Grid shift (the first step of the NA case): the first grid is the one on which the DCT
coefficients are closest to a lattice. For each of the 63 offsets (dy, dx) != (0, 0) of the
block grid in the final image and each of the first ``kshift`` coefficients and candidate
period Q, the Rayleigh statistic |sum_b exp(2 pi i y_b / Q)|^2 / B measures periodicity (the
"integer periodicity" idea of Bianchi & Piva's NA-DJPG detector); its median over the 63
offsets is subtracted (this removes the trivial periodicity of peaked AC distributions, equal
on every grid), the maximum over Q is taken and summed over k; the offset of the largest score
wins. Offset (0, 0) is the grid of the second compression, where every coefficient lies on the
q2 lattice; it is chosen (aligned case) by a separate test: the A-DJPG estimator above finds a
trace of double compression (an estimate other than the single-compression fallback) in at
least ``aligned_share`` of the first ``kshift`` coefficients. The generator crops r rows and c
columns after the first compression, so the first grid starts at ((8 - r) % 8, (8 - c) % 8);
:func:`estimate_shift` returns the generator's (r, c).

Implementation choices: candidate range 1..q_max(nc)[k] (the CNN's class range); estimates
clipped to it; ties to the smaller step; on a 64x64 patch non-aligned grids hold 7x7 blocks.
Speed (aligned, batched): the smoothed CDF is built per patch on the window of its own
samples and read only at the bin and cell ends of the observed values; EM runs only for the
(patch, candidate) pairs that can change the decision, by concave-likelihood bounds
(:func:`_candidates_to_run`); the estimates equal those of running every EM.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .. import grid, jpeg
from . import common

EPS = 0.02
TAU = 0.2  # nats per block
SIGMA = 1.0
ITERS = 25
T = 1040
CHUNK = 256
KSHIFT = 6
ALIGNED_SHARE = 0.5
BUCKET = 8  # EM rows padded to a multiple of BUCKET distinct values
DECIMALS = 9  # log-likelihood gains rounded before comparison
BOUND_STEPS = 1  # EM steps before the gain bounds that prune candidates (_gain_bounds)
MARGIN = 1e-6  # nats: slack of the pruning bounds (>> rounding to DECIMALS, float error)


def _em(p1: np.ndarray, p0: np.ndarray, iters: int = ITERS) -> np.ndarray:
    """EM for the mixture weight: p1 [..., B], p0 broadcastable; returns the log-likelihood
    sum_b log(alpha p1 + (1 - alpha) p0) at the EM estimate of alpha (per leading index)."""
    alpha = np.full(p1.shape[:-1] + (1,), 0.5)
    for _ in range(iters):
        m = alpha * p1 + (1 - alpha) * p0
        alpha = np.mean(alpha * p1 / m, axis=-1, keepdims=True)
    return np.log(alpha * p1 + (1 - alpha) * p0).sum(axis=-1)


def _em_gain(r: np.ndarray, c: np.ndarray, iters: int = ITERS) -> np.ndarray:
    """EM for the mixture weight on distinct observed values: ``r`` [..., U] the likelihood
    ratios p1/p0 of the values, ``c`` [..., U] their counts (0 for padding). With
    m_b = alpha p1_b + (1 - alpha) p0_b the EM step alpha <- mean_b alpha p1_b / m_b is
    alpha <- alpha sum_u (c_u / B) r_u / (1 + alpha (r_u - 1)); ``iters`` steps from alpha = 1/2
    (as :func:`_em`). Returns the log-likelihood gain over single compression,
    sum_b log(m_b / p0_b) = sum_u c_u log(1 + alpha (r_u - 1)), per leading index."""
    c = np.broadcast_to(c, r.shape)
    d = r - 1.0
    wr = r * (c / c.sum(axis=-1, keepdims=True))
    alpha = np.full(r.shape[:-1] + (1,), 0.5)
    t = np.empty_like(r)
    for _ in range(iters):
        np.multiply(d, alpha, out=t)
        t += 1.0
        np.divide(wr, t, out=t)
        alpha = alpha * t.sum(axis=-1, keepdims=True)
    return (c * np.log1p(alpha * d)).sum(axis=-1)


def _unique_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of each row of x [N, B] and their counts, padded to the largest number of
    distinct values in the batch (padding: the row's smallest value with count 0)."""
    n = len(x)
    s = np.sort(x, axis=1)
    new = np.ones(s.shape, dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    rank = np.cumsum(new, axis=1) - 1
    u = int(rank[:, -1].max()) + 1
    xu = np.repeat(s[:, :1], u, axis=1)
    xu[np.arange(n)[:, None], rank] = s
    return xu, common.bincount_rows(rank, u)


@lru_cache(maxsize=4096)
def _vlo(q1: int, q2k: int, Lb: int) -> np.ndarray:
    """v_lo(x) for x = -Lb+1..Lb: the smallest integer v with round(v q1 / q2k) >= x (cached)."""
    V = int(np.ceil((Lb + 1) * q2k / q1)) + 1
    v = np.arange(-V, V + 1)
    xv = np.rint(v * q1 / q2k)  # non-decreasing in v
    out = v[np.searchsorted(xv, np.arange(-Lb + 1, Lb + 1), side="left")]
    out.flags.writeable = False
    return out


def dq_lower_ends(q1s: np.ndarray, q2k: int, L: int) -> np.ndarray:
    """Double-quantization cells of (q1, q2k) for the candidates ``q1s`` [Q], as integer
    half-grid indices (points a / 2, see :func:`common.cdf_at`): entry [q, x + L - 1]
    (x = -L+1..L) is 2 (v_lo(x) - 1/2) q1, twice the lower end of the set
    {u : round(round(u / q1) q1 / q2k) >= x}, v_lo(x) the smallest integer v with
    round(v q1 / q2k) >= x. So for |x| < L, P(X = x) = F(end[x + 1]) - F(end[x]): the
    double-quantization probability of bin x as one difference of the CDF (an empty cell,
    possible when q1 > q2k, gets 0). The v_lo tables depend only on (q1, q2k) and are computed
    once (:func:`_vlo`)."""
    Lb = 1 << max(int(L), 1).bit_length()  # >= L, a power of two: few distinct cache keys
    vlo = np.stack([_vlo(int(q1), int(q2k), Lb)[Lb - L:Lb + L] for q1 in q1s])  # x = -L+1..L
    return (2 * vlo - 1) * np.asarray(q1s, dtype=np.int64)[:, None]


def _aligned_terms(xo: np.ndarray, cal: np.ndarray, q2k: int, qmax: int, eps: float = EPS,
                   sigma: float = SIGMA):
    """The model of one coefficient for a batch, on the distinct observed values of each patch:
    returns (test [Q] the candidates that do not divide q2k, r [N, Q, U] the likelihood ratios
    p_DQ / p_SQ of the distinct values, c [N, U] their counts (0: padding), ll_single [N]).

    The smoothed CDF of the calibrated coefficients is built on each patch's own window, patches
    grouped by window width (:func:`common.windowed_cdf`, :func:`common.window_groups`), and
    read only where needed: at the ends of the single-quantization bins (x +- 1/2) q2k and of
    the double-quantization cells (:func:`dq_lower_ends`) of the patch's distinct observed
    values x."""
    n = len(xo)
    L = int(np.abs(xo).max()) + 1
    xu, cu = _unique_rows(xo)
    cand = np.arange(1, qmax + 1)
    test = cand[~common.divides(cand, q2k)]
    ends = dq_lower_ends(test, q2k, L) if len(test) else None  # [Q, 2L]
    j = xu + L - 1
    p0 = np.empty(xu.shape)
    p1 = np.empty((n, len(test), xu.shape[1]))
    for rows in common.window_groups(cal, sigma):
        F, lo = common.windowed_cdf(cal[rows], sigma)
        x = xu[rows]
        p0[rows] = common.cdf_at(F, lo, (2 * x + 1) * q2k) - common.cdf_at(F, lo, (2 * x - 1) * q2k)
        if len(test):
            jr = j[rows]
            p1[rows] = (common.cdf_at(F, lo, ends[:, jr + 1].transpose(1, 0, 2))
                        - common.cdf_at(F, lo, ends[:, jr].transpose(1, 0, 2)))
    p0 = np.maximum(p0, 1e-6)  # [N, U]
    ll_single = (cu * np.log(p0)).sum(axis=1)
    # p1 <- max((1 - eps) p1 + eps p0, 1e-6) / p0 [N, Q, U], in place
    p1 *= 1 - eps
    p1 += eps * p0[:, None]
    np.maximum(p1, 1e-6, out=p1)
    p1 /= p0[:, None]
    return test, p1, cu, ll_single


def _em_gains(items, iters: int = ITERS) -> list:
    """:func:`_em_gain` for several coefficients at once: ``items`` a list of (r [N, Q, U],
    c [N, U]); returns the gains [N, Q] of each, rounded to ``DECIMALS``. The rows (patch,
    candidate) are bucketed by their number of distinct values rounded up to a multiple of
    ``BUCKET`` and each bucket runs as one array, padded to that width: little padding, few
    numpy calls, and the floating-point summation order of a row depends only on the row (a
    patch's result does not depend on the rest of the batch)."""
    buckets: dict = {}
    for i, (r, c) in enumerate(items):
        n, q, u = r.shape
        width = -(-(c > 0).sum(axis=1) // BUCKET) * BUCKET
        for w in np.unique(width):
            rows = np.nonzero(width == w)[0]
            rr, cc = np.ones((len(rows), q, w)), np.zeros((len(rows), q, w))
            m = min(int(w), u)
            rr[:, :, :m] = r[rows, :, :m]
            cc[:, :, :m] = c[rows, None, :m]
            buckets.setdefault(int(w), []).append((i, rows, rr.reshape(-1, w), cc.reshape(-1, w)))
    out = [np.empty(r.shape[:2]) for r, _ in items]
    for w, parts in buckets.items():
        g = np.round(_em_gain(np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]),
                              iters), DECIMALS)
        s = 0
        for i, rows, rr, _ in parts:
            q = out[i].shape[1]
            out[i][rows] = g[s:s + len(rr)].reshape(len(rows), q)
            s += len(rr)
    return out


def decide(ll: np.ndarray, ll_single: np.ndarray, q2k: int, qmax: int, tau: float = TAU,
           nblocks: int = 1) -> np.ndarray:
    """Best candidate that does not divide q2 if its log-likelihood ratio against single
    compression exceeds ``tau * nblocks`` nats, else q2 clipped to 1..qmax."""
    cand = np.arange(1, qmax + 1)
    ll = np.where(common.divides(cand, q2k)[None], -np.inf, ll)
    best = np.argmax(ll, axis=1)
    gain = ll[np.arange(len(ll)), best] - ll_single
    return np.where(gain > tau * nblocks, cand[best], min(max(q2k, 1), qmax)).astype(np.int64)


def _gain_bounds(r: np.ndarray, c: np.ndarray, steps: int = BOUND_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Cheap bounds on the EM gain of :func:`_em_gain` (``r`` [..., U], ``c`` broadcastable to it),
    per leading index: (lower, upper). The gain g(alpha) = sum_u c_u log(1 + alpha (r_u - 1))
    is concave in alpha and EM does not decrease it, so after ``steps`` EM steps from 1/2 at
    alpha_s, g(alpha_s) bounds the gain after more steps from below and the tangent at alpha_s,
    g(alpha_s) + max(g'(alpha_s) (1 - alpha_s), -g'(alpha_s) alpha_s), bounds g on [0, 1] from
    above. Both hold up to floating-point error (~1e-12 nats), far below ``MARGIN``."""
    d = r - 1.0
    alpha = np.full(r.shape[:-1] + (1,), 0.5)
    if steps:
        wr = r * (c / c.sum(axis=-1, keepdims=True))
    for _ in range(steps):
        t = alpha * d
        t += 1.0
        np.divide(wr, t, out=t)
        alpha = alpha * t.sum(axis=-1, keepdims=True)
    t = alpha * d
    t += 1.0  # 1 + alpha (r - 1)
    d /= t
    d *= c
    gp = d.sum(axis=-1)  # g'(alpha)
    np.log(t, out=t)
    t *= c
    g = t.sum(axis=-1)
    a = alpha[..., 0]
    return g, g + np.maximum(gp * (1.0 - a), -gp * a)


def _candidates_to_run(r: np.ndarray, c: np.ndarray, threshold: float) -> np.ndarray:
    """Mask [N, Q] of the (patch, candidate) pairs whose EM can change the decision: a candidate
    whose upper bound is below the best lower bound of its patch (minus ``MARGIN``) cannot be
    the arg max, and when no candidate's upper bound exceeds ``threshold`` - ``MARGIN`` (the
    ``tau * nblocks`` of :func:`decide`) the answer is the single-compression fallback
    whatever the gains. :func:`decide` is unchanged by setting the others to -inf."""
    lb, ub = _gain_bounds(r, c[:, None])
    run = ub >= lb.max(axis=1, keepdims=True) - MARGIN
    run &= (ub.max(axis=1) > threshold - MARGIN)[:, None]
    return run


def _aligned_batch(gray: np.ndarray, q2v: np.ndarray, nc: int, chunk: int = CHUNK, eps: float = EPS,
                   sigma: float = SIGMA, iters: int = ITERS, tau: float = TAU, qmax=None) -> np.ndarray:
    """A-DJPG estimates [N, nc]: per chunk, the model terms of every coefficient
    (:func:`_aligned_terms`), the (patch, candidate) pairs that can decide
    (:func:`_candidates_to_run`), one grouped EM for those of all coefficients
    (:func:`_em_gains`; a row's EM does not depend on the other rows), then :func:`decide` per
    coefficient with the other candidates at -inf: the same estimates as running every EM.
    ``qmax``: the candidate range [nc] (default q_max, the paper's class range)."""
    qmax = jpeg.q_max(nc) if qmax is None else np.asarray(qmax)[:nc]
    out = np.empty((len(gray), nc), dtype=np.int64)
    for sl in common.chunks(len(gray), chunk):
        obs, cal = common.observed_and_calibrated(gray[sl], nc)
        nb = obs.shape[1]
        terms, items = [], []
        for k in range(nc):
            q2k, qm = int(q2v[k]), int(qmax[k])
            xo = np.rint(obs[:, :, k] / q2k).astype(np.int64)
            test, r, cu, ll_single = _aligned_terms(xo, cal[:, :, k], q2k, qm, eps, sigma)
            run = _candidates_to_run(r, cu, tau * nb) if len(test) else np.zeros((len(xo), 0), bool)
            pi, qi = np.nonzero(run)
            terms.append((test, ll_single, run))
            items.append((r[pi, qi][:, None], cu[pi]))  # [M, 1, U], [M, U]
        gains = _em_gains(items, iters)
        for k, (test, ll_single, run) in enumerate(terms):
            q2k, qm = int(q2v[k]), int(qmax[k])
            g = np.full(run.shape, -np.inf)
            g[run] = gains[k][:, 0]
            ll = np.full((len(ll_single), qm), -np.inf)
            if len(test):
                ll[:, test - 1] = ll_single[:, None] + g
            out[sl, k] = decide(ll, ll_single, q2k, qm, tau, nb)
    return out


# ---------------------------------------------------------------------------------------------
# Non-aligned case

def _grid_dct(gray: np.ndarray, dy: int, dx: int, nc: int) -> np.ndarray:
    n, h, w = gray.shape
    return common.block_dct_batch(gray, dy, dx, (h - 7) // 8, (w - 7) // 8, nc)


def shift_scores(gray: np.ndarray, q2v: np.ndarray, kshift: int = KSHIFT) -> np.ndarray:
    """Periodicity scores [N, 8, 8] of the block-grid offsets (dy, dx) in the final image (see
    the module docstring); offset (0, 0) is set to -inf (it is the second compression's grid)."""
    qmax = jpeg.q_max(kshift)
    ys = np.stack([_grid_dct(gray, dy, dx, kshift) for dy in range(8) for dx in range(8)], axis=1)
    n, _, B, _ = ys.shape
    score = np.zeros((n, 64))
    for k in range(kshift):
        Q = np.arange(2, int(qmax[k]) + 1, dtype=np.float64)
        ph = np.exp(2j * np.pi * ys[:, :, :, k, None] / Q)  # [N, 64, B, Q]
        R = np.abs(ph.sum(axis=2)) ** 2 / B  # [N, 64, Q]
        R = R - np.median(R[:, 1:], axis=1, keepdims=True)
        score += R.max(axis=2)
    score[:, 0] = -np.inf
    return score.reshape(n, 8, 8)


_offset_to_rc, _rc_to_offset = grid.offset_to_rc, grid.rc_to_offset


def _looks_aligned(gray: np.ndarray, q2v: np.ndarray, kshift: int, share: float) -> np.ndarray:
    est = _aligned_batch(gray, q2v, kshift)
    fallback = np.minimum(q2v[:kshift], jpeg.q_max(kshift))
    return (est != fallback[None]).mean(axis=1) >= share


def estimate_shift_batch(patches: np.ndarray, q2: np.ndarray, kshift: int = KSHIFT,
                         aligned_share: float = ALIGNED_SHARE) -> np.ndarray:
    """Grid shifts [N, 2] = (r, c) in the generator's convention ((0, 0): aligned)."""
    gray = common.luma_batch(patches)
    q2v = common.q2_vector(q2, max(kshift, 1))
    s = shift_scores(gray, q2v, kshift).reshape(len(gray), 64)
    off = np.argmax(s, axis=1)
    rc = np.array([_offset_to_rc(o // 8, o % 8) for o in off], dtype=np.int64).reshape(-1, 2)
    al = _looks_aligned(gray, q2v, kshift, aligned_share)
    rc[al] = 0
    return rc


def estimate_shift(image_or_patch: np.ndarray, q2: np.ndarray, **kw) -> tuple[int, int]:
    """Estimated grid shift (r, c) of one image, generator convention: the first compression's
    grid starts at row (8 - r) % 8, column (8 - c) % 8 of the image; (0, 0) means aligned."""
    r, c = estimate_shift_batch(common.as_luma(image_or_patch)[None], q2, **kw)[0]
    return int(r), int(c)


def nonaligned_batch(gray: np.ndarray, q2: np.ndarray, rc: np.ndarray, nc: int, eps: float = EPS,
                     tau: float = 0.0, iters: int = ITERS) -> np.ndarray:
    """NA-DJPG q1 estimates [N, nc] on the grids given by ``rc`` [N, 2] (generator's (r, c))."""
    q2full = common.q2_vector(q2, 64).astype(np.float64)
    se = float(np.sqrt(np.mean(q2full ** 2) / 12.0 + 1.0 / 12.0))
    qmax = jpeg.q_max(nc)
    out = np.empty((len(gray), nc), dtype=np.int64)
    for i, (r, c) in enumerate(np.asarray(rc).reshape(-1, 2)):
        dy, dx = _rc_to_offset(int(r), int(c))
        cy, cx = (dy + 4) % 8, (dx + 4) % 8
        if (cy, cx) == (0, 0):  # calibration grid must not be the second compression's grid
            cx = (dx + 2) % 8
        g = gray[i:i + 1]
        y = _grid_dct(g, dy, dx, nc)[0]
        cal = _grid_dct(g, cy, cx, nc)
        for k in range(nc):
            yk = y[:, k]
            F0 = common.smoothed_cdf(cal[:, :, k], T, float(np.hypot(SIGMA, se)))
            j = common.grid_index(yk, T)
            p0 = np.maximum((F0[0, np.minimum(j + 1, F0.shape[1] - 1)] - F0[0, j]) / 0.5, 1e-8)
            F = common.smoothed_cdf(cal[:, :, k], T, SIGMA)[0]
            ll = np.full(int(qmax[k]), -np.inf)
            for q1 in range(1, int(qmax[k]) + 1):
                M = int(np.ceil(4 * se / q1)) + 1
                v = np.rint(yk / q1)[:, None] + np.arange(-M, M + 1)[None]
                w = F[common.grid_index((v + 0.5) * q1, T)] - F[common.grid_index((v - 0.5) * q1, T)]
                g1 = np.exp(-0.5 * ((yk[:, None] - v * q1) / se) ** 2) / (se * np.sqrt(2 * np.pi))
                p1 = np.maximum((1 - eps) * (w * g1).sum(axis=1) + eps * p0, 1e-8)
                ll[q1 - 1] = _em(p1[None], p0[None], iters)[0]
            best = int(np.argmax(ll))
            out[i, k] = best + 1
    return out


# ---------------------------------------------------------------------------------------------
# Public interface

def estimate_batch(patches: np.ndarray, q2: np.ndarray, nc: int = jpeg.NC, aligned: bool | None = True,
                   chunk: int = CHUNK, **kw) -> np.ndarray:
    """Q1 estimates [N, nc] (int64, zig-zag, clipped to 1..q_max(nc)[k]) for patches [N,H,W]
    luma or [N,H,W,3] RGB uint8; ``q2`` the 8x8 natural-order luminance table of the last
    compression. ``aligned=True`` (default, the paper's aligned tables): A-DJPG model,
    vectorized over patches. ``aligned=False``: grid shift estimated among the 63 non-zero
    offsets, then the NA-DJPG model. ``aligned=None``: :func:`estimate_shift_batch` decides,
    then the matching model. The non-aligned path loops over patches."""
    gray = common.luma_batch(patches)
    q2v = common.q2_vector(q2, nc)
    if aligned:
        return _aligned_batch(gray, q2v, nc, chunk, **kw)
    if aligned is None:
        rc = estimate_shift_batch(gray, q2)
    else:
        q2s = common.q2_vector(q2, KSHIFT)
        s = shift_scores(gray, q2s, KSHIFT).reshape(len(gray), 64)
        rc = np.array([_offset_to_rc(o // 8, o % 8) for o in np.argmax(s, axis=1)]).reshape(-1, 2)
    out = np.empty((len(gray), nc), dtype=np.int64)
    al = (rc == 0).all(axis=1)
    if al.any():
        out[al] = _aligned_batch(gray[al], q2v, nc, chunk, **kw)
    if (~al).any():
        out[~al] = nonaligned_batch(gray[~al], q2, rc[~al], nc)
    return out


def estimate(image_or_patch: np.ndarray, q2: np.ndarray, nc: int = jpeg.NC, aligned: bool | None = True,
             **kw) -> np.ndarray:
    """One image or patch ((H,W) luma or (H,W,3) RGB uint8, converted with
    :func:`qpaper.jpeg.to_luma`): int64 [nc] Q1 estimates in zig-zag order (see
    :func:`estimate_batch` for ``aligned``)."""
    return estimate_batch(common.as_luma(image_or_patch)[None], q2, nc, aligned, **kw)[0]
