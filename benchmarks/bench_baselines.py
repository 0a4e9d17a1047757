"""Throughput (patches/s) of the vectorized model-based Q1 estimators on 64x64 RGB patches,
aligned case, and accuracy on the same patches. Usage:
    python benchmarks/bench_baselines.py [--n 2000] [--qf1 70] [--qf2 90]"""
import argparse
import time

import numpy as np

from qpaper import jpeg
from qpaper.baselines import bianchi, galvan
from qpaper.sources import read_image, skimage_dir


def patches(qf1, qf2, n):
    out = []
    for name in ("astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png"):
        im = read_image(skimage_dir() / name)
        d = jpeg.decode(jpeg.encode_opencv(jpeg.decode(jpeg.encode_opencv(im, qf1)), qf2))
        out += [d[y:y + 64, x:x + 64] for y in range(0, d.shape[0] - 63, 64) for x in range(0, d.shape[1] - 63, 64)]
    p = np.stack(out)
    return p[np.arange(n) % len(p)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--qf1", type=int, default=70)
    ap.add_argument("--qf2", type=int, default=90)
    a = ap.parse_args()
    p = patches(a.qf1, a.qf2, a.n)
    q2 = jpeg.standard_table(a.qf2)
    q1 = jpeg.zigzag(jpeg.standard_table(a.qf1))[:15]
    rates = {}
    for name, fn in (("galvan", galvan.estimate_batch), ("bianchi", bianchi.estimate_batch)):
        fn(p[:64], q2)  # warm-up
        t = time.perf_counter()
        e = fn(p, q2)
        dt = time.perf_counter() - t
        rates[name] = len(p) / dt
        k = 100
        t = time.perf_counter()
        for x in p[:k]:
            fn(x[None], q2)
        loop = k / (time.perf_counter() - t)
        print(f"{name:8s} batched {rates[name]:8.0f} patches/s | one patch per call {loop:6.0f} patches/s "
              f"(x{rates[name] / loop:.1f}) | accuracy {np.mean(e == q1):.3f} (QF1 {a.qf1}, QF2 {a.qf2}, "
              f"{len(p)} patches 64x64)")


if __name__ == "__main__":
    main()
