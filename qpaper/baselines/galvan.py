"""Aligned Q1 estimation from DCT histograms, after Galvan, Puglisi, Bruna, Battiato, "First
quantization matrix estimation from double compressed JPEG images", IEEE TIFS 9(8) 2014 (the
reproduced paper's reference [7]).

What the method does (Galvan et al., Sec. III; the same simulate-and-compare family as Lukas and
Fridrich 2003 and Battiato's ICIP 2013 histogram analysis), for each zig-zag coefficient k:

1. Observed histogram h_D of the quantization indices X = round(D_k / q2_k) of the DCT
   coefficients D_k of the 8x8 blocks on the (aligned) grid of the last compression.
2. Calibration: the DCT of the image cropped by 4 rows and 4 columns approximates the
   never-compressed coefficients U_k (the JPEG lattice is invisible on that grid).
3. For every candidate step q1 the double quantization is simulated on the calibrated
   coefficients, X~(q1) = round(round(U_k / q1) q1 / q2_k), and its histogram h(q1) compared
   with h_D; the estimate is the candidate of minimum distance.
4. Ambiguity (the paper's discussion of the cases where the double quantization leaves no
   trace): when q1 divides q2 (q1 == q2 included) round(round(u/q1) q1/q2) equals round(u/q2)
   for almost every u, so the histogram is that of a single compression and every divisor of q2
   fits equally well. Those candidates are merged into one "single-compression" hypothesis
   h(q2) = hist(round(U_k / q2_k)); a candidate that does not divide q2 is returned only when
   its distance is smaller than the single-compression one by the relative ``margin``,
   otherwise the code returns q2_k (clipped to the class range). So q1 == q2 is answered
   correctly, a proper divisor q1 of q2 is answered q2 (wrong, as the literature says it must
   be), and a coefficient whose histogram carries no evidence (e.g. all-zero high frequencies on
   a 64x64 patch) is answered q2 as well.

Implementation choices (not fixed by the paper):
- Candidate range 1..q_max(nc)[k] (the QF 50 table, the CNN's class range), so that the
  estimates fill the same tables as the CNN; the estimate is clipped to that range.
- Distance: the symmetric chi-square sum_x (h_D(x) - h(x))^2 / (h_D(x) + h(x)) of the
  normalised histograms over all integer bins (computed exactly on compressed per-patch bins,
  see :func:`coefficient_scores`); the zero bin is kept (``skip_zero`` drops it).
- Simulation by actual re-quantization of the calibrated samples (not a fitted density), as in
  the paper: on a 64x64 patch this is 49 calibrated blocks against 64 observed ones.
- Ties between candidates that do not divide q2 go to the smaller step (np.argmin).
- Rounding: np.rint (half to even) for the simulation, which only differs from the IJG rounding
  on a set of measure zero.
"""
from __future__ import annotations

import numpy as np

from .. import jpeg
from . import common

MARGIN = 0.05
CHUNK = 256


def _bin_table(xo: np.ndarray, skip_zero: bool):
    """Compressed histogram bins of one coefficient for a batch (see :func:`coefficient_scores`).

    Returns (lo [N], span [N], table [N, width] int64, nbins): a value x of patch n in its window
    lo[n] .. lo[n] + span[n] falls in bin ``table[n, x - lo[n]]``: 1..U_n for the U_n distinct
    observed values (in increasing order), 0 for every value the patch does not show (all merged:
    their chi-square terms are additive), and with ``skip_zero`` the dedicated last bin for
    x = 0 (dropped from the distance)."""
    n = len(xo)
    lo = xo.min(axis=1) - 1
    span = xo.max(axis=1) + 1 - lo
    s = np.sort(xo, axis=1)
    new = np.ones(s.shape, dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    rank = np.cumsum(new, axis=1)
    nbins = int(rank[:, -1].max()) + 1 + int(skip_zero)
    width = int(span.max()) + 1
    table = np.zeros((n, width), dtype=np.int64)
    table[np.arange(n)[:, None], s - lo[:, None]] = rank
    if skip_zero:
        z = -lo
        ok = (z >= 0) & (z <= span)
        table[np.nonzero(ok)[0], z[ok]] = nbins - 1
    return lo, span, table, nbins


def _hist(x: np.ndarray, lo: np.ndarray, span: np.ndarray, table: np.ndarray, nbins: int) -> np.ndarray:
    """Normalised histograms [N, ..., nbins] of x [N, ..., S] in the bins of :func:`_bin_table`
    (values outside a patch's window are clipped to its ends, which are never observed)."""
    shp = (len(x),) + (1,) * (x.ndim - 1)
    off = np.clip(x - lo.reshape(shp), 0, span.reshape(shp))
    off += (np.arange(len(x)) * table.shape[1]).reshape(shp)
    h = common.bincount_rows(table.ravel()[off], nbins)
    return h / np.maximum(h.sum(axis=-1, keepdims=True), 1.0)


def _chi2(a: np.ndarray, b: np.ndarray, skip_last: bool) -> np.ndarray:
    s = a + b
    d = np.where(s > 0, (a - b) ** 2 / np.where(s > 0, s, 1.0), 0.0)
    if skip_last:  # the bin of x = 0 (``skip_zero``)
        d = d[..., :-1]
    return d.sum(axis=-1)


def coefficient_scores(xo: np.ndarray, cal: np.ndarray, q2k: int, qmax: int, skip_zero: bool = False):
    """Distances of one coefficient for a batch: ``xo`` [N,B] observed indices, ``cal`` [N,B']
    calibrated coefficients. Returns (d [N, qmax] for candidates 1..qmax, d_single [N]).

    The chi-square is taken over all integer bins, computed exactly on compressed bins: the
    observed histogram h_D is zero outside the (at most B) values a patch shows, and where
    h_D(x) = 0 the term (h_D - h)^2 / (h_D + h) is h(x), so all those bins can be merged into one
    (bin 0 of :func:`_bin_table`) without changing the sum. This keeps the histograms at most
    B + 1 bins wide whatever the range of the coefficient, and the result of a patch does not
    depend on the other patches of the batch. The single-compression histogram
    hist(round(U/q2)) is the simulation with q1 = q2 (round(round(u/q2) q2/q2) = round(u/q2)
    exactly in floating point), computed as one more candidate row."""
    lo, span, table, nbins = _bin_table(xo, skip_zero)
    ho = _hist(xo, lo, span, table, nbins)
    cand = np.append(np.arange(1, qmax + 1), q2k)
    hs = _hist(common.simulate_double(cal, cand, q2k), lo, span, table, nbins)
    # rounded so that float summation order cannot change a comparison
    d = np.round(_chi2(ho[:, None], hs, skip_zero), 10)
    return d[:, :-1], d[:, -1]


def decide(d: np.ndarray, d_single: np.ndarray, q2k: int, qmax: int, margin: float = MARGIN) -> np.ndarray:
    """Step 4 of the module docstring: best non-divisor candidate if it beats the
    single-compression hypothesis by ``margin`` (relative), else q2 (clipped to 1..qmax)."""
    cand = np.arange(1, qmax + 1)
    d = np.where(common.divides(cand, q2k)[None], np.inf, d)
    best = np.argmin(d, axis=1)
    dbest = d[np.arange(len(d)), best]
    fallback = min(max(q2k, 1), qmax)
    return np.where(dbest < (1.0 - margin) * d_single, cand[best], fallback).astype(np.int64)


def estimate_batch(patches: np.ndarray, q2: np.ndarray, nc: int = jpeg.NC, margin: float = MARGIN,
                   skip_zero: bool = False, chunk: int = CHUNK, qmax=None) -> np.ndarray:
    """Aligned Q1 estimates for a batch of patches [N,H,W] luma or [N,H,W,3] RGB uint8 (H, W >=
    16); ``q2``: 8x8 natural-order luminance table of the last compression. Returns int64
    [N, nc], zig-zag order, each clipped to 1..q_max(nc)[k] (or to the candidate range
    ``qmax`` [nc], e.g. the wide head's). Vectorized over patches and candidates (one DCT
    matrix product per chunk and grid, one bincount per coefficient)."""
    gray = common.luma_batch(patches)
    q2v = common.q2_vector(q2, nc)
    qmax = jpeg.q_max(nc) if qmax is None else np.asarray(qmax)[:nc]
    out = np.empty((len(gray), nc), dtype=np.int64)
    for sl in common.chunks(len(gray), chunk):
        obs, cal = common.observed_and_calibrated(gray[sl], nc)
        for k in range(nc):
            q2k, qm = int(q2v[k]), int(qmax[k])
            xo = np.rint(obs[:, :, k] / q2k).astype(np.int64)
            d, dsq = coefficient_scores(xo, cal[:, :, k], q2k, qm, skip_zero)
            out[sl, k] = decide(d, dsq, q2k, qm, margin)
    return out


def estimate(image_or_patch: np.ndarray, q2: np.ndarray, nc: int = jpeg.NC, **kw) -> np.ndarray:
    """One image or patch ((H,W) uint8 luma or (H,W,3) RGB uint8, converted with
    :func:`qpaper.jpeg.to_luma`): int64 [nc] first-compression steps in zig-zag order."""
    g = common.as_luma(image_or_patch)
    return estimate_batch(g[None], q2, nc, **kw)[0]
