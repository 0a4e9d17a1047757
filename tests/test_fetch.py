"""Downloads against a local HTTP server on 127.0.0.1 with Range support and injected faults."""
import hashlib
import http.server
import threading

import pytest

from qpaper import fetch
from qpaper.sources import SourceError

FILES = {f"img{i}.TIF": bytes((i * 7 + k) % 251 for k in range(50_000 + i * 1000)) for i in range(3)}


class Handler(http.server.BaseHTTPRequestHandler):
    drop_first = set()  # paths whose first GET is cut off half-way
    requests = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        name = self.path.lstrip("/")
        type(self).requests.append((name, self.headers.get("Range")))
        if name not in FILES:
            self.send_error(404)
            return
        data, start = FILES[name], 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name in self.drop_first:
            self.drop_first.discard(name)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    Handler.requests.clear()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def write_csv(path, base, names, sha=None):
    lines = ["File,TIFF" + (",sha256" if sha else "")]
    for n in names:
        lines.append(f"{n[:-4]},{base}/{n}" + (f",{sha[n]}" if sha else ""))
    path.write_text("\n".join(lines) + "\n")


def test_fetch_resumes_a_cut_download_and_checks_sha256(server, tmp_path):
    sha = {n: hashlib.sha256(d).hexdigest() for n, d in FILES.items()}
    csv = tmp_path / "RAISE_8k.csv"
    write_csv(csv, server, list(FILES), sha)
    Handler.drop_first = {"img1.TIF"}
    out = fetch.fetch("raise", csv, tmp_path / "raise", progress=False, timeout=5)
    for n, d in FILES.items():
        assert (out / n).read_bytes() == d
    ranged = [r for n, r in Handler.requests if n == "img1.TIF"]
    assert ranged[0] is None and ranged[1] and ranged[1].startswith("bytes=") and ranged[1] != "bytes=0-"
    manifest = (out / "manifest.tsv").read_text().splitlines()
    assert len(manifest) == 4 and all(line.endswith("\tok") for line in manifest[1:])
    # a second run downloads nothing
    Handler.requests.clear()
    fetch.fetch("raise", csv, out, progress=False)
    assert Handler.requests == []


def test_fetch_rejects_a_checksum_mismatch(server, tmp_path):
    csv = tmp_path / "list.csv"
    write_csv(csv, server, ["img0.TIF"], {"img0.TIF": "0" * 64})
    with pytest.raises(SourceError, match="failed"):
        fetch.fetch("raise", csv, tmp_path / "o", progress=False)
    assert not (tmp_path / "o" / "img0.TIF").exists()


def test_fetch_reports_missing_files(server, tmp_path):
    csv = tmp_path / "list.csv"
    write_csv(csv, server, ["img0.TIF", "nope.TIF"])
    with pytest.raises(SourceError, match="1 of 2"):
        fetch.fetch("raise", csv, tmp_path / "o", progress=False)
    assert (tmp_path / "o" / "img0.TIF").read_bytes() == FILES["img0.TIF"]


def test_url_list_needs_a_url_column(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(SourceError, match="URL column"):
        fetch.read_url_list(p, "dresden")


def test_data_fetch_through_the_cli_downloads_checks_and_lists(server, tmp_path):
    """``qpaper data fetch raise --csv`` against the local server: files and manifest on disk,
    one summary line; a bad list is one error line and status 2."""
    import os
    import subprocess
    import sys
    sha = {n: hashlib.sha256(d).hexdigest() for n, d in FILES.items()}
    csv = tmp_path / "RAISE_8k.csv"
    write_csv(csv, server, list(FILES), sha)
    out = tmp_path / "raw" / "raise"  # data/raw/raise with QPAPER_DATA as data/
    cmd = [sys.executable, "-m", "qpaper.cli", "data", "fetch", "raise", "--csv", str(csv)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, QPAPER_DATA=str(tmp_path)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == f"raise: downloaded and checked into {out}"
    assert all((out / n).read_bytes() == d for n, d in FILES.items())
    r = subprocess.run([sys.executable, "-m", "qpaper.cli", "data", "list", "raise"], capture_output=True, text=True,
                       env=dict(os.environ, QPAPER_DATA=str(tmp_path)))
    assert r.returncode == 0, r.stderr
    assert sorted(line.split("\t")[0] for line in r.stdout.splitlines()[1:]) == ["img0", "img1", "img2"]
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    r = subprocess.run(cmd[:7] + [str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o")], capture_output=True,
                       text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "URL column" in r.stderr
