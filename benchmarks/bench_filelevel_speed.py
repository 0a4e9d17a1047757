"""Where the file-level estimator's time goes (issue 31's speed aim), as ratios measured in one
run (``make bench``): on a 1 MP and a 12 MP double JPEG (QF1 70 -> 90, shifted by (3, 5), a test
wallpaper resized as in bench_estimate), the median of 3 runs of each part, and the no-trace
gate both ways (one batched DCT, as now, and one DCT call per window, as before).

    python benchmarks/bench_filelevel_speed.py   # -> results/benchmarks/filelevel-speed.txt
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_estimate import photos, speed_files  # noqa: E402

from qpaper import estimate, filelevel, grid, jpeg  # noqa: E402
from qpaper.paths import ROOT, atomic_write_bytes  # noqa: E402
from qpaper.provenance import record, write_sidecar  # noqa: E402

OUT = ROOT / "results" / "benchmarks" / "filelevel-speed.txt"


def median_seconds(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def gate_per_window(rgb, origins, q2, nc=jpeg.NC):
    """The no-trace gate as it was: one DCT call per window."""
    y = jpeg.to_luma(rgb)
    c = np.concatenate([jpeg.block_dct(y[a:a + 64, b:b + 64])[:, 1:nc] for a, b in origins])
    q = np.rint(c / jpeg.zigzag(q2)[1:nc])
    least = max(3, estimate.TRACE_SHARE * len(q))
    return np.array([(np.unique(col, return_counts=True)[1] >= least).sum() for col in q.T])


def main() -> int:
    t0 = time.time()
    from qpaper.backend import import_backend_quietly
    import_backend_quietly()
    cache, rows = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for size, p in speed_files(photos(), tmp):
            data = p.read_bytes()
            estimate.run(p, method="file", progress=False, models=cache)  # the model loaded once
            ev = filelevel.read_evidence(p, data)
            luma = filelevel.decode_luma(data)
            im = estimate.read_jpeg(p)
            origins = estimate.window_origins(im["size"], 512, 0)
            assert np.array_equal(gate_per_window(im["rgb"], origins, im["q2"]),
                                  estimate.readable_coefficients(im["rgb"], origins, im["q2"]))
            parts = {
                "whole estimate (file, model loaded)": median_seconds(
                    lambda: estimate.run(p, method="file", progress=False, models=cache)),
                "read and decode (read_jpeg)": median_seconds(lambda: estimate.read_jpeg(p)),
                "no-trace gate, one batched DCT": median_seconds(
                    lambda: estimate.readable_coefficients(im["rgb"], origins, im["q2"])),
                "no-trace gate, a DCT per window (before)": median_seconds(
                    lambda: gate_per_window(im["rgb"], origins, im["q2"])),
                "grid search (find_grid)": median_seconds(lambda: grid.find_grid(luma)),
                "evidence (luma, levels, grid, DCTs)": median_seconds(lambda: filelevel.read_evidence(p, data)),
                "log-likelihoods of the 32 candidates": median_seconds(lambda: filelevel.file_log_likelihoods(ev)),
            }
            for part, sec in parts.items():
                rows.append((size, part, sec))
            print(f"{size} done ({time.time() - t0:.0f} s)", flush=True)
    lines = ["# file-level estimator: seconds per part (median of 3 runs, one process, 2 cores)",
             "# python benchmarks/bench_filelevel_speed.py", ""]
    for size in dict.fromkeys(r[0] for r in rows):
        part = {p: s for z, p, s in rows if z == size}
        lines.append(f"## {size}")
        lines += [f"{p:45s} {s:7.3f} s" for p, s in part.items()]
        lines.append(f"the batched gate is {part['no-trace gate, a DCT per window (before)'] / part['no-trace gate, one batched DCT']:.1f}x "
                     f"as fast as a DCT per window; the grid search is "
                     f"{part['grid search (find_grid)'] / part['whole estimate (file, model loaded)']:.0%} of the whole")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    atomic_write_bytes(OUT, text.encode())
    write_sidecar(OUT, record("bench", 0, t0, command="python benchmarks/bench_filelevel_speed.py"))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
