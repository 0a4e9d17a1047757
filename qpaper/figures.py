"""The notebooks' set-up and figures: one :func:`setup` call per notebook, per-coefficient curves
where no method hides another, learning curves, Q1 maps with their scale and the true regions
outlined, the QF2 section of notebook 3, and the sentences that read a table or a figure.

Logic lives here and in the modules it calls (:mod:`qpaper.results`, :mod:`qpaper.experiments`,
:mod:`qpaper.regions`); the notebooks narrate. Every sentence function reads its numbers from
the result it describes, so the prose under a table stays true when the numbers change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .backend import import_backend_quietly

import_backend_quietly()  # notebooks import this module first; TensorFlow's C++ start-up lines would land in them
from . import experiments as ex  # noqa: E402 (these import Keras)
from . import paths, profiles, regions
from .jpeg import NC
from .losses import C
from . import narrate
from .narrate import paper_table
from . import results as rs

# Matplotlib defaults of every notebook figure (set by :func:`setup`).
STYLE = {"figure.dpi": 100, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
         "legend.fontsize": 8, "axes.spines.top": False, "axes.spines.right": False, "image.interpolation": "nearest"}
MARKERS = "osD^v<>p"
LINES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)))
PRIOR_STYLE = {"ls": (0, (4, 3)), "color": "0.4", "lw": 1.3, "marker": None}


# ---------------------------------------------------------------------------------------------
# Set-up

@dataclass(frozen=True)
class Setup:
    """What a notebook's set-up call returns: its profile and seed, the time it started (for the
    provenance of what it writes), and the datasets and models it made sure exist."""
    profile: str
    seed: int
    started: float
    datasets: tuple = ()
    models: tuple = ()

    def provenance(self, models=(), datasets=(), **extra) -> dict:
        """:func:`qpaper.results.provenance` of a result of this notebook."""
        return rs.provenance(self.profile, self.seed, self.started, models=models, datasets=datasets, **extra)

    def record(self, **extra) -> dict:
        """:func:`qpaper.provenance.record` of a result that uses no dataset or model."""
        return rs.record(self.profile, self.seed, self.started, **extra)

    def evaluation(self, model: str, dataset: str) -> pd.DataFrame:
        """:func:`qpaper.results.evaluation` on this profile (cached)."""
        return rs.evaluation(self.profile, model, dataset, seed=self.seed, progress=False)

    def save_table(self, df: pd.DataFrame, name: str, prov: dict):
        return rs.save_table(df, self.profile, name, prov)

    def save_figure(self, fig, name: str, prov: dict):
        return rs.save_figure(fig, self.profile, name, prov)


def setup(profile: str, seed: int = 0, datasets=(), models=(), style: bool = True) -> Setup:
    """The plumbing every notebook starts with: the figure style, the start time, the listed
    datasets built (``"all"``: every dataset of the profile) and the listed models trained, each
    only when missing (:func:`qpaper.experiments.build_datasets`, :func:`~qpaper.experiments.train_models`;
    a model's training set is built first when the model must be trained). Prints one line."""
    import matplotlib.pyplot as plt

    if style:
        plt.rcParams.update(STYLE)
    started = rs.now()
    names = list(profiles.datasets(profile, seed)) if datasets == "all" else list(datasets)
    models = list(models)
    missing = [m for m in models if not paths.model_path(profile, m).exists()]
    need = names + [profiles.MODELS[m][0] for m in missing if profiles.MODELS[m][0] not in names]
    quiet = _quiet_log()
    built = [n for n in need if (paths.dataset_dir(profile, n, seed) / "manifest.json").exists()]
    if built:  # a check that finds every shard in place: its progress lines say nothing
        ex.build_datasets(profile, seed, names=built, log=lambda *_: None, progress=False)
    if len(built) < len(need):
        ex.build_datasets(profile, seed, names=[n for n in need if n not in built], log=quiet)
    if models:
        ex.train_models(profile, seed, names=models, log=quiet)
    print(f"profile {profile}, seed {seed}: {len(names)} dataset(s) ready, {len(models)} model(s) ready"
          + (f" ({len(missing)} trained now: {', '.join(missing)})" if missing else ""))
    return Setup(profile, seed, started, tuple(names), tuple(models))


def _quiet_log():
    """A log that drops the routine 'dataset X: folder' and 'model X: ... exists' lines."""
    def log(line):
        s = str(line)
        if s.startswith("dataset ") or (s.startswith("model ") and " exists" in s):
            return
        print(s, flush=True)
    return log


# ---------------------------------------------------------------------------------------------
# Per-coefficient curves (Figures 3-10)

def _is_prior(label: str) -> bool:
    return str(label).startswith("constant prior")


def _mse_scale(ax, values) -> str:
    """Log scale when every MSE is positive, symmetric log (linear near 0) when some is 0."""
    from matplotlib.ticker import FuncFormatter, NullFormatter
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if not len(v) or v.max() <= 0:
        return "linear"
    if v.min() > 0:
        ax.set_yscale("log")
        scale = "log"
        # whole decades, so that the top and bottom of the axis carry a labelled tick
        ax.set_ylim(10 ** np.floor(np.log10(v.min())), 10 ** np.ceil(np.log10(v.max()) + 1e-9))
        decades = np.log10(v.max() / v.min())
        if decades < 4:  # few major ticks: label minor ones too (all within one decade, else 2 and 5)
            keep = range(1, 10) if decades < 1 else (2, 5)
            ax.yaxis.set_minor_formatter(FuncFormatter(
                lambda y, _: f"{y:g}" if y > 0 and round(y / 10 ** np.floor(np.log10(y))) in keep else ""))
        else:
            ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_yscale("symlog", linthresh=10 ** np.floor(np.log10(v[v > 0].min())))
        ax.set_ylim(bottom=0)
        scale = "symlog"
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    return scale


MSE_LABEL = {"log": "MSE (log scale)", "symlog": "MSE (log scale, 0 at the bottom)"}


def prior_style(label: str) -> dict:
    """A constant prior: a grey line without markers, dashed for the median, dotted for the mode."""
    return dict(PRIOR_STYLE, ls=":" if "mode" in label else PRIOR_STYLE["ls"], zorder=1)


def method_style(i: int) -> dict:
    """The line style of the i-th method of a figure: its own marker, line style and colour,
    hollow markers for every other one (so that a point hidden behind another still shows), the
    first method (the proposed one) thicker and on top."""
    return dict(marker=MARKERS[i % len(MARKERS)], ls=LINES[i % len(LINES)], color=f"C{i}",
                lw=2.0 if i == 0 else 1.2, ms=6.5 if i == 0 else 5.5, zorder=10 - i,
                mfc="none" if i % 2 else None, mew=1.4)


def draw_methods(acc_ax, mse_ax, lines: dict, methods: list, dodge: float) -> None:
    """Plot ``lines`` (label -> (x, accuracy, mse)) on the two axes: a constant prior in grey, the
    i-th of ``methods`` in :func:`method_style` and ``dodge`` to the side of x (so none hides
    another)."""
    n = len(methods)
    for label, (x, acc, mse) in lines.items():
        x = np.asarray(x, dtype=float)
        if _is_prior(label):
            style = prior_style(label)
        else:
            i = methods.index(label)
            x = x + (i - (n - 1) / 2) * dodge
            style = method_style(i)
        acc_ax.plot(x, acc, label=label, **style)
        mse_ax.plot(x, mse, label=label, **style)


def per_coefficient(curves: dict, title: str = "", axes=None, legend: bool = True, dodge: float = 0.12,
                    log_mse: bool = True):
    """Accuracy (top) and MSE (bottom) of each of the nc coefficients, one line per method, in the
    layout of Figures 3-10 (``curves``: label -> :func:`qpaper.results.per_coefficient` frame), drawn
    so that no curve hides another: each method has its own marker, line style and colour and
    sits ``dodge`` to the side of the coefficient (the first method, the proposed one, on top),
    the constant prior is a grey line (median dashed, mode dotted), and the MSE is on a log scale
    (a method at 1 and one at 2 stay apart when another reaches 80). The legend sits outside."""
    import matplotlib.pyplot as plt
    if axes is None:
        fig, axes = plt.subplots(2, 1, figsize=(8.8, 6), sharex=True)
    else:
        fig = axes[0].figure
    draw_methods(axes[0], axes[1], {k: (c["coefficient"], c["accuracy"], c["mse"]) for k, c in curves.items()},
                 [m for m in curves if not _is_prior(m)], dodge)
    axes[0].set_ylabel("accuracy (share exact)")
    axes[0].set_ylim(-0.03, 1.03)
    scale = _mse_scale(axes[1], np.concatenate([c["mse"].to_numpy(float) for c in curves.values()])) \
        if log_mse else "linear"
    axes[1].set_ylabel(MSE_LABEL.get(scale, "MSE"))
    axes[1].set_xlabel("DCT coefficient (zig-zag index); methods side by side")
    axes[1].set_xticks(range(1, NC + 1))
    if legend:
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    for a in axes:
        a.grid(alpha=0.3)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return fig


def curves_text(curves: dict, main: str | None = None) -> str:
    """Two sentences on a per-coefficient figure, read from its curves: on how many coefficients
    ``main`` (default: the first method) is the most accurate and has the lowest MSE among the
    methods, where its accuracy is lowest and highest, and whether it stays above the constant prior."""
    methods = [m for m in curves if not _is_prior(m)]
    main = main or methods[0]
    acc = pd.DataFrame({m: curves[m].set_index("coefficient")["accuracy"] for m in curves})
    mse = pd.DataFrame({m: curves[m].set_index("coefficient")["mse"] for m in curves})
    n = len(acc)
    a = acc[main]
    text = (f"Per coefficient, {main} has accuracy from {a.min():.2f} (coefficient {int(a.idxmin())}) "
            f"to {a.max():.2f} (coefficient {int(a.idxmax())})")
    others = [m for m in methods if m != main]
    if others:
        top = int((a >= acc[others].max(axis=1) - 1e-12).sum())
        low = int((mse[main] <= mse[others].min(axis=1) + 1e-12).sum())
        text += f"; it is the most accurate method on {top} of {n} coefficients and has the lowest MSE on {low} of {n}"
    if n >= 10:
        lo, hi = mse[main].iloc[:5].mean(), mse[main].iloc[-5:].mean()
        text += f". Its mean MSE is {lo:.2f} on the first five coefficients and {hi:.2f} on the last five"
    priors = [m for m in curves if _is_prior(m)]
    if priors:
        above = int((a > acc[priors].max(axis=1)).sum())
        text += f". It is above the constant prior's accuracy on {above} of {n} coefficients" + \
            (" (everywhere)" if above == n else " (no better than a constant on the others)" if above else
             ": no better than a constant anywhere")
    return text + "."


# ---------------------------------------------------------------------------------------------
# Tables of the comparison (Tables 1-4) and the sentences that read them

CLEAR = 0.01  # an AvgAcc difference smaller than this is "about the same" (one seed; see the notebooks' intervals)


def versus_prior(acc: float, priors: dict, what: str = "the best constant prior") -> str:
    """How an AvgAcc stands against the constant priors (label -> AvgAcc), naming the better one:
    above it, about level with it (within CLEAR), or below it: "no better than a constant"."""
    best = max(priors, key=priors.get)
    ref = f"{what} ({best}, {priors[best]:.3f})" if len(priors) > 1 or what == "the best constant prior" else \
        f"{what} ({priors[best]:.3f})"
    d = acc - priors[best]
    if d > CLEAR:
        return f"it is {d:.3f} above {ref}"
    if d >= -CLEAR:
        return f"it is level with {ref}: no better than a constant answer"
    return f"it is {-d:.3f} below {ref}: worse than a constant answer"


def best_constant(qf1s, nc: int = 15) -> dict:
    """The best single table for a set of QF1 values, chosen knowing them (an oracle: each
    coefficient takes the value most of their standard tables share, QF1 values weighing the
    same): {"q1": the table's first nc zig-zag steps, "AvgAcc", "AvgMSE"}. No method that ignores
    the image can beat it on those QF1 values; a CNN that only matches it has read nothing."""
    from . import jpeg
    tables = np.array([jpeg.zigzag(jpeg.standard_table(int(q)))[:nc] for q in qf1s])
    best = np.array([np.bincount(col).argmax() for col in tables.T])
    return {"q1": best, "AvgAcc": float((tables == best).mean()), "AvgMSE": float(((tables - best) ** 2).mean())}

def table_methods(table: pd.DataFrame) -> list:
    """The method labels of a :func:`qpaper.results.compare_per_qf1` table, in column order."""
    return [c[:-len(" AvgAcc")] for c in table.columns if c.endswith(" AvgAcc")]


def table_text(table: pd.DataFrame, main: str | None = None, paired: dict | None = None) -> str:
    """Two or three sentences on a :func:`qpaper.results.compare_per_qf1` table, read from its
    'all' row and its QF1 rows: the AvgAcc of ``main`` (default: the first method) against every
    other method and the constant prior, its AvgMSE rank, and the QF1 where it is weakest and
    strongest. ``paired`` (label -> :func:`qpaper.narrate.paired` of ``main`` minus that label):
    "ahead of", "behind" or "about the same as" each, by its interval (:func:`qpaper.narrate.compare`);
    without it, only where the point estimates rank, which is not a finding."""
    from .narrate import said
    methods = table_methods(table)
    main = main or methods[0]
    rows = table[table["qf1"].astype(str) != "all"].set_index("qf1")
    every = table[table["qf1"].astype(str) == "all"].iloc[0]
    acc = {m: float(every[f"{m} AvgAcc"]) for m in methods}
    mse = {m: float(every[f"{m} AvgMSE"]) for m in methods}
    others = [m for m in methods if m != main and not _is_prior(m)]
    priors = [m for m in methods if _is_prior(m)]
    text = f"Over all QF1 values, {main} gets AvgAcc {acc[main]:.3f}"
    if others or priors:
        text += " against " + ", ".join(f"{acc[m]:.3f} for {m}" for m in others + priors)
    if paired:
        text += ". Paired over the test images, it is " + "; ".join(
            said(paired[m], m) for m in others + priors if m in paired)
    else:
        above = [m for m in others + priors if acc[main] > acc[m]]
        text += (": the highest point estimate of the table" if len(above) == len(others + priors) else
                 f": a point estimate below that of {', '.join(m for m in others + priors if m not in above)}")
        text += " (no interval computed, so no ranking is claimed)"
    rank = sorted(methods, key=lambda m: mse[m]).index(main) + 1
    text += f". Its AvgMSE, {mse[main]:.3f}, is " + (
        "the lowest" if rank == 1 else
        f"{'the second' if rank == 2 else f'number {rank} from the'} lowest "
        f"({min(mse, key=mse.get)} has {min(mse.values()):.3f})")
    r = rows[f"{main} AvgAcc"].astype(float)
    if len(r) > 1:
        text += f". Its accuracy is lowest at QF1 {r.idxmin()} ({r.min():.3f}) and highest at QF1 {r.idxmax()} " \
                f"({r.max():.3f})"
    return text + "."


# the paper's numbering (qpaper.narrate.PAPER_TABLES): random shift, then aligned
SECTIONS = {90: {"tables": (paper_table(90, "random shift"), paper_table(90, "aligned")), "figures": (3, 4)},
            80: {"tables": (paper_table(80, "random shift"), paper_table(80, "aligned")), "figures": (6, 7)}}
CLASS_MODELS = ("class-Lr", "regression")
VARIANT = f"rgb input (the paper); loss Lr with c={C}, abs distance"


def comparison(profile: str, qf2: int, dataset: str, baselines: bool = False, seed: int = 0) -> dict:
    """label -> tidy evaluation of the proposed estimator, [10], the model-based methods (aligned
    sets: [7] and [5] on the known grid; random-shift sets: [5] with its grid estimated) and the
    constant prior on ``dataset`` (Section 5.1)."""
    return {rs.method_of(m): rs.evaluation(profile, m, dataset, seed=seed, progress=False)
            for m in comparison_models(qf2, baselines)}


def comparison_models(qf2: int, baselines: bool = False) -> list:
    return [f"qf2-{qf2}-{m}" for m in CLASS_MODELS] + list(rs.BASELINES if baselines else rs.GRID_BASELINES) \
        + [rs.prior(qf2)]


def qf2_comparison(s: Setup, qf2: int) -> dict:
    """One QF2 section of notebook 3 (Section 5.1): for the random-shift test set and the aligned
    one, the comparison (:func:`comparison`), its table (Table 1/3, 2/4) and its per-coefficient
    figure (Figure 3/6 on the non-aligned patches, 4/7 on the aligned ones), both saved. Returns
    ``{"random": part, "aligned": part}``, each part a dict with ``tidies``, ``table``,
    ``curves``, ``figure`` (closed: show it with ``display``), ``table_name``, ``figure_name``,
    ``preds`` (every patch's answer, label -> :func:`qpaper.results.predictions`) and ``paired``
    (label -> :func:`qpaper.narrate.paired` of the proposed estimator minus that method, over
    the test images: what :func:`table_text` needs to say ahead, behind or about the same)."""
    import matplotlib.pyplot as plt
    sec = SECTIONS[qf2]
    out = {}
    for j, (test, aligned) in enumerate((("random", False), ("aligned", True))):
        dataset = f"qf2-{qf2}-test" + ("-aligned" if aligned else "")
        what = "aligned" if aligned else "non-aligned"
        tidies = comparison(s.profile, qf2, dataset, baselines=aligned, seed=s.seed)
        prov = s.provenance(models=comparison_models(qf2, aligned), datasets=[dataset], variant=VARIANT)
        table = rs.compare_per_qf1(tidies)
        table_name = f"table{sec['tables'][j]}-qf2-{qf2}" + ("-aligned" if aligned else "")
        s.save_table(table, table_name, prov)
        curves = {m: rs.per_coefficient(t, aligned) for m, t in tidies.items()}
        fig = per_coefficient(curves, f"Figure {sec['figures'][j]}: QF2 {qf2}, {what} ({s.profile})")
        figure_name = f"figure{sec['figures'][j]}-qf2-{qf2}-{what}"
        s.save_figure(fig, figure_name, prov)
        plt.close(fig)
        preds = {rs.method_of(m): rs.predictions(s.profile, m, dataset, s.seed)
                 for m in comparison_models(qf2, aligned)}
        main = rs.method_of(f"qf2-{qf2}-class-Lr")
        paired = {m: narrate.paired(preds, main, m, seed=s.seed) for m in preds if m != main}
        out[test] = {"dataset": dataset, "tidies": tidies, "table": table, "curves": curves, "figure": fig,
                     "table_name": table_name, "figure_name": figure_name, "preds": preds, "paired": paired}
    return out


# ---------------------------------------------------------------------------------------------
# Learning curves (notebook 2)

def learning_curves(log: pd.DataFrame, prior: dict, title: str = ""):
    """Loss, accuracy and MSE of every row of a run's ``log.csv`` (one marker per epoch),
    training and held-out scenes, with the constant prior (median dashed, mode dotted) on the
    held-out patches; MSE on a log scale so that the trend stays visible under the prior's line."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    by_patches = "patches" in log
    x = log["patches"] / 1000 if by_patches else log["epoch"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    ylabels = {"loss": "loss (the run's objective)", "accuracy": "accuracy (share exact)", "mse": "MSE"}
    for ax, m in zip(axes, ("loss", "accuracy", "mse")):
        ax.plot(x, log[m], marker="o", label="training batches")
        if f"val_{m}" in log and log[f"val_{m}"].notna().any():
            ax.plot(x, log[f"val_{m}"], marker="s", mfc="none", ls="--", label="held-out scenes")
        if m != "loss":
            for kind, ls in (("median", (0, (4, 3))), ("mode", ":")):
                ax.axhline(prior[kind][m], color="0.45", ls=ls, label=f"constant prior ({kind})")
        ax.set_xlabel("patches seen (thousands)" if by_patches else "epoch")
        ax.set_ylabel(ylabels[m])
        if m == "mse":
            scale = _mse_scale(ax, np.concatenate([log[m].to_numpy(float), log.get("val_mse", log[m]).to_numpy(float),
                                                   [p["mse"] for p in prior.values()]]))
            ax.set_ylabel(MSE_LABEL.get(scale, "MSE"))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=10))  # readable for 8 epochs and for 100
        ax.grid(alpha=0.3)
    if len(log) < 3:
        axes[0].annotate(f"only {len(log)} epoch(s): no trend to read", (0.5, 0.5), xycoords="axes fraction",
                         ha="center", fontsize=9, color="C3")
    fig.legend(*axes[1].get_legend_handles_labels(), loc="lower center", ncol=4, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


# ---------------------------------------------------------------------------------------------
# Q1 maps (notebook 7, Figure 12)

def outline(ax, mask: np.ndarray, color: str = "red", lw: float = 1.4) -> None:
    """The outline of every true donor region (``mask == k``, k >= 1) on ``ax``, with a white halo."""
    import matplotlib.patheffects as pe
    for k in np.unique(mask):
        if k > 0:
            cs = ax.contour(mask == k, levels=[0.5], colors=[color], linewidths=lw)
            cs.set(path_effects=[pe.withStroke(linewidth=lw + 1.6, foreground="white")])


def q1_map(ax, qm: np.ndarray, mask: np.ndarray, k: int, stride: int, title: str | None = None,
           cmap: str = "viridis", color: str = "red") -> dict:
    """The map of coefficient ``k`` (1-based zig-zag index) of a Q1 map ``qm`` [rows, cols, nc]
    drawn at image size (:func:`qpaper.regions.to_pixels`) with one colour per integer step, a
    labelled colour bar and the true donor regions outlined. A constant map says so in its colour
    bar and on the map. Returns what it drew: ``k``, ``min``, ``max``, ``steps`` (distinct
    values), ``constant``."""
    import matplotlib.colors as mcolors
    from matplotlib.ticker import MaxNLocator
    img = regions.to_pixels(qm[..., k - 1], mask.shape, stride)
    lo, hi = int(img.min()), int(img.max())
    constant = lo == hi
    cm = _colormap(cmap)
    norm = mcolors.BoundaryNorm(np.arange(lo - 0.5, hi + 1.5), cm.N)
    h = ax.imshow(img, cmap=cm, norm=norm, interpolation="nearest")
    cb = ax.figure.colorbar(h, ax=ax, fraction=0.046, pad=0.02)
    if constant:
        cb.set_ticks([lo])
        cb.set_label(f"estimated q1, coefficient {k}: constant {lo}", fontsize=8)
        ax.text(0.5, 0.5, f"constant map:\nq1 = {lo} everywhere", transform=ax.transAxes, ha="center", va="center",
                fontsize=8, bbox=dict(boxstyle="round", fc="white", alpha=0.8))
    else:
        cb.locator = MaxNLocator(integer=True, nbins=6)
        cb.update_ticks()
        cb.set_label(f"estimated q1 of coefficient {k}", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    outline(ax, mask, color)
    ax.set_title(title or f"QM(:, :, {k})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return {"k": k, "min": lo, "max": hi, "steps": int(len(np.unique(img))), "constant": constant}


def _colormap(cmap):
    import matplotlib
    return matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap


def localization_row(row, rgb: np.ndarray, mask: np.ndarray, qm: np.ndarray, res: dict, stride: int,
                     coefficients=(1, 6, 14), label: str = "", qf1=None) -> list:
    """One row of Figure 12 on six axes: the tampered image, the ground truth (one colour per
    donor; with ``qf1``, the background's then each donor's QF1, a legend naming them), the Q1
    maps of ``coefficients`` (:func:`q1_map`) and the clusters of :func:`qpaper.regions.cluster`
    in the colour of the true region each overlaps most (:func:`qpaper.regions.match_labels`),
    the true regions outlined on the last four. Returns the :func:`q1_map` summaries."""
    import textwrap

    import matplotlib.patches as mpatches
    import matplotlib.pyplot as plt
    colours = plt.get_cmap("tab10")
    row[0].imshow(rgb)
    row[0].set_title("\n".join(textwrap.fill(part, 36) for part in label.split("\n")), fontsize=8)
    row[1].imshow(mask, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
    row[1].set_title("ground truth", fontsize=8)
    if qf1 is not None:
        names = [f"background: QF1 {qf1[0]}"] + [
            f"donor {d}: " + (f"QF1 {q}" if q is not None else "never compressed before") for d, q in enumerate(qf1[1:], 1)]
        row[1].legend(handles=[mpatches.Patch(color=colours(d), label=n) for d, n in enumerate(names)],
                      loc="upper center", bbox_to_anchor=(0.5, -0.02), fontsize=7, frameon=False)
    info = [q1_map(ax, qm, mask, k, stride) for ax, k in zip(row[2:2 + len(coefficients)], coefficients)]
    ax = row[2 + len(coefficients)]
    matched = regions.match_labels(res["labels"], regions.truth_at_windows(mask, stride))
    ax.imshow(regions.to_pixels(matched, mask.shape, stride), cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
    outline(ax, mask, "red")
    ax.set_title(f"clusters (k = {res['k']}) in the colour of the true\nregion each overlaps most; truth outlined",
                 fontsize=8)
    for a in (row[0], row[1], ax):
        a.set_xticks([])
        a.set_yticks([])
    return info


# ---------------------------------------------------------------------------------------------
# Histograms (notebook 1)

def comb_gaps(bins: np.ndarray, counts: np.ndarray, span: int = 8) -> list:
    """The bins within ``span`` steps of 0 (0 excluded) whose count is below a quarter of the
    mean of their two neighbours: the empty teeth of a double-quantization comb."""
    c = np.asarray(counts, float)
    neighbours = (np.roll(c, 1) + np.roll(c, -1)) / 2
    b = np.asarray(bins)
    keep = (np.abs(b) <= span) & (b != 0) & (c < 0.25 * neighbours)
    return b[keep].tolist()


# ---------------------------------------------------------------------------------------------
# Figure 11 (notebook 6)

def per_quality(table: pd.DataFrame, title: str = "", dodge: float = 0.06):
    """Figure 11: AvgAcc (top) and AvgMSE (bottom) per Photoshop quality of the first compression,
    aligned (left) and non-aligned (right), one line per method of ``table`` (columns ``first
    compression``, ``method``, ``ps_quality``, ``AvgAcc``, ``AvgMSE``), drawn like
    :func:`per_coefficient`: own marker, line style and colour, side by side, prior dashed grey,
    MSE on a log scale, legend outside."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(12, 6.2), sharex=True)
    methods = [m for m in table["method"].unique() if not _is_prior(m)]
    for col, what in enumerate(("aligned", "non-aligned")):
        part = table[table["first compression"] == what]
        lines = {label: (np.arange(len(s)), s["AvgAcc"], s["AvgMSE"])
                 for label, s in ((m, part[part["method"] == m]) for m in part["method"].unique())}
        draw_methods(axes[0, col], axes[1, col], lines, methods, dodge)
        s = part[part["method"] == part["method"].unique()[0]]
        axes[1, col].set_xticks(np.arange(len(s)), [str(q).upper() for q in s["ps_quality"]])
        axes[0, col].set_title(what, fontsize=9)
        axes[0, col].set_ylim(-0.03, 1.03)
        axes[0, col].set_ylabel("AvgAcc")
        scale = _mse_scale(axes[1, col], part["AvgMSE"].to_numpy(float))
        axes[1, col].set_ylabel("Avg" + MSE_LABEL.get(scale, "MSE"))
        axes[1, col].set_xlabel("Photoshop quality of the first compression")
        for a in axes[:, col]:
            a.grid(alpha=0.3)
    axes[0, 1].legend(*axes[0, 0].get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      frameon=False)  # the aligned panel has every method
    if title:  # once, above both columns (a long title per panel ran into its neighbour's)
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def sample_patches(dataset_dir, n: int = 6, seed: int = 0) -> list:
    """``n`` patches of a built dataset with as many distinct QF1 values as it has (one QF1 per
    patch, drawn in order of the QF1 list, a seeded patch of each), for notebook 1: dicts with
    ``x`` (the patch), ``qf1`` (its label), ``qf2``, ``shift`` (r, c) and ``aligned``."""
    from .dataset import open_dataset
    d = open_dataset(dataset_dir, verify=False)
    names = d["manifest"]["qf1"]
    rng = np.random.default_rng(seed)
    where = {}  # QF1 index -> [(shard, row), ...]
    for k, meta in enumerate(d["meta"]):
        for j in np.unique(meta["qf1"]):
            where.setdefault(int(j), []).append((k, np.flatnonzero(meta["qf1"] == j)))
    qf1s = sorted(where)
    pick = [qf1s[i] for i in np.sort(rng.choice(len(qf1s), size=min(n, len(qf1s)), replace=False))]
    pick += list(rng.choice(qf1s, size=n - len(pick)))  # fewer QF1 values than patches: repeat some
    out = []
    for j in pick:
        k, rows = where[j][rng.integers(len(where[j]))]
        i = int(rng.choice(rows))
        m = d["meta"][k][i]
        out.append({"x": np.asarray(d["x"][k][i]), "qf1": names[j], "qf2": int(m["qf2"]),
                    "shift": (int(m["r"]), int(m["c"])), "aligned": bool(m["aligned"])})
    return out


# ---------------------------------------------------------------------------------------------
# Calibration (issue 21): does a confidence of 0.8 mean right 8 times in 10?

def reliability_figure(curves: dict, path=None):
    """Reliability diagram: per curve (name -> :func:`qpaper.wild.reliability` table) the accuracy
    of the answers in each confidence bin against the bin's mean confidence (the diagonal is a
    calibrated confidence), with the share of answers per bin below. Saved to ``path`` when
    given (written to a temporary name, then renamed); returns the figure."""
    import matplotlib.pyplot as plt

    from .calibration import ece_of
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(4.6, 5.2), sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    ax.plot([0, 1], [0, 1], **PRIOR_STYLE, label="calibrated")
    width = 0.8 / max(1, len(curves)) / 10
    for i, (name, r) in enumerate(curves.items()):
        e, r = ece_of(r), r[r["count"] > 0]
        ax.plot(r["confidence"], r["accuracy"], **method_style(i), label=f"{name} (ECE {e:.3f})")
        bx.bar(r["lo"] + 0.01 + i * width + width / 2, r["count"] / r["count"].sum(), width=width, color=f"C{i}")
    ax.set(ylabel="accuracy of the answers", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left", frameon=False)
    bx.set(xlabel="confidence (averaged probability of the answer)", ylabel="share")
    fig.tight_layout()
    if path is not None:
        import io
        from pathlib import Path

        from .paths import atomic_write_bytes
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        atomic_write_bytes(Path(path), buf.getvalue())
    return fig


def same_table(r, c, nc: int = NC) -> bool:
    """Whether QF ``r`` and QF ``c`` have the same first nc zig-zag steps (QF 97-100 share 1 1 ... 1,
    so an answer nearest QF 100 for a true QF1 of 98 is right); non-QF rows compare as names."""
    from . import jpeg
    if not (str(r).isdigit() and str(c).isdigit()):
        return str(r) == str(c)
    return bool((jpeg.zigzag(jpeg.standard_table(int(r)))[:nc] == jpeg.zigzag(jpeg.standard_table(int(c)))[:nc]).all())


def confusion_figure(conf: pd.DataFrame, title: str = "", ax=None, label: str = "share of the row's patches",
                     same=None):
    """A QF1 confusion (:func:`qpaper.results.qf1_confusion`) as a heat map: rows the true QF1,
    columns the standard QF nearest to the estimated table, each cell the share of the row's
    patches (printed where at least 0.05); the cells where the estimate is right are outlined:
    ``same(row, column)`` says so (default: the two QFs have the same first 15 steps, so ties
    among QF 97-100, which the nearest-QF rule gives to 100, count as right)."""
    same = same or same_table
    import matplotlib.pyplot as plt
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.2 + 0.42 * conf.shape[1], 1.0 + 0.36 * conf.shape[0]))
    else:
        fig = ax.figure
    im = ax.imshow(conf.values, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(conf.shape[1]), [str(c) for c in conf.columns], rotation=90)
    ax.set_yticks(range(conf.shape[0]), [str(r) for r in conf.index])
    ax.set_xlabel(conf.columns.name or "estimated")
    ax.set_ylabel(conf.index.name or "true")
    for i, r in enumerate(conf.index):
        for j, c in enumerate(conf.columns):
            v = conf.iloc[i, j]
            if v >= 0.05:
                ax.text(j, i, f"{v:.2f}".lstrip("0"), ha="center", va="center", fontsize=7,
                        color="white" if v > 0.6 else "black")
            if same(r, c):
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="crimson", lw=1.2))
    fig.colorbar(im, ax=ax, fraction=0.04, label=label)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def patches_of(dataset_dir, index) -> np.ndarray:
    """Patches of a built dataset by their position in it (the order of :func:`qpaper.results.predictions`)."""
    from .dataset import open_dataset
    d = open_dataset(dataset_dir, verify=False)
    starts = np.concatenate([[0], np.cumsum([len(a) for a in d["x"]])])
    out = []
    for i in np.asarray(index).ravel():
        s = int(np.searchsorted(starts, i, side="right") - 1)
        out.append(np.asarray(d["x"][s][int(i) - starts[s]]))
    return np.stack(out)


def block_softmax(model, x, k: int) -> np.ndarray:
    """The class head's softmax of coefficient ``k`` (1-based zig-zag) for patches ``x``:
    [patches, q_max[k-1]], column j the probability of step j + 1 (Section 3.1, Figure 1)."""
    from .jpeg import blocks, q_max
    pred = np.asarray(model.predict_on_batch(np.asarray(x, "float32")))
    a, b = blocks(q_max(NC))[k - 1]
    return pred[:, a:b]


def expected_distance(probs: np.ndarray, truth) -> np.ndarray:
    """f(x)^T d_y of Eq. 5 for one coefficient: the mean distance |j - q1| under each softmax row."""
    steps = np.arange(1, probs.shape[1] + 1)
    return (probs * np.abs(steps[None] - np.asarray(truth)[:, None])).sum(1)


def softmax_figure(probs: dict, truth, k: int, titles=None):
    """One panel per patch: the softmax of coefficient ``k`` of each model (label -> [patches,
    steps] from :func:`block_softmax`) as bars side by side, the true step marked."""
    import matplotlib.pyplot as plt
    labels = list(probs)
    n = len(truth)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 2.8), sharey=True, squeeze=False)
    for i, ax in enumerate(axes[0]):
        steps = np.arange(1, probs[labels[0]].shape[1] + 1)
        w = 0.8 / len(labels)
        for j, lab in enumerate(labels):
            ax.bar(steps + (j - (len(labels) - 1) / 2) * w, probs[lab][i], width=w, label=lab, color=f"C{j}")
        ax.axvline(truth[i], color="crimson", lw=1.2, ls=":", label="true step")
        ax.set_xticks(steps)
        ax.set_xlabel(f"step of coefficient {k}")
        ax.set_title(titles[i] if titles else f"patch {i + 1}", fontsize=9)
    axes[0, 0].set_ylabel("probability")
    axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    fig.tight_layout()
    return fig
