"""Where every artefact of the project lives, and how a file is written (never half-written).

    data/raw/<source>/                  fetched images (``QPAPER_DATA`` replaces ``data/``)
    data/processed/datasets/<profile>/  double-JPEG patch datasets (:mod:`qpaper.djpeg`)
    data/processed/evaluations/         cached evaluations (:mod:`qpaper.results`)
    models/<profile>/<name>/            trained models (``QPAPER_MODELS`` replaces ``models/``)
    results/<profile>/                  tables, figures, executed notebooks (``QPAPER_RESULTS``)

Every writer goes through :func:`atomic_write_bytes` (a temporary name beside the target, then a
rename) or :func:`temporary_beside`; every checksum through :func:`sha256_file`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("QPAPER_DATA", ROOT / "data"))


def raw_dir(data_dir=None) -> Path:
    """``data/raw/``: what was fetched, as fetched."""
    return Path(data_dir or DATA_DIR) / "raw"


def processed_dir(data_dir=None) -> Path:
    """``data/processed/``: what the project made from it."""
    return Path(data_dir or DATA_DIR) / "processed"


def datasets_dir(profile: str) -> Path:
    """``data/processed/datasets/<profile>/``."""
    return processed_dir() / "datasets" / profile


def evaluations_dir(profile: str) -> Path:
    """``data/processed/evaluations/<profile>/``: evaluations cached by model and dataset digest."""
    return processed_dir() / "evaluations" / profile


def dataset_dir(profile: str, name: str, seed: int = 0) -> Path:
    """The folder of dataset ``name`` of ``profile`` built with ``seed`` (``-seedN`` added for a
    seed other than 0): the one naming rule of the CLI, the experiments and the results."""
    return datasets_dir(profile) / (name if seed == 0 else f"{name}-seed{seed}")


def models_dir(profile: str) -> Path:
    """``models/<profile>/`` (``QPAPER_MODELS`` replaces ``models/``)."""
    return Path(os.environ.get("QPAPER_MODELS", ROOT / "models")) / profile


def model_path(profile: str, name: str) -> Path:
    return models_dir(profile) / name / "model.keras"


def results_dir(profile: str, root=None) -> Path:
    """``results/<profile>/`` of this checkout (``QPAPER_RESULTS`` replaces ``results/``), or of the
    project folder ``root``."""
    if root is not None:
        return Path(root) / "results" / profile
    return Path(os.environ.get("QPAPER_RESULTS", ROOT / "results")) / profile


def relative(path) -> str:
    """``path`` relative to the working directory where it lies below it (configs stay portable)."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else str(path)


def file_digest(path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path) -> str:
    return file_digest(path, "sha256")


def umask_mode(mode: int = 0o666) -> int:
    """The permissions a plain ``open`` would give a new file under the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def temporary_beside(path, suffix: str = ".tmp") -> tuple[int, str]:
    """(fd, name) of a new temporary file beside ``path``, with the umask's permissions (mkstemp
    alone would leave it 0600 after the rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.fchmod(fd, umask_mode())
    return fd, tmp


def write_output(path, data: bytes) -> None:
    """An output the user named: ``-`` goes to standard output; a link or a non-regular file
    (a device, a FIFO) is written through, never replaced; a regular file or a new name is written
    to a temporary name and renamed (:func:`atomic_write_bytes`)."""
    import sys
    if str(path) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    p = Path(path)
    if p.is_symlink() or (p.exists() and not p.is_file()):
        with open(p, "wb") as f:
            f.write(data)
        return
    atomic_write_bytes(p, data)


def error_line(e: BaseException, with_type: bool = False) -> str:
    """The first line of an exception's message (its type's name when it has none): what the CLI
    prints on stderr and what a batch writes in a file's error row. ``with_type``: "Type: line"."""
    text = str(e).strip()
    line = text.splitlines()[0] if text else ""
    if with_type:
        return f"{type(e).__name__}: {line}" if line else type(e).__name__
    return line or type(e).__name__


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, then rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


MAX_INPUT_BYTES = 2 ** 30  # an image file larger than this is refused before it is read (issue 25, item 10)


def check_input_file(path, max_bytes: int = MAX_INPUT_BYTES) -> Path:
    """An input file that can be read whole: it exists, is a regular file (not a FIFO or a device,
    which would hang or never end) and is not larger than ``max_bytes``; else one line."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: no such file")
    if not p.is_file():
        raise ValueError(f"{p}: not a regular file")
    size = p.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{p}: {size / 2 ** 20:.0f} MiB, more than the {max_bytes // 2 ** 20} MiB an image file may "
                         "have here")
    return p


def check_output_file(path, inputs=()) -> None:
    """Refuse an output file that cannot be written, or that is one of the ``inputs`` (the same
    file, also through a link: writing it would destroy the evidence), before any work (one line,
    exit 2). ``-`` is standard output."""
    if str(path) == "-":
        return
    if path.exists():
        for f in inputs:
            try:
                same = os.path.samefile(path, f)
            except OSError:
                same = False
            if same:
                raise ValueError(f"{path} is one of the inputs ({f}): refusing to write over it")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a file")
    if not path.parent.is_dir():
        raise ValueError(f"{path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: folder {path.parent} is not writable")


def check_output_folder(out) -> None:
    """Refuse an output folder that cannot be written, before any work (one line, exit 2)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--out {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: {parent} is not writable")
