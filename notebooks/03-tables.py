# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Tables 1-4 and Figures 3-7: the proposed estimator against the regression CNN [10]
#
# Section 5.1 of the paper compares the classification-like estimator (loss Lr) with the
# regression CNN of [10], both trained on the same data, for QF2 = 90 and QF2 = 80:
#
# - Tables 1 and 3: the test patches are double-compressed with a random grid shift (aligned
#   with probability 1/64), as in training. AvgAcc is the share of exactly estimated
#   coefficients, AvgMSE the mean squared error, each averaged over the 15 coefficients and
#   the QF1 values.
# - Tables 2 and 4: aligned double compression only.
# - Figures 3, 4, 6, 7: accuracy and MSE of each coefficient, non-aligned and aligned.
# - Figure 5: aligned, QF1 < QF2 against QF1 >= QF2. When QF1 >= QF2 the first steps are
#   smaller than the second ones and the second quantization erases much of their trace.
#
# Every table has a row, and every figure a dashed line, for the **constant prior**: the
# per-coefficient median of the training labels, the best answer that ignores the image. A
# method that does not beat it has learned nothing.
#
# The random-shift tables add [5] with its own estimate of the grid shift (Bianchi and Piva's
# non-aligned model, the one model-based method here that works without an aligned grid). The
# aligned tables and figures add the two model-based estimators the paper compares with:
# [7] Galvan et al. (2014), which simulates the double quantization of calibrated DCT
# coefficients for every candidate q1 and keeps the histogram that fits best, and [5] Bianchi
# and Piva (2012), which fits a mixture of double- and single-quantization models by EM
# (`qpaper/baselines/`). Both read the luminance DCT histograms of the patch on the known
# (aligned) grid, with Q2 known from the file.

# %% tags=["parameters"]
profile = "smoke"
seed = 0

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown

from qpaper import experiments as ex
from qpaper import results as rs

started = rs.now()
names = [f"qf2-{q}-{s}" for q in (90, 80) for s in ("test", "test-aligned")]
ex.build_datasets(profile, seed, names=names)
ex.train_models(profile, seed, names=[f"qf2-{q}-{m}" for q in (90, 80) for m in ("class-Lr", "regression")])


def tidies(qf2, dataset, baselines=False):
    """Aligned sets: [7] and [5] on the known grid; random-shift sets: [5] with its grid estimated."""
    out = {rs.method_of(f"qf2-{qf2}-{m}"): rs.evaluation(profile, f"qf2-{qf2}-{m}", dataset)
           for m in ("class-Lr", "regression")}
    for b in rs.BASELINES if baselines else rs.GRID_BASELINES:
        out[rs.method_of(b)] = rs.evaluation(profile, b, dataset)
    out[rs.method_of(rs.prior(qf2))] = rs.evaluation(profile, rs.prior(qf2), dataset)
    return out


def prov(qf2, dataset, baselines=False):
    return rs.provenance(profile, seed, started, datasets=[dataset],
                         models=[f"qf2-{qf2}-class-Lr", f"qf2-{qf2}-regression",
                                 *(rs.BASELINES if baselines else rs.GRID_BASELINES), rs.prior(qf2)],
                         variant="rgb input (the paper); loss Lr with c=0.8, abs distance")


# %% [markdown]
# ## QF2 = 90
#
# **Table 1**: random grid shift (aligned 1/64), per QF1 and over all QF1 values.

# %%
t90 = tidies(90, "qf2-90-test")
table1 = rs.compare_per_qf1(t90)
rs.save_table(table1, profile, "table1-qf2-90", prov(90, "qf2-90-test"))
table1

# %%
Markdown(rs.describe(t90))

# %% [markdown]
# **Table 2**: aligned double compression.

# %%
a90 = tidies(90, "qf2-90-test-aligned", baselines=True)
table2 = rs.compare_per_qf1(a90)
rs.save_table(table2, profile, "table2-qf2-90-aligned", prov(90, "qf2-90-test-aligned", True))
table2

# %%
Markdown(rs.describe(a90))

# %% [markdown]
# **Figures 3 and 4**: each coefficient, non-aligned patches (the misaligned ones of the random
# test set) and aligned patches.

# %%
for fig_no, tid, aligned, what, ds in ((3, t90, False, "non-aligned", "qf2-90-test"),
                                       (4, a90, True, "aligned", "qf2-90-test-aligned")):
    fig = rs.plot_per_coefficient({m: rs.per_coefficient(t, aligned) for m, t in tid.items()},
                                  f"Figure {fig_no}: QF2 90, {what} ({profile})")
    rs.save_figure(fig, profile, f"figure{fig_no}-qf2-90-{what}", prov(90, ds, aligned))
    plt.show()

# %% [markdown]
# **Figure 5**: aligned, QF1 < QF2 (left) and QF1 >= QF2 (right).

# %%
fig, axes = plt.subplots(2, 2, figsize=(11, 6), sharex=True)
for col, (sel, label) in enumerate((("<", "QF1 < QF2"), (">=", "QF1 >= QF2"))):
    rs.plot_per_coefficient({m: rs.per_coefficient(t, True, sel) for m, t in a90.items()},
                            f"Figure 5: QF2 90, aligned, {label} ({profile})", axes=axes[:, col])
rs.save_figure(fig, profile, "figure5-qf2-90-aligned-qf1-vs-qf2", prov(90, "qf2-90-test-aligned", True))
split = [{"subset": label, "method": m, **dict(zip(("AvgAcc", "AvgMSE"), rs.averages(t, True, sel)))}
         for sel, label in (("<", "QF1 < QF2"), (">=", "QF1 >= QF2")) for m, t in a90.items()]
split = rs.pd.DataFrame(split).round(4)
rs.save_table(split, profile, "figure5-qf2-90-aligned-qf1-vs-qf2", prov(90, "qf2-90-test-aligned", True))
split

# %% [markdown]
# ## QF2 = 80
#
# A lower QF2 quantizes more coarsely the second time and erases more of the first
# compression: every method loses accuracy (Tables 3, 4; Figures 6, 7).

# %%
t80 = tidies(80, "qf2-80-test")
table3 = rs.compare_per_qf1(t80)
rs.save_table(table3, profile, "table3-qf2-80", prov(80, "qf2-80-test"))
table3

# %%
Markdown(rs.describe(t80))

# %%
a80 = tidies(80, "qf2-80-test-aligned", baselines=True)
table4 = rs.compare_per_qf1(a80)
rs.save_table(table4, profile, "table4-qf2-80-aligned", prov(80, "qf2-80-test-aligned", True))
table4

# %%
Markdown(rs.describe(a80))

# %%
for fig_no, tid, aligned, what, ds in ((6, t80, False, "non-aligned", "qf2-80-test"),
                                       (7, a80, True, "aligned", "qf2-80-test-aligned")):
    fig = rs.plot_per_coefficient({m: rs.per_coefficient(t, aligned) for m, t in tid.items()},
                                  f"Figure {fig_no}: QF2 80, {what} ({profile})")
    rs.save_figure(fig, profile, f"figure{fig_no}-qf2-80-{what}", prov(80, ds, aligned))
    plt.show()

# %% [markdown]
# ## Summary
#
# AvgAcc and AvgMSE over all QF1 values, one row per table; `make reproduce` copies this table
# into the README.

# %%
rows = []
for table_no, qf2, tid, what in ((1, 90, t90, "random shift (aligned 1/64)"), (2, 90, a90, "aligned"),
                                 (3, 80, t80, "random shift (aligned 1/64)"), (4, 80, a80, "aligned")):
    for m, t in tid.items():
        acc, mse = rs.averages(t)
        rows.append({"table": table_no, "qf2": qf2, "test": what, "method": m, "AvgAcc": round(acc, 4),
                     "AvgMSE": round(mse, 4)})
summary = rs.pd.DataFrame(rows)
rs.save_table(summary, profile, "tables1-4-summary", rs.provenance(
    profile, seed, started, models=[f"qf2-{q}-{m}" for q in (90, 80) for m in ("class-Lr", "regression")]
    + list(rs.BASELINES + rs.GRID_BASELINES) + [rs.prior(90), rs.prior(80)], datasets=names))
summary
