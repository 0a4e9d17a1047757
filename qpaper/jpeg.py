"""JPEG quantization tables, zig-zag order, file parsing and the two encoders (paper, Section 2).

Tables are 8x8 ``uint16`` arrays in natural (row-major) order unless a name says ``zigzag``.
``q1`` in the paper is the 64-vector of the first table in zig-zag order; the network estimates
its first ``nc`` entries, bounded by ``q_max`` (the QF 50 table, Section 3.1).
"""

from __future__ import annotations

import hashlib
import io
import re
import struct

import cv2
import numpy as np
from PIL import Image

NC = 15  # Section 4.3: the first 15 zig-zag coefficients.
PATCH = 64  # Section 4.2: the network reads 64x64 patches.

# ZIGZAG[k] is the natural (row-major) index of the k-th coefficient in zig-zag order
# (ITU-T T.81, Figure 5).
ZIGZAG = np.array([
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
], dtype=np.intp)

# IJG base tables (ITU-T T.81 Annex K, Tables K.1 and K.2), natural order.
STD_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.uint16).reshape(8, 8)
STD_CHROMINANCE = np.array([
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
], dtype=np.uint16).reshape(8, 8)

# Photoshop "Save As" luminance tables (natural order), from ../shared/reference/
# prior-implementations.md; each is checked in tests against ExifTool's MD5 fingerprint.
PHOTOSHOP_LUMINANCE = {
    8: [6, 4, 4, 6, 9, 11, 12, 16, 4, 5, 5, 6, 8, 10, 12, 12, 4, 5, 5, 6, 10, 12, 12, 12,
        6, 6, 6, 11, 12, 12, 12, 12, 9, 8, 10, 12, 12, 12, 12, 12, 11, 10, 12, 12, 12, 12, 12, 12,
        12, 12, 12, 12, 12, 12, 12, 12, 16, 12, 12, 12, 12, 12, 12, 12],
    9: [4, 3, 3, 4, 6, 7, 8, 10, 3, 3, 3, 4, 5, 6, 8, 10, 3, 3, 3, 4, 6, 9, 12, 12,
        4, 4, 4, 7, 9, 12, 12, 12, 6, 5, 6, 9, 12, 12, 12, 12, 7, 6, 9, 12, 12, 12, 12, 12,
        8, 8, 12, 12, 12, 12, 12, 12, 10, 10, 12, 12, 12, 12, 12, 12],
    10: [2, 2, 2, 2, 3, 4, 5, 6, 2, 2, 2, 2, 3, 4, 5, 6, 2, 2, 2, 2, 4, 5, 7, 9,
         2, 2, 2, 4, 5, 7, 9, 12, 3, 3, 4, 5, 8, 10, 12, 12, 4, 4, 5, 7, 10, 12, 12, 12,
         5, 5, 7, 9, 12, 12, 12, 12, 6, 6, 9, 12, 12, 12, 12, 12],
    12: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2,
         1, 1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 1, 2, 2, 3, 1, 1, 1, 1, 2, 2, 3, 3,
         1, 1, 1, 2, 2, 3, 3, 3, 1, 1, 2, 2, 3, 3, 3, 3],
}
PHOTOSHOP_LUMINANCE = {k: np.array(v, dtype=np.uint16).reshape(8, 8)
                       for k, v in PHOTOSHOP_LUMINANCE.items()}
# ExifTool's grayscale fingerprints (MD5 of 0x00 + 64 zig-zag bytes). Qualities 7 and 11 are
# known only by these: their tables are not reproduced here, and nothing is guessed.
PHOTOSHOP_MD5 = {
    7: "6579941db0216f41f0a20de9b626538a",
    8: "57aa47876e10c6b4f35ecb8889e55ad9",
    9: "076598d43c5186f6d7a1020b64b93625",
    10: "37132e8ea81137fdf26ce30926ab8100",
    11: "46f55ee294723cee9faa816549b3cfa7",
    12: "7b83284f61decf47ab3f8f7361c18943",
}
SUBSAMPLINGS = ("4:2:0", "4:2:2", "4:4:4")


class JpegError(ValueError):
    """A file is not a JPEG we can read; the message is one line for the user."""


def standard_table(qf: int, chroma: bool = False) -> np.ndarray:
    """IJG table at quality ``qf`` (1..100), as libjpeg's jpeg_quality_scaling and
    jpeg_add_quant_table compute it with force_baseline (values clamped to 1..255)."""
    qf = int(qf)
    if not 1 <= qf <= 100:
        raise ValueError(f"quality factor must be in 1..100, got {qf}")
    scale = 5000 // qf if qf < 50 else 200 - 2 * qf
    base = (STD_CHROMINANCE if chroma else STD_LUMINANCE).astype(np.int64)
    table = (base * scale + 50) // 100
    return np.clip(table, 1, 255).astype(np.uint16)


def dct_matrix(n: int = 8) -> np.ndarray:
    """The orthonormal DCT-II matrix of JPEG's forward transform (``D @ block @ D.T``, ITU-T T.81
    A.3.3): row u is the basis vector of frequency u."""
    k = np.arange(n)[:, None]
    d = np.cos(np.pi * (2 * np.arange(n)[None] + 1) * k / (2 * n)) * np.sqrt(2 / n)
    d[0] /= np.sqrt(2)
    return d


def block_dct(gray: np.ndarray, level_shift: float = 128.0) -> np.ndarray:
    """DCT of every whole 8x8 block of a grayscale image (less ``level_shift``, as JPEG), as
    float64 [blocks, 64] in zig-zag order: the values a quantizer divides by its steps."""
    h, w = (s - s % 8 for s in gray.shape[:2])
    b = gray[:h, :w].astype(np.float64).reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3) - level_shift
    d = dct_matrix()
    return np.einsum("ij,abjk,lk->abil", d, b, d).reshape(-1, 64)[:, ZIGZAG]


# 2-D DCT of a row-major flattened 8x8 block b: vec(D b D^T) = kron(D, D) @ vec(b); rows
# permuted to zig-zag order, so that the first nc rows give the first nc coefficients.
_D = dct_matrix()
_KZ = np.ascontiguousarray(np.kron(_D, _D)[ZIGZAG])
# DCT coefficients are snapped to multiples of 2^-SNAP_BITS (see block_dct_batch)
SNAP_BITS = 30


def block_dct_batch(gray: np.ndarray, dy: int = 0, dx: int = 0, nby: int | None = None,
                    nbx: int | None = None, nc: int = 64) -> np.ndarray:
    """DCT (level shift 128, orthonormal, as JPEG) of the 8x8 blocks of a [N,H,W] batch on the
    grid whose first block starts at row ``dy``, column ``dx``; ``nby x nbx`` blocks (default: as
    many as fit). Returns float64 [N, blocks, nc], the first ``nc`` coefficients in zig-zag order;
    equal to :func:`qpaper.jpeg.block_dct` patch by patch up to the snapping below.

    One BLAS matrix product ``blocks[N*blocks, 64] @ KZ[:nc].T`` with the 64x64 Kronecker DCT
    basis in zig-zag order. The result is then snapped to the nearest multiple of 2^-30
    (``SNAP_BITS``): many coefficients of real blocks are exact rationals (the DC, (0,4), (4,0)
    and (4,4) coefficients are multiples of 1/8; flat and clipped blocks give more), and their
    rounding to a step, round(c / q) in the estimators, can sit exactly on a tie that the
    last-bit error of the floating-point DCT would decide, differently for another BLAS kernel,
    thread count or position in the batch. Snapping makes those values exact, so ties go
    to even (``np.rint``) deterministically; it moves other values by at most 5e-10 (the
    floating-point error of the DCT is ~1e-13)."""
    n, h, w = gray.shape
    nby = (h - dy) // 8 if nby is None else nby
    nbx = (w - dx) // 8 if nbx is None else nbx
    b = gray[:, dy:dy + 8 * nby, dx:dx + 8 * nbx].reshape(n, nby, 8, nbx, 8).transpose(0, 1, 3, 2, 4)
    b = b.reshape(-1, 64).astype(np.float64)
    b -= 128.0
    c = b @ _KZ[:nc].T
    c *= 2.0 ** SNAP_BITS
    np.rint(c, out=c)
    c *= 2.0 ** -SNAP_BITS
    return c.reshape(n, nby * nbx, nc)


def zigzag(table: np.ndarray) -> np.ndarray:
    """8x8 natural-order table -> 64-vector in zig-zag order."""
    return np.asarray(table).reshape(64)[ZIGZAG]


def unzigzag(vector) -> np.ndarray:
    """64-vector in zig-zag order -> 8x8 natural-order table."""
    out = np.empty(64, dtype=np.asarray(vector).dtype)
    out[ZIGZAG] = np.asarray(vector).reshape(64)
    return out.reshape(8, 8)


def q_max(nc: int = NC) -> np.ndarray:
    """Section 3.1: the class count of each output block, the first ``nc`` zig-zag values of
    the QF 50 luminance table (nc=15: 16,11,12,14,12,10,16,14,13,14,18,17,16,19,24)."""
    return zigzag(standard_table(50))[:nc].astype(np.int64)


def blocks(sizes) -> list[tuple[int, int]]:
    """(start, stop) of each output block of sizes ``sizes`` (e.g. ``q_max(nc)``) in the
    concatenated head of Section 3.1."""
    ends = np.cumsum([int(s) for s in sizes])
    return [(int(e - s), int(e)) for s, e in zip(sizes, ends)]


def photoshop_table(quality: int) -> np.ndarray:
    """Photoshop "Save As" luminance table of ``quality`` (8, 9, 10 or 12)."""
    if quality in PHOTOSHOP_LUMINANCE:
        return PHOTOSHOP_LUMINANCE[quality].copy()
    if quality in PHOTOSHOP_MD5:
        raise ValueError(f"Photoshop quality {quality}: table unknown here (only its MD5 "
                         f"fingerprint {PHOTOSHOP_MD5[quality]} is known)")
    raise ValueError(f"Photoshop quality {quality}: no table (known: 8, 9, 10, 12)")


def dqt_md5(table: np.ndarray) -> str:
    """ExifTool's JPEGDigest fingerprint of a one-table file: MD5 of a zero byte then the 64
    values in zig-zag order."""
    return hashlib.md5(b"\x00" + bytes(zigzag(table).astype(np.uint8).tolist())).hexdigest()


# ---------------------------------------------------------------------------------------------
# Reading tables from files: a direct DQT/SOF parser (T.81 B.2.4.1), independent of Pillow.

# Frame types (T.81 Table B.1): the SOF marker says how the scans are coded.
SOF_KINDS = {
    0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive", 0xC3: "lossless",
    0xC5: "differential sequential", 0xC6: "differential progressive", 0xC7: "differential lossless",
    0xC9: "extended sequential, arithmetic-coded", 0xCA: "progressive, arithmetic-coded",
    0xCB: "lossless, arithmetic-coded", 0xCD: "differential sequential, arithmetic-coded",
    0xCE: "differential progressive, arithmetic-coded", 0xCF: "differential lossless, arithmetic-coded",
}
# EXIF orientation (TIFF tag 0x0112): how a viewer turns the stored pixels for display.
ORIENTATIONS = {1: "as stored", 2: "mirrored", 3: "rotated 180 degrees", 4: "flipped upside down",
                5: "transposed", 6: "rotated 90 degrees clockwise", 7: "transversed",
                8: "rotated 90 degrees counter-clockwise"}
# In entropy-coded data 0xFF is followed by 0x00 (a stuffed byte), a restart marker or fill
# 0xFF bytes; anything else is the next marker (T.81 B.1.1.5).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _exif_orientation(seg: bytes) -> int | None:
    """The orientation tag of an APP1 Exif segment (IFD0), or None."""
    if not seg.startswith(b"Exif\x00\x00") or len(seg) < 14:
        return None
    t = seg[6:]
    order = {b"II": "<", b"MM": ">"}.get(t[:2])
    if order is None:
        return None
    try:
        (ifd,) = struct.unpack(order + "I", t[4:8])
        (n,) = struct.unpack(order + "H", t[ifd:ifd + 2])
        for k in range(n):
            e = t[ifd + 2 + 12 * k:ifd + 14 + 12 * k]
            tag, typ, count = struct.unpack(order + "HHI", e[:8])
            if tag == 0x0112 and typ == 3 and count >= 1:
                v = struct.unpack(order + "H", e[8:10])[0]
                return v if v in ORIENTATIONS else None
    except struct.error:
        return None
    return None


def read_qtables(source) -> dict:
    """Parse a JPEG's markers (T.81 Annex B). Returns {"tables": {slot: 8x8 natural},
    "components": [(id, h, v, table_slot)], "progressive": bool, "coding": the frame type
    (:data:`SOF_KINDS`), "size": (height, width), "orientation": EXIF tag or None, "end": offset
    just past the end-of-image marker (None: the scan is cut off), "trailer": bytes after it,
    "stray": (offset, count) of bytes found between segments where a marker was due, skipped as
    libjpeg skips them ("extraneous bytes before marker")}.
    Tables are those defined before the first scan. ``source`` is a path or bytes.
    Malformed segments raise :class:`JpegError` with one line."""
    if not isinstance(source, (bytes, bytearray)):
        from .paths import check_input_file
        try:
            source = check_input_file(source).read_bytes()
        except ValueError as e:
            raise JpegError(str(e)) from None
    data = bytes(source)
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        raise JpegError("not a JPEG file (no SOI marker)")
    tables, components, sof, size, orientation, scanned, end, pos = {}, None, None, None, None, False, None, 2
    stray = []  # (offset, count) of bytes between markers, skipped as libjpeg skips them (with a warning)
    while pos < len(data):
        # libjpeg's next_marker: skip to an FF that (after fill FFs) is followed by a byte other than
        # 00; the bytes skipped, an "FF 00" among them, are stray ("extraneous bytes before marker")
        start = run = pos
        while True:
            run = data.find(b"\xff", pos)
            if run < 0:
                raise JpegError(f"corrupt JPEG: expected a marker at byte {start}, and none follows")
            pos = run
            while pos < len(data) and data[pos] == 0xFF:
                pos += 1
            if pos >= len(data) or data[pos] != 0x00:
                break
            pos += 1
        if run > start:
            stray.append((start, run - start))
        if pos >= len(data):
            break
        marker = data[pos]
        pos += 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        if marker == 0xD9:
            end = pos
            break
        if pos + 2 > len(data):
            break  # cut off inside a marker
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if length < 2:
            raise JpegError(f"corrupt JPEG: marker 0xFF{marker:02X} at byte {pos - 2} has length {length}")
        seg = data[pos + 2:pos + length]
        if len(seg) != length - 2:
            if not scanned:
                raise JpegError("truncated JPEG: a marker segment is cut off")
            break
        if marker == 0xDB and not scanned:
            i = 0
            while i < len(seg):
                pq, tq = seg[i] >> 4, seg[i] & 15
                if pq > 1 or tq > 3:
                    raise JpegError(f"corrupt JPEG: quantization table with precision {pq} and slot {tq}")
                n = 128 if pq else 64
                raw = seg[i + 1:i + 1 + n]
                if len(raw) != n:
                    raise JpegError("corrupt JPEG: short quantization table")
                vals = np.frombuffer(raw, dtype=">u2" if pq else np.uint8).astype(np.uint16)
                if not vals.all():
                    raise JpegError(f"invalid JPEG: quantization table {tq} has {int((vals == 0).sum())} zero "
                                    "step(s) (ITU-T T.81 allows 1..255, or 1..65535 at 16-bit precision)")
                tables[tq] = unzigzag(vals)
                i += 1 + n
        elif marker in SOF_KINDS and sof is None:
            if len(seg) < 6:
                raise JpegError("corrupt JPEG: frame header (SOF) is too short")
            ncomp = seg[5]
            if ncomp == 0 or len(seg) < 6 + 3 * ncomp:
                raise JpegError(f"corrupt JPEG: frame header (SOF) of {len(seg) + 2} bytes cannot hold its "
                                f"{ncomp} component(s)")
            sof = marker
            size = struct.unpack(">HH", seg[1:5])
            components = [(seg[6 + 3 * k], seg[7 + 3 * k] >> 4, seg[7 + 3 * k] & 15, seg[8 + 3 * k])
                          for k in range(ncomp)]
        elif marker == 0xE1 and orientation is None:
            orientation = _exif_orientation(seg)
        pos += length
        if marker == 0xDA:  # entropy-coded data follows: skip to the next marker
            scanned = True
            m = _NEXT_MARKER.search(data, pos)
            if m is None:
                break
            pos = m.start()
    if not tables:
        raise JpegError("JPEG has no quantization table")
    return {"tables": tables, "components": components or [], "progressive": sof in (0xC2, 0xC6, 0xCA, 0xCE),
            "coding": SOF_KINDS.get(sof, "unknown (no frame header)"), "size": size, "orientation": orientation,
            "end": end, "trailer": len(data) - end if end is not None else 0, "stray": stray}


def luminance_table(source) -> np.ndarray:
    """The quantization table of the first (luminance) component of a JPEG (a path, bytes, or
    what :func:`read_qtables` returned), natural order."""
    info = source if isinstance(source, dict) else read_qtables(source)
    slot = info["components"][0][3] if info["components"] else min(info["tables"])
    if slot not in info["tables"]:
        raise JpegError(f"corrupt JPEG: component uses missing table {slot}")
    return info["tables"][slot]


def nearest_standard_qf(table: np.ndarray, chroma: bool = False) -> tuple[int, float]:
    """Nearest IJG quality to ``table``: (qf, mean absolute difference over the 64 steps).
    Ties go to the higher quality."""
    t = np.asarray(table, dtype=np.float64)
    d = [np.abs(standard_table(q, chroma) - t).mean() for q in range(1, 101)]
    best = min(range(100), key=lambda k: (d[k], -k))
    return best + 1, float(d[best])


def nearest_tables(q1, nc: int = NC, mask=None) -> dict:
    """Nearest standard QF and Photoshop quality to an estimate of the first nc zig-zag values
    (mean absolute difference over those values, or over those where ``mask`` is true)."""
    q1 = np.asarray(q1, dtype=np.float64)
    m = np.ones(nc, bool) if mask is None else np.asarray(mask, bool)
    d = {qf: float(np.abs(zigzag(standard_table(qf))[:nc][m] - q1[m]).mean()) for qf in range(1, 101)}
    qf = min(d, key=lambda k: (d[k], -k))
    ps = {q: float(np.abs(zigzag(t)[:nc][m] - q1[m]).mean()) for q, t in PHOTOSHOP_LUMINANCE.items()}
    q = min(ps, key=ps.get)
    return {"qf": qf, "qf_distance": round(d[qf], 3), "photoshop": q, "photoshop_distance": round(ps[q], 3)}


def nearest_photoshop_quality(table: np.ndarray) -> tuple[int, float]:
    """Nearest known Photoshop "Save As" quality (8, 9, 10, 12) and its mean absolute difference."""
    t = np.asarray(table, dtype=np.float64)
    d = {q: float(np.abs(p - t).mean()) for q, p in PHOTOSHOP_LUMINANCE.items()}
    q = min(d, key=d.get)
    return q, d[q]


# ---------------------------------------------------------------------------------------------
# Encoders and decoder. Images are uint8 HxWx3 RGB or HxW grayscale.

_CV_SAMPLING = {
    "4:2:0": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    "4:2:2": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "4:4:4": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
}
_PIL_SAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def encode_opencv(img: np.ndarray, qf: int, subsampling: str = "4:2:0") -> bytes:
    """Compress with OpenCV (the paper's encoder, Section 4.2) at quality ``qf``."""
    if subsampling not in _CV_SAMPLING:
        raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}")
    arr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", arr, [cv2.IMWRITE_JPEG_QUALITY, int(qf),
                                         cv2.IMWRITE_JPEG_SAMPLING_FACTOR, _CV_SAMPLING[subsampling]])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return buf.tobytes()


def encode_pillow(img: np.ndarray, table: np.ndarray | None = None, qf: int | None = None,
                  subsampling: str = "4:4:4", chroma_table: np.ndarray | None = None) -> bytes:
    """Compress with Pillow, with any luminance ``table`` (natural order; e.g. Photoshop) or at a
    standard ``qf``. With a custom table, colour images use it for chroma too unless
    ``chroma_table`` is given (Photoshop's chroma tables are not reproduced here)."""
    if subsampling not in _PIL_SAMPLING:
        raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}")
    im = Image.fromarray(img)
    out = io.BytesIO()
    if table is not None:
        t = [np.asarray(table, dtype=np.int64).reshape(64).tolist()]
        if img.ndim == 3:
            ct = table if chroma_table is None else chroma_table
            t.append(np.asarray(ct, dtype=np.int64).reshape(64).tolist())
        im.save(out, format="JPEG", qtables=t, subsampling=_PIL_SAMPLING[subsampling])
    elif qf is not None:
        im.save(out, format="JPEG", quality=int(qf), subsampling=_PIL_SAMPLING[subsampling])
    else:
        raise ValueError("encode_pillow needs a table or a qf")
    return out.getvalue()


def parse_q1(name) -> tuple[str, int]:
    """A first compression given by name: an int or "75" is a standard IJG quality factor (1..100),
    "ps10" a Photoshop quality (8, 9, 10 or 12, Figure 11). Returns ("ijg", 75) or ("photoshop", 10)."""
    s = str(name).strip().lower()
    if s.startswith("ps"):
        q = int(s[2:])
        photoshop_table(q)  # raises for a quality without a table
        return "photoshop", q
    v = int(s)
    if not 1 <= v <= 100:
        raise ValueError(f"QF1 {v} outside 1..100")
    return "ijg", v


def encode(img: np.ndarray, q1, encoder: str = "opencv", subsampling: str = "4:2:0") -> bytes:
    """Compress ``img`` with a Q1 given by name (:func:`parse_q1`): a standard QF (either
    encoder) or a Photoshop quality (Pillow only)."""
    kind, q = parse_q1(q1)
    if encoder == "opencv":
        if kind == "photoshop":
            raise ValueError("OpenCV cannot write Photoshop tables; use encoder 'pillow'")
        return encode_opencv(img, q, subsampling)
    if encoder == "pillow":
        if kind == "photoshop":
            return encode_pillow(img, table=photoshop_table(q), subsampling=subsampling)
        return encode_pillow(img, qf=q, subsampling=subsampling)
    raise ValueError(f"unknown encoder {encoder!r} (opencv or pillow)")


def decode(data: bytes, gray: bool = False) -> np.ndarray:
    """Decode JPEG bytes with OpenCV (libjpeg-turbo, islow IDCT, fancy upsampling) to RGB uint8,
    or to one channel when ``gray`` (the file must then be grayscale)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    # IMREAD_UNCHANGED never applies the EXIF orientation: forensics reads the stored block grid.
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise JpegError("cannot decode JPEG data")
    if arr.ndim == 2:
        return arr if gray else np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] != 3:
        raise JpegError(f"JPEG decodes to {arr.shape[2]} channels; only colour (3-component) files are supported")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def filled_share(rgb: np.ndarray, tile: int = 16) -> float:
    """The share of the picture that a decoder filled after the scan's data ran out: the trailing
    run, in scan (raster) order, of ``tile`` x ``tile`` tiles of one flat colour (libjpeg fills the
    missing MCUs with mid-grey). 0 when the last tile has any texture."""
    h, w = (rgb.shape[0] // tile) * tile, (rgb.shape[1] // tile) * tile
    if not h or not w:
        return 0.0
    t = rgb[:h, :w].reshape(h // tile, tile, w // tile, tile, -1)
    flat = (t == t[:, :1, :, :1]).all(axis=(1, 3, 4)).ravel()
    textured = np.flatnonzero(~flat)
    last = textured[-1] + 1 if len(textured) else 0
    return float((len(flat) - last) / len(flat))


def to_luma(rgb: np.ndarray) -> np.ndarray:
    """Y channel as the authors' code computes it (OpenCV BGR->YCrCb), uint8."""
    if rgb.ndim == 2:
        return rgb
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[:, :, 0]


def format_table(table: np.ndarray) -> str:
    """8x8 table as aligned text rows."""
    return "\n".join(" ".join(f"{int(v):3d}" for v in row) for row in np.asarray(table).reshape(8, 8))
