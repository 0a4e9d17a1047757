"""Result tables written by ``make reproduce`` (``python -m qpaper.report ...``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from .provenance import record, write_sidecar
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


def data_manifests() -> dict:
    """sha256 of the manifests that pin the prepared images (where present)."""
    out = {}
    for name in ("processed/wallpapers/manifest.tsv", "raw/raise/manifest.tsv", "raw/dresden/manifest.tsv"):
        p = DATA_DIR / name
        if p.exists():
            out[name] = sha256_file(p)
    return out


def write_table(df: pd.DataFrame, path: Path, prov: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, df.to_csv(index=False).encode())
    atomic_write_bytes(path.with_suffix(".md"), df.to_markdown(index=False).encode()
                       if _has_tabulate() else _markdown(df).encode())
    write_sidecar(path, prov)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False


def _markdown(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in df.itertuples(index=False))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m qpaper.report")
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("datasets", help="summarise the built datasets of a profile")
    s.add_argument("--profile", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--datasets", required=True)
    s.add_argument("--out", required=True)
    a = p.parse_args(argv)
    t0 = time.time()
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
