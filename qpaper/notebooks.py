"""Execute the experiment notebooks with papermill: ``qpaper notebooks --profile mini``.

The notebooks are authored as jupytext percent-format ``.py`` files in ``notebooks/``; each has a
``parameters`` cell whose defaults are the smoke profile. Executed copies go to
``results/<profile>/notebooks/`` (written to a temporary name, then renamed).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from .paths import ROOT

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # kernels inherit it: no TensorFlow start-up lines

NOTEBOOK_DIR = ROOT / "notebooks"


def notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]-*.py"))


def run(path: Path, profile: str, seed: int = 0, out_dir: Path | None = None, log=print, progress: bool = True,
        **parameters) -> Path:
    """Run one notebook with papermill at ``profile`` and write the executed ``.ipynb``."""
    import jupytext
    import nbformat
    import papermill as pm

    from .paths import results_dir, temporary_beside
    out_dir = Path(out_dir or results_dir(profile) / "notebooks")
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    target = out_dir / (path.stem + ".ipynb")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / path.with_suffix(".ipynb").name
        nbformat.write(nb, src)
        fd, part = temporary_beside(target, ".ipynb")
        os.close(fd)
        try:
            t0 = time.time()
            log(f"notebook {path.name} ({profile})")
            pm.execute_notebook(str(src), part, parameters={"profile": profile, "seed": seed, **parameters},
                                kernel_name="python3", cwd=str(ROOT), progress_bar=progress)
            os.replace(part, target)
            log(f"notebook {path.name}: {time.time() - t0:.0f} s -> {target}")
        finally:
            if os.path.exists(part):
                os.unlink(part)
    return target


def matches(stem: str, only: str) -> bool:
    """``--only`` takes a notebook's number (``7`` or ``07``) or the start of its name."""
    if only.isdigit():
        return stem.split("-")[0].isdigit() and int(stem.split("-")[0]) == int(only)
    return stem.startswith(only)


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names it and the cell's exception in one line."""


def run_all(profile: str, seed: int = 0, only=None, out_dir=None, log=print) -> Path:
    """Execute the notebooks (all, or those ``only`` names) in order, and write ``timings.csv``
    beside them (with ``only``, the other notebooks' rows are kept). Returns its path."""
    from .paths import atomic_write_bytes, results_dir
    from .provenance import record, write_sidecar
    todo = [n for n in notebooks() if not only or any(matches(n.stem, o) for o in only)]
    if not todo:
        raise ValueError(f"no notebook matches {' '.join(only or [])}")
    t_all, rows = time.time(), []
    for k, path in enumerate(todo, 1):
        try:
            t0 = time.time()
            run(path, profile, seed, out_dir, log=lambda m, k=k: log(f"[{k}/{len(todo)}] {m}"))
            rows.append(f"{path.stem},{time.time() - t0:.1f}")
        except Exception as e:  # papermill's PapermillExecutionError carries the cell's exception
            what = f"{e.ename}: {e.evalue}" if hasattr(e, "ename") else (str(e).splitlines() or [repr(e)])[0]
            raise NotebookFailed(f"notebook {path.name} failed: {what}") from None
    out = Path(out_dir or results_dir(profile) / "notebooks") / "timings.csv"
    if only and out.exists():  # keep the timings of the notebooks not re-run
        done = {r.split(",")[0] for r in rows}
        kept = [r for r in out.read_text().splitlines()[1:] if r and r.split(",")[0] not in done]
        rows = sorted(kept + rows)
    atomic_write_bytes(out, ("notebook,seconds\n" + "\n".join(rows) + "\n").encode())
    write_sidecar(out, record(profile, seed, t_all, command=f"qpaper notebooks --profile {profile}"
                              + (f" --only {' '.join(only)} (other rows kept from earlier runs)" if only else "")))
    log(f"notebooks: {len(todo)} executed in {time.time() - t_all:.0f} s; timings in {out}")
    return out
