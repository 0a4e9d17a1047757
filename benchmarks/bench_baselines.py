"""Throughput (patches/s) of the vectorized model-based Q1 estimators on 64x64 RGB patches,
aligned case, and accuracy on the same patches. Patches/s by wall clock and by process CPU
time (the latter less sensitive to other jobs on the machine). Usage:
    python benchmarks/bench_baselines.py [--n 2000] [--qf1 70] [--qf2 90]
Writes results/benchmarks/baselines.txt (+ provenance sidecar)."""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from qpaper import jpeg
from qpaper.baselines import bianchi, galvan
from qpaper.provenance import hardware, record, write_sidecar
from qpaper.sources import read_image, skimage_dir
from qpaper.paths import atomic_write_bytes

OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "baselines.txt"


def patches(qf1, qf2, n):
    out = []
    for name in ("astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png"):
        im = read_image(skimage_dir() / name)
        d = jpeg.decode(jpeg.encode_opencv(jpeg.decode(jpeg.encode_opencv(im, qf1)), qf2))
        out += [d[y:y + 64, x:x + 64] for y in range(0, d.shape[0] - 63, 64) for x in range(0, d.shape[1] - 63, 64)]
    p = np.stack(out)
    return p[np.arange(n) % len(p)]


def main():
    t0 = time.time()
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--qf1", type=int, default=70)
    ap.add_argument("--qf2", type=int, default=90)
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    p = patches(a.qf1, a.qf2, a.n)
    q2 = jpeg.standard_table(a.qf2)
    q1 = jpeg.zigzag(jpeg.standard_table(a.qf1))[:15]
    lines = [f"model-based Q1 estimators, aligned, {len(p)} RGB patches 64x64 (QF1 {a.qf1}, QF2 {a.qf2}); "
             f"{hardware()}; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"]
    for name, fn in (("galvan", galvan.estimate_batch), ("bianchi", bianchi.estimate_batch)):
        fn(p[:64], q2)  # warm-up
        t, c = time.perf_counter(), time.process_time()
        e = fn(p, q2)
        wall, cpu = len(p) / (time.perf_counter() - t), len(p) / (time.process_time() - c)
        k = 100
        t = time.perf_counter()
        for x in p[:k]:
            fn(x[None], q2)
        loop = k / (time.perf_counter() - t)
        lines.append(f"{name:8s} batched {wall:7.0f} patches/s wall, {cpu:7.0f} patches/s CPU | one patch per call "
                     f"{loop:6.0f} patches/s wall (x{wall / loop:.1f}) | accuracy {np.mean(e == q1):.3f}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, text.encode())
    write_sidecar(out, record("bench", 0, t0, command="python " + " ".join(sys.argv), n=len(p), qf1=a.qf1, qf2=a.qf2))


if __name__ == "__main__":
    main()
