"""The shard store of the double-JPEG datasets (Section 4.2 at scale): ``build`` generates a
:class:`~qpaper.djpeg.DatasetSpec` with a pool of worker processes into memory-mappable shards
(``x-K.npy`` uint8 patches, ``q1-K.npy`` uint8 64-value zig-zag Q1, ``meta-K.npy``, and
``q2-K.npy`` for a spec with a ``q2_mix``) and writes
``manifest.json`` last. Each shard is written to temporary names and renamed, then marked done, so
a killed build resumes where it stopped; the bytes do not depend on the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .dataset import content_digest
from .djpeg import DatasetError, DatasetSpec, DJpegDataset
from .paths import atomic_write_bytes, temporary_beside

SHARD_PATCHES = 4096



def _shard_names(k: int, arrays=("x", "q1", "meta")) -> dict:
    return {a: f"{a}-{k:05d}.npy" for a in arrays}


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


_WORKER = {}


def _worker_init(spec_dict, data_dir):
    cv2.setNumThreads(1)
    _WORKER["ds"] = DJpegDataset(DatasetSpec.from_dict(spec_dict), data_dir)


def _build_shard(args):
    k, units, out = args
    ds = _WORKER["ds"]
    arrays = dict(zip(ds.arrays, ds.shard(units)))
    info = {"index": k, "units": [units.start, units.stop], "count": int(len(arrays["x"])), "files": {}}
    for a, name in _shard_names(k, ds.arrays).items():
        data = _npy_bytes(arrays[a])
        atomic_write_bytes(Path(out) / name, data)
        info["files"][a] = {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    # the marker is written last: a shard without it is incomplete and is rebuilt
    atomic_write_bytes(Path(out) / f"done-{k:05d}.json", json.dumps(info, sort_keys=True).encode())
    return info


def _shard_complete(out: Path, k: int) -> dict | None:
    marker = out / f"done-{k:05d}.json"
    if not marker.exists():
        return None
    try:
        info = json.loads(marker.read_text())
        for f in info["files"].values():
            if (out / f["name"]).stat().st_size != f["bytes"]:
                return None
        return info
    except (OSError, ValueError, KeyError):
        return None


def claim_folder(out: Path, spec: dict) -> None:
    """Write ``out/spec.json`` unless it exists, atomically and exclusively (a hard link of a
    complete temporary file: of two builds started together exactly one spec lands), then refuse
    the folder if the spec there is another one."""
    spec_file = out / "spec.json"
    if not spec_file.exists():
        fd, tmp = temporary_beside(spec_file)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(spec, indent=1, sort_keys=True).encode())
            try:
                os.link(tmp, spec_file)
            except FileExistsError:
                pass  # another build claimed the folder first
            except OSError:  # no hard links here: an exclusive create, then the content
                try:
                    with open(spec_file, "xb") as f:
                        f.write(Path(tmp).read_bytes())
                except FileExistsError:
                    pass
        finally:
            os.unlink(tmp)
    try:
        old = json.loads(spec_file.read_text())
    except ValueError:
        raise DatasetError(f"{spec_file} is not valid JSON; choose an empty folder") from None
    if old != spec:
        raise DatasetError(f"{out} holds another dataset spec; choose an empty folder")


def build(spec: DatasetSpec, out_dir, workers: int | None = None, data_dir=None, progress: bool = True,
          log=print) -> dict:
    """Generate ``spec`` into shards under ``out_dir`` with ``workers`` processes (default: all
    cores) and write ``manifest.json`` last. Complete shards from an earlier (killed) build of the
    same spec are kept; a folder holding another spec is refused."""
    out = Path(out_dir)
    t0 = time.time()
    ds = DJpegDataset(spec, data_dir)  # first: an invalid source claims no folder (issue 25, item 3)
    out.mkdir(parents=True, exist_ok=True)
    claim_folder(out, spec.to_dict())
    ups = max(1, SHARD_PATCHES // spec.patches_per_image)
    shards = ds.shard_units(ups)
    done = {k: info for k in range(len(shards)) if (info := _shard_complete(out, k))}
    todo = [(k, shards[k], str(out)) for k in range(len(shards)) if k not in done]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    log(f"dataset: {len(ds)} patches in {len(shards)} shards ({len(done)} already built), {workers} worker(s)")
    bar = tqdm(total=len(ds), initial=sum(i["count"] for i in done.values()), unit="patch",
               disable=not progress, desc="building")
    if todo:
        if workers == 1:
            _worker_init(spec.to_dict(), data_dir)
            results = map(_build_shard, todo)
        else:
            ctx = mp.get_context("spawn")
            pool = ctx.Pool(workers, _worker_init, (spec.to_dict(), data_dir))
            results = pool.imap_unordered(_build_shard, todo)
        try:
            for info in results:
                done[info["index"]] = info
                bar.update(info["count"])
        finally:
            if workers > 1:
                pool.close()
                pool.join()
    bar.close()
    seconds = time.time() - t0
    if not todo and (out / "manifest.json").exists():  # nothing built now: keep the original build time
        seconds = json.loads((out / "manifest.json").read_text()).get("build_seconds", seconds)
    manifest = _manifest(ds, [done[k] for k in range(len(shards))], out, seconds)
    atomic_write_bytes(out / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
    return manifest


def _manifest(ds: DJpegDataset, shards: list, out: Path, seconds: float) -> dict:
    metas = [np.load(out / s["files"]["meta"]["name"]) for s in shards]
    meta = np.concatenate(metas)
    return {"format": 1, "spec": ds.spec.to_dict(), "spec_sha256": ds.spec.digest(),
            "count": int(len(meta)), "scenes": ds.scenes, "images": [r.id for r in ds.records],
            "qf1": list(ds.spec.qf1), "counts": _counts(meta, ds.spec.qf1),
            "shards": shards, "content_sha256": content_digest(out, shards),
            "build_seconds": round(seconds, 2)}


def _counts(meta: np.ndarray, qf1: tuple) -> list:
    rows = []
    for qi, q in enumerate(qf1):
        sel = meta["qf1"] == qi
        rows.append({"qf1": q, "patches": int(sel.sum()), "aligned": int((sel & meta["aligned"]).sum())})
    return rows
