"""Result tables written by ``make reproduce`` (``python -m qpaper.report ...``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from .provenance import record, write_sidecar
from .results import data_manifests, write_table
from .sources import DATA_DIR, atomic_write_bytes, sha256_file


def datasets_table(datasets_dir) -> pd.DataFrame:
    """One row per (dataset, QF1): patches, aligned share, images, scenes and the content digest."""
    rows = []
    for d in sorted(Path(datasets_dir).iterdir()):
        mpath = d / "manifest.json"
        if not mpath.exists():
            continue
        m = json.loads(mpath.read_text())
        s = m["spec"]
        for c in m["counts"]:
            rows.append({"dataset": d.name, "source": s["source"], "split": s["split"], "qf2": s["qf2"],
                         "qf1": c["qf1"], "patches": c["patches"], "aligned": c["aligned"],
                         "aligned_share": round(c["aligned"] / c["patches"], 4) if c["patches"] else 0.0,
                         "images": len(m["images"]), "scenes": len(m["scenes"]),
                         "grid_shift": s["grid_shift"], "channels": s["channels"],
                         "encoder": f"{s['encoder']} {s['subsampling']}",
                         "build_seconds": m["build_seconds"], "content_sha256": m["content_sha256"][:16]})
    if not rows:
        raise ValueError(f"no built dataset under {datasets_dir}")
    return pd.DataFrame(rows)


BEGIN, END = "<!-- results:begin (python -m qpaper.report readme) -->", "<!-- results:end -->"


def _link(value, path: str) -> str:
    return f"[{value}]({path})"


def gpu_rows(root: Path) -> list[str]:
    """The paper's DenseNet-40 trained on lent GPUs (issue 13), from its committed run's
    eval.json: its own rows, the mini rows untouched."""
    from .gpurun import committed_run
    run = committed_run("densenet")
    if not (run / "eval.json").exists():
        return ["| paper model (DenseNet-40) on a lent GPU | not trained yet: no session has been lent a GPU "
                "(`scripts/gpu_train.sh` is ready) | – | – | – | – |"]
    ev = json.loads((run / "eval.json").read_text())
    src = "models/gpu/qf2-90-class-Lr/model-card.md"
    depth = json.loads((run / "config.json").read_text())["depth"]
    who = f"paper model (DenseNet-{depth}), GPU, {ev['patches_seen']:,} patches seen"
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
    tables = root / "results" / profile / "tables"
    prov = json.loads((tables / "tables1-4-summary.csv.provenance.json").read_text())
    rel = lambda name: f"results/{profile}/tables/{name}"  # noqa: E731
    lines = [f"Profile **{profile}**, seed {prov['seed']}, commit `{prov['git_commit'][:12]}`, "
             f"{prov['hardware']}; every number links to its table (each has a `.provenance.json` sidecar). "
             "The paper's numbers are those its text prints; its Tables 1-4 are images and are not quoted.", "",
             "| experiment | method | AvgAcc (ours) | AvgMSE (ours) | AvgAcc (paper) | AvgMSE (paper) |",
             "|---|---|---|---|---|---|"]
    timings = root / "results" / profile / "notebooks" / "timings.csv"
    if timings.exists():
        t = pd.read_csv(timings)
        minutes = f"{t['seconds'].sum() / 60:.1f} min"
        lines[0] += (f" The {len(t)} notebooks (evaluations included) ran in "
                     f"{_link(minutes, f'results/{profile}/notebooks/timings.csv')}.")
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


def claims(profile: str, root: Path) -> list[dict]:
    """The paper's comparative claims, each checked on this profile's tables: the class head
    ahead of the regression head of [10] in AvgAcc (Tables 1-4), Lr below L in AvgMSE (Section
    3.2), the proposed estimator ahead of [7] on aligned patches (Tables 2, 4) and of [5] with
    its own grid estimate on random shifts (Tables 1, 3), and every CNN ahead of the constant
    prior (whether it learned at all)."""
    tables = root / "results" / profile / "tables"
    s = pd.read_csv(tables / "tables1-4-summary.csv")
    get = lambda t, m, c="AvgAcc": s[(s["table"] == t) & (s["method"] == m)][c]  # noqa: E731
    out = []

    def add(claim, where, a, b, better="higher", metric="AvgAcc", table=None):
        if len(a) and len(b):
            x, y = float(a.iloc[0]), float(b.iloc[0])
            out.append({"claim": claim, "paper": where, "ours": f"{metric} {x:.4f} vs {y:.4f}",
                        "holds": "yes" if (x > y if better == "higher" else x < y) else "no",
                        "table": table or "tables1-4-summary.md"})
    for t, what in ((1, "QF2 90, random shift"), (2, "QF2 90, aligned"), (3, "QF2 80, random shift"),
                    (4, "QF2 80, aligned")):
        add(f"{what}: proposed above the constant prior", "-", get(t, "proposed"), get(t, "constant prior (median)"))
        add(f"{what}: class head ahead of [10]", f"Table {t}", get(t, "proposed"), get(t, "[10]"))
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
    lines = ["The paper's comparisons, checked on these tables (a claim that does not hold is shown as measured):",
             "", "| claim | paper | ours | holds |", "|---|---|---|---|"]
    for r in rows:
        src = f"results/{profile}/tables/{r['table']}"
        lines.append(f"| {r['claim']} | {r['paper']} | {_link(r['ours'], src)} | {r['holds']} |")
    return "\n".join(lines)


EX_BEGIN, EX_END = "<!-- estimate:begin (python -m qpaper.report example) -->", "<!-- estimate:end -->"


def _replace_block(text: str, begin: str, end: str, body: str) -> str:
    if begin not in text or end not in text:
        raise ValueError(f"README.md lacks the markers {begin} ... {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + begin + "\n" + body + end + tail


def update_readme(profile: str, root: Path) -> None:
    readme = root / "README.md"
    text = _replace_block(readme.read_text(), BEGIN, END, results_markdown(profile, root))
    example = root / "results" / profile / "estimate-example.txt"
    if EX_BEGIN in text and example.exists():
        body = (f"Made by `python -m qpaper.report example --profile {profile}` "
                f"([transcript]({example.relative_to(root)}), with provenance):\n\n```console\n"
                + example.read_text() + "```\n")
        text = _replace_block(text, EX_BEGIN, EX_END, body)
    atomic_write_bytes(readme, text.encode())


def estimate_example(profile: str, root: Path, seed: int = 0) -> Path:
    """A double JPEG made outside the dataset code (coffee.png: Pillow at QF1 70, then OpenCV at
    QF2 90), estimated by the registered CNN and by [7]; the transcript for the README."""
    import io
    import shlex

    from PIL import Image

    from . import estimate, jpeg
    from .sources import read_image, skimage_dir
    t0 = time.time()
    b = io.BytesIO()
    Image.fromarray(read_image(skimage_dir() / "coffee.png")).save(b, "JPEG", quality=70)
    img = DATA_DIR / "processed" / "examples" / "coffee-pillow70-opencv90.jpg"
    img.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(img, jpeg.encode_opencv(jpeg.decode(b.getvalue()), 90))
    shown = "coffee-pillow70-opencv90.jpg"
    parts, runs = [], {}
    for method in ("cnn", "galvan"):
        r = estimate.run(img, method=method, seed=seed, progress=False)
        r["file"] = shown
        runs[method] = r
        args = "" if method == "cnn" else f" --method {method}"
        parts.append(f"$ qpaper estimate {shlex.quote(shown)}{args}\n{estimate.format_text(r)}\n")
    out = root / "results" / profile / "estimate-example.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, "\n".join(parts).encode())
    write_sidecar(out, record(profile, seed, t0, command=f"python -m qpaper.report example --profile {profile}",
                              image="skimage coffee.png, Pillow QF 70 then OpenCV QF 90 (4:2:0)", results=runs))
    return out


def model_cards(profile: str, root: Path) -> str:
    """``models/<profile>/README.md``: per model its data, budget, final log row, test metrics
    (from ``results/<profile>/tables/tables1-4-summary.csv`` when present), sha256, and what
    differs from the paper."""
    from .experiments import MODELS, models_dir
    from .profiles import get_profile
    paper_fit = get_profile("paper")["fit"]
    mdir = models_dir(profile)
    summary_csv = root / "results" / profile / "tables" / "tables1-4-summary.csv"
    summary = pd.read_csv(summary_csv) if summary_csv.exists() else None
    out = [f"# Models of the {profile} profile", "",
           f"Trained by `make reproduce PROFILE={profile} TRAIN=1` (`python -m qpaper.experiments models`), "
           "each with `qpaper train`; loaded with `safe_mode=True`. This file is written by "
           f"`python -m qpaper.report models --profile {profile}`.", ""]
    for name, (data, head, loss) in MODELS.items():
        run = mdir / name
        if not (run / "model.keras").exists():
            continue
        cfg = json.loads((run / "config.json").read_text())
        log = pd.read_csv(run / "log.csv")
        last = log.iloc[-1]
        spec = cfg["dataset_spec"]
        seconds = float(log["seconds"].sum())
        arch = cfg.get("arch", "densenet")
        keys = ("depth", "lr", "epochs") if arch == "densenet" else ("lr", "batch", "epochs")
        diffs = [f"{k} {cfg[k]} (paper {paper_fit[k]})" for k in keys if cfg.get(k) != paper_fit[k]]
        if arch != "densenet":
            diffs.insert(0, "backbone: the block-DCT front end at all 64 grid phases (qpaper/dctfeatures.py) with "
                            f"dense layers of {cfg['width']} and {cfg['hidden']} units, not the DenseNet-40 on pixels")
        if cfg.get("schedule", "constant") != "constant":
            diffs.append(f"learning rate: {cfg['warmup']:.0%} linear warm-up to {cfg['lr']}, then cosine decay to 1% "
                         "(the paper: constant 1e-5)")
        if cfg.get("epoch_patches"):
            diffs.append(f"{cfg['epoch_patches']} patches per epoch (paper: the whole set of 1e5 per QF1)")
        diffs.append(f"trained on {spec['source']} ({spec['patches_per_qf1']} patches per QF1; paper: RAISE, 1e5)")
        out += [f"## {name}", "",
                f"- method: {'the proposed estimator' if head == 'class' and loss == 'Lr' else 'the regression CNN of [10]' if head == 'regression' else 'class head with cross-entropy L (ablation)'}; "
                f"head `{cfg['head']}`, loss `{cfg['loss']}`" + (f" (c = {cfg['c']}, distance {cfg['distance']})" if head == "class" and cfg.get("c") else ""),
                f"- data: `{data}` = {spec['source']} split {spec['split']}, QF2 {spec['qf2']}, QF1 {spec['qf1']}, "
                f"grid shift {spec['grid_shift']}, {spec['channels']} input, {spec['encoder']} {spec['subsampling']}; "
                f"content sha256 `{cfg['data_content_sha256'][:16]}`",
                f"- budget: " + (f"DenseNet-{cfg['depth']} (growth {cfg['growth']})" if arch == "densenet" else
                                 f"block-DCT backbone ({cfg.get('phases', 'all')} phases, width {cfg['width']}, "
                                 f"hidden {cfg['hidden']})")
                + f", Adam {cfg['lr']} ({cfg.get('schedule', 'constant')} schedule), batch {cfg['batch']}, "
                f"{int(last['epoch'])} epochs" + (f" = {int(last['patches'])} patches seen" if "patches" in log else "")
                + f", {seconds / 60:.1f} min of training"
                + (f" at {log['patches_per_s'].median():.0f} patches/s" if "patches_per_s" in log else "")
                + f" on the machine in the provenance of the results, seed {cfg['seed']}, backend {cfg['backend']}",
                f"- last epoch: training accuracy {float(last['accuracy']):.4f}, MSE {float(last['mse']):.3f}; "
                f"held-out scenes accuracy {float(last['val_accuracy']):.4f}, MSE {float(last['val_mse']):.3f}",
                f"- sha256 of `model.keras`: `{sha256_file(run / 'model.keras')}`",
                f"- load it in Python: `import qpaper; model = qpaper.load_model(\"models/{profile}/{name}/model.keras\")` "
                "(custom layers registered, `safe_mode=True`, sha256 checked against the manifest)"]
        if summary is not None:
            q = int(spec["qf2"])
            method = "proposed" if (head, loss) == ("class", "Lr") else "[10]" if head == "regression" else None
            rows = summary[(summary["qf2"] == q) & (summary["method"] == method)] if method else summary.iloc[:0]
            for r in rows.itertuples():
                out.append(f"- test, Table {r.table} ({r.test}): AvgAcc {r.AvgAcc:.4f}, AvgMSE {r.AvgMSE:.4f} "
                           f"([table](../../results/{profile}/tables/tables1-4-summary.md))")
        out += [f"- differs from the paper: {'; '.join(diffs)}", ""]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="qpaper report")
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("datasets", help="summarise the built datasets of a profile")
    s.add_argument("--profile", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--datasets", required=True)
    s.add_argument("--out", required=True)
    s = sub.add_parser("readme", help="rewrite README's results section from results/PROFILE/tables")
    s.add_argument("--profile", required=True)
    s = sub.add_parser("example", help="results/PROFILE/estimate-example.txt: qpaper estimate on a double JPEG")
    s.add_argument("--profile", required=True)
    s = sub.add_parser("models", help="write models/PROFILE/README.md (model cards) and manifest.json (registry)")
    s.add_argument("--profile", required=True)
    a = p.parse_args(argv)
    t0 = time.time()
    if a.what == "example":
        from .backend import import_backend_quietly
        from .experiments import ROOT
        import_backend_quietly()
        try:
            out = estimate_example(a.profile, ROOT)
        except (ValueError, OSError) as e:
            print(f"qpaper.report: error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {out}")
        return 0
    if a.what == "models":
        from .experiments import ROOT, models_dir
        path = models_dir(a.profile) / "README.md"
        from .registry import write_manifest
        try:
            atomic_write_bytes(path, model_cards(a.profile, ROOT).encode())
            manifest = write_manifest(a.profile, ROOT)
        except (ValueError, OSError, KeyError) as e:
            print(f"qpaper.report: error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {path} and {manifest}")
        return 0
    if a.what == "readme":
        from .experiments import ROOT
        try:
            update_readme(a.profile, ROOT)
        except (ValueError, OSError) as e:
            print(f"qpaper.report: error: {e}", file=sys.stderr)
            return 2
        print(f"README.md: results section rewritten from results/{a.profile}/tables")
        return 0
    try:
        df = datasets_table(a.datasets)
    except (ValueError, OSError) as e:
        print(f"qpaper.report: error: {e}", file=sys.stderr)
        return 2
    digests = sorted(set(df["dataset"] + ":" + df["content_sha256"]))
    out = Path(a.out) / "tables" / "datasets.csv"
    write_table(df, out, record(a.profile, a.seed, t0, datasets=digests, data_manifests=data_manifests(),
                                command=f"make reproduce PROFILE={a.profile} SEED={a.seed}"))
    print(f"wrote {out} and {out.with_suffix('.md')} ({len(df)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
