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
# **Question:** does the classification-like estimator estimate Q1 better than the regression
# CNN [10] and the model-based methods [5] and [7], on aligned and non-aligned double JPEG, and
# for which QF1?
#
# **Paper:** Section 5.1 (Tables 1-4, Figures 3-7).
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
#
# In the per-coefficient figures every method has its own colour, marker and line style and is
# drawn a little to the side of its coefficient, so that no curve hides another; the MSE axis
# is logarithmic, so that methods at MSE 1 and 2 stay apart when a model-based method reaches 80.
#
# Every comparison below is paired: each method's AvgAcc minus the proposed estimator's, on the
# same bootstrap draws of the test *images* (`qpaper.narrate.paired`), and a method is called
# ahead or behind only when that difference's 95% interval excludes 0; otherwise "about the
# same". Terms: the [glossary](README.md#glossary). The second parameter cell of an executed copy
# is papermill's (notebook 1 explains).

# %% tags=["parameters"]
profile = "smoke"
seed = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from qpaper import figures, jpeg, narrate, paths
from qpaper import results as rs

names = [f"qf2-{q}-{s}" for q in (90, 80) for s in ("test", "test-aligned")]
S = figures.setup(profile, seed, datasets=names,
                  models=[f"qf2-{q}-{m}" for q in (90, 80) for m in figures.CLASS_MODELS])
Markdown(narrate.environment(profile, seed))

# %% [markdown]
# ## QF2 = 90
#
# One call evaluates every method on the random-shift and the aligned test sets of QF2 90 (the
# evaluations are cached), and writes Tables 1 and 2 and Figures 3 and 4
# (`figures.qf2_comparison`; the QF2 80 section below makes the same call).
#
# **Table 1**: random grid shift (aligned 1/64), per QF1 and over all QF1 values. (The first call
# evaluates every method on every patch; the answers are cached in `data/processed/evaluations`.)

# %%
q90 = figures.qf2_comparison(S, 90)
q90["random"]["table"]

# %%
r90 = q90["random"]
grid5 = [m for m in r90["preds"] if m.startswith("[5]")]
prior90 = rs.method_of(rs.prior(90))
Markdown(figures.table_text(r90["table"], paired=r90["paired"]) + " This is the case the paper is about: the grid "
         "of the first compression is unknown. Of the model-based methods only [5] runs here, with its own grid search"
         + "".join(f"; paired with the constant prior, {m} is "
                   + narrate.said(narrate.paired(r90["preds"], m, prior90, seed=seed), prior90) for m in grid5) + ".")

# %% [markdown]
# **Table 2**: aligned double compression.

# %%
q90["aligned"]["table"]

# %%
t2 = q90["aligned"]["table"].set_index("qf1")
mb = [m for m in ("[7]", "[5]") if f"{m} AvgAcc" in t2.columns]
lowest = t2.drop(index="all")["proposed AvgAcc"].astype(float).idxmin() == "90" if "90" in t2.index else False
same = (f" At QF1 = QF2 = 90 the proposed estimator gets {t2.loc['90', 'proposed AvgAcc']:.3f}"
        + (", its lowest row," if lowest else ",") + " while "
        + ", ".join(f"{m} gets {t2.loc['90', f'{m} AvgAcc']:.3f}" for m in mb)
        + ": both compressions used the same table, so there is no comb, and the right answer is Q2's own steps. "
        "The model-based methods are given Q2 and answer its step when no other comb fits better (`qpaper/baselines/"
        "galvan.py` says so), which is right here by construction; the CNN is not given Q2 and answers a table of "
        "its own (the confusion matrix below shows which)."
        if "90" in t2.index else "")
Markdown(figures.table_text(q90["aligned"]["table"], paired=q90["aligned"]["paired"]) + same)

# %% [markdown]
# **Figures 3 and 4**: each coefficient, non-aligned patches (the misaligned ones of the random
# test set) and aligned patches.

# %%
display(q90["random"]["figure"])

# %%
Markdown(figures.curves_text(q90["random"]["curves"]) + " These are the misaligned patches only: the model-based "
         "methods that need the grid are absent, [5] searches for it.")

# %%
display(q90["aligned"]["figure"])

# %%
Markdown(figures.curves_text(q90["aligned"]["curves"]) + " On the aligned grid the model-based methods [7] and "
         "[5] see the comb directly; compare their curves here with their absence from Figure 3.")

# %% [markdown]
# **Figure 5**: aligned, QF1 < QF2 (left) and QF1 >= QF2 (right).

# %%
a90 = q90["aligned"]["tidies"]
fig, axes = plt.subplots(2, 2, figsize=(13, 6.2), sharex=True)
for col, (sel, label) in enumerate((("<", "QF1 < QF2"), (">=", "QF1 >= QF2"))):
    figures.per_coefficient({m: rs.per_coefficient(t, True, sel) for m, t in a90.items()},
                            f"Figure 5: QF2 90, aligned, {label} ({profile})", axes=axes[:, col], legend=col == 1)
S.save_figure(fig, "figure5-qf2-90-aligned-qf1-vs-qf2",
              S.provenance(models=figures.comparison_models(90, True), datasets=["qf2-90-test-aligned"],
                           variant=figures.VARIANT))
plt.show()
split = [{"subset": label, "method": m, **dict(zip(("AvgAcc", "AvgMSE"), rs.averages(t, True, sel)))}
         for sel, label in (("<", "QF1 < QF2"), (">=", "QF1 >= QF2")) for m, t in a90.items()]
split = rs.pd.DataFrame(split).round(4)
S.save_table(split, "figure5-qf2-90-aligned-qf1-vs-qf2",
             S.provenance(models=figures.comparison_models(90, True), datasets=["qf2-90-test-aligned"],
                          variant=figures.VARIANT))
split

# %%
acc = split.set_index(["subset", "method"])["AvgAcc"]
low, high = acc["QF1 < QF2"], acc["QF1 >= QF2"]
others = [m for m in low.index if m != "proposed" and not m.startswith("constant prior")]
drop = {m: low[m] - high[m] for m in low.index if not m.startswith("constant prior")}
lost = [m for m, v in drop.items() if v > 0]
qf1_high = sorted({int(q) for q in a90["proposed"]["qf1"].unique() if int(q) >= 90})
oracle = figures.best_constant(qf1_high)
pa = q90["aligned"]["preds"]
names_a = np.array(pa["proposed"]["qf1_names"], dtype=object)
hi_mask = np.array([str(n).isdigit() and int(n) >= 90 for n in names_a[pa["proposed"]["meta"]["qf1"]]])
hi = {m: narrate.subset(pa[m], hi_mask) for m in ["proposed"] + others}
hi["best constant"] = narrate.constant_answer(hi["proposed"], oracle["q1"])
vs = {m: narrate.paired(hi, "proposed", m, seed=seed) for m in others + ["best constant"]}
Markdown(f"With QF1 < QF2 the proposed estimator gets AvgAcc {low['proposed']:.3f} ("
         + ", ".join(f"{m} {low[m]:.3f}" for m in others) + f"); with QF1 >= QF2 it gets {high['proposed']:.3f} ("
         + ", ".join(f"{m} {high[m]:.3f}" for m in others) + f"). {len(lost)} of {len(drop)} methods have a lower "
         f"point estimate when the first compression is the finer one (the proposed estimator's change from left to "
         f"right: {-drop['proposed']:+.3f}): a small q1 followed by a larger q2 leaves values that a single compression "
         "at q2 would also give. On the QF1 >= QF2 patches, paired over the test images, the proposed estimator is "
         + "; ".join(narrate.said(vs[m], m) for m in others)
         + " (the paper: it clearly outperforms [5] and [7] when QF1 >= QF2). A ceiling, not a rival: the best single "
         f"table for those QF1 values ({', '.join(map(str, qf1_high))}), chosen *knowing* the test labels (no "
         f"method could), answers the steps {' '.join(map(str, oracle['q1']))} (nearest QF "
         f"{int(rs.nearest_qf(oracle['q1'][None])[0])}) and scores {oracle['AvgAcc']:.3f}; the proposed estimator is "
         + narrate.said(vs["best constant"], "that ceiling")
         + ": on these patches it reads about as much as knowing which QF1 values occur, and no more.")

# %% [markdown]
# ### What the averages hide: every patch's answer
#
# AvgAcc averages 15 coefficients and many patches. Below, each patch's 15 estimates are turned
# into the standard QF they are nearest to, and counted against the true QF1 (each row sums to
# 1; the outlined cells are right). The *nearest QF* of an estimate is the standard IJG
# quality whose first 15 zig-zag steps are closest to it on average (mean |difference|); ties go
# to the higher QF. QF 97, 98, 99 and 100 share their first 15 steps (all 1), so every one of
# them comes out as 100: an answer of 100 for QF1 98 is right and is outlined. A network that
# reads the comb puts its mass on the outlined
# diagonal; one that has learned the training tables as a vocabulary answers one of them, and
# where it sees no trace it answers the same table whatever the truth. The backbone of these
# `mini` models is the fixed block-DCT front end (notebook 2), not the paper's pixel DenseNet.

# %%
pred90 = {m: rs.predictions(profile, model, "qf2-90-test-aligned", seed)
          for m, model in (("proposed", "qf2-90-class-Lr"), ("[10]", "qf2-90-regression"))}
conf = rs.qf1_confusion(pred90["proposed"])
fig = figures.confusion_figure(conf, f"QF2 90, aligned: the proposed estimator's answers as QFs ({profile})")
S.save_figure(fig, "confusion-qf2-90-aligned-proposed",
              S.provenance(models=["qf2-90-class-Lr"], datasets=["qf2-90-test-aligned"], variant=figures.VARIANT))
plt.show()

# %%
diag = {str(q): float(sum(conf.loc[q, c] for c in conf.columns if figures.same_table(q, c))) for q in conf.index}
top = conf.idxmax(axis=1)
low_q = [q for q in conf.index if str(q).isdigit() and int(q) < 90]
high_q = [q for q in conf.index if str(q).isdigit() and int(q) >= 90]
default = top[high_q].mode().iloc[0] if high_q else None
Markdown(f"For QF1 below 90 the nearest QF of the estimate is the true one for "
         f"{sum(diag[str(q)] for q in low_q) / max(1, len(low_q)):.0%} of the patches on average "
         f"(from {min(diag[str(q)] for q in low_q):.0%} at QF1 {min(low_q, key=lambda q: diag[str(q)])} to "
         f"{max(diag[str(q)] for q in low_q):.0%} at QF1 {max(low_q, key=lambda q: diag[str(q)])}). "
         + (f"For QF1 {', '.join(map(str, high_q))} it is right for "
            + ", ".join(f"{diag[str(q)]:.0%}" for q in high_q) + " (a tie counted right). " if high_q else "")
         + (f"For QF1 >= 90 ({', '.join(map(str, high_q))}) the most common answer is QF {default} in "
            f"{int((top[high_q] == default).sum())} of {len(high_q)} rows: "
            + ("one answer whatever the truth, the default of a network that sees no trace there."
               if (top[high_q] == default).all() and len(high_q) > 1 else "the answers differ by row.")
            if high_q else ""))

# %% [markdown]
# The same, one coefficient at a time: the step q1 of coefficient 6 (zig-zag, from 1), true
# against estimated. Each true QF1 gives one true step here, so a row mixes the QF1 values that
# share it.

# %%
c6 = rs.coefficient_confusion(pred90["proposed"], 6)
fig = figures.confusion_figure(c6, f"QF2 90, aligned: coefficient 6, true vs estimated step ({profile})",
                               label="share of the patches with that true step",
                               same=lambda r, c: int(r) == int(c))
S.save_figure(fig, "confusion-qf2-90-aligned-coefficient-6",
              S.provenance(models=["qf2-90-class-Lr"], datasets=["qf2-90-test-aligned"], coefficient=6))
plt.show()

# %%
right6 = {int(t): float(c6.loc[t, t]) if t in c6.columns else 0.0 for t in c6.index}
qf1s = [int(q) for q in pred90["proposed"]["qf1_names"] if str(q).isdigit()]
step_of = {t: [q for q in qf1s if int(jpeg.zigzag(jpeg.standard_table(q))[5]) == t] for t in right6}
Markdown("Coefficient 6 is right for " + "; ".join(
    f"{v:.0%} of the patches whose step is {t} (QF1 {', '.join(map(str, step_of[t]))})" for t, v in right6.items()) + ".")

# %% [markdown]
# The six aligned test patches the proposed estimator gets most wrong (the largest squared error
# summed over the 15 coefficients), with their true QF1 and the QF nearest to its answer:

# %%
p = pred90["proposed"]
err = ((p["q_hat"] - p["q_true"]) ** 2).sum(1)
worst = np.argsort(-err, kind="stable")[:6]
xw = figures.patches_of(paths.dataset_dir(profile, "qf2-90-test-aligned", seed), worst)
answered = rs.nearest_qf(p["q_hat"][worst])
fig, axes = plt.subplots(1, 6, figsize=(13, 2.6))
for ax, img, i, q in zip(axes, xw, worst, answered):
    ax.imshow(img[..., :3] if img.shape[-1] >= 3 else img[..., 0], cmap=None if img.shape[-1] >= 3 else "gray")
    ax.set_title(f"QF1 {p['qf1_names'][p['meta']['qf1'][i]]}, answered ~{q}\nsquared error {err[i]}", fontsize=8)
    ax.axis("off")
S.save_figure(fig, "worst-patches-qf2-90-aligned", S.provenance(models=["qf2-90-class-Lr"],
                                                                 datasets=["qf2-90-test-aligned"]))
plt.show()

# %%
texture = np.array([float(np.std(v)) for v in xw])  # the worst patches, read once above
rest = np.random.default_rng(seed).choice(len(err), min(200, len(err)), replace=False)
typical = float(np.median([np.std(v) for v in figures.patches_of(paths.dataset_dir(profile, "qf2-90-test-aligned",
                                                                                       seed), rest)]))
Markdown(f"Their pixel standard deviation is {', '.join(f'{t:.1f}' for t in texture)} grey levels, against a median of "
         f"{typical:.1f} over 200 random test patches"
         + (": the worst answers come from flat patches, where no comb can form." if np.median(texture) < 0.5 * typical
            else ": they are not simply the flattest patches."))

# %% [markdown]
# How sure are these numbers? The test set has few images (the sentence under the table says
# how many), and the patches of one image share its content, so the interval below resamples *images* (1,000 bootstrap draws, seeded)
# and recomputes AvgAcc as the tables do. The last three columns give each method's difference
# from the proposed estimator on the same draws: when that interval holds 0, this test set does
# not tell the two apart.

# %%
ci = pd.concat([rs.bootstrap({m: rs.predictions(profile, model, ds, seed) for m, model in
                              (("proposed", "qf2-90-class-Lr"), ("[10]", "qf2-90-regression"),
                               (rs.method_of(rs.prior(90)), rs.prior(90)))}, seed=seed).assign(test=ds)
                for ds in ("qf2-90-test", "qf2-90-test-aligned")])
S.save_table(ci, "bootstrap-qf2-90", S.provenance(
    models=["qf2-90-class-Lr", "qf2-90-regression", rs.prior(90)], datasets=["qf2-90-test", "qf2-90-test-aligned"],
    bootstrap="1000 draws of the test images, seeded"))
ci

# %%
said = []
for ds, g in ci.groupby("test", sort=False):
    r = g.set_index("method").loc["[10]"]
    inside = r["diff low"] <= 0 <= r["diff high"]
    said.append(f"on {ds} the proposed estimator minus [10] is {-r['minus proposed']:+.3f} "
                f"(95% interval {-r['diff high']:+.3f} to {-r['diff low']:+.3f} over {int(r['images'])} images): "
                + ("inside the noise of this test set" if inside else "a difference this test set resolves"))
Markdown("; ".join(said).capitalize() + ". One seed of training: a second training seed would add its own spread, "
         f"and {int(ci['images'].iloc[0])} test images is few: an interval over so few images is itself rough.")

# %% [markdown]
# ## QF2 = 80
#
# A lower QF2 quantizes more coarsely the second time and erases more of the first
# compression (Tables 3, 4; Figures 6, 7), the same call as for QF2 90.
#
# **Table 3**: random grid shift.

# %%
q80 = figures.qf2_comparison(S, 80)
q80["random"]["table"]

# %%
own = {q: rs.bootstrap({"proposed": qq["random"]["preds"]["proposed"]}, seed=seed).iloc[0]
       for q, qq in ((90, q90), (80, q80))}
Markdown(figures.table_text(q80["random"]["table"], paired=q80["random"]["paired"]) + " The proposed estimator "
         "gets " + narrate.unpaired(own[80], own[90], "at QF2 80", f"at QF2 90 (Table {narrate.paper_table(90, 'random')})")
         + " (different patches, so each has its own interval).")

# %% [markdown]
# **Table 4**: aligned double compression.

# %%
q80["aligned"]["table"]

# %%
Markdown(figures.table_text(q80["aligned"]["table"], paired=q80["aligned"]["paired"]))

# %% [markdown]
# **Figures 6 and 7**: each coefficient, non-aligned and aligned patches, QF2 80.

# %%
display(q80["random"]["figure"])

# %%
Markdown(figures.curves_text(q80["random"]["curves"]))

# %%
display(q80["aligned"]["figure"])

# %%
Markdown(figures.curves_text(q80["aligned"]["curves"]))

# %% [markdown]
# ## Summary
#
# AvgAcc and AvgMSE over all QF1 values, one row per table; `make reproduce` copies this table
# into the README.

# %%
rows = []
for qf2, part, what in ((90, "random", "random shift (aligned 1/64)"), (90, "aligned", "aligned"),
                        (80, "random", "random shift (aligned 1/64)"), (80, "aligned", "aligned")):
    table_no, tid = narrate.paper_table(qf2, part), {90: q90, 80: q80}[qf2][part]["tidies"]
    for m, t in tid.items():
        acc, mse = rs.averages(t)
        rows.append({"table": table_no, "qf2": qf2, "test": what, "method": m, "AvgAcc": round(acc, 4),
                     "AvgMSE": round(mse, 4)})
summary = pd.DataFrame(rows)
S.save_table(summary, "tables1-4-summary", S.provenance(
    models=[f"qf2-{q}-{m}" for q in (90, 80) for m in figures.CLASS_MODELS]
    + list(rs.BASELINES + rs.GRID_BASELINES) + [rs.prior(90), rs.prior(80)], datasets=names))
summary

# %%
mse_said = []
for qf2, part in ((90, "random"), (90, "aligned"), (80, "random"), (80, "aligned")):
    p = narrate.paired({90: q90, 80: q80}[qf2][part]["preds"], "proposed", "[10]", metric="mse", seed=seed)
    mse_said.append(f"Table {narrate.paper_table(qf2, part)}: AvgMSE {p['a']:.3f} against {p['b']:.3f}, "
                    + narrate.compare(p["diff"], p["low"], p["high"], "[10]", "lower"))
acc_said = [f"Table {narrate.paper_table(qf2, part)}: "
            + narrate.said({90: q90, 80: q80}[qf2][part]["paired"]["[10]"], "[10]")
            for qf2, part in ((90, "random"), (90, "aligned"), (80, "random"), (80, "aligned"))]
Markdown("In AvgAcc, paired over the test images, the proposed estimator is " + "; ".join(acc_said)
         + ". In AvgMSE (lower is better, so *ahead* means a lower MSE), it is " + "; ".join(mse_said)
         + ". The paper has the proposed estimator the more accurate in all four tables and [10] the lower in MSE "
         "only in the aligned QF2 80 case (Table 4): the regression head is trained on the MSE itself.")

# %% [markdown]
# ## Takeaways
#
# - Every comparison is paired over the test images: ahead or behind only where the 95%
#   interval of the difference excludes 0, "about the same" otherwise.
# - When QF1 >= QF2 the second compression erases q1: judge a method there against the best
#   constant chosen knowing the QF1 values (the Figure 5 sentence), and read the confusion
#   matrix to see whether its answers depend on the truth at all.
# - Model-based methods are given Q2 and default to its steps, which is right when QF1 = QF2:
#   a row where they win is not always a row where they read more.
# - Nine test images make wide intervals; one training seed hides the model's own spread.
#
# ## Exercises
#
# 1. In the confusion matrix, which QF does the network answer for QF1 95 and 98? Compute
#    `figures.best_constant([95, 98])` and compare its AvgAcc with the proposed estimator's on
#    those two rows of Table 2: has the network read anything there?
#
# <details><summary>Answer</summary>
#
# The row maxima of the confusion matrix give the answer (the sentence under it names the most
# common one). `best_constant([95, 98])` picks, per coefficient, the step the QF 95 and QF 98
# tables share most; its AvgAcc is what always answering that table scores on those two rows.
# If the network's AvgAcc on rows 95 and 98 of Table 2 is about that value, it has read no more
# than which QF1 values the test set holds; to say "more" or "less", pair the two on the same
# patches with `narrate.paired` and `narrate.constant_answer`, as the Figure 5 cell does.
# </details>
#
# 2. Rerun the bootstrap cell with `aligned=False` passed to `rs.bootstrap` (non-aligned patches
#    only). Does the difference between the two CNNs stay outside the noise?
#
# <details><summary>Answer</summary>
#
# The random-shift set is almost all non-aligned, so its interval barely moves; the aligned set
# has no non-aligned patch at all, so only its first row is a question: the difference on
# aligned patches is already the second row. A difference stays "outside the
# noise" when its interval (`diff low` to `diff high`) excludes 0.
# </details>
#
# 3. The model-based method [7] needs the aligned grid. Using Tables 1 and 2, say in one sentence
#    what a forensic analyst loses by using it on a photo whose crop is unknown.
#
# <details><summary>Answer</summary>
#
# Table 1 has no [7] column: without the grid, [7] reads the wrong blocks and has nothing to
# give (only [5], which first searches the grid, runs there, near the constant prior), while in
# Table 2 it is given the grid. So on a cropped photo the analyst loses [7]'s Table 2 accuracy
# altogether unless a grid search finds the first grid first, which `qpaper estimate --method
# galvan` does on whole files (on one 64x64 patch the search has too few blocks).
# </details>
