"""``qpaper estimate`` and ``qpaper models`` on real files: the estimate on a double JPEG made
outside the dataset code, the model registry's checks, and one line + status 2 for bad input."""
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qpaper import cli, jpeg

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def photo():
    from qpaper.sources import read_image, skimage_dir
    return read_image(skimage_dir() / "coffee.png")


@pytest.fixture(scope="module")
def double_jpeg(tmp_path_factory, photo):
    """First compression with Pillow at QF1 70, second with OpenCV at QF2 90."""
    b = io.BytesIO()
    Image.fromarray(photo).save(b, "JPEG", quality=70)
    path = tmp_path_factory.mktemp("img") / "double.jpg"
    path.write_bytes(jpeg.encode_opencv(jpeg.decode(b.getvalue()), 90))
    return path


def estimate(capfd, *args):
    status = cli.main(["estimate", *map(str, args), "--quiet"])
    out, err = capfd.readouterr()
    return status, out, err


def test_the_model_based_estimate_of_a_pillow_then_opencv_double_jpeg(capfd, double_jpeg):
    status, out, err = estimate(capfd, double_jpeg, "--method", "galvan", "--json")
    assert status == 0, err
    r = json.loads(out)
    assert r["qf2"] == 90 and r["qf2_distance"] == 0 and r["windows"] == 54
    assert r["nearest"]["qf"] == 70 and r["q1"][:6] == jpeg.zigzag(jpeg.standard_table(70))[:6].tolist()
    assert r["verdict"].startswith("double-compressed")


def test_the_cnn_uses_the_registered_model_for_the_nearest_qf2(capfd, double_jpeg, registry_dir, monkeypatch,
                                                                 tmp_path, photo):
    monkeypatch.setenv("QPAPER_MODELS", str(registry_dir))
    status, out, err = estimate(capfd, double_jpeg, "--json", "--method", "cnn")
    assert status == 0, err
    r = json.loads(out)
    assert r["model"] == "mini/qf2-90-class-Lr" and len(r["q1"]) == 15
    assert all(1 <= q <= m for q, m in zip(r["q1"], jpeg.q_max(15)))
    assert all(0 < c <= 1 for c in r["confidence"]) and r["warnings"] == []
    # one window; text output
    status, out, err = estimate(capfd, double_jpeg, "--window", 64, 128)
    assert status == 0 and "windows: 1 of 64x64" in out and "nearest standard QF1" in out
    # a QF2 far from every registered model: used, with a warning
    far = tmp_path / "q70.jpg"
    far.write_bytes(jpeg.encode_opencv(photo, 70))
    status, out, err = estimate(capfd, far, "--json", "--method", "cnn")
    assert status == 0 and any("gap 20" in w for w in json.loads(out)["warnings"])
    # the registry lists it
    assert cli.main(["models"]) == 0
    assert "qf2-90-class-Lr" in capfd.readouterr().out


def test_a_model_that_does_not_match_its_manifest_is_refused(capfd, double_jpeg, registry_dir, monkeypatch,
                                                             tmp_path):
    import shutil
    alt = tmp_path / "models"
    shutil.copytree(registry_dir, alt)
    f = alt / "mini" / "qf2-90-class-Lr" / "model.keras"
    f.write_bytes(f.read_bytes() + b"x")
    monkeypatch.setenv("QPAPER_MODELS", str(alt))
    status, out, err = estimate(capfd, double_jpeg, "--method", "cnn")
    assert status == 2 and "sha256" in err and len(err.strip().splitlines()) == 1 and out == ""


def _jpeg_bytes(img, **kw):
    b = io.BytesIO()
    Image.fromarray(img).save(b, "JPEG", **kw)
    return b.getvalue()


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "text", "png", "truncated", "corrupt",
                                  "grayscale", "cmyk", "tiny", "too-large", "bad-window"])
def test_bad_input_gives_one_line_and_status_2(case, capfd, tmp_path, photo):
    p = tmp_path / "in.jpg"
    args = ["--method", "galvan"]
    good = _jpeg_bytes(photo, quality=90)
    if case == "directory":
        p = tmp_path
    elif case == "empty":
        p.write_bytes(b"")
    elif case == "text":
        p.write_text("hello, not an image\n")
    elif case == "png":
        b = io.BytesIO()
        Image.fromarray(photo).save(b, "PNG")
        p.write_bytes(b.getvalue())
    elif case == "truncated":
        p.write_bytes(good[:len(good) // 2])
    elif case == "corrupt":
        p.write_bytes(good[:200] + bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8)))
    elif case == "grayscale":
        p.write_bytes(_jpeg_bytes(photo[..., 0], quality=90))
    elif case == "cmyk":
        b = io.BytesIO()
        Image.fromarray(photo).convert("CMYK").save(b, "JPEG", quality=90)
        p.write_bytes(b.getvalue())
    elif case == "tiny":
        p.write_bytes(_jpeg_bytes(photo[:40, :100], quality=90))
    elif case == "too-large":
        p.write_bytes(good)
        args += ["--max-megapixels", "0.1"]
    elif case == "bad-window":
        p.write_bytes(good)
        args += ["--window", "590", "0"]
    before = set(tmp_path.iterdir())
    status, out, err = estimate(capfd, p, *args)
    assert status == 2, (case, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qpaper: error:") and "Traceback" not in err, (case, err)
    assert out == "" and set(tmp_path.iterdir()) == before


@pytest.mark.parametrize("case", ["missing-model", "corrupt-model"])
def test_a_missing_or_corrupt_model_file(case, capfd, tmp_path, double_jpeg):
    m = tmp_path / "m.keras"
    if case == "corrupt-model":
        m.write_bytes(b"PK\x03\x04 not really a keras zip")
    status, out, err = estimate(capfd, double_jpeg, "--model", m)
    assert status == 2 and len(err.strip().splitlines()) == 1 and str(m) in err and out == ""


def test_a_progressive_jpeg_is_estimated_and_says_so(capfd, tmp_path, photo):
    p = tmp_path / "prog.jpg"
    p.write_bytes(_jpeg_bytes(jpeg.decode(_jpeg_bytes(photo, quality=70)), quality=90, progressive=True))
    status, out, err = estimate(capfd, p, "--method", "galvan", "--json")
    assert status == 0, err
    r = json.loads(out)
    assert r["progressive"] and any("progressive" in w for w in r["warnings"])


def test_large_images_are_sampled_in_bounded_batches():
    from qpaper.estimate import window_origins
    o = window_origins((10000, 10000), max_windows=512, seed=1)
    assert len(o) == 512 and len({tuple(v) for v in o}) == 512
    assert (o % 64 == 0).all() and (o <= 10000 - 64).all()
    assert np.array_equal(o, window_origins((10000, 10000), max_windows=512, seed=1))
    assert len(window_origins((200, 300), max_windows=512)) == 3 * 4


def test_the_readme_example_transcript(registry_dir, monkeypatch, tmp_path):
    from qpaper import paths, report
    monkeypatch.setenv("QPAPER_MODELS", str(registry_dir))
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path / "data")
    out = report.estimate_example("mini", tmp_path)
    text = out.read_text()
    assert text.count("$ qpaper estimate coffee-pillow70-opencv90.jpg") == 2 and "--method galvan" in text
    assert "nearest standard QF1: 70 (mean |difference| 0.00" in text  # [7] on an aligned 70 -> 90 file
    prov = json.loads(out.with_name(out.name + ".provenance.json").read_text())
    assert prov["results"]["galvan"]["nearest"]["qf"] == 70
    (tmp_path / "README.md").write_text(f"a\n{report.BEGIN}\n{report.END}\n{report.EX_BEGIN}\nold\n{report.EX_END}\nb\n")
    text = report._replace_block((tmp_path / "README.md").read_text(), report.EX_BEGIN, report.EX_END, "new\n")
    assert "old" not in text and "new" in text and text.endswith("b\n")


def test_load_model_from_a_fresh_interpreter_checks_the_registry(registry_dir, tmp_path):
    """``keras.saving.load_model`` alone cannot find the custom layers; ``qpaper.load_model``
    can, and refuses a registered file that no longer matches its manifest."""
    import os
    import shutil
    import subprocess
    import sys
    f = registry_dir / "mini" / "qf2-90-class-Lr" / "model.keras"
    code = ("import sys, keras\n"
            "try:\n    keras.saving.load_model(sys.argv[1], safe_mode=True); print('keras-ok')\n"
            "except Exception:\n    print('keras-fails')\n"
            "import qpaper\nm = qpaper.load_model(sys.argv[1]); print('qpaper-ok', m.output_shape[-1])\n")
    env = dict(os.environ, QPAPER_MODELS=str(registry_dir), TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-c", code, str(f)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["keras-fails", "qpaper-ok", "226"]
    alt = tmp_path / "models"
    shutil.copytree(registry_dir, alt)
    g = alt / "mini" / "qf2-90-class-Lr" / "model.keras"
    g.write_bytes(g.read_bytes() + b"x")
    r = subprocess.run([sys.executable, "-c", "import qpaper, sys; qpaper.load_model(sys.argv[1])", str(g)],
                       capture_output=True, text=True, env=dict(env, QPAPER_MODELS=str(alt)))
    assert r.returncode != 0 and "sha256" in r.stderr


def test_many_files_and_folders_in_one_call(capfd, tmp_path, photo, registry_dir, monkeypatch):
    import csv

    from qpaper import filelevel
    monkeypatch.setenv("QPAPER_MODELS", str(registry_dir))
    loads = []
    real_load = filelevel.load_model
    monkeypatch.setattr(filelevel, "load_model", lambda *a: loads.append(a) or real_load(*a))
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for k, qf1 in enumerate((60, 80)):
        (folder / f"a{k}.jpg").write_bytes(jpeg.encode_opencv(jpeg.decode(jpeg.encode_opencv(photo, qf1)), 90))
    (folder / "sub" / "b.JPEG").write_bytes(jpeg.encode_opencv(photo[:200, :300], 90))
    (folder / "sub" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (folder / "notes.txt").write_text("skipped: not a JPEG suffix")
    other = tmp_path / "other.jpg"
    other.write_bytes(jpeg.encode_opencv(photo[:128, :128], 90))
    out_csv = tmp_path / "out.csv"
    status = cli.main(["estimate", str(folder), str(other), "--csv", str(out_csv), "--json", "--quiet"])
    out, err = capfd.readouterr()
    assert status == 2 and len(err.strip().splitlines()) == 1 and "1 of 5 files" in err
    lines = [json.loads(x) for x in out.strip().splitlines()]
    assert [Path(r["file"]).name for r in lines] == ["a0.jpg", "a1.jpg", "b.JPEG", "broken.jpg", "other.jpg"]
    assert "error" in lines[3] and all("error" not in r for r in lines[:3] + lines[4:])
    assert len(loads) == 1  # one model (the default, file-level), loaded once for all the files
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["file"] for r in rows] == [r["file"] for r in lines] and rows[3]["error"] and not rows[0]["error"]
    assert [int(rows[0][f"q1_{k}"]) for k in range(1, 16)] == lines[0]["q1"] and rows[0]["qf2"] == "90"
    # text: one line per file; all good: status 0; an empty folder: one line, status 2
    status = cli.main(["estimate", str(folder / "a0.jpg"), str(other), "--method", "galvan", "--quiet"])
    out, _ = capfd.readouterr()
    assert status == 0 and len(out.strip().splitlines()) == 2 and out.startswith(str(folder / "a0.jpg") + ": QF2 90")
    (tmp_path / "empty").mkdir()
    status = cli.main(["estimate", str(tmp_path / "empty")])
    out, err = capfd.readouterr()
    assert status == 2 and "no JPEG file" in err and out == ""
    status = cli.main(["estimate", str(other), "--csv", str(tmp_path / "nope" / "x.csv")])
    assert status == 2 and "does not exist" in capfd.readouterr().err


def test_csv_never_replaces_evidence_and_writes_through_links(capfd, tmp_path, photo):
    """Issue 25, items 1-2: --csv naming an input (or a link to one, or a file inside an input
    folder) is refused before any work and the JPEG is left as it was; a --csv that is a link is
    written through (the link stays a link); --csv - puts the table alone on standard output."""
    import csv
    import io
    import os
    folder = tmp_path / "evidence"
    folder.mkdir()
    ev = folder / "ev.jpg"
    ev.write_bytes(jpeg.encode_opencv(photo[:128, :128], 90))
    other = tmp_path / "other.jpg"
    other.write_bytes(jpeg.encode_opencv(photo[:128, :128], 80))
    before = ev.read_bytes()
    (tmp_path / "link.jpg").symlink_to(ev)
    for target, args in ((ev, [ev, other]), (tmp_path / "link.jpg", [ev, other]), (ev, [folder, other])):
        status = cli.main(["estimate", *map(str, args), "--csv", str(target), "--method", "galvan", "--quiet"])
        out, err = capfd.readouterr()
        assert status == 2 and ("one of the inputs" in err or "inside the input folder" in err)
        assert len(err.strip().splitlines()) == 1 and out == "" and ev.read_bytes() == before
    real = tmp_path / "table.csv"
    real.write_text("")  # an empty file: nothing in it to lose (a non-empty one must be a qpaper table, issue 32)
    (tmp_path / "via.csv").symlink_to(real)
    assert cli.main(["estimate", str(ev), str(other), "--csv", str(tmp_path / "via.csv"), "--method", "galvan",
                     "--quiet"]) == 0
    capfd.readouterr()
    assert os.path.islink(tmp_path / "via.csv") and real.read_text().startswith("file,")
    assert cli.main(["estimate", str(ev), str(other), "--csv", "-", "--method", "galvan", "--quiet"]) == 0
    out, err = capfd.readouterr()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [Path(r["file"]).name for r in rows] == ["ev.jpg", "other.jpg"] and "QF2" in err


def test_registered_files_are_checked_however_named_and_manifests_are_validated(capfd, tmp_path, registry_dir,
                                                                                 double_jpeg, monkeypatch):
    """Issue 25, items 4-6: a registered model swapped for another is refused through --model even
    when its models folder is not this checkout's registry (its own manifest is read); a manifest
    entry pointing outside its folder, and malformed manifests, get one line naming the file."""
    import shutil

    from qpaper import model
    from qpaper.train import save_model
    copy = tmp_path / "elsewhere" / "models"
    shutil.copytree(registry_dir, copy)
    target = copy / "mini" / "qf2-90-class-Lr" / "model.keras"
    save_model(model.build_model("class", depth=7, growth=4), target)  # other weights, same name
    monkeypatch.setenv("QPAPER_MODELS", str(tmp_path / "empty-registry"))
    status, out, err = estimate(capfd, double_jpeg, "--model", target)
    assert status == 2 and "sha256" in err and len(err.strip().splitlines()) == 1 and out == ""
    # the untouched registry's own file, named by path: accepted
    status, out, err = estimate(capfd, double_jpeg, "--model", registry_dir / "mini" / "qf2-90-class-Lr" / "model.keras")
    assert status == 0, err
    # manifests: outside paths and malformed entries refused in one line naming the manifest
    monkeypatch.setenv("QPAPER_MODELS", str(copy))
    manifest = copy / "mini" / "manifest.json"
    good = json.loads(manifest.read_text())["models"][0]
    for bad in ({"models": [{**good, "path": "../../../etc/passwd"}]}, {"models": None}, {"models": {"a": 1}},
                {"models": [{**good, "qf2": "90"}]}, {"models": [{k: v for k, v in good.items() if k != "sha256"}]},
                [1, 2]):
        manifest.write_text(json.dumps(bad))
        status, out, err = estimate(capfd, double_jpeg)
        assert status == 2 and str(manifest) in err and len(err.strip().splitlines()) == 1, (bad, err)
        assert "Traceback" not in err


def test_a_batch_survives_io_errors_odd_entries_and_odd_names(capfd, tmp_path, photo):
    """Issue 25, items 8-9: a file that fails with an I/O error, a FIFO and a dangling link with a
    JPEG suffix each get an error row and the batch goes on; a non-UTF-8 name and a name with a
    newline keep their CSV rows and one text line each."""
    import csv
    import os
    folder = tmp_path / "batch"
    folder.mkdir()
    good = jpeg.encode_opencv(photo[:128, :128], 90)
    (folder / "a.jpg").write_bytes(good)
    os.mkfifo(folder / "fifo.jpg")
    (folder / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    if os.path.exists("/proc/self/mem"):
        (folder / "mem.jpg").symlink_to("/proc/self/mem")  # reading it fails with an I/O error
    odd = os.fsencode(str(folder)) + b"/\xff odd.jpg"
    with open(odd, "wb") as f:
        f.write(good)
    (folder / "new\nline.jpg").write_bytes(good)
    out_csv = tmp_path / "rows.csv"
    status = cli.main(["estimate", str(folder), "--csv", str(out_csv), "--method", "galvan", "--quiet"])
    out, err = capfd.readouterr()
    names = {os.path.basename(os.fsencode(r["file"])) for r in csv.DictReader(
        open(out_csv, encoding="utf-8", errors="surrogateescape", newline=""))}
    expected = {b"a.jpg", b"fifo.jpg", b"gone.jpg", b"\xff odd.jpg", b"new\nline.jpg"}
    expected |= {b"mem.jpg"} if os.path.exists("/proc/self/mem") else set()
    assert names == expected
    assert status == 2 and len(out.strip().splitlines()) == len(expected)
    assert out.count(": QF2 90") == 3 and "new\\nline.jpg" in out and "\\xff odd.jpg" in out


def test_refusals_come_before_the_backend_starts(tmp_path):
    """Issue 25, item 12: a missing or non-JPEG file is refused by estimate and localize (cnn
    mode) without importing TensorFlow or Keras (what made each refusal cost seconds)."""
    import subprocess
    import sys
    (tmp_path / "x.txt").write_text("not a JPEG")
    code = ("import sys\nfrom qpaper import cli\n"
            f"a = cli.main(['estimate', {str(tmp_path / 'nope.jpg')!r}])\n"
            f"b = cli.main(['localize', {str(tmp_path / 'x.txt')!r}, '--out', {str(tmp_path / 'o')!r}])\n"
            "print(a, b, 'tensorflow' in sys.modules or 'keras' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.split() == ["2", "2", "False"], r.stderr
    assert "no such file" in r.stderr and "not a JPEG" in r.stderr and not (tmp_path / "o").exists()


def test_foreign_models_are_refused_in_one_line(capfd, tmp_path, double_jpeg):
    """Issue 25, item 7: through --model, a network with an output width no head gives, one with
    NaN weights, one reading 1-channel windows, and a .keras archive whose config inflates past
    the limit are each refused in one line (exit 2), before any estimate."""
    import zipfile

    import keras

    from qpaper import model
    from qpaper.train import save_model
    inp = keras.Input((64, 64, 3))
    wide300 = keras.Model(inp, keras.layers.Dense(300)(keras.layers.GlobalAveragePooling2D()(inp)))
    nan = model.build_model("class", depth=7, growth=4)
    nan.set_weights([np.full_like(w, np.nan) for w in nan.get_weights()])
    gray = model.build_model("class", depth=7, growth=4, channels=1)
    cases = {"w300": (wide300, "300 outputs"), "nan": (nan, "not finite"), "gray": (gray, "64x64 RGB")}
    for name, (m, why) in cases.items():
        save_model(m, tmp_path / f"{name}.keras")
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(tmp_path / "w300.keras") as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for i in src.infolist():
            data = src.read(i.filename)
            dst.writestr(i.filename, data + b" " * (17 * 2 ** 20) if i.filename == "config.json" else data)
    cases["bomb"] = (None, "inflates beyond")
    for name, (_, why) in cases.items():
        status, out, err = estimate(capfd, double_jpeg, "--model", tmp_path / f"{name}.keras")
        assert status == 2 and why in err and len(err.strip().splitlines()) == 1 and out == "", (name, err)


@pytest.mark.parametrize("method", ["cnn", "galvan", "bianchi"])
def test_content_that_cannot_carry_a_trace_gets_cannot_tell(method, capfd, tmp_path, double_jpeg, registry_dir,
                                                            monkeypatch):
    """Issue 25, item 13: a flat grey and a smooth gradient JPEG, and a textured one whose Q2
    steps (300) round every AC coefficient to zero, get "cannot tell" and why, no table and no
    confidence, from every method; the textured double JPEG still gets its table."""
    monkeypatch.setenv("QPAPER_MODELS", str(registry_dir))
    h, w = 320, 448
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(tmp_path / "flat.jpg", quality=90)
    ramp = np.linspace(0, 255, w)[None, :, None].repeat(h, 0).repeat(3, 2).astype(np.uint8)
    Image.fromarray(ramp).save(tmp_path / "ramp.jpg", quality=90)
    noise = np.random.default_rng(0).integers(0, 256, (h, w, 3)).astype(np.uint8)
    coarse = [8] + [300] * 63
    Image.fromarray(noise).save(tmp_path / "coarse.jpg", qtables=[coarse, coarse])
    for name, cause in [("flat", "flat or smooth"), ("ramp", "flat or smooth"), ("coarse", "steps (up to 300)")]:
        status, out, err = estimate(capfd, tmp_path / f"{name}.jpg", "--json", "--method", method)
        r = json.loads(out)
        assert status == 0 and r["verdict"].startswith("cannot tell:") and cause in r["verdict"], (name, r["verdict"])
        assert r["q1"] is None and r["confidence"] is None and r["readable_coefficients"] < 3
    status, out, err = estimate(capfd, double_jpeg, "--json", "--method", method)
    r = json.loads(out)
    assert status == 0 and r["q1"] is not None and r["readable_coefficients"] >= 10


def test_readable_coefficients_count_the_bins_a_first_quantization_could_empty():
    """The rule behind "cannot tell", planted: 3 bins filled in 3 coefficients is enough, 2 is not."""
    from qpaper import estimate as est
    q2 = jpeg.standard_table(100)  # steps of 1: the DCT values are the quantized values
    assert est.no_trace_reason(np.array([3, 3, 3] + [1] * 11), q2) is None
    assert est.no_trace_reason(np.array([3, 3, 2] + [9] * 0 + [1] * 11), q2).startswith("cannot tell: 2 of the 14")
    flat = np.full((128, 128, 3), 77, np.uint8)
    origins = est.window_origins((128, 128), 4)
    assert (est.readable_coefficients(flat, origins, q2) == 1).all()
    rng = np.random.default_rng(0)
    textured = rng.integers(0, 256, (128, 128, 3)).astype(np.uint8)
    assert (est.readable_coefficients(textured, origins, q2) >= 3).all()


def test_stray_bytes_between_markers_are_skipped_with_a_warning(capfd, tmp_path, double_jpeg):
    """Issue 25, item 14: 3 stray bytes before a marker (libjpeg and Pillow decode the file) are
    accepted with a warning naming them, by estimate and qtable, with no libjpeg line on stderr;
    bytes after SOI with no marker at all are still refused in one line."""
    data = double_jpeg.read_bytes()
    i = data.find(b"\xff\xdb")
    bad = tmp_path / "stray.jpg"
    bad.write_bytes(data[:i] + b"abc" + data[i:])
    assert jpeg.read_qtables(bad.read_bytes())["stray"] == [(i, 3)]
    assert jpeg.read_qtables(data)["stray"] == []
    status, out, err = estimate(capfd, bad, "--json", "--method", "galvan")
    r = json.loads(out)
    assert status == 0 and r["q1"] is not None, err
    assert any(w.startswith(f"3 stray byte(s) between markers (first at byte {i})") for w in r["warnings"])
    assert "Corrupt JPEG" not in err and "extraneous" not in err
    assert cli.main(["qtable", str(bad)]) == 0
    assert "warning: 3 stray byte(s)" in capfd.readouterr().out
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8" + b"abc" * 100)
    status, out, err = estimate(capfd, junk)
    assert status == 2 and err.count("\n") == 1 and "none follows" in err
