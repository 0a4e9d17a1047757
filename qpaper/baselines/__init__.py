"""Model-based (non-CNN) estimators of the first-compression quantization matrix Q1 of a double
JPEG, used as baselines in the paper's tables: :mod:`.galvan` (reference [7], aligned) and
:mod:`.bianchi` (reference [5], aligned and non-aligned)."""
from __future__ import annotations

import numpy as np

from ..jpeg import NC

METHODS = ("galvan", "bianchi")


def predict_q1_baseline(method: str, patches, q2, nc: int = NC, aligned: bool | None = True,
                        **kw) -> np.ndarray:
    """Q1 estimates [N, nc] (int64, zig-zag, clipped to 1..q_max(nc)) of a model-based method
    for an evaluation: ``patches`` a dataset's [N,64,64,3] RGB (or [N,H,W] luma) uint8 array, or
    a list of such arrays (e.g. one per shard, concatenated in order); ``q2`` the 8x8 table of
    the last compression (for a dataset: ``qpaper.jpeg.standard_table(qf2)``). ``method``:
    "galvan" (aligned only) or "bianchi" (``aligned``: True, False or None = estimate the grid
    shift first)."""
    from . import bianchi, galvan

    if isinstance(patches, (list, tuple)):
        patches = np.concatenate([np.asarray(p) for p in patches])
    if method == "galvan":
        return galvan.estimate_batch(patches, q2, nc, **kw)
    if method == "bianchi":
        return bianchi.estimate_batch(patches, q2, nc, aligned=aligned, **kw)
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
