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
  normalised histograms over all bins (computed exactly on a per-patch window, see
  :func:`coefficient_scores`); the zero bin is kept (``skip_zero`` drops it).
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


def _hist(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, width: int) -> np.ndarray:
    """Normalised histograms of x [N, ..., S] on the per-patch window lo[N] .. hi[N] (values
    outside merged into the two end bins), stored in ``width`` >= max(hi - lo + 1) bins."""
    shp = (len(x),) + (1,) * (x.ndim - 1)
    h = common.bincount_rows(np.clip(x, lo.reshape(shp), hi.reshape(shp)) - lo.reshape(shp), width)
    return h / np.maximum(h.sum(axis=-1, keepdims=True), 1.0)


def _chi2(a: np.ndarray, b: np.ndarray, zero: np.ndarray | None) -> np.ndarray:
    s = a + b
    d = np.where(s > 0, (a - b) ** 2 / np.where(s > 0, s, 1.0), 0.0)
    if zero is not None:  # drop the bin of x = 0 (``skip_zero``)
        ok = (zero >= 0) & (zero < d.shape[-1])
        idx = np.clip(zero, 0, d.shape[-1] - 1).reshape((len(d),) + (1,) * (d.ndim - 1))
        np.put_along_axis(d, idx, np.where(ok.reshape(idx.shape), 0.0, np.take_along_axis(d, idx, -1)), -1)
    return d.sum(axis=-1)


def coefficient_scores(xo: np.ndarray, cal: np.ndarray, q2k: int, qmax: int, skip_zero: bool = False):
    """Distances of one coefficient for a batch: ``xo`` [N,B] observed indices, ``cal`` [N,B']
    calibrated coefficients. Returns (d [N, qmax] for candidates 1..qmax, d_single [N]).

    The histograms are computed on each patch's window [min(xo) - 1, max(xo) + 1]: the observed
    histogram is zero outside [min, max], and for a zero observed bin the chi-square term is the
    simulated mass, so merging everything outside into the two end bins gives exactly the
    chi-square over all bins (and the batch result does not depend on the other patches)."""
    lo, hi = xo.min(axis=1) - 1, xo.max(axis=1) + 1
    width = int((hi - lo).max()) + 1
    ho = _hist(xo, lo, hi, width)
    hs = _hist(common.simulate_double(cal, np.arange(1, qmax + 1), q2k), lo, hi, width)
    hsq = _hist(np.rint(cal / q2k).astype(np.int64), lo, hi, width)
    zero = -lo if skip_zero else None
    # rounded so that float summation order (window width) cannot change a comparison
    return np.round(_chi2(ho[:, None], hs, zero), 10), np.round(_chi2(ho, hsq, zero), 10)


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
                   skip_zero: bool = False, chunk: int = CHUNK) -> np.ndarray:
    """Aligned Q1 estimates for a batch of patches [N,H,W] luma or [N,H,W,3] RGB uint8 (H, W >=
    16); ``q2``: 8x8 natural-order luminance table of the last compression. Returns int64
    [N, nc], zig-zag order, each clipped to 1..q_max(nc)[k]. Vectorized over patches (one DCT
    einsum and one bincount per coefficient and chunk)."""
    gray = common.luma_batch(patches)
    q2v = common.q2_vector(q2, nc)
    qmax = jpeg.q_max(nc)
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
