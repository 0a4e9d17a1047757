"""Shared numpy helpers of the model-based Q1 estimators (:mod:`.galvan`, :mod:`.bianchi`).

Everything is batched over patches: a batch is a ``[N, H, W]`` uint8 luma array and the DCT of
all 8x8 blocks of all patches is one matrix product with the 64x64 Kronecker DCT basis. Coefficients are indexed in zig-zag order
(k = 0 is DC), as in :mod:`qpaper.jpeg`.

Calibration (used by both papers): the DCT computed on a grid shifted by 4 pixels in both
directions (the patch cropped by 4 rows and 4 columns) is, for a JPEG image, close to the DCT of
the never-compressed image, because the blocks straddle four blocks of the JPEG grid and the
quantization lattice is no longer visible. On a 64x64 patch this leaves 7x7 = 49 calibration
blocks against 8x8 = 64 observed ones; the histograms are normalised, so only the sampling noise
differs.
"""
from __future__ import annotations

import cv2
import numpy as np

from .. import jpeg
from ..jpeg import SNAP_BITS, block_dct_batch  # noqa: F401 (block_dct_batch: shared by the baselines)


def luma_batch(patches: np.ndarray) -> np.ndarray:
    """[N,H,W] or [N,H,W,1] uint8 -> [N,H,W]; [N,H,W,3] RGB -> luma exactly as
    :func:`qpaper.jpeg.to_luma` (OpenCV RGB->YCrCb), in one OpenCV call for the whole batch."""
    p = np.asarray(patches)
    if p.ndim == 4 and p.shape[-1] == 1:
        p = p[..., 0]
    if p.ndim == 3:
        return p
    if p.ndim != 4 or p.shape[-1] != 3:
        raise ValueError(f"expected [N,H,W], [N,H,W,1] or [N,H,W,3] patches, got {p.shape}")
    n, h, w, _ = p.shape
    y = cv2.cvtColor(np.ascontiguousarray(p.reshape(n * h, w, 3)), cv2.COLOR_RGB2YCrCb)[:, :, 0]
    return y.reshape(n, h, w)


def as_luma(image: np.ndarray) -> np.ndarray:
    """One image: (H,W) uint8 luma, (H,W,1) or (H,W,3) RGB -> (H,W) luma via jpeg.to_luma."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3:
        a = jpeg.to_luma(a)
    if a.ndim != 2:
        raise ValueError(f"expected (H,W) or (H,W,3), got {a.shape}")
    return a


def observed_and_calibrated(gray: np.ndarray, nc: int) -> tuple[np.ndarray, np.ndarray]:
    """Aligned case: the DCT on the grid of the last compression (observed, [N, B, nc]) and on
    the grid shifted by (4, 4) (calibrated, [N, B', nc])."""
    obs = block_dct_batch(gray, nc=nc)
    cal = block_dct_batch(gray, 4, 4, nc=nc)
    return obs, cal


def q2_vector(q2: np.ndarray, nc: int) -> np.ndarray:
    """8x8 natural-order table (or an already zig-zag vector of >= nc values) -> first nc
    zig-zag steps, int64."""
    q = np.asarray(q2)
    v = jpeg.zigzag(q) if q.shape == (8, 8) else q.reshape(-1)
    return np.asarray(v[:nc], dtype=np.int64)


def bincount_rows(idx: np.ndarray, nbins: int) -> np.ndarray:
    """Histogram of each row of an integer array ``idx[..., samples]`` whose values are already
    in 0..nbins-1: returns float64 [..., nbins] (one ``np.bincount`` for the whole batch)."""
    lead = idx.shape[:-1]
    rows = int(np.prod(lead)) if lead else 1
    flat = idx.reshape(rows, -1) + (np.arange(rows) * nbins)[:, None]
    h = np.bincount(flat.ravel(), minlength=rows * nbins).astype(np.float64)
    return h.reshape(*lead, nbins)


def simulate_double(cal: np.ndarray, q1s: np.ndarray, q2: int) -> np.ndarray:
    """Quantization indices of the second compression simulated from calibrated coefficients
    ``cal`` [N, B] for every candidate step in ``q1s`` [Q]: round(round(c/q1)*q1/q2) ->
    [N, Q, B] int64 (round half to even, as ``np.rint``; the IJG encoder rounds half away from
    zero, a difference of measure zero on real-valued DCT coefficients)."""
    q1s = np.asarray(q1s, dtype=np.float64)[None, :, None]
    c = cal[:, None, :]
    return np.rint(np.rint(c / q1s) * q1s / q2).astype(np.int64)


def divides(a: np.ndarray, b: int) -> np.ndarray:
    """Boolean mask: a divides b (the candidates that make double quantization by (a, b)
    indistinguishable from single quantization by b)."""
    a = np.asarray(a)
    return (b % a) == 0


def chunks(n: int, size: int):
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


# ---------------------------------------------------------------------------------------------
# Smoothed distribution of the calibrated (approximately never-quantized) coefficients

def smoothed_cdf(cal: np.ndarray, T: int, sigma: float = 1.0) -> np.ndarray:
    """Kernel estimate of the distribution p_U of unquantized coefficients from calibrated
    samples ``cal`` [..., B]: a histogram on the half-integer grid t_j = -T + j/2 (j = 0..4T)
    blurred by a Gaussian of std ``sigma`` (coefficient units) and cumulated. Returns the
    exclusive CDF ``F[..., j] = P(U < t_j)`` [..., 4T+2]; mass([a, b)) = F[j(b)] - F[j(a)] for
    a, b on the half grid (see :func:`grid_index`)."""
    from scipy.ndimage import gaussian_filter1d

    g = 4 * T + 1
    idx = np.clip(np.rint(2.0 * (cal + T)).astype(np.int64), 0, g - 1)
    h = bincount_rows(idx, g)
    if sigma > 0:
        h = gaussian_filter1d(h, 2.0 * sigma, axis=-1, mode="constant", truncate=3.0)
    h /= np.maximum(h.sum(axis=-1, keepdims=True), 1e-12)
    F = np.zeros(h.shape[:-1] + (g + 1,))
    np.cumsum(h, axis=-1, out=F[..., 1:])
    return F


def grid_index(t: np.ndarray, T: int) -> np.ndarray:
    """Index into :func:`smoothed_cdf` of half-grid points t (clipped to the grid)."""
    return np.clip(np.rint(2.0 * (np.asarray(t, dtype=np.float64) + T)).astype(np.int64), 0, 4 * T + 1)




def _kernel_radius(sigma: float) -> int:
    """Half-width in bins of the kernel of :func:`smoothed_cdf` (as ``gaussian_filter1d``)."""
    return int(3.0 * 2.0 * sigma + 0.5) if sigma > 0 else 0


def window_groups(cal: np.ndarray, sigma: float = 1.0, min_width: int = 64) -> list:
    """Rows of ``cal`` [N, B] grouped by the width of their :func:`windowed_cdf` window rounded
    up to a power of two (at least ``min_width``): a group's windows fit in one array with
    little padding, so one row with a wide range does not widen the whole batch."""
    b = np.rint(2.0 * cal)
    ext = (b.max(axis=-1) - b.min(axis=-1)).astype(np.int64) + 2 * _kernel_radius(sigma) + 2
    width = np.maximum(1 << np.ceil(np.log2(np.maximum(ext, 1))).astype(np.int64), min_width)
    return [np.nonzero(width == w)[0] for w in np.unique(width)]


def windowed_cdf(cal: np.ndarray, sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`smoothed_cdf` restricted to the window of each row where the smoothed histogram
    can be non-zero. ``cal`` [N, B]; returns (F [N, W+1], lo [N]): F[n, i] = P(U < (lo[n] + i) / 2),
    i = 0..W, with lo[n] the row's smallest sample bin (2 c rounded, as in
    :func:`smoothed_cdf`) minus the kernel radius and W the widest row window. Below the window
    the CDF is 0, above it the row's total: see :func:`cdf_at`.

    Same values as :func:`smoothed_cdf` on any grid that holds the samples and the kernel
    (the blur of a bin and the cumulated sum do not depend on where the window sits; beyond
    the support the full-grid CDF only adds exact zeros) up to the last bit of the normalising
    sum, whose pairwise summation order depends on the row length (as it does on the full grid,
    whose width depends on the batch's largest value). Use :func:`window_groups` to batch rows
    of similar width."""
    from scipy.ndimage import gaussian_filter1d

    b = np.rint(2.0 * cal).astype(np.int64)
    rad = _kernel_radius(sigma)
    lo = b.min(axis=-1) - rad
    w = int((b.max(axis=-1) + rad - lo).max()) + 1
    h = bincount_rows(b - lo[:, None], w)
    if sigma > 0:
        h = gaussian_filter1d(h, 2.0 * sigma, axis=-1, mode="constant", truncate=3.0)
    h /= np.maximum(h.sum(axis=-1, keepdims=True), 1e-12)
    F = np.zeros(h.shape[:-1] + (w + 1,))
    np.cumsum(h, axis=-1, out=F[..., 1:])
    return F, lo


def cdf_at(F: np.ndarray, lo: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Values of a :func:`windowed_cdf` (F [N, W+1], lo [N]) at the integer half-grid indices
    ``a`` [N, ...] (the points a / 2): 0 below the window, the row's total above it."""
    n, m = F.shape
    shape = (n,) + (1,) * (a.ndim - 1)
    i = a - lo.reshape(shape)
    np.clip(i, 0, m - 1, out=i)
    i += (np.arange(n, dtype=np.int64) * m).reshape(shape)
    return np.ascontiguousarray(F).ravel()[i]
