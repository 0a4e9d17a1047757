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
{k: config[k] for k in ("arch", "head", "loss", "c", "distance", "depth", "width", "hidden", "phases", "batch",
                        "lr", "schedule", "warmup", "epochs", "epoch_patches", "channels", "backend",
                        "data_content_sha256") if k in config}

# %% [markdown]
# ## Learning curves
#
# One row per epoch of `log.csv`: the training loss, and the accuracy (share of exactly
# estimated coefficients) and MSE on the training batches and on held-out scenes, with the
# constant prior on those held-out patches as dashed lines.

# %%
log = pd.read_csv(run / "log.csv")
prior = rs.validation_prior(profile, name)
x = log["patches"] / 1000 if "patches" in log else log["epoch"]
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for ax, m in zip(axes, ("loss", "accuracy", "mse")):
    ax.plot(x, log[m], marker="o", label="training")
    if f"val_{m}" in log and log[f"val_{m}"].notna().any():
        ax.plot(x, log[f"val_{m}"], marker="s", label="held-out scenes")
    if m != "loss":
        for kind, ls in (("median", "--"), ("mode", ":")):
            ax.axhline(prior[kind][m], color="0.45", ls=ls, label=f"constant prior ({kind})")
    ax.set_xlabel("patches seen (thousands)" if "patches" in log else "epoch")
    ax.set_title(m, fontsize=10)
    ax.grid(alpha=0.3)
axes[1].legend(fontsize=8)
fig.suptitle(f"{name} ({profile})", fontsize=10)
fig.tight_layout()
rs.save_figure(fig, profile, f"02-learning-curves-{name}", rs.provenance(profile, seed, started, models=[name],
               datasets=[ex.MODELS[name][0]]))
log

# %%
last = log.iloc[-1]
md = (f"After {int(last['patches']) if 'patches' in log else int(last['epoch'])} "
      f"{'patches' if 'patches' in log else 'epochs'}, the held-out accuracy is {last['val_accuracy']:.3f} "
      f"against {prior['median']['accuracy']:.3f} for the constant median and {prior['mode']['accuracy']:.3f} for "
      f"the constant mode; the held-out MSE is {last['val_mse']:.3f} against {prior['median']['mse']:.3f}. "
      + ("The network learned far more than the prior."
         if last["val_accuracy"] > max(p["accuracy"] for p in prior.values()) + 0.1 else
         "The network has not left the constant prior: it has not learned."))
from IPython.display import Markdown
Markdown(md)

# %% [markdown]
# ## All the runs of this profile
#
# The last epoch of every registered model beside the constant prior on its held-out patches
# (the median for the models trained with Lr or the MSE, the mode for the cross-entropy L): the
# notebooks that follow evaluate them.

# %%
rows = []
for m in ex.MODELS:
    f = ex.models_dir(profile) / m / "log.csv"
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
