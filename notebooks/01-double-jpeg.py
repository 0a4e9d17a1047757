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
# **Question:** what trace does a first JPEG compression leave in the pixels once the image has
# been compressed again, aligned or not, and what data does the network learn to read it from?
#
# **Paper:** Sections 1-2 (the double-compression trace), Section 4.2 (the datasets).
#
# A JPEG file stores one quantization matrix: the one of its **last** compression, Q2. If the
# image had been a JPEG before (a photo edited and saved again, or a spliced region pasted from
# another JPEG), its first matrix Q1 is gone from the file, but not from the pixels. The paper
# (Tondi et al., 2021) estimates the first 15 zig-zag coefficients of Q1 from a 64x64 patch
# with a CNN. This notebook shows the trace the network learns to read, and the data it is
# trained on.
#
# Each 8x8 block is transformed with the DCT; coefficient *k* is divided by its step q and
# rounded. After one compression at step q2, the values of coefficient *k* are multiples of q2
# and their histogram is smooth. After a compression at q1 and then at q2 on the same 8x8 grid
# (*aligned*), the values went through two roundings and the histogram gets a periodic comb
# whose period depends on q1/q2. If the image was cropped between the two compressions by a
# shift (r, c) that is not a multiple of 8 (*non-aligned*, 63 of 64 shifts), the comb disappears
# from this histogram, yet a trace stays in the pixels: the second case is what the paper's CNN
# is good at, and what model-based methods find hard.
#
# Words such as AvgAcc, q_max, R_k, ECE, *traced* and *constant prior* are defined in the
# [glossary](README.md#glossary).
#
# **Two parameter cells.** The next cell, tagged `parameters`, holds this notebook's defaults
# (the `smoke` profile, a minute's work). When `qpaper notebooks --profile mini` runs the
# notebook, papermill inserts a second cell, headed `# Parameters`, right after it with the
# profile and seed it was given; being later, that one wins. An executed copy therefore shows
# both; run by hand, the notebook has only the first.

# %% tags=["parameters"]
profile = "smoke"
seed = 0
qf1 = 70
qf2 = 90
k = 3  # the coefficient to show, numbered from 1 in zig-zag order as in the paper (1 is DC)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown

from qpaper import explain, figures, jpeg, narrate, paths
from qpaper import results as rs
from qpaper.sources import get_source, load_image

S = figures.setup(profile, seed, datasets="all")
Markdown(narrate.environment(profile, seed))

# %% [markdown]
# ## The comb of an aligned double compression
#
# One never-compressed photo (scikit-image's astronaut), compressed three ways; below, the
# histogram of coefficient *k*, in units of q2, for each.

# %%
photo = get_source("skimage")[0]  # astronaut.png, never compressed
gray = jpeg.to_luma(load_image(photo.path, photo.sha256))
shift = (3, 5)  # the crop (r, c) of the non-aligned case
demo = explain.comb_demo(gray, qf1=qf1, qf2=qf2, k=k - 1, shift=shift)  # the function counts from 0
print(f"coefficient {k}: q1 = {demo['q1']} (QF1 {qf1}), q2 = {demo['q2']} (QF2 {qf2})")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
titles = {"single": f"single, QF {qf2}", "aligned": f"double {qf1} -> {qf2}, aligned",
          "non-aligned": f"double {qf1} -> {qf2}, shift {shift}"}
for ax, name in zip(axes, titles):
    bins, counts = demo[name]
    ax.bar(bins, counts, width=0.8, color="C0" if name == "single" else "C1")
    ax.set_title(titles[name])
    ax.set_xlabel(f"coefficient {k} / q2")
axes[0].set_ylabel("blocks")
fig.tight_layout()
_ = S.save_figure(fig, "01-dct-histograms", S.record(image=photo.path, qf1=qf1, qf2=qf2, coefficient=k,
                                                    shift=list(shift)))

# %%
span = 8
gaps = {name: figures.comb_gaps(*demo[name], span=span) for name in titles}
Markdown(f"Within {span} steps of 0, the aligned double compression leaves **{len(gaps['aligned'])}** nearly empty bins "
         f"(fewer than a quarter of their neighbours' mean: {gaps['aligned']}), the single compression "
         f"{len(gaps['single'])} and the non-aligned double compression {len(gaps['non-aligned'])}. "
         f"With q1/q2 = {demo['q1']}/{demo['q2']}, a value first rounded to a multiple of {demo['q1']} and then "
         f"to a multiple of {demo['q2']} can only land on some bins: that is the comb a model-based method "
         "fits. Shift the grid and the comb is gone from this histogram, although the first compression "
         "happened all the same.")

# %% [markdown]
# ### The comb by hand
#
# The same effect with no image at all, for q1 = 7 and q2 = 2: a DCT value first becomes a
# multiple of 7 (..., -14, -7, 0, 7, 14, ...); the second compression divides by 2 and rounds,
# so 7 lands on 3.5, exactly between bins 3 and 4 (the quantizer rounds half away from zero: bin
# 4), and 14 on bin 7. The bins no multiple of 7 reaches are the comb's gaps; the cell lists
# them. Swap the steps (q1 = 2, q2 = 7) and every bin is reached: a first step finer than the
# last leaves no gap, the case QF1 >= QF2 of notebook 3.

# %%
for a, b in ((7, 2), (2, 7), (demo["q1"], demo["q2"])):
    r = explain.comb_by_hand(a, b, span=8)
    print(f"q1 = {a:2d}, q2 = {b:2d}: bins reached in -8..8: {r['reached']}\n{'':17}empty: {r['empty']}")

# %%
hand = explain.comb_by_hand(demo["q1"], demo["q2"], span=span)
bins, counts = demo["aligned"]
count = dict(zip(np.asarray(bins).tolist(), np.asarray(counts).tolist()))
filled = [b for b in hand["empty"] if b > 0 and b not in gaps["aligned"]]  # empty by hand, not in the photo
near = min((b for b in hand["reached"] if b > 0), key=lambda b: abs(b - filled[0])) if filled else None
Markdown(f"By hand, q1 = {demo['q1']} over q2 = {demo['q2']} leaves bins "
         f"{', '.join(str(b) for b in hand['empty'] if b > 0)} empty between 1 and {span}. The photo's aligned "
         "histogram above agrees only in part: "
         + (f"bin{'s' if len(filled) > 1 else ''} {', '.join(str(b) for b in filled)} "
            f"{'hold' if len(filled) > 1 else 'holds'} {', '.join(str(int(count.get(b, 0))) for b in filled)} blocks "
            f"(its neighbour bin {near} holds {int(count.get(near, 0))}). Between the "
            "two compressions the decoded pixels are rounded to integers and clipped to 0..255, which moves every DCT "
            "value a little: a multiple of q1 that lands near a midpoint (7 / 2 = 3.5 here) then falls on either side, "
            "so the real comb has fewer gaps than the arithmetic."
            if filled else "every bin the arithmetic leaves empty is nearly empty in the photo too."))

# %% [markdown]
# ## Where the first grid is
#
# The comb of the non-aligned case is not gone: it sits on the first compression's grid, shifted
# from the last one. The CPU-efficient backbone of the `mini` profile (`qpaper/dctfeatures.py`)
# computes the block DCT at all 64 grid phases (dy, dx) and, for every coefficient and candidate
# step q, the *comb strength* (the mean of cos(2 pi v / q) over the blocks: near 1 when the values
# are multiples of q). Below, for QF1 60, a crop by (3, 5) and QF2 90, the strength at q1 and at
# q2 per phase, averaged over coefficients 6-15 (zig-zag, numbered from 1) and over the image. The network learns to read
# these maps for every window; a pixel CNN must discover the 8x8 grid by itself, which two CPU
# cores cannot afford.

# %%
pc = explain.phase_comb(gray, qf1=60, qf2=qf2, shift=shift)
fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.6))
lo, hi = min(pc["q1"].min(), pc["q2"].min()), max(pc["q1"].max(), pc["q2"].max())  # one colour range for both
for ax, name in zip(axes, ("q1", "q2")):
    h = ax.imshow(pc[name], cmap="magma", vmin=lo, vmax=hi)
    ax.set_title(f"comb strength at {name}")
    ax.set_xlabel("phase dx")
    ax.set_ylabel("phase dy")
fig.colorbar(h, ax=axes, fraction=0.046, label="comb strength (both panels)")
fig.suptitle(f"QF1 60 -> QF2 {qf2}, crop {shift}, coefficients 6-15 (zig-zag, numbered from 1)", fontsize=10)
_ = S.save_figure(fig, "01-phase-comb", S.record(image=photo.path, qf1=60, qf2=qf2, shift=list(shift)))

# %%
bright = {name: tuple(int(v) for v in np.unravel_index(pc[name].argmax(), (8, 8))) for name in ("q1", "q2")}
first = tuple(int(v) for v in pc["first_grid_phase"])
Markdown(f"The strength at q1 peaks at phase {bright['q1']} ({pc['q1'].max():.2f}, against a mean of "
         f"{pc['q1'].mean():.2f} over the 64 phases); the first grid, moved by the crop {pc['shift']}, is at phase "
         f"((-{pc['shift'][0]}) mod 8, (-{pc['shift'][1]}) mod 8) = {first}: the peak is {'on' if bright['q1'] == first else 'not on'} it. "
         f"The strength at q2 peaks at {bright['q2']} ({pc['q2'].max():.2f}), the grid of the last compression. "
         "So a non-aligned double JPEG keeps its comb, only on another grid: a method must look at every "
         "phase to find it.")

# %% [markdown]
# ## The tables behind the steps
#
# Q1 and Q2 are the standard IJG tables scaled by the quality factor. The paper estimates the
# first nc = 15 values in zig-zag order; the class head of the network has one softmax per
# coefficient with `q_max[i]` classes, the largest value of that coefficient at QF 50.

# %%
print("zig-zag Q1 at QF1", qf1, ":", jpeg.zigzag(jpeg.standard_table(qf1))[:jpeg.NC].tolist())
print("zig-zag Q2 at QF2", qf2, ":", jpeg.zigzag(jpeg.standard_table(qf2))[:jpeg.NC].tolist())
print("q_max (classes per coefficient):", jpeg.q_max(jpeg.NC).tolist())

# %% [markdown]
# ## The datasets of this profile
#
# Patches are cut on the grid of the second compression after a random grid shift (aligned with
# probability 1/64, Section 4.2). The table lists, per dataset, the QF1 values, the patches, how
# many are aligned, the images and scenes they come from (the per-QF1 rows are in
# `tables/datasets.csv`). Test sets never share a scene with training.

# %%
table = rs.datasets_table(paths.datasets_dir(profile))
summary = table.groupby("dataset", sort=False).agg(
    source=("source", "first"), split=("split", "first"), qf2=("qf2", "first"), qf1_values=("qf1", "count"),
    patches=("patches", "sum"), aligned=("aligned", "sum"), images=("images", "first"),
    scenes=("scenes", "first"), grid_shift=("grid_shift", "first"), encoder=("encoder", "first")).reset_index()
summary["aligned_share"] = (summary["aligned"] / summary["patches"]).round(4)
S.save_table(table, "datasets", S.provenance(datasets=table["dataset"].unique()))
S.save_table(summary, "datasets-summary", S.provenance(datasets=summary["dataset"].tolist()))
summary

# %%
rand = summary[summary["grid_shift"] == "random"]
train = summary[summary["split"] == "train"]
chance = pd.DataFrame([{"dataset": d, **narrate.aligned_draws(paths.dataset_dir(profile, d, seed))}
                       for d in rand["dataset"]])
S.save_table(chance, "aligned-draws", S.provenance(datasets=chance["dataset"].tolist(), p=1 / 64, level=0.95))
chance

# %%
out = chance[~chance["inside"]]
Markdown(f"{len(summary)} datasets, {int(summary['patches'].sum()):,} patches. The training sets "
         f"({', '.join(train['dataset'])}) hold {', '.join(f'{int(v):,}' for v in train['patches'])} patches from "
         f"{', '.join(str(int(v)) for v in train['scenes'])} scenes. In the random-shift sets the aligned share of the "
         f"*patches* runs from {rand['aligned_share'].min():.3f} to {rand['aligned_share'].max():.3f} (1/64 = "
         f"{1 / 64:.3f}), but patches are not independent draws: the builder draws one grid shift per unit (an image "
         "and a QF1) for all of its patches, and units hold different numbers of patches. Counted in draws (the "
         f"table above), the sets hold {chance['draws'].min():,} to {chance['draws'].max():,} draws, of which "
         f"{chance['aligned'].min()} to {chance['aligned'].max()} are aligned; for each set, the central 95% of a "
         f"binomial count (n draws, p = 1/64) is the range `lo`-`hi`, and {len(out)} of {len(chance)} sets fall "
         "outside it" + (f" ({', '.join(out['dataset'])})" if len(out) else ": their aligned counts are what chance "
                         "gives") + ". The `-aligned` sets are aligned everywhere (share "
         f"{summary[summary['grid_shift'] == 'aligned']['aligned_share'].min():.0f}). A network trained on them sees "
         "mostly non-aligned patches, the case the paper targets.")

# %% [markdown]
# A few training patches, one per QF1 value (as many as fit in six), all compressed last at
# QF2 = 90.

# %%
patches = figures.sample_patches(paths.datasets_dir(profile) / "qf2-90-train", n=6, seed=seed)
fig, axes = plt.subplots(1, len(patches), figsize=(12, 2.4))
for ax, p in zip(axes, patches):
    ax.imshow(p["x"].squeeze(), cmap="gray" if p["x"].shape[-1] == 1 else None)
    ax.set_title(f"QF1 {p['qf1']}, shift {p['shift']}", fontsize=8)
    ax.axis("off")
fig.tight_layout()

# %%
shown = [p["qf1"] for p in patches]
Markdown(f"These patches went through first qualities {', '.join(map(str, shown))}, then QF2 {patches[0]['qf2']}; "
         f"{sum(p['aligned'] for p in patches)} of the {len(patches)} are aligned. Nothing in them tells the eye "
         "which is which: the difference lives in the DCT statistics shown above, which is what the estimator of "
         "notebook 2 learns to read.")

# %% [markdown]
# ## How long the notebooks take
#
# `qpaper notebooks` writes `timings.csv` beside the executed notebooks once all of them have
# run, so what this cell shows is the *previous* run on this profile (none on a fresh profile).
# Evaluations are cached in `data/processed/evaluations`: a first run takes longer (`make
# reproduce` in the README gives the fresh-clone time).

# %%
timings = paths.results_dir(profile) / "notebooks" / "timings.csv"
pd.read_csv(timings) if timings.exists() else Markdown(f"No `{timings.name}` yet for the {profile} profile.")

# %% [markdown]
# ## Takeaways
#
# - A first compression on the same grid leaves a comb in each coefficient's histogram: bins
#   that no multiple of q1 reaches after requantizing with q2; in a real photo the rounding of
#   the decoded pixels can fill some of them.
# - A first step finer than the last (q1 <= q2, or q1 dividing q2) leaves no gap: nothing of
#   q1 can be read there, by any method.
# - After a crop the comb is still there, on the first compression's grid: a method must look at
#   all 64 phases (the block-DCT front end of the `mini` models does exactly that).
# - The datasets draw one grid shift per unit (image, QF1), so the aligned share of a set is a
#   count of a few dozen to a few thousand draws, not of its patches.
#
# ## Exercises
#
# 1. In the parameters cell set `qf1 = 95` (a first compression *finer* than QF2 90) and rerun.
#    What happens to the gaps of the aligned histogram? Check your answer with
#    `explain.comb_by_hand(q1, q2)` for the two steps the first cell prints.
#
# <details><summary>Answer</summary>
#
# At QF 95 coefficient 3 has step q1 = 1 (`jpeg.zigzag(jpeg.standard_table(95))[2]`), below
# q2 = 2: every multiple of 2 is also a multiple of 1, so `comb_by_hand(1, 2)` reaches every bin
# and the aligned histogram looks like the single compression's. The image keeps no trace of a
# first step finer than the last.
# </details>
#
# 2. Set `k = 11` (a higher frequency) with `qf1 = 70`. Are there more or fewer gaps within 8
#    steps of 0 than for `k = 3`? Relate it to the ratio q1/q2 of that coefficient.
#
# <details><summary>Answer</summary>
#
# Coefficient 11 has q1 = 11 at QF 70 and q2 = 4 at QF 90 (the tables printed above): the
# multiples of 11 land every 11/4 = 2.75 bins, so about one bin in three is reached, against one
# in 1.75 for 7/2. The larger q1/q2, the more gaps; but high frequencies have fewer non-zero
# values, so the histogram is thinner far from 0 and a gap is harder to tell from an empty tail.
# </details>
#
# 3. A random-shift set draws one grid shift per image and QF1. With 72 draws, how many aligned
#    draws do you expect, and how often would you see none at all? ((63/64)^72: compute it.)
#
# <details><summary>Answer</summary>
#
# 72/64 = 1.125 aligned draws on average, and none at all with probability (63/64)^72 = 0.32:
# about one set in three. `narrate.chance_counts(72)` gives the central 95% range of the count,
# 0 to 4; a set's aligned share of patches is this count times its units' sizes, so it can look
# far from 1/64 by chance.
# </details>
