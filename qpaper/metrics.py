"""Section 5 metrics: per patch, accuracy (share of the nc coefficients exactly right) and MSE (mean
of the nc squared errors); per QF1, means over patches; AvgAcc and AvgMSE, means over QF1 values
with equal weight."""

from __future__ import annotations

import numpy as np
import pandas as pd


def patch_accuracy(q_true, q_hat) -> np.ndarray:
    return (np.asarray(q_true) == np.asarray(q_hat)).mean(axis=1)


def patch_mse(q_true, q_hat) -> np.ndarray:
    d = np.asarray(q_true, dtype=np.float64) - np.asarray(q_hat, dtype=np.float64)
    return (d * d).mean(axis=1)


def per_qf1(q_true, q_hat, qf1) -> pd.DataFrame:
    """Accuracy and MSE averaged over the patches of each QF1, with counts."""
    df = pd.DataFrame({"qf1": np.asarray(qf1), "acc": patch_accuracy(q_true, q_hat),
                       "mse": patch_mse(q_true, q_hat)})
    return df.groupby("qf1", sort=False).agg(acc=("acc", "mean"), mse=("mse", "mean"),
                                             patches=("acc", "size")).reset_index()


def averages(table: pd.DataFrame) -> tuple[float, float]:
    """AvgAcc and AvgMSE: each QF1 weighs the same."""
    return float(table["acc"].mean()), float(table["mse"].mean())
