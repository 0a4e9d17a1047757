"""The file-level estimator (issue 31): its evidence, the grid search, the notes, the calibration
and the default of ``qpaper estimate``."""
import json

import numpy as np
import pytest

from qpaper import filelevel as fl
from qpaper import filetrain as ft
from qpaper import grid, jpeg, tables


@pytest.fixture(scope="session")
def photo(astronaut):
    return astronaut


def double(img, q1, qf2, shift=(0, 0), first="opencv"):
    b1 = jpeg.encode_opencv(img, q1) if first == "opencv" else jpeg.encode_pillow(
        img, table=q1, chroma_table=tables.chroma_for(q1), subsampling="4:2:0")
    d1 = np.ascontiguousarray(jpeg.decode(b1)[shift[0]:, shift[1]:])
    return jpeg.encode_opencv(d1, qf2)


@pytest.mark.parametrize("qf,sub", [(75, "4:2:0"), (90, "4:4:4"), (90, "4:2:0")])
def test_levels_read_from_the_file_agree_with_those_recovered_from_the_decoded_luma(photo, tmp_path, qf, sub):
    """jpeglib reads the quantized coefficients as stored; the DCT of the decoded luma over q2
    gives the same on every block whose pixels decoding did not clip (up to IDCT rounding,
    never more than one level), and the per-coefficient histograms agree over all blocks."""
    data = double(photo, 70, qf) if sub == "4:2:0" else jpeg.encode_opencv(photo, qf, sub)
    f = tmp_path / "a.jpg"
    f.write_bytes(data)
    luma = fl.decode_luma(data)
    exact = fl.levels_from_file(f, luma.shape)
    recovered = fl.levels_from_luma(luma, jpeg.luminance_table(data))
    h, w = luma.shape
    assert exact.shape == recovered.shape == (h // 8 * (w // 8), 15)
    blocks = luma[:h // 8 * 8, :w // 8 * 8].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 64)
    unclipped = ((blocks > 0) & (blocks < 255)).all(axis=1)
    assert unclipped.mean() > 0.7
    same = exact[unclipped] == recovered[unclipped]
    assert same.mean() > 0.998 and np.abs(exact[unclipped] - recovered[unclipped]).max() <= 1
    for k in range(15):  # the histograms each coefficient's evidence is read from, all blocks
        lo = min(exact[:, k].min(), recovered[:, k].min())
        a = np.bincount(exact[:, k] - lo)
        b = np.bincount(recovered[:, k] - lo, minlength=len(a))
        a = np.pad(a, (0, len(b) - len(a)))
        assert np.abs(a - b).sum() / 2 / len(exact) < 0.03, k  # total variation


def test_comb_strength_is_the_complex_mean_it_replaces():
    y = np.random.default_rng(0).normal(0, 40, 3000)
    Q = np.arange(2, 20)
    direct = np.abs(np.exp(2j * np.pi * y[:, None] / Q).mean(axis=0))
    assert np.allclose(grid.comb_strength(y, Q), direct, atol=1e-4)
    two = grid.comb_strength(np.stack([y, y / 2], axis=1), np.stack([Q, Q]))
    assert np.allclose(two[0], direct, atol=1e-4) and not np.allclose(two[1], direct, atol=1e-2)


@pytest.mark.parametrize("shift", [(3, 5), (1, 0), (6, 7)])
def test_the_grid_search_finds_a_planted_shift_and_none_where_there_is_none(photo, shift):
    found, conf = grid.find_grid(fl.decode_luma(double(photo, 70, 90, shift)))
    assert found == shift and conf > 0.5
    for data in (double(photo, 70, 90), jpeg.encode_opencv(photo, 90)):  # aligned, single
        assert grid.find_grid(fl.decode_luma(data))[1] < fl.GRID_MIN


def test_the_double_quantization_model_prefers_the_true_step_where_it_left_a_trace(photo, tmp_path):
    """Aligned QF1 70 -> QF2 90: every first step is above the last; the likelihood's best
    candidate is the true step on most coefficients, and no coefficient of a single-compressed
    file shows as much evidence."""
    for shift in ((0, 0), (3, 5)):
        data = double(photo, 70, 90, shift)
        f = tmp_path / "d.jpg"
        f.write_bytes(data)
        ev = fl.read_evidence(f, data)
        assert ev["aligned"] == (shift == (0, 0)) and ev["search_shift"] == shift or shift == (0, 0)
        ll = fl.file_log_likelihoods(ev)
        h = 0 if shift == (0, 0) else 1
        best = ll[:, h, 1].max(axis=1).argmax(axis=1) + 1
        q1 = jpeg.zigzag(jpeg.standard_table(70))[:15]
        assert (best == q1).mean() >= 0.8, (best, q1)
    single = jpeg.encode_opencv(photo, 90)
    f.write_bytes(single)
    ev = fl.read_evidence(f, single)
    g_single = fl.evidence_gain(fl.file_log_likelihoods(ev), ev["q2"], not ev["aligned"])
    f.write_bytes(double(photo, 70, 90))
    ev = fl.read_evidence(f, double(photo, 70, 90))
    g_double = fl.evidence_gain(fl.file_log_likelihoods(ev), ev["q2"], not ev["aligned"])
    assert np.median(g_double) > 10 * max(np.median(g_single), 1)


def test_the_table_prior_puts_the_other_coefficients_quality_on_each_step():
    z = np.minimum(jpeg.zigzag(jpeg.standard_table(80))[:15], fl.CAND)
    p = np.full((1, 15, fl.CAND), 1e-4)
    p[0, np.arange(15), z - 1] = 1.0
    p[0, 6] = 1 / fl.CAND  # coefficient 7 shows nothing
    p /= p.sum(axis=-1, keepdims=True)
    prior = fl.table_prior(p)
    assert np.allclose(prior.sum(axis=-1), 1)
    assert prior[0, 6].argmax() + 1 == z[6] and prior[0, 6].max() > 0.5


def test_thresholds_call_at_most_the_allowed_share_of_single_files_double():
    rng = np.random.default_rng(1)
    ll = np.zeros((400, 15, 2, 2, 3, fl.CAND))
    ll[..., 5] = rng.exponential(20, (400, 15, 2, 2, 3))  # single files: some spurious evidence
    single = {"ll": ll, "q2": np.full((400, 15), 2), "aligned": rng.random(400) < 0.9}
    t = ft.thresholds(single)
    g = fl.evidence_gain(ll, single["q2"], ~single["aligned"])
    called = ((g >= t["double_nats"]).sum(axis=1) >= t["double_coefficients"]).mean()
    assert called <= ft.DOUBLE_FALSE_ALARMS + 1e-9
    assert (g < t["no_trace_nats"]).mean() >= ft.NO_TRACE_QUANTILE - 0.01


def test_temperature_scaling_recovers_a_known_overconfidence():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, (3000, 1, 8))
    true_p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y = np.array([rng.choice(8, p=p[0]) for p in true_p])[:, None]
    sharp = fl.scale(true_p, 0.5)  # twice as confident as it should be
    assert abs(fl.fit_temperature(sharp, y) - 2.0) < 0.3


def test_cases_are_the_same_bytes_whatever_the_number_of_workers():
    from qpaper.sources import get_source
    recs = get_source("skimage")[:3]
    a = ft.build_cases(recs, 4, seed=5, workers=1, progress=False, single_every=4)
    b = ft.build_cases(recs, 4, seed=5, workers=2, progress=False, single_every=4)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert a["single"].tolist() == [False, False, False, True]
    c = ft.build_cases(recs, 2, seed=5, workers=1, progress=False, start=2, single_every=4)
    assert np.array_equal(c["ll"], a["ll"][2:])


def test_estimate_uses_the_file_level_model_by_default(photo, tmp_path, capsys):
    from qpaper import cli
    f = tmp_path / "double.jpg"
    f.write_bytes(double(photo, 70, 90))
    assert cli.main(["estimate", str(f), "--json", "--quiet"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["method"] == "file" and r["model"].endswith("/file-q1") and "windows" not in r
    assert r["verdict"].startswith("double") and r["double"]
    right = np.array(r["q1"]) == jpeg.zigzag(jpeg.standard_table(70))[:15]
    assert right.mean() >= 0.9 and not any(np.array(r["no_trace"])[right])
    # the same file as the first compression alone: no evidence, every coefficient marked
    f.write_bytes(jpeg.encode_opencv(photo, 90))
    assert cli.main(["estimate", str(f), "--json", "--quiet"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert not r["double"] and r["verdict"].startswith("no evidence")
    # q1 == q2 on an aligned grid: nothing to read, said so per coefficient
    f.write_bytes(double(photo, 90, 90))
    assert cli.main(["estimate", str(f), "--json", "--quiet"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert all(r["no_trace"])
    # a window model is still there: --method cnn, or --model
    assert cli.main(["estimate", str(f), "--method", "cnn", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "cnn"


def test_a_file_level_model_that_differs_from_its_manifest_is_refused(tmp_path, capsys):
    import shutil

    from qpaper import cli, registry
    e = next(e for e in registry.entries() if e["head"] == "file")
    src = registry.Path(e["file"]).parent
    copy = tmp_path / "models" / "mini" / fl.NAME
    shutil.copytree(src, copy)
    manifest = {"models": [{**{k: v for k, v in e.items() if k != "file"}}]}
    (tmp_path / "models" / "mini" / "manifest.json").write_text(json.dumps(manifest))
    cal = json.loads((copy / "calibration.json").read_text())
    cal["no_trace_nats"] = 0.0
    (copy / "calibration.json").write_text(json.dumps(cal))
    f = tmp_path / "x.jpg"
    from qpaper.sources import get_source, load_image
    r = get_source("skimage")[0]
    f.write_bytes(jpeg.encode_opencv(load_image(r.path, r.sha256), 90))
    assert cli.main(["estimate", str(f), "--method", "file", "--model", str(copy), "--quiet"]) == 2
    assert "does not match the sha256" in capsys.readouterr().err


def test_the_registry_lists_the_file_level_model_and_window_options_need_a_window_model(photo, tmp_path, capsys):
    from qpaper import cli
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert fl.NAME in out and "file" in out
    f = tmp_path / "a.jpg"
    f.write_bytes(double(photo, 70, 90))
    assert cli.main(["estimate", str(f), "--method", "file", "--window", "0", "0", "--quiet"]) == 2
    assert "window model" in capsys.readouterr().err
    # --window alone picks a window model
    assert cli.main(["estimate", str(f), "--window", "0", "0", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "cnn"

