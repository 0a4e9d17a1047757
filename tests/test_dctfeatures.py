"""The block-DCT front end of the ``dct`` backbone: exact DCT, comb strengths by definition, the
grid of a first compression found at its phase, the dense path equal to the per-window one."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from qpaper import dctfeatures as dfe, jpeg, model  # noqa: E402


def comb_layer_model(nc=15):
    inp = keras.Input((64, 64, 3))
    hdc, hac = dfe.PhaseHistograms(nc)(inp)
    return keras.Model(inp, dfe.CombStrength(nc)((hdc, hac)))


def reference_features(window: np.ndarray, nc: int = 15) -> np.ndarray:
    """CombStrength of one 64x64 RGB window straight from the definitions, in float64: block DCT
    with the matrix of jpeg.dct_matrix at every phase, rounding, comb strengths per candidate."""
    y = window.astype(np.float64) @ np.array(dfe.LUMA) - 128.0
    d = jpeg.dct_matrix()
    qm = jpeg.q_max(nc)
    out = []
    for dy in range(8):
        for dx in range(8):
            b = y[dy:dy + 56, dx:dx + 56].reshape(7, 8, 7, 8).transpose(0, 2, 1, 3)
            c = np.einsum("ij,abjk,lk->abil", d, b, d).reshape(49, 64)[:, jpeg.ZIGZAG[:nc]]
            v = np.floor(c + dfe.HALF)
            row = [np.abs(np.exp(2j * np.pi * v[:, 0] / q).mean()) for q in range(1, qm[0] + 1)]
            for k in range(1, nc):
                inside = np.abs(v[:, k]) <= dfe.SPAN
                row += [(np.cos(2 * np.pi * v[:, k] / q) * inside).mean() for q in range(1, qm[k] + 1)]
            row += [(v[:, k] == 0).mean() for k in range(1, nc)]
            row += [(np.abs(v[:, k]) > dfe.SPAN).mean() for k in range(1, nc)]
            row.append(1.0 if dy == dx == 0 else 0.0)
            out.append(row)
    return np.array(out)


def double_jpeg(img, qf1, qf2, shift):
    r, c = shift
    d1 = jpeg.decode(jpeg.encode_opencv(img, qf1))[r:, c:]
    return jpeg.decode(jpeg.encode_opencv(np.ascontiguousarray(d1), qf2))


def test_features_match_the_definitions(astronaut):
    x = np.stack([astronaut[100:164, 200:264], astronaut[300:364, 40:104]]).astype("float32")
    f = keras.ops.convert_to_numpy(comb_layer_model()(x))
    assert f.shape == (2, 64, dfe.n_features())
    for i in range(2):
        ref = reference_features(x[i])
        diff = np.abs(f[i] - ref)
        # float32 against float64: a value within ~1e-4 of a bin edge may round the other way,
        # moving 1/49 between two bins; everything else is equal
        assert (diff < 1e-4).mean() > 0.995 and diff.max() <= 2 / 49 + 1e-4


def test_first_grid_found_at_its_phase(astronaut):
    """QF1 60, grid shift (3, 5), QF2 90: the comb of Q1 shows at phase ((-3) % 8, (-5) % 8) and
    the comb of Q2 at phase 0; elsewhere neither."""
    img = double_jpeg(astronaut, 60, 90, (3, 5))
    q1 = jpeg.zigzag(jpeg.standard_table(60))[:15]
    x = np.stack([img[y:y + 64, x:x + 64] for y in range(64, 448, 64) for x in range(64, 448, 64)]).astype("float32")
    f = keras.ops.convert_to_numpy(comb_layer_model()(x)).mean(0)  # [64 phases, features]
    qm = jpeg.q_max()
    start = np.concatenate([[0], np.cumsum(qm)])
    ks = [k for k in range(5, 15) if q1[k] > 4]  # larger steps survive the second compression best
    at_q1 = np.array([[f[p, start[k] + q1[k] - 1] for k in ks] for p in range(64)]).mean(1)
    assert at_q1.argmax() == 5 * 8 + 3
    assert at_q1[5 * 8 + 3] > np.median(at_q1) + 0.15


def test_dense_features_equal_the_per_window_ones(coffee):
    img = double_jpeg(coffee, 70, 90, (2, 7))[:150, :170]
    m = comb_layer_model()
    dense = dfe.dense_comb(dfe.luma(img))
    assert dense.shape == (150 - 55, 170 - 55, dfe.n_features())
    for wy, wx in ((0, 0), (16, 40), (8, 104), (5, 13), (86, 106)):
        f = keras.ops.convert_to_numpy(m(img[None, wy:wy + 64, wx:wx + 64].astype("float32")))[0]
        ref = dense[wy:wy + 8, wx:wx + 8].reshape(64, -1)
        diff = np.abs(f[:, :-1] - ref[:, :-1])  # the grid indicator is the file's, see below
        assert (diff < 1e-4).mean() > 0.995 and diff.max() <= 2 / 49 + 1e-4
        if wy % 8 == 0 and wx % 8 == 0:  # a window on the file's grid: phase 0 is that grid
            assert np.array_equal(f[:, -1], ref[:, -1])


def test_grid_histograms_dense_equal_the_layer(coffee):
    img = coffee[:120, :136]
    inp = keras.Input((64, 64, 3))
    m = keras.Model(inp, dfe.GridHistogram()(dfe.PhaseHistograms()(inp)[1]))
    anchors = np.array([[0, 0], [8, 16], [48, 64]])
    ref = dfe.grid_histograms(dfe.luma(img), anchors)
    for a, (y, x) in enumerate(anchors):
        got = keras.ops.convert_to_numpy(m(img[None, y:y + 64, x:x + 64].astype("float32")))[0]
        assert np.abs(got - ref[a]).max() <= 2 / 49 + 1e-6 and (np.abs(got - ref[a]) < 1e-6).mean() > 0.99


def test_grid_only_front_end_reads_the_last_grid(astronaut):
    img = jpeg.decode(jpeg.encode_opencv(astronaut, 90))
    inp = keras.Input((64, 64, 3))
    hdc, hac = dfe.PhaseHistograms(phases="grid")(inp)
    x = np.stack([img[y:y + 64, x:x + 64] for y in range(64, 448, 64) for x in range(64, 448, 64)]).astype("float32")
    f = keras.ops.convert_to_numpy(keras.Model(inp, dfe.CombStrength()((hdc, hac)))(x))
    assert f.shape == (len(x), 1, dfe.n_features()) and (f[:, 0, -1] == 1.0).all()
    f = f[:, 0].mean(0)
    # the values are multiples of q2 up to the rounding of the decoded pixels: leaving out the
    # zeros (a multiple of every q), the comb at q2 stands above that of steps that do not divide it
    q2 = jpeg.zigzag(jpeg.standard_table(90))[:15]
    start = np.concatenate([[0], np.cumsum(jpeg.q_max())])
    zero = f[226:226 + 14]
    at_q2 = np.array([f[start[k] + q2[k] - 1] for k in range(1, 15)]) - zero
    others = np.array([max(f[start[k] + q - 1] for q in range(2, 9) if q2[k] % q) for k in range(1, 15)]) - zero
    assert np.all(at_q2 > others + 0.05), (at_q2, others)


def test_dct_model_saves_and_loads_safely(tmp_path):
    m = model.build_model("class", arch="dct", width=8, hidden=16)
    x = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype("float32")
    m.save(tmp_path / "m.keras")
    m2 = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert np.allclose(keras.ops.convert_to_numpy(m(x)), keras.ops.convert_to_numpy(m2(x)), atol=1e-6)
    assert m.output_shape == (None, 226)
    r = model.build_model("regression", arch="dct", width=8, hidden=16)
    assert r.output_shape == (None, 15)


def test_dct_backbone_refuses_other_window_sizes():
    with pytest.raises(ValueError, match="64x64"):
        model.build_model("class", arch="dct", patch=32)


def test_a_front_end_reading_more_coefficients_than_it_estimates(coffee):
    from qpaper import localize
    keras.utils.set_random_seed(1)
    m = model.build_model("class", arch="dct", width=8, hidden=16, nf=21)
    assert m.get_layer("comb").output.shape[-1] == dfe.n_features(21) > dfe.n_features(15)
    assert m.get_layer("grid_histogram").output.shape[-1] == 14 * dfe.NB and m.output_shape == (None, 226)
    assert dfe.candidates(21)[15:].tolist() == [24, 24, 24, 22, 22, 24]  # QF 50 steps 40, 26, 24, 22, 22, 24 capped
    img = double_jpeg(coffee, 80, 90, (1, 6))[:160, :200]
    exact, _ = localize.qmap(m, img, 8, progress=False, path="exact")
    dense, _ = localize.qmap(m, img, 8, progress=False, path="dense")
    assert (exact == dense).all(-1).mean() > 0.98
    with pytest.raises(ValueError, match="nf"):
        model.build_model("class", arch="dct", nf=10)


def test_jax_gives_the_same_features_and_trains(tmp_path):
    """The GPU machine has JAX, no TensorFlow: the front end must compute the same numbers there
    (one-hot sums instead of TensorFlow's batched bincount) and train under jit."""
    pytest.importorskip("jax")
    import os
    import subprocess
    import sys
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (3, 64, 64, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    code = ("import numpy as np, keras\nfrom qpaper import dctfeatures as dfe, losses, model\n"
            f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
            "inp = keras.Input((64, 64, 3)); h = dfe.PhaseHistograms(21)(inp)\n"
            "f = keras.Model(inp, dfe.CombStrength(21)(h))(x)\n"
            f"np.save({str(tmp_path / 'jax.npy')!r}, np.asarray(f))\n"
            "m = model.build_model('class', arch='dct', width=8, hidden=16, nf=21)\n"
            "m.compile(optimizer='adam', loss=losses.BlockLoss(0.8))\n"
            "y = np.tile(np.arange(1, 16, dtype='float32'), (3, 1))\n"
            "print(keras.backend.backend(), float(m.train_on_batch(x, y)))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, KERAS_BACKEND="jax"))
    assert r.returncode == 0, r.stderr[-2000:]
    backend, loss = r.stdout.split()[-2:]
    assert backend == "jax" and np.isfinite(float(loss))
    inp = keras.Input((64, 64, 3))
    ref = keras.ops.convert_to_numpy(keras.Model(inp, dfe.CombStrength(21)(dfe.PhaseHistograms(21)(inp)))(x))
    got = np.load(tmp_path / "jax.npy")
    assert got.shape == ref.shape and (np.abs(got - ref) < 1e-4).mean() > 0.999
