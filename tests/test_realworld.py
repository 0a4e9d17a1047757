"""Real-world JPEGs (issue 12): EXIF orientation, odd headers and trailers, one-line errors, the
umask, the dataset folder claim, apt's empty package lists, the grid of a non-aligned file, and a
fuzz of mutated headers."""
import io
import json
import os
import stat
import threading

import numpy as np
import pytest
from PIL import Image

from qpaper import cli, jpeg

QF1 = 70


@pytest.fixture(scope="module")
def photo():
    from qpaper.sources import read_image, skimage_dir
    return read_image(skimage_dir() / "coffee.png")


def with_orientation(img, quality: int, orientation: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = orientation
    b = io.BytesIO()
    Image.fromarray(img).save(b, "JPEG", quality=quality, exif=ex.tobytes())
    return b.getvalue()


def double(img, qf1=QF1, qf2=90, shift=(0, 0)) -> bytes:
    x = jpeg.decode(jpeg.encode_opencv(img, qf1))[shift[0]:, shift[1]:]
    return jpeg.encode_opencv(np.ascontiguousarray(x), qf2)


def run_cli(capfd, *args):
    status = cli.main([str(a) for a in args])
    out, err = capfd.readouterr()
    return status, out, err


def one_line_error(status, err):
    lines = err.strip().splitlines()
    return status == 2 and len(lines) == 1 and "error" in lines[0] and "Traceback" not in err


def segment(data: bytes, marker: int) -> int:
    """Offset of the first 0xFF<marker> segment."""
    return data.index(bytes([0xFF, marker]))


# 1. EXIF orientation ------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", [3, 6])
def test_orientation_is_not_applied_and_is_reported(capfd, tmp_path, photo, orientation):
    img = photo[:397, :597]  # neither side a multiple of 8: a rotated grid would not match the file's
    first = jpeg.decode(jpeg.encode_opencv(img, QF1))
    p = tmp_path / "phone.jpg"
    p.write_bytes(with_orientation(first, 90, orientation))
    assert jpeg.read_qtables(p.read_bytes())["orientation"] == orientation
    status, out, err = run_cli(capfd, "estimate", p, "--method", "galvan", "--json", "--quiet")
    assert status == 0, err
    r = json.loads(out)
    assert r["size"] == [397, 597] and r["orientation"] == orientation
    assert r["q1"][:6] == jpeg.zigzag(jpeg.standard_table(QF1))[:6].tolist()
    assert any(f"EXIF orientation {orientation}" in w for w in r["warnings"])
    status, out, err = run_cli(capfd, "qtable", p)
    assert status == 0 and f"EXIF orientation {orientation}" in out and "597x397 as stored" in out


def test_decode_and_sources_keep_the_stored_orientation(photo, tmp_path):
    from qpaper.sources import image_size, read_image
    data = with_orientation(photo[:80, :120], 90, 6)
    assert jpeg.decode(data).shape == (80, 120, 3)
    p = tmp_path / "o6.jpg"
    p.write_bytes(data)
    assert read_image(p).shape == (80, 120, 3) and image_size(str(p)) == (80, 120)


# 2, 3, 4, 10. Headers and trailers ---------------------------------------------------------

def test_a_frame_header_shorter_than_its_components_is_one_line(capfd, tmp_path, photo):
    data = bytearray(jpeg.encode_opencv(photo[:64, :64], 90))
    i = segment(data, 0xC0)
    data[i + 2:i + 4] = (8 + 3).to_bytes(2, "big")  # room for one component, three announced
    p = tmp_path / "sof.jpg"
    p.write_bytes(bytes(data))
    with pytest.raises(jpeg.JpegError, match="frame header"):
        jpeg.read_qtables(bytes(data))
    for cmd in (["qtable", p], ["estimate", p, "--method", "galvan"]):
        status, out, err = run_cli(capfd, *cmd)
        assert one_line_error(status, err), (cmd, err)


def test_a_zero_quantization_step_is_refused(capfd, tmp_path, photo):
    data = bytearray(jpeg.encode_opencv(photo[:64, :64], 90))
    i = segment(data, 0xDB)
    data[i + 5:i + 5 + 64] = bytes(64)  # the first table, all zero
    p = tmp_path / "zero.jpg"
    p.write_bytes(bytes(data))
    for cmd in (["qtable", p], ["estimate", p, "--method", "galvan"]):
        status, out, err = run_cli(capfd, *cmd)
        assert one_line_error(status, err) and "zero" in err, (cmd, err)


def test_a_long_trailer_after_the_end_marker_is_estimated(capfd, tmp_path, photo):
    data = double(photo[:256, :256])
    p = tmp_path / "motion.jpg"
    trailer = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    p.write_bytes(data + b"\x00\x00\x00\x18ftypmp42" + trailer)  # a motion photo's video after EOI
    info = jpeg.read_qtables(p.read_bytes())
    assert info["end"] == len(data) and info["trailer"] == p.stat().st_size - len(data)
    status, out, err = run_cli(capfd, "estimate", p, "--method", "galvan", "--json", "--quiet")
    assert status == 0, err
    r = json.loads(out)
    assert r["q1"][:4] == jpeg.zigzag(jpeg.standard_table(QF1))[:4].tolist()
    assert any("after the end-of-image marker" in w for w in r["warnings"])
    # a file cut inside its scan is still refused
    p.write_bytes(data[:len(data) * 2 // 3])
    status, out, err = run_cli(capfd, "estimate", p, "--method", "galvan")
    assert one_line_error(status, err) and "truncated" in err


def test_an_arithmetic_coded_frame_is_named(capfd, tmp_path, photo):
    data = bytearray(jpeg.encode_opencv(photo[:64, :64], 90))
    data[segment(data, 0xC0) + 1] = 0xC9
    assert jpeg.read_qtables(bytes(data))["coding"] == "extended sequential, arithmetic-coded"
    p = tmp_path / "arith.jpg"
    p.write_bytes(bytes(data))
    status, out, err = run_cli(capfd, "qtable", p)
    assert status == 0 and "arithmetic-coded" in out and "baseline" not in out


# 5, 6, 7. Arguments ------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["table", "abc"], ["table", "90", "--nc", "0"], ["table", "90", "--nc", "-3"], ["table", "101"],
    ["qtable", "x.jpg", "--nc", "65"],
    ["estimate", "x.jpg", "--method", "nosuch"], ["estimate", "x.jpg", "--qf2", "abc"],
    ["estimate", "x.jpg", "--window", "1.5", "2"], ["estimate", "x.jpg", "--max-megapixels", "nan"],
    ["estimate", "x.jpg", "--max-megapixels", "-1"], ["estimate", "x.jpg", "--max-windows", "0"],
    ["localize", "x.jpg", "--out", "o", "--stride", "0"], ["localize", "x.jpg", "--out", "o", "--coefficients", "16"],
    ["nosuch"], [],
])
def test_argument_errors_are_one_line_and_exit_2(capfd, args):
    status = cli.main(args)
    out, err = capfd.readouterr()
    assert status == 2 and len(err.strip().splitlines()) == 1 and "error" in err and out == "", err


def test_table_nc_prints_exactly_nc_values(capfd):
    assert cli.main(["table", "90", "--nc", "5"]) == 0
    assert capfd.readouterr().out.split() == [str(v) for v in jpeg.zigzag(jpeg.standard_table(90))[:5]]


def test_localize_checks_out_before_any_work(capfd, tmp_path, photo, monkeypatch):
    from qpaper import estimate
    p = tmp_path / "a.jpg"
    p.write_bytes(double(photo[:128, :128]))
    blocker = tmp_path / "file"
    blocker.write_text("x")

    def no_work(*a, **k):
        raise AssertionError("the image was read before --out was checked")
    monkeypatch.setattr(estimate, "read_jpeg", no_work)
    for out in (blocker, blocker / "sub"):
        status, _, err = run_cli(capfd, "localize", p, "--out", out)
        assert one_line_error(status, err) and str(blocker) in err, err


# 8, 9. Files ------------------------------------------------------------------------------

def test_outputs_respect_the_umask(tmp_path):
    from qpaper.paths import atomic_write_bytes
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        os.umask(0o027)
        atomic_write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o640


def test_two_builds_racing_for_one_folder_leave_one_spec(tmp_path):
    from qpaper.djpeg import DatasetError
    from qpaper.shards import claim_folder
    for trial in range(20):
        out = tmp_path / str(trial)
        out.mkdir()
        go, results = threading.Barrier(4), []

        def claim(k):
            go.wait()
            try:
                claim_folder(out, {"build": k})
                results.append(k)
            except DatasetError:
                results.append(None)
        threads = [threading.Thread(target=claim, args=(k,)) for k in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        winners = [k for k in results if k is not None]
        assert len(winners) == 1 and json.loads((out / "spec.json").read_text()) == {"build": winners[0]}
        assert sorted(os.listdir(out)) == ["spec.json"]
    claim_folder(tmp_path / "0", json.loads((tmp_path / "0" / "spec.json").read_text()))  # the same spec: resumes


# 11. The grid of a non-aligned file ------------------------------------------------------

def test_model_based_methods_find_a_shifted_first_grid(capfd, tmp_path, photo):
    truth = jpeg.zigzag(jpeg.standard_table(60))[:15]
    p = tmp_path / "shifted.jpg"
    p.write_bytes(double(photo[:360, :520], qf1=60, shift=(7, 1)))
    status, out, err = run_cli(capfd, "estimate", p, "--method", "galvan", "--json", "--quiet")
    r = json.loads(out)
    assert status == 0 and r["grid_shift"] == [7, 1] and r["grid_confidence"] >= 0.5
    assert r["q1"] is None and "shifted" in r["verdict"] and "no evidence" not in r["verdict"]
    status, out, err = run_cli(capfd, "estimate", p, "--method", "bianchi", "--json", "--quiet")
    r = json.loads(out)
    assert status == 0 and r["grid_shift"] == [7, 1]
    assert np.abs(np.array(r["q1"]) - truth).mean() <= 1.0 and r["verdict"].startswith("double-compressed")
    status, out, err = run_cli(capfd, "estimate", p, "--method", "galvan", "--quiet")
    assert "first grid: shifted by (7, 1)" in out
    # aligned: the aligned models run; single-compressed: no confident wrong table
    p.write_bytes(double(photo[:360, :520], qf1=60))
    r = json.loads(run_cli(capfd, "estimate", p, "--method", "bianchi", "--json", "--quiet")[1])
    assert r["grid_shift"] == [0, 0] and r["q1"][:6] == truth[:6].tolist()
    p.write_bytes(jpeg.encode_opencv(photo[:360, :520], 90))
    for method in ("galvan", "bianchi"):
        r = json.loads(run_cli(capfd, "estimate", p, "--method", method, "--json", "--quiet")[1])
        assert r["verdict"].startswith(("no reliable first grid found", "no evidence")), r


# 12. apt with empty package lists ---------------------------------------------------------

def fake_apt(tmp_path, found_after_update: bool):
    """An apt-get on PATH that cannot locate packages until `apt-get update` ran."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    state = tmp_path / "updated"
    script = bindir / "apt-get"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {tmp_path}/calls
for a in "$@"; do last="$a"; done
case " $* " in
  *" update "*) {'touch ' + str(state) if found_after_update else 'true'}; exit 0;;
esac
if [ -e {state} ]; then touch "${{last}}_1.0_all.deb"; exit 0; fi
echo "E: Unable to locate package $last" >&2; exit 100
""")
    script.chmod(0o755)
    return bindir


def test_apt_empty_lists_update_once_as_root(tmp_path, monkeypatch):
    from qpaper import sources
    monkeypatch.setenv("PATH", f"{fake_apt(tmp_path, True)}:{os.environ['PATH']}")
    monkeypatch.setattr(sources.os, "geteuid", lambda: 0)
    monkeypatch.setattr(sources, "_apt_updated", False)
    debs = tmp_path / "debs"
    debs.mkdir()
    logs = []
    sources.apt_download("mate-backgrounds", debs, logs.append)
    sources.apt_download("other-package", debs, logs.append)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["download mate-backgrounds", "update", "download mate-backgrounds", "download other-package"]
    assert any("apt-get update" in line for line in logs)


def test_apt_empty_lists_say_the_command_when_not_root(tmp_path, monkeypatch):
    import shutil

    from qpaper import sources
    if shutil.which("apt-get") is None:
        pytest.skip("no apt-get on this machine")
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    monkeypatch.setenv(sources.APT_OPTIONS_ENV, f"-o Dir::State::Lists={lists}")
    monkeypatch.setattr(sources.os, "geteuid", lambda: 1000)
    debs = tmp_path / "debs"
    debs.mkdir()
    with pytest.raises(sources.SourceError, match=r"sudo apt-get -o Dir::State::Lists=\S+ update"):
        sources.apt_download("mate-backgrounds", debs)


# Fuzz: mutated headers never give a traceback ------------------------------------------------

def mutants(data: bytes, n: int, seed: int = 0):
    """Truncations, flipped bytes and corrupted segment lengths in the header of ``data``."""
    rng = np.random.default_rng(seed)
    sos = segment(data, 0xDA)
    lengths = [i + 2 for i in range(2, sos) if data[i] == 0xFF and data[i + 1] not in (0x00, 0xFF, 0xD8)]
    for k in range(n):
        d = bytearray(data)
        kind = k % 4
        if kind == 0:
            d = d[:int(rng.integers(2, sos + 40))]
        elif kind == 1:
            for _ in range(int(rng.integers(1, 4))):
                d[int(rng.integers(2, sos + 10))] ^= 1 << int(rng.integers(0, 8))
        elif kind == 2:
            i = int(rng.choice(lengths))
            d[i:i + 2] = int(rng.integers(0, 65536)).to_bytes(2, "big")
        else:
            i = int(rng.integers(2, sos + 10))
            d[i] = int(rng.choice([0x00, 0xFF, 0xD9, 0xDA, 0xC0, 0xDB, rng.integers(0, 256)]))
        yield bytes(d)


def test_fuzzed_headers_give_exit_0_or_2_and_no_traceback(capfd, tmp_path, photo):
    data = double(photo[:96, :128])
    p = tmp_path / "m.jpg"
    seen = {0: 0, 2: 0}
    for k, d in enumerate(mutants(data, 300)):
        p.write_bytes(d)
        for cmd in (["qtable", p], ["estimate", p, "--method", "galvan", "--quiet"]):
            status = cli.main([str(a) for a in cmd])
            out, err = capfd.readouterr()
            assert status in (0, 2), (k, cmd[0], status, err)
            assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, (k, cmd[0], err)
            seen[status] += 1
    assert seen[0] > 0 and seen[2] > 0  # the mutants reach both outcomes
