"""Why Q1 shows through a second compression (Section 1 and 2 of the paper): the histogram of a
DCT coefficient of a JPEG image, after one compression and after two.

After one compression at step q2, the k-th DCT coefficient of every 8x8 block is a multiple of
q2. When the image was compressed before at step q1, its values were multiples of q1 first, and
re-quantizing them at q2 leaves a periodic pattern (a "comb": empty or over-full bins) whose
period tells q1. When the second grid is shifted (non-aligned), the blocks of the first
compression are cut and the comb is gone from the histogram, though not from the pixels.
"""

from __future__ import annotations

import numpy as np

from . import jpeg
from .jpeg import block_dct


def compress_gray(gray: np.ndarray, qf1: int | None, qf2: int, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A grayscale image compressed at ``qf1`` (skipped when None), cropped by ``shift`` = (r, c)
    rows and columns (the grid shift), and compressed at ``qf2``; returns the decoded image."""
    img = gray
    if qf1 is not None:
        img = jpeg.decode(jpeg.encode_opencv(gray, qf1), gray=True)
    r, c = shift
    img = np.ascontiguousarray(img[r:, c:])
    return jpeg.decode(jpeg.encode_opencv(img, qf2), gray=True)


def coefficient_histogram(decoded: np.ndarray, k: int, q2: int, span: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of the k-th zig-zag DCT coefficient (k = 0 is DC) of a decoded JPEG, in units of
    its quantization step ``q2``: bins -span..span, counts."""
    v = np.rint(block_dct(decoded)[:, k] / q2).astype(np.int64)
    bins = np.arange(-span, span + 1)
    counts = np.array([(v == b).sum() for b in bins])
    return bins, counts


def comb_demo(gray: np.ndarray, qf1: int = 70, qf2: int = 90, k: int = 2, shift=(3, 5)) -> dict:
    """The three histograms of notebook 1: single compression at qf2, aligned double (qf1 then
    qf2) and non-aligned double (grid shifted by ``shift``), with q1 and q2 of coefficient k."""
    q1 = int(jpeg.zigzag(jpeg.standard_table(qf1))[k])
    q2 = int(jpeg.zigzag(jpeg.standard_table(qf2))[k])
    out = {"q1": q1, "q2": q2, "k": k}
    for name, (a, s) in {"single": (None, (0, 0)), "aligned": (qf1, (0, 0)), "non-aligned": (qf1, shift)}.items():
        out[name] = coefficient_histogram(compress_gray(gray, a, qf2, s), k, q2)
    return out


def phase_comb(gray: np.ndarray, qf1: int = 60, qf2: int = 90, shift=(3, 5), coefficients=range(5, jpeg.NC)) -> dict:
    """What the block-DCT backbone (:mod:`qpaper.dctfeatures`) sees of a double JPEG: for each of
    the 64 grid phases (dy, dx), the comb strength at q1 and at q2, averaged over the listed
    zig-zag coefficients and over every position of that phase in the image. The first grid
    lights up at phase ((-r) % 8, (-c) % 8), the last one at (0, 0)."""
    from .dctfeatures import dense_comb
    img = compress_gray(gray, qf1, qf2, shift)
    f = dense_comb(img.astype(np.float32))
    start = np.concatenate([[0], np.cumsum(jpeg.q_max())])
    out = {"shift": tuple(shift), "first_grid_phase": ((-shift[0]) % 8, (-shift[1]) % 8)}
    for name, qf in (("q1", qf1), ("q2", qf2)):
        q = jpeg.zigzag(jpeg.standard_table(qf))[:jpeg.NC]
        cols = [start[k] + q[k] - 1 for k in coefficients]
        v = f[..., cols].mean(-1)
        h, w = v.shape[0] // 8 * 8, v.shape[1] // 8 * 8
        out[name] = v[:h, :w].reshape(h // 8, 8, w // 8, 8).mean(axis=(0, 2))
    return out


def comb_by_hand(q1: int, q2: int, span: int = 10) -> dict:
    """Section 2 by arithmetic, no image: a DCT value first rounded to a multiple of ``q1``, then
    (decoded, ignoring the pixel rounding) to a multiple of ``q2``, lands on bin round(m q1 / q2)
    for an integer m. {"reached": the bins in -span..span that some m reaches, "empty": those no
    m reaches, "from": bin -> the multiples m q1 that land on it}. The empty bins are the comb's
    gaps; when q1 divides q2 or q1 <= q2 every bin stays reachable (no trace of q1)."""
    land = {}
    for m in range(-(span * q2) // q1 - 2, (span * q2) // q1 + 3):
        x = m * q1 / q2
        b = int(np.sign(x) * np.floor(abs(x) + 0.5))  # the quantizer rounds half away from zero
        if -span <= b <= span:
            land.setdefault(b, []).append(m * q1)
    bins = range(-span, span + 1)
    return {"reached": [b for b in bins if b in land], "empty": [b for b in bins if b not in land],
            "from": {b: land[b] for b in sorted(land)}}
