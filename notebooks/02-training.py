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
# # 2. Training one estimator
#
# **Question:** how is the estimator trained, and does it learn more than the best answer that
# ignores the image?
#
# **Paper:** Section 3 (the classification-like head and the loss Lr, Eqs. 1-5), Section 4.3
# (training).
#
# The estimator reads a 64x64 patch. Its **classification-like head** (Section 3.1) has one
# softmax per coefficient: coefficient *i* can take the values 1..q_max[i], and the estimate is
# the argmax. Trained with plain cross-entropy (loss L, Eq. 1) it treats a near miss like a far
# one; the refined loss Lr (Eq. 5, c = 0.8) adds the expected distance of the softmax from the
# true value, which lowers the MSE. The **regression head** of reference [10] outputs the 15
# values directly and is trained with the MSE.
#
# The profile fixes the backbone, the optimizer and the budget. `paper` is the paper's
# DenseNet-40 on pixels (Section 4.1), Adam 1e-5 for 100 epochs: a GPU's work. `mini` is what two
# CPU cores allow: a DenseNet there sees about 12 000 patches in 20 minutes and learns nothing
# but the constant answer, so `mini` hands the network the 8x8 block DCT of the luminance at all
# 64 grid phases and the comb strengths of its coefficients (`qpaper/dctfeatures.py`), which it
# reads many times faster (its speed on this machine is in the training log below;
# `results/benchmarks/arch.txt` compares the two for the same training time).
#
# This notebook shows the network layer by layer and the two losses as the code writes them,
# then trains one run (or reads the committed one) and draws its learning curves beside the
# **constant prior**: the best answer that ignores the image (the per-coefficient median of the
# training labels, or their mode). A curve that stays on that line has learned nothing. Terms:
# the [glossary](README.md#glossary).
#
# The next cell (tagged `parameters`) holds the defaults; `qpaper notebooks` adds a second
# parameter cell after it with the profile it runs (see notebook 1).

# %% tags=["parameters"]
profile = "smoke"
seed = 0
qf2 = 90
head = "class"  # class | regression
loss = "Lr"  # L | Lr (class head only)

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from qpaper import figures, jpeg, narrate, paths
from qpaper import results as rs
from qpaper.profiles import MODELS, get_profile

name = f"qf2-{qf2}-class-{loss}" if head == "class" else f"qf2-{qf2}-regression"
S = figures.setup(profile, seed, datasets=[MODELS[name][0], f"qf2-{qf2}-test"], models=[name])  # the test set: one patch drawn below
Markdown(narrate.environment(profile, seed))

# %% [markdown]
# `make reproduce` evaluates committed models; a missing one was trained by the set-up call above
# with `qpaper.train.train`, the function behind `qpaper train` (what `make reproduce TRAIN=1`
# runs for every model). The settings the run used (its `config.json`, less the options of other
# backbones, such as a DenseNet's depth, which this network does not read):

# %%
run = paths.models_dir(profile) / name
config = json.loads((run / "config.json").read_text())
print("run:", name)
narrate.used_settings(config)

# %% [markdown]
# ## The network, layer by layer
#
# Its layers as Keras builds them (`qpaper/model.py`, `qpaper/dctfeatures.py`): name, type,
# output shape (the first dimension, `None`, is the batch) and trainable parameters.

# %%
import qpaper

net = qpaper.load_model(run / "model.keras")
layers_table = narrate.layer_table(net)
layers_table

# %%
import keras

from qpaper import dctfeatures

arch = config.get("arch", "densenet")
if arch == "dct":
    nf = int(config.get("nf", jpeg.NC))
    cand = dctfeatures.candidates(nf)
    text = (
        f"Read from the top. **`histograms`** (`PhaseHistograms`, no weights) takes the 64x64 patch's luminance and, "
        f"for each of the 64 grid phases (dy, dx) in 0..7 x 0..7, the 7 x 7 whole 8x8 blocks that start there; it "
        f"computes their DCT and, for the first {nf} zig-zag coefficients, the histogram of the rounded values: the DC "
        f"as residues modulo {', '.join(map(str, dctfeatures.DC_MODULI))} ({sum(dctfeatures.DC_MODULI)} bins), each of "
        f"the {nf - 1} AC coefficients in {dctfeatures.NB} bins (-{dctfeatures.SPAN}..{dctfeatures.SPAN} and two "
        "overflow bins). "
        f"**`comb`** (`CombStrength`, no weights) turns each phase's histograms into {dctfeatures.n_features(nf)} "
        f"numbers: for every coefficient k and every candidate step q = 1..{' / '.join(map(str, cand[:4]))}... "
        f"({int(cand.sum())} pairs), the *comb strength*, the mean of cos(2 pi v / q) over the blocks (1 when every "
        "value v is a multiple of q, near 0 when the values ignore q); then the share of zero and of overflowing "
        f"values of each AC coefficient ({2 * (nf - 1)}) and one indicator that is 1 on phase 0, the grid of the last "
        f"compression: {int(cand.sum())} + {2 * (nf - 1)} + 1 = {dctfeatures.n_features(nf)}, the last dimension of "
        f"its output. This is Section 2's trace, measured on every grid the first compression may have used. "
        f"**`phase_dense_1`, `phase_dense_2`**: two ReLU layers of width {config['width']} applied to each phase with "
        "the same weights. **`phase_pool`**: the maximum over the 64 phases (the first grid, wherever the crop put it) "
        "beside the features of phase 0. **`grid_histogram`, `grid_dense`**: the phase-0 histograms of the first AC "
        "coefficients themselves through one ReLU layer (the aligned case's pattern lives in the bins, not only in "
        f"their periods). **`pooled`, `hidden`**: concatenated, then a ReLU layer of {config['hidden']}. "
        + ("**`logits`** and **`block_softmax`** are the paper's classification-like head (Section 3.1, Figure 1): "
           f"{int(jpeg.q_max(jpeg.NC).sum())} outputs, one group of q_max[i] per coefficient, and a softmax on each group; "
           "the estimate of coefficient i is the argmax of its group."
           if config["head"] == "class" else
           "**`q1`** is the regression head of [10]: 15 numbers, rounded to give the estimate.")
        + f" Only the Dense layers learn: {int(layers_table['parameters'].sum()):,} parameters in all.")
else:
    text = f"This run uses the `{arch}` backbone; the walk-through above is written for the `dct` one of `mini`."
Markdown(text)

# %% [markdown]
# **Why not the paper's DenseNet here.** The paper's network (Section 4.1) is a DenseNet-40 on
# the pixels: it must discover the 8x8 grid, the DCT and the comb by itself, from 100 epochs of
# millions of patches on a GPU. On this project's two CPU cores the pixel network sees a few
# tens of thousands of patches in the time the block-DCT network sees hundreds of thousands, and
# in a same-time comparison it never left the constant prior (`results/benchmarks/arch.txt`,
# read below). The block-DCT front end computes what the DenseNet would have to learn (exact,
# weightless arithmetic), so the learning is left to the small dense layers. The head and the
# losses are the paper's.

# %%
arch_txt = (paths.ROOT / "results" / "benchmarks" / "arch.txt").read_text()
print(arch_txt)

# %% [markdown]
# ### What `comb` computes, on one patch
#
# One test patch compressed first at QF1 70 and cropped before the second compression (a
# non-aligned patch, seeded), coefficient 3. Left: the comb strength of one coefficient at its true first step
# q1, at each of the 64 phases; the first grid, where the crop moved it, is outlined. Right: at
# that phase and at phase 0 (the last grid), the strength at every candidate step.

# %%
from qpaper.dataset import open_dataset

if arch == "dct":
    test = open_dataset(paths.dataset_dir(profile, f"qf2-{qf2}-test", seed), verify=False)
    meta = np.concatenate([np.asarray(m) for m in test["meta"]])
    qf1_names = [str(q) for q in test["manifest"]["qf1"]]
    want = "70" if "70" in qf1_names else qf1_names[0]
    rows = np.flatnonzero((meta["qf1"] == qf1_names.index(want)) & ~meta["aligned"].astype(bool))
    comb_model = keras.Model(net.input, net.get_layer("comb").output)
    every = np.asarray(comb_model.predict(figures.patches_of(paths.dataset_dir(profile, f"qf2-{qf2}-test", seed), rows)
                                          .astype("float32"), verbose=0))  # [patches, 64 phases, features]
    j = int(np.random.default_rng(seed).integers(len(rows)))
    i, feats = int(rows[j]), every[j]
    kk = 3  # the coefficient shown (zig-zag, from 1)
    q1_true = int(jpeg.zigzag(jpeg.standard_table(int(want)))[kk - 1])
    q2_true = int(jpeg.zigzag(jpeg.standard_table(qf2))[kk - 1])
    r, c = int(meta["r"][i]), int(meta["c"][i])
    first = ((-r) % 8, (-c) % 8)
    at_q1 = feats[:, narrate.comb_feature(kk, q1_true, nf)].reshape(8, 8)
    steps = np.arange(1, cand[kk - 1] + 1)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.5, 3.6))
    h = ax.imshow(at_q1, cmap="magma")
    ax.add_patch(plt.Rectangle((first[1] - 0.5, first[0] - 0.5), 1, 1, fill=False, ec="cyan", lw=2))
    ax.set(xlabel="phase dx", ylabel="phase dy", title=f"coefficient {kk}: strength at q1 = {q1_true}")
    fig.colorbar(h, ax=ax, fraction=0.046, label="comb strength")
    for ph, lab, st in ((first[0] * 8 + first[1], f"first grid, phase {first}", "-o"), (0, "phase 0 (last grid)", "--s")):
        bx.plot(steps, [feats[ph, narrate.comb_feature(kk, q, nf)] for q in steps], st, label=lab, mfc="none")
    bx.axvline(q1_true, color="crimson", ls=":", label=f"true q1 = {q1_true}")
    bx.axvline(q2_true, color="0.4", ls="--", lw=1, label=f"q2 = {q2_true}")
    bx.set(xlabel="candidate step q", ylabel="comb strength", title=f"coefficient {kk}, every candidate step")
    bx.set_xticks(steps)
    bx.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"QF1 {want} -> QF2 {qf2}, crop (r, c) = ({r}, {c}): the `comb` layer's output on one patch",
                 fontsize=10)
    fig.tight_layout()
    _ = S.save_figure(fig, f"02-comb-one-patch-{name}", S.provenance(models=[name], datasets=[f"qf2-{qf2}-test"],
                                                                     patch=i, coefficient=kk))
    plt.show()
    peak = tuple(int(v) for v in np.unravel_index(at_q1.argmax(), at_q1.shape))
    firsts = ((-meta["r"][rows].astype(int)) % 8) * 8 + (-meta["c"][rows].astype(int)) % 8
    on_first = int((every[:, :, narrate.comb_feature(kk, q1_true, nf)].argmax(1) == firsts).sum())
    best_q = int(steps[1:][np.argmax([feats[first[0] * 8 + first[1], narrate.comb_feature(kk, q, nf)]
                                      for q in steps[1:]])])  # q = 1 always scores 1: every integer is a multiple of 1
    display(Markdown(
        f"Over all {len(rows)} non-aligned QF1 {want} patches of this test set, the strength of coefficient {kk} at "
        f"q1 = {q1_true} peaks on the first grid's phase in {on_first} of them ({on_first / len(rows):.0%}; chance "
        f"would give 1 in 64). On the patch shown, at q1 = {q1_true} the strength peaks at phase {peak} ({at_q1.max():.2f}; mean over the phases "
        f"{at_q1.mean():.2f}); the first grid is at {first}: the peak is {'on' if peak == first else 'not on'} it. "
        f"On that phase, leaving out q = 1 (always 1: every integer is a multiple of 1), the candidate with the "
        f"strongest comb is q = {best_q}"
        + (" (a divisor of q1 combs at least as well as q1 itself: every multiple of q1 is also one of its divisors', "
           "which is why the network, not a rule, picks among them)." if q1_true % best_q == 0 and best_q != q1_true
           else "." if best_q == q1_true else
           ": on one 64x64 patch (49 blocks) the comb is noisy; the network reads all candidates together.")))

# %% [markdown]
# ## The losses, as the paper writes them and as the code computes them
#
# For a patch x, the head gives f(x): the concatenation of N_c = 15 softmaxes f_i(x), the i-th
# over the steps j = 1..q_max[i] (the paper's $q^M_{1,i}$); y is the concatenation of the one-hot
# labels y_i. **Eq. 1**, the loss L (printed in the paper without its minus sign, which a loss to
# minimize needs):
#
# $$\mathcal{L}(\mathbf{x}) = -\frac{1}{N_c} \sum_{i=1}^{N_c} \sum_{j=1}^{q^M_{1,i}} y_{ij} \log f_{ij}(\mathbf{x})$$
#
# **Eq. 5**, the refined loss L^r: the same cross-entropy with weight c, plus the expected
# distance of the softmax from the true step, with $(\mathbf{d}_y)_j = |j - q_{1,i}|$ over the
# positions j of block i (Eq. 4), summed over all the blocks:
#
# $$\mathcal{L}^r(\mathbf{x}) = c \, \mathcal{L}(\mathbf{x}) + (1 - c)\, f(\mathbf{x})^T \mathbf{d}_y, \qquad c = 0.8$$
#
# The code that trains the models (`qpaper/losses.py`), shown as it is: `block_terms` computes the
# two terms block by block, `BlockLoss.call` weighs them.

# %%
from qpaper import losses

Markdown(narrate.source(losses.block_terms) + "\n\n" + narrate.source(losses.BlockLoss.call))

# %% [markdown]
# Read against the equations: `ce` accumulates $-\sum_j y_{ij} \log f_{ij}$ for each block i
# (`onehot` is $y_i$, `p` is $f_i(\mathbf{x})$, clipped at 1e-7 so that log 0 never occurs) and is
# divided by `len(sizes)`, $N_c$: Eq. 1. `d` is $(\mathbf{d}_y)_j = |j - q_{1,i}|$ for the block
# (the classes are 0-based, hence `label = q - 1`), and `dist` accumulates $f_i(\mathbf{x})^T
# \mathbf{d}_{y,i}$, summed over the blocks as Eq. 5 writes it. `call` returns `ce` for L, and
# `c * ce + (1 - c) * dist` for L^r. `distance="squared"` (the authors' code) squares `d`.
# Keras then averages the per-patch losses over the batch.
# %% [markdown]
# ## Learning curves
#
# One marker per row (epoch) of `log.csv`: the training loss, and the accuracy (share of exactly
# estimated coefficients) and MSE on the training batches and on held-out scenes, with the
# constant prior on those held-out patches as grey lines. The MSE axis is logarithmic: the
# prior's MSE is many times the network's, and on a linear axis the network's curve would be a
# flat line at the bottom.

# %%
log = pd.read_csv(run / "log.csv")
prior = rs.validation_prior(profile, name)
fig = figures.learning_curves(log, prior, f"{name} ({profile})")
_ = S.save_figure(fig, f"02-learning-curves-{name}", S.provenance(models=[name], datasets=[MODELS[name][0]]))
log

# %%
last, first = log.iloc[-1], log.iloc[0]
unit = "patches" if "patches" in log else "epochs"
seen = int(last["patches"]) if "patches" in log else int(last["epoch"])
best_prior = max(p["accuracy"] for p in prior.values())
if len(log) >= 3:
    tail = log["val_accuracy"].iloc[-3:]
    trend = (f"Over the last three epochs the held-out accuracy moved by {tail.iloc[-1] - tail.iloc[0]:+.3f} "
             f"(from {first['val_accuracy']:.3f} after the first epoch): "
             + ("still rising at the end." if tail.iloc[-1] - tail.iloc[0] > 0.01 else
                "little movement at the end.")
             + (" The learning rate follows a cosine to zero over the run, so the last epochs take ever smaller "
                "steps: a flat end says the schedule ran out, not that the network converged; whether more epochs "
                "help is an experiment (the exercise below), not something this curve shows."
                if get_profile(profile)["fit"]["schedule"] == "cosine" else ""))
else:
    trend = (f"The log has only {len(log)} row(s), one per epoch of the {profile} profile: too few points to read "
             f"a trend; the `mini` profile logs {get_profile('mini')['fit']['epochs']}.")
speed = (f" It trained at {narrate.range_text(log['patches_per_s'], '.0f', 'patches per second')} over its "
         f"{len(log)} epochs, {narrate.range_text(log['seconds'], '.0f', 's')} each (`patches_per_s`, `seconds`): "
         "the machine was shared, so the rate moves from epoch to epoch." if "patches_per_s" in log else "")
Markdown(f"{len(log)} epochs, {seen:,} {unit}.{speed} The held-out accuracy ends at {last['val_accuracy']:.3f} against "
         f"{prior['median']['accuracy']:.3f} for the constant median and {prior['mode']['accuracy']:.3f} for the "
         f"constant mode; the held-out MSE ends at {last['val_mse']:.3f} against {prior['median']['mse']:.3f}. "
         + ("The network learned far more than the prior. "
            if last["val_accuracy"] > best_prior + 0.1 else
            "The network has not left the constant prior: it has not learned. ") + trend)

# %% [markdown]
# ## All the runs of this profile
#
# The last epoch of every registered model beside the constant prior on its held-out patches
# (the median for the models trained with Lr or the MSE, the mode for the cross-entropy L): the
# notebooks that follow evaluate them.

# %%
rows = []
for m in MODELS:
    f = paths.models_dir(profile) / m / "log.csv"
    if f.exists():
        last = pd.read_csv(f).iloc[-1]
        cfg = json.loads((f.parent / "config.json").read_text())
        p = rs.validation_prior(profile, m)["median" if cfg["head"] == "regression" or cfg["loss"] == "Lr" else "mode"]
        rows.append({"model": m, "method": rs.method_of(m), "arch": cfg.get("arch", "densenet"),
                     "epochs": int(last["epoch"]), "patches": int(last["patches"]) if "patches" in last else None,
                     "val_accuracy": round(float(last.get("val_accuracy", float("nan"))), 4),
                     "val_mse": round(float(last.get("val_mse", float("nan"))), 4),
                     "prior_accuracy": round(p["accuracy"], 4), "prior_mse": round(p["mse"], 4)})
runs = pd.DataFrame(rows)
runs

# %%
gain = runs["val_accuracy"] - runs["prior_accuracy"]
learned = runs[gain > 0.1]["model"].tolist()
Markdown(f"{len(learned)} of {len(runs)} runs end more than 0.1 above their constant prior's held-out accuracy"
         + (f" ({', '.join(learned)})" if learned else "") + f". The largest gain is {gain.max():+.3f} "
         f"({runs.loc[gain.idxmax(), 'model']}), the smallest {gain.min():+.3f} ({runs.loc[gain.idxmin(), 'model']}). "
         + ("No run stayed near +0 (which would mean the same Q1 whatever the patch). These are held-out patches of "
            "the training scenes' split; notebook 3 tests the models on scenes they never saw, with intervals."
            if gain.min() > 0.1 else
            f"{', '.join(runs[gain <= 0.1]['model'])} stayed near its prior: it answers nearly the same Q1 whatever "
            "the patch."))

# %% [markdown]
# ## A prediction on a new picture
#
# A photo no model trained on (scikit-image's coffee, never compressed), compressed by us at
# QF1 70, then at the model's QF2 on the same grid; the model reads one 64x64 window and we
# compare its answer with the table we used. `qpaper estimate photo.jpg` does this for a real
# file (reading Q2 from it, over every window or every block).

# %%
from qpaper import explain
from qpaper.model import decode
from qpaper.sources import get_source, load_image

photo = next(p for p in get_source("skimage") if p.id == "coffee")
gray = jpeg.to_luma(load_image(photo.path, photo.sha256))
twice = explain.compress_gray(gray, 70, qf2)  # aligned: QF1 70, then QF2
window = np.repeat(twice[128:192, 256:320, None], 3, axis=-1).astype("float32")[None]  # gray as RGB

answer = decode(np.asarray(net.predict_on_batch(window)), config["head"])[0]
true = jpeg.zigzag(jpeg.standard_table(70))[:jpeg.NC]
pd.DataFrame({"coefficient": range(1, jpeg.NC + 1), "true q1 (QF 70)": true, "estimated": answer,
              "q2": jpeg.zigzag(jpeg.standard_table(qf2))[:jpeg.NC]}).set_index("coefficient").T

# %%
Markdown(f"On this one window the model gets {int((answer == true).sum())} of {jpeg.NC} steps right (an accuracy "
         f"of {(answer == true).mean():.2f}; one window, so no interval: notebook 3 averages thousands), and its steps "
         f"are nearest the standard QF {int(rs.nearest_qf(answer[None])[0])}.")

# %% [markdown]
# ## Takeaways
#
# - The `mini` network is the paper's head and losses on a fixed, weightless block-DCT front
#   end: comb strengths of every candidate step at all 64 grid phases, computed, not learned.
# - L (Eq. 1) only asks for mass on the right step; L^r (Eq. 5) adds the expected distance
#   f(x)^T d_y, a few lines of `qpaper/losses.py`.
# - A run has learned only if its held-out accuracy leaves the constant prior's; every run of
#   the profile is checked against its own prior above.
# - Throughput and epoch times are read from the run's own log, not assumed.
#
# ## Exercises
#
# 1. Read the layer table above: how many parameters does the head (`logits`) hold, and what
#    share of the whole network is that?
#
# <details><summary>Answer</summary>
#
# `logits` is a Dense layer from the `hidden` units to the 226 outputs (sum of q_max): hidden x
# 226 weights + 226 biases. With hidden = 512 that is 115,938 parameters; divide by the sum of
# the `parameters` column (the trainable total) for its share, about a fifth.
# </details>
#
# 2. The learning rate of the `mini` profile decays on a cosine to zero. Retrain this model for
#    a few more epochs and see whether the held-out accuracy keeps rising: set `retrain = True`,
#    `retrain_epochs` and `retrain_minutes` in the cell below (it writes under
#    `data/processed/exercise/`, never over the registered models). Check first, from the
#    `seconds` column of the log above, how many epochs fit in the minutes you give it.
#
# <details><summary>Answer</summary>
#
# A fresh run with `retrain_epochs` epochs restarts the cosine from the top, so it is not "more
# epochs" of the same run: compare its last held-out accuracy with this run's at the same
# number of epochs. On two cores an epoch of 50,000 patches takes about a minute (the log), so
# the 10 minutes of the cell hold about 8 epochs at best: the run stops at the time cap whatever
# `retrain_epochs` says, and a cosine cut short ends with a large learning rate. A fair test of
# "more epochs" needs a longer cap (`retrain_minutes`) and a second seed of this run.
# </details>
#
# 3. Train the same model with `loss = "L"` (the parameters cell) and compare the end of the
#    two curves with the constant mode and median: which prior should each be judged against?
#
# <details><summary>Answer</summary>
#
# L rewards exact answers only, so its best constant is the per-coefficient *mode* of the
# labels; L^r adds the expected absolute distance, whose best constant is the *median*. Each run
# should be judged against the prior of its own loss (the table "All the runs" does so), and
# both priors are drawn on the curves.
# </details>

# %%
retrain = False  # a student's switch: True retrains this model for retrain_epochs (at most retrain_minutes)
retrain_epochs = 3
retrain_minutes = 10
if retrain:
    from qpaper import train
    state = train.train(paths.dataset_dir(profile, MODELS[name][0], seed), paths.processed_dir() / "exercise" / name,
                        profile=profile, head=head, loss=loss, seed=seed, max_minutes=retrain_minutes,
                        epochs=retrain_epochs)
    print(pd.read_csv(paths.processed_dir() / "exercise" / name / "log.csv").tail())
