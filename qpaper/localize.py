"""Tampering localization (Section 5.3): maps of estimated Q1 coefficients on sliding 64x64
windows, synthetic splices to score them, and a clustering of the per-position Q1 vectors into a
tampering mask (the paper leaves the clustering as future work; ours is described in
:func:`cluster`).

QM(i, j, :) is the estimate for the window whose top-left corner is (i s, j s) at stride s;
position (i, j) stands for the pixel at the window's centre (i s + 32, j s + 32).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import jpeg
from .jpeg import NC, PATCH


# ---------------------------------------------------------------------------------------------
# Synthetic splices

@dataclass
class Splice:
    jpeg: bytes  # the final file (QF2)
    mask: np.ndarray  # int8 [H, W]: 0 background, k = donor k (1, 2, ...)
    qf1: list  # QF1 of the background, then of each donor (None: never compressed before)
    qf2: int
    shift: tuple  # grid shift (r, c) of the final compression relative to the background's first


TEXTURE_MIN = 6.0  # grey levels: the least texture of a donor rectangle a forger would paste


def texture(rgb: np.ndarray) -> float:
    """Mean over the 8x8 blocks of a region of the standard deviation of their luminance: about
    0 on a flat area (whose DCT has no AC value, so no trace of any Q1), 10-30 on textured ones."""
    y = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    h, w = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
    return float(y[:h, :w].reshape(h // 8, 8, w // 8, 8).std(axis=(1, 3)).mean())


def make_splice(background: np.ndarray, donors: list, qf1_bg: int, qf1_donors: list, qf2: int = 90,
                seed: int = 0, region: float = 0.22, texture_min: float = TEXTURE_MIN) -> Splice:
    """A forgery in the paper's scenario (Section 5.3, Figure 12): the background compressed at
    ``qf1_bg``; from each donor (compressed at its QF1, or never compressed when None: footnote
    3) a rectangle of about ``region`` of the image side, cut at a position that is not on its
    8x8 grid and where the donor has at least ``texture_min`` of :func:`texture` (the first of
    up to 100 seeded positions that has it, else the most textured of them), pasted at a
    position that is not on the background's grid; the composite cropped by a misaligned (r, c)
    and compressed at ``qf2``. Regions do not overlap. Deterministic in ``seed``."""
    if len(donors) != len(qf1_donors) or not donors:
        raise ValueError("one QF1 (or None) per donor")
    rng = np.random.default_rng([seed, 0x5B11CE])
    bg = jpeg.decode(jpeg.encode_opencv(background, qf1_bg))
    H, W = bg.shape[:2]
    mask = np.zeros((H, W), np.int8)
    side = int(region * min(H, W))
    placed = []
    for k, (donor, q) in enumerate(zip(donors, qf1_donors), 1):
        d = donor if q is None else jpeg.decode(jpeg.encode_opencv(donor, q))
        h = w = side + int(rng.integers(-side // 5, side // 5 + 1))
        for _ in range(200):
            y, x = int(rng.integers(8, H - h - 8)), int(rng.integers(8, W - w - 8))
            if y % 8 and x % 8 and all(y + h + 16 < py or py + ph + 16 < y or x + w + 16 < px or px + pw + 16 < x
                                       for py, px, ph, pw in placed):
                break
        else:
            raise ValueError("image too small for the splice regions")
        best = (-1.0, 1, 1)
        for _ in range(100):
            dy = int(rng.integers(1, d.shape[0] - h)) | 1  # an odd offset: off the donor's grid
            dx = int(rng.integers(1, d.shape[1] - w)) | 1
            t = texture(d[dy:dy + h, dx:dx + w])
            if t > best[0]:
                best = (t, dy, dx)
            if t >= texture_min:
                break
        _, dy, dx = best
        bg[y:y + h, x:x + w] = d[dy:dy + h, dx:dx + w]
        mask[y:y + h, x:x + w] = k
        placed.append((y, x, h, w))
    k = int(rng.integers(1, 64))
    r, c = k // 8, k % 8
    final = jpeg.encode_opencv(np.ascontiguousarray(bg[r:, c:]), qf2)
    return Splice(final, mask[r:, c:].copy(), [qf1_bg, *qf1_donors], qf2, (r, c))


# The splices of notebook 7: the paper's two examples of Figure 12 (QF2 90, background QF1 75,
# donors at 95 and 85, or at 65 and 95) and footnote 3's single-compressed donor, with donor
# rectangles from textured regions; and the first example with flat donors, as printed in the
# paper (a uniform grey and a uniform light-blue square): flat content has no AC coefficient, so
# no trace of its own Q1 survives in it (where the method is blind: the map can only show that
# the background's trace is missing there, as it would on a flat part of the background).
SPLICE_CASES = (("Figure 12, first example", 75, (95, 85)), ("Figure 12, second example", 75, (65, 95)),
                ("single-compressed donor (footnote 3)", 75, (None,)))
FLAT_CASE = ("flat donors (Figure 12, first example as printed)", 75, (95, 85))
FLAT_COLOURS = ((128, 128, 128), (173, 216, 230))  # grey, light blue


def splice_set(profile: str, seed: int = 0, per_case: int = 2, side: int | None = None) -> list[dict]:
    """Splices built from the test images of ``profile`` (never from training images): for each
    case of :data:`SPLICE_CASES`, ``per_case`` splices with seeded images, crops and regions
    (donor rectangles from textured regions), then one splice of :data:`FLAT_CASE` (``"flat":
    True``: uniform donors of :data:`FLAT_COLOURS`)."""
    from .profiles import get_profile, test_share
    from .sources import get_source, load_image, split_records
    p = get_profile(profile)
    recs = split_records(get_source(p["test"]["source"]), p["test"]["split"], test_share(profile),
                         p["n_test"], seed)
    imgs = [load_image(r.path, r.sha256) for r in recs]
    side = side or min(512, min(min(i.shape[:2]) for i in imgs) // 16 * 16)
    rng = np.random.default_rng([seed, 0x10CA1])
    out = []
    for name, bg_q, donor_q in (*SPLICE_CASES, FLAT_CASE):
        flat = (name, bg_q, donor_q) == FLAT_CASE
        for j in range(per_case if not flat else 1):
            n = 1 + len(donor_q)  # distinct images where there are enough (smoke has 2)
            pick = rng.permutation(len(imgs))[:n] if len(imgs) >= n else rng.choice(len(imgs), n)

            def crop(i):
                im = imgs[i]
                y, x = rng.integers(0, im.shape[0] - side + 1), rng.integers(0, im.shape[1] - side + 1)
                return np.ascontiguousarray(im[y:y + side, x:x + side])
            bg = crop(pick[0])
            donors = [np.full((side, side, 3), c, np.uint8) for c in FLAT_COLOURS] if flat else \
                [crop(i) for i in pick[1:]]
            s = make_splice(bg, donors, bg_q, list(donor_q), 90, seed=int(rng.integers(2**31)),
                            texture_min=0.0 if flat else TEXTURE_MIN)
            out.append({"case": name, "index": j, "splice": s, "flat": flat,
                        "images": [recs[i].path.split("/")[-1] for i in (pick[:1] if flat else pick)]})
    return out


# ---------------------------------------------------------------------------------------------
# Maps

def window_grid(size, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left rows and columns of the 64x64 windows at ``stride``."""
    h, w = size
    return np.arange(0, h - PATCH + 1, stride), np.arange(0, w - PATCH + 1, stride)


PATHS = ("auto", "dense", "exact")


def qmap(model, rgb: np.ndarray, stride: int = 8, batch: int = 256, nc: int = NC, progress: bool = True,
         path: str = "exact"):
    """QM (H', W', nc) int16: the estimate of every window at ``stride``, and the class head's
    mean top probability per position (float32 [H', W'], NaN for a regression head or the
    DenseNet's dense path). ``path``: ``exact`` (one forward pass per window, batched),
    ``dense`` (shared features: :func:`dct_qmap` for the ``dct`` backbone, the dilated
    :func:`dense_qmap` for the DenseNet), ``auto`` (dense for ``dct``, exact for the DenseNet:
    see ``make bench``'s localization benchmark for their agreement)."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}")
    if path == "auto":
        path = "dense" if is_dct(model) else "exact"
    if path == "dense":
        if is_dct(model):
            return dct_qmap(model, rgb, stride, nc=nc, progress=progress)
        qm = dense_qmap(model, rgb, nc=nc, progress=progress)[::stride, ::stride]
        return qm, np.full(qm.shape[:2], np.nan, np.float32)
    from tqdm import tqdm

    from .evaluate import head_of
    from .model import decode
    head = head_of(model)
    ys, xs = window_grid(rgb.shape[:2], stride)
    origins = np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)
    qm = np.zeros((len(origins), nc), np.int16)
    conf = np.full(len(origins), np.nan, np.float32)
    with tqdm(total=len(origins), unit="window", desc="localizing", disable=not progress) as bar:
        for a in range(0, len(origins), batch):
            o = origins[a:a + batch]
            xb = np.stack([rgb[y:y + PATCH, x:x + PATCH] for y, x in o]).astype("float32")
            pred = np.asarray(model.predict_on_batch(xb))
            qm[a:a + len(o)] = decode(pred, head, nc)
            if head == "class":
                from .jpeg import blocks, q_max
                conf[a:a + len(o)] = np.mean([pred[:, s:e].max(1) for s, e in blocks(q_max(nc))], axis=0)
            bar.update(len(o))
    return qm.reshape(len(ys), len(xs), nc), conf.reshape(len(ys), len(xs))


def is_dct(model) -> bool:
    """True for the ``dct`` backbone (its first layer is the block-DCT front end)."""
    return any(op.name == "histograms" for op in model.layers)


def dct_qmap(model, rgb: np.ndarray, stride: int = 1, tile: int = 192, nc: int = NC, progress: bool = True):
    """QM and confidence, as :func:`qmap` returns them, of a ``dct``-backbone model from shared
    features: the front end's comb strengths are computed once for every pixel position
    (:func:`qpaper.dctfeatures.dense_comb`), the layers shared by the phases run once per
    position, and each window takes the maximum over its 64 phase positions, the position on
    the file's 8x8 grid and that position's histograms. The window's own per-window pass gives
    the same numbers (up to float rounding at bin edges) when the window is on the file's grid;
    a window off that grid reads phase 0 at the file's grid here, where the per-window pass would
    wrongly take the window's corner. Memory is bounded by tiles of ``tile`` pixels."""
    from keras import ops
    from tqdm import tqdm

    from . import dctfeatures as dfe
    from .evaluate import head_of
    from .model import decode
    head = head_of(model)
    nf = model.get_layer("histograms").nc  # coefficients the front end reads
    keep = model.get_layer("grid_histogram").coefficients + 1  # those of the phase-0 histograms
    y = dfe.luma(rgb)
    ys, xs = window_grid(rgb.shape[:2], stride)
    qm = np.zeros((len(ys), len(xs), nc), np.int16)
    conf = np.full((len(ys), len(xs)), np.nan, np.float32)
    layer = {n: model.get_layer(n) for n in ("phase_dense_1", "phase_dense_2", "grid_dense", "hidden")}
    out_layers = [op for op in model.layers if op.name in ("logits", "block_softmax", "q1")]
    g = dfe.GRID
    tiles = [(a, b) for a in range(0, len(ys), max(1, tile // stride)) for b in range(0, len(xs), max(1, tile // stride))]
    for a, b in tqdm(tiles, unit="tile", desc="localizing", disable=not progress):
        ty, tx = ys[a:a + max(1, tile // stride)], xs[b:b + max(1, tile // stride)]
        y0, x0 = int(ty[0]), int(tx[0])
        crop = y[y0:int(ty[-1]) + PATCH, x0:int(tx[-1]) + PATCH]
        c = dfe.block_dct_everywhere(crop, nf)
        f = dfe.dense_comb(crop, nf, origin=(y0, x0), dct=c)  # anchors relative to (y0, x0)
        h = np.asarray(ops.convert_to_numpy(layer["phase_dense_2"](layer["phase_dense_1"](f))))
        m = h[:, :h.shape[1] - g + 1]
        m = np.max([h[:, j:j + m.shape[1]] for j in range(g)], axis=0)  # max over dx, then dy
        m = np.max([m[i:i + m.shape[0] - g + 1] for i in range(g)], axis=0)
        wy, wx = np.meshgrid(ty - y0, tx - x0, indexing="ij")
        sy, sx = wy + (-(wy + y0)) % g, wx + (-(wx + x0)) % g  # each window's anchor on the file's grid
        anchors, inv = np.unique(np.stack([sy.ravel(), sx.ravel()], 1), axis=0, return_inverse=True)
        hist = dfe.grid_histograms(crop, anchors, keep, dct=c)
        gd = np.asarray(ops.convert_to_numpy(layer["grid_dense"](hist)))[inv.ravel()]
        z = np.concatenate([m[wy.ravel(), wx.ravel()], h[sy.ravel(), sx.ravel()], gd], axis=1)
        out = layer["hidden"](z)
        for op in out_layers:
            out = op(out)
        pred = np.asarray(ops.convert_to_numpy(out))
        qm[a:a + len(ty), b:b + len(tx)] = decode(pred, head, nc).reshape(len(ty), len(tx), nc)
        if head == "class":
            from .jpeg import blocks, q_max
            c = np.mean([pred[:, s:e].max(1) for s, e in blocks(q_max(nc))], axis=0)
            conf[a:a + len(ty), b:b + len(tx)] = c.reshape(len(ty), len(tx))
    return qm, conf


def receptive_margin(model) -> int:
    """How far (pixels) beyond a 64x64 window the dense path's output for it can reach: the sum
    of the 3x3 convolutions' reaches at their dilations, plus the pooling offsets."""
    from keras import layers
    d, m = 1, 0
    for op in model.layers:
        if isinstance(op, layers.Conv2D):
            m += (op.kernel_size[0] // 2) * d
        elif isinstance(op, layers.AveragePooling2D):
            m += d
            d *= 2
    return m


def _dense_tile(model, x, nc):
    """Dense evaluation of one tile (1, h, w, C): the trained layers run on the whole tile, with
    the pooling rewritten at stride 1 (after the k-th 2x2 average pooling, the following 3x3
    convolutions use dilation 2^k and the next pooling averages at offsets 2^k), and the global
    average pooling replaced by a mean over the 16x16 positions at dilation 4 that a window's last
    feature grid occupies. Returns the head's output for every window that fits: [(h-63)(w-63), out]."""
    from keras import layers, ops
    state = {"d": 1}
    h, w = x.shape[1], x.shape[2]

    def conv(op):
        def f(t):
            y = ops.conv(t, op.kernel, strides=1, padding="same", dilation_rate=state["d"])
            return y + op.bias if op.use_bias else y
        return f

    def pool(t):
        d = state["d"]
        y = (t[:, :-d, :-d] + t[:, d:, :-d] + t[:, :-d, d:] + t[:, d:, d:]) / 4.0
        state["d"] = 2 * d
        return ops.pad(y, [[0, 0], [0, d], [0, d], [0, 0]])

    def gap(t):
        d = state["d"]
        n = PATCH // d
        hv, wv = h - PATCH + 1, w - PATCH + 1
        r = sum(t[:, i * d:i * d + hv] for i in range(n)) / n
        c = sum(r[:, :, j * d:j * d + wv] for j in range(n)) / n
        return ops.reshape(c, (-1, c.shape[-1]))

    def fn(op):
        if isinstance(op, layers.Conv2D):
            return conv(op)
        if isinstance(op, layers.AveragePooling2D):
            return pool
        if isinstance(op, layers.GlobalAveragePooling2D):
            return gap
        if isinstance(op, layers.Dropout):
            return lambda t, **kw: t
        if isinstance(op, layers.BatchNormalization):
            return lambda t, **kw: op(t, training=False)
        return op

    return model._run_through_graph(x, operation_fn=fn)


def dense_qmap(model, rgb: np.ndarray, tile: int = 192, nc: int = NC, progress: bool = True):
    """QM at stride 1 (H-63, W-63, nc) from shared convolutional features (the dense path, see
    :func:`_dense_tile`), computed on tiles of ``tile`` x ``tile`` window positions with a margin
    of :func:`receptive_margin` pixels so that tiling does not change the result. Windows see the
    image around them where the exact path sees zero padding: the two differ near each window's
    border (measured by ``benchmarks/bench_localize.py``)."""
    from keras import ops
    from tqdm import tqdm

    from .model import decode
    from .evaluate import head_of
    head = head_of(model)
    H, W = rgb.shape[:2]
    nh, nw = H - PATCH + 1, W - PATCH + 1
    m = receptive_margin(model)
    qm = np.zeros((nh, nw, nc), np.int16)
    starts = [(y, x) for y in range(0, nh, tile) for x in range(0, nw, tile)]
    for y, x in tqdm(starts, unit="tile", desc="dense map", disable=not progress):
        th, tw = min(tile, nh - y), min(tile, nw - x)
        y0, x0 = max(0, y - m), max(0, x - m)
        y1, x1 = min(H, y + th + PATCH - 1 + m), min(W, x + tw + PATCH - 1 + m)
        t = ops.convert_to_tensor(rgb[None, y0:y1, x0:x1].astype("float32"))
        out = np.asarray(ops.convert_to_numpy(_dense_tile(model, t, nc)))
        out = out.reshape(y1 - y0 - PATCH + 1, x1 - x0 - PATCH + 1, -1)[y - y0:y - y0 + th, x - x0:x - x0 + tw]
        qm[y:y + th, x:x + tw] = decode(out.reshape(th * tw, -1), head, nc).reshape(th, tw, nc)
    return qm


def truth_at_windows(mask: np.ndarray, stride: int) -> np.ndarray:
    """The ground-truth label at the centre of every window."""
    ys, xs = window_grid(mask.shape, stride)
    return mask[np.ix_(ys + PATCH // 2, xs + PATCH // 2)]


def region_summary(qm: np.ndarray, mask: np.ndarray, stride: int, qf_background: int, label: int | None = None) -> dict:
    """What the map says inside a region of the ground truth (``mask == label``, or any donor):
    the share of window centres there answering the background's own first table, and the
    standard QF nearest to the median answer of the others (None when all match the background).
    Notebook 7 uses it to show why flat donors stay invisible (Section 5.3)."""
    from .estimate import nearest_tables

    truth = truth_at_windows(mask, stride)
    inside = truth > 0 if label is None else truth == label
    if not inside.any():
        raise ValueError("no window centre falls inside the region")
    vals = qm[inside]
    nc = vals.shape[-1]
    bg = jpeg.zigzag(jpeg.standard_table(qf_background))[:nc]
    as_bg = (vals == bg).all(axis=1)
    rest = vals[~as_bg]
    near = nearest_tables(np.median(rest.astype(float), axis=0), nc)["qf"] if len(rest) else None
    return {"windows": int(inside.sum()), "as_background": float(as_bg.mean()), "nearest_qf_of_rest": near}


def to_pixels(m: np.ndarray, size, stride: int) -> np.ndarray:
    """A window map drawn at image size: each pixel takes the value of the nearest window centre."""
    h, w = size
    ys, xs = window_grid(size, stride)
    iy = np.clip(np.rint((np.arange(h) - PATCH // 2) / stride), 0, len(ys) - 1).astype(int)
    ix = np.clip(np.rint((np.arange(w) - PATCH // 2) / stride), 0, len(xs) - 1).astype(int)
    return m[np.ix_(iy, ix)]


def colour_png(m: np.ndarray, cmap: str = "viridis", vmin=None, vmax=None) -> bytes:
    """A map as PNG bytes through a matplotlib colour map."""
    import io

    import matplotlib
    from PIL import Image
    m = np.asarray(m, dtype=np.float64)
    lo = np.nanmin(m) if vmin is None else vmin
    hi = np.nanmax(m) if vmax is None else vmax
    rgba = matplotlib.colormaps[cmap]((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m))
    buf = io.BytesIO()
    Image.fromarray((rgba[..., :3] * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Clustering and scores

def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Plain k-means (k-means++ seeding from ``seed``): (labels, centres)."""
    rng = np.random.default_rng(seed)
    c = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min([((x - ci) ** 2).sum(1) for ci in c], axis=0)
        c.append(x[rng.choice(len(x), p=d / d.sum())] if d.sum() > 0 else x[rng.integers(len(x))])
    c = np.array(c, dtype=np.float64)
    for _ in range(iters):
        lab = np.argmin(((x[:, None] - c[None]) ** 2).sum(-1), axis=1)
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
    """3x3 median of every coefficient map (edges repeated): overlapping windows see almost the
    same pixels, so an isolated estimate that disagrees with its neighbours is noise."""
    h, w = qm.shape[:2]
    p = np.pad(qm, ((1, 1), (1, 1), (0, 0)), mode="edge")
    stack = np.stack([p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)])
    return np.median(stack, axis=0)


def cluster(qm: np.ndarray, max_k: int = 4, seed: int = 0, smooth: bool = True) -> dict:
    """Tampering mask and donor labels from a Q1 map. The per-position vectors (log2 of the nc
    estimates, so that a step from 2 to 4 weighs like one from 8 to 16; after a 3x3 median,
    :func:`median3`, unless ``smooth`` is False) are clustered by k-means for k = 2..max_k; k is
    chosen by the silhouette, and k = 1 (no tampering found) when no k reaches a silhouette of
    0.25. The largest cluster is the background; the others are donors. The score for AUC is the
    distance of each position to the background's median vector."""
    m = median3(qm) if smooth and min(qm.shape[:2]) >= 3 else qm
    v = np.log2(np.maximum(m.reshape(-1, qm.shape[-1]).astype(np.float64), 1))
    best = (0.25, 1, np.zeros(len(v), int))
    if len(np.unique(v, axis=0)) > 1:
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
    score = np.sqrt(((v - centre) ** 2).sum(1))
    shape = qm.shape[:2]
    return {"k": int(k), "silhouette": round(float(s), 4), "labels": labels.reshape(shape),
            "mask": (labels > 0).reshape(shape), "score": score.reshape(shape)}


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
