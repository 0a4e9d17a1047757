"""Loss functions (Section 3): L, Eq. (1), and the refined L^r, Eq. (5), written with ``keras.ops``.

``y_true`` holds the first nc zig-zag Q1 values (1..q_max[i]; see :func:`clip_labels`), ``y_pred``
the concatenated block softmaxes of :class:`qpaper.model.BlockSoftmax`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .jpeg import NC, blocks, q_max
from .tables import wide_sizes

DISTANCES = ("abs", "squared")
C = 0.8  # Section 3.2: the weight of the cross-entropy in L^r (the rest on the expected distance)
EPS = 1e-7


def clip_labels(q1, nc: int = NC, sizes=None) -> tuple[np.ndarray, int]:
    """First ``nc`` zig-zag values clipped to [1, q_max[i]] (QF1 below 50 exceeds q_max), and how
    many values were clipped. ``sizes``: the class counts of another head (the wide head's last
    class is "at least R_i + 1": a step above R_i is that class, not an error)."""
    q = np.asarray(q1)[:, :nc].astype(np.int64)
    clipped = np.clip(q, 1, q_max(nc) if sizes is None else np.asarray(sizes)[:nc])
    return clipped, int((clipped != q).sum())


def block_terms(y_true, y_pred, sizes, distance: str | None = "abs"):
    """The two terms of Eq. (5) per patch: the cross-entropy averaged over the blocks (L, Eq. 1)
    and the expected distance f(x)^T d_y summed over them (0 when ``distance`` is None). Apart so
    that a training loop may weigh them with a c that changes during training (:mod:`qpaper.fastfit`)."""
    q = ops.cast(y_true, "int32")
    ce, dist = 0.0, 0.0
    for i, (a, b) in enumerate(blocks(sizes)):
        p, s = y_pred[:, a:b], b - a
        label = q[:, i] - 1
        onehot = ops.one_hot(label, s, dtype=p.dtype)
        ce = ce - ops.sum(onehot * ops.log(ops.clip(p, EPS, 1.0)), axis=-1)
        if distance is not None:
            j = ops.cast(ops.arange(s), p.dtype)[None, :]
            d = ops.abs(j - ops.cast(label, p.dtype)[:, None])
            if distance == "squared":
                d = d * d
            dist = dist + ops.sum(p * d, axis=-1)
    return ce / len(sizes), dist


@keras.saving.register_keras_serializable(package="qpaper")
class BlockLoss(keras.losses.Loss):
    """L (``c=None``): -(1/nc) sum_i sum_j y_ij log f_ij -- Eq. (1) printed without its minus sign.
    L^r (``c`` in (0, 1)): c L + (1 - c) f(x)^T d_y, Eq. (5), the second term summed over all
    blocks as written, with (d_y,i)_j = |j - q_1,i| (``distance="abs"``, the paper) or its square
    (``distance="squared"``, the authors' code)."""

    def __init__(self, c: float | None = None, distance: str = "abs", nc: int = NC, name: str | None = None,
                 sizes=None, **kwargs):
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}")
        if c is not None and not 0 < c < 1:
            raise ValueError("c must be in (0, 1)")
        super().__init__(name=name or ("Lr" if c is not None else "L"), **kwargs)
        self.c, self.distance, self.nc = c, distance, int(nc)
        self.sizes = [int(s) for s in (q_max(nc) if sizes is None else sizes)]

    def call(self, y_true, y_pred):
        ce, dist = block_terms(y_true, y_pred, self.sizes, self.distance if self.c is not None else None)
        return ce if self.c is None else self.c * ce + (1.0 - self.c) * dist

    def get_config(self):
        return {"c": self.c, "distance": self.distance, "nc": self.nc, "name": self.name,
                "reduction": self.reduction, "sizes": self.sizes}


def get_loss(head: str, loss: str = "Lr", distance: str = "abs", regression_loss: str = "mse", c: float = C,
             nc: int = NC):
    """The loss of a head: ``L`` or ``Lr`` for the class head; MSE (the paper's [10]) or log-cosh
    (the released code of [10]) for the regression head."""
    if head in ("class", "wide"):
        if loss not in ("L", "Lr"):
            raise ValueError("loss must be L or Lr")
        return BlockLoss(c if loss == "Lr" else None, distance, nc, sizes=wide_sizes(nc) if head == "wide" else None)
    if regression_loss == "mse":
        return keras.losses.MeanSquaredError()
    if regression_loss == "logcosh":
        return keras.losses.LogCosh()
    raise ValueError("regression loss must be mse or logcosh")
