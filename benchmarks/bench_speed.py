"""Speed of the mini profile's block-DCT backbone against the pixel DenseNet-13, as ratios from
one run on this machine: training patches/s (``qpaper.train.Patches`` fed to ``model.fit``, class
head, loss Lr, the profile's batch), prediction patches/s (``qpaper.evaluate.predict_q1``), and
the time of a stride-1 map of a one-megapixel image (``qpaper.localize.qmap(..., path="dense")``,
every one of its ~915 000 windows) with the committed mini model.

Writes ``results/benchmarks/speed.txt`` with a provenance sidecar.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from qpaper import dataset, evaluate, jpeg, localize, losses, model, paths, shards, train  # noqa: E402
from qpaper.djpeg import DatasetSpec  # noqa: E402
from qpaper.profiles import get_profile  # noqa: E402
from qpaper.provenance import hardware, record, write_sidecar  # noqa: E402
from qpaper.sources import read_image, skimage_dir  # noqa: E402
from qpaper.paths import atomic_write_bytes  # noqa: E402
from timing import rate  # noqa: E402


def throughput(m, d, n, batch, repeats):
    """(training, prediction) patches/s, best of ``repeats``."""
    seq = train.Patches(d, np.arange(n), batch, seed=0)
    m.fit(train.Patches(d, np.arange(batch * 2), batch, seed=1), epochs=1, verbose=0)  # trace first
    evaluate.predict_q1(m, d, 256, progress=False)
    fit, pred = [], []
    for _ in range(repeats):
        fit.append(rate(n, m.fit, seq, epochs=1, verbose=0))
        pred.append(rate(n, evaluate.predict_q1, m, d, 256, progress=False))
    return max(fit), max(pred)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--patches", type=int, default=2048, help="patches per timing of the DCT backbone")
    ap.add_argument("--densenet-patches", type=int, default=256, help="patches per timing of the DenseNet-13")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--side", type=int, default=1024, help="side of the map's image (1024: one megapixel)")
    a = ap.parse_args()
    t0 = time.time()
    fit = {**train.FIT_DEFAULTS, **get_profile("mini")["fit"]}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        spec = DatasetSpec(source="skimage", split="all", qf2=90, qf1=(60, 80, 95), patches_per_image=50,
                           patches_per_qf1=max(a.patches, a.densenet_patches) // 3 + 1)
        shards.build(spec, tmp, workers=1, progress=False, log=lambda *_: None)
        d = dataset.open_dataset(tmp)
        for name, kw, n, batch in (("densenet13", {"arch": "densenet", "depth": 13, "growth": 12}, a.densenet_patches,
                                    32),
                                   ("dct (mini)", {"arch": "dct", "width": fit["width"], "hidden": fit["hidden"],
                                                   "phases": fit["phases"], "nf": fit["nf"]},
                                    a.patches, fit["batch"])):
            keras.utils.set_random_seed(0)
            m = model.build_model("class", **kw)
            m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses.BlockLoss(losses.C), jit_compile=train._jit())
            rows[name] = throughput(m, d, n, batch, a.repeats) + (batch,)
            print(name, rows[name], flush=True)
            keras.backend.clear_session()
    mpath = paths.model_path("mini", "qf2-90-class-Lr")
    m = model.load_model(mpath)
    big = cv2.resize(read_image(skimage_dir() / "astronaut.png"), (a.side, a.side), interpolation=cv2.INTER_CUBIC)
    img = jpeg.decode(jpeg.encode_opencv(jpeg.decode(jpeg.encode_opencv(big, 75))[3:, 5:], 90))
    t = time.perf_counter()
    qm, _ = localize.qmap(m, img, 1, progress=False, path="dense" if localize.is_dct(m) else "exact")
    t_map = time.perf_counter() - t
    (dn_fit, dn_pred, dn_b), (dc_fit, dc_pred, dc_b) = rows["densenet13"], rows["dct (mini)"]
    lines = [f"# speed on {hardware()}, backend {keras.backend.backend()}; best of {a.repeats} runs each",
             f"{'backbone':<12} {'batch':>5} {'train p/s':>10} {'predict p/s':>12}",
             f"{'densenet13':<12} {dn_b:>5} {dn_fit:>10.1f} {dn_pred:>12.1f}",
             f"{'dct (mini)':<12} {dc_b:>5} {dc_fit:>10.1f} {dc_pred:>12.1f}",
             f"{'ratio':<12} {'':>5} {dc_fit / dn_fit:>10.1f} {dc_pred / dn_pred:>12.1f}",
             f"stride-1 map of a {img.shape[1]}x{img.shape[0]} image ({qm.shape[0] * qm.shape[1]} windows), model "
             f"{os.path.relpath(mpath, Path(__file__).resolve().parent.parent)}, "
             f"{'dense' if localize.is_dct(m) else 'exact'} path: {t_map:.1f} s"]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).resolve().parent.parent / "results" / "benchmarks" / "speed.txt"
    atomic_write_bytes(out, text.encode())
    write_sidecar(out, record("mini", 0, t0, command="python benchmarks/bench_speed.py " + " ".join(sys.argv[1:]),
                              train_patches_per_s={"densenet13": dn_fit, "dct": dc_fit},
                              predict_patches_per_s={"densenet13": dn_pred, "dct": dc_pred}, map_seconds=t_map))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
