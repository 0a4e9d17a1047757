"""Peer check against pyIFD's ADQ2 (Bianchi, De Rosa, Piva, ICASSP 2011: aligned double-JPEG
detector whose by-product is an estimate of the primary quantization steps). pyIFD is NOT a
qpaper dependency: it runs in a throwaway venv (python3 -m venv /tmp/pyifd-venv &&
/tmp/pyifd-venv/bin/pip install pyIFD) through a subprocess.

What ``pyIFD.ADQ2.getJmap(path, ncomp=1, c1=1, c2=15)`` returns (read from pyIFD 0.0.3's
source): ``[maskTampered, q1table, alphatable]``. It works on the DCT coefficients of component
``ncomp`` = 1, the luminance Y, read with jpegio. It loops over the first c2 = 15 entries of a
zig-zag list written as MATLAB column-major 1-based indices ``coe`` (1, 9, 2, 3, 10, ...), but
the Python port reads every one of them as row-major: the coefficients it takes from the block
grid, the Q2 step it takes from ``qtable`` and the cell of ``q1table`` it writes are all at
natural position (row, col) = ((coe-1) // 8, (coe-1) % 8), the transpose of the MATLAB one. The
15 positions with row + col <= 4 are the same set either way (the transpose of zig-zag step k
is step k or its neighbour), and data, Q2 and the estimate are transposed together, so
``q1table`` is an 8x8 table in natural row-major order, like the JPEG quantization tables, with
estimates at the positions row + col <= 4 (the DC included) and 100 elsewhere. Hence our
zig-zag coefficient k (0..14) is ``jpeg.zigzag(q1table)[k]``. (The first version of this
script read ``q1table.reshape(-1)[1:16]``, natural positions (0,1)..(1,7), mostly unestimated
cells: hence the absurd agreement.) pyIFD's candidate range is 1..20 (steps 0-9) and 1..30
(10-14), ours 1..q_max(15)[k].

Usage: python benchmarks/peer_pyifd.py [--venv /tmp/pyifd-venv] [--size 256]
Writes results/benchmarks/peer_pyifd.txt (+ provenance sidecar)."""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from qpaper import jpeg
from qpaper.baselines import bianchi, galvan
from qpaper.provenance import record, write_sidecar
from qpaper.sources import read_image, skimage_dir
from qpaper.paths import atomic_write_bytes

CODE = """
import json, sys
import numpy as np
from pyIFD.ADQ2 import getJmap
out = []
for p in sys.argv[1:]:
    r = getJmap(p)  # ncomp=1 (Y), zig-zag steps 1..15 = our 0..14
    out.append(np.asarray(r[1]).astype(int).tolist())  # q1table, 8x8 natural row-major
print(json.dumps(out))
"""
NC = 15
OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "peer_pyifd.txt"


def main():
    t0 = time.time()
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", default="/tmp/pyifd-venv")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", default=str(OUT))
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
        tables = json.loads(res.stdout.strip().splitlines()[-1])
    peer = [jpeg.zigzag(np.asarray(t))[:NC] for t in tables]
    lines = [f"pyIFD ADQ2 peer check: aligned {a.size}x{a.size} RGB crops (OpenCV, 4:2:0) of {len(names)} skimage "
             f"images per (QF1, QF2) pair; luminance Q1, zig-zag coefficients 0..{NC - 1} (DC included).",
             "pyIFD q1table read in natural row-major order: ours[k] = zigzag(q1table)[k].",
             "accuracy = share of (image, coefficient) estimates equal to the true Q1; agreement = share equal "
             "to pyIFD's.", "",
             f"{'QF1':>4} {'QF2':>4} | {'acc pyIFD':>9} {'galvan':>7} {'bianchi':>8} | {'agree galvan':>12} "
             f"{'agree bianchi':>13}"]
    per_coef = []
    allP, allG, allB, allT = [], [], [], []
    for (qf1, qf2) in pairs:
        rows = [(c, p) for c, p in zip(cases, peer) if c[:2] == (qf1, qf2)]
        q1 = jpeg.zigzag(jpeg.standard_table(qf1))[:NC]
        q2 = jpeg.standard_table(qf2)
        P = np.stack([p for _, p in rows])
        G = np.stack([galvan.estimate(c[3], q2) for c, _ in rows])
        B = np.stack([bianchi.estimate(c[3], q2) for c, _ in rows])
        allP.append(P), allG.append(G), allB.append(B), allT.append(np.broadcast_to(q1, P.shape))
        lines.append(f"{qf1:>4} {qf2:>4} | {np.mean(P == q1):9.2f} {np.mean(G == q1):7.2f} {np.mean(B == q1):8.2f} | "
                     f"{np.mean(G == P):12.2f} {np.mean(B == P):13.2f}")
        per_coef.append((qf1, qf2, np.mean(G == P, axis=0), np.mean(B == P, axis=0)))
    P, G, B, T = (np.concatenate(x) for x in (allP, allG, allB, allT))
    lines.append(f"{'all':>9} | {np.mean(P == T):9.2f} {np.mean(G == T):7.2f} {np.mean(B == T):8.2f} | "
                 f"{np.mean(G == P):12.2f} {np.mean(B == P):13.2f}")
    lines += ["", f"per-coefficient agreement with pyIFD (k = 0..{NC - 1}), all pairs:",
              "  galvan : " + " ".join(f"{v:.2f}" for v in np.mean(G == P, axis=0)),
              "  bianchi: " + " ".join(f"{v:.2f}" for v in np.mean(B == P, axis=0)),
              "per-coefficient accuracy, all pairs:",
              "  pyIFD  : " + " ".join(f"{v:.2f}" for v in np.mean(P == T, axis=0)),
              "  galvan : " + " ".join(f"{v:.2f}" for v in np.mean(G == T, axis=0)),
              "  bianchi: " + " ".join(f"{v:.2f}" for v in np.mean(B == T, axis=0)),
              "", "per-pair, per-coefficient agreement (galvan | bianchi):"]
    for qf1, qf2, g, b in per_coef:
        lines.append(f"  {qf1}/{qf2}: " + " ".join(f"{v:.2f}" for v in g) + " | " + " ".join(f"{v:.2f}" for v in b))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, text.encode())
    write_sidecar(out, record("peer", 0, t0, command="python " + " ".join(sys.argv), pyifd_venv=a.venv,
                              pairs=[list(p) for p in pairs], images=list(names), size=a.size))


if __name__ == "__main__":
    main()
