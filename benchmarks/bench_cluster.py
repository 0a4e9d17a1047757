"""Issue 23: ``qpaper estimate`` and ``qpaper dataset build`` on a Dask ``LocalCluster`` against
one process, on this machine's cores, reported as ratios measured in one run.

estimate: the prepared wallpapers (the photos of the mini profile, 1-4 MP), each compressed at a
QF1 then at QF2 90 (QF1 cycling over 60..95 with the file's rank: no random choice), once (37
files) and at two QF1 (74 files), estimated by the registered default CNN (a) in one process, (b)
with ``--scheduler local:1`` and (c) ``local:2``. Reported: the wall time of each command (its
start-up included: Python, TensorFlow, the cluster, the model in every worker) and the steady
rate (the 37 files the larger set adds over the seconds they add). The CSV tables must be
byte-identical.

dataset build: the mini profile's QF2-90 training spec at 3600 patches a QF1 (8 shards) with
``--workers 1``, ``--workers 2`` (the process pool) and ``--scheduler local:2``; the content
digests must be equal.

Writes ``results/benchmarks/cluster.txt`` with a provenance sidecar.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qpaper import jpeg
from qpaper.paths import atomic_write_bytes
from qpaper.provenance import hardware, record, write_sidecar
from qpaper.sources import load_image, wallpapers_source

QPAPER = [sys.executable, "-m", "qpaper.cli"]


def timed(args) -> float:
    t = time.perf_counter()
    r = subprocess.run(QPAPER + args, capture_output=True, text=True)
    if r.returncode not in (0, 2) or "Traceback" in r.stderr:
        sys.exit(f"bench_cluster: {' '.join(args)} failed:\n{r.stderr}")
    return time.perf_counter() - t


def main():
    t0 = time.time()
    lines, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sets = {n: tmp / f"photos{n}" for n in (1, 2)}  # each wallpaper at 1 QF1, and at 2
        for n, folder in sets.items():
            folder.mkdir()
            for k, rec in enumerate(wallpapers_source()):
                img = load_image(rec.path, rec.sha256)
                for qf1 in [60 + 5 * ((k + j) % 8) for j in range(n)]:
                    data = jpeg.encode_opencv(jpeg.decode(jpeg.encode_opencv(img, qf1)), 90)
                    (folder / f"{rec.id}-{qf1}.jpg").write_bytes(data)
        count = {n: len(list(f.glob("*.jpg"))) for n, f in sets.items()}
        times, tables = {}, {}
        for name, extra in (("one process", []), ("--scheduler local:1", ["--scheduler", "local:1"]),
                            ("--scheduler local:2", ["--scheduler", "local:2"])):
            for n, folder in sets.items():
                csv = tmp / f"{len(times)}.csv"
                times[name, n] = timed(["estimate", str(folder), "--csv", str(csv), "--quiet", *extra])
                tables.setdefault(n, set()).add(csv.read_bytes())
                print(f"estimate, {name}, {count[n]} files: {times[name, n]:.1f} s", flush=True)
        same = all(len(t) == 1 for t in tables.values())
        ok &= same
        names = list(dict.fromkeys(name for name, _ in times))
        # steady state: the files of the second set beyond the first, over the time they added
        rate = {name: (count[2] - count[1]) / max(1e-9, times[name, 2] - times[name, 1]) for name in names}
        lines += [f"## qpaper estimate: the 37 prepared wallpapers (1-4 MP) double-compressed, QF1 60..95 -> QF2 90, "
                  f"{count[1]} files and {count[2]} files (each at two QF1), the registered default CNN",
                  "whole command (start-up of Python, TensorFlow, the cluster and the model in each worker included):"]
        base = times["one process", 2]
        lines += [f"{name:>22}: {count[1]} files {times[name, 1]:6.1f} s, {count[2]} files {times[name, 2]:6.1f} s; "
                  f"speed-up on {count[2]} files {base / times[name, 2]:.2f}x" for name in names]
        lines += ["steady state (the files the larger set adds, over the seconds they add):"]
        lines += [f"{name:>22}: {rate[name]:.2f} files/s, speed-up {rate[name] / rate['one process']:.2f}x"
                  for name in names]
        lines += [f"CSV tables byte-identical across the three: {same}", ""]

        spec = ["dataset", "build", "--profile", "mini", "--split", "train", "--qf2", "90", "--patches-per-qf1", "3600",
                "--quiet"]
        build = {}
        for name, extra in (("--workers 1", ["--workers", "1"]), ("--workers 2", ["--workers", "2"]),
                            ("--scheduler local:2", ["--scheduler", "local:2"])):
            out = tmp / f"d{len(build)}"
            build[name] = (timed(spec + ["--out", str(out), *extra]),
                           json.loads((out / "manifest.json").read_text()))
            print(f"dataset build, {name}: {build[name][0]:.1f} s", flush=True)
        m = build["--workers 1"][1]
        digests = {b[1]["content_sha256"] for b in build.values()}
        ok &= len(digests) == 1
        base = build["--workers 1"][0]
        lines += [f"## qpaper dataset build: the mini QF2-90 training spec (wallpapers, 9 QF1) at 3600 patches a QF1, "
                  f"{m['count']} patches in "
                  f"{len(m['shards'])} shards, wall time of the whole command"]
        lines += [f"{name:>22}: {s:6.1f} s, speed-up {base / s:.2f}x" for name, (s, _) in build.items()]
        lines += [f"content digests equal: {len(digests) == 1} ({m['content_sha256'][:16]}...)", ""]
    text = "\n".join([f"# Dask LocalCluster against one process (issue 23); {hardware()}", ""] + lines)
    print(text)
    out = Path(__file__).resolve().parent.parent / "results" / "benchmarks" / "cluster.txt"
    atomic_write_bytes(out, text.encode())
    write_sidecar(out, record("bench", 0, t0, command="python benchmarks/bench_cluster.py", files=count,
                              estimate_seconds={f"{k[0]}, {count[k[1]]} files": round(v, 2) for k, v in times.items()},
                              build_seconds={k: round(v[0], 2) for k, v in build.items()}))
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
