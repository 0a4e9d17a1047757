"""Many files at once: ``qpaper estimate FILES/FOLDERS --csv/--jsonl`` (issue 23), its outputs
growing as files finish and surviving a stopped run, in one process or on a Dask cluster
(:mod:`qpaper.cluster`).

An output PATH is written in two steps. While the batch runs, each finished file appends one whole
record (one write, flushed) to ``PATH.partial``, in the order the files finish. At the end the
records are written to PATH in the order of the inputs (a temporary name, then a rename): the bytes
of a one-process run, whatever the number of workers and the order they finished in. Then
``PATH.partial`` goes. ``--resume`` reads PATH and ``PATH.partial``, keeps their whole records (a
torn last one, from a killed run, is dropped) and estimates only the files missing from them; a file
whose record holds an error is tried again.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import itertools
import json
import os
import re
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

from . import cluster, estimate
from .paths import atomic_write_bytes, check_output_file, error_line, write_output

ENCODING = dict(encoding="utf-8", errors="surrogateescape")  # file names as their bytes


def _csv_text(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(values)
    return buf.getvalue()


def _csv_records(text: str):
    """(fields, raw text) of each CSV record of ``text`` in turn; fields None where the parser
    fails (then it stops)."""
    consumed = []

    def lines(src=io.StringIO(text, newline="")):
        for line in src:
            consumed.append(line)
            yield line

    reader = csv.reader(lines())
    while True:
        consumed.clear()
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield None, "".join(consumed)
            return
        yield fields, "".join(consumed)


def _whole(record) -> bool:
    """A CSV record with every column and its line end (CRLF as written, or LF after an editor,
    sed or pandas rewrote the table: issue 32, item 6)."""
    fields, raw = record
    return fields is not None and len(fields) == len(estimate.CSV_FIELDS) and raw.endswith("\n")


def is_table(path, kind: str) -> bool:
    """``path`` starts like a table ``qpaper estimate`` writes of ``kind``: the CSV header of
    :data:`estimate.CSV_FIELDS`, or a JSON object with a ``file`` and ``method`` or ``error``."""
    try:
        with open(path, newline="", **ENCODING) as f:
            first = f.readline(1 << 16)
    except OSError:
        return False
    if kind == "csv":
        return first.rstrip("\r\n") == _csv_text(estimate.CSV_FIELDS).rstrip("\r\n")
    try:
        r = json.loads(first)
    except ValueError:
        return False
    return isinstance(r, dict) and isinstance(r.get("file"), str) and ("method" in r or "error" in r)


def _damaged(path, k: int):
    raise ValueError(f"{path}: record {k} is damaged and others follow it; it was not written by a stopped run, so "
                     "it is not resumed (move it away to start over)")


class Table:
    """One output of a batch: ``kind`` "csv" (the columns of :data:`estimate.CSV_FIELDS`) or
    "jsonl" (the dicts of ``--json``, one per line). ``-``, a device or a FIFO is written once at
    the end (no partial, no resume); a regular file or a new name grows in ``PATH.partial``."""

    def __init__(self, path, kind: str):
        self.name, self.kind = str(path), kind
        self.path = Path(path)
        self.stream = self.name == "-" or (self.path.exists() and not self.path.is_file())
        if not self.stream and self.name:  # links resolved: the partial, the lock and the table are one file each
            self.path = Path(os.path.realpath(self.path))
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.lockfile = self.path.with_name(self.path.name + ".lock")
        self.header = _csv_text(estimate.CSV_FIELDS) if kind == "csv" else ""
        self.kept: dict[str, str] = {}  # file -> record, from an earlier run
        self.options: set[str] = set()  # the options of the kept records (estimate.options_of)
        self.new: dict[str, str] = {}  # file -> record, from this run
        self._f = self._lock = None

    def check(self, inputs) -> None:
        """Before any work: the table, its partial and its lock may only be new names or files an
        earlier ``qpaper estimate`` wrote, never an input or inside an input folder (issue 32,
        item 1)."""
        what = f"qpaper {self.kind.upper()} table"
        check_output_file(self.path, inputs, lambda p: is_table(p, self.kind), what)
        if self.stream:
            return
        check_output_file(self.partial, inputs, lambda p: is_table(p, self.kind), what)
        check_output_file(self.lockfile, inputs, lambda p: False, "lock")

    def encode(self, r: dict) -> str:
        if self.kind == "jsonl":
            return json.dumps(r) + "\n"
        row = estimate.csv_row(r)
        return _csv_text([row[k] for k in estimate.CSV_FIELDS])

    def records(self, path: Path) -> list[tuple[str, str, bool, str]]:
        """(file, record, holds an error, method) for each whole record of ``path``; a torn last
        record is dropped, a damaged one followed by others is refused (no run wrote that)."""
        if not path.exists():
            return []
        with open(path, newline="", **ENCODING) as f:
            text = f.read()
        chunks = []  # (record text, parsed) in order; parsed None when the record is not whole
        if self.kind == "jsonl":
            for line in io.StringIO(text, newline="\n"):
                try:
                    r = json.loads(line) if line.endswith("\n") else None
                except ValueError:
                    r = None
                chunks.append((line, r if isinstance(r, dict) and isinstance(r.get("file"), str) else None))
            got = [(r["file"], line, "error" in r, str(r.get("options", ""))) if r else None for line, r in chunks]
        else:
            records = _csv_records(text)
            header, pos = next(records, (None, ""))
            if not text:
                return []
            if header != estimate.CSV_FIELDS:
                raise ValueError(f"{path} is not a table of qpaper estimate (its columns differ): not resuming it")
            got, pos = [], len(pos)
            for fields, raw in records:
                if _whole((fields, raw)):
                    row = dict(zip(estimate.CSV_FIELDS, fields))
                    got.append((estimate.csv_uncell(row["file"]), _csv_text(fields), bool(row["error"]),
                                estimate.csv_uncell(row["options"])))
                    pos += len(raw)
                    continue
                # not whole: a torn last write, unless a whole record starts after one of its line ends
                # (an unclosed quote swallows the records after it)
                rest = text[pos:]
                starts = [m.end() for m in itertools.islice(re.finditer("\n", rest), 1000)]
                if any(_whole(next(_csv_records(rest[i:]), (None, ""))) for i in starts if i < len(rest)):
                    _damaged(path, len(got) + 1)
                break
            return got
        for k, g in enumerate(got):
            if g is None and k < len(got) - 1:
                _damaged(path, k + 1)
        return [g for g in got if g is not None]

    def load(self) -> None:
        """The whole, error-free records of ``PATH.partial`` if a run stopped (it starts with every
        record that run kept: a run that started over ignores the older PATH), else of PATH."""
        for f, rec, failed, options in self.records(self.partial if self.partial.exists() else self.path):
            self.kept.pop(f, None)
            if not failed:
                self.kept[f] = rec
                self.options.add(options)

    def lock(self) -> None:
        """Hold ``PATH.lock`` until :meth:`release`: a second run on the same table is refused."""
        import fcntl
        if self.stream:
            return
        self._lock = open(self.lockfile, "a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise ValueError(f"{self.name} is being written by another qpaper run (it holds {self.lockfile})") from None

    def release(self) -> None:
        if self._lock is not None:
            self.lockfile.unlink(missing_ok=True)  # check() refused a lock name holding anything
            self._lock.close()
            self._lock = None

    def start(self) -> None:
        """``PATH.partial`` holds the kept records (written whole), then grows."""
        if self.stream:
            return
        atomic_write_bytes(self.partial, (self.header + "".join(self.kept.values())).encode(**ENCODING))
        self._f = open(self.partial, "a", newline="", **ENCODING)

    def add(self, r: dict) -> None:
        rec = self.encode(r)
        self.new[r["file"]] = rec
        if self._f is not None:
            self._f.write(rec)  # one whole record, then flushed: a killed run leaves whole records
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def finish(self, order: list[str]) -> None:
        """PATH: the header, then a record for each file of ``order`` (this run's, else the kept
        one), then kept records of files not in ``order``; ``PATH.partial`` removed."""
        seen, body = set(), []
        for f in order:
            rec = self.new.get(f, self.kept.get(f))
            if rec is not None and f not in seen:
                seen.add(f)
                body.append(rec)
        body += [rec for f, rec in self.kept.items() if f not in seen]
        write_output(self.name if self.stream else self.path, (self.header + "".join(body)).encode(**ENCODING))
        self.close()
        if not self.stream and self.partial.exists():
            self.partial.unlink()


def run(inputs, csv_path=None, jsonl_path=None, json_lines: bool = False, resume: bool = False,
        scheduler: str | None = None, progress: bool = True, out=None, err=None, **kw) -> tuple[int, int]:
    """Estimate every JPEG of ``inputs`` (files and folders, as :func:`estimate.expand_inputs`) into
    the tables ``csv_path`` and ``jsonl_path``, printing one line per file (``json_lines``: the dict)
    in the order of the inputs. ``resume``: skip the files the tables already hold. ``scheduler``:
    a Dask scheduler address or ``local:N`` (:func:`qpaper.cluster.client`). Returns (files that
    could not be estimated, files estimated now). ``kw`` as for :func:`estimate.run`."""
    out, err = out or sys.stdout, err or sys.stderr
    folder_errors = []
    files = list(dict.fromkeys(estimate.expand_inputs(inputs, folder_errors)))  # a file named twice: one row
    named = [(p, k) for p, k in ((csv_path, "csv"), (jsonl_path, "jsonl")) if p]
    tables = [Table(p, k) for p, k in named]
    real = [os.path.realpath(q) for t in tables if not t.stream for q in (t.path, t.partial)]
    if len(set(real)) < len(real) or [t.name for t in tables].count("-") > 1:
        raise ValueError("--csv and --jsonl name the same output")
    for t in tables:
        t.check([*inputs, *files])
    if not files and not folder_errors:
        raise ValueError(f"no JPEG file (.jpg, .jpeg, .jpe, .jfif) in {' '.join(map(str, inputs))}")
    if resume and (not tables or any(t.stream for t in tables)):
        raise ValueError("--resume needs --csv FILE or --jsonl FILE (a regular file): the table it continues")
    with ExitStack() as stack:
        for t in tables:
            t.lock()
            stack.callback(t.release)
        done = set()
        if resume:
            options = estimate.options_of(kw)
            for t in tables:
                t.load()
                other = t.options - {options}
                if other:
                    raise ValueError(f"{t.name} holds rows estimated with other options ({sorted(other)[0] or 'none'}"
                                     f", not {options}): resume with the options of the stopped run, or start a "
                                     "new table")
            done = set.intersection(*(set(t.kept) for t in tables))  # in one table only: estimated again
        for t in tables:
            if not resume and not t.stream and t.partial.exists():
                raise ValueError(f"{t.partial} holds a stopped run: add --resume to continue it, or remove it")
        todo = [(i, f) for i, f in enumerate(files) if str(f) not in done]
        echo = err if any(t.name == "-" for t in tables) else out  # with --csv -, stdout holds the table alone
        c = stack.enter_context(cluster.client(scheduler)) if scheduler else None  # before any output
        if resume:
            print(f"resuming: {len(files) - len(todo)} of {len(files)} files already in "
                  f"{' and '.join(t.name for t in tables)}; estimating {len(todo)}", file=err, flush=True)
        with terminated_as_interrupt():
            return _run(tables, files, folder_errors, todo, c, json_lines, progress, echo, err, kw)


def _run(tables, files, folder_errors, todo, c, json_lines, progress, echo, err, kw):
    from tqdm import tqdm
    for t in tables:
        t.start()
    shown = {}  # index -> line, printed in input order
    order = iter([i for i, _ in todo])
    nxt = next(order, None)
    failed = 0

    def record(r):
        nonlocal failed
        failed += "error" in r
        for t in tables:
            t.add(r)

    try:
        for folder, why in folder_errors:
            r = {"file": str(folder), "error": why}
            record(r)
            print(json.dumps(r) if json_lines else estimate.summary_line(r), file=echo, flush=True)
        with tqdm(total=len(files), initial=len(files) - len(todo), unit="file", desc="estimating",
                  disable=not progress) as bar:
            for i, r in _results(todo, c, kw):
                record(r)
                shown[i] = json.dumps(r) if json_lines else estimate.summary_line(r)
                while nxt in shown:
                    print(shown.pop(nxt), file=echo, flush=True)
                    nxt = next(order, None)
                bar.update(1)
        order = [str(f) for f, _ in folder_errors] + [str(f) for f in files]
        for t in tables:
            t.finish(order)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see run)
        print(f"qpaper: {kept(tables)}", file=err, flush=True)
        raise
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        raise ValueError(f"no space left on the device: {kept(tables)}") from None
    finally:
        for t in tables:
            t.close()
    return failed, len(todo) + len(folder_errors)


def kept(tables) -> str:
    """What a stopped batch kept, and how to go on: one line."""
    grown = [str(t.partial) for t in tables if not t.stream and t.partial.exists()]
    if not grown:
        return "nothing was kept (the outputs are standard output or a device): run the command again"
    return f"the finished files are kept in {' and '.join(grown)}: the same command with --resume continues"


class Terminated(KeyboardInterrupt):
    """SIGTERM during a batch: stopped like Ctrl-C, saying what was kept."""


@contextlib.contextmanager
def terminated_as_interrupt():
    """While a batch runs, SIGTERM (a scheduler's kill, ``timeout``) stops it as Ctrl-C does: the
    partial tables stay whole and the user is told how to resume (issue 32, item 7)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated()

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _results(todo, c, kw):
    """(index, dict) for each (index, file) of ``todo``: in order in this process, or as they
    finish on the Dask cluster of client ``c``."""
    if c is not None:
        yield from on_cluster(c, todo, kw)
        return
    if kw.get("method") in ("cnn", "file", None):
        from .backend import import_backend_quietly
        import_backend_quietly()
    models = {}
    for i, f in todo:
        yield i, estimate.run_one(f, models, **kw)


# ---- on a Dask cluster: the task each worker runs, and its cache ------------------------------

_MODELS = {}  # a worker process's loaded models, kept for its next files
_STATS = {"files": 0, "loads": 0}
_ONE_AT_A_TIME = threading.Lock()  # the backend uses the worker's cores inside one estimate


def _estimate_task(index, path, kw, env, cwd):
    with _ONE_AT_A_TIME:
        os.environ.update(env)
        if os.path.isdir(cwd):  # relative names (files, --model) mean what they mean to the client
            os.chdir(cwd)
        if kw.get("method") in ("cnn", "file", None):
            from .backend import import_backend_quietly
            import_backend_quietly()
        before = len(_MODELS)
        r = estimate.run_one(Path(path), _MODELS, **kw)
        _STATS["files"] += 1
        _STATS["loads"] += len(_MODELS) - before
        return r


def _stats() -> dict:
    return dict(_STATS)


def worker_stats(c) -> dict:
    """{worker address: {"files", "loads"}}: what each worker estimated and how many models it
    loaded doing so."""
    return c.run(_stats)


def on_cluster(c, todo, kw: dict):
    """(index, dict of :func:`qpaper.estimate.run_one`) for each (index, file) of ``todo``, as the
    workers of client ``c`` finish them (they find the models where this process does); a worker
    that dies on a file gives that file an error row."""
    from . import paths
    env = {"QPAPER_MODELS": os.path.abspath(os.environ.get("QPAPER_MODELS", paths.ROOT / "models"))}
    for (i, f), fut in cluster.as_finished(c, _estimate_task, ((i, str(f)) for i, f in todo), kw, env,
                                           os.getcwd()):
        try:
            yield i, fut.result()
        except Exception as e:  # the worker died (KilledWorker) or the task could not run there
            yield i, {"file": f, "error": f"failed on the cluster: {error_line(e, with_type=True)}"}
