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
# objects, so the donor rectangles are cut where the donor has texture (`localize.texture`);
# one more splice repeats the first example with the flat donors the paper's Figure 12 shows (a
# uniform grey and a uniform light-blue square). A flat area has no AC coefficient, so no trace
# of its own first compression exists in it: whatever the map shows there is not its QF1, and
# the mean scores leave that case out.
#
# The maps use the dense path when the model has the block-DCT backbone: the front end's
# features are computed once per pixel position and shared by the windows, which gives the
# per-window numbers (`make bench` measures the agreement).

# %% tags=["parameters"]
profile = "smoke"
seed = 0
per_case = None  # splices per case (None: the profile's)
stride = None  # window stride (None: the profile's; the paper uses 1)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from qpaper import experiments as ex
from qpaper import jpeg, localize
from qpaper import results as rs
from qpaper.train import load_model

from qpaper.profiles import get_profile

started = rs.now()
stride = stride or get_profile(profile)["localize"]["stride"]
per_case = per_case or get_profile(profile)["localize"]["per_case"]
name = "qf2-90-class-Lr"
ex.build_datasets(profile, seed, names=[ex.MODELS[name][0]])
ex.train_models(profile, seed, names=[name])
model = load_model(ex.model_path(profile, name))
splices = localize.splice_set(profile, seed, per_case=per_case)
print(len(splices), "splices;", [(s["case"], s["splice"].mask.shape) for s in splices])

# %%
rows, maps = [], []
for s in splices:
    sp = s["splice"]
    rgb = jpeg.decode(sp.jpeg)
    qm, conf = localize.qmap(model, rgb, stride, progress=False, path="auto")
    res = localize.cluster(qm, seed=seed)
    truth = localize.truth_at_windows(sp.mask, stride)
    sc = localize.scores(res["mask"], truth > 0, res["score"])
    rows.append({"case": s["case"], "splice": s["index"], "qf1": str(sp.qf1), "qf2": sp.qf2,
                 "shift": str(sp.shift), "clusters": res["k"], "donors": int(sp.mask.max()), **sc})
    maps.append((rgb, sp.mask, qm, res))
scores = pd.DataFrame(rows)
textured = ~scores["case"].eq(localize.FLAT_CASE[0])
mean = {"case": "mean (textured donors)", **{c: "" for c in scores.columns if c != "case"},
        **scores[textured][["F1", "MCC", "AUC", "tampered_share"]].mean().round(4).to_dict()}
scores = pd.concat([scores, pd.DataFrame([mean])], ignore_index=True)
path = "dense" if localize.is_dct(model) else "exact"
prov = rs.provenance(profile, seed, started, models=[name], stride=stride, clustering="k-means on log2 Q1, "
                     "3x3 median, k by silhouette (>= 0.25), largest cluster = background", path=path,
                     donors=f"textured (localize.texture >= {localize.TEXTURE_MIN}), and one flat-donor case")
rs.save_table(scores, profile, "localization-scores", prov)
scores

# %%
from IPython.display import Markdown

flat = scores[scores["case"].eq(localize.FLAT_CASE[0])].iloc[0]
i = next(k for k, s in enumerate(splices) if s["flat"])
_, mask, qm, _ = maps[i]
inside = localize.region_summary(qm, mask, stride, splices[i]["splice"].qf1[0])
Markdown(f"With textured donors the mean F1 is {mean['F1']:.3f} (MCC {mean['MCC']:.3f}, AUC {mean['AUC']:.3f}) over "
         f"{int(textured.sum())} splices. With the flat donors of the paper's printed example F1 is {flat['F1']:.3f}, "
         f"but their own first compression (QF1 {' and '.join(map(str, localize.FLAT_CASE[2]))}) is not what is seen: of the windows centred in them, "
         f"{inside['as_background']:.0%} answer the background's QF {splices[i]['splice'].qf1[0]} (they reach into the textured "
         f"background around) and the others answer steps nearest QF {inside['nearest_qf_of_rest']}. A region without texture has no AC "
         "coefficient, so any step fits it: it stands out only by lacking the background's trace, and a flat part of "
         "the background would stand out the same way.")

# %% [markdown]
# Figure 12 layout: the tampered image, the ground truth (one colour per donor), the maps of
# coefficients 1, 6 and 14, and the clustering.

# %%
show = [i for i, s in enumerate(splices) if s["index"] == 0][:2] + [i for i, s in enumerate(splices) if s["flat"]]
fig, axes = plt.subplots(len(show), 6, figsize=(16, 3.1 * len(show)), squeeze=False)
for row, i in zip(axes, show):
    rgb, mask, qm, res = maps[i]
    panels = [(rgb, None, "tampered image"), (mask, "tab10", "ground truth")]
    panels += [(localize.to_pixels(qm[..., k - 1], mask.shape, stride), "viridis", f"QM(:, :, {k})") for k in (1, 6, 14)]
    panels.append((localize.to_pixels(res["labels"], mask.shape, stride), "tab10", f"clusters (k = {res['k']})"))
    for ax, (im, cmap, title) in zip(row, panels):
        h = ax.imshow(im, cmap=cmap, interpolation="nearest", **({"vmin": 0, "vmax": 9} if cmap == "tab10" else {}))
        if cmap == "viridis":  # the estimated step, with its scale and the true regions outlined
            fig.colorbar(h, ax=ax, fraction=0.046, pad=0.02)
            ax.contour(mask > 0, levels=[0.5], colors="white", linewidths=0.8)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    row[0].set_ylabel(splices[i]["case"], fontsize=8)
    row[0].set_title(f"{splices[i]['case']}\nQF1 {splices[i]['splice'].qf1}, QF2 90", fontsize=8)
fig.tight_layout()
rs.save_figure(fig, profile, "figure12-localization", prov)
