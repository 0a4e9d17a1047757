import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qpaper import cli, jpeg


def run(*args):
    return subprocess.run([sys.executable, "-m", "qpaper.cli", *map(str, args)], capture_output=True, text=True)


def test_table_zigzag_equals_what_opencv_writes_for_every_qf(capsys):
    img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for qf in range(1, 101):
        assert cli.main(["table", str(qf), "--zigzag"]) == 0
        printed = [int(v) for v in capsys.readouterr().out.split()]
        assert printed == jpeg.zigzag(jpeg.luminance_table(jpeg.encode_opencv(img, qf))).tolist(), qf


def test_table_nc_and_chroma(capsys):
    cli.main(["table", "50", "--nc", "15"])
    assert capsys.readouterr().out.split() == "16 11 12 14 12 10 16 14 13 14 18 17 16 19 24".split()
    cli.main(["table", "50", "--chroma"])
    assert capsys.readouterr().out.splitlines()[0].split() == "17 18 24 47 99 99 99 99".split()


def test_qtable_on_a_file(tmp_path, capsys):
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    p = tmp_path / "a.jpg"
    p.write_bytes(jpeg.encode_opencv(img, 83))
    assert cli.main(["qtable", str(p)]) == 0
    out = capsys.readouterr().out
    assert "nearest standard QF: 83 (exact)" in out
    assert "first 15 zig-zag: " + " ".join(map(str, jpeg.zigzag(jpeg.standard_table(83))[:15])) in out
    p.write_bytes(jpeg.encode_pillow(img, table=jpeg.photoshop_table(10)))
    cli.main(["qtable", str(p)])
    assert "nearest Photoshop quality: 10 (exact)" in capsys.readouterr().out


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n0000", b"not an image", None])
def test_bad_input_is_one_line_and_exit_2(tmp_path, content):
    p = tmp_path / "bad.jpg"
    if content is not None:
        p.write_bytes(content)
    r = run("qtable", p)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("qpaper: error:")
    assert "Traceback" not in r.stderr


def test_truncated_jpeg_is_refused(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    p = tmp_path / "t.jpg"
    p.write_bytes(jpeg.encode_opencv(img, 90)[:40])
    r = run("qtable", p)
    assert r.returncode == 2 and "truncated" in r.stderr


def test_every_subcommand_has_help():
    for args in (["--help"], ["table", "--help"], ["qtable", "--help"], ["data", "fetch", "--help"],
                 ["data", "list", "--help"], ["data", "trace", "--help"], ["dataset", "build", "--help"],
                 ["dataset", "info", "--help"]):
        r = run(*args)
        assert r.returncode == 0 and "usage:" in r.stdout


def test_dataset_build_and_info_smoke(tmp_path):
    out = tmp_path / "ds"
    r = run("dataset", "build", "--profile", "smoke", "--split", "test", "--qf2", "90", "--out", out,
            "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    info = run("dataset", "info", out)
    assert info.returncode == 0
    last = info.stdout.strip().splitlines()[-1]
    assert last.startswith("content sha256 ") and last.split()[-1] in r.stdout
    bad = run("dataset", "info", tmp_path / "nothing")
    assert bad.returncode == 2 and "manifest" in bad.stderr


def test_data_list_skimage():
    r = run("data", "list", "skimage")
    assert r.returncode == 0 and "astronaut" in r.stdout and "grass" not in r.stdout


def test_evaluate_a_model_based_method_on_an_aligned_dataset(tmp_path):
    """``qpaper evaluate --method galvan|bianchi`` fills the same tidy table as a CNN; on aligned
    QF1 60 -> QF2 90 patches the low frequencies are mostly right, on QF1 95 (> QF2) mostly not."""
    import json

    import pandas as pd

    from qpaper import djpeg
    from qpaper.djpeg import DatasetSpec
    spec = DatasetSpec(source="skimage", split="all", qf2=90, qf1=(60, 95), patches_per_image=6, patches_per_qf1=48,
                       grid_shift="aligned")
    djpeg.build(spec, tmp_path / "d", workers=1, progress=False, log=lambda *a: None)
    for method in ("galvan", "bianchi"):
        out = tmp_path / f"{method}.csv"
        r = run("evaluate", "--method", method, "--data", tmp_path / "d", "--out", out, "--quiet")
        assert r.returncode == 0, r.stderr
        t = pd.read_csv(out)
        low = t[t["coefficient"] <= 3].groupby("qf1")["accuracy"].mean()
        assert low[60] > 0.6 and low[95] < 0.4, (method, low.to_dict())
        assert json.loads(out.with_name(out.name + ".provenance.json").read_text())["method"] == method
    r = run("evaluate", "--method", "galvan", "--grid", "estimate", "--data", tmp_path / "d", "--out", tmp_path / "x.csv")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.csv").exists()
    r = run("evaluate", "--data", tmp_path / "d", "--out", tmp_path / "x.csv")
    assert r.returncode == 2 and "--model" in r.stderr and not (tmp_path / "x.csv").exists()


def test_workflow_subcommands_pass_their_arguments_to_the_modules(capsys):
    from qpaper import cli
    assert cli.main(["notebooks", "--only", "no-such-notebook"]) == 2
    assert "no notebook matches" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"    {name}" in out for name in ("experiments", "notebooks", "report", "gpu", "estimate"))
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert "python -m" not in makefile and "qpaper notebooks" in makefile and "qpaper experiments" in makefile


def test_train_then_evaluate_a_model_through_the_cli(tmp_path):
    """``qpaper train`` writes a run folder with the profile's settings and the overrides;
    ``qpaper evaluate --model`` scores it into the tidy table the notebooks read."""
    import json

    import pandas as pd
    for split in ("train", "test"):
        r = run("dataset", "build", "--profile", "smoke", "--split", split, "--out", tmp_path / split, "--workers", "1",
                "--quiet")
        assert r.returncode == 0, r.stderr
    r = run("train", "--profile", "smoke", "--data", tmp_path / "train", "--out", tmp_path / "run", "--epochs", "1",
            "--epoch-patches", "32", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["epochs"] == 1 and cfg["epoch_patches"] == 32 and cfg["arch"] == "dct" and cfg["loss"] == "Lr"
    out = tmp_path / "eval.csv"
    r = run("evaluate", "--model", tmp_path / "run" / "model.keras", "--data", tmp_path / "test", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    t = pd.read_csv(out)
    assert set(t["coefficient"]) == set(range(1, 16)) and t["accuracy"].between(0, 1).all()
    assert sorted(set(t["qf1"].astype(str))) == ["60", "80", "95"]
    r = run("train", "--profile", "smoke", "--data", tmp_path / "train", "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 2 and "already holds a run" in r.stderr  # never overwrites a run


def test_data_trace_tells_a_jpeg_history_from_none(tmp_path):
    from PIL import Image
    img = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "clean.png")
    Image.fromarray(jpeg.decode(jpeg.encode_opencv(img, 50))).save(tmp_path / "was-jpeg.png")
    r = run("data", "trace", tmp_path / "clean.png", tmp_path / "was-jpeg.png")
    assert r.returncode == 0, r.stderr
    lines = dict(line.split("\t")[0::2] for line in r.stdout.strip().splitlines())
    assert lines[str(tmp_path / "clean.png")] == "no trace found" and lines[str(tmp_path / "was-jpeg.png")] == "JPEG trace"
