"""Patch generator throughput: qpaper's generator against a plain whole-image pipeline.

Both run in this one process run, on the same units, and the result is reported as ratios:
- per core: qpaper (auto path: per-patch crops where patches cover little of the image) vs the
  plain pipeline (both compressions on the whole image for every unit, as the authors' code does);
- end to end: qpaper's multiprocess build vs the plain pipeline on one core.
Image sets: the skimage photos (small), the prepared wallpapers (mini profile) and RAISE-sized 4928x3264 images (upscaled skimage photos,
written to a temporary folder: content does not matter for timing).
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import cv2

from qpaper import shards
from qpaper.djpeg import DatasetSpec, DJpegDataset
from qpaper.provenance import hardware, record, write_sidecar
from qpaper.sources import SourceError, read_image, skimage_dir, wallpapers_source
from qpaper.paths import atomic_write_bytes


def per_core(ds, path, units):
    t = time.perf_counter()
    n = sum(len(ds.unit(u, path)[0]) for u in units)
    return n / (time.perf_counter() - t)


def main():
    tmp = tempfile.TemporaryDirectory()
    big = Path(tmp.name) / "raise_like"
    big.mkdir()
    for name in ("astronaut", "coffee"):
        img = read_image(skimage_dir() / f"{name}.png")
        cv2.imwrite(str(big / f"{name}.png"), cv2.resize(img, (4928, 3264), interpolation=cv2.INTER_LANCZOS4)[:, :, ::-1])
    cases = [("skimage 512px, 20 patches/image", dict(source="skimage", patches_per_image=20, patches_per_qf1=1500)),
             ("RAISE-sized 4928x3264, 100 patches/image", dict(source=f"folder:{big}", patches_per_image=100,
                                                               patches_per_qf1=1500))]
    try:
        wallpapers_source()
        cases.insert(1, ("wallpapers ~1000x650, 100 patches/image",
                         dict(source="wallpapers", patches_per_image=100, patches_per_qf1=1500)))
    except SourceError:
        print("# wallpapers not prepared (make data): case skipped")
    t0 = time.time()
    lines = [f"# generator benchmark on {hardware()}",
             f"{'images':<42} {'plain p/s/core':>15} {'qpaper p/s/core':>16} {'ratio':>6} {'build p/s':>10} {'ratio':>6}"]
    print("\n".join(lines))
    for label, kw in cases:
        spec = DatasetSpec(split="all", qf2=90, qf1=(70, 90), **kw)
        ds = DJpegDataset(spec)
        units = range(ds.n_units)
        per_core(ds, "whole", units[:1])  # warm the image cache
        plain = per_core(ds, "whole", units)
        ours = per_core(ds, "auto", units)
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            shards.build(spec, out, workers=os.cpu_count(), progress=False, log=lambda *_: None)
            build = len(ds) / (time.perf_counter() - t)
        lines.append(f"{label:<42} {plain:>15.1f} {ours:>16.1f} {ours / plain:>6.2f} {build:>10.1f} {build / plain:>6.2f}")
        print(lines[-1])
    out = Path(__file__).resolve().parent.parent / "results" / "benchmarks" / "generator.txt"
    atomic_write_bytes(out, ("\n".join(lines) + "\n").encode())
    write_sidecar(out, record("bench", 0, t0, command="make bench", workers=os.cpu_count()))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
