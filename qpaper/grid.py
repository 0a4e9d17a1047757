"""Where a file's first compression put its 8x8 grid (paper, Section 4.2: the "non-aligned"
case, a crop between the two compressions shifts the first grid by (r, c)).

The first grid is the block-grid offset on which the DCT coefficients of the decoded luma lie
closest to a lattice: for each of the 63 offsets other than the last compression's own, the
comb strength |mean_b exp(2 pi i y_b / Q)| of the first ``kshift`` zig-zag coefficients, maximised
over the candidate periods Q, summed over coefficients. One search serves ``qpaper estimate``
(the file-level estimator, :mod:`qpaper.filelevel`), ``localize`` and the baselines [5], [7].

Conventions: an offset (dy, dx) is where the first grid starts in the final image; the
generator's (r, c) are the rows and columns cropped between the compressions, so
(dy, dx) = ((8 - r) % 8, (8 - c) % 8); (0, 0) is the aligned case.
"""
from __future__ import annotations

import numpy as np

from . import jpeg

KSHIFT = 6  # coefficients read by the search
SIDE = 768  # the search reads at most this square of the image's centre


def offset_to_rc(dy: int, dx: int) -> tuple[int, int]:
    """Grid offset (dy, dx) in the final image -> the generator's crop (r, c)."""
    return (8 - dy) % 8, (8 - dx) % 8


def rc_to_offset(r: int, c: int) -> tuple[int, int]:
    """The generator's crop (r, c) -> grid offset (dy, dx) in the final image."""
    return (8 - r) % 8, (8 - c) % 8


def centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    """At most a ``side`` square of the image's centre, starting on the 8x8 grid (every grid
    offset measured in it is the whole image's)."""
    h, w = image.shape[:2]
    y0, x0 = max(0, (h - side) // 16 * 8), max(0, (w - side) // 16 * 8)
    return image[y0:y0 + side, x0:x0 + side]


def grid_dct(gray: np.ndarray, dy: int, dx: int, nc: int = 64) -> np.ndarray:
    """DCT (level shift 128, zig-zag, first ``nc``) of the 8x8 blocks of one luma image [H, W] on
    the grid starting at (dy, dx): [B, nc] float64, the same (H - 7) // 8 x (W - 7) // 8 blocks
    at every offset (so offsets are compared on equal counts)."""
    g = np.asarray(gray, dtype=np.float64)[None]
    h, w = g.shape[1:]
    return jpeg.block_dct_batch(g, dy, dx, (h - 7) // 8, (w - 7) // 8, nc)[0]


PHASES = 1024  # comb strengths read phases to 1/PHASES of a turn (a table of cosines, no complex exp)
_TURN = np.exp(2j * np.pi * np.arange(PHASES) / PHASES)


def comb_strength(y: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """|mean_b exp(2 pi i y_b / Q)| for each period Q of ``periods`` (values y [B], or [B, K]
    with periods [K, P]: each column's own periods, [K, P] out): the phases are counted in
    PHASES bins per turn, so one bincount replaces B x Q complex exponentials."""
    y = np.asarray(y, dtype=np.float64)
    Q = np.asarray(periods, dtype=np.float64)
    one = y.ndim == 1
    if one:
        y, Q = y[:, None], Q[None]
    ph = y[:, :, None] * (PHASES / Q)[None]  # [B, K, P]
    ph += 0.5 + _POSITIVE  # a whole number of turns: truncation below is floor, the phase unchanged
    idx = ph.astype(np.int64)
    idx &= PHASES - 1
    idx += (np.arange(Q.size) * PHASES).reshape(Q.shape)[None]
    counts = np.bincount(idx.ravel(), minlength=Q.size * PHASES).reshape(Q.size, PHASES)
    out = (np.abs(counts @ _TURN) / max(len(y), 1)).reshape(Q.shape)
    return out[0] if one else out


_POSITIVE = float(PHASES << 20)


def grid_scores(gray: np.ndarray, kshift: int = KSHIFT, progress=None) -> np.ndarray:
    """Comb strength [8, 8] of every block-grid offset (dy, dx) of one luma image [H, W]:
    sum over the first ``kshift`` coefficients of max over Q in 2..q_max of
    |mean_b exp(2 pi i y_b / Q)| (:func:`comb_strength`); one offset at a time, so memory stays
    bounded."""
    qmax = jpeg.q_max(kshift)
    P = int(qmax.max()) - 1
    periods = np.stack([np.arange(2, P + 2) for _ in range(kshift)]).astype(np.float64)  # [K, P]
    valid = periods <= qmax[:, None]
    out = np.zeros(64)
    for o in range(64):
        s = comb_strength(grid_dct(gray, o // 8, o % 8, kshift), periods)
        out[o] = np.where(valid, s, 0.0).max(axis=1).sum()
        if progress:
            progress(1)
    return out.reshape(8, 8)


def find_grid(luma: np.ndarray, kshift: int = KSHIFT, side: int = SIDE,
              progress=None) -> tuple[tuple[int, int], float]:
    """The shifted first grid of a whole file (luma [H, W]), if one stands out: ((r, c) in the
    generator's convention, confidence). Among the 63 offsets other than the last compression's
    own, the best comb strength above the median is compared with the runner-up's: confidence
    1 - (second - median) / (best - median), near 1 when one offset stands alone (a first
    compression on it), near 0 when none does (aligned, single-compressed or no trace). Reads
    at most a ``side`` square of the image's centre, cut on the 8x8 grid."""
    s = grid_scores(centre_crop(luma, side), kshift, progress).reshape(64)[1:]
    order = np.argsort(-s, kind="stable")
    med = float(np.median(s))
    best, second = s[order[0]] - med, s[order[1]] - med
    conf = float(np.clip(1 - second / best, 0, 1)) if best > 0 else 0.0
    o = int(order[0]) + 1
    return offset_to_rc(o // 8, o % 8), conf


def grid_dct_all(gray: np.ndarray, dy: int, dx: int, nc: int = 64) -> np.ndarray:
    """DCT (level shift 128, zig-zag, first ``nc``) of every whole 8x8 block of one luma image
    [H, W] on the grid starting at (dy, dx), row by row of blocks: [B, nc] float64."""
    return jpeg.block_dct_batch(np.asarray(gray, dtype=np.float64)[None], dy, dx, nc=nc)[0]
