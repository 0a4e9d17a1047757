"""Families of quantization tables for the JPEGs people have (issue 21; the paper's Section 5.2 names
the limit: a network trained on standard tables misreads the others).

A *family* is a seeded distribution of 8x8 luminance tables (natural order). A dataset names a mix
of them in its ``qf1`` (one family per entry, drawn afresh for every unit) and, with ``q2_mix``,
the family of its last tables too (:class:`qpaper.djpeg.DatasetSpec`); labels stay the table read
back from the first file.

First tables (Q1):

- ``libjpeg``: every IJG quality 30..100 (not only steps of 5), uniform.
- ``perturbed``: an IJG table of quality 30..95 with every step multiplied by its own factor,
  log-uniform in [1/1.6, 1.6], rounded: no coefficient can be guessed from the others.
- ``perturbed-heldout``: the same law under another seed of perturbations (test only).
- ``park`` / ``park-heldout``: the 1,070 non-standard tables collected from real images by Park et
  al. (ECCV 2018; ``qpaper/data/park2018-tables.tsv``), less those equal to an IJG or a Photoshop
  table, grouped by their first 15 zig-zag steps and split 4:1 by a hash of those steps, so that a
  held-out table shares none of its estimated coefficients' pattern with a trained one.
- ``photoshop``: the Photoshop "Save As" tables of qualities 8, 9, 10 and 12 (test only).

Last tables (Q2): ``q2-libjpeg`` (IJG quality 60..98) and ``q2-wide`` (70% of those, 30% with
every step multiplied by its own factor in [0.8, 1.25]).

The classes of the wide head (:func:`head_range`) come from the real tables' distribution.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import jpeg
from .jpeg import NC

PARK_FILE = Path(__file__).resolve().parent / "data" / "park2018-tables.tsv"
TRAIN_FAMILIES = ("libjpeg", "perturbed", "park")
TEST_FAMILIES = ("perturbed-heldout", "park-heldout", "photoshop")
Q1_FAMILIES = TRAIN_FAMILIES + TEST_FAMILIES
Q2_FAMILIES = ("q2-libjpeg", "q2-wide")
LIBJPEG_Q1 = (30, 100)
PERTURBED_BASE = (30, 95)
PERTURB = 1.6  # Q1 factors log-uniform in [1/PERTURB, PERTURB]
Q2_RANGE = (60, 98)
Q2_PERTURB = 1.25
HELDOUT_SHARE = 5  # one group of Park's tables in HELDOUT_SHARE is held out


def is_family(name) -> bool:
    return isinstance(name, str) and (name in Q1_FAMILIES or name in Q2_FAMILIES)


@lru_cache(maxsize=1)
def park_tables() -> np.ndarray:
    """Park et al.'s 1,070 non-standard tables [N, 8, 8] (natural order), as listed."""
    rows = [line.split("\t")[1:] for line in PARK_FILE.read_text().splitlines() if line and not line.startswith("#")]
    return np.array(rows, dtype=np.int64).reshape(-1, 8, 8)


def _key(table) -> bytes:
    return bytes(np.minimum(jpeg.zigzag(table)[:NC], 255).astype(np.uint8).tolist())


def _known_tables() -> set:
    known = {_key(jpeg.standard_table(q)) for q in range(1, 101)}
    return known | {_key(t) for t in jpeg.PHOTOSHOP_LUMINANCE.values()}


@lru_cache(maxsize=2)
def park_split(part: str) -> np.ndarray:
    """Park's tables of the ``park`` (train) or ``park-heldout`` part: the tables whose first 15
    zig-zag steps equal no IJG or Photoshop table's, split by a hash of those steps."""
    known = _known_tables()
    keep = []
    for t in park_tables():
        k = _key(t)
        if k in known:
            continue
        held = int.from_bytes(hashlib.sha256(k).digest()[:4], "little") % HELDOUT_SHARE == 0
        if held == (part == "park-heldout"):
            keep.append(t)
    return np.array(keep, dtype=np.int64)


def _perturb(base: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    f = np.exp(rng.uniform(-np.log(spread), np.log(spread), size=base.shape))
    return np.clip(np.rint(base * f), 1, 255).astype(np.int64)


def draw(family: str, rng: np.random.Generator) -> np.ndarray:
    """One table [8, 8] (natural order, steps 1..255) of ``family``, drawn with ``rng``."""
    if family == "libjpeg":
        return jpeg.standard_table(int(rng.integers(LIBJPEG_Q1[0], LIBJPEG_Q1[1] + 1))).astype(np.int64)
    if family in ("perturbed", "perturbed-heldout"):
        base = jpeg.standard_table(int(rng.integers(PERTURBED_BASE[0], PERTURBED_BASE[1] + 1))).astype(np.int64)
        return _perturb(base, rng, PERTURB)
    if family in ("park", "park-heldout"):
        t = park_split(family)
        return t[int(rng.integers(len(t)))].copy()
    if family == "photoshop":
        qs = sorted(jpeg.PHOTOSHOP_LUMINANCE)
        return jpeg.photoshop_table(qs[int(rng.integers(len(qs)))]).astype(np.int64)
    if family in Q2_FAMILIES:
        base = jpeg.standard_table(int(rng.integers(Q2_RANGE[0], Q2_RANGE[1] + 1))).astype(np.int64)
        if family == "q2-wide" and rng.random() < 0.3:
            return _perturb(base, rng, Q2_PERTURB)
        return base
    raise ValueError(f"unknown table family {family!r} (Q1: {', '.join(Q1_FAMILIES)}; Q2: {', '.join(Q2_FAMILIES)})")


# salts: the held-out family of perturbations is another seed of the same law
_SALT = {"perturbed-heldout": 0x5EED2}


def family_rng(family: str, seed: int, split: str, *unit) -> np.random.Generator:
    """The generator of one unit's table: a pure function of (family, dataset seed, split, unit),
    so train and test sets of the same family draw different tables."""
    fam = int.from_bytes(hashlib.sha256(family.encode()).digest()[:4], "little")
    sp = int.from_bytes(hashlib.sha256(split.encode()).digest()[:4], "little")
    return np.random.default_rng([seed, 0x7AB1E, _SALT.get(family, 0), fam, sp, *unit])


def chroma_for(table: np.ndarray) -> np.ndarray:
    """The chroma table that goes with a luminance table: the IJG chroma table of its nearest
    standard quality (real encoders pair a luminance table with a chroma table of like strength)."""
    qf, _ = jpeg.nearest_standard_qf(table)
    return jpeg.standard_table(qf, chroma=True)


# ---------------------------------------------------------------------------------------------
# The wide head: classes 1..R_k and a last class "at least R_k + 1"

def head_range(nc: int = NC, percentile: float = 95.0) -> np.ndarray:
    """R_k, the largest step the wide head names exactly for each of the first nc zig-zag
    coefficients: the paper's q_max (QF 50) or, where larger, the ``percentile`` of that
    coefficient's step over Park's real tables. Larger steps fall in the last class, "at least
    R_k + 1" (reported as such, never clipped silently)."""
    z = np.stack([jpeg.zigzag(t)[:nc] for t in park_tables()])
    return np.maximum(jpeg.q_max(nc), np.ceil(np.percentile(z, percentile, axis=0))).astype(np.int64)


WIDE_RANGE = np.array([16, 11, 12, 20, 19, 18, 21, 20, 19, 20, 22, 22, 21, 23, 24])  # head_range(): tested


def wide_sizes(nc: int = NC) -> np.ndarray:
    """Class counts of the wide head: R_k exact steps and the "at least R_k + 1" class."""
    return WIDE_RANGE[:nc] + 1


def guessable_share(z, nc: int = NC) -> float:
    """How far a family's steps can be guessed from one another: over tables z [N, >= nc]
    (zig-zag) and coefficients k, the share of steps equal to the step k of the IJG table that
    best fits the table's other nc - 1 steps (mean |log ratio|). About 1 for IJG tables (a table
    is one number, its quality); low where each step must be read on its own."""
    z = np.asarray(z)[:, :nc].astype(np.float64)
    std = np.log(np.stack([jpeg.zigzag(jpeg.standard_table(q))[:nc] for q in range(1, 101)]).astype(np.float64))
    logz = np.log(z)
    hits = 0
    for k in range(nc):
        others = np.delete(np.arange(nc), k)
        d = np.abs(logz[:, None, others] - std[None, :, others]).mean(-1)  # [N, 100]
        best = d.argmin(1)
        hits += int((np.rint(np.exp(std[best, k])) == z[:, k]).sum())
    return hits / (len(z) * nc)
