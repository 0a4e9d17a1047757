"""The experiment layer: dataset options it needs (scale, epoch slices), the comb of notebook 1,
the averages of the paper's tables, the README generator, and every notebook on smoke defaults."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qpaper import djpeg, explain, jpeg, paths, profiles, report, shards
from qpaper import results as rs
from qpaper.djpeg import DatasetSpec
from qpaper.profiles import PROFILES

QUIET = lambda *a: None  # noqa: E731


def test_half_resolution_datasets_use_the_downscaled_image(tmp_path):
    full = djpeg.DJpegDataset(DatasetSpec(source="skimage", split="all", qf2=90, qf1=(70,), patches_per_qf1=8))
    half = djpeg.DJpegDataset(DatasetSpec(source="skimage", split="all", qf2=90, qf1=(70,), patches_per_qf1=8,
                                          scale=0.5))
    assert all(abs(h - f / 2) <= 0.5 and abs(w - g / 2) <= 0.5 for (h, w), (f, g) in zip(half.sizes, full.sizes))
    x, q1, meta = half.unit(0)
    assert x.shape[1:] == (64, 64, 3)
    h, w = half.sizes[meta["image"][0]]
    r, c = meta["r"].astype(int), meta["c"].astype(int)
    assert (meta["y"] + 64 <= h - r).all() and (meta["x"] + 64 <= w - c).all()
    assert not np.array_equal(x, full.unit(0)[0])
    # a spec without the option keeps the dictionary (and digest) it had before the option existed
    assert "scale" not in DatasetSpec(source="skimage", split="all", qf2=90, qf1=(70,)).to_dict()
    with pytest.raises(ValueError):
        DatasetSpec(source="skimage", split="all", qf2=90, qf1=(70,), scale=1.5)


def test_epoch_slices_cover_each_pass_once():
    pytest.importorskip("keras")
    from qpaper.train import Patches
    shards = {"x": [np.zeros((10, 2, 2, 1), np.uint8)], "q1": [np.ones((10, 64), np.uint8)]}
    seq = Patches(shards, np.arange(10), batch_size=2, seed=3, epoch_size=4)
    seen = []
    for _ in range(5):  # 5 epochs of 4 = two passes over 10
        assert len(seq.order) == 4 and len(seq) == 2
        seen.extend(seq.order.tolist())
        seq.on_epoch_end()
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    again = Patches(shards, np.arange(10), batch_size=2, seed=3, epoch=2, epoch_size=4)
    assert again.order.tolist() == seen[8:12]  # a resumed run continues the same sequence


def test_the_comb_shows_in_the_aligned_histogram_only(astronaut):
    demo = explain.comb_demo(jpeg.to_luma(astronaut), qf1=70, qf2=90, k=2, shift=(3, 5))
    assert (demo["q1"], demo["q2"]) == (7, 2)

    def empty_share(name):  # share of the bins within +-10 that are nearly empty
        bins, counts = demo[name]
        c = counts[np.abs(bins) <= 10]
        return float((c < 0.05 * c.max()).mean())
    assert empty_share("aligned") > 0.4
    assert empty_share("single") < 0.1 and empty_share("non-aligned") < 0.1


def test_block_dct_matches_opencv():
    import cv2
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 24), dtype=np.uint8)
    c = jpeg.block_dct(img)
    ref = cv2.dct(img[8:16, 8:16].astype(np.float32) - 128).reshape(64)[jpeg.ZIGZAG]
    np.testing.assert_allclose(c[4], ref, atol=1e-3)


def _tidy(acc_by_qf1, qf2=90, patches=(10, 30)):
    rows = []
    for qf1, acc in acc_by_qf1.items():
        for aligned, n in zip((False, True), patches):
            for k in range(1, 16):
                rows.append({"qf1": str(qf1), "qf2": qf2, "aligned": aligned, "coefficient": k, "patches": n,
                             "accuracy": acc[aligned], "mse": 1.0 - acc[aligned]})
    return pd.DataFrame(rows)


def test_averages_weigh_patches_within_a_qf1_and_qf1_values_equally():
    t = _tidy({60: {False: 0.0, True: 1.0}, 95: {False: 1.0, True: 1.0}})
    # QF1 60: (10*0 + 30*1)/40 = 0.75; QF1 95: 1.0; equal weights -> 0.875
    assert rs.averages(t) == pytest.approx((0.875, 0.125))
    assert rs.averages(t, aligned=False) == pytest.approx((0.5, 0.5))
    assert rs.averages(t, qf1="<") == pytest.approx((0.75, 0.25))
    assert rs.averages(t, qf1=">=") == pytest.approx((1.0, 0.0))
    pc = rs.per_coefficient(t)
    assert len(pc) == 15 and pc["accuracy"].tolist() == pytest.approx([0.875] * 15)
    table = rs.compare_per_qf1({"a": t, "b": _tidy({60: {False: 1, True: 1}, 95: {False: 0, True: 0}})})
    assert table["qf1"].tolist() == ["60", "95", "all"]
    assert table["a AvgAcc"].tolist() == pytest.approx([0.75, 1.0, 0.875])
    assert table["b AvgAcc"].tolist() == pytest.approx([1.0, 0.0, 0.5])
    assert table["patches"].tolist() == [40, 40, 80]


def test_the_constant_prior_is_the_median_or_mode_of_the_training_labels(tmp_path, monkeypatch):
    spec = DatasetSpec(source="skimage", split="all", qf2=90, qf1=(60, 80, 95), patches_per_image=4,
                       patches_per_qf1=12)
    shards.build(spec, tmp_path / "qf2-90-train", workers=1, progress=False, log=QUIET)
    monkeypatch.setattr(rs, "dataset_dir", lambda profile, name, seed=0: tmp_path / name)
    z = {q: jpeg.zigzag(jpeg.standard_table(q))[:15] for q in (60, 80, 95)}
    assert rs.prior_estimate("smoke", rs.prior(90)).tolist() == z[80].tolist()  # the middle of three equal groups
    mode = rs.prior_estimate("smoke", rs.prior(90, "mode"))
    assert all(mode[k] in (z[60][k], z[80][k], z[95][k]) for k in range(15))
    assert rs.method_of(rs.prior(90)) == "constant prior (median)" and rs.is_prior(rs.prior(80, "mode"))
    from qpaper import evaluate
    t, summ, _ = evaluate.evaluate(z[80], tmp_path / "qf2-90-train", progress=False)
    p = evaluate.per_qf1(t).set_index("qf1")["accuracy"]
    assert p[80] == 1.0 and p[60] == pytest.approx(float((z[60] == z[80]).mean()))


def test_every_profile_lists_the_datasets_and_models_the_notebooks_need():
    for profile in PROFILES:
        d = profiles.datasets(profile)
        assert d["qf2-92-test"].qf2 == 92 and d["qf2-92-test"].qf1 == d["qf2-90-test"].qf1
        assert d["qf2-90-test-aligned"].grid_shift == "aligned"
        assert d["qf2-90-halfres"].scale == 0.5
        assert d["qf2-90-photoshop"].qf1 == profiles.PHOTOSHOP_Q1
        assert d["qf2-90-photoshop"].encoder == "pillow" and d["qf2-90-photoshop"].subsampling == "4:4:4"
        assert d["qf2-90-train"].split != "test" and d["qf2-90-test"].split != "train"
    mini = profiles.datasets("mini")
    assert mini["qf2-90-train"].source == mini["qf2-90-test"].source == "wallpapers"
    assert mini["qf2-90-mismatch"].source == "skimage"
    paper = profiles.datasets("paper")
    assert (paper["qf2-90-train"].source, paper["qf2-90-mismatch"].source) == ("raise", "dresden")


def test_readme_results_link_every_number_to_its_table(tmp_path):
    tables = tmp_path / "results" / "mini" / "tables"
    tables.mkdir(parents=True)
    pd.DataFrame([{"table": 1, "qf2": 90, "test": "random", "method": "proposed", "AvgAcc": 0.5, "AvgMSE": 2.0}]) \
        .to_csv(tables / "tables1-4-summary.csv", index=False)
    (tables / "tables1-4-summary.csv.provenance.json").write_text(json.dumps(
        {"seed": 0, "git_commit": "abc", "hardware": "cpu"}))
    for name, exp in (("loss-ablation", "loss ablation, QF2 90"), ("generalization", "dataset mismatch, QF2 90")):
        method = "class head, loss Lr" if name == "loss-ablation" else "proposed"
        pd.concat([pd.DataFrame([{"experiment": exp, "method": method, "AvgAcc": 0.25, "AvgMSE": 3.5,
                                  "source": "this repo"}]), rs.paper_rows(exp)]).to_csv(tables / f"{name}.csv",
                                                                                       index=False)
    (tmp_path / "README.md").write_text(f"intro\n{report.BEGIN}\nold\n{report.END}\nrest\n")
    report.update_readme("mini", tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "\nold\n" not in text
    assert "[0.5000](results/mini/tables/tables1-4-summary.md)" in text
    assert "| dataset mismatch, QF2 90 | proposed | [0.2500](results/mini/tables/generalization.md) | " \
           "[3.5000](results/mini/tables/generalization.md) | 0.644 | 0.538 |" in text
    assert "| 0.8516 | 0.9221 |" in text  # the paper's ablation numbers beside ours


def test_claims_are_checked_against_the_tables(tmp_path):
    tables = tmp_path / "results" / "mini" / "tables"
    tables.mkdir(parents=True)
    rows = [(1, "proposed", 0.8, 1.0), (1, "[10]", 0.6, 0.9), (1, "constant prior (median)", 0.11, 15.0),
            (1, "[5], grid estimated", 0.07, 20.0), (2, "proposed", 0.7, 1.2), (2, "[7]", 0.75, 8.0)]
    pd.DataFrame([{"table": t, "qf2": 90, "test": "x", "method": m, "AvgAcc": a, "AvgMSE": e} for t, m, a, e in rows]) \
        .to_csv(tables / "tables1-4-summary.csv", index=False)
    pd.DataFrame([{"experiment": "loss ablation, QF2 90", "method": m, "AvgAcc": 0.8, "AvgMSE": e, "source": "this repo"}
                  for m, e in (("class head, loss L", 1.5), ("class head, loss Lr", 1.1))]).to_csv(
        tables / "loss-ablation.csv", index=False)
    got = {c["claim"]: c["holds"] for c in report.claims("mini", tmp_path)}
    yes, no = "point estimate as claimed (no interval)", "point estimate against it (no interval)"  # no bootstrap here
    assert got["QF2 90, random shift: class head ahead of [10]"] == yes
    assert got["QF2 90, random shift: proposed ahead of [10] in AvgMSE"] == no  # 1.0 is not below 0.9
    assert got["QF2 90, random shift: proposed above the constant prior"] == yes
    assert got["QF2 90, random shift: proposed ahead of [5] (grid estimated)"] == yes
    assert got["QF2 90, aligned: proposed ahead of [7]"] == no
    assert got["QF2 90: Lr below L in AvgMSE"] == yes
    assert not any(k.startswith("QF2 80") for k in got)  # no row, no claim
    assert f"[AvgAcc 0.7000 vs 0.7500](results/mini/tables/tables1-4-summary.md) | {no} |" in report.claims_markdown(
        "mini", tmp_path)
    # with notebook 3's paired bootstrap (other minus proposed) the verdict is the interval's
    pd.DataFrame([{"method": "[10]", "test": "qf2-90-test", "diff low": -0.25, "diff high": -0.15}]).to_csv(
        tables / "bootstrap-qf2-90.csv", index=False)
    got = {c["claim"]: c["holds"] for c in report.claims("mini", tmp_path)}
    assert got["QF2 90, random shift: class head ahead of [10]"] == "yes"


def test_notebooks_run_on_their_smoke_defaults_under_nbval(tmp_path):
    """Every notebook, converted from its jupytext source, runs top to bottom under
    ``pytest --nbval-lax`` with its parameters cell's defaults (the smoke profile): datasets,
    models and results go to temporary folders, and every table and figure is written."""
    import jupytext
    import nbformat
    sources = sorted((Path(paths.ROOT) / "notebooks").glob("[0-9][0-9]-*.py"))
    assert len(sources) >= 7
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    for src in sources:
        nb = jupytext.read(src)
        assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1, src.name
        nbformat.write(nb, nbdir / f"{src.stem}.ipynb")
    env = dict(os.environ, QPAPER_MODELS=str(tmp_path / "models"), QPAPER_RESULTS=str(tmp_path / "results"),
               QPAPER_DATA=str(tmp_path / "data"))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                        "--nbval-kernel-name", "python3", "--rootdir", str(nbdir), "-c", os.devnull, str(nbdir)],
                       capture_output=True, text=True, env=env, timeout=2400, cwd=nbdir)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    code_cells = sum(c.cell_type == "code" for src in sources for c in jupytext.read(src).cells)
    assert f"{code_cells} passed" in r.stdout, r.stdout[-2000:]  # nbval: one test per code cell
    res = tmp_path / "results" / "smoke"
    summary = pd.read_csv(res / "tables" / "tables1-4-summary.csv")
    assert len(summary) == 18 and summary["AvgAcc"].between(0, 1).all() and (summary["AvgMSE"] >= 0).all()
    prior = "constant prior (median)"
    assert set(summary[summary["test"] == "aligned"]["method"]) == {"proposed", "[10]", "[7]", "[5]", prior}
    assert set(summary[summary["test"] != "aligned"]["method"]) == {"proposed", "[10]", "[5], grid estimated", prior}
    ablation = pd.read_csv(res / "tables" / "loss-ablation.csv")
    assert {prior, "constant prior (mode)"} <= set(ablation["method"])
    prov = json.loads((res / "tables" / "tables1-4-summary.csv.provenance.json").read_text())
    assert prov["profile"] == "smoke" and prov["seed"] == 0
    from qpaper.paths import sha256_file
    assert {"galvan", "bianchi"} <= set(prov["models"])
    for m, info in prov["models"].items():
        if m in rs.BASELINES + rs.GRID_BASELINES:  # model-based: no file, the digest of their code
            assert len(info["code_sha256"]) == 64
        elif rs.is_prior(m):  # the constant: the training labels it comes from, and its value
            assert len(info["train_content_sha256"]) == 64 and len(info["estimate"]) == 15
        else:
            assert info["sha256"] == sha256_file(tmp_path / "models" / "smoke" / m / "model.keras")
    for name in ("table1-qf2-90", "table2-qf2-90-aligned", "table3-qf2-80", "table4-qf2-80-aligned",
                 "loss-ablation", "generalization", "figure11-photoshop", "datasets", "localization-scores",
                 "wild-families", "wild-qf2", "figure11-remedy"):
        assert (res / "tables" / f"{name}.csv").exists() and (res / "tables" / f"{name}.md").exists()
    for fig in ("01-dct-histograms", "figure3-qf2-90-non-aligned", "figure4-qf2-90-aligned",
                "figure5-qf2-90-aligned-qf1-vs-qf2", "figure6-qf2-80-non-aligned", "figure7-qf2-80-aligned",
                "figure8-qf2-92-test", "figure9-qf2-90-mismatch", "figure10-qf2-90-halfres", "figure11-photoshop",
                "loss-ablation", "figure12-localization", "08-families", "08-reliability", "figure11-remedy"):
        png = res / "figures" / f"{fig}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Path(str(png) + ".provenance.json").exists()


def test_a_failing_notebook_gives_one_line_and_status_1(tmp_path, monkeypatch):
    bad = tmp_path / "notebooks"
    bad.mkdir()
    (bad / "01-bad.py").write_text('# %% tags=["parameters"]\nprofile = "smoke"\nseed = 0\n\n# %%\n'
                                   'raise RuntimeError("boom")\n')
    from qpaper import cli, notebooks
    monkeypatch.setattr(notebooks, "NOTEBOOK_DIR", bad)
    assert cli.main(["notebooks", "--profile", "smoke", "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out" / "01-bad.ipynb").exists() and not list((tmp_path / "out").glob(".*"))


def test_only_picks_notebooks_by_number_and_keeps_the_other_timings(tmp_path, monkeypatch, capsys):
    from qpaper import cli, notebooks
    assert notebooks.matches("07-localization", "7") and notebooks.matches("07-localization", "07")
    assert notebooks.matches("07-localization", "07-loc") and not notebooks.matches("07-localization", "0")
    assert not notebooks.matches("17-other", "7")
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    for name in ("01-a", "02-b"):
        (nbdir / f"{name}.py").write_text('# %% tags=["parameters"]\nprofile = "smoke"\nseed = 0\n\n# %%\nx = 1\n')
    monkeypatch.setattr(notebooks, "NOTEBOOK_DIR", nbdir)
    out = tmp_path / "out"
    assert cli.main(["notebooks", "--profile", "smoke", "--out", str(out)]) == 0
    assert cli.main(["notebooks", "--profile", "smoke", "--out", str(out), "--only", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["01-a.ipynb", "02-b.ipynb", "timings.csv",
                                                     "timings.csv.provenance.json"]  # no temporary file left
    rows = (out / "timings.csv").read_text().splitlines()
    assert rows[0] == "notebook,seconds" and [r.split(",")[0] for r in rows[1:]] == ["01-a", "02-b"]
    assert all(float(r.split(",")[1]) > 0 for r in rows[1:])
    assert cli.main(["notebooks", "--profile", "smoke", "--out", str(out), "--only", "9"]) == 2
