"""Provenance sidecars: every table and figure in results/ says how it was made."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

from .paths import atomic_write_bytes

PACKAGES = ("qpaper", "numpy", "opencv-python-headless", "Pillow", "scikit-image", "tensorflow", "keras",
            "pandas", "matplotlib")


def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def record(profile: str, seed: int, started: float, **extra) -> dict:
    return {"profile": profile, "seed": seed, "git_commit": git_commit(), "hardware": hardware(),
            "versions": versions(), "wall_seconds": round(time.time() - started, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}


def write_sidecar(path, prov: dict) -> Path:
    """Write ``<path>.provenance.json`` beside a result file."""
    side = Path(str(path) + ".provenance.json")
    atomic_write_bytes(side, json.dumps(prov, indent=1, sort_keys=True).encode())
    return side
