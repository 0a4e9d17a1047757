"""Does a confidence of 0.8 mean right 8 times in 10? The reliability diagram and the expected
calibration error (Guo et al., "On calibration of modern neural networks", ICML 2017) of the
any-QF2 model's per-coefficient confidence (issue 21)."""

from __future__ import annotations

import numpy as np
import pandas as pd

BINS = 10  # equal-width confidence bins of the reliability diagram and the ECE


def reliability(conf, correct, bins: int = BINS) -> pd.DataFrame:
    """Per equal-width confidence bin: count, mean confidence, accuracy (the reliability
    diagram)."""
    conf, correct = np.asarray(conf, float).ravel(), np.asarray(correct, float).ravel()
    k = np.minimum((conf * bins).astype(int), bins - 1)
    rows = [{"bin": b, "lo": b / bins, "hi": (b + 1) / bins, "count": int((k == b).sum()),
             "confidence": float(conf[k == b].mean()) if (k == b).any() else np.nan,
             "accuracy": float(correct[k == b].mean()) if (k == b).any() else np.nan} for b in range(bins)]
    return pd.DataFrame(rows)


def ece_of(table: pd.DataFrame) -> float:
    """Expected calibration error of a :func:`reliability` table: sum over bins of (share of
    answers) x |accuracy - mean confidence|."""
    r = table[table["count"] > 0]
    return float((r["count"] * (r["accuracy"] - r["confidence"]).abs()).sum() / r["count"].sum())


def ece(conf, correct, bins: int = BINS) -> float:
    """Expected calibration error of confidences against right (1) / wrong (0) answers."""
    return ece_of(reliability(conf, correct, bins))
