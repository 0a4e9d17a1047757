"""The shard store of the double-JPEG datasets (Section 4.2 at scale): ``build`` generates a
:class:`~qpaper.djpeg.DatasetSpec` with a pool of worker processes into memory-mappable shards
(``x-K.npy`` uint8 patches, ``q1-K.npy`` uint8 64-value zig-zag Q1, ``meta-K.npy``, and
``q2-K.npy`` for a spec with a ``q2_mix``) and writes
``manifest.json`` last. Each shard is written to temporary names and renamed, then marked done, so
a killed build resumes where it stopped; the bytes do not depend on the number of workers.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import os
import re
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .dataset import content_digest
from .djpeg import DatasetError, DatasetSpec, DJpegDataset
from .paths import atomic_write_bytes, check_output_folder, error_line, temporary_beside

SHARD_PATCHES = 4096



def _shard_names(k: int, arrays=("x", "q1", "meta")) -> dict:
    return {a: f"{a}-{k:05d}.npy" for a in arrays}


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


_WORKER = {}


def _worker_init(spec_dict, data_dir):
    cv2.setNumThreads(1)
    _WORKER["ds"] = DJpegDataset(DatasetSpec.from_dict(spec_dict), data_dir)


def shard_files(ds: DJpegDataset, k: int, units: range) -> dict:
    """Shard ``k`` (the patches of ``units``) as .npy bytes by file name; the same bytes wherever
    it is made (each unit draws from its own seeded generator)."""
    arrays = dict(zip(ds.arrays, ds.shard(units)))
    return {name: _npy_bytes(arrays[a]) for a, name in _shard_names(k, ds.arrays).items()}


def store_shard(out, k: int, units: range, files: dict) -> dict:
    """Write shard ``k``'s files (temporary names, renamed), then its done-marker, last: a shard
    without the marker is incomplete and is built again."""
    info = {"index": k, "units": [units.start, units.stop], "files": {}}
    for name, data in files.items():
        atomic_write_bytes(Path(out) / name, data)
        info["files"][name.split("-")[0]] = {"name": name, "sha256": hashlib.sha256(data).hexdigest(),
                                             "bytes": len(data)}
    info["count"] = int(np.load(io.BytesIO(files[info["files"]["meta"]["name"]]), allow_pickle=False).shape[0])
    atomic_write_bytes(Path(out) / f"done-{k:05d}.json", json.dumps(info, sort_keys=True).encode())
    return info


def _build_shard(args):
    k, units, out = args
    return store_shard(out, k, units, shard_files(_WORKER["ds"], k, units))


_DATASETS = {}  # a Dask worker's DJpegDataset of the spec it builds


def _shard_task(k, start, stop, spec: dict, data_dir):
    key = (json.dumps(spec, sort_keys=True), data_dir)
    if key not in _DATASETS:
        cv2.setNumThreads(1)
        _DATASETS.clear()
        _DATASETS[key] = DJpegDataset(DatasetSpec.from_dict(spec), data_dir)
    return shard_files(_DATASETS[key], k, range(start, stop))


def _on_cluster(c, spec: DatasetSpec, data_dir, todo):
    """The shards ``todo`` ((index, unit range, out)) made on the workers of client ``c`` and
    written here as each arrives; yields each shard's info."""
    from .cluster import as_finished
    data_dir = None if data_dir is None else os.path.abspath(data_dir)
    out = {k: o for k, _, o in todo}
    jobs = ((k, units.start, units.stop) for k, units, _ in todo)
    for (k, start, stop), fut in as_finished(c, _shard_task, jobs, spec.to_dict(), data_dir):
        try:
            files = fut.result()
        except (ValueError, OSError):  # the spec's own refusals, as in one process
            raise
        except Exception as e:  # a worker died (KilledWorker), the task was cancelled: one line
            raise ValueError(f"shard {k} failed on the Dask cluster: {error_line(e, with_type=True)} "
                             "(the shards made so far are kept: run the same command again)") from None
        yield store_shard(out[k], k, range(start, stop), files)


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


DATASET_NAME = re.compile(r"^(spec\.json|manifest\.json|done-\d{5}\.json|[a-z0-9]+-\d{5}\.npy)$")


def dataset_files(out: Path) -> set[str]:
    """The names a dataset build may find in ``out`` and go on with: those of a build (spec,
    manifest, shards, a killed write's temporary names) when ``out`` holds a build's
    ``spec.json``; none otherwise: ``--out`` must then be new or empty (issue 32, item 1)."""
    try:
        spec = json.loads((out / "spec.json").read_text())
    except (OSError, ValueError, RecursionError):
        return set()
    if not isinstance(spec, dict):
        return set()
    names = {p.name for p in out.iterdir()}
    return {n for n in names if DATASET_NAME.match(n)
            or (n.startswith(".") and n.endswith(".tmp") and DATASET_NAME.match(n[1:].split(".tmp")[0].rsplit(".", 1)[0]))}


def build(spec: DatasetSpec, out_dir, workers: int | None = None, data_dir=None, progress: bool = True,
          log=print, scheduler: str | None = None) -> dict:
    """Generate ``spec`` into shards under ``out_dir`` with ``workers`` processes (default: all
    cores), or on the Dask cluster ``scheduler`` (an address or ``local:N``, see
    :mod:`qpaper.cluster`: workers make the shards, this process writes them), and write
    ``manifest.json`` last. Complete shards from an earlier (killed) build of the same spec are
    kept; a folder holding another spec is refused."""
    out = Path(out_dir)
    check_output_folder(out, ours=dataset_files)
    t0 = time.time()
    if scheduler:
        from . import cluster
        cluster.require()  # a missing Dask claims no folder either
    ds = DJpegDataset(spec, data_dir)  # first: an invalid source claims no folder (issue 25, item 3)
    out.mkdir(parents=True, exist_ok=True)
    claim_folder(out, spec.to_dict())
    ups = max(1, SHARD_PATCHES // spec.patches_per_image)
    shards = ds.shard_units(ups)
    done = {k: info for k in range(len(shards)) if (info := _shard_complete(out, k))}
    todo = [(k, shards[k], str(out)) for k in range(len(shards)) if k not in done]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    log(f"dataset: {len(ds)} patches in {len(shards)} shards ({len(done)} already built), "
        + (f"Dask scheduler {scheduler}" if scheduler else f"{workers} worker(s)"))
    bar = tqdm(total=len(ds), initial=sum(i["count"] for i in done.values()), unit="patch",
               disable=not progress, desc="building")
    if todo and scheduler:
        with cluster.client(scheduler) as c:
            for info in _on_cluster(c, spec, data_dir, todo):
                done[info["index"]] = info
                bar.update(info["count"])
    elif todo:
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
