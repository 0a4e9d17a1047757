"""Peer check against pyIFD's ADQ2 (Bianchi, De Rosa, Piva 2011; aligned Q1 estimate of
zig-zag coefficients 1..15). pyIFD is NOT a qpaper dependency: it runs in a throwaway venv
(python3 -m venv /tmp/pyifd-venv && /tmp/pyifd-venv/bin/pip install pyIFD) through a subprocess.
Usage: python benchmarks/peer_pyifd.py [--venv /tmp/pyifd-venv] [--size 256]"""
import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from qpaper import jpeg
from qpaper.baselines import bianchi, galvan
from qpaper.sources import read_image, skimage_dir

CODE = """
import json, sys
import numpy as np
from pyIFD.ADQ2 import getJmap
out = []
for p in sys.argv[1:]:
    r = getJmap(p)
    t = np.asarray(r[1]).reshape(-1)  # q1table: entry (coe-1) is zig-zag coefficient coe
    out.append([int(v) for v in t[1:16]])
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", default="/tmp/pyifd-venv")
    ap.add_argument("--size", type=int, default=256)
    a = ap.parse_args()
    names = ("astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png")
    pairs = ((60, 90), (70, 90), (80, 90), (70, 80), (95, 80))
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        for qf1, qf2 in pairs:
            for n in names:
                g = np.ascontiguousarray(read_image(skimage_dir() / n)[:a.size, :a.size])
                if g.ndim == 2:
                    g = np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))
                d1 = jpeg.decode(jpeg.encode_opencv(g, qf1))  # RGB: pyIFD reads 3-channel JPEGs
                b2 = jpeg.encode_opencv(d1, qf2)
                p = Path(tmp) / f"{n}_{qf1}_{qf2}.jpg"
                p.write_bytes(b2)
                cases.append((qf1, qf2, p, jpeg.decode(b2)))
        res = subprocess.run([f"{a.venv}/bin/python", "-c", CODE] + [str(c[2]) for c in cases],
                             capture_output=True, text=True)
        if res.returncode:
            raise SystemExit(res.stderr[-2000:])
        peer = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"aligned {a.size}x{a.size} RGB crops (4:2:0), {len(names)} images per pair; agreement on the"
          " AC coefficients 1..14 (zig-zag) pyIFD estimates (its 1..15 = our indices 1..14 + 15)")
    for (qf1, qf2) in pairs:
        rows = [(c, np.array(p)) for c, p in zip(cases, peer) if c[:2] == (qf1, qf2)]
        q1 = jpeg.zigzag(jpeg.standard_table(qf1))[1:15]
        q2 = jpeg.standard_table(qf2)
        P = np.stack([p[:14] for _, p in rows])
        G = np.stack([galvan.estimate(c[3], q2)[1:15] for c, _ in rows])
        B = np.stack([bianchi.estimate(c[3], q2)[1:15] for c, _ in rows])
        print(f"QF1 {qf1} QF2 {qf2}: accuracy pyIFD {np.mean(P == q1):.2f} galvan {np.mean(G == q1):.2f} "
              f"bianchi {np.mean(B == q1):.2f} | agreement galvan-pyIFD {np.mean(G == P):.2f} "
              f"bianchi-pyIFD {np.mean(B == P):.2f}")
        print("   per-coefficient agreement bianchi-pyIFD:", np.round(np.mean(B == P, axis=0), 2).tolist())


if __name__ == "__main__":
    main()
