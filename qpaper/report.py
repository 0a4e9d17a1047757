"""What README.md says of the results (``qpaper report readme``): every number of ours linked to the
table it comes from, the claims checked against the tables, and the transcript of ``qpaper estimate``
on a double JPEG made outside the dataset code (``qpaper report example``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from .provenance import record, write_sidecar
from .paths import ROOT, atomic_write_bytes, processed_dir, results_dir


BEGIN, END = "<!-- results:begin (qpaper report readme) -->", "<!-- results:end -->"


def _link(value, path: str) -> str:
    return f"[{value}]({path})"


def gpu_rows(root: Path) -> list[str]:
    """The paper's DenseNet-40 trained on lent GPUs (issues 13, 22): the registered run's rows from
    its eval.json, or, while no run has learned, the last session's measured negative result
    (results/gpu/*/eval.json); the mini rows untouched."""
    from .gpurun import committed_run
    run = committed_run("densenet")
    if (run / "eval.json").exists():
        src = "models/gpu/qf2-90-class-Lr/model-card.md"
        ev = json.loads((run / "eval.json").read_text())
        depth = json.loads((run / "config.json").read_text())["depth"]
        who = f"paper model (DenseNet-{depth}), GPU, {ev['patches_seen']:,} patches seen"
    else:
        tried = sorted(p.parent for p in (Path(root) / "results" / "gpu").glob("*/eval.json"))
        if not tried:
            return ["| paper model (DenseNet-40) on a lent GPU | not trained yet (`scripts/gpu_train.sh` is ready) "
                    "| – | – | – | – |"]
        run = tried[-1]
        src = f"results/gpu/{run.name}/README.md"
        ev = json.loads((run / "eval.json").read_text())
        who = (f"paper model (DenseNet-40), GPU session {run.name[:10]}, {ev['patches_seen']:,} patches: "
               f"**did not learn** (measured negative result)")
    out = []
    for test, table in (("random shift", 1), ("aligned", 2)):
        m, p = ev[test]["model"], ev[test]["prior"]
        cells = [_link(f"{v:.4f}", src) for v in (m["AvgAcc"], m["AvgMSE"], p["AvgAcc"], p["AvgMSE"])]
        out.append(f"| Table {table} setting: QF2 90, {test}, wallpaper test scenes, QF1 60..98 | {who} | "
                   f"{cells[0]} | {cells[1]} | – | – |")
        out.append(f"| the same | constant prior of that training set | {cells[2]} | {cells[3]} | – | – |")
    return out


def results_markdown(profile: str, root: Path) -> str:
    """The README's results section: every number of ours linked to the table it comes from,
    the paper's published number beside it where the text gives one."""
    from .results import PAPER
    tables = results_dir(profile, root) / "tables"
    prov = json.loads((tables / "tables1-4-summary.csv.provenance.json").read_text())
    rel = lambda name: f"results/{profile}/tables/{name}"  # noqa: E731
    lines = [f"Profile **{profile}**, seed {prov['seed']}, commit `{prov['git_commit'][:12]}`, "
             f"{prov['hardware']}; every number links to its table (each has a `.provenance.json` sidecar). "
             "The paper's numbers are those its text prints; its Tables 1-4 are images and are not quoted.", "",
             "| experiment | method | AvgAcc (ours) | AvgMSE (ours) | AvgAcc (paper) | AvgMSE (paper) |",
             "|---|---|---|---|---|---|"]
    timings = results_dir(profile, root) / "notebooks" / "timings.csv"
    if timings.exists():
        t = pd.read_csv(timings)
        minutes = f"{t['seconds'].sum() / 60:.1f} min"
        lines[0] += (f" The {len(t)} notebooks ran in {_link(minutes, f'results/{profile}/notebooks/timings.csv')}"
                     " (evaluations that an earlier run cached in `data/processed/evaluations` are read, not"
                     " recomputed; the quick start's row gives a fresh clone's time).")
    s = pd.read_csv(tables / "tables1-4-summary.csv")
    for r in s.itertuples():
        src = rel(f"tables1-4-summary.md")
        lines.append(f"| Table {r.table}: QF2 {r.qf2}, {r.test} | {r.method} | {_link(f'{r.AvgAcc:.4f}', src)} | "
                     f"{_link(f'{r.AvgMSE:.4f}', src)} | – | – |")
    lines += gpu_rows(root)
    for name in ("loss-ablation", "generalization"):
        t = pd.read_csv(tables / f"{name}.csv")
        ours = t[~t["source"].str.startswith("paper")]
        for r in ours.itertuples():
            pa = PAPER.get((r.experiment, r.method))
            pa_acc, pa_mse = (f"{pa[0]}", f"{pa[1]}") if pa else ("–", "–")
            src = rel(f"{name}.md")
            lines.append(f"| {r.experiment} | {r.method} | {_link(f'{r.AvgAcc:.4f}', src)} | "
                         f"{_link(f'{r.AvgMSE:.4f}', src)} | {pa_acc} | {pa_mse} |")
    lines += wild_markdown(profile, root)
    claimed = claims_markdown(profile, root)
    if claimed:
        lines += ["", claimed]
    loc = tables / "localization-scores.csv"
    if loc.exists():
        t = pd.read_csv(loc, keep_default_na=False)
        src = rel("localization-scores.md")
        lines += ["", "Tampering localization (notebook 7; the paper shows maps only, Figure 12, so there is no "
                  "published number to compare): clustering of the proposed estimator's Q1 maps on generated "
                  "splices, scored at the window centres.", "",
                  "| splices | F1 | MCC | AUC |", "|---|---|---|---|"]
        for r in t.itertuples():
            label = r.case if r.case.startswith("mean") else f"{r.case} #{r.splice}, QF1 {r.qf1}"
            lines.append(f"| {label} | {_link(r.F1, src)} | {_link(r.MCC, src)} | {_link(r.AUC, src)} |")
    return "\n".join(lines) + "\n"


def wild_markdown(profile: str, root: Path) -> list[str]:
    """The any-QF2 estimator's rows (notebook 8): beside Tables 1-4, and by first-table family
    (held-out scenes; the families it never trained on marked), with its calibration error."""
    tables = results_dir(profile, root) / "tables"
    if not (tables / "wild-families.csv").exists():
        return []
    rel = lambda name: f"results/{profile}/tables/{name}"  # noqa: E731
    lines = []
    if (tables / "wild-qf2.csv").exists():
        q = pd.read_csv(tables / "wild-qf2.csv")
        for r in q[q["method"].str.startswith("any-QF2")].itertuples():
            lines.append(f"| Table {r.table}: QF2 {r.qf2}, {r.grid} | {r.method} | {_link(f'{r.AvgAcc:.4f}', rel('wild-qf2.md'))} "
                         f"| {_link(f'{r.AvgMSE:.4f}', rel('wild-qf2.md'))} | – | – |")
    f = pd.read_csv(tables / "wild-families.csv")
    methods = list(dict.fromkeys(f["method"]))
    src = rel("wild-families.md")
    lines += ["", "The any-QF2 estimator of `qpaper estimate` (notebook 8, not in the paper) by family of first tables, "
              "patches of held-out scenes, every last table drawn from IJG 60..98 (30% perturbed), given to each method; "
              "AvgAcc through the wide head's classes, ECE of the any-QF2 model's confidence. Families marked * were "
              "never trained on.", "",
              "| first tables | grid | " + " | ".join(methods) + " | ECE |", "|---|---|" + "---|" * (len(methods) + 1)]
    for (fam, grid), g in f.groupby(["family", "grid"], sort=False):
        acc = g.set_index("method")["AvgAcc"]
        ece = g["ECE"].dropna()
        lines.append(f"| {fam}{'' if bool(g['seen'].iloc[0]) else ' *'} | {grid} | "
                     + " | ".join(_link(f"{acc[m]:.3f}", src) for m in methods)
                     + f" | {_link(f'{ece.iloc[0]:.3f}', src) if len(ece) else '–'} |")
    return lines


def claims(profile: str, root: Path) -> list[dict]:
    """The paper's comparative claims, each checked on this profile's tables: the class head
    ahead of the regression head of [10] in AvgAcc (Tables 1-4), Lr below L in AvgMSE (Section
    3.2), the proposed estimator ahead of [7] on aligned patches (Tables 2, 4) and of [5] with
    its own grid estimate on random shifts (Tables 1, 3), and every CNN ahead of the constant
    prior (whether it learned at all)."""
    tables = results_dir(profile, root) / "tables"
    s = pd.read_csv(tables / "tables1-4-summary.csv")
    get = lambda t, m, c="AvgAcc": s[(s["table"] == t) & (s["method"] == m)][c]  # noqa: E731
    tests = {1: "qf2-90-test", 2: "qf2-90-test-aligned", 3: "qf2-80-test", 4: "qf2-80-test-aligned"}
    boot = pd.concat([pd.read_csv(f) for f in sorted(tables.glob("bootstrap-qf2-*.csv"))] or [pd.DataFrame(
        columns=["method", "test", "diff low", "diff high"])], ignore_index=True)
    out = []

    def interval(t, other):
        """The paired bootstrap interval of proposed minus ``other`` in AvgAcc on Table t's test
        set (over its images), where notebook 3 computed one (its table holds ``other`` minus
        proposed)."""
        r = boot[(boot["test"] == tests.get(t)) & (boot["method"] == other)]
        return (-float(r["diff high"].iloc[0]), -float(r["diff low"].iloc[0])) if len(r) else None

    def add(claim, where, a, b, better="higher", metric="AvgAcc", table=None, paired=None):
        if len(a) and len(b):
            x, y = float(a.iloc[0]), float(b.iloc[0])
            ours = f"{metric} {x:.4f} vs {y:.4f}"
            if paired is None:  # no interval: the point estimates only, said so
                holds = ("point estimate " + ("as claimed" if (x > y if better == "higher" else x < y) else "against it")
                         + " (no interval)")
            else:
                lo, hi = paired
                ours += f", difference {x - y:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                holds = "yes" if lo > 0 else "no" if hi < 0 else "about the same"
            out.append({"claim": claim, "paper": where, "ours": ours, "holds": holds,
                        "table": table or "tables1-4-summary.md"})
    for t, what in ((1, "QF2 90, random shift"), (2, "QF2 90, aligned"), (3, "QF2 80, random shift"),
                    (4, "QF2 80, aligned")):
        add(f"{what}: proposed above the constant prior", "-", get(t, "proposed"), get(t, "constant prior (median)"),
            paired=interval(t, "constant prior (median)"))
        add(f"{what}: class head ahead of [10]", f"Table {t}", get(t, "proposed"), get(t, "[10]"),
            paired=interval(t, "[10]"))
        add(f"{what}: proposed ahead of [10] in AvgMSE", f"Table {t}", get(t, "proposed", "AvgMSE"),
            get(t, "[10]", "AvgMSE"), better="lower", metric="AvgMSE")
        if t in (2, 4):
            add(f"{what}: proposed ahead of [7]", f"Table {t}", get(t, "proposed"), get(t, "[7]"))
        else:
            add(f"{what}: proposed ahead of [5] (grid estimated)", f"Table {t}", get(t, "proposed"),
                get(t, "[5], grid estimated"))
    abl = tables / "loss-ablation.csv"
    if abl.exists():
        a = pd.read_csv(abl)
        ours = a[~a["source"].str.startswith("paper")]
        m = lambda name, c: ours[ours["method"] == name][c]  # noqa: E731
        add("QF2 90: Lr below L in AvgMSE", "Section 3.2", m("class head, loss Lr", "AvgMSE"),
            m("class head, loss L", "AvgMSE"), better="lower", metric="AvgMSE", table="loss-ablation.md")
    return out


def claims_markdown(profile: str, root: Path) -> str:
    rows = claims(profile, root)
    if not rows:
        return ""
    lines = ["The paper's comparisons, checked on these tables: \"yes\" only where the paired bootstrap interval "
             "over the test images (notebook 3, 95%) excludes 0, \"about the same\" where it holds 0; where no "
             "interval was computed, whether the point estimates go the claimed way, said as such:",
             "", "| claim | paper | ours | holds |", "|---|---|---|---|"]
    for r in rows:
        src = f"results/{profile}/tables/{r['table']}"
        lines.append(f"| {r['claim']} | {r['paper']} | {_link(r['ours'], src)} | {r['holds']} |")
    return "\n".join(lines)


EX_BEGIN, EX_END = "<!-- estimate:begin (qpaper report example) -->", "<!-- estimate:end -->"


def _replace_block(text: str, begin: str, end: str, body: str) -> str:
    if begin not in text or end not in text:
        raise ValueError(f"README.md lacks the markers {begin} ... {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + begin + "\n" + body + end + tail


def update_readme(profile: str, root: Path | None = None) -> None:
    root = Path(root or ROOT)
    readme = root / "README.md"
    text = _replace_block(readme.read_text(), BEGIN, END, results_markdown(profile, root))
    example = results_dir(profile, root) / "estimate-example.txt"
    if EX_BEGIN in text and example.exists():
        body = (f"Made by `qpaper report example --profile {profile}` "
                f"([transcript]({example.relative_to(root)}), with provenance):\n\n```console\n"
                + example.read_text() + "```\n")
        text = _replace_block(text, EX_BEGIN, EX_END, body)
    atomic_write_bytes(readme, text.encode())


def estimate_example(profile: str, root: Path | None = None, seed: int = 0) -> Path:
    """A double JPEG made outside the dataset code (coffee.png: Pillow at QF1 70, then OpenCV at
    QF2 90), estimated by the default of ``qpaper estimate`` (the file-level estimator) and by
    [7]; then one with a held-out real first table under QF2 75; the transcript for the README."""
    import io
    import shlex

    from PIL import Image

    from . import estimate, jpeg
    from .sources import read_image, skimage_dir
    t0 = time.time()
    b = io.BytesIO()
    Image.fromarray(read_image(skimage_dir() / "coffee.png")).save(b, "JPEG", quality=70)
    img = processed_dir() / "examples" / "coffee-pillow70-opencv90.jpg"
    img.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(img, jpeg.encode_opencv(jpeg.decode(b.getvalue()), 90))
    shown = "coffee-pillow70-opencv90.jpg"
    parts, runs = [], {}
    for method in (None, "galvan"):
        r = estimate.run(img, method=method, seed=seed, progress=False)
        r["file"] = shown
        runs[r["method"]] = r
        args = "" if method is None else f" --method {method}"
        parts.append(f"$ qpaper estimate {shlex.quote(shown)}{args}\n{estimate.format_text(r)}\n")
    # a first table no IJG quality gives (one of Park et al.'s real tables held out from training), then QF2 75
    from . import tables
    t1 = tables.draw("park-heldout", tables.family_rng("park-heldout", seed, "example", 0))
    b1 = jpeg.encode_pillow(read_image(skimage_dir() / "coffee.png"), table=t1, chroma_table=tables.chroma_for(t1),
                            subsampling="4:2:0")
    wild_img = img.with_name("coffee-park-opencv75.jpg")
    atomic_write_bytes(wild_img, jpeg.encode_opencv(jpeg.decode(b1), 75))
    r = estimate.run(wild_img, seed=seed, progress=False)
    r["file"] = wild_img.name
    runs[f"{r['method']}, non-standard first table"] = r
    parts.append(f"$ qpaper estimate {wild_img.name}   # first table: one of Park et al.'s held out, true first 15 "
                 f"steps {' '.join(map(str, jpeg.zigzag(t1)[:jpeg.NC]))}\n{estimate.format_text(r)}\n")
    out = results_dir(profile, root) / "estimate-example.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, "\n".join(parts).encode())
    write_sidecar(out, record(profile, seed, t0, command=f"qpaper report example --profile {profile}",
                              image="skimage coffee.png, Pillow QF 70 then OpenCV QF 90 (4:2:0)", results=runs))
    return out
