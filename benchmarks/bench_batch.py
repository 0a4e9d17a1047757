"""``qpaper estimate`` on a folder in one call against one call per file.

The 8 skimage photos, each compressed at QF1 70 and 85 then at QF2 90 (16 files, made here with
a seed-free recipe). The same files are estimated by the default CNN twice: once with one
``qpaper estimate FILE`` process per file (each pays the start-up of Python, TensorFlow and the
model), once with a single ``qpaper estimate FOLDER``. Reports files per second of each and
their ratio, measured in one run, and checks that both give the same answers. Writes
``results/benchmarks/batch.txt`` with a provenance sidecar.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qpaper import jpeg
from qpaper.provenance import hardware, record, write_sidecar
from qpaper.sources import get_source, load_image
from qpaper.paths import atomic_write_bytes

QF1 = (70, 85)


def main():
    t0 = time.time()
    qpaper = [sys.executable, "-m", "qpaper.cli", "estimate", "--quiet", "--json"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for rec in get_source("skimage"):
            img = load_image(rec.path, rec.sha256)
            for qf1 in QF1:
                data = jpeg.encode_opencv(jpeg.decode(jpeg.encode_opencv(img, qf1)), 90)
                (folder / f"{rec.id}-{qf1}.jpg").write_bytes(data)
        files = sorted(folder.glob("*.jpg"))
        t = time.perf_counter()
        single = []
        for f in files:
            r = subprocess.run(qpaper + [str(f)], capture_output=True, text=True, check=True)
            single.append(json.loads(r.stdout)["q1"])
            print(f"one call per file: {f.name}", flush=True)
        t_single = time.perf_counter() - t
        t = time.perf_counter()
        r = subprocess.run(qpaper + [str(folder)], capture_output=True, text=True, check=True)
        t_batch = time.perf_counter() - t
        batch = [json.loads(x)["q1"] for x in r.stdout.strip().splitlines()]
    same = batch == single
    text = "\n".join([
        f"# qpaper estimate on {len(files)} double JPEGs (8 skimage photos, QF1 {list(QF1)} -> QF2 90, OpenCV), the "
        f"registered CNN; {hardware()}",
        f"one process per file: {t_single:.1f} s = {len(files) / t_single:.2f} files/s",
        f"one call on the folder: {t_batch:.1f} s = {len(files) / t_batch:.2f} files/s",
        f"ratio (folder / one per file): {t_single / t_batch:.1f}x",
        f"same answers: {same}", ""])
    print(text)
    out = Path(__file__).resolve().parent.parent / "results" / "benchmarks" / "batch.txt"
    atomic_write_bytes(out, text.encode())
    write_sidecar(out, record("bench", 0, t0, command="python benchmarks/bench_batch.py",
                              files=len(files), seconds_single=round(t_single, 2), seconds_batch=round(t_batch, 2)))
    print(f"wrote {out}")
    return 0 if same else 1


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
