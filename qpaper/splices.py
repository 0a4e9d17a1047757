"""Synthetic splices for the localization experiment (Section 5.3, Figure 12): a background and
donor rectangles with their own first compressions, saved once more at QF2, with the ground-truth
mask of where each donor went. Built only from a profile's test images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import jpeg


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


def splice_set(profile: str, seed: int = 0, per_case: int | None = None, side: int | None = None) -> list[dict]:
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
    per_case = p["localize"]["per_case"] if per_case is None else per_case
    side = side or min(p["localize"]["side"], min(min(i.shape[:2]) for i in imgs) // 16 * 16)
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
