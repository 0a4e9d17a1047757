"""Issue 32: evidence is never touched, round 3. One test per numbered case of the issue; each
failed on main fcebbde (outputs replaced or deleted, a verdict with no warning, a mask on an
untouched photo, a foreign model run, formulas in cells, rows lost on resume, a bypassed lock, a
hang, tracebacks, forged report lines, stray bytes refused)."""
import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qpaper import batch, cli, jpeg, paths

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def photo():
    from qpaper.sources import read_image, skimage_dir
    return read_image(skimage_dir() / "coffee.png")


def jpeg_bytes(rgb, quality, **kw) -> bytes:
    b = io.BytesIO()
    Image.fromarray(rgb).save(b, "JPEG", quality=quality, **kw)
    return b.getvalue()


@pytest.fixture
def evidence(tmp_path, photo):
    """A folder of evidence: two JPEGs, a note, a PNG, a JPEG without suffix, a JPEG in a subfolder."""
    ev = tmp_path / "ev"
    (ev / "sub").mkdir(parents=True)
    double = jpeg.encode_opencv(jpeg.decode(jpeg_bytes(photo[:256, :256], 70)), 90)
    (ev / "a.jpg").write_bytes(double)
    (ev / "b.jpg").write_bytes(jpeg_bytes(photo[:128, :128], 85))
    (ev / "notes.txt").write_text("chain of custody: do not touch\n")
    Image.fromarray(photo[:64, :64]).save(ev / "photo.png")
    (ev / "IMG_0001").write_bytes(double)
    (ev / "sub" / "c.jpg").write_bytes(jpeg_bytes(photo[:96, :96], 80))
    return ev


def snapshot(folder: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mode) for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(capfd, *args):
    status = cli.main([*map(str, args)])
    out, err = capfd.readouterr()
    return status, out, err


def refused(status, out, err, *words):
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (status, err)
    for w in words:
        assert w in err, (w, err)


# ---- item 1: an output never replaces or deletes a file the run did not write --------------------

def test_a_table_never_replaces_evidence_nor_lands_in_an_input_folder(capfd, evidence, tmp_path):
    before = snapshot(evidence)
    other = tmp_path / "other"
    other.mkdir()
    (other / "b.jpg").write_bytes((evidence / "b.jpg").read_bytes())  # a JPEG that is not an input
    (other / "prices.csv").write_text("item,price\nx,1\n")  # a CSV that is not a qpaper table
    for target in ("notes.txt", "photo.png", "IMG_0001", "sub/b.jpg", "new.csv"):
        for flag in ("--csv", "--jsonl"):
            refused(*run_cli(capfd, "estimate", evidence, flag, evidence / target, "--method", "galvan", "--quiet"),
                    "inside the input folder")
    for target in (other / "b.jpg", other / "prices.csv"):
        refused(*run_cli(capfd, "estimate", evidence / "a.jpg", "--csv", target, "--method", "galvan", "--quiet"),
                "is not a qpaper CSV table")
    assert snapshot(evidence) == before and (other / "prices.csv").read_text() == "item,price\nx,1\n"
    # a qpaper table may be written again, but not when its owner made it read-only
    table = tmp_path / "t.csv"
    assert run_cli(capfd, "estimate", evidence / "a.jpg", "--csv", table, "--method", "galvan", "--quiet")[0] == 0
    assert run_cli(capfd, "estimate", evidence / "a.jpg", "--csv", table, "--method", "galvan", "--quiet")[0] == 0
    table.chmod(0o444)
    kept = table.read_bytes()
    refused(*run_cli(capfd, "estimate", evidence / "a.jpg", "--csv", table, "--method", "galvan", "--quiet"),
            "read-only")
    assert table.read_bytes() == kept and (table.stat().st_mode & 0o777) == 0o444
    # a JSONL table is not a CSV one, nor the other way round
    refused(*run_cli(capfd, "estimate", evidence / "a.jpg", "--jsonl", table, "--method", "galvan", "--quiet"))


def test_localize_out_must_be_new_empty_or_its_own(capfd, evidence, tmp_path, registry_dir, monkeypatch):
    monkeypatch.setenv("QPAPER_MODELS", str(registry_dir))
    (evidence / "mask.png").write_bytes((evidence / "a.jpg").read_bytes())  # a JPEG named like an output
    (evidence / "map-k07.png").write_bytes(b"an earlier analysis")
    before = snapshot(evidence)
    refused(*run_cli(capfd, "localize", evidence / "a.jpg", "--out", evidence, "--quiet"), "holds the input")
    refused(*run_cli(capfd, "localize", evidence / "mask.png", "--out", evidence, "--quiet"), "holds the input")
    other = tmp_path / "o"
    other.mkdir()
    (other / "summary.json").write_text('{"mine": true}')
    (other / "qm.npy").write_bytes(b"not ours")
    refused(*run_cli(capfd, "localize", evidence / "a.jpg", "--out", other, "--quiet"), "no earlier run")
    assert snapshot(evidence) == before and (other / "qm.npy").read_bytes() == b"not ours"


def test_dataset_build_out_must_be_new_empty_or_a_build(tmp_path):
    from qpaper.profiles import dataset_spec
    from qpaper.shards import build
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "manifest.json").write_text('{"case": 17}')
    with pytest.raises(ValueError, match="no earlier run"):
        build(dataset_spec("smoke", "test", 90, 0, "aligned"), ev, workers=1, progress=False)
    assert (ev / "manifest.json").read_text() == '{"case": 17}' and sorted(os.listdir(ev)) == ["manifest.json"]


# ---- item 2: decoder warnings, a mostly missing scan, FF 00 -------------------------------------

def test_a_mostly_missing_scan_is_refused_and_a_cut_one_carries_a_warning(capfd, tmp_path, photo, registry_dir,
                                                                         monkeypatch):
    monkeypatch.setenv("QPAPER_MODELS", str(registry_dir))
    data = jpeg_bytes(photo, 75)
    cut = tmp_path / "cut8.jpg"
    cut.write_bytes(data[:len(data) // 8] + b"\xff\xd9")
    refused(*run_cli(capfd, "estimate", cut, "--quiet"), "mostly missing")
    wide = bytearray(data)  # the frame header patched to 65000 columns: the decoder fills almost all of it
    sof = wide.find(b"\xff\xc0")
    wide[sof + 7:sof + 9] = (65000).to_bytes(2, "big")
    wide[sof + 5:sof + 7] = (64).to_bytes(2, "big")
    (tmp_path / "wide.jpg").write_bytes(bytes(wide))
    refused(*run_cli(capfd, "estimate", tmp_path / "wide.jpg", "--quiet"), "mostly missing")
    little = tmp_path / "cut-little.jpg"
    little.write_bytes(data[:int(len(data) * 0.8)] + b"\xff\xd9")
    status, out, err = run_cli(capfd, "estimate", little, "--json", "--quiet")
    assert status == 0, err
    w = json.loads(out)["warnings"]
    assert any("the decoder reported" in x for x in w) and any("the verdict rest on the rest" in x for x in w), w


def test_ff00_stray_bytes_are_skipped_like_other_stray_bytes(capfd, tmp_path, photo):
    data = jpeg_bytes(photo[:128, :128], 90)
    i = data.find(b"\xff\xdb")
    f = tmp_path / "stray.jpg"
    f.write_bytes(data[:i] + b"\xff\x00" + data[i:])
    info = jpeg.read_qtables(f.read_bytes())
    assert info["stray"] == [(i, 2)] and info["end"] == len(data) + 2
    status, out, err = run_cli(capfd, "estimate", f, "--method", "galvan", "--json", "--quiet")
    assert status == 0, err
    assert any("stray byte" in w for w in json.loads(out)["warnings"])


# ---- item 3: localize says no trace where estimate does ----------------------------------------

def test_localize_draws_no_mask_on_an_untouched_photo(capfd, tmp_path, photo, registry_dir, monkeypatch):
    monkeypatch.setenv("QPAPER_MODELS", str(registry_dir))
    f = tmp_path / "once.jpg"
    f.write_bytes(jpeg_bytes(photo[:256, :256], 90))
    status, out, err = run_cli(capfd, "estimate", f, "--json", "--quiet")
    assert status == 0 and not json.loads(out)["double"], err
    status, out, err = run_cli(capfd, "localize", f, "--out", tmp_path / "o", "--stride", "32", "--quiet",
                               "--model", registry_dir / "mini" / "qf2-90-class-Lr" / "model.keras")
    assert status == 0, err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["no_trace"] and s["clusters"] == 0 and s["tampered_share"] == 0 and "mask.png" not in s["files"]
    assert not (tmp_path / "o" / "mask.png").exists() and "no mask" in out
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(s["files"])


# ---- item 4: a model given by path must give probabilities --------------------------------------

def test_a_foreign_model_without_softmax_is_refused(capfd, tmp_path, photo):
    import keras

    from qpaper.jpeg import q_max
    keras.utils.set_random_seed(0)
    inp = keras.Input((64, 64, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
    m = keras.Model(inp, keras.layers.Dense(int(q_max(15).sum()))(x))  # 226 outputs, no softmax
    m.save(tmp_path / "foreign.keras")
    f = tmp_path / "a.jpg"
    f.write_bytes(jpeg_bytes(photo[:128, :128], 90))
    refused(*run_cli(capfd, "estimate", f, "--model", tmp_path / "foreign.keras", "--quiet"), "not probabilities")


# ---- item 5: CSV cells cannot be formulas; reports escape control characters -----------------------

def test_csv_cells_that_start_a_formula_are_neutralised_and_resume_reads_them_back(capfd, tmp_path, photo,
                                                                                  monkeypatch):
    ev = tmp_path / "in"
    ev.mkdir()
    names = ["=1+1.jpg", "+1.jpg", "@x.jpg", "=cmd|' -C calc'!A0.jpg", "-2.jpg", "'q.jpg", "plain.jpg"]
    for n in names:
        (ev / n).write_bytes(jpeg_bytes(photo[:128, :128], 90))
    (ev / "=broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    monkeypatch.chdir(ev)  # relative names: the cells start with what the names start with
    table = tmp_path / "t.csv"
    status, out, err = run_cli(capfd, "estimate", "--csv", table, "--method", "galvan", "--quiet", "--", *names,
                               "=broken.jpg")
    assert status == 2, err  # the broken file
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    for r in rows:
        for k, v in r.items():
            assert not v.startswith(("=", "+", "-", "@", "\t", "\r")), (k, v)
    assert [r["file"] for r in rows] == ["'" + n if n[0] in "=+-@'" else n for n in [*names, "=broken.jpg"]]
    assert rows[-1]["error"].startswith("'=broken.jpg")
    status, out, err = run_cli(capfd, "estimate", "--csv", table, "--method", "galvan", "--resume", "--quiet", "--",
                               *names, "=broken.jpg")
    assert status == 2 and f"{len(names)} of {len(names) + 1} files already in" in err, err


def test_reports_escape_names_that_would_forge_a_line(capfd, tmp_path, photo):
    name = tmp_path / "a\nverdict: single-compressed\x1b[2J.jpg"
    name.write_bytes(jpeg_bytes(photo[:128, :128], 90))
    status, out, err = run_cli(capfd, "estimate", name, "--method", "galvan", "--quiet")
    assert status == 0 and "\x1b" not in out
    assert sum(line.startswith("verdict:") for line in out.splitlines()) == 1, out
    status, out, err = run_cli(capfd, "qtable", name)
    assert status == 0 and "\x1b" not in out and not any(line.startswith("verdict") for line in out.splitlines())
    broken = tmp_path / "evil\nname.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xd9")
    status, out, err = run_cli(capfd, "estimate", broken, tmp_path / "a\nverdict: single-compressed\x1b[2J.jpg",
                               "--method", "galvan", "--quiet")
    assert status == 2
    line = [x for x in out.splitlines() if "evil" in x][0]
    assert "name.jpg" in line and "error:" in line and line.split("error: ")[1].strip(), line


# ---- item 6: resume reads any line ends, refuses other options; the lock is on the real file ------

def test_resume_reads_lf_tables_and_refuses_other_options(capfd, tmp_path, photo):
    ev = tmp_path / "in"
    ev.mkdir()
    for k in range(4):
        (ev / f"{k}.jpg").write_bytes(jpeg_bytes(photo[:128, 16 * k:16 * k + 128], 90))
    table = tmp_path / "t.csv"
    assert run_cli(capfd, "estimate", ev, "--csv", table, "--method", "galvan", "--quiet")[0] == 0
    lf = table.read_bytes().replace(b"\r\n", b"\n")
    table.write_bytes(lf)
    (ev / "4.jpg").write_bytes(jpeg_bytes(photo[128:256, :128], 90))
    status, out, err = run_cli(capfd, "estimate", ev, "--csv", table, "--method", "galvan", "--resume", "--quiet")
    assert status == 0 and "4 of 5 files already in" in err, err
    assert len(list(csv.DictReader(io.StringIO(table.read_text())))) == 5
    kept = table.read_bytes()
    for other in (["--max-windows", "7"], ["--seed", "3"], ["--method", "bianchi"]):
        args = ["--method", "galvan", *other] if other[0] != "--method" else other
        refused(*run_cli(capfd, "estimate", ev, "--csv", table, "--resume", "--quiet", *args), "other options")
    assert table.read_bytes() == kept


def test_the_lock_holds_through_a_link_to_the_same_table(tmp_path):
    table = tmp_path / "t.csv"
    link = tmp_path / "link.csv"
    link.symlink_to(table)
    a, b = batch.Table(table, "csv"), batch.Table(link, "csv")
    a.lock()
    try:
        with pytest.raises(ValueError, match="another qpaper run"):
            b.lock()
    finally:
        a.release()
    assert b.partial == a.partial and b.lockfile == a.lockfile


def test_a_scheduler_that_never_answers_is_one_line(tmp_path):
    pytest.importorskip("distributed")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    f = tmp_path / "a.jpg"
    f.write_bytes(b"\xff\xd8\xff\xd9")
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "qpaper.cli", "estimate", str(f), "--method", "galvan", "--scheduler",
                        f"tcp://127.0.0.1:{server.getsockname()[1]}", "--quiet"], capture_output=True, text=True,
                       env=env, timeout=60)
    server.close()
    assert r.returncode == 2 and "did not answer within 2 s" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert time.time() - t0 < 40


# ---- item 7: no traceback; --csv ""; data trace; SIGTERM and a full disk --------------------------

def test_bad_manifests_and_numbers_are_one_line(capfd, tmp_path, monkeypatch, photo):
    root = tmp_path / "models"
    (root / "mini").mkdir(parents=True)
    monkeypatch.setenv("QPAPER_MODELS", str(root))
    (root / "mini" / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    refused(*run_cli(capfd, "models"), "manifest")
    f = tmp_path / "a.jpg"
    f.write_bytes(jpeg_bytes(photo[:128, :128], 90))
    refused(*run_cli(capfd, "estimate", f, "--method", "cnn", "--quiet"), "manifest")
    entry = {"name": "x", "path": "x/model.keras", "profile": "mini", "qf2": 90, "head": "class", "loss": "Lr",
             "sha256": "0" * 64, "metrics": None}
    (root / "mini" / "manifest.json").write_text(json.dumps({"models": [entry]}))
    refused(*run_cli(capfd, "models"), "metrics")
    refused(*run_cli(capfd, "localize", f, "--out", tmp_path / "o", "--max-memory", "1e300"), "out of range")
    refused(*run_cli(capfd, "estimate", f, f, "--csv", ""), "empty name")
    refused(*run_cli(capfd, "estimate", f, f, "--jsonl", ""), "empty name")


def test_a_foreign_jsonl_is_not_a_qpaper_table(capfd, tmp_path, photo):
    f = tmp_path / "a.jpg"
    f.write_bytes(jpeg_bytes(photo[:128, :128], 90))
    table = tmp_path / "t.jsonl"
    table.write_text('{"file": "x.jpg", "score": 1}\n')
    refused(*run_cli(capfd, "estimate", f, "--jsonl", table, "--resume", "--method", "galvan", "--quiet"),
            "not a qpaper JSONL table")
    assert table.read_text() == '{"file": "x.jpg", "score": 1}\n'


def test_data_trace_finds_a_jpeg_screenshot_and_a_cmyk_jpeg(capfd, tmp_path):
    shot = np.full((240, 320, 3), 240, np.uint8)
    shot[20:40, 20:300] = (30, 60, 200)
    shot[100:104, 10:310] = 0
    Image.fromarray(shot).save(tmp_path / "shot.jpg", quality=90)
    Image.fromarray(shot).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=90)
    Image.fromarray(shot).save(tmp_path / "shot.png")
    status, out, err = run_cli(capfd, "data", "trace", tmp_path / "shot.jpg", tmp_path / "cmyk.jpg",
                               tmp_path / "shot.png")
    assert status == 0, err
    lines = {Path(x.split("\t")[0]).name: x.split("\t")[2] for x in out.strip().splitlines()}
    assert lines["shot.jpg"].startswith("JPEG trace") and "QF 90" in lines["shot.jpg"]
    assert lines["cmyk.jpg"].startswith("JPEG trace") and "4 component" in lines["cmyk.jpg"]
    assert lines["shot.png"].startswith("cannot tell"), lines


def _batch_of(tmp_path, photo, n):
    ev = tmp_path / "in"
    ev.mkdir()
    for k in range(n):
        (ev / f"{k:02d}.jpg").write_bytes(jpeg_bytes(photo[:128, 8 * k:8 * k + 128], 90))
    return ev


def test_sigterm_keeps_the_partial_and_says_how_to_resume(tmp_path, photo):
    ev = _batch_of(tmp_path, photo, 30)
    table = tmp_path / "t.csv"
    p = subprocess.Popen([sys.executable, "-m", "qpaper.cli", "estimate", str(ev), "--csv", str(table), "--method",
                          "bianchi", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = Path(str(table) + ".partial")
    deadline = time.time() + 120
    while time.time() < deadline and not (partial.exists() and partial.read_text().count("\n") >= 3):
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    assert f"kept in {partial}" in err and "--resume" in err and "Traceback" not in err
    r = subprocess.run([sys.executable, "-m", "qpaper.cli", "estimate", str(ev), "--csv", str(table), "--method",
                        "bianchi", "--quiet", "--resume"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and len(list(csv.DictReader(io.StringIO(table.read_text())))) == 30


def test_a_full_disk_says_what_was_kept(capfd, tmp_path, photo, monkeypatch):
    import errno
    ev = _batch_of(tmp_path, photo, 3)
    table = tmp_path / "t.csv"
    real = batch.Table.add
    calls = []

    def add(self, r):
        calls.append(r)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, r)

    monkeypatch.setattr(batch.Table, "add", add)
    refused(*run_cli(capfd, "estimate", ev, "--csv", table, "--method", "galvan", "--quiet"),
            "no space left", f"kept in {table}.partial", "--resume")
    monkeypatch.setattr(batch.Table, "add", real)
    status, out, err = run_cli(capfd, "estimate", ev, "--csv", table, "--method", "galvan", "--quiet", "--resume")
    assert status == 0 and "1 of 3 files already in" in err, err
