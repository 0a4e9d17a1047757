"""From a Q1 map to a tampering mask and its scores (Section 5.3): where each window of a map
sits in the image, what the map says inside a true region, the clustering of the per-position
Q1 vectors into a mask (the paper leaves it as future work; ours is :func:`cluster`), and F1,
MCC and AUC against the ground truth.
"""

from __future__ import annotations

import numpy as np

from . import jpeg
from .jpeg import PATCH


def window_grid(size, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left rows and columns of the 64x64 windows at ``stride``."""
    h, w = size
    return np.arange(0, h - PATCH + 1, stride), np.arange(0, w - PATCH + 1, stride)


def truth_at_windows(mask: np.ndarray, stride: int) -> np.ndarray:
    """The ground-truth label at the centre of every window."""
    ys, xs = window_grid(mask.shape, stride)
    return mask[np.ix_(ys + PATCH // 2, xs + PATCH // 2)]


def region_summary(qm: np.ndarray, mask: np.ndarray, stride: int, qf_background: int, label: int | None = None) -> dict:
    """What the map says inside a region of the ground truth (``mask == label``, or any donor):
    the share of window centres there answering the background's own first table, and the
    standard QF nearest to the median answer of the others (None when all match the background).
    Notebook 7 uses it to show why flat donors stay invisible (Section 5.3)."""

    truth = truth_at_windows(mask, stride)
    inside = truth > 0 if label is None else truth == label
    if not inside.any():
        raise ValueError("no window centre falls inside the region")
    vals = qm[inside]
    nc = vals.shape[-1]
    bg = jpeg.zigzag(jpeg.standard_table(qf_background))[:nc]
    as_bg = (vals == bg).all(axis=1)
    rest = vals[~as_bg]
    near = jpeg.nearest_tables(np.median(rest.astype(float), axis=0), nc)["qf"] if len(rest) else None
    return {"windows": int(inside.sum()), "as_background": float(as_bg.mean()), "nearest_qf_of_rest": near}



def step_contrast(qm: np.ndarray, mask: np.ndarray, stride: int, coefficients=(1, 6, 14)) -> dict:
    """How a map's donors stand out (the reading of Figure 12), per coefficient k: the background's
    usual step (the median over the windows centred outside every donor) and the share of the
    windows centred inside the donors, and outside them, that answer another step."""
    truth = truth_at_windows(mask, stride)
    out = {}
    for k in coefficients:
        m = qm[..., k - 1]
        usual = float(np.median(m[truth == 0]))
        out[k] = {"usual": usual, "inside": float(np.mean(m[truth > 0] != usual)),
                  "outside": float(np.mean(m[truth == 0] != usual))}
    return out


def to_pixels(m: np.ndarray, size, stride: int, rows: slice = slice(None)) -> np.ndarray:
    """A window map drawn at image size: each pixel takes the value of the nearest window centre.
    ``rows``: only those rows of the image (a band, to draw a large map in bounded memory)."""
    h, w = size
    ys, xs = window_grid(size, stride)
    iy = np.clip(np.rint((np.arange(h)[rows] - PATCH // 2) / stride), 0, len(ys) - 1).astype(int)
    ix = np.clip(np.rint((np.arange(w) - PATCH // 2) / stride), 0, len(xs) - 1).astype(int)
    return m[np.ix_(iy, ix)]


CHUNK = 1 << 15  # rows of a map whose distances are computed at once: memory stays O(positions), not O(positions x k)


def _sqdist(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Squared distances (n, len(c)) of the rows of ``x`` to the centres ``c``, a chunk of rows at a time."""
    out = np.empty((len(x), len(c)))
    for a in range(0, len(x), CHUNK):
        out[a:a + CHUNK] = ((x[a:a + CHUNK, None] - c[None]) ** 2).sum(-1)
    return out


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Plain k-means (k-means++ seeding from ``seed``): (labels, centres)."""
    rng = np.random.default_rng(seed)
    c = [x[rng.integers(len(x))]]
    d = _sqdist(x, np.array(c))[:, 0]
    for _ in range(1, k):
        c.append(x[rng.choice(len(x), p=d / d.sum())] if d.sum() > 0 else x[rng.integers(len(x))])
        d = np.minimum(d, _sqdist(x, np.array(c[-1:]))[:, 0])
    c = np.array(c, dtype=np.float64)
    for _ in range(iters):
        lab = _sqdist(x, c).argmin(axis=1)
        new = np.array([x[lab == j].mean(0) if (lab == j).any() else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return lab, c


def silhouette(x: np.ndarray, lab: np.ndarray, n: int = 600, seed: int = 0) -> float:
    """Mean silhouette on a seeded sample of at most ``n`` points."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x), min(n, len(x)), replace=False)
    xs, ls = x[idx], lab[idx]
    d = np.sqrt(((xs[:, None] - xs[None]) ** 2).sum(-1))
    s = []
    for i in range(len(xs)):
        same = ls == ls[i]
        if same.sum() < 2:
            s.append(0.0)
            continue
        a = d[i, same].sum() / (same.sum() - 1)
        b = min(d[i, ls == j].mean() for j in np.unique(ls) if j != ls[i]) if len(np.unique(ls)) > 1 else 0.0
        s.append((b - a) / max(a, b) if max(a, b) > 0 else 0.0)
    return float(np.mean(s))


def median3(qm: np.ndarray) -> np.ndarray:
    """3x3 median of every coefficient map (edges repeated), in the map's dtype: overlapping
    windows see almost the same pixels, so an isolated estimate that disagrees with its
    neighbours is noise. One coefficient at a time (memory: nine copies of one map, not of all)."""
    h, w = qm.shape[:2]
    out = np.empty_like(qm)
    for j in range(qm.shape[-1]):
        p = np.pad(qm[..., j], 1, mode="edge")
        stack = np.stack([p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)])
        out[..., j] = np.partition(stack, 4, axis=0)[4]  # the 5th of 9: the median, an element
    return out


def cluster(qm: np.ndarray, max_k: int = 4, seed: int = 0, smooth: bool = True) -> dict:
    """Tampering mask and donor labels from a Q1 map. The per-position vectors (log2 of the nc
    estimates, so that a step from 2 to 4 weighs like one from 8 to 16; after a 3x3 median,
    :func:`median3`, unless ``smooth`` is False) are clustered by k-means for k = 2..max_k; k is
    chosen by the silhouette, and k = 1 (no tampering found) when no k reaches a silhouette of
    0.25. The largest cluster is the background; the others are donors. The score for AUC is the
    distance of each position to the background's median vector."""
    m = median3(qm) if smooth and min(qm.shape[:2]) >= 3 else qm
    v = m.reshape(-1, qm.shape[-1]).astype(np.float64)
    np.log2(np.maximum(v, 1, out=v), out=v)  # in place: one float64 copy of the map at a time
    best = (0.25, 1, np.zeros(len(v), int))
    if (v != v[:1]).any():  # more than one distinct vector (np.unique would sort them all)
        for k in range(2, max_k + 1):
            lab, _ = kmeans(v, k, seed)
            if len(np.unique(lab)) < k:
                continue
            s = silhouette(v, lab, seed=seed)
            if s > best[0]:
                best = (s, k, lab)
    s, k, lab = best
    bg = np.bincount(lab).argmax()
    order = [bg] + [j for j in np.argsort(-np.bincount(lab, minlength=k)) if j != bg]
    labels = np.argsort(order)[lab]  # 0 = background, 1.. = clusters by size
    centre = np.median(v[labels == 0], axis=0)
    score = np.sqrt(_sqdist(v, centre[None])[:, 0])
    shape = qm.shape[:2]
    return {"k": int(k), "silhouette": round(float(s), 4), "labels": labels.reshape(shape),
            "mask": (labels > 0).reshape(shape), "score": score.reshape(shape)}


def match_labels(labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Cluster labels renumbered to the ground truth they overlap most, for drawing (cluster
    colours then match the truth's): pairs (cluster, true label) are taken greedily by overlap,
    each used once; a cluster left over gets a number above every true label. ``labels`` and
    ``truth`` are at the same positions (e.g. :func:`truth_at_windows`)."""
    labels, truth = np.asarray(labels), np.asarray(truth)
    cl, tl = np.unique(labels), np.unique(truth)
    overlap = np.array([[np.sum((labels == c) & (truth == t)) for t in tl] for c in cl])
    new, used_c, used_t = {}, set(), set()
    for i, j in sorted(np.ndindex(*overlap.shape), key=lambda ij: -overlap[ij]):
        if overlap[i, j] > 0 and i not in used_c and j not in used_t:
            new[cl[i]] = tl[j]
            used_c.add(i)
            used_t.add(j)
    spare = int(tl.max()) + 1
    for c in cl:
        if c not in new:
            new[c] = spare
            spare += 1
    return np.vectorize(new.get)(labels) if labels.size else labels


def donor_cover(found: np.ndarray, truth: np.ndarray) -> dict:
    """For each donor label d > 0 of ``truth`` (at window centres, :func:`truth_at_windows`), the
    share of its windows that the mask ``found`` marks, and under key 0 the share of background
    windows marked (false alarms)."""
    found, truth = np.asarray(found, bool), np.asarray(truth)
    return {int(d): float(found[truth == d].mean()) for d in np.unique(truth)}


def auc(score: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks); NaN if one class is empty."""
    s, t = np.asarray(score, float).ravel(), np.asarray(truth, bool).ravel()
    n1, n0 = int(t.sum()), int((~t).sum())
    if not n1 or not n0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # mid-ranks for ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[t].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def scores(pred_mask: np.ndarray, truth: np.ndarray, score: np.ndarray) -> dict:
    """F1 and MCC of a binary tampering mask, AUC of a continuous score, against the truth."""
    p, t = np.asarray(pred_mask, bool).ravel(), np.asarray(truth, bool).ravel()
    tp, fp = int((p & t).sum()), int((p & ~t).sum())
    fn, tn = int((~p & t).sum()), int((~p & ~t).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    den = np.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = (tp * tn - fp * fn) / den if den else 0.0
    return {"F1": round(f1, 4), "MCC": round(float(mcc), 4), "AUC": round(auc(score, truth), 4),
            "tampered_share": round(float(t.mean()), 4)}
