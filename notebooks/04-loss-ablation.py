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
# # 4. Loss ablation: cross-entropy L against the refined loss Lr
#
# **Question:** what does the expected-distance term of the refined loss Lr buy over plain
# cross-entropy L: a lower MSE, at what cost in accuracy?
#
# **Paper:** Section 3.2 (Eqs. 1 and 5, and the numbers of its last paragraph).
#
# With plain cross-entropy (Eq. 1) a wrong class costs the same whether it is one step or twenty
# steps from the true value. The refined loss Lr (Eq. 5) mixes the cross-entropy (weight
# c = 0.8) with the expected distance between the softmax of each coefficient and its true
# value, so that mistakes land near the truth. The paper trained both on QF2 = 90 with QF1 in
# {60, 65, ..., 95, 98} for 100 epochs and reports AvgAcc 0.8511 / AvgMSE 1.990 with L and
# 0.8516 / 0.9221 with Lr: the same accuracy, half the MSE. Here both models share every other
# setting of the profile, and the constant prior is shown in both of its forms: the median of
# the training labels (the constant with the least mean *absolute* error, the distance Lr adds;
# the mean would have the least squared error, but it is not a valid step) and their mode (the
# constant with the most exact answers, what the cross-entropy L rewards). The two equations and
# the code that computes them are written out in notebook 2; terms: the
# [glossary](README.md#glossary). The second parameter cell of an executed copy is papermill's
# (notebook 1 explains).

# %% tags=["parameters"]
profile = "smoke"
seed = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown

from qpaper import figures, narrate
from qpaper import results as rs

models = {"class head, loss L": "qf2-90-class-L", "class head, loss Lr": "qf2-90-class-Lr",
          rs.method_of(rs.prior(90)): rs.prior(90), rs.method_of(rs.prior(90, "mode")): rs.prior(90, "mode")}
S = figures.setup(profile, seed, datasets=["qf2-90-test", "qf2-90-train"],
                  models=[m for m in models.values() if not rs.is_prior(m)])
Markdown(narrate.environment(profile, seed))

# %% [markdown]
# ## The two losses on two made-up predictions
#
# Before the tables, the losses themselves (`qpaper/losses.py`, the code that trains the
# models). One coefficient whose true step is 5, with 16 classes (q_max = 16 for coefficient 1);
# the head is a softmax over steps 1..16 (Figure 1). Both predictions put 0.4 on the true step
# and 0.6 on a wrong one: *near* puts it on 6, *far* on 15. The distance vector d_y of Figure 2
# is |j - 5| for step j.

# %%
from qpaper import losses

sizes = [16]
truth = np.array([[5]])
near, far = np.zeros((1, 16), "float32"), np.zeros((1, 16), "float32")
near[0, [4, 5]] = 0.4, 0.6  # steps 5 and 6 (class j holds step j + 1)
far[0, [4, 14]] = 0.4, 0.6  # steps 5 and 15
toy = []
for name, p in (("near", near), ("far", far)):
    ce, dist = (float(np.asarray(v)[0]) for v in losses.block_terms(truth, p, sizes))
    toy.append({"prediction": name, "argmax step": int(p.argmax()) + 1, "L (Eq. 1)": round(ce, 3),
                "expected distance f(x)^T d_y": round(dist, 3),
                f"Lr (Eq. 5, c = {losses.C})": round(losses.C * ce + (1 - losses.C) * dist, 3)})
print("d_y =", np.abs(np.arange(1, 17) - 5).tolist())
pd.DataFrame(toy)

# %%
Markdown(f"L gives both the same loss ({toy[0]['L (Eq. 1)']:.3f}): it only asks how much mass is on the right step. "
         f"Lr adds the expected distance, {toy[0]['expected distance f(x)^T d_y']:.1f} for *near* and "
         f"{toy[1]['expected distance f(x)^T d_y']:.1f} for *far*, so *far* costs "
         f"{toy[1][f'Lr (Eq. 5, c = {losses.C})'] / toy[0][f'Lr (Eq. 5, c = {losses.C})']:.1f} times as much: "
         "a network trained with Lr is pushed to keep its mistakes close to the truth, which is what the MSE "
         "measures. Both argmaxes (6 and 15) are wrong, so accuracy scores the two alike: 0.")

# %% [markdown]
# ## AvgAcc and AvgMSE, here and in the paper

# %%
tid = {label: S.evaluation(m, "qf2-90-test") for label, m in models.items()}
prov = S.provenance(models=list(models.values()), datasets=["qf2-90-test"])
rows = []
for label, t in tid.items():
    acc, mse = rs.averages(t)
    rows.append({"experiment": "loss ablation, QF2 90", "method": label, "AvgAcc": round(acc, 4),
                 "AvgMSE": round(mse, 4), "source": f"this repo, {profile} profile"})
ablation = pd.concat([pd.DataFrame(rows), rs.paper_rows("loss ablation, QF2 90")], ignore_index=True)
S.save_table(ablation, "loss-ablation", prov)
ablation

# %%
ours = {r["method"]: (r["AvgAcc"], r["AvgMSE"]) for r in rows}
(acc_l, mse_l), (acc_r, mse_r) = ours["class head, loss L"], ours["class head, loss Lr"]
preds = {label: rs.predictions(profile, m, "qf2-90-test", seed) for label, m in models.items()}
lab_l, lab_r = "class head, loss L", "class head, loss Lr"
p_acc = narrate.paired(preds, lab_r, lab_l, seed=seed)
p_mse = narrate.paired(preds, lab_r, lab_l, metric="mse", seed=seed)
pq = rs.per_qf1(tid[lab_l]).merge(rs.per_qf1(tid[lab_r]), on="qf1", suffixes=(" L", " Lr")).set_index("qf1")
gap = (pq["AvgAcc L"] - pq["AvgAcc Lr"]).sort_values()
names_q = np.array([str(q) for q in preds[lab_l]["qf1_names"]], dtype=object)[preds[lab_l]["meta"]["qf1"]]
by_q = {q: narrate.paired({m: narrate.subset(preds[m], names_q == q) for m in (lab_r, lab_l)}, lab_r, lab_l, seed=seed)
        for q in (gap.index[-1], gap.index[0])}
(pacc_l, pmse_l, _), (pacc_r, pmse_r, _) = (rs.PAPER["loss ablation, QF2 90", m] for m in (lab_l, lab_r))
Markdown(f"Paired over the {p_acc['images']} test images, Lr is, in AvgMSE ({mse_r:.3f} against {mse_l:.3f} with L, "
         f"a ratio of {mse_r / mse_l:.2f}; the paper: {pmse_r / pmse_l:.2f}), " + narrate.said(p_mse, "L")
         + f"; in AvgAcc ({acc_r:.3f} against {acc_l:.3f}; the paper: {pacc_r - pacc_l:+.4f}), "
         + narrate.said(p_acc, "L") + ". One training seed of each: a second seed would add its own spread. "
         f"The point estimates differ most at QF1 {gap.index[-1]} (L {pq.loc[gap.index[-1], 'AvgAcc L']:.3f}, Lr "
         f"{pq.loc[gap.index[-1], 'AvgAcc Lr']:.3f}: Lr is " + narrate.said(by_q[gap.index[-1]], "L")
         + f") and QF1 {gap.index[0]} (L {pq.loc[gap.index[0], 'AvgAcc L']:.3f}, Lr {pq.loc[gap.index[0], 'AvgAcc Lr']:.3f}: "
         "Lr is " + narrate.said(by_q[gap.index[0]], "L") + "). The paper's reading (the expected-distance term pulls "
         "an answer between two values the network cannot tell apart) is about single predictions: the softmaxes "
         "below look at them.")

# %% [markdown]
# ## The two softmaxes on the same patches
#
# What the averages cannot show, the softmaxes can. Three test patches of coefficient 6, seeded,
# chosen among the patches where the two models *disagree* on that coefficient (on most patches
# both are right and their softmaxes look alike), one for each of three QF1 values (their titles
# say where each QF1 stands against QF2 90): the L model's and the Lr model's probabilities per
# step, the true step dotted. Then, over 1,000 test patches and all 15 coefficients, the expected
# distance f(x)^T d_y of each model's softmaxes (Eq. 5's second term): the quantity Lr trains down.

# %%
from qpaper import paths
from qpaper.model import load_model

test_dir = paths.dataset_dir(profile, "qf2-90-test", seed)
nets = {label: load_model(paths.model_path(profile, m)) for label, m in list(models.items())[:2]}
pred = rs.predictions(profile, models["class head, loss Lr"], "qf2-90-test", seed)
names = np.array([str(q) for q in pred["qf1_names"]], dtype=object)[pred["meta"]["qf1"]]  # "60", "65", ...
rng = np.random.default_rng(seed)
k = 6
p_l = rs.predictions(profile, models["class head, loss L"], "qf2-90-test", seed)
differ = p_l["q_hat"][:, k - 1] != pred["q_hat"][:, k - 1]
want = [q for q in ("70", "90", "95") if q in set(names)] or list(dict.fromkeys(names))[:3]
pick, shown = [], []
for q in want:
    pool = np.flatnonzero((names == q) & differ)
    pool = pool if len(pool) else np.flatnonzero(names == q)  # no disagreement at that QF1: any patch
    pick.append(int(rng.choice(pool)))
    shown.append(bool(differ[pick[-1]]))
x = figures.patches_of(test_dir, pick)
truth = pred["q_true"][pick, k - 1]
soft = {label: figures.block_softmax(net, x, k) for label, net in nets.items()}
fig = figures.softmax_figure(soft, truth, k, [
    f"QF1 {q} ({'below' if int(q) < 90 else 'equal to' if int(q) == 90 else 'above'} QF2 90), true step {t}"
    + ("" if d else "; models agree") for q, t, d in zip(want, truth, shown)])
S.save_figure(fig, "04-softmax-L-vs-Lr", S.provenance(models=list(models.values())[:2], datasets=["qf2-90-test"],
                                                      patches=pick, coefficient=k))
plt.show()

# %%
from qpaper.jpeg import NC, blocks, q_max

sample = np.sort(rng.choice(len(names), min(1000, len(names)), replace=False))
xs = figures.patches_of(test_dir, sample)
per_patch = {}
for label, net in nets.items():
    out = np.asarray(net.predict(xs.astype("float32"), verbose=0))
    per_patch[label] = np.mean([figures.expected_distance(out[:, a:b], pred["q_true"][sample, i])
                                for i, (a, b) in enumerate(blocks(q_max(NC)))], axis=0)  # mean over the 15
ed = narrate.paired_by_group(per_patch[lab_r], per_patch[lab_l], pred["meta"]["image"][sample], seed=seed,
                             better="lower")
Markdown(f"Over {len(sample)} test patches and the {NC} coefficients, the expected distance of the softmax from the "
         f"true step is {ed['b']:.3f} steps for {lab_l} and {ed['a']:.3f} for {lab_r}; paired over the {ed['groups']} "
         "test images, Lr is " + narrate.said(ed, "L", fmt="+.3f").replace("ahead of", "closer to the truth than")
         .replace("behind", "farther from the truth than")
         + ". This is the quantity Eq. 5 adds to the loss; the MSE per "
         "coefficient, below, is the same question asked of the argmax alone.")

# %% [markdown]
# ## Per coefficient
#
# Accuracy and MSE of each coefficient (constant priors grey: median dashed, mode dotted; MSE on a
# log scale): the MSE gap shows where the expected-distance term pulls wrong answers toward the
# truth.

# %%
curves = {label: rs.per_coefficient(t) for label, t in tid.items()}
fig = figures.per_coefficient(curves, f"Loss ablation, QF2 90 ({profile})")
S.save_figure(fig, "loss-ablation", prov)
plt.show()

# %%
lower = int((curves["class head, loss Lr"]["mse"] < curves["class head, loss L"]["mse"]).sum())
Markdown(f"Lr has the lower MSE on {lower} of {len(curves['class head, loss Lr'])} coefficients. "
         + figures.curves_text(curves, main="class head, loss Lr"))

# %% [markdown]
# ## Per QF1
#
# Where the accuracy goes: AvgAcc and AvgMSE of each QF1.

# %%
per_qf1 = rs.compare_per_qf1(tid)
per_qf1

# %%
Markdown(figures.table_text(per_qf1, main=lab_r, paired={m: narrate.paired(preds, lab_r, m, seed=seed)
                                                         for m in preds if m != lab_r}))

# %% [markdown]
# ## Takeaways
#
# - L scores a near miss and a far miss alike; L^r adds the expected distance of the softmax
#   from the true step, and the toy example shows by how much it separates them.
# - Whether L^r lowers the MSE and what it costs in accuracy is read from paired intervals over
#   the test images, one training seed each; per-QF1 swaps are checked the same way.
# - The softmaxes of the patches where the two models disagree, and the expected distance over
#   all 15 coefficients, are where Eq. 5's second term can be seen at work.
#
# ## Exercises
#
# 1. In the toy example, set c to 0.5 and to 0.95 (replace `losses.C`). How does the ratio of
#    the two Lr values change, and what would you expect that to do to the MSE of a trained model?
#
# <details><summary>Answer</summary>
#
# Lr = c L + (1 - c) d. Both predictions have L = -log 0.4 = 0.916; *near* has d = 0.6 and *far*
# d = 6.0. At c = 0.5: 0.758 against 3.458, a ratio of 4.6; at c = 0.95: 0.900 against 1.170,
# 1.3. A smaller c weighs the distance more, so training pushes mistakes closer to the truth
# (lower MSE), at the risk of spreading mass over neighbouring steps instead of committing to the
# right one (accuracy).
# </details>
#
# 2. Put the *far* prediction's 0.6 on step 16 instead of 15. Which of L and Lr changes?
#
# <details><summary>Answer</summary>
#
# L does not change (still 0.4 on the true step). The expected distance grows from 0.6 x 10 =
# 6.0 to 0.6 x 11 = 6.6, so Lr grows by (1 - c) x 0.6 = 0.12.
# </details>
#
# 3. The authors' code squares the distance (`qpaper train --distance squared`). Write d_y for
#    the toy example with that choice and recompute Lr by hand for *near* and *far*.
#
# <details><summary>Answer</summary>
#
# d_y = (j - 5)^2: 16, 9, 4, 1, 0, 1, 4, ... , 121. *near*: 0.6 x 1 = 0.6, Lr = 0.8 x 0.916 +
# 0.2 x 0.6 = 0.853; *far*: 0.6 x 100 = 60, Lr = 0.733 + 12.0 = 12.73: a far miss now costs 15
# times a near one, against 2.3 with the absolute distance.
# </details>
