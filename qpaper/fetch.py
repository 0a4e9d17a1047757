"""Download the paper's datasets (RAISE, Dresden) from their official URL lists (Section 4.2).

The lists are CSV files the user obtains from the datasets' sites (RAISE: ``RAISE_8k.csv`` with a
``TIFF`` column of URLs; Dresden: a CSV with a URL column). Downloads resume from ``.part`` files
with HTTP Range requests, are checked against a checksum column when the list has one (sha256 or
md5), and are recorded with their sha256 in ``manifest.tsv``, written atomically after each file.
"""

from __future__ import annotations

import csv
import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from .sources import SourceError

from .paths import atomic_write_bytes, file_digest, raw_dir, sha256_file

URL_COLUMNS = {"raise": ("TIFF", "tiff", "url", "URL"), "dresden": ("url", "URL", "Url", "link")}
MANIFEST_FIELDS = ("file", "url", "bytes", "sha256", "status")


def read_url_list(csv_path, name: str, url_column: str | None = None) -> list[dict]:
    """Rows of the official list: dicts with ``url``, ``file`` and an optional ``sha256``/``md5``."""
    p = Path(csv_path)
    if not p.is_file():
        raise SourceError(f"URL list {p} not found")
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        col = url_column or next((c for c in URL_COLUMNS.get(name, ("url",)) if c in cols), None)
        if col is None or col not in cols:
            raise SourceError(f"{p}: no URL column (looked for {url_column or URL_COLUMNS.get(name)}; "
                              f"columns are {cols}); pass --url-column")
        rows = []
        for r in reader:
            url = (r.get(col) or "").strip()
            if not url:
                continue
            fname = os.path.basename(urllib.parse.urlparse(url).path) or f"{len(rows):06d}"
            if "File" in r and r["File"] and not Path(fname).suffix:
                fname = r["File"] + ".TIF"
            rows.append({"url": url, "file": fname,
                         "sha256": (r.get("sha256") or "").strip().lower() or None,
                         "md5": (r.get("md5") or r.get("MD5") or "").strip().lower() or None})
    if not rows:
        raise SourceError(f"{p}: the URL list is empty")
    if len({r["file"] for r in rows}) != len(rows):
        raise SourceError(f"{p}: two URLs map to the same file name")
    return rows


def _read_manifest(path: Path) -> dict:
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {r["file"]: r for r in csv.DictReader(f, delimiter="\t")}


def _write_manifest(path: Path, entries: dict) -> None:
    text = "\t".join(MANIFEST_FIELDS) + "\n" + "".join(
        "\t".join(str(entries[k][c]) for c in MANIFEST_FIELDS) + "\n" for k in sorted(entries))
    atomic_write_bytes(path, text.encode())


def download(url: str, dest: Path, timeout: float = 60.0, retries: int = 3, bar=None) -> None:
    """Fetch ``url`` to ``dest``, resuming ``dest.part`` with a Range request; rename at the end."""
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                if have and resp.status != 206:
                    have = 0  # the server ignored the range: start again
                with open(part, "ab" if have else "wb") as f:
                    if bar is not None and have:
                        bar.update(have)
                    while True:
                        chunk = resp.read(1 << 16)
                        if not chunk:
                            break
                        f.write(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                expected = resp.headers.get("Content-Range", "").rpartition("/")[2] or resp.headers.get("Content-Length")
            size = part.stat().st_size
            if expected and expected.isdigit() and resp.status == 206 and size != int(expected):
                raise urllib.error.URLError(f"short read ({size} of {expected} bytes)")
            if expected and expected.isdigit() and resp.status == 200 and size != int(expected):
                raise urllib.error.URLError(f"short read ({size} of {expected} bytes)")
            os.replace(part, dest)
            return
        except urllib.error.HTTPError as e:
            if e.code == 416 and part.exists():  # range past the end: the part is complete
                os.replace(part, dest)
                return
            if e.code < 500 or attempt == retries:
                raise SourceError(f"{url}: HTTP {e.code}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as e:
            if attempt == retries:
                raise SourceError(f"{url}: {getattr(e, 'reason', e)}") from None
        if bar is not None:
            bar.reset()
        time.sleep(min(2 ** attempt * 0.2, 5))


def fetch(name: str, csv_path, out_dir=None, url_column: str | None = None, limit: int | None = None,
          timeout: float = 60.0, progress: bool = True) -> Path:
    """Download the images of ``name`` listed in ``csv_path`` into ``out_dir`` (default
    ``data/raw/<name>``). Files already in the manifest with status ok and the same size are
    skipped. Returns the output folder; raises SourceError if any file failed."""
    rows = read_url_list(csv_path, name, url_column)[:limit]
    out = Path(out_dir or raw_dir() / name)
    out.mkdir(parents=True, exist_ok=True)
    mpath = out / "manifest.tsv"
    entries = _read_manifest(mpath)
    failed = []
    for i, r in enumerate(rows):
        dest = out / r["file"]
        e = entries.get(r["file"])
        if e and e["status"] == "ok" and dest.exists() and dest.stat().st_size == int(e["bytes"]):
            continue
        desc = f"{name} {i + 1}/{len(rows)} {r['file']}"
        with tqdm(desc=desc, unit="B", unit_scale=True, disable=not progress, leave=False) as bar:
            try:
                download(r["url"], dest, timeout=timeout, bar=bar)
                status = "ok"
            except SourceError as err:
                failed.append(str(err))
                entries[r["file"]] = {"file": r["file"], "url": r["url"], "bytes": 0, "sha256": "", "status": "failed"}
                _write_manifest(mpath, entries)
                continue
        digest = sha256_file(dest)
        if r["sha256"] and digest != r["sha256"]:
            status = "checksum-mismatch"
        elif r["md5"] and file_digest(dest, "md5") != r["md5"]:
            status = "checksum-mismatch"
        if status != "ok":
            dest.unlink()
            failed.append(f"{r['file']}: checksum differs from the list")
        entries[r["file"]] = {"file": r["file"], "url": r["url"], "bytes": dest.stat().st_size if dest.exists() else 0,
                              "sha256": digest, "status": status}
        _write_manifest(mpath, entries)
    if failed:
        raise SourceError(f"{len(failed)} of {len(rows)} downloads failed; first: {failed[0]} "
                          f"(run again to resume)")
    return out

