"""The double-JPEG patch generator (paper, Section 4.2).

Per image and QF1: compress at QF1, decode, crop the top ``r`` rows and left ``c`` columns (the
``grid_shift``; ``aligned`` when r = c = 0), compress at QF2, decode, and cut 64x64 patches on the
grid of the second compression. The label is the table read back from the QF1 file.

A dataset is a :class:`DatasetSpec`. Its samples are grouped in *units* (one image at one QF1,
up to ``patches_per_image`` patches); unit ``u`` is a pure function of (spec, u), so sample ``i``
is too, whatever the number of workers. :mod:`qpaper.shards` stores them, :mod:`qpaper.dataset`
reads them back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import cv2
import numpy as np

from . import jpeg, tables
from .sources import get_source, image_size, load_image, split_records

GRID_SHIFTS = ("random", "aligned", "misaligned", "mixed")
CHANNELS = ("rgb", "y")
META_DTYPE = np.dtype([("image", "<i4"), ("scene", "<i4"), ("qf1", "<i2"), ("qf2", "<i2"),
                       ("r", "i1"), ("c", "i1"), ("aligned", "?"), ("y", "<i4"), ("x", "<i4"),
                       ("unit", "<i4")])


class DatasetError(ValueError):
    """A dataset folder is missing, incomplete or corrupt; one line for the user."""


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that determines a dataset's bytes. ``qf1`` entries are standard qualities
    (ints), Photoshop qualities ("ps8", "ps9", "ps10", "ps12") or table families
    (:mod:`qpaper.tables`: "libjpeg", "perturbed", "park", ...; each unit draws its own table), the
    last two with ``encoder="pillow"``. ``q2_mix``: a family of last tables (e.g. "q2-wide"), one
    drawn per unit, stored beside the patches as ``q2`` (zig-zag); ``None``: every last table is
    QF ``qf2``'s."""

    source: str
    split: str
    qf2: int
    qf1: tuple
    patches_per_image: int = 100
    patches_per_qf1: int = 100_000
    patch: int = 64
    grid_shift: str = "random"
    channels: str = "rgb"
    encoder: str = "opencv"
    subsampling: str = "4:2:0"
    seed: int = 0
    test_share: float = 0.25
    n_test: int | None = None
    nc: int = jpeg.NC
    scale: float = 1.0  # resize the raw image first (INTER_AREA); 0.5: the half-resolution test, Fig. 10
    q2_mix: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "qf1", tuple(_canon_q1(q) for q in self.qf1))
        if self.grid_shift not in GRID_SHIFTS:
            raise ValueError(f"grid_shift must be one of {GRID_SHIFTS}")
        if self.channels not in CHANNELS:
            raise ValueError(f"channels must be one of {CHANNELS}")
        if self.subsampling not in jpeg.SUBSAMPLINGS:
            raise ValueError(f"subsampling must be one of {jpeg.SUBSAMPLINGS}")
        if self.patch % 16 or self.patch <= 0:
            raise ValueError("patch size must be a positive multiple of 16")
        if not 1 <= self.qf2 <= 100:
            raise ValueError("qf2 must be in 1..100")
        if self.encoder == "opencv" and any(isinstance(q, str) for q in self.qf1):
            raise ValueError("Photoshop tables and table families as Q1 need encoder='pillow'")
        if self.q2_mix is not None and (self.q2_mix not in tables.Q2_FAMILIES or self.encoder != "pillow"):
            raise ValueError(f"q2_mix must be one of {tables.Q2_FAMILIES}, with encoder='pillow'")
        if not 0 < self.scale <= 1:
            raise ValueError("scale must be in (0, 1]")
        if self.patches_per_image < 1 or self.patches_per_qf1 < 1 or not self.qf1:
            raise ValueError("a dataset needs QF1 values and at least one patch")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["qf1"] = list(self.qf1)
        if self.scale == 1.0:  # specs (and digests) written before the option existed stay valid
            del d["scale"]
        if self.q2_mix is None:
            del d["q2_mix"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetSpec":
        return cls(**{**d, "qf1": tuple(d["qf1"])})

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _canon_q1(q):
    """The canonical form of a QF1 name in a spec: 75, "ps10" (:func:`qpaper.jpeg.parse_q1`) or a
    family of first tables ("perturbed", :mod:`qpaper.tables`)."""
    if isinstance(q, str) and q in tables.Q1_FAMILIES:
        return q
    kind, v = jpeg.parse_q1(q)
    return f"ps{v}" if kind == "photoshop" else v


def draw_shift(rng: np.random.Generator, policy: str) -> tuple[int, int]:
    """Grid shift (r, c) in 0..7 (Section 4.2): uniform (aligned with probability 1/64),
    forced aligned (0, 0), uniform over the 63 misaligned shifts, or ``mixed``: aligned with
    probability 1/4 (a re-save without a crop, the common case of real files), else misaligned."""
    if policy == "aligned":
        return 0, 0
    if policy == "mixed" and rng.random() < 0.25:
        return 0, 0
    if policy == "random":
        r, c = rng.integers(0, 8, size=2)
        return int(r), int(c)
    k = int(rng.integers(1, 64))
    return k // 8, k % 8


class DJpegDataset:
    """Seekable double-JPEG samples of a spec: ``len(ds)``, ``ds[i]`` and ``ds.unit(u)``."""

    def __init__(self, spec: DatasetSpec, data_dir=None):
        self.spec = spec
        self.arrays = ("x", "q1", "meta") + (("q2",) if spec.q2_mix else ())
        records = get_source(spec.source, data_dir)
        self.records = split_records(records, spec.split, spec.test_share, spec.n_test, spec.seed)
        if not self.records:
            raise DatasetError(f"source {spec.source} split {spec.split} has no images")
        self.scenes = sorted({r.scene for r in self.records})
        self._scene_index = {s: k for k, s in enumerate(self.scenes)}
        self.sizes = [_scaled(image_size(r.path), spec.scale) for r in self.records]
        self._plan_units()
        self._cache = (None, None)

    def _unit_rng(self, qf_idx: int, u: int) -> np.random.Generator:
        return np.random.default_rng([self.spec.seed, 0x44A9E6, qf_idx, u])

    def _cells(self, img: int, r: int, c: int) -> int:
        h, w = self.sizes[img]
        p = self.spec.patch
        return max(0, (h - r) // p) * max(0, (w - c) // p)

    def _plan_units(self) -> None:
        """Units per QF1: images in a seeded order (a new permutation per QF1), repeated with
        fresh shifts if one pass is not enough, until ``patches_per_qf1`` patches."""
        s, n = self.spec, len(self.records)
        units = []  # (qf_idx, local unit, image, r, c, count)
        for qi in range(len(s.qf1)):
            perm = np.random.default_rng([s.seed, 0x9E3779, qi]).permutation(n)
            total, u, empty = 0, 0, 0
            while total < s.patches_per_qf1:
                img = int(perm[u % n])
                r, c = draw_shift(self._unit_rng(qi, u), s.grid_shift)
                count = min(s.patches_per_image, self._cells(img, r, c), s.patches_per_qf1 - total)
                empty = empty + 1 if count == 0 else 0
                if empty > n:
                    raise DatasetError(f"no image of {s.source} is larger than {s.patch + 7} pixels")
                if count:
                    units.append((qi, u, img, r, c, count))
                    total += count
                u += 1
        self.units = units
        counts = np.array([u[5] for u in units], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)])

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def n_units(self) -> int:
        return len(self.units)

    def unit_of(self, i: int) -> tuple[int, int]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        u = int(np.searchsorted(self.starts, i, side="right") - 1)
        return u, i - int(self.starts[u])

    def __getitem__(self, i: int):
        """(patch uint8 [p, p, C], q1 uint8 [64] zig-zag, meta record) of sample ``i``."""
        u, k = self.unit_of(int(i))
        if self._cache[0] != u:
            self._cache = (u, self.unit(u))
        x, q1, meta = self._cache[1]
        return x[k], q1[k], meta[k]

    def unit(self, u: int, path: str = "auto"):
        """Generate unit ``u``: arrays x [n, p, p, C], q1 [n, 64], meta [n] (and q2 [n, 64] with a
        ``q2_mix``). ``path`` picks the whole-image pipeline or the per-patch crop pipeline
        (bit-identical, see tests)."""
        s = self.spec
        qi, lu, img, r, c, count = self.units[u]
        rng = self._unit_rng(qi, lu)
        r2, c2 = draw_shift(rng, s.grid_shift)
        assert (r2, c2) == (r, c)
        h, w = self.sizes[img]
        p = s.patch
        rows, cols = (h - r) // p, (w - c) // p
        cells = rng.choice(rows * cols, size=count, replace=False)
        ys, xs = (cells // cols) * p, (cells % cols) * p
        rec = self.records[img]
        im = load_image(rec.path, rec.sha256)
        if s.scale != 1.0:
            im = cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)
        first, second, q2 = self._encoders(qi, lu)
        if path == "auto":
            path = "crop" if count * (p + 48) ** 2 < 0.5 * h * w else "whole"
        if path == "whole":
            patches, table = _whole_image(im, first, second, s, r, c, ys, xs)
        elif path == "crop":
            patches, table = _crop_patches(im, first, second, s, r, c, ys, xs)
        else:
            raise ValueError("path must be auto, whole or crop")
        if s.channels == "y":
            patches = np.stack([jpeg.to_luma(x) for x in patches])[..., None]
        meta = np.zeros(count, dtype=META_DTYPE)
        meta["image"], meta["scene"], meta["qf1"] = img, self._scene_index[rec.scene], qi
        meta["qf2"] = s.qf2 if q2 is None else jpeg.nearest_standard_qf(q2)[0]
        meta["r"], meta["c"], meta["aligned"] = r, c, (r == 0 and c == 0)
        meta["y"], meta["x"], meta["unit"] = ys, xs, u
        q1v = np.repeat(_zigzag_u8(table)[None], count, axis=0)
        out = (np.ascontiguousarray(patches), q1v, meta)
        return out if q2 is None else out + (np.repeat(_zigzag_u8(q2)[None], count, axis=0),)

    def _encoders(self, qi: int, lu: int):
        """(first, second, Q2 table or None) of a unit: the two compressions as functions of the
        pixels. A family in ``qf1`` or a ``q2_mix`` draws its table from the unit's own generator
        (:func:`qpaper.tables.family_rng`), so a unit's tables do not depend on the others."""
        s = self.spec
        q1 = s.qf1[qi]
        if tables.is_family(q1):
            t1 = tables.draw(q1, tables.family_rng(q1, s.seed, s.split, qi, lu))
            first = lambda a: jpeg.encode_pillow(a, table=t1, chroma_table=tables.chroma_for(t1),  # noqa: E731
                                                 subsampling=s.subsampling)
        else:
            first = lambda a: jpeg.encode(a, q1, s.encoder, s.subsampling)  # noqa: E731
        if s.q2_mix is None:
            return first, lambda a: jpeg.encode(a, s.qf2, s.encoder, s.subsampling), None
        t2 = tables.draw(s.q2_mix, tables.family_rng(s.q2_mix, s.seed, s.split, qi, lu))
        return first, lambda a: jpeg.encode_pillow(a, table=t2, chroma_table=tables.chroma_for(t2),
                                                   subsampling=s.subsampling), t2

    def shard_units(self, units_per_shard: int) -> list[range]:
        return [range(a, min(a + units_per_shard, self.n_units))
                for a in range(0, self.n_units, units_per_shard)]

    def shard(self, units: range):
        parts = [self.unit(u) for u in units]
        return tuple(np.concatenate([p[k] for p in parts]) for k in range(len(self.arrays)))


def _zigzag_u8(table) -> np.ndarray:
    """A table's 64 steps in zig-zag order as stored in the shards (uint8: baseline steps are
    at most 255)."""
    return np.minimum(jpeg.zigzag(table), 255).astype(np.uint8)


def _scaled(size, scale: float) -> tuple[int, int]:
    h, w = size
    return (h, w) if scale == 1.0 else (max(1, int(round(h * scale))), max(1, int(round(w * scale))))


def _whole_image(im, first, second, s: DatasetSpec, r, c, ys, xs):
    """Plain pipeline: both compressions on the whole image, then cut the patches."""
    b1 = first(im)
    table = jpeg.luminance_table(b1)
    d1 = jpeg.decode(b1)[r:, c:]
    d2 = jpeg.decode(second(np.ascontiguousarray(d1)))
    p = s.patch
    return np.stack([d2[y:y + p, x:x + p] for y, x in zip(ys, xs)]), table


def _crop_patches(im, first, second, s: DatasetSpec, r, c, ys, xs):
    """Per-patch pipeline, bit-identical to :func:`_whole_image`: each patch is computed from a
    window that starts on an MCU boundary of both compressions and has a one-MCU margin (where
    the image goes on) for chroma down/upsampling, so the blocks that reach the patch see the
    same pixels as in the whole image."""
    mcu = 8 if s.subsampling == "4:4:4" else 16
    m = 0 if mcu == 8 else 16
    H, W = im.shape[:2]
    h2, w2 = H - r, W - c
    p = s.patch
    out, table = [], None
    for y, x in zip(ys, xs):
        # window of the second compression, in cropped coordinates
        wy0, wy1 = max(0, y - m), min(h2, y + p + m)
        wx0, wx1 = max(0, x - m), min(w2, x + p + m)
        # window of the first compression, in image coordinates
        oy0 = max(0, (wy0 + r) // mcu * mcu - m)
        ox0 = max(0, (wx0 + c) // mcu * mcu - m)
        oy1 = min(H, -(-(wy1 + r) // mcu) * mcu + m)
        ox1 = min(W, -(-(wx1 + c) // mcu) * mcu + m)
        b1 = first(np.ascontiguousarray(im[oy0:oy1, ox0:ox1]))
        if table is None:
            table = jpeg.luminance_table(b1)
        d1 = jpeg.decode(b1)
        w1 = d1[wy0 + r - oy0:wy1 + r - oy0, wx0 + c - ox0:wx1 + c - ox0]
        d2 = jpeg.decode(second(np.ascontiguousarray(w1)))
        out.append(d2[y - wy0:y - wy0 + p, x - wx0:x - wx0 + p])
    return np.stack(out), table
