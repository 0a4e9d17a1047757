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
# # 1. Double JPEG, and how Q1 shows through
#
# A JPEG file stores one quantization matrix: the one of its **last** compression, Q2. If the
# image had been a JPEG before (a photo edited and saved again, or a spliced region pasted from
# another JPEG), its first matrix Q1 is gone from the file, but not from the pixels. The paper
# (Tondi et al., 2021, Sections 1-2) estimates the first 15 zig-zag coefficients of Q1 from a
# 64x64 patch with a CNN. This notebook shows the trace the network learns to read, and the data
# it is trained on.
#
# Each 8x8 block is transformed with the DCT; coefficient *k* is divided by its step q and
# rounded. After one compression at step q2, the values of coefficient *k* are multiples of q2
# and their histogram is smooth. After a compression at q1 and then at q2 on the same 8x8 grid
# (*aligned*), the values went through two roundings and the histogram gets a periodic comb
# whose period depends on q1/q2. If the image was cropped between the two compressions by a
# shift (r, c) that is not a multiple of 8 (*non-aligned*, 63 of 64 shifts), the comb disappears
# from this histogram, yet a trace stays in the pixels: the second case is what the paper's CNN
# is good at, and what model-based methods find hard.

# %% tags=["parameters"]
profile = "smoke"
seed = 0
qf1 = 70
qf2 = 90
k = 2  # zig-zag index of the coefficient to show (0 is DC)

# %%
import matplotlib.pyplot as plt
import numpy as np

from qpaper import experiments as ex
from qpaper import explain, jpeg, report
from qpaper import results as rs
from qpaper.sources import get_source, load_image

started = rs.now()
photo = get_source("skimage")[0]  # astronaut.png, never compressed
gray = jpeg.to_luma(load_image(photo.path, photo.sha256))
demo = explain.comb_demo(gray, qf1=qf1, qf2=qf2, k=k, shift=(3, 5))
print(f"coefficient {k}: q1 = {demo['q1']} (QF1 {qf1}), q2 = {demo['q2']} (QF2 {qf2})")

# %% [markdown]
# The three histograms of coefficient *k*, in units of q2. The aligned double compression shows
# the comb: some bins are almost empty and others over-full, with a period set by q1/q2.

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
titles = {"single": f"single, QF {qf2}", "aligned": f"double {qf1} -> {qf2}, aligned",
          "non-aligned": f"double {qf1} -> {qf2}, shift (3, 5)"}
for ax, name in zip(axes, titles):
    bins, counts = demo[name]
    ax.bar(bins, counts, width=0.8, color="C0" if name == "single" else "C1")
    ax.set_title(titles[name], fontsize=10)
    ax.set_xlabel(f"coefficient {k} / q2")
axes[0].set_ylabel("blocks")
fig.tight_layout()
rs.save_figure(fig, profile, "01-dct-histograms", rs.record(profile, seed, started, image=photo.path,
               qf1=qf1, qf2=qf2, coefficient=k, shift=[3, 5]))

# %% [markdown]
# ## Where the first grid is
#
# The comb of the non-aligned case is not gone: it sits on the first compression's grid, shifted
# from the last one. The CPU-efficient backbone of the `mini` profile (`qpaper/dctfeatures.py`)
# computes the block DCT at all 64 grid phases (dy, dx) and, for every coefficient and candidate
# step q, the *comb strength* (the mean of cos(2 pi v / q) over the blocks: near 1 when the values
# are multiples of q). Below, for QF1 60, a crop by (3, 5) and QF2 90, the strength at q1 and at
# q2 per phase, averaged over coefficients 5-14 and over the image: the first grid lights up at
# phase ((-3) mod 8, (-5) mod 8) = (5, 3), the last grid at (0, 0). The network learns to read
# these maps for every window; a pixel CNN must discover the 8x8 grid by itself, which two CPU
# cores cannot afford.

# %%
pc = explain.phase_comb(gray, qf1=60, qf2=qf2, shift=(3, 5))
fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
for ax, name in zip(axes, ("q1", "q2")):
    h = ax.imshow(pc[name], cmap="magma")
    fig.colorbar(h, ax=ax, fraction=0.046)
    ax.set_title(f"comb strength at {name}", fontsize=10)
    ax.set_xlabel("phase dx")
    ax.set_ylabel("phase dy")
fig.tight_layout()
rs.save_figure(fig, profile, "01-phase-comb", rs.record(profile, seed, started, image=photo.path, qf1=60, qf2=qf2,
                                                        shift=[3, 5]))
brightest = np.unravel_index(pc["q1"].argmax(), (8, 8))
print("brightest phase for q1:", tuple(int(v) for v in brightest), "| first grid:", pc["first_grid_phase"])

# %% [markdown]
# ## The tables behind the steps
#
# Q1 and Q2 are the standard IJG tables scaled by the quality factor. The paper estimates the
# first nc = 15 values in zig-zag order; the class head of the network has one softmax per
# coefficient with `q_max[i]` classes, the largest value of that coefficient at QF 50.

# %%
print("zig-zag Q1 at QF1", qf1, ":", jpeg.zigzag(jpeg.standard_table(qf1))[:15].tolist())
print("zig-zag Q2 at QF2", qf2, ":", jpeg.zigzag(jpeg.standard_table(qf2))[:15].tolist())
print("q_max (classes per coefficient):", jpeg.q_max(15).tolist())

# %% [markdown]
# ## The datasets of this profile
#
# Patches are cut on the grid of the second compression after a random grid shift (aligned with
# probability 1/64, Section 4.2). The table lists, per dataset and QF1, the patches, how many are
# aligned, the images and scenes they come from. Test sets never share a scene with training.

# %%
ex.build_datasets(profile, seed)
table = report.datasets_table(ex.datasets_dir(profile))
summary = table.groupby("dataset", sort=False).agg(
    source=("source", "first"), split=("split", "first"), qf2=("qf2", "first"), qf1_values=("qf1", "count"),
    patches=("patches", "sum"), aligned=("aligned", "sum"), images=("images", "first"),
    scenes=("scenes", "first"), grid_shift=("grid_shift", "first"), encoder=("encoder", "first")).reset_index()
summary["aligned_share"] = (summary["aligned"] / summary["patches"]).round(4)
rs.save_table(table, profile, "datasets", rs.provenance(profile, seed, started, datasets=table["dataset"].unique()))
rs.save_table(summary, profile, "datasets-summary", rs.provenance(profile, seed, started,
              datasets=summary["dataset"].tolist()))
summary

# %% [markdown]
# A few training patches, with the QF1 they went through first (all were compressed last at
# QF2 = 90). The differences are invisible to the eye.

# %%
from qpaper import djpeg

d = djpeg.open_dataset(ex.datasets_dir(profile) / "qf2-90-train", verify=False)
x, q1, meta = d["x"][0], d["q1"][0], d["meta"][0]
names = d["manifest"]["qf1"]
pick = np.random.default_rng(seed).choice(len(x), size=6, replace=False)
fig, axes = plt.subplots(1, 6, figsize=(12, 2.4))
for ax, i in zip(axes, pick):
    ax.imshow(x[i].squeeze(), cmap="gray" if x.shape[-1] == 1 else None)
    ax.set_title(f"QF1 {names[meta['qf1'][i]]}, shift ({meta['r'][i]},{meta['c'][i]})", fontsize=8)
    ax.axis("off")
fig.tight_layout()
