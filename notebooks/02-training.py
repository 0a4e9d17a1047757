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
# reads at about 1000 patches per second (`results/benchmarks/arch.txt` compares the two).
#
# This notebook trains one run (or reads the committed one) and draws its learning curves beside
# the **constant prior**: the best answer that ignores the image (the per-coefficient median of
# the training labels, the QF 80 table here, or their mode). A curve that stays on that line has
# learned nothing.

# %% tags=["parameters"]
profile = "smoke"
seed = 0
qf2 = 90
head = "class"  # class | regression
loss = "Lr"  # L | Lr (class head only)

# %%
import json

import pandas as pd
from IPython.display import Markdown

from qpaper import figures, jpeg, paths
from qpaper import results as rs
from qpaper.profiles import MODELS, get_profile

name = f"qf2-{qf2}-class-{loss}" if head == "class" else f"qf2-{qf2}-regression"
S = figures.setup(profile, seed, datasets=[MODELS[name][0]], models=[name])

# %% [markdown]
# `make reproduce` evaluates committed models; a missing one was trained by the set-up call above
# with `qpaper.train.train`, the function behind `qpaper train` (what `make reproduce TRAIN=1`
# runs for every model). The settings of the run:

# %%
print("run:", name, "| profile fit settings:", get_profile(profile)["fit"])
run = paths.models_dir(profile) / name
config = json.loads((run / "config.json").read_text())
{k: config[k] for k in ("arch", "head", "loss", "c", "distance", "depth", "width", "hidden", "phases", "batch",
                        "lr", "schedule", "warmup", "epochs", "epoch_patches", "channels", "backend",
                        "data_content_sha256") if k in config}

# %% [markdown]
# The network itself, as Keras builds it (`qpaper/model.py`): its layers, their output shapes and
# parameters. The last layers are the paper's head: `logits` (one group of `q_max[i]` outputs per
# coefficient) and `block_softmax`, one softmax per group (Figure 1).

# %%
import qpaper

net = qpaper.load_model(run / "model.keras")
net.summary(line_length=110)
print("loss:", config.get("loss"), "| c =", config.get("c"), "| distance:", config.get("distance"),
      "| output width:", net.output_shape[-1], "| q_max per coefficient (class head):", jpeg.q_max(jpeg.NC).tolist())

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
S.save_figure(fig, f"02-learning-curves-{name}", S.provenance(models=[name], datasets=[MODELS[name][0]]))
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
Markdown(f"{len(log)} epochs, {seen:,} {unit}. The held-out accuracy ends at {last['val_accuracy']:.3f} against "
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
         "A run near +0 answers the same Q1 whatever the patch; the tables of notebook 3 will show it.")

# %% [markdown]
# ## Exercises
#
# 1. Read the model summary above: how many parameters does the head (`logits`) hold, and what
#    share of the whole network is that?
# 2. The learning rate of the `mini` profile decays on a cosine to zero. Retrain this model for
#    more epochs and see whether the held-out accuracy keeps rising: set `retrain = True` and
#    `retrain_epochs` in the cell below (it stops after 10 minutes whatever the epochs, and
#    writes under `data/processed/exercise/`, never over the registered models).
# 3. Train the same model with `loss = "L"` (the parameters cell) and compare the end of the
#    two curves with the constant mode and median: which prior should each be judged against?

# %%
retrain = False  # a student's switch: True retrains this model for retrain_epochs (at most 10 minutes)
retrain_epochs = 3
if retrain:
    from qpaper import train
    state = train.train(paths.dataset_dir(profile, MODELS[name][0], seed), paths.processed_dir() / "exercise" / name,
                        profile=profile, head=head, loss=loss, seed=seed, max_minutes=10, epochs=retrain_epochs)
    print(pd.read_csv(paths.processed_dir() / "exercise" / name / "log.csv").tail())
