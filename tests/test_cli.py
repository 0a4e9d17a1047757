import json
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

    from qpaper import shards
    from qpaper.djpeg import DatasetSpec
    spec = DatasetSpec(source="skimage", split="all", qf2=90, qf1=(60, 95), patches_per_image=6, patches_per_qf1=48,
                       grid_shift="aligned")
    shards.build(spec, tmp_path / "d", workers=1, progress=False, log=lambda *a: None)
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


def test_every_workflow_is_a_qpaper_subcommand_and_the_makefile_calls_only_those(capsys):
    from qpaper import cli
    assert cli.main(["notebooks", "--only", "no-such-notebook"]) == 2
    assert "no notebook matches" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"    {name}" in out for name in ("reproduce", "experiments", "notebooks", "report", "gpu", "estimate"))
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert "python -m" not in makefile and "qpaper reproduce" in makefile and "qpaper notebooks" in makefile and "qpaper experiments" in makefile


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


def test_experiments_list_names_every_dataset_and_model_of_the_profile(capsys):
    from qpaper import profiles
    assert cli.main(["experiments", "list", "--profile", "mini"]) == 0
    lines = capsys.readouterr().out.splitlines()
    specs = profiles.datasets("mini")
    assert [line.split(" ", 1)[0] for line in lines] == list(specs) + list(profiles.MODELS)
    first = lines[0].split(" ", 1)
    assert json.loads(first[1]) == specs[first[0]].to_dict()
    assert "qf2-80-regression qf2-80-train regression mse" in lines


def test_reproduce_builds_trains_runs_and_reports_a_profile(tmp_path, monkeypatch, capsys):
    """``qpaper reproduce`` (what ``make reproduce`` runs) on the smoke profile, into temporary
    data, models and results folders, with one stand-in notebook: every dataset of the profile is
    built, every model trained (in this process) with a log, the notebook executed and timed, the
    model cards and registry written, and the README's estimate example made with the new model.
    A second run trains nothing and leaves the models' bytes alone."""
    from qpaper import notebooks, paths, profiles
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path / "data")
    monkeypatch.setenv("QPAPER_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("QPAPER_RESULTS", str(tmp_path / "results"))
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    (nbdir / "01-stand-in.py").write_text('# %% tags=["parameters"]\nprofile = "smoke"\nseed = 0\n\n# %%\nx = 1\n')
    monkeypatch.setattr(notebooks, "NOTEBOOK_DIR", nbdir)
    assert cli.main(["reproduce", "--profile", "smoke", "--workers", "1"]) == 0
    for name in profiles.datasets("smoke"):
        assert json.loads((tmp_path / "data/processed/datasets/smoke" / name / "manifest.json").read_text())["count"] > 0
    models = tmp_path / "models" / "smoke"
    for name in profiles.MODELS:
        assert (models / name / "model.keras").exists(), name
        assert len((models / name / "log.csv").read_text().splitlines()) == 1 + profiles.PROFILES["smoke"]["fit"]["epochs"]
    from qpaper import filelevel
    assert all((models / filelevel.NAME / f).exists() for f in filelevel.PASSES + ("calibration.json", "config.json"))
    assert (tmp_path / "results/smoke/notebooks/01-stand-in.ipynb").exists()
    assert (tmp_path / "results/smoke/notebooks/timings.csv").read_text().startswith("notebook,seconds\n01-stand-in,")
    manifest = json.loads((models / "manifest.json").read_text())["models"]
    names = sorted([*profiles.MODELS, filelevel.NAME])
    assert sorted(e["name"] for e in manifest) == names
    assert all(f"## {name}" in (models / "README.md").read_text() for name in names)
    example = (tmp_path / "results/smoke/estimate-example.txt").read_text()
    assert "$ qpaper estimate coffee-pillow70-opencv90.jpg --method galvan" in example
    assert "smoke/file-q1" in example  # the default of qpaper estimate: the file-level estimator
    assert "coffee-park-opencv75.jpg" in example and "standard table:" in example
    files = [models / n / "model.keras" for n in profiles.MODELS] + [models / filelevel.NAME / f for f in filelevel.PASSES]
    digest = [f.read_bytes() for f in files]
    capsys.readouterr()
    assert cli.main(["reproduce", "--profile", "smoke", "--workers", "1"]) == 0
    assert capsys.readouterr().out.count("exists (make reproduce TRAIN=1 retrains it)") == len(profiles.MODELS) + 1
    assert digest == [f.read_bytes() for f in files]


def test_report_readme_rewrites_the_results_block_of_a_project_folder(tmp_path):
    """``qpaper report readme --root``: the block between the markers is rewritten from that
    folder's results tables, every number linked to its table; the text around it is kept."""
    import shutil

    from qpaper import report
    root = Path(__file__).resolve().parent.parent
    shutil.copytree(root / "results" / "mini" / "tables", tmp_path / "results" / "mini" / "tables")
    summary = tmp_path / "results/mini/tables/tables1-4-summary.csv"
    rows = summary.read_text().splitlines()
    cells = rows[1].split(",")
    cells[4] = "0.1234"  # a number only this folder's table holds
    summary.write_text("\n".join([rows[0], ",".join(cells), *rows[2:]]) + "\n")
    (tmp_path / "README.md").write_text(f"before\n{report.BEGIN}\nstale\n{report.END}\nafter\n")
    r = run("report", "readme", "--profile", "mini", "--root", tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "stale" not in text
    assert f"| Table 1: QF2 90, {cells[2]} | {cells[3]} | [0.1234](results/mini/tables/tables1-4-summary.md) |" in text
    r = run("report", "readme", "--profile", "mini", "--root", tmp_path / "nowhere")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_seeds_and_thresholds_are_refused_before_any_work(capfd):
    """Issue 25, item 14: --seed -1 and --threshold nan are argument errors naming the flag."""
    assert cli.main(["estimate", "/nonexistent.jpg", "--seed", "-1"]) == 2
    err = capfd.readouterr().err
    assert "--seed" in err and "out of range" in err and "nonexistent" not in err
    assert cli.main(["data", "trace", "/nonexistent.png", "--threshold", "nan"]) == 2
    err = capfd.readouterr().err
    assert "--threshold" in err and "finite" in err


def test_non_regular_and_enormous_inputs_are_refused_fast(capfd, tmp_path):
    """Issue 25, item 10: qtable and data trace refuse a FIFO and a device at once (they used to
    hang or read forever), a sparse file over the size limit before reading it, and data trace an
    image whose header says more pixels than the limit, before decoding it."""
    import os

    from PIL import Image
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    sparse = tmp_path / "huge.jpg"
    with open(sparse, "wb") as f:
        f.write(b"\xff\xd8")
        f.truncate(2 ** 30 + 1)
    for cmd in (["qtable", str(fifo)], ["qtable", "/dev/zero"], ["data", "trace", str(fifo)],
                ["qtable", str(sparse)], ["estimate", str(sparse)]):
        assert cli.main(cmd) == 2
        err = capfd.readouterr().err
        assert len(err.strip().splitlines()) == 1 and ("not a regular file" in err or "MiB" in err), (cmd, err)
    big = tmp_path / "big.png"
    Image.new("1", (12_000, 10_100)).save(big)  # 121 MP of one bit: a small file
    assert cli.main(["data", "trace", str(big)]) == 2
    assert "more than the 120 MP" in capfd.readouterr().err
