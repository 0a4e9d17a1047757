"""The ``qpaper`` command: parses arguments and calls the package; no logic of its own."""

from __future__ import annotations

import argparse
import math
import os
import sys

from . import paths
from .backend import import_backend_quietly
from .gpurun import RECIPES as ALL_RECIPES, SWEEP as SWEEP_RECIPES
from .jpeg import NC
from .profiles import EVAL_BATCH, PROFILES

# TensorFlow's C++ start-up messages would bury the one line a user needs; QPAPER_TF_LOGS=1 keeps them.
if not os.environ.get("QPAPER_TF_LOGS"):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's promise for bad input: one line on stderr, exit 2 (``--help`` keeps
    its usage text)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message.splitlines()[0] if message else 'bad arguments'} "
                     f"(see {self.prog} --help)\n")


def _number(kind, lo=None, hi=None, what=""):
    """An argparse type: ``kind`` (int or float), finite, within [lo, hi]."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if kind is float and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"{text} is out of range ({what or 'allowed'}: {rng})")
        return v
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _name(text):
    """An argparse type: a path that is not empty (``--csv ""`` would write nothing and say nothing)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty name")
    return text


SEED = _number(int, 0, 2 ** 32 - 1, "seed")  # every --seed: refused before any work when numpy could not take it


def cmd_table(a):
    from . import jpeg
    t = jpeg.standard_table(a.qf, chroma=a.chroma)
    if a.zigzag or a.nc is not None:
        v = jpeg.zigzag(t)[: a.nc or 64]
        print(" ".join(str(int(x)) for x in v))
    else:
        print(jpeg.format_table(t))


def cmd_qtable(a):
    from . import jpeg
    info = jpeg.read_qtables(a.file)
    t = jpeg.luminance_table(info)
    qf, dist = jpeg.nearest_standard_qf(t)
    ps, psd = jpeg.nearest_photoshop_quality(t)
    size = f"{info['size'][1]}x{info['size'][0]} as stored, " if info["size"] else ""
    print(f"{paths.printable(a.file)}: {size}{len(info['tables'])} quantization table(s), {info['coding']}, "
          f"{len(info['components'])} component(s)")
    if info["orientation"] not in (None, 1):
        print(f"EXIF orientation {info['orientation']}: viewers show it {jpeg.ORIENTATIONS[info['orientation']]}; "
              "the tables belong to the stored pixels")
    if info["end"] is None:
        print("warning: the scan ends before the end-of-image marker (truncated file)")
    elif info["trailer"]:
        print(f"{info['trailer']} bytes follow the end-of-image marker (a trailer; ignored)")
    if info["stray"]:
        print(f"warning: {sum(c for _, c in info['stray'])} stray byte(s) between markers (first at byte "
              f"{info['stray'][0][0]}) skipped, as libjpeg skips them (the file was edited or damaged)")
    print("luminance table (natural order):")
    print(jpeg.format_table(t))
    print(f"first {a.nc} zig-zag: " + " ".join(str(int(x)) for x in jpeg.zigzag(t)[: a.nc]))
    exact = " (exact)" if dist == 0 else ""
    print(f"nearest standard QF: {qf}{exact}, mean absolute difference {dist:.3f}")
    print(f"nearest Photoshop quality: {ps}{' (exact)' if psd == 0 else ''}, mean absolute difference {psd:.3f}")


def cmd_data_fetch(a):
    from . import fetch, sources
    if a.name == "wallpapers":
        raw = sources.fetch_wallpapers(a.out, a.debs)
        sources.prepare_wallpapers(raw.parent if a.out else None, seed=a.seed)
    else:
        if not a.csv:
            raise ValueError(f"fetching {a.name} needs --csv FILE (the dataset's official URL list)")
        out = fetch.fetch(a.name, a.csv, a.out, a.url_column, a.limit)
        print(f"{a.name}: downloaded and checked into {out}")


def cmd_data_list(a):
    from .sources import get_source, split_records
    recs = split_records(get_source(a.source), a.split, seed=a.seed)
    print("id\tscene\tlicence\tsha256\tpath")
    for r in recs:
        print(f"{r.id}\t{r.scene}\t{r.licence}\t{r.sha256 or '-'}\t{r.path}")


def cmd_data_trace(a):
    from .sources import THRESHOLD_NOTE, trace_verdict
    for f in a.files:
        s, verdict = trace_verdict(f, a.threshold)
        print(f"{paths.printable(f)}\t{'-' if s is None else f'{s:.4f}'}\t{verdict}")
    print(THRESHOLD_NOTE.format(a.threshold), file=sys.stderr)


def cmd_dataset_build(a):
    from .shards import build
    from .profiles import dataset_spec
    shift = "aligned" if a.aligned else "misaligned" if a.misaligned else "mixed" if a.mixed else "random"
    over = {k: v for k, v in (("channels", a.channels), ("encoder", a.encoder), ("subsampling", a.subsampling),
                              ("q2_mix", a.q2_mix)) if v is not None}
    if a.qf1:
        over["qf1"] = tuple(a.qf1.split(","))
    if a.source:
        over.update(source=a.source, split="all")
    if a.patches_per_qf1:
        over["patches_per_qf1"] = a.patches_per_qf1
    spec = dataset_spec(a.profile, a.split, a.qf2, a.seed, shift, **over)
    m = build(spec, a.out, workers=a.workers, progress=not a.quiet, scheduler=a.scheduler)
    print(f"{m['count']} patches in {a.out} ({m['build_seconds']} s); content sha256 {m['content_sha256']}")


def cmd_dataset_info(a):
    from .dataset import info
    print(info(a.dir))


def default_dataset(profile: str, split: str, qf2: int, seed: int, workers=None, quiet=False) -> str:
    """The profile's cached dataset folder, built first if missing (or if its build was killed)."""
    from .shards import build
    from .profiles import dataset_spec
    out = paths.dataset_dir(profile, f"qf2-{qf2}-{split}", seed)
    if not (out / "manifest.json").exists():
        build(dataset_spec(profile, split, qf2, seed), out, workers=workers, progress=not quiet)
    return str(out)


def cmd_train(a):
    from . import train
    data = a.data or default_dataset(a.profile, "train", a.qf2, a.seed, quiet=a.quiet)
    over = {k: getattr(a, k) for k in ("arch", "depth", "growth", "width", "hidden", "phases", "nf", "batch", "lr",
                                       "schedule", "epochs", "epoch_patches")}
    train.train(data, a.out, profile=a.profile, head=a.head, loss=a.loss, seed=a.seed, distance=a.distance,
                regression_loss=a.regression_loss, resume=a.resume, max_minutes=a.max_minutes, devices=a.devices,
                verbose=2 if a.quiet else 1, **over)


def cmd_evaluate(a):
    from . import evaluate
    if a.method == "cnn" and not a.model:
        raise ValueError("--model is required with --method cnn")
    if a.method == "galvan" and a.grid != "aligned":
        raise ValueError("galvan [7] is an aligned-case method; use --grid aligned")
    summary, above = evaluate.run(a.model if a.method == "cnn" else a.method, a.data, a.out, a.batch,
                                  aligned=True if a.grid == "aligned" else None, profile=a.profile, seed=a.seed,
                                  progress=not a.quiet)
    for name, v in summary.items():
        print(f"{name:>11}: AvgAcc {v['AvgAcc']:.4f}  AvgMSE {v['AvgMSE']:.4f}  ({v['qf1_values']} QF1 values)")
    if above:
        print(f"note: {above} true coefficients exceed q_max (QF1 below 50); a class head cannot reach them")
    print(f"wrote {a.out}")


def cmd_estimate(a):
    import json

    from . import estimate
    kw = dict(model=a.model, method=a.method, window=a.window, max_windows=a.max_windows,
              max_megapixels=a.max_megapixels or None, seed=a.seed)
    from pathlib import Path
    if len(a.files) == 1 and not Path(a.files[0]).is_dir() and not (a.csv or a.jsonl or a.resume or a.scheduler):
        # one file: the full report
        estimate.precheck(a.files[0])  # a refusal before the backend starts
        if a.method in ("cnn", "file", None):
            import_backend_quietly()
        r = estimate.run(a.files[0], progress=not a.quiet and not a.json, **kw)
        print(json.dumps(r, indent=1) if a.json else estimate.format_text(r))
        return
    from . import batch
    failed, n = batch.run(a.files, csv_path=a.csv, jsonl_path=a.jsonl, json_lines=a.json, resume=a.resume,
                          scheduler=a.scheduler, progress=not a.quiet, **kw)
    if failed:
        print(f"qpaper: error: {failed} of {n} files could not be estimated (their reasons are in the output)",
              file=sys.stderr)
        return 2


def cmd_localize(a):
    from pathlib import Path

    from . import jpeg, localize
    out = Path(a.out)
    localize.check_out(out, a.file)  # before any work: a bad --out costs the user nothing
    from . import estimate
    p = estimate.precheck(a.file)  # nor a missing or foreign file: both before the backend starts
    limit = int(a.max_memory * 1e9) if a.max_memory else None
    try:
        size = jpeg.read_qtables(p.read_bytes())["size"]
    except jpeg.JpegError:
        size = None  # localize.run says what is wrong with the file
    if size and min(size) >= jpeg.PATCH and not (a.max_megapixels and size[0] * size[1] > a.max_megapixels * 1e6):
        plan = localize.check_plan(size, a.stride, limit)  # before the backend: what cannot fit costs nothing
        if not a.quiet:
            print(f"localize: {size[1]}x{size[0]} at stride {a.stride}: {plan['windows']:,} windows, peak memory "
                  f"at most {plan['bytes'] / 1e9:.1f} GB", file=sys.stderr)
    import_backend_quietly()
    s = localize.run(a.file, out, a.model, a.stride, a.coefficients, "dense" if a.dense else a.path,
                     a.max_megapixels or None, a.seed, progress=not a.quiet, max_memory=limit)
    h, w = s["map_shape"][:2]
    shown = paths.printable(out)
    if s["no_trace"]:
        print(f"map {h}x{w} windows at stride {a.stride}; no mask: the whole file shows no trace of a first "
              f"compression ({s['no_trace']}); wrote {shown}/qm.npy, map-k*.png, summary.json")
    else:
        print(f"map {h}x{w} windows at stride {a.stride}; {s['clusters']} cluster(s), {s['tampered_share']:.1%} of "
              f"positions outside the background; wrote {shown}/qm.npy, map-k*.png, mask.png, summary.json")
    for warning in s["warnings"]:
        print(f"warning: {warning}")
    if s["cannot_tell"]:
        print(f"note: the map says nothing here: {s['cannot_tell'].removeprefix('cannot tell: ')}")
    if s["removed_stale"]:
        print(f"note: removed {', '.join(s['removed_stale'])} of an earlier run in {shown}")
    if s["orientation"] not in (None, 1):
        print(f"note: EXIF orientation {s['orientation']} (viewers show the photo "
              f"{jpeg.ORIENTATIONS[s['orientation']]}); the maps are drawn as the pixels are stored")


def cmd_gpu_run(a):
    from . import gpurun
    recipes = [r.strip() for r in a.recipes.split(",") if r.strip()]
    for r in recipes:
        gpurun.recipe(r)  # an unknown name: one line before anything is built
    gpurun.run(a.out, a.minutes, arch=a.arch, seed=a.seed, reserve_minutes=a.reserve, data_dir=a.data,
               patches_per_qf1=a.patches_per_qf1, test_per_qf1=a.test_per_qf1, resume_from=a.resume_from,
               recipes=recipes, sweep_patches=a.sweep_patches, batch=a.batch, steps_per_call=a.steps_per_call,
               depth=a.depth, growth=a.growth, dropout=a.dropout, warmup_steps=a.warmup_steps,
               autotune=None if a.autotune < 0 else a.autotune, continue_best=not a.sweep_only,
               eval_every=a.eval_every, cache_dir=a.cache, lr_batch=a.lr_batch)


def cmd_gpu_register(a):
    from . import gpurun
    gpurun.register(a.run)


def cmd_gpu_search_report(a):
    from . import gpurun
    gpurun.search_report(a.run, a.data, a.out, command=a.command or "")


def cmd_models(a):
    from . import registry
    rows = registry.entries()
    if not rows:
        print("no registered model (models/*/manifest.json)")
        return
    print(f"{'name':22s} {'profile':7s} {'qf2':>3s} {'head':10s} {'loss':5s} {'input':5s} {'AvgAcc':>7s} "
          f"{'AvgMSE':>7s}  sha256")
    for e in rows:
        m = e.get("metrics") or {}
        t1 = (m.get("table1") or m.get("table3")
              or ((m.get("gpu") or {}).get("random shift") or {}).get("model") or {})
        acc = f"{t1['AvgAcc']:.4f}" if t1 else "-"
        mse = f"{t1['AvgMSE']:.3f}" if t1 else "-"
        qf2 = "any" if e["qf2"] is None else str(e["qf2"])
        print(f"{e['name']:22s} {e['profile']:7s} {qf2:>3s} {e['head']:10s} {e['loss']:5s} {e['channels']:5s} "
              f"{acc:>7s} {mse:>7s}  {e['sha256'][:16]}")


def cmd_experiments(a):
    import json

    from . import experiments
    if a.action == "datasets":
        experiments.build_datasets(a.profile, a.seed, a.only, a.workers, scheduler=getattr(a, "scheduler", None))
    elif a.action == "models":
        experiments.train_models(a.profile, a.seed, a.only, a.retrain)
    else:
        from .profiles import MODELS, datasets
        for name, spec in datasets(a.profile, a.seed).items():
            print(name, json.dumps(spec.to_dict(), sort_keys=True))
        for name, (data, head, loss) in MODELS.items():
            print(name, data, head, loss)


def cmd_notebooks(a):
    from . import notebooks
    try:
        notebooks.run_all(a.profile, a.seed, a.only, a.out)
    except notebooks.NotebookFailed as e:
        print(f"qpaper: error: {e}", file=sys.stderr)
        return 1


def cmd_report(a):
    from pathlib import Path

    import_backend_quietly()  # report imports the models' modules: no TensorFlow start-up lines on the console
    from . import registry, report
    root = getattr(a, "root", None)
    if a.action == "example":
        print(f"wrote {report.estimate_example(a.profile, root)}")
    elif a.action == "models":
        cards, manifest = registry.write_cards(a.profile, root)
        print(f"wrote {cards} and {manifest}")
    else:
        report.update_readme(a.profile, root)
        print(f"{Path(root or paths.ROOT) / 'README.md'}: results section rewritten from "
              f"{paths.results_dir(a.profile, root) / 'tables'}")


def cmd_reproduce(a):
    """``make reproduce``: datasets, models, every notebook, then model cards, example and README."""
    from types import SimpleNamespace as Args
    steps = [cmd_experiments(Args(action="datasets", profile=a.profile, seed=a.seed, only=None, workers=a.workers)),
             cmd_experiments(Args(action="models", profile=a.profile, seed=a.seed, only=None, retrain=a.retrain)),
             cmd_notebooks(Args(profile=a.profile, seed=a.seed, only=None, out=None))]
    if any(steps):
        return 1
    cmd_report(Args(action="models", profile=a.profile))
    cmd_report(Args(action="example", profile=a.profile))
    if a.profile == "mini":  # README shows the mini results
        cmd_report(Args(action="readme", profile=a.profile))
    from .paths import results_dir
    print(f"reproduce: results of profile {a.profile} are in {results_dir(a.profile)}/ (tables, figures, executed "
          "notebooks).")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="qpaper", description="Primary quantization matrix estimation of "
                                "double JPEG images (Tondi et al., EURASIP JIS 2021).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("table", help="print a standard IJG quantization table")
    s.add_argument("qf", type=_number(int, 1, 100, "quality factor"), help="quality factor 1..100")
    s.add_argument("--zigzag", action="store_true", help="print the 64 values in zig-zag order")
    s.add_argument("--nc", type=_number(int, 1, 64, "NC"), default=None,
                   help="print only the first NC zig-zag values (1..64)")
    s.add_argument("--chroma", action="store_true", help="the chrominance table instead of luminance")
    s.set_defaults(func=cmd_table)

    s = sub.add_parser("qtable", help="print a JPEG file's luminance table and its nearest QF")
    s.add_argument("file")
    s.add_argument("--nc", type=_number(int, 1, 64, "NC"), default=NC,
                   help=f"how many zig-zag values to list (1..64, default {NC})")
    s.set_defaults(func=cmd_qtable)

    d = sub.add_parser("data", help="image sources: fetch, list, check").add_subparsers(
        dest="data_command", required=True, metavar="ACTION")
    s = d.add_parser("fetch", help="fetch and verify an image source")
    s.add_argument("name", choices=["wallpapers", "raise", "dresden"])
    s.add_argument("--csv", help="official URL list (raise, dresden)")
    s.add_argument("--out", help="destination folder (default data/raw/NAME)")
    s.add_argument("--url-column", help="CSV column holding the URLs")
    s.add_argument("--limit", type=int, help="fetch only the first N images")
    s.add_argument("--debs", help="folder with the wallpaper .deb files, where apt-get is missing")
    s.add_argument("--seed", type=SEED, default=0, help="seed of the wallpapers' downscale factors")
    s.set_defaults(func=cmd_data_fetch)
    s = d.add_parser("list", help="list a source's images (id, scene, licence, sha256)")
    s.add_argument("source", help="skimage, wallpapers, raise, dresden or folder:PATH")
    s.add_argument("--split", default="all", choices=["all", "train", "test"])
    s.add_argument("--seed", type=SEED, default=0)
    s.set_defaults(func=cmd_data_list)
    s = d.add_parser("trace", help="DCT-comb check for JPEG traces in image files")
    s.add_argument("files", nargs="+")
    s.add_argument("--threshold", type=_number(float, 0, None, "threshold"), default=0.05)
    s.set_defaults(func=cmd_data_trace)

    d = sub.add_parser("dataset", help="double-JPEG patch datasets").add_subparsers(
        dest="dataset_command", required=True, metavar="ACTION")
    s = d.add_parser("build", help="generate a dataset into shards (resumes a killed build)")
    s.add_argument("--profile", default="smoke", choices=list(PROFILES))
    s.add_argument("--split", default="train", choices=["train", "test"])
    s.add_argument("--qf2", type=int, default=90)
    s.add_argument("--qf1", help="comma-separated QF1 list overriding the profile's (e.g. 70,90 or ps8,ps10), or "
                   "families of first tables (libjpeg, perturbed, park, perturbed-heldout, park-heldout, photoshop; "
                   "with --encoder pillow)")
    s.add_argument("--q2-mix", choices=["q2-libjpeg", "q2-wide"],
                   help="draw each unit's last table from this family (with --encoder pillow) instead of QF2's")
    s.add_argument("--source", help="another image source, whole (e.g. wallpapers for a paper-settings run)")
    s.add_argument("--patches-per-qf1", type=int, help="override the profile's patches per QF1")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=SEED, default=0)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--aligned", action="store_true", help="force r = c = 0")
    g.add_argument("--misaligned", action="store_true", help="force (r, c) != (0, 0)")
    g.add_argument("--mixed", action="store_true", help="aligned a quarter of the time, else (r, c) != (0, 0)")
    s.add_argument("--channels", choices=["rgb", "y"], help="rgb (the paper) or y (the authors' code)")
    s.add_argument("--encoder", choices=["opencv", "pillow"])
    s.add_argument("--subsampling", choices=["4:2:0", "4:2:2", "4:4:4"])
    s.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    s.add_argument("--scheduler", metavar="ADDRESS", help="make the shards on a Dask cluster (tcp://host:8786, or "
                   "local:N worker processes here; needs qpaper[cluster]): the same bytes as a local build")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_dataset_build)
    s = d.add_parser("info", help="counts per QF1 and aligned flag, and the content digest")
    s.add_argument("dir")
    s.set_defaults(func=cmd_dataset_info)
    s = sub.add_parser("train", help="train an estimator (checkpoint every epoch, --resume after a kill)")
    s.add_argument("--profile", default="smoke", choices=list(PROFILES))
    s.add_argument("--qf2", type=int, default=90)
    s.add_argument("--head", default="class", choices=["class", "regression", "wide"],
                   help="class: the paper's classification-like head; regression: reference [10]; wide: the any-QF2 "
                   "estimator (coef backbone, Q2 an input, classes up to R and 'at least R+1', issue 21)")
    s.add_argument("--loss", default="Lr", choices=["L", "Lr"], help="class head: L (Eq. 1) or Lr (Eq. 5, default)")
    s.add_argument("--distance", default="abs", choices=["abs", "squared"],
                   help="Lr distance: abs (the paper, default) or squared (the authors' code)")
    s.add_argument("--regression-loss", default="mse", choices=["mse", "logcosh"],
                   help="regression head: mse (the paper of [10], default) or logcosh (its code)")
    s.add_argument("--out", required=True, help="run folder (e.g. models/NAME)")
    s.add_argument("--data", help="built training dataset (default: the profile's, built if missing)")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--resume", action="store_true", help="continue a killed or time-limited run")
    s.add_argument("--max-minutes", type=float, help="stop after this many minutes (resume later)")
    s.add_argument("--devices", type=int, default=1, help="data-parallel over N devices (CPU: logical devices)")
    s.add_argument("--arch", choices=["densenet", "dct"], help="override the profile's backbone: densenet (the "
                   "paper's, on pixels) or dct (ours: block-DCT comb strengths at all 64 grid phases)")
    s.add_argument("--phases", choices=["all", "grid"], help="dct: all 64 grid phases (default) or only the grid "
                   "of the last compression")
    s.add_argument("--schedule", choices=["constant", "cosine"], help="override the profile's learning-rate "
                   "schedule (cosine: warm-up, then cosine decay)")
    for k, t in (("depth", int), ("growth", int), ("width", int), ("hidden", int), ("nf", int), ("batch", int),
                 ("lr", float),
                 ("epochs", int), ("epoch-patches", int)):
        s.add_argument(f"--{k}", type=t, help=f"override the profile's {k.replace('-', '_')}")
    s.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="accuracy and MSE of a model on a built dataset (Section 5)")
    s.add_argument("--model", help=".keras model (loaded with safe_mode=True); with --method cnn")
    s.add_argument("--method", default="cnn", choices=["cnn", "galvan", "bianchi"],
                   help="cnn (a trained --model, default), or a model-based method: galvan [7] (aligned), "
                        "bianchi [5]")
    s.add_argument("--grid", default="aligned", choices=["aligned", "estimate"],
                   help="bianchi: assume the aligned grid (default) or estimate the grid shift first")
    s.add_argument("--data", required=True, help="built test dataset")
    s.add_argument("--out", required=True, help="tidy CSV: one row per QF1 x aligned x coefficient")
    s.add_argument("--batch", type=_number(int, 1, None, "patches"), default=EVAL_BATCH,
                   help=f"patches per forward pass (default {EVAL_BATCH})")
    s.add_argument("--profile", help="recorded in the provenance sidecar")
    s.add_argument("--seed", type=SEED, default=0, help="recorded in the provenance sidecar")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("estimate", help="estimate the first quantization table of JPEG files")
    s.add_argument("files", nargs="+", metavar="FILE", help="JPEG files or folders (searched recursively for "
                   ".jpg/.jpeg); one file gets the full report, several get one line or row each")
    s.add_argument("--json", action="store_true", help="JSON instead of text (JSON Lines, one per file, for several)")
    s.add_argument("--csv", metavar="PATH", type=_name, help="also write one row per file to a CSV table: rows reach PATH.partial "
                   "as files finish, PATH at the end in input order (- : standard output; never one of the inputs)")
    s.add_argument("--model", help="with --method cnn: a window model .keras (default: the registered window model); "
                   "with --method file: a file-level model folder (default: the registered one)")
    s.add_argument("--method", choices=["file", "cnn", "galvan", "bianchi"],
                   help="file: the file-level estimator over every 8x8 block (the default); cnn: a window model "
                   "(the default with --model or --window); galvan [7] or bianchi [5]")
    s.add_argument("--window", nargs=2, type=_number(int, 0, None, "pixel offset"), metavar=("X", "Y"),
                   help="one 64x64 window at (X, Y)")
    s.add_argument("--max-windows", type=_number(int, 1, None, "windows"), default=512,
                   help="windows pooled (a seeded sample; default 512)")
    s.add_argument("--max-megapixels", type=_number(float, 0, None, "megapixels"), default=120.0,
                   help="refuse larger images (0: no limit)")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--jsonl", metavar="PATH", type=_name, help="also write the JSON of each file, one per line, to PATH (- : "
                   "standard output)")
    s.add_argument("--resume", action="store_true", help="continue a stopped run: the files already in --csv/--jsonl "
                   "(or PATH.partial, where a run writes as files finish) are skipped; those with an error are tried "
                   "again")
    s.add_argument("--scheduler", metavar="ADDRESS", help="run the files on a Dask cluster: its scheduler "
                   "(tcp://host:8786) or local:N for N worker processes here (needs qpaper[cluster])")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_estimate)

    s = sub.add_parser("localize", help="maps of estimated Q1 coefficients on sliding windows (Section 5.3)")
    s.add_argument("file")
    s.add_argument("--stride", type=_number(int, 1, 64, "stride"), default=8,
                   help="window stride in pixels, 1..64 (the paper: 1; default 8)")
    s.add_argument("--out", required=True, type=_name, help="folder for qm.npy, map-kNN.png, mask.png, summary.json: "
                   "new, empty or an earlier localize run's (never the input's folder)")
    s.add_argument("--model", help=".keras model (default: the registered model for the file's QF2)")
    s.add_argument("--coefficients", type=_number(int, 1, NC, "coefficient"), nargs="+", default=[1, 6, 14],
                   help=f"maps to draw (1..{NC})")
    s.add_argument("--path", default="auto", choices=["auto", "dense", "exact"],
                   help="exact: one forward pass per window; dense: shared features (for the dct backbone the same "
                   "numbers; for the DenseNet dilated pooling, which differs near window borders, see make bench); "
                   "auto (default): dense for dct models, exact for DenseNet ones")
    s.add_argument("--dense", action="store_true", help="the same as --path dense")
    s.add_argument("--max-megapixels", type=_number(float, 0, None, "megapixels"), default=120.0,
                   help="refuse larger images (0: no limit)")
    s.add_argument("--max-memory", type=_number(float, 0, 1e6, "gigabytes"), default=0,
                   help="refuse a map whose memory bound is above this many GB (default 0: what the system has available)")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_localize)

    d = sub.add_parser("gpu", help="a lent GPU session: train within a budget, resume, evaluate; register the run").add_subparsers(
        dest="gpu_command", required=True, metavar="ACTION")
    s = d.add_parser("run", help="build data; sweep recipes and continue the best, or resume models/gpu/...; "
                                 "evaluate into OUT/run (JAX)")
    s.add_argument("--out", required=True, help="folder for the data and the run (on the device: $OUT)")
    s.add_argument("--minutes", type=_number(float, 0.5, 60, "minutes"), required=True,
                   help="the whole budget: data, compilation, sweep, training and evaluation")
    s.add_argument("--arch", default="densenet", choices=["densenet", "dct"],
                   help="densenet: the paper's DenseNet-40 (default); dct: the CPU backbone at paper scale")
    s.add_argument("--recipes", default=",".join(SWEEP_RECIPES),
                   help=f"recipes of the sweep, in order (default {','.join(SWEEP_RECIPES)}; all: "
                        f"{','.join(ALL_RECIPES)})")
    s.add_argument("--sweep-patches", type=_number(int, 1, None, "patches"),
                   help="patches per recipe (default: half the time left, shared)")
    s.add_argument("--sweep-only", action="store_true", help="stop after the sweep (the CPU recipe search)")
    s.add_argument("--reserve", type=_number(float, 0, 30, "minutes"), default=1.5,
                   help="minutes kept for the evaluation and the copy back (default 1.5)")
    s.add_argument("--data", help="where the datasets go (default OUT/data)")
    s.add_argument("--cache", help="JAX's compilation cache (default OUT/jax-cache; the committed one of the same "
                                   "kind of device is unpacked there first)")
    s.add_argument("--patches-per-qf1", type=_number(int, 1, None, "patches"), help="training patches per QF1")
    s.add_argument("--test-per-qf1", type=_number(int, 1, None, "patches"), help="test patches per QF1")
    s.add_argument("--resume-from", help="run folder to continue (default: the committed models/gpu/qf2-90-class-Lr)")
    s.add_argument("--batch", type=_number(int, 1, None, "patches"), default=512, help="batch (default 512)")
    s.add_argument("--steps-per-call", type=_number(int, 1, None, "steps"), default=25,
                   help="optimizer steps per compiled call (default 25)")
    s.add_argument("--warmup-steps", type=_number(int, 0, None, "steps"), default=200)
    s.add_argument("--lr-batch", type=_number(int, 1, None, "patches"), default=256,
                   help="the batch the recipes' rates are for; at --batch B they are scaled by sqrt(B / this) "
                        "(default 256)")
    s.add_argument("--autotune", type=int, default=0,
                   help="XLA GPU autotuning level (0 off, the default; 4 XLA's own; -1 leave XLA_FLAGS alone)")
    s.add_argument("--eval-every", type=_number(float, 0, None, "seconds"), default=60.0,
                   help="seconds between validation rows of the log (default 60)")
    for k, t in (("depth", int), ("growth", int), ("dropout", float)):
        s.add_argument(f"--{k}", type=t, help=f"override the gpu profile's {k}")
    s.add_argument("--seed", type=SEED, default=0)
    s.set_defaults(func=cmd_gpu_run)
    s = d.add_parser("search-report", help="a CPU recipe search (gpu run --sweep-only) into curves, tables and the "
                                           "precision probe (results/gpu/cpu-recipes)")
    s.add_argument("run", nargs="+", help="the search's run folder(s) (OUT/run), reported together")
    s.add_argument("--data", required=True, help="its data folder (holds the test sets)")
    s.add_argument("--out", required=True, help="where the report goes")
    s.add_argument("--command", help="the command that ran the search, for the README")
    s.set_defaults(func=cmd_gpu_search_report)
    s = d.add_parser("register", help="copy a finished gpu run into models/ with a float32 model, card and manifest")
    s.add_argument("run", help="the run folder the device wrote (OUT/run)")
    s.set_defaults(func=cmd_gpu_register)

    def profile_seed(s, default="smoke"):
        s.add_argument("--profile", default=default, choices=list(PROFILES))
        s.add_argument("--seed", type=SEED, default=0)

    s = sub.add_parser("reproduce", help="datasets, models, every notebook, model cards, the estimate example and "
                       "README's results, on a profile (make reproduce)")
    profile_seed(s, "mini")
    s.add_argument("--workers", type=int, help="processes for the datasets (default: all cores)")
    s.add_argument("--retrain", action="store_true", help="train the models again even where they exist")
    s.set_defaults(func=cmd_reproduce)

    d = sub.add_parser("experiments", help="build the datasets or train the models a profile's notebooks need"
                       ).add_subparsers(dest="action", required=True, metavar="ACTION")
    for what, text in (("datasets", "build (or find built) every dataset of the profile"),
                       ("models", "train the profile's models that are missing, resuming a cut run"),
                       ("list", "print the profile's datasets (spec) and models (data, head, loss)")):
        s = d.add_parser(what, help=text)
        profile_seed(s)
        s.add_argument("--only", nargs="+", metavar="NAME", help="these names only")
        if what == "datasets":
            s.add_argument("--workers", type=int, help="processes (default: all cores)")
            s.add_argument("--scheduler", metavar="ADDRESS", help="make the shards on a Dask cluster (tcp://host:8786 "
                           "or local:N; needs qpaper[cluster]): the same bytes")
        if what == "models":
            s.add_argument("--retrain", action="store_true", help="train again even where a model exists")
        s.set_defaults(func=cmd_experiments)

    s = sub.add_parser("notebooks", help="execute the notebooks with papermill into results/PROFILE/notebooks")
    profile_seed(s)
    s.add_argument("--only", nargs="+", metavar="N", help="notebook numbers or names (default: all)")
    s.add_argument("--out", help="folder for the executed notebooks (default results/PROFILE/notebooks)")
    s.set_defaults(func=cmd_notebooks)

    d = sub.add_parser("report", help="README's results, the estimate example, model cards").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    for what, text in (("readme", "rewrite README's results section from results/PROFILE/tables"),
                       ("example", "results/PROFILE/estimate-example.txt: qpaper estimate on a double JPEG"),
                       ("models", "models/PROFILE/README.md (model cards) and manifest.json (the registry)")):
        s = d.add_parser(what, help=text)
        s.add_argument("--profile", required=True, choices=list(PROFILES))
        s.add_argument("--root", help="the project folder whose README.md and results/ are used (default: this "
                       "checkout)")
        s.set_defaults(func=cmd_report)

    s = sub.add_parser("models", help="list the registered models (models/*/manifest.json)")
    s.set_defaults(func=cmd_models)
    return p


# (command, action) pairs that load Keras; None: every action of the command
NEEDS_BACKEND = {("train", None), ("evaluate", None), ("gpu", None), ("reproduce", None), ("experiments", "models"),
                 ("report", "example")}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or an argument error (2, one line already printed)
        return e.code if isinstance(e.code, int) else 2
    try:
        if {(args.command, None), (args.command, getattr(args, "action", None))} & NEEDS_BACKEND:
            import_backend_quietly()
        status = args.func(args)
    except KeyboardInterrupt as e:
        from .batch import Terminated
        print(f"qpaper: {'terminated' if isinstance(e, Terminated) else 'interrupted'}", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except (ValueError, OSError, KeyError) as e:
        print(f"qpaper: error: {paths.error_line(e)}", file=sys.stderr)
        return 2
    except (RecursionError, MemoryError, OverflowError) as e:  # input built to exhaust a parser or a number
        print(f"qpaper: error: {paths.error_line(e, with_type=True)} (an input nested, sized or valued beyond what "
              "qpaper reads)", file=sys.stderr)
        return 2
    except Exception as e:  # a bug: one line, the traceback on request
        if os.environ.get("QPAPER_DEBUG"):
            raise
        print(f"qpaper: internal error: {paths.error_line(e, with_type=True)} (a bug: QPAPER_DEBUG=1 shows the "
              "traceback to report)", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
