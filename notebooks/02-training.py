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
# The estimator is a DenseNet (Section 4.1) that reads a 64x64 RGB patch. Its
# **classification-like head** (Section 3.1) has one softmax per coefficient: coefficient *i*
# can take the values 1..q_max[i], and the estimate is the argmax. Trained with plain
# cross-entropy (loss L, Eq. 1) it treats a near miss like a far one; the refined loss Lr
# (Eq. 5, c = 0.8) adds the expected distance of the softmax from the true value, which lowers
# the MSE. The **regression head** of reference [10] outputs the 15 values directly and is
# trained with the MSE.
#
# This notebook trains one run (or reads the committed one) and draws its learning curves. The
# profile fixes the network depth, the optimizer and the budget: `paper` is the paper's
# DenseNet-40 with Adam 1e-5 for 100 epochs; `mini` is what two CPU cores allow.

# %% tags=["parameters"]
profile = "smoke"
seed = 0
qf2 = 90
head = "class"  # class | regression
loss = "Lr"  # L | Lr (class head only)

# %%
import json

import matplotlib.pyplot as plt
import pandas as pd

from qpaper import experiments as ex
from qpaper import results as rs
from qpaper.profiles import get_profile

started = rs.now()
name = f"qf2-{qf2}-class-{loss}" if head == "class" else f"qf2-{qf2}-regression"
print("run:", name, "| profile fit settings:", get_profile(profile)["fit"])

# %% [markdown]
# `make reproduce` evaluates committed models; a missing one is trained here with
# `qpaper train` (the same command `make reproduce TRAIN=1` runs for every model).

# %%
ex.build_datasets(profile, seed, names=[ex.MODELS[name][0]])
ex.train_models(profile, seed, names=[name])
run = ex.models_dir(profile) / name
config = json.loads((run / "config.json").read_text())
{k: config[k] for k in ("head", "loss", "c", "distance", "depth", "growth", "batch", "lr", "epochs",
                        "epoch_patches", "channels", "backend", "data_content_sha256") if k in config}

# %% [markdown]
# ## Learning curves
#
# One row per epoch of `log.csv`: the training loss, and the accuracy (share of exactly
# estimated coefficients) and MSE on the training batches and on held-out scenes.

# %%
log = pd.read_csv(run / "log.csv")
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for ax, m in zip(axes, ("loss", "accuracy", "mse")):
    ax.plot(log["epoch"], log[m], marker="o", label="training")
    if f"val_{m}" in log and log[f"val_{m}"].notna().any():
        ax.plot(log["epoch"], log[f"val_{m}"], marker="s", label="held-out scenes")
    ax.set_xlabel("epoch")
    ax.set_title(m, fontsize=10)
    ax.grid(alpha=0.3)
axes[1].legend(fontsize=8)
fig.suptitle(f"{name} ({profile})", fontsize=10)
fig.tight_layout()
rs.save_figure(fig, profile, f"02-learning-curves-{name}", rs.provenance(profile, seed, started, models=[name],
               datasets=[ex.MODELS[name][0]]))
log

# %% [markdown]
# ## All the runs of this profile
#
# The last epoch of every registered model: the notebooks that follow evaluate them.

# %%
rows = []
for m in ex.MODELS:
    f = ex.models_dir(profile) / m / "log.csv"
    if f.exists():
        last = pd.read_csv(f).iloc[-1]
        rows.append({"model": m, "method": rs.method_of(m), "epochs": int(last["epoch"]),
                     "val_accuracy": round(float(last.get("val_accuracy", float("nan"))), 4),
                     "val_mse": round(float(last.get("val_mse", float("nan"))), 4)})
runs = pd.DataFrame(rows)
runs
