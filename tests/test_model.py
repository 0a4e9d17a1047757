import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from qpaper import jpeg, losses, model  # noqa: E402


def hand_case():
    """nc=2: blocks of 16 and 11 classes; true q1 = (2, 11)."""
    b1 = np.zeros(16)
    b1[[0, 1, 3]] = [0.25, 0.5, 0.25]
    b2 = np.full(11, 1 / 11)
    return np.array([[2, 11]], dtype=np.float32), np.concatenate([b1, b2])[None].astype(np.float32)


def value(loss, y, p):
    return float(keras.ops.convert_to_numpy(loss(y, p)))


def test_loss_L_by_hand():
    y, p = hand_case()
    expected = (math.log(2) + math.log(11)) / 2  # cross-entropy per block, averaged
    assert value(losses.BlockLoss(None, nc=2), y, p) == pytest.approx(expected, rel=1e-5)


def test_loss_Lr_by_hand_abs_and_squared():
    y, p = hand_case()
    ce = (math.log(2) + math.log(11)) / 2
    # block 1: 0.25*|0-1| + 0.25*|3-1| = 0.75; block 2: sum_j |j-10| / 11 = 5
    assert value(losses.BlockLoss(0.8, "abs", nc=2), y, p) == pytest.approx(0.8 * ce + 0.2 * 5.75, rel=1e-5)
    # squared: 0.25*1 + 0.25*4 = 1.25; sum_j (j-10)^2 / 11 = 35
    assert value(losses.BlockLoss(0.8, "squared", nc=2), y, p) == pytest.approx(0.8 * ce + 0.2 * 36.25, rel=1e-5)


def test_perfect_prediction_has_zero_distance_term():
    q = np.array([[3, 1]], dtype=np.float32)
    p = np.zeros((1, 27), dtype=np.float32)
    p[0, 2] = 1
    p[0, 16] = 1
    assert value(losses.BlockLoss(0.8, nc=2), q, p) == pytest.approx(0.0, abs=1e-5)


def test_head_is_226_wide_with_a_softmax_per_block():
    m = model.build_model("class", depth=7, growth=4, dropout=0.0, patch=16)
    assert m.output_shape == (None, 226)
    out = keras.ops.convert_to_numpy(m(np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")))
    start = 0
    for s in jpeg.q_max():
        assert np.allclose(out[:, start:start + s].sum(axis=1), 1.0, atol=1e-5)
        start += s
    assert start == 226


def test_densenet40_size():
    m = model.build_model("class")
    assert 1.1e6 < m.count_params() < 1.25e6  # the paper's model: about 1.18 M parameters


def test_argmax_decoding():
    p = np.zeros((1, 226))
    q = np.arange(1, 16)  # coefficient i gets q = i + 1
    start = 0
    for i, s in enumerate(jpeg.q_max()):
        p[0, start + min(q[i], s) - 1] = 1
        start += s
    assert model.decode(p, "class").tolist() == [np.minimum(q, jpeg.q_max()).tolist()]


def test_regression_rounding_and_clipping():
    pred = np.array([[0.2, 2.5, 3.49, 100.0] + [7.6] * 11])
    out = model.decode(pred, "regression")
    assert out[0, :4].tolist() == [1, 2, 3, 14]  # rounded, then clipped to q_max = 16, 11, 12, 14
    assert out[0, 4] == 8


def test_label_clipping_counts():
    q1 = jpeg.zigzag(jpeg.standard_table(30))[None]
    clipped, n = losses.clip_labels(q1)
    assert (clipped <= jpeg.q_max()).all() and n > 0
    assert losses.clip_labels(jpeg.zigzag(jpeg.standard_table(60))[None])[1] == 0


def test_save_load_safe_mode(tmp_path):
    m = model.build_model("class", depth=7, growth=4, patch=16)
    m.compile(optimizer="adam", loss=losses.BlockLoss(0.8, "squared"))
    x = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    p = tmp_path / "m.keras"
    m.save(p)
    m2 = keras.saving.load_model(p, safe_mode=True)
    assert np.allclose(keras.ops.convert_to_numpy(m(x)), keras.ops.convert_to_numpy(m2(x)), atol=1e-6)
    assert m2.loss.c == 0.8 and m2.loss.distance == "squared"


def test_tidy_table_and_equal_weight_averages():
    from qpaper import djpeg, evaluate

    q = np.array([[1, 2], [1, 2], [3, 4], [3, 4]])
    h = np.array([[1, 2], [1, 3], [3, 4], [2, 2]])
    meta = np.zeros(4, dtype=djpeg.META_DTYPE)
    meta["qf1"] = [0, 0, 1, 1]
    meta["aligned"] = [False, False, False, True]
    t = evaluate.tidy_table(q, h, meta, [60, 95], 90)
    assert len(t) == 2 * 3  # coefficient rows for (60, misaligned), (95, misaligned), (95, aligned)
    p = evaluate.per_qf1(t)
    # QF1 60: patch accuracies 1, 0.5 -> 0.75; MSE 0, 0.5 -> 0.25. QF1 95: 1, 0 -> 0.5; 0, 2.5 -> 1.25
    assert p["accuracy"].tolist() == [0.75, 0.5] and p["mse"].tolist() == [0.25, 1.25]
    assert p["patches"].tolist() == [2, 2]
    s = evaluate.summarize(t)
    assert s["all"] == {"AvgAcc": 0.625, "AvgMSE": 0.75, "qf1_values": 2}
    assert s["aligned"]["AvgAcc"] == 0.0 and s["aligned"]["qf1_values"] == 1
    assert s["qf1<qf2"]["AvgAcc"] == 0.75 and s["qf1>=qf2"]["AvgMSE"] == 1.25


def test_decode_follows_numpy_on_ties_and_halves():
    """The one decoding rule (keras.ops) against plain numpy: the first of tied maxima wins, halves
    round to even, values clip to [1, q_max]."""
    qm = jpeg.q_max()
    rng = np.random.default_rng(0)
    p = rng.integers(0, 3, (64, int(qm.sum()))).astype("float32")  # many ties
    ref = np.stack([p[:, a:b].argmax(1) + 1 for a, b in zip(np.r_[0, np.cumsum(qm)[:-1]], np.cumsum(qm))], 1)
    assert np.array_equal(model.decode(p, "class"), ref)
    r = (rng.integers(-4, 40, (64, 15)) / 2).astype("float32")  # every value a whole or a half
    assert np.array_equal(model.decode(r, "regression"), np.clip(np.rint(r), 1, qm).astype(np.int64))
