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
# # 7. Tampering localization (Section 5.3, Figure 12)
#
# **Question:** can the per-window Q1 estimates of a spliced JPEG show where the pasted regions
# are, and how well does a mask clustered from them match the truth?
#
# **Paper:** Section 5.3 (Figure 12).
#
# A forger pastes regions from other JPEG photos into a JPEG and saves the result. Every region
# is then double-compressed, but with a different first quality: the background's, and each
# donor's. Run on sliding 64x64 windows, the estimator gives a map QM(i, j, :) of first
# quantization steps in which the pasted regions stand out (the paper's Figure 12 shows the maps
# of coefficients 1, 6 and 14). All grids are non-aligned: the paste moves the donor's grid, and
# the final file is cropped.
#
# The paper stops at the maps and leaves their clustering into a tampering mask as future work.
# Here the per-position Q1 vectors (3x3 median, log2 scale) are clustered with k-means, k
# chosen by the silhouette (k = 1: nothing found); the largest cluster is the background. Each
# splice is scored at the window centres against the ground truth: F1 and MCC of the mask, and
# AUC of the distance to the background's median vector.
#
# The splices come from the profile's **test** images, with the paper's two examples (QF2 90,
# background QF1 75, donors 95 and 85, or 65 and 95) and footnote 3's case of a donor that was
# never compressed before (the estimator then answers steps near 1, QF 100). A forger pastes
# objects, so the donor rectangles are cut where the donor has texture (`splices.texture`);
# one more splice repeats the first example with the flat donors the paper's Figure 12 shows (a
# uniform grey and a uniform light-blue square). A flat area has no AC coefficient, so no trace
# of its own first compression exists in it: whatever the map shows there is not its QF1, and
# the mean scores leave that case out.
#
# The maps use the dense path when the model has the block-DCT backbone: the front end's
# features are computed once per pixel position and shared by the windows, which gives the
# per-window numbers (`make bench` measures the agreement). Terms: the
# [glossary](README.md#glossary). The second parameter cell of an executed copy is papermill's
# (notebook 1 explains).

# %% tags=["parameters"]
profile = "smoke"
seed = 0
per_case = None  # splices per case (None: the profile's)
stride = None  # window stride (None: the profile's; the paper uses 1)

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from qpaper import figures, localize, narrate, paths, regions, splices
from qpaper.model import load_model
from qpaper.profiles import MODELS, get_profile

name = "qf2-90-class-Lr"
S = figures.setup(profile, seed, datasets=[MODELS[name][0]], models=[name])
stride = stride or get_profile(profile)["localize"]["stride"]
model = load_model(paths.model_path(profile, name))
examples = splices.splice_set(profile, seed, per_case=per_case)
display(Markdown(narrate.environment(profile, seed)))
print(len(examples), "splices;", [(s["case"], s["splice"].mask.shape) for s in examples])
print(f"window stride: {stride} pixels (the paper: 1)")

# %% [markdown]
# ## Scores of the clustered masks

# %%
rows, maps = [], []
for s in examples:
    sp = s["splice"]
    r = localize.score_splice(sp, model, stride, seed)
    rows.append({"case": s["case"], "splice": s["index"], "qf1": str(sp.qf1), "qf2": sp.qf2,
                 "shift": str(sp.shift), "clusters": r["clusters"]["k"], "donors": int(sp.mask.max()), **r["scores"]})
    maps.append((r["rgb"], sp.mask, r["qm"], r["clusters"]))
scores = pd.DataFrame(rows)
textured = ~scores["case"].eq(splices.FLAT_CASE[0])
mean = {"case": "mean (textured donors)", **{c: "" for c in scores.columns if c != "case"},
        **scores[textured][["F1", "MCC", "AUC", "tampered_share"]].mean().round(4).to_dict()}
scores = pd.concat([scores, pd.DataFrame([mean])], ignore_index=True)
path = localize.resolve_path(model)
prov = S.provenance(models=[name], stride=stride, clustering="k-means on log2 Q1, "
                    "3x3 median, k by silhouette (>= 0.25), largest cluster = background", path=path,
                    donors=f"textured (splices.texture >= {splices.TEXTURE_MIN}), and one flat-donor case")
S.save_table(scores, "localization-scores", prov)
scores

# %%
flat = scores[scores["case"].eq(splices.FLAT_CASE[0])].iloc[0]
i = next(k for k, s in enumerate(examples) if s["flat"])
_, mask, qm, _ = maps[i]
inside = regions.region_summary(qm, mask, stride, examples[i]["splice"].qf1[0])
per = pd.DataFrame(rows)[textured].groupby("case", sort=False)["F1"].mean()
reach = " (they reach into the textured background around)" if inside["as_background"] > 0 else ""
Markdown(f"With textured donors the mean F1 is {mean['F1']:.3f} (MCC {mean['MCC']:.3f}, AUC {mean['AUC']:.3f}) over "
         f"{int(textured.sum())} splices; by case, F1 " + ", ".join(f"{v:.3f} for {c}" for c, v in per.items())
         + f". With the flat donors of the paper's printed example F1 is {flat['F1']:.3f}, "
         f"but their own first compression (QF1 {' and '.join(map(str, splices.FLAT_CASE[2]))}) is not what is seen: "
         f"of the windows centred in them, {inside['as_background']:.0%} answer the background's QF "
         f"{examples[i]['splice'].qf1[0]}{reach} and the others answer steps nearest QF "
         f"{inside['nearest_qf_of_rest']}. A region without texture has no AC coefficient, so any step fits it: it "
         "stands out only by lacking the background's trace, and a flat part of the background would stand out the "
         "same way.")

# %% [markdown]
# ## Figure 12: the Q1 maps
#
# One row per splice (the first of each case, the single-compressed donor of the paper's
# footnote 3 included, and the flat-donor one): the tampered image, the ground truth (one colour
# per donor, their QF1 in the legend), the maps of coefficients 1, 6 and 14, and the clusters,
# each in the colour of the true region it overlaps most.
# Each pixel of a map is the step q1 the estimator gives the 64x64 window centred nearest to it
# (one colour per integer step, scale on the colour bar); the true donor regions are outlined
# in red on the maps and on the clusters. The windows are taken every `stride` pixels (the set-up
# cell prints it; the paper uses 1), so each map is a grid of windows that many pixels apart,
# drawn at image size, and the figure's title says so.

# %%
show = [i for i, s in enumerate(examples) if s["index"] == 0 and not s["flat"]] + [
    i for i, s in enumerate(examples) if s["flat"]]  # the first splice of each case, the footnote-3 one included
fig, axes = plt.subplots(len(show), 6, figsize=(17, 3.6 * len(show)), squeeze=False)
drawn = []
for row, i in zip(axes, show):
    rgb, mask, qm, res = maps[i]
    label = f"{examples[i]['case']}\nQF1 {examples[i]['splice'].qf1}, QF2 {examples[i]['splice'].qf2}"
    drawn.append(figures.localization_row(row, rgb, mask, qm, res, stride, (1, 6, 14), label,
                                          qf1=examples[i]["splice"].qf1))
fig.suptitle(f"Figure 12 ({profile}): 64x64 windows every {stride} pixels (the paper: every pixel)", fontsize=11)
fig.tight_layout()
S.save_figure(fig, "figure12-localization", prov)
plt.show()

# %%
lines = []
for i, info in zip(show, drawn):
    _, mask, qm, _ = maps[i]
    c = regions.step_contrast(qm, mask, stride, [m["k"] for m in info])
    constant = [m["k"] for m in info if m["constant"]]
    lines.append(f"*{examples[i]['case']}*: inside the outlines "
                 + " / ".join(f"{v['inside']:.0%}" for v in c.values()) + " of the windows (k = "
                 + " / ".join(map(str, c)) + ") answer a step other than the background's usual "
                 + " / ".join(f"{v['usual']:g}" for v in c.values()) + ", against "
                 + " / ".join(f"{v['outside']:.0%}" for v in c.values()) + " outside"
                 + (f"; constant map: k = {', '.join(map(str, constant))}" if constant else ""))
n_const = sum(m["constant"] for info in drawn for m in info)
found = []
for i in show:
    _, mask, _, res = maps[i]
    truth = regions.truth_at_windows(mask, stride)
    sp = examples[i]["splice"]
    cover = regions.donor_cover(res["mask"], truth)
    donors = [d for d in cover if d > 0]
    missed = [d for d in donors if cover[d] < 0.5]
    found.append(f"*{examples[i]['case']}*: the clusters cover "
                 + ", ".join(f"{cover[d]:.0%} of the donor with QF1 {sp.qf1[d] if sp.qf1[d] is not None else 'none'}"
                             for d in donors)
                 + f" and {cover[0]:.0%} of the background"
                 + (f": they miss the donor{'s' if len(missed) > 1 else ''} with QF1 "
                    + ", ".join(str(sp.qf1[d]) for d in missed) if missed else ": every donor is found"))
Markdown("Row by row: " + "; ".join(lines) + f". {n_const} of {sum(len(x) for x in drawn)} maps are constant (one "
         "value everywhere, said on their colour bar and on the map): such a map shows nothing, the network gives "
         "that coefficient the same answer for every window. Where the share inside is far above the share "
         "outside, the donors stand out as blocks of their own colour inside the red outlines. The clusters on the "
         "right, row by row (a donor counts as found when its windows are mostly outside the background "
         "cluster): " + "; ".join(found) + ".")

# %% [markdown]
# ## Takeaways
#
# - A spliced JPEG's regions differ in their first compression, and per-window Q1 maps show them
#   where the donor has texture and a first step coarser than the last.
# - A flat donor has no AC coefficient to carry its own trace: it stands out only by lacking the
#   background's, and a flat part of the background would look the same.
# - Clustering the maps into a mask is this project's step (the paper stops at the maps); its
#   F1, MCC and AUC are in the table, per case.
#
# ## Exercises
#
# 1. Set `stride = 4` in the parameters cell (the paper uses 1; `qpaper localize` says up front
#    what a stride costs in memory and time). Do the F1 and MCC of the table change much?
#
# <details><summary>Answer</summary>
#
# A finer stride gives more windows per region (a map 4x denser per axis than at stride 8, 16x
# the windows), so the clustering sees the same regions with more samples and sharper edges;
# the scores, computed at the window centres, move by as much as the edges matter for a
# region's size. Compare the two tables row by row; with a handful of splices per case, a change
# of a few hundredths is within what another seed of splices would give.
# </details>
#
# 2. Which donor QF1s are found by the clusters and which are missed? Relate it to the
#    confusion matrix of notebook 3: can a donor with QF1 >= QF2 stand out at all?
#
# <details><summary>Answer</summary>
#
# The sentence under the figure lists, per row, the share of each donor covered by the clusters.
# A donor whose QF1 is at or above QF2 (95 over 90) has steps finer than the last ones: its comb
# is erased (notebook 1), the network answers its default table there (notebook 3's confusion
# matrix), and the donor can stand out only if that default differs from the background's answer,
# not because its QF1 was read. A donor with QF1 well below QF2 (65, 75, 85 over 90) leaves a comb.
# </details>
#
# 3. Run `qpaper localize` on one of your own JPEGs (`--stride 8 --out maps/`) and read
#    `summary.json`: how many clusters, and does it say the map cannot tell?
#
# <details><summary>Answer</summary>
#
# `summary.json` holds the number of clusters (1: nothing found), the files written and, where
# the content is too flat for any trace (fewer than 3 AC coefficients with 3 or more values),
# a line saying the map means nothing. A photo never edited should give one cluster; a
# screenshot or a gradient says it cannot tell.
# </details>
