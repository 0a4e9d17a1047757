"""Runs the released CNN-FQE models (Battiato, Giudice, Guarnera, Puglisi, "CNN-based first
quantization estimation of double compressed JPEG images", JVCIR 2022; github
ictlab-unict/jpeg-forensics-cnn-fqe, ``net_models/2/<q2>/{model,DC_model}_{0,1}.h5``) on JPEG
files, in the peer's own environment (tf-keras 2.x: the h5 files do not load in Keras 3, and
qpaper keeps one TensorFlow). Written from the paper and the models' input shapes, not from
their script: for zig-zag coefficient k with last step q2 (1..22), the histogram of |c * q2|
over the file's quantized coefficients c (jpeglib), one bin per integer 0..1024, keeping the
bins at multiples of q2, L1-normalised, shaped [1, bins, 1]; the DC net for k = 0, the AC net
otherwise; the two nets' softmaxes averaged; q1 = argmax + 1 (1..22). A coefficient whose q2 has
no released model (q2 = 1: the public copies lack those files; q2 > 22) gets 0 (no answer).

Usage (from benchmarks/bench_estimate.py): python cnn_fqe_runner.py MODELS_DIR FILE... ;
prints one JSON list of 15 estimates per file."""
import json
import sys

import jpeglib
import numpy as np
import tf_keras

ZIGZAG15 = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4]


def load(models, q2):
    try:
        return [[tf_keras.models.load_model(f"{models}/2/{q2}/{pre}model_{i}.h5", compile=False) for i in (0, 1)]
                for pre in ("DC_", "")]
    except (OSError, ValueError):
        return None


def main():
    models, files = sys.argv[1], sys.argv[2:]
    nets = {}
    out = []
    for f in files:
        d = jpeglib.read_dct(f)
        q2t = np.asarray(d.qt[d.quant_tbl_no[0]]).reshape(64)
        c = np.asarray(d.Y).reshape(-1, 64)
        est = []
        for k in range(15):
            q2 = int(q2t[ZIGZAG15[k]])
            if q2 not in nets:
                nets[q2] = load(models, q2) if 1 <= q2 <= 22 else None
            if nets[q2] is None:
                est.append(0)
                continue
            v = np.abs(c[:, ZIGZAG15[k]].astype(np.int64) * q2)
            h = np.bincount(v[v <= 1024], minlength=1025)[::q2].astype(np.float64)
            h /= max(h.sum(), 1.0)
            x = h.reshape(1, -1, 1, 1).transpose(0, 3, 1, 2)  # [1, 1, bins, 1]
            pair = nets[q2][0 if k == 0 else 1]
            p = sum(np.asarray(m(x, training=False))[0] for m in pair) / 2
            est.append(int(np.argmax(p)) + 1)
        out.append(est)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
