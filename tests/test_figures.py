"""The notebooks' figures and the sentences under them (issue 14): no curve hidden under another,
a scale and the true region on every Q1 map, prose that follows the numbers."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from qpaper import figures  # noqa: E402


def curve(acc, mse):
    return pd.DataFrame({"coefficient": np.arange(1, 16), "accuracy": acc, "mse": mse})


def test_identical_curves_stay_apart_and_the_prior_is_grey():
    same = curve(np.full(15, 0.8), np.full(15, 1.0))
    fig = figures.per_coefficient({"proposed": same, "[10]": same, "constant prior (median)": curve(0.1, 9.0)})
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label() in ("proposed", "[10]")]
    assert len(lines) == 2 and not np.allclose(lines[0].get_xdata(), lines[1].get_xdata())
    assert lines[0].get_marker() != lines[1].get_marker()
    prior = next(ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("constant prior"))
    assert prior.get_color() == "0.4"
    plt.close(fig)


def test_a_q1_map_has_a_colour_bar_and_the_donor_outline_and_says_when_it_is_constant():
    mask = np.zeros((128, 128), np.int8)
    mask[40:90, 50:100] = 1
    qm = np.full((9, 9, 15), 3, np.int16)
    qm[2:5, 3:7, 0] = 7
    fig, ax = plt.subplots()
    got = figures.q1_map(ax, qm, mask, 1, stride=8)
    assert got["min"] == 3 and got["max"] == 7 and not got["constant"]
    assert len(fig.axes) == 2 and "coefficient 1" in fig.axes[1].get_ylabel()  # the colour bar
    assert ax.collections, "no outline of the true region"
    fig2, ax2 = plt.subplots()
    flat = figures.q1_map(ax2, qm, mask, 2, stride=8)
    assert flat["constant"] and "constant 3" in fig2.axes[1].get_ylabel()
    assert any("constant map" in t.get_text() for t in ax2.texts)
    plt.close("all")


def test_the_sentences_follow_the_numbers():
    table = pd.DataFrame({"qf1": [60, 95, "all"], "proposed AvgAcc": [0.9, 0.5, 0.7], "proposed AvgMSE": [0.2, 2, 1.1],
                          "[10] AvgAcc": [0.6, 0.4, 0.5], "[10] AvgMSE": [0.5, 1.0, 0.75],
                          "constant prior (median) AvgAcc": [0.1, 0.1, 0.1],
                          "constant prior (median) AvgMSE": [9, 9, 9]})
    text = figures.table_text(table)
    assert "AvgAcc 0.700 against 0.500 for [10], 0.100 for constant prior (median)" in text
    # no interval given: the point estimates rank, nothing is claimed (issue 33)
    assert "the highest point estimate of the table" in text and "no ranking is claimed" in text
    assert "beats" not in text and "ahead" not in text
    assert "second lowest ([10] has 0.750)" in text and "lowest at QF1 95 (0.500)" in text
    table["[10] AvgAcc"] = [0.95, 0.9, 0.92]
    flipped = figures.table_text(table)
    assert "a point estimate below that of [10]" in flipped
    # with paired intervals: ahead only where the interval excludes 0, else about the same
    p = {"[10]": {"diff": -0.22, "low": -0.3, "high": -0.1, "better": "higher"},
         "constant prior (median)": {"diff": 0.6, "low": -0.01, "high": 0.9, "better": "higher"}}
    both = figures.table_text(table, paired=p)
    assert "behind [10] by -0.220 (95% interval -0.300 to -0.100)" in both
    assert "about the same as constant prior (median) (+0.600, 95% interval -0.010 to +0.900, which holds 0)" in both
    acc = np.linspace(0.9, 0.4, 15)
    text = figures.curves_text({"proposed": curve(acc, np.linspace(0.1, 3, 15)),
                                "[10]": curve(acc - 0.1, np.linspace(0.2, 2, 15)),
                                "constant prior (median)": curve(np.full(15, 0.5), np.full(15, 5.0))})
    assert "from 0.40 (coefficient 15) to 0.90 (coefficient 1)" in text
    assert "most accurate method on 15 of 15" in text
    assert "above the constant prior's accuracy on 12 of 15" in text


def test_versus_prior_and_the_best_constant_say_what_the_numbers_say():
    priors = {"constant prior (median)": 0.111, "constant prior (mode)": 0.12}
    assert figures.versus_prior(0.5, priors).startswith("it is 0.380 above the best constant prior (constant prior (mode)")
    assert "level with" in figures.versus_prior(0.125, priors) and "no better than a constant" in figures.versus_prior(0.125, priors)
    assert figures.versus_prior(0.077, priors).startswith("it is 0.043 below") and "worse than a constant" in figures.versus_prior(0.077, priors)
    # QF1 >= QF2 at QF2 90 (Figure 5's right panel): QF 90, 95, 98 tables; the best constant is
    # chosen knowing them and scores what always answering the most shared steps scores
    from qpaper import jpeg
    b = figures.best_constant([90, 95, 98])
    tables = np.array([jpeg.zigzag(jpeg.standard_table(q))[:15] for q in (90, 95, 98)])
    assert b["AvgAcc"] == (tables == b["q1"]).mean() and 1 / 3 <= b["AvgAcc"] <= 1
    for alt in tables:  # no single one of the tables does better
        assert (tables == alt).mean() <= b["AvgAcc"]
    assert figures.best_constant([70])["AvgAcc"] == 1.0 and figures.best_constant([70])["AvgMSE"] == 0.0


def test_the_comb_by_hand():
    """Section 2's comb without an image: q1 = 7 then q2 = 2 reaches bins 0, +-4, +-7 (7/2 = 3.5
    rounds to 4, 14/2 = 7); q1 = 6 over q2 = 3 the even bins; q1 <= q2 or q1 dividing q2 every bin."""
    from qpaper import explain
    r = explain.comb_by_hand(7, 2, 8)
    assert r["reached"] == [-7, -4, 0, 4, 7] and r["from"][4] == [7] and 1 in r["empty"]
    assert explain.comb_by_hand(6, 3, 8)["reached"] == list(range(-8, 9, 2))
    assert explain.comb_by_hand(3, 6, 8)["empty"] == [] and explain.comb_by_hand(2, 7, 8)["empty"] == []


def test_log_mse_axes_are_labelled_across_their_range():
    """Issue 24: an MSE axis from 0.15 to 40 (Figures 9-10) carried two labels (1 and 10); it
    now labels 2 and 5 of each decade too, so the reader can read values at both ends."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    v = np.array([0.15, 0.3, 1.2, 8, 40])
    ax.plot(np.arange(5), v)
    assert figures._mse_scale(ax, v) == "log"
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    shown = [t.get_text() for t in ax.yaxis.get_majorticklabels() + ax.yaxis.get_minorticklabels()
             if t.get_text() and lo <= t.get_position()[1] <= hi]
    assert len(shown) >= 5 and "0.2" in shown and "20" in shown, shown
    plt.close(fig)


def test_expected_distance_and_the_softmax_figure():
    """Eq. 5's second term for one coefficient, by hand: 0.4 on the true step 5 and 0.6 on 6 is
    0.6 steps; 0.6 on 15 is 6 steps. The figure draws one panel per patch."""
    import matplotlib.pyplot as plt
    p = np.zeros((2, 16))
    p[0, [4, 5]] = 0.4, 0.6
    p[1, [4, 14]] = 0.4, 0.6
    assert np.allclose(figures.expected_distance(p, [5, 5]), [0.6, 6.0])
    fig = figures.softmax_figure({"L": p, "Lr": p[::-1]}, [5, 5], 1)
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 32
    plt.close(fig)
