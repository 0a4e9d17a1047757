"""The fixed front end of the CPU-efficient estimator (``arch="dct"``, ours): what the first
compression left in the 8x8 block DCT, measured at every one of the 64 grid phases.

Section 2 of the paper: a coefficient quantized with step q1 takes values near multiples of q1,
on the grid of that compression. Its grid is unknown after a crop (the non-aligned case), so for
each phase (dy, dx) in 0..7 x 0..7 of a 64x64 window this layer takes the 7 x 7 whole blocks that
start at (dy + 8i, dx + 8j), computes their DCT (the JPEG transform of the luminance, level
shifted by 128) and, per zig-zag coefficient k < nc, the histogram of the rounded values. A
fixed matrix product turns each histogram into *comb strengths*: for every candidate step
q = 1..q_max[k] (:func:`candidates`), the mean of cos(2 pi v / q) over the blocks (1 when every
value is a multiple of q, about 0 for unquantized values). Phase 0 is the grid of the last
compression, where the windows are cut. The front end may read more coefficients than the
network estimates (the model's ``nf`` >= ``nc`` = 15).

Everything here is exact arithmetic with no trainable weight, written with ``keras.ops`` only
(TensorFlow, JAX or PyTorch). The values of one phase depend only on the blocks of that phase,
so :func:`dense_comb` can compute them once for every pixel position of a whole image and every
window takes its 64 phases from there: the dense map equals the per-window one.

- AC coefficients: rounded values in -SPAN..SPAN, one bin each, plus two overflow bins.
- DC: its values span -1024..1016, so the histogram is kept of its residues modulo
  :data:`DC_MODULI` (each candidate q = 1..16 divides one of them, so cos(2 pi v / q) is a
  function of that residue), and the comb strength is the modulus of the mean of
  exp(2 pi i v / q), which does not depend on the image's mean brightness.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .jpeg import NC, ZIGZAG, dct_matrix, q_max

GRID = 8
BLOCKS = 7  # whole blocks per row at every phase of a 64-pixel window
SPAN = 30  # AC values -30..30 get a bin each; beyond, one overflow bin per side
NB = 2 * SPAN + 3
DC_MODULI = (144, 70, 15, 11, 13)  # every q in 1..16 divides one of them
LUMA = (0.299, 0.587, 0.114)  # JPEG (JFIF) RGB -> Y
# Values are rounded with floor(v + HALF). The DC and the frequency-4 coefficients of integer
# gray levels are multiples of 1/8, so exact halves are common, and float32 (errors up to ~1e-3
# on DC here) must not decide them: HALF = 7/16 + 1/16000 puts the rounding edge 1/16 away from
# that lattice, and midway between the points of the 1/8000 lattice of RGB-weighted luminance.
HALF = 7 / 16 + 1 / 16000


def dct_kernels(nc: int = NC, channels: int = 3) -> np.ndarray:
    """Conv kernels [8, 8, channels, nc]: the JPEG DCT basis of the first nc zig-zag coefficients
    (``channels=3``: applied to RGB with the RGB -> Y weights folded in)."""
    d = dct_matrix()
    basis = np.einsum("ui,vj->uvij", d, d).reshape(64, 8, 8)[ZIGZAG[:nc]].transpose(1, 2, 0)
    w = np.array(LUMA) if channels == 3 else np.ones(1)
    return (basis[:, :, None, :] * w[None, None, :, None]).astype("float32")


def _dc_table(q: int) -> tuple[int, int]:
    """(index, offset) of the DC modulus that q divides, in the concatenated residue bins."""
    off = 0
    for m in DC_MODULI:
        if m % q == 0:
            return m, off
        off += m
    raise ValueError(f"no DC modulus is a multiple of {q}")


DC_MAX = 16  # the DC steps the moduli cover
MAX_STEP = 24  # candidate steps of a coefficient: 1..min(its QF 50 step, MAX_STEP)


def candidates(nc: int = NC, wide: bool = False) -> np.ndarray:
    """How many candidate steps each of the first nc zig-zag coefficients is tested for: its
    step in the QF 50 table (the paper's q_max for the 15 it estimates), at most MAX_STEP for
    the higher frequencies the front end may read beyond them. ``wide``: every AC coefficient
    1..MAX_STEP and the DC 1..16 (the wide head's range, :mod:`qpaper.tables`)."""
    if wide:
        return np.array([DC_MAX] + [MAX_STEP] * (nc - 1), dtype=np.int64)
    return np.minimum(q_max(nc), MAX_STEP)



def comb_tables(nc: int = NC, wide: bool = False) -> dict:
    """The fixed matrices that turn histograms into comb strengths: ``dc`` [sum(DC_MODULI),
    2 q_max[0]] (cos then sin of 2 pi r / q for each residue r), ``ac`` [NB, max q] (cos 2 pi
    v / q for v = -SPAN-1..SPAN+1, zero on the overflow bins, the same for every AC
    coefficient), and ``select``, the
    columns of the flattened AC strengths that are real candidates (:func:`candidates`)."""
    qm = candidates(nc, wide)
    dc = np.zeros((sum(DC_MODULI), 2 * qm[0]))
    for q in range(1, qm[0] + 1):
        m, off = _dc_table(q)
        r = np.arange(m)
        dc[off:off + m, q - 1] = np.cos(2 * np.pi * r / q)
        dc[off:off + m, qm[0] + q - 1] = np.sin(2 * np.pi * r / q)
    top = int(qm[1:].max())
    v = np.arange(-SPAN - 1, SPAN + 2)[:, None]
    cos = np.cos(2 * np.pi * v / np.arange(1, top + 1)[None])
    cos[[0, -1]] = 0.0
    select = np.concatenate([k * top + np.arange(qm[k + 1]) for k in range(nc - 1)])
    return {"dc": dc.astype("float32"), "ac": cos.astype("float32"), "select": select, "top": top}


def n_features(nc: int = NC, wide: bool = False) -> int:
    """Features per phase: the comb strengths of every (coefficient, candidate) pair (226 for
    nc = 15), the share of zero and of overflowing values of each AC coefficient, and a last
    one that is 1 on the grid of the last compression."""
    return int(candidates(nc, wide).sum()) + 2 * (nc - 1) + 1


def histogram(idx, bins: int):
    """Counts (float32) of the values 0..bins-1 in each row of an int32 matrix. TensorFlow has a
    batched bincount (DenseBincount, the fast path on CPU); other backends sum one-hot rows,
    which compiles under JAX's jit."""
    if keras.backend.backend() == "tensorflow":
        return ops.cast(ops.bincount(idx, minlength=bins), "float32")
    return ops.sum(ops.one_hot(idx, bins, dtype="float32"), axis=-2)


@keras.saving.register_keras_serializable(package="qpaper")
class PhaseHistograms(layers.Layer):
    """Pixels [B, 64, 64, C] (0..255, RGB or Y) -> the per-phase histograms of the first nc
    zig-zag DCT coefficients: DC residues [B, P, sum(DC_MODULI)] and AC values [B, P, nc-1, NB],
    as shares of the blocks. ``phases="all"``: the 64 phases, 7 x 7 blocks each; ``"grid"``:
    only the grid of the last compression, its 8 x 8 blocks."""

    def __init__(self, nc: int = NC, phases: str = "all", **kwargs):
        super().__init__(**kwargs)
        if phases not in ("all", "grid"):
            raise ValueError("phases must be all or grid")
        self.nc, self.phases = int(nc), phases
        self.n_phases, self.n_blocks = (GRID * GRID, BLOCKS * BLOCKS) if phases == "all" else (1, 64)
        k = dct_kernels(self.nc, 1)
        self._k_dc, self._k_ac = k[..., :1], k[..., 1:]
        self._offsets = np.cumsum((0,) + DC_MODULI[:-1]).astype("int32")

    def _blocks(self, c):
        """[B, H', W', n] at every position -> [B, P, n, blocks] grouped by phase."""
        n, p, b = c.shape[-1], self.n_phases, self.n_blocks
        if self.phases == "all":  # positions 0..55 = block i * 8 + phase dy
            c = ops.transpose(ops.reshape(c, (-1, BLOCKS, GRID, BLOCKS, GRID, n)), (0, 2, 4, 5, 1, 3))
        else:
            c = ops.transpose(c, (0, 3, 1, 2))
        return ops.reshape(c, (-1, p, n, b))

    def call(self, x):
        x = ops.cast(x, "float32")
        y = (ops.sum(x * np.array(LUMA, "float32"), axis=-1, keepdims=True) if x.shape[-1] == 3 else x) - 128.0
        if self.phases == "all":  # the blocks of all phases fit in the first 63 rows and columns
            y, stride = y[:, :BLOCKS * GRID + GRID - 1, :BLOCKS * GRID + GRID - 1], 1
        else:
            stride = GRID
        p, b = self.n_phases, self.n_blocks
        dc = ops.cast(ops.floor(ops.conv(y, self._k_dc, strides=stride, padding="valid") + HALF), "int32")
        dc = self._blocks(dc)[:, :, 0]
        res = ops.concatenate([ops.mod(dc, m) + o for m, o in zip(DC_MODULI, self._offsets)], axis=-1)
        hdc = histogram(ops.reshape(res, (-1, b * len(DC_MODULI))), sum(DC_MODULI))
        ac = ops.conv(y, self._k_ac, strides=stride, padding="valid")  # AC bin = floor(v + HALF) + SPAN + 1
        ac = self._blocks(ops.cast(ops.clip(ac + (SPAN + 1 + HALF), 0.0, NB - 0.5), "int32"))
        hac = histogram(ops.reshape(ac, (-1, b)), NB)
        return ops.reshape(hdc, (-1, p, sum(DC_MODULI))) / float(b), ops.reshape(hac, (-1, p, self.nc - 1, NB)) / float(b)

    def compute_output_shape(self, shape):
        return (shape[0], self.n_phases, sum(DC_MODULI)), (shape[0], self.n_phases, self.nc - 1, NB)

    def get_config(self):
        return {**super().get_config(), "nc": self.nc, "phases": self.phases}


@keras.saving.register_keras_serializable(package="qpaper")
class CombStrength(layers.Layer):
    """Histograms -> [B, P, n_features(nc)]: per phase, the comb strength of every candidate
    step of every coefficient (DC: modulus of the mean of exp(2 pi i v / q); AC: mean of
    cos(2 pi v / q)), the shares of zero and overflowing AC values, and the grid indicator.
    ``wide``: the candidates of :func:`candidates` with ``wide=True``."""

    def __init__(self, nc: int = NC, wide: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.nc, self.wide = int(nc), bool(wide)
        self._t = comb_tables(self.nc, self.wide)
        self._q0 = int(candidates(self.nc, self.wide)[0])

    def call(self, histograms):
        hdc, hac = histograms
        t = ops.matmul(hdc, self._t["dc"])
        dc = ops.sqrt(ops.square(t[..., :self._q0]) + ops.square(t[..., self._q0:]) + 1e-12)
        ac = ops.matmul(hac, self._t["ac"])  # the same table for every coefficient
        ac = ops.take(ops.reshape(ac, (-1, hac.shape[1], (self.nc - 1) * self._t["top"])), self._t["select"], axis=-1)
        grid = np.zeros((1, hac.shape[1], 1), "float32")
        grid[0, 0, 0] = 1.0
        zero, over = hac[..., SPAN + 1], hac[..., 0] + hac[..., -1]
        return ops.concatenate([dc, ac, zero, over, ops.zeros_like(zero[..., :1]) + grid], axis=-1)

    def compute_output_shape(self, shape):
        return (shape[1][0], shape[1][1], n_features(self.nc, self.wide))

    def get_config(self):
        return {**super().get_config(), "nc": self.nc, **({"wide": True} if self.wide else {})}


@keras.saving.register_keras_serializable(package="qpaper")
class PhasePool(layers.Layer):
    """[B, P, W] -> [B, 2W]: the maximum over the phases (the first grid, wherever it is) and the
    features of phase 0 (the grid of the last compression)."""

    def call(self, h):
        return ops.concatenate([ops.max(h, axis=1), h[:, 0]], axis=-1)

    def compute_output_shape(self, shape):
        return (shape[0], 2 * shape[2])


@keras.saving.register_keras_serializable(package="qpaper")
class GridHistogram(layers.Layer):
    """AC histograms [B, P, nf-1, NB] -> those of phase 0 of the first ``coefficients`` AC
    coefficients, flattened: the double-quantization pattern of the aligned case lives in the
    bins themselves, not only in their periods."""

    def __init__(self, coefficients: int = NC - 1, **kwargs):
        super().__init__(**kwargs)
        self.coefficients = int(coefficients)

    def call(self, hac):
        return ops.reshape(hac[:, 0, :self.coefficients], (-1, self.coefficients * hac.shape[3]))

    def compute_output_shape(self, shape):
        return (shape[0], self.coefficients * shape[3])

    def get_config(self):
        return {**super().get_config(), "coefficients": self.coefficients}


# ---------------------------------------------------------------------------------------------
# The same features at every pixel position of a whole image (numpy; localization)

def block_dct_everywhere(y: np.ndarray, nc: int = NC) -> np.ndarray:
    """[H-7, W-7, nc]: the DCT of the 8x8 block starting at every pixel of a luminance image
    (level shifted by 128), first nc zig-zag coefficients."""
    import cv2
    k = dct_kernels(nc, 1)[:, :, 0, :]
    out = np.empty((y.shape[0] - 7, y.shape[1] - 7, nc), np.float32)
    src = np.ascontiguousarray(y, dtype=np.float32) - np.float32(128.0)
    for j in range(nc):  # correlation with each basis image, anchored at the top-left corner
        out[..., j] = cv2.filter2D(src, cv2.CV_32F, k[:, :, j], anchor=(0, 0),
                                   borderType=cv2.BORDER_CONSTANT)[:-7, :-7]
    return out


def luma(rgb: np.ndarray) -> np.ndarray:
    """The luminance the model computes (float32), from RGB or Y pixels."""
    rgb = np.asarray(rgb, np.float32)
    return rgb[..., 0] if rgb.ndim == 3 and rgb.shape[-1] == 1 else rgb @ np.array(LUMA, np.float32)


def _box(a: np.ndarray, n: int = BLOCKS, step: int = GRID) -> np.ndarray:
    """Sum over the n x n positions at ``step`` starting at each anchor: out[s] = sum_{i,j}
    a[s + step (i, j)], for every anchor where they all fit."""
    h, w = a.shape[0] - step * (n - 1), a.shape[1] - step * (n - 1)
    r = sum(a[i * step:i * step + h] for i in range(n))
    return sum(r[:, j * step:j * step + w] for j in range(n))


def dense_comb(y: np.ndarray, nc: int = NC, origin: tuple[int, int] = (0, 0), dct: np.ndarray | None = None) -> np.ndarray:
    """[H-55, W-55, n_features] float32: :class:`CombStrength` of the 7 x 7 blocks anchored at
    every pixel of a luminance image, grid indicator set where both coordinates (plus
    ``origin``, where ``y`` is a crop) are multiples of 8: the file's grid. Window (wy, wx) at
    phase (dy, dx) reads anchor (wy + dy, wx + dx). ``dct``: :func:`block_dct_everywhere` of
    ``y`` when already computed."""
    c = block_dct_everywhere(y, nc) if dct is None else dct[..., :nc]
    t = comb_tables(nc)
    q0 = int(candidates(nc)[0])
    v = np.floor(c[..., 0] + HALF)
    ang = 2 * np.pi * v[..., None] / np.arange(1, q0 + 1)
    sdc = _box(np.concatenate([np.cos(ang), np.sin(ang)], -1).astype(np.float32)) / (BLOCKS * BLOCKS)
    parts = [np.sqrt(sdc[..., :q0] ** 2 + sdc[..., q0:] ** 2 + 1e-12)]
    bins = np.clip(np.floor(c[..., 1:] + HALF) + SPAN + 1, 0, NB - 1).astype(np.intp)  # [.., nc-1]
    qm = candidates(nc)
    zero, over = [], []
    for k in range(nc - 1):
        table = t["ac"][:, :qm[k + 1]]
        parts.append(_box(table[bins[..., k]]) / (BLOCKS * BLOCKS))
        zero.append(_box((bins[..., k] == SPAN + 1).astype(np.float32)) / (BLOCKS * BLOCKS))
        over.append(_box(((bins[..., k] == 0) | (bins[..., k] == NB - 1)).astype(np.float32)) / (BLOCKS * BLOCKS))
    f = np.concatenate(parts + [np.stack(zero, -1), np.stack(over, -1)], -1)
    grid = np.zeros(f.shape[:2] + (1,), np.float32)
    grid[(-origin[0]) % GRID::GRID, (-origin[1]) % GRID::GRID] = 1.0
    return np.concatenate([f, grid], -1).astype(np.float32)


def grid_histograms(y: np.ndarray, anchors: np.ndarray, nc: int = NC, dct: np.ndarray | None = None) -> np.ndarray:
    """[len(anchors), (nc-1) NB]: :class:`GridHistogram`'s AC histograms of the first nc-1 AC
    coefficients of the 7 x 7 blocks at each anchor (y, x)."""
    c = block_dct_everywhere(y, nc) if dct is None else dct[..., :nc]
    bins = np.clip(np.floor(c[..., 1:] + HALF) + SPAN + 1, 0, NB - 1).astype(np.intp)
    out = np.zeros((len(anchors), nc - 1, NB), np.float32)
    offs = np.arange(BLOCKS) * GRID
    for a, (sy, sx) in enumerate(anchors):
        b = bins[np.ix_(sy + offs, sx + offs)].reshape(-1, nc - 1)
        for k in range(nc - 1):
            out[a, k] = np.bincount(b[:, k], minlength=NB)
    return out.reshape(len(anchors), -1) / (BLOCKS * BLOCKS)
