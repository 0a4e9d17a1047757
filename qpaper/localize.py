"""Tampering localization (Section 5.3): maps of estimated Q1 coefficients on sliding 64x64
windows, three ways to compute them (one pass per window, or shared features for either
backbone), and :func:`run`, the analyst's ``qpaper localize``: map, tampering mask
(:func:`qpaper.regions.cluster`) and files. The splices that score it are in :mod:`qpaper.splices`.

QM(i, j, :) is the estimate for the window whose top-left corner is (i s, j s) at stride s;
position (i, j) stands for the pixel at the window's centre (i s + 32, j s + 32).
"""

from __future__ import annotations

import re

import numpy as np

from . import jpeg
from .jpeg import NC, PATCH
from .regions import cluster, scores, truth_at_windows, window_grid

PATHS = ("auto", "dense", "exact")

# What a map costs in memory beyond the backend (issue 25, item 11): per window, the map (int16) and
# its confidence, and :func:`qpaper.regions.cluster`'s float64 copies (tracemalloc: ~380 B a window
# on a 961x961 map; tests/test_localize.py checks the bound); per pixel, the decoded image, the
# decoder's copy, the dct front end's float32 luma and a band of the PNG being drawn.
BYTES_PER_WINDOW = 480
BYTES_PER_PIXEL = 40
BACKEND_BYTES = 1_500_000_000  # TensorFlow and a mini model: peak RSS 1.09 GB on a 1 MP map at stride 8


def plan(size, stride: int) -> dict:
    """What ``qpaper localize`` will hold for an image of ``size`` (h, w) at ``stride``: the number
    of windows and an upper bound of the peak memory in bytes (the backend included)."""
    ys, xs = window_grid(size, stride)
    windows = len(ys) * len(xs)
    return {"windows": windows, "shape": (len(ys), len(xs)),
            "bytes": windows * BYTES_PER_WINDOW + size[0] * size[1] * BYTES_PER_PIXEL + BACKEND_BYTES}


def available_memory() -> int | None:
    """Bytes the system can still give (MemAvailable of /proc/meminfo), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import os
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_plan(size, stride: int, limit: int | None = None) -> dict:
    """:func:`plan`, refused with a ValueError naming a stride that fits when its memory bound is
    above ``limit`` bytes (default: :func:`available_memory`)."""
    p = plan(size, stride)
    what = "the limit of {:.1f} GB (--max-memory)" if limit is not None else "the {:.1f} GB this system has available"
    limit = available_memory() if limit is None else limit
    if limit is not None and p["bytes"] > limit:
        fits = next((s for s in range(stride + 1, 65) if plan(size, s)["bytes"] <= limit), None)
        hint = f"--stride {fits} fits" if fits else "no stride up to 64 fits; crop the image"
        raise ValueError(f"a map of {size[1]}x{size[0]} at stride {stride} ({p['windows']:,} windows) needs about "
                         f"{p['bytes'] / 1e9:.1f} GB, more than {what.format(limit / 1e9)}; {hint}")
    return p


class _Eta:
    """Says once, after the first ``after`` seconds of work, how long the whole map will take at
    the rate measured so far (the backend's first call is excluded: timing starts at the second unit)."""

    def __init__(self, total: int, unit: str, say, after: float = 2.0):
        import time
        self.total, self.unit, self.say, self.after, self.clock = total, unit, say, after, time.perf_counter
        self.t0 = self.start = None
        self.done = 0

    def update(self, n: int) -> None:
        if self.say is None:
            return
        if self.t0 is None:  # the first unit carries the backend's warm-up
            self.t0, self.start = self.clock(), n
            return
        self.done = n
        dt = self.clock() - self.t0
        if dt >= self.after and self.done > self.start:
            left = (self.total - self.done) * dt / (self.done - self.start)
            self.say(f"about {_duration(left + dt)} for {self.total:,} {self.unit}s "
                     f"(the rate of the first {self.done - self.start:,})")
            self.say = None


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def qmap(model, rgb: np.ndarray, stride: int = 8, batch: int = 256, nc: int = NC, progress: bool = True,
         path: str = "exact", q2=None):
    """QM (H', W', nc) int16: the estimate of every window at ``stride``, and the class head's
    mean top probability per position (float32 [H', W'], NaN for a regression head or the
    DenseNet's dense path). ``path``: ``exact`` (one forward pass per window, batched),
    ``dense`` (shared features: :func:`dct_qmap` for the ``dct`` backbone, the dilated
    :func:`dense_qmap` for the DenseNet), ``auto`` (dense for ``dct``, exact for the DenseNet:
    see ``make bench``'s localization benchmark for their agreement). ``q2``: the file's last
    table (8x8), given to a model that takes it (the any-QF2 model)."""
    path = resolve_path(model, path)
    if path == "dense":
        if is_dct(model):
            return dct_qmap(model, rgb, stride, nc=nc, progress=progress)
        qm = dense_qmap(model, rgb, nc=nc, progress=progress)[::stride, ::stride]
        return qm, np.full(qm.shape[:2], np.nan, np.float32)
    from tqdm import tqdm

    from .jpeg import zigzag
    from .model import confidence, decode, head_of, inputs
    head = head_of(model)
    z2 = None if q2 is None else zigzag(q2)
    ys, xs = window_grid(rgb.shape[:2], stride)
    origins = np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)
    qm = np.zeros((len(origins), nc), np.int16)
    conf = np.full(len(origins), np.nan, np.float32)
    with tqdm(total=len(origins), unit="window", desc="localizing", disable=not progress) as bar:
        eta = _Eta(len(origins), "window", bar.write if progress else None)
        for a in range(0, len(origins), batch):
            o = origins[a:a + batch]
            xb = np.stack([rgb[y:y + PATCH, x:x + PATCH] for y, x in o]).astype("float32")
            pred = np.asarray(model.predict_on_batch(inputs(model, xb, z2)))
            qm[a:a + len(o)] = decode(pred, head, nc)
            if head != "regression":
                conf[a:a + len(o)] = confidence(pred, nc, head).mean(axis=1)
            bar.update(len(o))
            eta.update(a + len(o))
    return qm.reshape(len(ys), len(xs), nc), conf.reshape(len(ys), len(xs))


def resolve_path(model, path: str = "auto") -> str:
    """``dense`` or ``exact``: ``auto`` is dense for the ``dct`` backbone (the same numbers as one
    pass per window, 37x faster) and exact for the DenseNet (whose dense path differs near window
    borders; ``make bench``'s localization benchmark measures both)."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}")
    from .model import takes_q2
    if takes_q2(model):  # the any-QF2 model: one pass per window (no shared-feature path written for it)
        if path == "dense":
            raise ValueError("the any-QF2 model has no dense path; use --path exact (one pass per window)")
        return "exact"
    return ("dense" if is_dct(model) else "exact") if path == "auto" else path


def is_dct(model) -> bool:
    """True for the ``dct`` backbone (the block-DCT front end and its layers shared by phases)."""
    names = {op.name for op in model.layers}
    return "histograms" in names and "phase_dense_1" in names


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
    from .model import confidence, decode, head_of
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
    bar = tqdm(tiles, unit="tile", desc="localizing", disable=not progress)
    eta = _Eta(len(tiles), "tile", bar.write if progress else None)
    for i, (a, b) in enumerate(bar):
        eta.update(i)
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
            conf[a:a + len(ty), b:b + len(tx)] = confidence(pred, nc).mean(axis=1).reshape(len(ty), len(tx))
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


def _dense_tile(model, x):
    """Dense evaluation of one tile (1, h, w, C): the trained layers run on the whole tile, with
    the pooling rewritten at stride 1 (after the k-th 2x2 average pooling, the following 3x3
    convolutions use dilation 2^k and the next pooling averages at offsets 2^k), and the global
    average pooling replaced by a mean over the 16x16 positions at dilation 4 that a window's last
    feature grid occupies. The rewritten network is a ``keras.models.clone_model`` of ``model``
    for the tile's size, sharing its weights. Returns the head's output for every window that fits:
    [(h-63)(w-63), out]."""
    h, w = int(x.shape[1]), int(x.shape[2])
    return _dense_network(model, h, w)(x, training=False)


_DENSE_CACHE: dict = {}


def _dense_network(model, h: int, w: int):
    """``model`` rewritten for dense evaluation of an h x w tile (see :func:`_dense_tile`), kept
    for the tile sizes of the last model."""
    import weakref

    import keras
    from keras import layers, ops

    if _DENSE_CACHE.get("model") is None or _DENSE_CACHE["model"]() is not model:
        _DENSE_CACHE.clear()  # one model at a time (held weakly: a freed model's networks go with it)
        _DENSE_CACHE.update(model=weakref.ref(model), nets={})
    if (h, w) in _DENSE_CACHE["nets"]:
        return _DENSE_CACHE["nets"][h, w]
    dilation, d = {}, 1  # each layer's dilation: 2^(poolings before it, in the graph's order)
    for op in model.layers:
        dilation[id(op)] = d
        if isinstance(op, layers.AveragePooling2D):
            d *= 2

    class DilatedConv(layers.Layer):
        def __init__(self, conv, d):
            super().__init__(name=f"dense_{conv.name}")
            self.conv, self.d = conv, d

        def call(self, t):
            y = ops.conv(t, self.conv.kernel, strides=1, padding="same", dilation_rate=self.d)
            return y + self.conv.bias if self.conv.use_bias else y

    class StrideOnePool(layers.Layer):
        def __init__(self, d):
            super().__init__()
            self.d = d

        def call(self, t):
            d = self.d
            y = (t[:, :-d, :-d] + t[:, d:, :-d] + t[:, :-d, d:] + t[:, d:, d:]) / 4.0
            return ops.pad(y, [[0, 0], [0, d], [0, d], [0, 0]])

    class WindowMean(layers.Layer):
        def __init__(self, d):
            super().__init__()
            self.d = d

        def call(self, t):
            d, n = self.d, PATCH // self.d
            hv, wv = h - PATCH + 1, w - PATCH + 1
            r = sum(t[:, i * d:i * d + hv] for i in range(n)) / n
            c = sum(r[:, :, j * d:j * d + wv] for j in range(n)) / n
            return ops.reshape(c, (-1, c.shape[-1]))

    def rewrite(op):
        d = dilation[id(op)]
        if isinstance(op, layers.Conv2D):
            return DilatedConv(op, d)
        if isinstance(op, layers.AveragePooling2D):
            return StrideOnePool(d)
        if isinstance(op, layers.GlobalAveragePooling2D):
            return WindowMean(d)
        if isinstance(op, layers.Dropout):
            return layers.Identity()
        return op  # the others as they are, weights shared

    net = keras.models.clone_model(model, input_tensors=keras.Input(batch_shape=(1, h, w, model.input_shape[-1])),
                                   clone_function=rewrite)
    _DENSE_CACHE["nets"][h, w] = net
    return net


def dense_qmap(model, rgb: np.ndarray, tile: int = 192, nc: int = NC, progress: bool = True):
    """QM at stride 1 (H-63, W-63, nc) from shared convolutional features (the dense path, see
    :func:`_dense_tile`), computed on tiles of ``tile`` x ``tile`` window positions with a margin
    of :func:`receptive_margin` pixels so that tiling does not change the result. Windows see the
    image around them where the exact path sees zero padding: the two differ near each window's
    border (measured by ``benchmarks/bench_localize.py``)."""
    from keras import ops
    from tqdm import tqdm

    from .model import decode, head_of
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
        out = np.asarray(ops.convert_to_numpy(_dense_tile(model, t)))
        out = out.reshape(y1 - y0 - PATCH + 1, x1 - x0 - PATCH + 1, -1)[y - y0:y - y0 + th, x - x0:x - x0 + tw]
        qm[y:y + th, x:x + tw] = decode(out.reshape(th * tw, -1), head, nc).reshape(th, tw, nc)
    return qm


def _rgb(m: np.ndarray, lo, hi, cmap: str) -> np.ndarray:
    """Values through a matplotlib colour map scaled to [lo, hi]: uint8 RGB."""
    import matplotlib
    m = np.asarray(m, dtype=np.float64)
    return (matplotlib.colormaps[cmap]((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m))[..., :3] * 255
            ).astype(np.uint8)


def _png(rgb: np.ndarray) -> bytes:
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def colour_png(m: np.ndarray, cmap: str = "viridis", vmin=None, vmax=None) -> bytes:
    """A map as PNG bytes through a matplotlib colour map."""
    lo = np.nanmin(m) if vmin is None else vmin
    hi = np.nanmax(m) if vmax is None else vmax
    return _png(_rgb(m, lo, hi, cmap))


def map_png(m: np.ndarray, size, stride: int, cmap: str = "viridis", vmin=None, vmax=None, band: int = 256) -> bytes:
    """``colour_png(to_pixels(m, size, stride))`` drawn a band of ``band`` rows at a time: the
    same PNG, with memory for three bytes a pixel instead of a float64 RGBA image."""
    from .regions import to_pixels
    lo = np.nanmin(m) if vmin is None else vmin  # every window's centre is some pixel's nearest, so these are the picture's range
    hi = np.nanmax(m) if vmax is None else vmax
    rgb = np.empty((*size, 3), np.uint8)
    for a in range(0, size[0], band):
        rgb[a:a + band] = _rgb(to_pixels(m, size, stride, slice(a, a + band)), lo, hi, cmap)
    return _png(rgb)


def score_splice(splice, model, stride: int, seed: int = 0, path: str = "auto") -> dict:
    """Section 5.3 on one generated splice (:class:`qpaper.splices.Splice`): its decoded pixels
    ``rgb``, Q1 map ``qm``, the clustered mask ``clusters`` (:func:`qpaper.regions.cluster`) and
    its ``scores`` (F1, MCC, AUC) against the donors at the window centres."""
    rgb = jpeg.decode(splice.jpeg)
    qm, _ = qmap(model, rgb, stride, progress=False, path=path, q2=jpeg.luminance_table(splice.jpeg))
    res = cluster(qm, seed=seed)
    return {"rgb": rgb, "qm": qm, "clusters": res,
            "scores": scores(res["mask"], truth_at_windows(splice.mask, stride) > 0, res["score"])}


OUTPUT_NAME = re.compile(r"^(qm\.npy|mask\.png|summary\.json|map-k\d\d\.png)$")


def earlier_files(out) -> set[str]:
    """The names an earlier ``qpaper localize`` wrote in the folder ``out``: those its
    ``summary.json`` lists (a killed run's too: its summary lists what it was writing), with the
    temporary names of a killed write. A folder without a localize summary has none: ``--out`` must
    then be new or empty (issue 32, item 1)."""
    import json
    from pathlib import Path
    try:
        summary = json.loads((Path(out) / "summary.json").read_text())
    except (OSError, ValueError, RecursionError):
        return set()
    files = summary.get("files") if isinstance(summary, dict) else None
    if not isinstance(files, list) or "summary.json" not in files:
        return set()
    names = {f for f in files if isinstance(f, str) and OUTPUT_NAME.match(f)}
    temporary = {p.name for p in Path(out).glob(".*.tmp")
                 if any(p.name.startswith(f".{n}.") for n in names)}
    return names | temporary


def check_out(out, file) -> None:
    """``--out`` before any work: new, empty, or an earlier localize run's; never the folder of
    the input (:func:`qpaper.paths.check_output_folder`)."""
    from .paths import check_output_folder
    check_output_folder(out, inputs=[file], ours=earlier_files)


def run(file, out, model=None, stride: int = 8, coefficients=(1, 6, 14), path: str = "auto",
        max_megapixels: float | None = 120.0, seed: int = 0, progress: bool = True, max_memory: int | None = None) -> dict:
    """``qpaper localize``: the Q1 map of a JPEG file at ``stride`` (Section 5.3), its tampering
    mask (:func:`qpaper.regions.cluster`), written to the folder ``out`` as ``qm.npy``,
    ``map-kNN.png`` for each of ``coefficients``, ``mask.png`` and ``summary.json`` (returned).
    A map whose memory bound (:func:`plan`) is above ``max_memory`` bytes (default: what the
    system has available) is refused before any window is computed. Where the whole file shows
    no first compression (the test of ``qpaper estimate``'s file-level verdict), the map is made
    but no mask is drawn: nothing there to localize (issue 32, item 3)."""
    import io
    import json
    from pathlib import Path

    from . import estimate, registry
    from .paths import atomic_write_bytes
    out = Path(out)
    check_out(out, file)
    img = estimate.read_jpeg(file, max_megapixels)
    check_plan(img["size"], stride, max_memory)
    whole = estimate.run(file, method="file", max_megapixels=max_megapixels, seed=seed, progress=False)
    no_trace = whole["verdict"] if whole["q1"] is None else None  # estimate's "cannot tell" (too little content)
    double = bool(whole.get("double")) and not no_trace
    model, name, _, _ = registry.model_for(img["q2"], model)
    path = resolve_path(model, path)
    qm, _ = qmap(model, img["rgb"], stride, progress=progress, path=path, q2=img["q2"])
    res = cluster(qm, seed=seed) if double else None
    earlier = earlier_files(out)
    maps = [f"map-k{k:02d}.png" for k in coefficients]
    files = ["qm.npy", *maps, *(["mask.png"] if double else []), "summary.json"]
    out.mkdir(parents=True, exist_ok=True)
    # while this run writes, the summary lists the earlier run's files and this run's: a folder never
    # holds a file its summary does not name, so a killed run's folder is still one --out accepts
    atomic_write_bytes(out / "summary.json", json.dumps({"complete": False, "files": sorted(
        earlier - {n for n in earlier if n.startswith(".")} | set(files))}, indent=1).encode())
    buf = io.BytesIO()
    np.save(buf, qm, allow_pickle=False)
    atomic_write_bytes(out / "qm.npy", buf.getvalue())
    size = img["size"]
    for k, name_k in zip(coefficients, maps):
        atomic_write_bytes(out / name_k, map_png(qm[..., k - 1], size, stride))
    if double:
        atomic_write_bytes(out / "mask.png", map_png(res["labels"], size, stride, cmap="tab10", vmin=0, vmax=9))
    stale = sorted(earlier - set(files))  # an earlier run's, named in its summary (and a killed write's temporaries)
    for f in stale:
        (out / f).unlink(missing_ok=True)
    summary = {"file": str(file), "model": name, "stride": stride, "path": path, "map_shape": list(qm.shape),
               "clusters": res["k"] if double else 0, "silhouette": res["silhouette"] if double else None,
               "tampered_share": round(float(res["mask"].mean()), 4) if double else 0.0,
               "no_trace": None if double else (no_trace or whole["verdict"]),
               "file_verdict": whole["verdict"], "orientation": img["orientation"],
               "readable_coefficients": whole["readable_coefficients"], "cannot_tell": no_trace,
               "warnings": img["decoder"], "files": files, "removed_stale": stale, "complete": True,
               "note": "QM(i, j, :) is the window with top-left corner (i*stride, j*stride) of the stored "
                       "pixels; maps are drawn as stored, without the EXIF orientation"}
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=1).encode())
    return summary
