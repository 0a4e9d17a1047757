"""Every patch's answer (issue 24): nearest QF per estimate, QF1 confusion, bootstrap intervals
over images. Synthetic predictions with known answers."""
import numpy as np
import pytest

from qpaper import evaluate as ev
from qpaper import jpeg
from qpaper import results as rs
from qpaper.djpeg import META_DTYPE


def fake(q_hat_of, n_images=12, per=10, qf1s=(60, 75, 95), seed=0):
    rng = np.random.default_rng(seed)
    rows, truth, hats = [], [], []
    for qi, q in enumerate(qf1s):
        t = jpeg.zigzag(jpeg.standard_table(q))[:15]
        for img in range(n_images):
            for _ in range(per):
                m = np.zeros((), META_DTYPE)
                m["image"], m["qf1"], m["aligned"] = img, qi, rng.random() < 0.2
                rows.append(m)
                truth.append(t)
                hats.append(q_hat_of(q, img, rng))
    return {"q_hat": np.array(hats, np.int64), "q_true": np.array(truth, np.int64), "meta": np.array(rows),
            "qf1_names": [str(q) for q in qf1s], "qf2": 90}


def test_nearest_qf_agrees_with_nearest_tables():
    rng = np.random.default_rng(1)
    est = rng.integers(1, 30, (40, 15))
    est[:3] = [jpeg.zigzag(jpeg.standard_table(q))[:15] for q in (50, 90, 100)]
    got = rs.nearest_qf(est)
    assert list(got[1:3]) == [90, 100] and got[0] in (50, 51)  # QF 50 and 51 share their first 15 steps: ties go up
    assert all(g == jpeg.nearest_tables(e)["qf"] for g, e in zip(got, est))


def test_confusion_shows_a_default_answer_and_the_diagonal():
    table = {q: jpeg.zigzag(jpeg.standard_table(q))[:15] for q in (60, 75, 95)}
    # right for 60 and 75, and answers the QF 75 table whenever QF1 is 95 (a "default")
    p = fake(lambda q, img, rng: table[75] if q == 95 else table[q])
    c = rs.qf1_confusion(p)
    assert list(c.index) == ["60", "75", "95"] and np.allclose(c.sum(axis=1), 1)
    assert c.loc["60", 60] == 1 and c.loc["75", 75] == 1 and c.loc["95", 75] == 1 and 95 not in c.columns
    only = rs.qf1_confusion(p, aligned=True)
    assert np.allclose(only.sum(axis=1), 1)


def test_bootstrap_point_equals_the_tables_and_intervals_pair_the_draws():
    table = {q: jpeg.zigzag(jpeg.standard_table(q))[:15] for q in (60, 75, 95)}

    def noisy(q, img, rng):  # right on some coefficients, image-dependent
        t = table[q].copy()
        t[rng.random(15) < 0.3 + 0.04 * img] += 1
        return t
    a = fake(noisy, seed=0)
    b = dict(a, q_hat=np.where(np.arange(15) < 3, a["q_true"], a["q_hat"]))  # also right on the first 3: better
    tidy = ev.tidy_table(a["q_true"], a["q_hat"], a["meta"], a["qf1_names"], 90)
    r = rs.bootstrap({"a": a, "same": dict(a), "b": b}, n=300, seed=0).set_index("method")
    assert r.loc["a", "AvgAcc"] == round(rs.averages(tidy)[0], 4)
    assert r.loc["a", "low"] < r.loc["a", "AvgAcc"] < r.loc["a", "high"]
    assert r.loc["same", "diff low"] == r.loc["same", "diff high"] == 0
    assert 0 < r.loc["b", "diff low"] <= r.loc["b", "minus a"] <= r.loc["b", "diff high"]
    assert (r["images"] == 12).all()
    again = rs.bootstrap({"a": a, "b": b}, n=300, seed=0)
    assert again.equals(rs.bootstrap({"a": a, "b": b}, n=300, seed=0))
    other = fake(noisy, n_images=5)
    with pytest.raises(ValueError, match="another dataset"):
        rs.bootstrap({"a": a, "x": other}, n=10)


def test_coefficient_confusion_by_hand():
    table = {q: jpeg.zigzag(jpeg.standard_table(q))[:15] for q in (60, 75, 95)}
    p = fake(lambda q, img, rng: table[75] if q == 95 else table[q])  # QF1 95 answered with QF 75's steps
    c = rs.coefficient_confusion(p, 1)
    t60, t75, t95 = (int(table[q][0]) for q in (60, 75, 95))
    assert c.loc[t60, t60] == 1 and c.loc[t75, t75] == 1 and c.loc[t95, t75] == 1
    assert np.allclose(c.sum(axis=1), 1)
