"""Localization maps on a 1-megapixel image: the exact path (one forward pass per 64x64 window)
against the dense path (``qpaper.localize.qmap(..., path="dense")``: for the block-DCT backbone
the front end's features computed once per pixel position and shared, for the DenseNet dilated
pooling), as a speed-up measured in one run and their agreement.

The exact path at stride 1 on a megapixel is about 900 000 forward passes, so its time is
measured on a seeded sample of windows and scaled to all of them; the agreement is measured on
the same sample: per coefficient, the share of windows where both give the same estimate, and
the share where all 15 agree, over windows on the file's 8x8 grid (where the two define the
last grid the same way) and over all windows. Writes results/benchmarks/localize.txt.
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from qpaper import jpeg, localize, model, paths  # noqa: E402
from qpaper.provenance import record, write_sidecar  # noqa: E402
from qpaper.sources import read_image, skimage_dir  # noqa: E402
from qpaper.paths import atomic_write_bytes
from qpaper.model import load_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", type=int, default=1024, help="image side (1024: one megapixel)")
    ap.add_argument("--sample", type=int, default=1024, help="windows timed on the exact path")
    ap.add_argument("--model", default=str(paths.model_path("mini", "qf2-90-class-Lr")))
    a = ap.parse_args()
    t0 = time.time()
    if Path(a.model).exists():
        m, name = load_model(a.model), os.path.relpath(a.model, Path(__file__).resolve().parent.parent)
    else:
        keras.utils.set_random_seed(0)
        m, name = model.build_model("class", depth=13), "untrained DenseNet-13 (no mini model found)"
    big = cv2.resize(read_image(skimage_dir() / "astronaut.png"), (a.side, a.side), interpolation=cv2.INTER_CUBIC)
    img = jpeg.decode(jpeg.encode_opencv(jpeg.decode(jpeg.encode_opencv(big, 75))[3:, 5:], 90))
    h, w = img.shape[:2]
    n_all = (h - 63) * (w - 63)
    t = time.perf_counter()
    dense, _ = localize.qmap(m, img, 1, progress=True, path="dense")
    t_dense = time.perf_counter() - t
    rng = np.random.default_rng(0)
    pick = rng.choice(n_all, a.sample, replace=False)
    ys, xs = pick // (w - 63), pick % (w - 63)
    gh, gw = (h - 64) // 8 + 1, (w - 64) // 8 + 1  # windows on the file's grid
    on_grid = rng.choice(gh * gw, a.sample // 4, replace=False)
    ys, xs = np.concatenate([ys, (on_grid // gw) * 8]), np.concatenate([xs, (on_grid % gw) * 8])
    from qpaper.model import decode, head_of
    m.predict_on_batch(np.zeros((8, 64, 64, 3), "float32"))  # trace once before timing
    t = time.perf_counter()
    exact = []
    for s in range(0, len(ys), 256):
        xb = np.stack([img[y:y + 64, x:x + 64] for y, x in zip(ys[s:s + 256], xs[s:s + 256])]).astype("float32")
        exact.append(decode(m.predict_on_batch(xb), head_of(m)))
    t_exact_sample = time.perf_counter() - t
    exact = np.concatenate(exact)
    d = dense[ys, xs]
    grid = (ys % 8 == 0) & (xs % 8 == 0)
    per_coef = (d[grid] == exact[grid]).mean(0)
    agree_grid = float((d[grid] == exact[grid]).all(1).mean())
    agree_all = float((d[:a.sample] == exact[:a.sample]).all(1).mean())
    t_exact_all = t_exact_sample / len(ys) * n_all
    dct = localize.is_dct(m)
    lines = [f"localization maps, {w}x{h} image ({n_all} windows at stride 1), model {name}",
             f"dense path: {t_dense:.1f} s for every window ({n_all / t_dense:.0f} windows/s)",
             f"exact path: {len(ys) / t_exact_sample:.1f} windows/s on {len(ys)} sampled windows; "
             f"{t_exact_all / 3600:.2f} h for all of them (scaled)",
             f"speed-up of the dense path: {t_exact_all / t_dense:.0f}x",
             f"agreement, {int(grid.sum())} windows on the file's 8x8 grid: all 15 coefficients {agree_grid:.4f}; "
             f"mean over coefficients {float(per_coef.mean()):.4f}",
             "per coefficient: " + " ".join(f"{v:.3f}" for v in per_coef),
             f"agreement, {a.sample} windows anywhere: all 15 coefficients {agree_all:.4f}"
             + (" (off the grid the exact pass takes the window's corner for the last grid, the dense one the "
                "file's grid)" if dct else ""),
             f"default of qpaper localize for this model: {'dense' if dct else 'exact'} "
             + ("(the agreement on the grid is the measure: >= 0.95 makes dense the default)" if dct else
                "(the dense path becomes the default at >= 0.95 agreement)")]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).resolve().parent.parent / "results" / "benchmarks" / "localize.txt"
    atomic_write_bytes(out, text.encode())
    write_sidecar(out, record("bench", 0, t0, command="python benchmarks/bench_localize.py", model=name,
                              agreement_on_grid=agree_grid, agreement_anywhere=agree_all,
                              agreement_per_coefficient=per_coef.tolist(), speedup=t_exact_all / t_dense,
                              dense_seconds=t_dense))


if __name__ == "__main__":
    main()
