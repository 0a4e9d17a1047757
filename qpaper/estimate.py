"""``qpaper estimate IMG``: the paper's estimator on a real file (Section 5.3 applies it to
sliding windows; here the windows of the whole image are pooled into one estimate).

The file's Q2 is read from its markers; a registered model trained for the nearest QF2 is
chosen (Section 5.2: a QF2 off by 2 costs little) unless ``--model`` names one. The image is
cut into 64x64 windows on the 8x8 grid of its last compression (as the training patches are);
the class head's per-coefficient probabilities are averaged over the windows (at most
``max_windows``, a seeded sample, evaluated in batches so memory stays bounded), and each
coefficient's estimate is the argmax + 1 with the averaged probability as its confidence.
For the model-based methods ([7] galvan, [5] bianchi) each window votes and the confidence is
the share of windows that agree.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from . import jpeg
from .jpeg import NC, PATCH
from .paths import error_line, printable


class InputError(ValueError):
    """The file cannot be estimated; one line for the user."""


def _flush_c_stdio() -> None:
    try:
        import ctypes
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def quiet_stderr(messages: list | None = None):
    """libjpeg prints warnings (e.g. 'Premature end of JPEG file') on fd 2; the CLI owes the user
    one line, so they are hidden while decoding. ``messages``: a list that receives the lines the
    decoder printed (they become the file's ``warnings``, issue 32 item 2)."""
    import tempfile
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    sink = tempfile.TemporaryFile()
    os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        _flush_c_stdio()  # a C stderr that a library made buffered would print it at exit, on the real fd 2
        os.dup2(fd, 2)
        os.close(fd)
        if messages is not None:
            sink.seek(0)
            text = sink.read(1 << 16).decode("utf-8", "replace")
            messages += [line.strip() for line in text.splitlines() if line.strip()]
        sink.close()


MOSTLY_MISSING = 0.5  # a file whose decoder filled more than this share of the picture is refused


def decoder_warnings(messages: list, filled: float) -> list[str]:
    """What the decoder said while decoding (premature end, corrupt data, extraneous bytes), once
    each, as ``warnings``; with the share of the picture it filled for a scan that ends early."""
    said = list(dict.fromkeys(messages))[:3]
    out = [f"the decoder reported: {shown(m)}" for m in said]
    if filled > 0:
        out.append(f"the scan ends early: the decoder filled the last {filled:.0%} of the picture with grey; the "
                   "estimate and the verdict rest on the rest")
    return out


def precheck(path) -> Path:
    """The checks of a file that need only its first bytes (missing, not a regular file, empty, a
    PNG, not a JPEG), cheap enough to run before the network's backend is imported: a refusal
    costs no TensorFlow start (issue 25, item 12)."""
    from .paths import check_input_file
    try:
        p = check_input_file(path)
    except ValueError as e:
        raise InputError(str(e)) from None
    with open(p, "rb") as f:
        head = f.read(8)
    if not head:
        raise InputError(f"{p}: empty file")
    if head == b"\x89PNG\r\n\x1a\n":
        raise InputError(f"{p}: a PNG image, not a JPEG (nothing to estimate: PNG has no quantization)")
    if head[:2] != b"\xff\xd8":
        raise InputError(f"{p}: not a JPEG file")
    return p


def read_jpeg(path, max_megapixels: float | None = 120.0) -> dict:
    """Check a file and decode it as stored (no EXIF rotation): {"rgb", "q2" (8x8 natural),
    "progressive", "coding", "size", "orientation" (EXIF tag or None), "trailer" (bytes after the
    end-of-image marker)}. Raises
    :class:`InputError` for a missing path, a non-JPEG, an empty, truncated or corrupt JPEG, a
    grayscale or CMYK JPEG, an image smaller than 64x64, or one above ``max_megapixels``."""
    p = precheck(path)
    data = p.read_bytes()
    try:
        info = jpeg.read_qtables(data)
        q2 = jpeg.luminance_table(info)
    except jpeg.JpegError as e:
        raise InputError(f"{p}: {e}") from None
    if info["size"] is None:
        raise InputError(f"{p}: corrupt JPEG (no frame header)")
    n = len(info["components"])
    if n == 1:
        raise InputError(f"{p}: grayscale JPEG; the estimators were trained on colour (3-component) JPEGs")
    if n == 4:
        raise InputError(f"{p}: CMYK JPEG (4 components); only YCbCr colour JPEGs are supported")
    if n != 3:
        raise InputError(f"{p}: JPEG with {n} components; only 3-component colour JPEGs are supported")
    if "lossless" in info["coding"] or "differential" in info["coding"]:
        raise InputError(f"{p}: {info['coding']} JPEG; only DCT-based (baseline, extended or progressive) files "
                         "have the quantization this method reads")
    if info["end"] is None:
        raise InputError(f"{p}: truncated JPEG (the scan ends before the end-of-image marker)")
    h, w = info["size"]
    if h < PATCH or w < PATCH:
        raise InputError(f"{p}: image {w}x{h} is smaller than the {PATCH}x{PATCH} window")
    if max_megapixels and h * w > max_megapixels * 1e6:
        raise InputError(f"{p}: {w}x{h} is {h * w / 1e6:.0f} megapixels, above the limit of {max_megapixels:g} "
                         "(raise it with --max-megapixels)")
    messages = []
    try:
        with quiet_stderr(messages):  # never rotated by the EXIF orientation: the stored block grid is what is read
            rgb = jpeg.decode(data[:info["end"]])
    except jpeg.JpegError:
        rgb = None
    if rgb is None or rgb.shape[:2] != (h, w):
        raise InputError(f"{p}: corrupt JPEG (cannot decode)")
    filled = jpeg.filled_share(rgb) if any("premature end" in m.lower() for m in messages) else 0.0
    if filled > MOSTLY_MISSING:
        raise InputError(f"{p}: the scan is mostly missing: the decoder filled the last {filled:.0%} of the picture "
                         "with grey (a cut or damaged file); nothing here to estimate from")
    return {"rgb": rgb, "data": data[:info["end"]], "q2": q2, "progressive": info["progressive"],
            "coding": info["coding"], "size": (h, w), "orientation": info["orientation"], "trailer": info["trailer"],
            "stray": info["stray"], "decoder": decoder_warnings(messages, filled)}


def window_origins(size, max_windows: int = 512, seed: int = 0) -> np.ndarray:
    """Top-left corners (y, x) of the non-overlapping 64x64 windows on the image's 8x8 grid; a
    seeded sample of ``max_windows`` of them when there are more."""
    h, w = size
    ys, xs = np.arange(0, h - PATCH + 1, PATCH), np.arange(0, w - PATCH + 1, PATCH)
    o = np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)
    if max_windows and len(o) > max_windows:
        o = o[np.sort(np.random.default_rng(seed).choice(len(o), max_windows, replace=False))]
    return o


def _batches(rgb, origins, batch=64):
    for a in range(0, len(origins), batch):
        yield np.stack([rgb[y:y + PATCH, x:x + PATCH] for y, x in origins[a:a + batch]])


def estimate_cnn(model, rgb, origins, nc: int = NC, progress=None, q2=None):
    """(q1 [nc], confidence [nc], agreement [nc]) from a Keras model over the windows at
    ``origins``: the class probabilities averaged over the windows, their argmax + 1 and its
    averaged probability, and the share of windows whose own answer is that one. ``q2``: the
    file's last table (8x8), given to a model that takes it (:func:`qpaper.model.inputs`)."""
    from .model import confidence, decode, head_of, inputs
    head = head_of(model)
    z2 = None if q2 is None else jpeg.zigzag(q2)
    total, n, answers = None, 0, []
    for xb in _batches(rgb, origins):
        pred = np.asarray(model.predict_on_batch(inputs(model, xb.astype("float32"), z2)), dtype=np.float64)
        total = pred.sum(0) if total is None else total + pred.sum(0)
        answers.append(decode(pred, head, nc))
        n += len(xb)
        if progress:
            progress(len(xb))
    mean = (total / n)[None]
    q1 = decode(mean, head, nc)[0]
    conf = confidence(mean, nc, head)[0] if head != "regression" else np.full(nc, np.nan)  # regression: none
    return q1, conf, (np.concatenate(answers) == q1).mean(0)


def estimate_baseline(method, rgb, origins, q2, nc: int = NC, progress=None):
    """(q1, share of windows that agree) from a model-based method, one vote per window."""
    from .baselines import predict_q1_baseline
    from .tables import WIDE_RANGE
    votes = []
    for xb in _batches(rgb, origins, 256):  # candidate steps as wide as the any-QF2 model's classes
        votes.append(predict_q1_baseline(method, xb, q2, nc, aligned=True, qmax=WIDE_RANGE))
        if progress:
            progress(len(xb))
    v = np.concatenate(votes)
    q1 = np.array([np.bincount(v[:, k]).argmax() for k in range(nc)], dtype=np.int64)
    return q1, (v == q1).mean(0)


GRID_MIN_CONFIDENCE = 0.5  # a shifted first grid is trusted when it beats the runner-up this clearly
AGREE_MIN = 0.5  # aligned: a table is given when the windows agree this much on average
NA_SIDE = 1024  # the non-aligned model reads at most this square of the image (its centre)


TRACE_BINS = 3  # a coefficient can show a first quantization when its values fill at least this many bins
TRACE_SHARE = 0.005  # a bin counts when at least this share of the blocks (and 3 blocks) fall in it
TRACE_COEFFICIENTS = 3  # and at least this many AC coefficients must do so for any answer


def readable_coefficients(rgb, origins, q2, nc: int = NC) -> np.ndarray:
    """For AC coefficients 2..nc (zig-zag), the number of bins their values fill after the last
    quantization over the 8x8 blocks of the windows at ``origins``: the bins a first compression
    could have emptied (Section 2: the trace is a comb in each coefficient's histogram). Flat or
    smooth content, or Q2 steps that round everything to zero, fill one bin: no comb to read.
    A bin counts when TRACE_SHARE of the blocks (and 3) fall in it."""
    y = jpeg.to_luma(rgb)
    c = jpeg.block_dct_batch(np.stack([y[a:a + PATCH, b:b + PATCH] for a, b in origins]), nc=nc)[..., 1:]
    c = c.reshape(-1, nc - 1)
    q = np.rint(c / jpeg.zigzag(q2)[1:nc])
    least = max(3, TRACE_SHARE * len(q))
    return np.array([(np.unique(col, return_counts=True)[1] >= least).sum() for col in q.T])


def no_trace_reason(bins, q2, nc: int = NC) -> str | None:
    """Why a file cannot tell its first compression (None when it can): fewer than
    TRACE_COEFFICIENTS AC coefficients fill TRACE_BINS bins (:func:`readable_coefficients`)."""
    n = int((np.asarray(bins) >= TRACE_BINS).sum())
    if n >= TRACE_COEFFICIENTS:
        return None
    steps = jpeg.zigzag(q2)[1:nc]
    cause = (f"Q2's steps (up to {int(steps.max())}) round the content to zero" if steps.max() > 255 else
             "the content is flat or smooth (no texture for a first quantization to mark)")
    return (f"cannot tell: {n} of the {nc - 1} AC coefficients 2-{nc} take {TRACE_BINS} or more values after the last "
            f"quantization in the windows read (at least {TRACE_COEFFICIENTS} needed); {cause}, so single and double "
            "compression look alike here")


def estimate_grid(rgb, progress=None) -> tuple[tuple[int, int], float]:
    """The first compression's grid shift (r, c) of a whole file, if one other than the last
    compression's stands out, and its confidence (see :func:`qpaper.grid.find_grid`)."""
    from . import grid
    return grid.find_grid(jpeg.to_luma(rgb), progress=progress)


def estimate_nonaligned(rgb, q2, shift, nc: int = NC) -> np.ndarray:
    """Q1 by the NA-DJPG model of [5] on the first grid ``shift`` (r, c), over the blocks of the
    image's centre (at most NA_SIDE square, cut on the 8x8 grid so the shift is kept)."""
    from . import grid
    from .baselines import bianchi, common
    crop = grid.centre_crop(rgb, NA_SIDE)
    return bianchi.nonaligned_batch(common.luma_batch(crop[None]), q2, np.array([shift]), nc)[0]


def verdict(q1, q2, nc: int = NC, agreement=None) -> str:
    """Footnote 3 of the paper: on a single-compressed image the network answers close to QF 100
    (all steps 1); an estimate equal to Q2 carries no evidence of another first compression.
    With ``agreement`` (the model-based methods' share of windows behind each answer), answers
    that differ from Q2 count only when at least AGREE_MIN of the windows give them."""
    q1 = np.asarray(q1)
    z2 = jpeg.zigzag(q2)[:nc]
    if np.abs(q1 - 1).mean() <= 0.5:
        return "looks single-compressed (the estimate is close to QF 100, the paper's footnote 3)"
    if np.array_equal(q1, z2):
        return "no evidence of a different first compression (the estimate equals Q2)"
    if agreement is not None:
        differ = np.flatnonzero(q1 != z2)
        if (np.asarray(agreement)[differ] < AGREE_MIN).all():
            return (f"no evidence of a different first compression (the answers that differ from Q2, coefficient(s) "
                    f"{', '.join(str(k + 1) for k in differ)}, have fewer than {AGREE_MIN:.0%} of the windows behind them)")
    return "double-compressed: the first compression differs from the last"


METHODS = ("file", "cnn", "galvan", "bianchi")


def method_of(kw: dict) -> str:
    """The method a run with these options uses: ``method`` when given, else ``cnn`` when a
    window model or one window is named, else ``file``."""
    if kw.get("method"):
        return kw["method"]
    return "cnn" if kw.get("model") or kw.get("window") is not None else "file"


def run(path, model: str | None = None, method: str | None = None, window=None, max_windows: int = 512,
        max_megapixels: float | None = 120.0, seed: int = 0, nc: int = NC, progress: bool = True,
        models: dict | None = None) -> dict:
    """Everything ``qpaper estimate`` prints, as a dict. ``method``: ``file`` (the default; the
    file-level estimator over every block, :mod:`qpaper.filelevel`), ``cnn`` (a window model,
    the default when ``model`` or ``window`` is given), ``galvan`` [7] or ``bianchi`` [5].
    ``models``: a cache of loaded models kept across files (see :func:`run_one`,
    :mod:`qpaper.batch`)."""
    from tqdm import tqdm
    method = method_of(dict(method=method, model=model, window=window))
    if method not in METHODS:
        raise InputError(f"unknown method {method!r} ({', '.join(METHODS)})")
    if method == "file" and window is not None:
        raise InputError("--window reads one 64x64 window: use a window model (--method cnn) for it")
    img = read_jpeg(path, max_megapixels)
    q2 = img["q2"]
    qf2, qf2_dist = jpeg.nearest_standard_qf(q2)
    warnings = []
    if qf2_dist > 0:
        warnings.append(f"Q2 is not a standard IJG table (nearest QF {qf2}, mean |difference| {qf2_dist:.2f})")
    if window is not None:
        x, y = window
        h, w = img["size"]
        if not (0 <= x <= w - PATCH and 0 <= y <= h - PATCH):
            raise InputError(f"window at x={x} y={y} does not fit a {w}x{h} image")
        if x % 8 or y % 8:
            warnings.append("the window is not on the file's 8x8 grid: the estimators expect x and y multiples of 8")
        origins = np.array([[y, x]])
    else:
        origins = window_origins(img["size"], max_windows, seed)
    if img["orientation"] not in (None, 1):
        warnings.append(f"the file carries EXIF orientation {img['orientation']} (viewers show it "
                        f"{jpeg.ORIENTATIONS[img['orientation']]}); the stored pixels and their 8x8 grid were "
                        "analysed, as forensics must, not the displayed picture")
    if img["stray"]:
        n, at = sum(c for _, c in img["stray"]), img["stray"][0][0]
        warnings.append(f"{n} stray byte(s) between markers (first at byte {at}) were skipped, as libjpeg skips them: "
                        "the file was edited or damaged after it was written; its tables and pixels were read as "
                        "the decoder reads them")
    warnings += img["decoder"]
    if img["trailer"]:
        warnings.append(f"{img['trailer']} bytes after the end-of-image marker (a motion-photo video or vendor "
                        "data) were ignored")
    out = {"file": str(path), "size": list(img["size"]), "progressive": img["progressive"],
           "coding": img["coding"], "orientation": img["orientation"],
           "q2": jpeg.zigzag(q2)[:nc].tolist(), "qf2": qf2, "qf2_distance": round(qf2_dist, 3), "method": method,
           "options": options_of(dict(method=method, model=model, window=window, max_windows=max_windows, seed=seed)),
           "windows": int(len(origins))}
    bar = (tqdm(total=64, unit="grid", desc="first grid, then every block", disable=not progress) if method == "file"
           else tqdm(total=len(origins), unit="window", desc="estimating", disable=not progress or len(origins) < 64))
    q1 = conf = no_table = None
    bins = readable_coefficients(img["rgb"], origins, q2, nc)
    out["readable_coefficients"] = int((bins >= TRACE_BINS).sum())
    no_table = no_trace_reason(bins, q2, nc)
    if no_table:  # nothing an estimator says here is evidence (issue 25, item 13)
        pass
    elif method == "file":
        from . import filelevel, registry
        fm, out["model"] = registry.file_model(model, models)
        with quiet_stderr():
            ev = filelevel.read_evidence(path, img["data"], seed, bar.update)
        a = filelevel.answer(ev, fm)
        q1, conf = a["q1"], a["confidence"]
        out.update(blocks=ev["blocks"], grid_shift=list(ev["shift"]),
                   grid_confidence=round(ev["grid_confidence"] if not ev["aligned"] else 1 - ev["grid_confidence"], 3),
                   at_least=a["at_least"].tolist(),
                   no_trace=a["no_trace"].tolist(), uncertain=a["uncertain"].tolist(),
                   evidence_nats=[round(float(g), 1) for g in a["evidence_nats"]],
                   traced_coefficients=a["traced_coefficients"], double=bool(a["double"]))
        del out["windows"]
    elif method == "cnn":
        from . import registry
        m, out["model"], trained, gap = registry.model_for(q2, model, models)
        if trained is not None:
            out["model_qf2"] = trained
        if gap > 2:
            warnings.append(f"no model for QF2 {qf2}: using the QF2-{trained} model (gap {gap}; the paper "
                            "finds a gap of 2 costs little, larger ones more)")
        q1, conf, agree = estimate_cnn(m, img["rgb"], origins, nc, bar.update, q2)
        from .model import head_of
        if head_of(m) == "wide":
            out.update(coefficient_notes(q1, agree, q2, nc))
    elif method in ("galvan", "bianchi"):
        # Both model the double quantization on one grid: find the first grid before trusting them.
        with tqdm(total=64, unit="grid", desc="first grid", disable=not progress) as gbar:
            shift, gconf = estimate_grid(img["rgb"], gbar.update)
        ref = "[7]" if method == "galvan" else "[5]"
        if gconf >= GRID_MIN_CONFIDENCE:
            out.update(grid_shift=list(shift), grid_confidence=round(gconf, 3))
            if method == "bianchi":
                q1, conf = estimate_nonaligned(img["rgb"], q2, shift, nc), np.full(nc, np.nan)
            else:
                no_table = (f"double-compressed on a shifted grid: the first grid is shifted by {shift} "
                            f"(confidence {gconf:.2f}); {ref} models aligned grids only and gives no table here: "
                            "use --method cnn or --method bianchi")
        else:
            out.update(grid_shift=[0, 0], grid_confidence=round(1 - gconf, 3))
            q1, conf = estimate_baseline(method, img["rgb"], origins, q2, nc, bar.update)
            if conf.mean() < AGREE_MIN:
                no_table = (f"no reliable first grid found: no shifted grid stands out and on the aligned grid the "
                            f"windows agree on {conf.mean():.0%} of the answers on average; {ref} sees no first "
                            "compression (single-compressed, or one it cannot read)")
                q1 = None
    bar.close()
    if img["progressive"]:
        warnings.append("progressive JPEG: decoded and estimated like a baseline one (training used baseline files)")
    if q1 is None:
        out.update(q1=None, confidence=None, nearest=None, verdict=no_table, warnings=warnings)
        return out
    out.update(q1=q1.tolist(), confidence=[None if np.isnan(c) else round(float(c), 3) for c in conf],
               nearest=jpeg.nearest_tables(q1, nc), warnings=warnings,
               verdict=verdict(q1, q2, nc, None if method == "cnn" or np.isnan(conf).all() else conf))
    if method == "file":
        out["nearest"] = nearest_supported(q1, out, nc)
        out["verdict"] = file_verdict(out)
    elif "no_trace" in out:
        out["nearest"] = nearest_supported(q1, out, nc)
        if not out["nearest"]["supported"] and out["verdict"].startswith("double"):
            out["verdict"] = ("no readable trace of a first compression: every coefficient is uncertain or has no trace "
                              "(single-compressed, or first compressed more finely than the last)")
    return out


def file_verdict(r: dict) -> str:
    """The file-level estimator's verdict: a first compression is shown when enough coefficients
    carry evidence of one (calibrated on single-compressed files of the training scenes)."""
    n = r["traced_coefficients"]
    if not r["double"]:
        return (f"no evidence of a first compression ({n} of the 15 coefficients show a first quantization, too few): "
                "single-compressed, or first compressed as finely as or more finely than the last")
    return f"double-compressed: {n} of the 15 coefficients show a first quantization other than the last"


def notes(r: dict) -> list[str]:
    """Per coefficient of a result: "at least", "no trace", "uncertain" or "" (wide head only)."""
    if "no_trace" not in r or r.get("q1") is None:
        return [""] * len(r.get("q1") or [])
    return ["; ".join(w for w, f in (("at least", a), ("no trace", t), ("uncertain", u)) if f)
            for a, t, u in zip(r["at_least"], r["no_trace"], r["uncertain"])]


UNCERTAIN_AGREE = 0.5  # a coefficient is "uncertain" when fewer of the windows give its answer


def coefficient_notes(q1, agree, q2, nc: int = NC) -> dict:
    """What each coefficient of a wide-head estimate supports (issue 21): ``at_least`` where the
    answer is the last class ("at least R + 1", :mod:`qpaper.tables`), ``no_trace`` where the
    estimated q1 divides q2 or is below it (the second quantization left no comb of q1: the
    answer is a prior, not a reading), ``uncertain`` where the windows disagree (fewer than
    UNCERTAIN_AGREE give the answer), and ``agreement``, the share of windows behind each
    answer. The confidence is not an input: calibrated on single patches, it says how often
    one window is right, and the file's answer, pooled over its windows, is right more often
    (``results/benchmarks/estimate.txt`` measures both)."""
    from .tables import WIDE_RANGE
    q1, z2 = np.asarray(q1), jpeg.zigzag(q2)[:nc]
    at_least = q1 > WIDE_RANGE[:nc]
    no_trace = ~at_least & ((q1 <= z2) | (z2 % np.maximum(q1, 1) == 0))
    uncertain = np.asarray(agree) < UNCERTAIN_AGREE
    return {"at_least": at_least.tolist(), "no_trace": no_trace.tolist(), "uncertain": uncertain.tolist(),
            "agreement": [round(float(a), 3) for a in agree]}


def nearest_supported(q1, r: dict, nc: int = NC) -> dict:
    """The nearest standard QF1 and Photoshop quality over the coefficients a wide-head estimate
    supports (a trace, a definite value, windows that agree), with how many those are; a table
    is called a match only where every one of them equals it (``matches``)."""
    ok = ~(np.array(r["no_trace"]) | np.array(r["at_least"]) | np.array(r["uncertain"]))
    if not ok.any():
        return {**jpeg.nearest_tables(q1, nc), "supported": 0, "matches": None}
    n = jpeg.nearest_tables(q1, nc, ok)
    match = f"IJG QF {n['qf']}" if n["qf_distance"] == 0 else f"Photoshop {n['photoshop']}" \
        if n["photoshop_distance"] == 0 else None
    return {**n, "supported": int(ok.sum()), "matches": match}


JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")


def expand_inputs(paths, errors: list | None = None) -> list[Path]:
    """Files as given, and under each folder, recursively and sorted, every name with a JPEG
    suffix that is not a folder (a FIFO or a dangling link too: it gets its error row rather than
    vanishing). ``errors``: a list that receives (folder, reason) for each subfolder that cannot
    be read."""
    import os
    out = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(p)
            continue

        def unreadable(e, errors=errors):
            if errors is not None:
                errors.append((Path(e.filename), f"cannot read folder: {e.strerror}"))

        found = []
        for top, dirs, names in os.walk(p, onerror=unreadable):
            dirs.sort()
            found += [Path(top) / n for n in names if Path(n).suffix.lower() in JPEG_SUFFIXES
                      and not (Path(top) / n).is_dir()]
        out += sorted(found)
    return out


def shown(path) -> str:
    """A file name as one printable line: undecodable bytes as \\x.., control characters escaped."""
    return printable(path)


def run_one(path, models: dict, **kw) -> dict:
    """:func:`run` on one file of a batch: its dict, or ``{"file", "error"}`` with the reason in one
    line when it cannot be estimated (``InputError``, ``JpegError``, ``RegistryError``, an I/O
    error), so that the batch goes on. ``models``: the cache of loaded models kept across files."""
    try:
        return run(path, progress=False, models=models, **kw)
    except (ValueError, OSError, MemoryError) as e:
        return {"file": str(path), "error": error_line(e)}


def options_of(kw: dict) -> str:
    """The options that change a file's estimate, as one text: recorded in every row of a table
    and compared by ``--resume``, which never merges estimates made with other options (issue 32,
    item 6)."""
    window = kw.get("window")
    return (f"method={method_of(kw)} model={kw.get('model') or 'registered'} "
            f"window={'-' if window is None else ','.join(map(str, window))} "
            f"max_windows={kw.get('max_windows', 512)} seed={kw.get('seed', 0)}")


CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_cell(v):
    """A text cell a spreadsheet would run as a formula (it starts with =, +, -, @, a tab or a CR)
    gets a leading ``'`` (OWASP's CSV-injection advice); so does one that starts with ``'``, so that
    :func:`csv_uncell` gives every text back."""
    return "'" + v if isinstance(v, str) and v.startswith(CSV_TRIGGERS) else v


def csv_uncell(v: str) -> str:
    return v[1:] if v.startswith("'") else v


CSV_FIELDS = (["file", "qf2", "method", "model", "options", "grid_shift"] + [f"q2_{k}" for k in range(1, NC + 1)]
              + [f"q1_{k}" for k in range(1, NC + 1)] + [f"confidence_{k}" for k in range(1, NC + 1)]
              + [f"note_{k}" for k in range(1, NC + 1)] + ["nearest_qf1", "nearest_matches", "verdict", "warnings",
                                                           "error"])


def csv_row(r: dict) -> dict:
    """One row of ``--csv``: the columns of CSV_FIELDS, empty where a value does not apply."""
    row = {k: "" for k in CSV_FIELDS}
    row.update(file=r["file"], error=r.get("error", ""))
    if "error" in r:
        return {k: csv_cell(v) for k, v in row.items()}
    row.update(qf2=r["qf2"], method=r["method"], model=r.get("model", ""), options=r.get("options", ""),
               verdict=r["verdict"],
               grid_shift=" ".join(map(str, r["grid_shift"])) if "grid_shift" in r else "",
               nearest_qf1=r["nearest"]["qf"] if r["nearest"] else "", warnings=" | ".join(r["warnings"]))
    for k, v in enumerate(r["q2"], 1):
        row[f"q2_{k}"] = v
    for k, v in enumerate(r["q1"] or [], 1):
        row[f"q1_{k}"] = v
    for k, v in enumerate(r["confidence"] or [], 1):
        row[f"confidence_{k}"] = "" if v is None else v
    for k, v in enumerate(notes(r), 1):
        row[f"note_{k}"] = v
    if r["nearest"] and "matches" in r["nearest"]:
        row["nearest_matches"] = r["nearest"]["matches"] or "none"
    return {k: csv_cell(v) for k, v in row.items()}


def summary_line(r: dict) -> str:
    """One line per file for the text output of many files."""
    if "error" in r:
        return f"{shown(r['file'])}: error: {r['error']}"
    qf1 = f"nearest QF1 {r['nearest']['qf']} (mean |difference| {r['nearest']['qf_distance']:.2f})" if r["nearest"] \
        else "no table"
    return f"{shown(r['file'])}: QF2 {r['qf2']}, {qf1}; {r['verdict']}"


def format_text(r: dict) -> str:
    h, w = r["size"]
    lines = [f"file: {shown(r['file'])} ({w}x{h} as stored, {r['coding']})",
             f"Q2 (zig-zag 1..{len(r['q2'])}): {' '.join(map(str, r['q2']))}  -> nearest standard QF {r['qf2']} "
             f"(mean |difference| {r['qf2_distance']:.2f})",
             f"method: {r['method']}" + (f", model {shown(r['model'])}" if r.get("model") else "")
             + (f" (trained for QF2 {r['model_qf2']})" if r.get("model_qf2") else ""),
             (f"blocks: {r['blocks']} 8x8 blocks of the whole file" if "blocks" in r else
              f"windows: {r['windows']} of 64x64 on the file's 8x8 grid")]
    if "grid_shift" in r:
        if r["grid_shift"] == [0, 0]:
            lines.append(f"first grid: aligned assumed (no shifted grid stands out; confidence {r['grid_confidence']:.2f})")
        else:
            lines.append(f"first grid: shifted by {tuple(r['grid_shift'])} (rows, columns cropped after the first "
                         f"compression), confidence {r['grid_confidence']:.2f}")
    if r["q1"] is None:
        lines += [f"verdict: {r['verdict']}"] + [f"warning: {w}" for w in r["warnings"]]
        return "\n".join(lines)
    n = r["nearest"]
    if "evidence_nats" in r:
        lines += ["estimated Q1 (zig-zag), with confidence, the evidence for that step (nats over no first "
                  "quantization) and what it supports:", "    k    q1  confidence  evidence  note"]
        for k, (q, c, e, note) in enumerate(zip(r["q1"], r["confidence"], r["evidence_nats"], notes(r)), 1):
            q = f">={q}" if r["at_least"][k - 1] else str(q)
            lines.append(f"  {k:3d}  {q:>4s}  {c:10.3f}  {e:8.0f}  {note}")
    elif "no_trace" in r:
        lines += ["estimated Q1 (zig-zag), with confidence, the share of windows behind it, and what it supports:",
                  "    k    q1  confidence  windows  note"]
        for k, (q, c, a, note) in enumerate(zip(r["q1"], r["confidence"], r["agreement"], notes(r)), 1):
            q = f">={q}" if r["at_least"][k - 1] else str(q)
            lines.append(f"  {k:3d}  {q:>4s}  {c:10.3f}  {a:7.2f}  {note}")
    if "no_trace" in r:
        over = f"the {n['supported']} supported coefficients" if n["supported"] else "all 15 (none is supported)"
        lines += [f"nearest standard QF1: {n['qf']} (mean |difference| {n['qf_distance']:.2f} over {over})",
                  f"nearest Photoshop quality: {n['photoshop']} (mean |difference| {n['photoshop_distance']:.2f})",
                  "standard table: " + (f"matches {n['matches']} on the supported coefficients" if n["matches"] else
                                        "none matches the supported coefficients (a camera, phone or editor table?)")]
    else:
        lines += ["estimated Q1 (zig-zag), with confidence:", "    k   q1  confidence"]
        for k, (q, c) in enumerate(zip(r["q1"], r["confidence"]), 1):
            lines.append(f"  {k:3d}  {q:3d}  {'-' if c is None else f'{c:.3f}'}")
        lines += [f"nearest standard QF1: {n['qf']} (mean |difference| {n['qf_distance']:.2f} over {len(r['q1'])} "
                  "values)", f"nearest Photoshop quality: {n['photoshop']} (mean |difference| "
                  f"{n['photoshop_distance']:.2f})"]
    lines.append(f"verdict: {r['verdict']}")
    lines += [f"warning: {w}" for w in r["warnings"]]
    return "\n".join(lines)
