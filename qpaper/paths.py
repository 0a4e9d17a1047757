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


def printable(text: str) -> str:
    """``text`` as one printable line: undecodable bytes as \\x.., control characters (a newline,
    ESC) escaped, so a crafted file name can neither add a line to a report nor drive the terminal."""
    text = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


MAX_ERROR = 600  # characters of an error reason kept on its one line


def error_line(e: BaseException, with_type: bool = False) -> str:
    """An exception's message as one printable line (its type's name when it has none): what the
    CLI prints on stderr and what a batch writes in a file's error row. A newline in a file name
    is escaped, not a cut (issue 32, item 11); a long message is shortened. ``with_type``:
    "Type: line"."""
    line = printable(str(e).strip())
    if len(line) > MAX_ERROR:
        line = line[:MAX_ERROR - 3] + "..."
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


def inside(path, folder) -> bool:
    """``path`` is ``folder`` or lies below it, links resolved."""
    p, f = os.path.realpath(path), os.path.realpath(folder)
    return p == f or p.startswith(f.rstrip(os.sep) + os.sep)


def read_only(path) -> bool:
    """``path`` has no write permission bit at all (root could write it anyway: the bits say what
    its owner wants)."""
    try:
        return not os.stat(path).st_mode & 0o222
    except OSError:
        return False


def check_output_file(path, inputs=(), ours=None, what="output") -> None:
    """Refuse an output file before any work (one line, exit 2) when writing it could destroy
    evidence (issue 32, item 1): it is one of the ``inputs`` (the same file, also through a link),
    lies inside an input folder, exists and is not a file this command writes (``ours(path)``
    True; a 0-byte file holds nothing to lose), or is read-only; or when it cannot be written.
    ``-`` is standard output; a device or a FIFO is written through, never replaced."""
    if str(path) == "-":
        return
    path = Path(path)
    for f in inputs:
        if Path(f).is_dir() and inside(path.parent, f):
            raise ValueError(f"{path} lies inside the input folder {f}: outputs never go among the evidence "
                             "(write it elsewhere)")
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
    if path.is_file():
        if read_only(path):
            raise ValueError(f"{path} is read-only: refusing to replace it")
        if path.stat().st_size and ours is not None and not ours(path):
            raise ValueError(f"{path} exists and is not a {what}: refusing to replace a file this command did not "
                             "write (choose a new name, or move it away)")
    if not path.parent.is_dir():
        raise ValueError(f"{path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: folder {path.parent} is not writable")


def check_output_folder(out, inputs=(), ours=None, what="--out") -> None:
    """Refuse an output folder before any work (one line, exit 2): one that cannot be written, one
    that holds (or is) the folder of an input, and one that holds anything but what an earlier run
    of the same command wrote (``ours(folder)``: the names it may replace; None: any). A new or
    empty folder is always fine (issue 32, item 1)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{what} {out}: exists and is not a folder")
    for f in inputs:
        if inside(f, out):
            raise ValueError(f"{what} {out}: holds the input {f}: outputs never go among the evidence (choose a new "
                             "or empty folder)")
    if out.is_dir() and ours is not None:
        present = {p.name for p in out.iterdir()}
        foreign = sorted(present - set(ours(out)))
        if foreign:
            raise ValueError(f"{what} {out}: holds {foreign[0]!r}{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}"
                             ", which no earlier run of this command wrote: choose a new or empty folder")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{what} {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {out}: {parent} is not writable")
