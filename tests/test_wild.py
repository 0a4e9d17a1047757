"""Issue 21: table families (deterministic, labelled from the file), last tables per unit, the wide
head with its "at least" class, the any-QF2 model given Q2, what `qpaper estimate` says of each
coefficient, and the calibration measures."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from qpaper import calibration, jpeg, tables, wild
from qpaper.djpeg import DatasetSpec, DJpegDataset


# ---------------------------------------------------------------------------------------------
# Families

def test_a_family_draw_is_a_pure_function_of_family_seed_split_and_unit():
    a = tables.draw("perturbed", tables.family_rng("perturbed", 0, "train", 1, 7))
    b = tables.draw("perturbed", tables.family_rng("perturbed", 0, "train", 1, 7))
    assert np.array_equal(a, b)
    others = [tables.draw("perturbed", tables.family_rng("perturbed", s, sp, 1, u))
              for s, sp, u in ((1, "train", 7), (0, "test", 7), (0, "train", 8))]
    assert not any(np.array_equal(a, o) for o in others)
    # the held-out perturbations are another seed of the same law, not the same tables
    h = tables.draw("perturbed-heldout", tables.family_rng("perturbed-heldout", 0, "train", 1, 7))
    assert not np.array_equal(a, h)


def test_perturbed_steps_cannot_be_guessed_from_the_others_and_ijg_steps_can():
    def share(family):
        return tables.guessable_share(
            np.stack([jpeg.zigzag(tables.draw(family, tables.family_rng(family, 0, "t", i))) for i in range(300)]))
    assert share("libjpeg") > 0.95
    assert share("perturbed") < 0.4
    assert share("park") < share("libjpeg")


def test_park_tables_are_split_by_pattern_and_hold_no_standard_or_photoshop_table():
    train, held = tables.park_split("park"), tables.park_split("park-heldout")
    assert len(train) > 3 * len(held) > 0
    key = lambda t: tuple(jpeg.zigzag(t)[:15])  # noqa: E731
    assert not {key(t) for t in train} & {key(t) for t in held}
    known = {key(jpeg.standard_table(q)) for q in range(1, 101)} | {key(t) for t in jpeg.PHOTOSHOP_LUMINANCE.values()}
    assert not ({key(t) for t in train} | {key(t) for t in held}) & known
    assert len(tables.park_tables()) == 1070


def test_the_head_range_is_what_the_table_distribution_gives():
    assert np.array_equal(tables.head_range(), tables.WIDE_RANGE)
    assert (tables.WIDE_RANGE >= jpeg.q_max()).all() and tables.WIDE_RANGE.max() <= 24
    assert np.array_equal(tables.wide_sizes(), tables.WIDE_RANGE + 1)


def test_an_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown table family"):
        tables.draw("cameras", np.random.default_rng(0))
    with pytest.raises(ValueError, match="q2_mix"):
        DatasetSpec(source="skimage", split="train", qf2=90, qf1=(70,), encoder="pillow", q2_mix="q2-cameras")
    with pytest.raises(ValueError, match="pillow"):
        DatasetSpec(source="skimage", split="train", qf2=90, qf1=("perturbed",))


# ---------------------------------------------------------------------------------------------
# Datasets

SPEC = dict(source="skimage", split="train", qf2=90, qf1=("perturbed", "park"), patches_per_image=8,
            patches_per_qf1=24, encoder="pillow", subsampling="4:2:0", q2_mix="q2-wide", grid_shift="mixed")


def test_family_units_are_labelled_with_the_table_read_back_from_the_first_file():
    ds = DJpegDataset(DatasetSpec(**SPEC))
    for u in range(ds.n_units):
        x, q1, meta, q2 = ds.unit(u)
        qi, lu = ds.units[u][0], ds.units[u][1]
        family = ds.spec.qf1[qi]
        t1 = tables.draw(family, tables.family_rng(family, 0, "train", qi, lu))
        t2 = tables.draw("q2-wide", tables.family_rng("q2-wide", 0, "train", qi, lu))
        img = np.zeros((64, 64, 3), np.uint8)
        back1 = jpeg.luminance_table(jpeg.encode_pillow(img, table=t1, chroma_table=tables.chroma_for(t1),
                                                       subsampling="4:2:0"))
        back2 = jpeg.luminance_table(jpeg.encode_pillow(img, table=t2, chroma_table=tables.chroma_for(t2),
                                                       subsampling="4:2:0"))
        assert (q1 == np.minimum(jpeg.zigzag(back1), 255)).all()
        assert (q2 == jpeg.zigzag(back2)).all()
        assert (meta["qf2"] == jpeg.nearest_standard_qf(t2)[0]).all()


def test_the_mixed_grid_shift_is_aligned_a_quarter_of_the_time():
    from qpaper.djpeg import draw_shift
    rng = np.random.default_rng(3)
    shifts = [draw_shift(rng, "mixed") for _ in range(4000)]
    aligned = np.mean([s == (0, 0) for s in shifts])
    assert 0.22 < aligned < 0.28 and len(set(shifts)) == 64


def test_family_units_are_the_same_whole_or_cropped_and_run_to_run():
    ds, again = DJpegDataset(DatasetSpec(**SPEC)), DJpegDataset(DatasetSpec(**SPEC))
    for u in (0, ds.n_units - 1):
        a, b, c = ds.unit(u, path="whole"), ds.unit(u, path="crop"), again.unit(u)
        assert all(np.array_equal(p, q) for p, q in zip(a, b))
        assert all(np.array_equal(p, q) for p, q in zip(a, c))


def test_specs_without_a_q2_mix_keep_their_digest():
    old = DatasetSpec(source="skimage", split="train", qf2=90, qf1=(60, 80))
    assert "q2_mix" not in old.to_dict()
    new = DatasetSpec(**SPEC)
    assert new.to_dict()["q2_mix"] == "q2-wide" and DatasetSpec.from_dict(new.to_dict()) == new


def test_shards_store_the_last_tables_and_the_digest_covers_them(tmp_path):
    from qpaper.dataset import content_digest, open_dataset
    from qpaper.shards import build
    spec = DatasetSpec(**SPEC)
    m1 = build(spec, tmp_path / "one", workers=1, progress=False, log=lambda *_: None)
    m2 = build(spec, tmp_path / "two", workers=2, progress=False, log=lambda *_: None)
    assert m1["content_sha256"] == m2["content_sha256"]
    d = open_dataset(tmp_path / "one")
    assert len(d["q2"]) == len(d["x"]) and np.concatenate(d["q2"]).shape == (m1["count"], 64)
    q2 = tmp_path / "one" / d["manifest"]["shards"][0]["files"]["q2"]["name"]
    arr = np.load(q2)
    arr[0, 0] += 1
    np.save(q2, arr)
    assert content_digest(tmp_path / "one", d["manifest"]["shards"]) != m1["content_sha256"]


# ---------------------------------------------------------------------------------------------
# The wide head and the any-QF2 model

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def wide_model():
    import keras

    from qpaper.model import build_model
    keras.utils.set_random_seed(0)
    return build_model("wide", arch="coef", width=16, hidden=16)


def test_the_at_least_class_takes_every_step_above_the_range():
    from qpaper.losses import clip_labels
    q = np.full((2, 64), 200)
    q[1, :15] = tables.WIDE_RANGE
    y, n = clip_labels(q, 15, tables.wide_sizes())
    assert (y[0] == tables.WIDE_RANGE + 1).all() and (y[1] == tables.WIDE_RANGE).all() and n == 15
    assert (wild.in_classes(q)[0] == tables.WIDE_RANGE + 1).all()


def test_the_any_qf2_model_reads_q2_and_decodes_in_its_classes(wide_model, coffee, tmp_path):
    from qpaper.model import decode, head_of, inputs, load_model, takes_q2
    from qpaper.train import save_model
    assert head_of(wide_model) == "wide" and takes_q2(wide_model)
    x = np.stack([coffee[:64, :64], coffee[64:128, :64]]).astype("float32")
    z90, z60 = (jpeg.zigzag(jpeg.standard_table(q)) for q in (90, 60))
    p90 = wide_model.predict_on_batch(inputs(wide_model, x, z90))
    p60 = wide_model.predict_on_batch(inputs(wide_model, x, z60))
    assert p90.shape == (2, int(tables.wide_sizes().sum())) and not np.allclose(p90, p60)  # Q2 is read
    assert decode(p90, "wide").max() <= tables.WIDE_RANGE.max() + 1
    save_model(wide_model, tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    assert np.allclose(again.predict_on_batch(inputs(again, x, z90)), p90, atol=1e-5)


def test_the_prior_is_dropped_only_in_training():
    from qpaper.model import PriorDrop
    layer = PriorDrop(0.5, seed=1)
    x = np.ones((400, 2, 3), "float32")
    assert np.array_equal(np.asarray(layer(x, training=False)), x)
    kept = np.asarray(layer(x, training=True))[:, 0, 0]
    assert set(np.unique(kept)) == {0.0, 1.0} and 0.35 < kept.mean() < 0.65


# ---------------------------------------------------------------------------------------------
# What `qpaper estimate` says of each coefficient

def test_coefficient_notes_say_no_trace_at_least_and_uncertain():
    from qpaper.estimate import coefficient_notes, nearest_supported
    q2 = jpeg.standard_table(90)
    z2 = jpeg.zigzag(q2)[:15]  # 3 2 2 3 2 2 3 3 3 3 4 3 3 4 5
    q1 = z2 * 3
    q1[0] = 1              # below q2: no trace
    q1[1] = 1              # 1 divides 2
    q1[2] = 25             # above R_3 = 12: "at least"
    q1[3] = z2[3]          # equal: no trace
    agree = np.full(15, 0.9)
    agree[4], agree[5] = 0.3, 0.45
    n = coefficient_notes(np.minimum(q1, tables.WIDE_RANGE + 1), agree, q2)
    assert n["no_trace"][:4] == [True, True, False, True] and not any(n["no_trace"][4:])
    assert n["at_least"][2] and sum(n["at_least"]) == 1
    assert n["uncertain"][4] and n["uncertain"][5] and sum(n["uncertain"]) == 2
    r = {**n, "q1": q1}
    near = nearest_supported(np.minimum(q1, tables.WIDE_RANGE + 1), r)
    assert near["supported"] == 15 - 6 and near["matches"] is None


def test_a_standard_table_is_matched_only_on_the_supported_coefficients():
    from qpaper.estimate import coefficient_notes, nearest_supported
    z75 = jpeg.zigzag(jpeg.standard_table(75))[:15]
    q2 = jpeg.standard_table(95)
    n = coefficient_notes(z75, np.full(15, 0.9), q2)
    assert nearest_supported(z75, {**n})["matches"] == "IJG QF 75"
    wrong = z75.copy()
    wrong[6] += 2
    n = coefficient_notes(wrong, np.full(15, 0.9), q2)
    assert nearest_supported(wrong, n)["matches"] is None


def test_estimate_with_an_any_qf2_model_reports_each_coefficient(wide_model, coffee, tmp_path, capfd):
    from qpaper import cli
    from qpaper.train import save_model
    save_model(wide_model, tmp_path / "wide.keras")
    b = io.BytesIO()
    Image.fromarray(coffee).save(b, "JPEG", quality=70)
    f = tmp_path / "double.jpg"
    f.write_bytes(jpeg.encode_opencv(jpeg.decode(b.getvalue()), 80))
    assert cli.main(["estimate", str(f), "--model", str(tmp_path / "wide.keras"), "--json", "--quiet"]) == 0
    r = json.loads(capfd.readouterr().out)
    assert len(r["no_trace"]) == len(r["at_least"]) == len(r["uncertain"]) == len(r["agreement"]) == 15
    assert "supported" in r["nearest"] and "model_qf2" not in r  # one model for every QF2: no gap warning
    assert not any("no model for QF2" in w for w in r["warnings"])
    assert cli.main(["estimate", str(f), "--model", str(tmp_path / "wide.keras"), "--quiet"]) == 0
    text = capfd.readouterr().out
    assert "windows  note" in text and "standard table:" in text
    assert cli.main(["estimate", str(f), str(f), "--model", str(tmp_path / "wide.keras"), "--quiet",
                     "--csv", str(tmp_path / "o.csv")]) == 0
    capfd.readouterr()
    import csv
    rows = list(csv.DictReader(open(tmp_path / "o.csv")))
    assert "note_1" in rows[0] and rows[0]["nearest_matches"]


# ---------------------------------------------------------------------------------------------
# Calibration measures

def test_ece_is_zero_for_a_calibrated_confidence_and_large_for_an_overconfident_one():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 200_000)
    right = rng.uniform(0, 1, conf.size) < conf
    assert calibration.ece(conf, right) < 0.01
    assert calibration.ece(np.full(1000, 0.95), np.arange(1000) < 300) == pytest.approx(0.65, abs=1e-9)
    r = calibration.reliability(conf, right)
    assert r["count"].sum() == conf.size and len(r) == calibration.BINS


def test_traced_means_q1_above_q2():
    q1 = np.array([[3, 2, 8] + [1] * 61])
    q2 = np.array([[3, 1, 9] + [1] * 61])
    assert wild.traced(q1, q2, 3).tolist() == [[False, True, False]]


def test_localize_runs_the_any_qf2_model_window_by_window(wide_model, coffee, tmp_path, capfd):
    from qpaper import cli
    from qpaper.localize import resolve_path
    from qpaper.train import save_model
    save_model(wide_model, tmp_path / "wide.keras")
    f = tmp_path / "x.jpg"
    f.write_bytes(jpeg.encode_opencv(coffee[:192, :192], 85))
    assert cli.main(["localize", str(f), "--model", str(tmp_path / "wide.keras"), "--stride", "32",
                     "--out", str(tmp_path / "maps"), "--quiet"]) == 0
    capfd.readouterr()
    s = json.loads((tmp_path / "maps" / "summary.json").read_text())
    assert s["path"] == "exact" and s["map_shape"][:2] == [5, 5]
    assert resolve_path(wide_model, "auto") == "exact"
    with pytest.raises(ValueError, match="no dense path"):
        resolve_path(wide_model, "dense")


def test_calibration_divides_the_logits_by_the_temperature_that_fits_held_out_patches(wide_model, tmp_path):
    from qpaper.model import inputs
    from qpaper.train import calibrate
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (96, 64, 64, 3)).astype("float32")
    z2 = np.tile(jpeg.zigzag(jpeg.standard_table(90)), (96, 1))
    y = rng.integers(1, 8, (96, 15)).astype("float32")
    seq = [(inputs(wide_model, x[i:i + 32], z2[i:i + 32]), y[i:i + 32]) for i in range(0, 96, 32)]
    cal = calibrate(wide_model, seq, tmp_path / "calibration.json", log=lambda *_: None)
    info = json.loads((tmp_path / "calibration.json").read_text())
    assert info["nll_after"] <= info["nll_before"] and info["validation_patches"] == 96
    t = info["temperature"]
    layer = [l for l in cal.layers if type(l).__name__ == "BlockSoftmax"][0]
    assert layer.temperature == t
    import keras
    logits = np.asarray(keras.Model(wide_model.input, wide_model.get_layer("logits").output).predict_on_batch(seq[0][0]))
    p = np.asarray(cal.predict_on_batch(seq[0][0]))
    a, b = 0, int(tables.wide_sizes()[0])
    expect = np.exp(logits[:, a:b] / t - (logits[:, a:b] / t).max(1, keepdims=True))
    assert np.allclose(p[:, a:b], expect / expect.sum(1, keepdims=True), atol=1e-5)


def test_dataset_build_takes_families_and_a_q2_mix_from_the_command_line(tmp_path, capfd):
    from qpaper import cli
    out = tmp_path / "d"
    assert cli.main(["dataset", "build", "--profile", "smoke", "--qf1", "perturbed,park", "--encoder", "pillow",
                     "--q2-mix", "q2-wide", "--mixed", "--patches-per-qf1", "16", "--out", str(out), "--quiet",
                     "--workers", "1"]) == 0
    spec = json.loads((out / "manifest.json").read_text())["spec"]
    assert spec["qf1"] == ["perturbed", "park"] and spec["q2_mix"] == "q2-wide" and spec["grid_shift"] == "mixed"
    assert any(f.name.startswith("q2-") for f in out.iterdir())
    capfd.readouterr()
    assert cli.main(["dataset", "build", "--profile", "smoke", "--qf1", "perturbed", "--out", str(tmp_path / "e"),
                     "--quiet"]) == 2
    err = capfd.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "pillow" in err and not (tmp_path / "e").exists()
