"""Reading a built double-JPEG dataset (Section 4.2; the shards :mod:`qpaper.shards` writes): the manifest,
memory-mapped patches, Q1 labels and per-patch metadata, checked against their sha256.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .djpeg import DatasetError
from .jpeg import standard_table, zigzag
from .paths import sha256_file


def content_digest(out: Path, shards: list) -> str:
    """sha256 over all patches then all labels (then all last tables, where stored), independent
    of how they are sharded."""
    names = ("x", "q1") + (("q2",) if shards and "q2" in shards[0]["files"] else ())
    hs = {a: hashlib.sha256() for a in names}
    for s in shards:
        for a in names:
            hs[a].update(np.ascontiguousarray(np.load(out / s["files"][a]["name"], mmap_mode="r")).tobytes())
    return hashlib.sha256(b"".join(hs[a].digest() for a in names)).hexdigest()


def open_dataset(path, verify: bool = True) -> dict:
    """Read a built dataset: its manifest, and lists of memory-mapped x, q1 and meta arrays (and
    q2, where stored) per shard. ``verify`` checks every shard file against its sha256."""
    out = Path(path)
    mpath = out / "manifest.json"
    if not mpath.exists():
        raise DatasetError(f"{out}: no manifest.json (not a dataset, or its build did not finish)")
    try:
        manifest = json.loads(mpath.read_text())
    except ValueError:
        raise DatasetError(f"{mpath}: not valid JSON") from None
    arrays = {"x": [], "q1": [], "meta": []}
    for s in manifest["shards"]:
        for a, f in s["files"].items():
            arrays.setdefault(a, [])
            fp = out / f["name"]
            if not fp.exists():
                raise DatasetError(f"{fp}: missing shard file")
            if verify:
                if sha256_file(fp) != f["sha256"]:
                    raise DatasetError(f"{fp}: sha256 differs from the manifest (corrupt or half-written shard)")
            arrays[a].append(np.load(fp, mmap_mode="r"))
    return {"manifest": manifest, **arrays}


def last_tables(shards: dict) -> list:
    """Per shard, the zig-zag last tables of its patches [n, 64]: stored (a ``q2_mix``) or the
    spec's QF2 table for all."""
    if shards.get("q2"):
        return shards["q2"]
    z2 = zigzag(standard_table(int(shards["manifest"]["spec"]["qf2"]))).astype(np.uint8)
    return [np.broadcast_to(z2, (len(x), 64)) for x in shards["x"]]


def load_arrays(path, verify: bool = True):
    """Whole dataset in memory: (x, q1, meta)."""
    d = open_dataset(path, verify)
    return tuple(np.concatenate(d[a]) for a in ("x", "q1", "meta"))


def info(path) -> str:
    """Text summary: counts per QF1 and aligned flag, and the content digest on the last line."""
    d = open_dataset(path, verify=True)
    m = d["manifest"]
    digest = content_digest(Path(path), m["shards"])
    if digest != m["content_sha256"]:
        raise DatasetError(f"{path}: content digest differs from the manifest")
    s = m["spec"]
    lines = [f"source {s['source']} split {s['split']}  QF2 {s['qf2']}  grid_shift {s['grid_shift']}  "
             f"channels {s['channels']}  encoder {s['encoder']} {s['subsampling']}  seed {s['seed']}",
             f"{m['count']} patches from {len(m['images'])} images ({len(m['scenes'])} scenes) in "
             f"{len(m['shards'])} shards", f"{'QF1':>6} {'patches':>8} {'aligned':>8} {'misaligned':>10}"]
    for row in m["counts"]:
        lines.append(f"{row['qf1']!s:>6} {row['patches']:>8} {row['aligned']:>8} {row['patches'] - row['aligned']:>10}")
    lines.append(f"content sha256 {digest}")
    return "\n".join(lines)
