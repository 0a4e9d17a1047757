"""Localization (Section 5.3): splices, window maps, clustering and scores."""
import numpy as np
import pytest

from qpaper import jpeg, localize, regions, splices


def test_splices_are_deterministic_non_aligned_and_labelled(astronaut, coffee):
    bg = np.ascontiguousarray(astronaut[:384, :384])
    donors = [np.ascontiguousarray(coffee[:384, :384]), np.ascontiguousarray(astronaut[100:484, 100:484])]
    a = splices.make_splice(bg, donors, 75, [95, 85], qf2=90, seed=3)
    b = splices.make_splice(bg, donors, 75, [95, 85], qf2=90, seed=3)
    assert a.jpeg == b.jpeg and np.array_equal(a.mask, b.mask)
    assert a.shift != (0, 0) and a.mask.shape == jpeg.decode(a.jpeg).shape[:2]
    assert set(np.unique(a.mask)) == {0, 1, 2} and 0.05 < (a.mask > 0).mean() < 0.3
    assert np.array_equal(jpeg.luminance_table(a.jpeg), jpeg.standard_table(90))
    c = splices.make_splice(bg, donors, 75, [95, 85], qf2=90, seed=4)
    assert not np.array_equal(a.mask, c.mask)
    single = splices.make_splice(bg, donors[:1], 75, [None], qf2=90, seed=3)
    assert single.qf1 == [75, None]


def test_clustering_finds_planted_regions_and_their_donors():
    rng = np.random.default_rng(0)
    qm = np.tile(jpeg.zigzag(jpeg.standard_table(75))[:15], (40, 50, 1)).astype(np.int16)
    truth = np.zeros((40, 50), int)
    truth[5:15, 5:20], truth[25:35, 30:45] = 1, 2
    qm[truth == 1] = jpeg.zigzag(jpeg.standard_table(95))[:15]
    qm[truth == 2] = jpeg.zigzag(jpeg.standard_table(85))[:15]
    noise = rng.random(qm.shape[:2]) < 0.05  # a few wrong positions
    qm[noise, 0] += 3
    r = regions.cluster(qm)
    s = regions.scores(r["mask"], truth > 0, r["score"])
    assert s["F1"] > 0.95 and s["MCC"] > 0.9 and s["AUC"] > 0.95
    assert r["k"] >= 3  # two donors told apart
    lab = r["labels"]
    major = [np.bincount(lab[truth == k]).argmax() for k in (1, 2)]
    assert major[0] != major[1] and 0 not in major
    assert all((lab[truth == k] == m).mean() > 0.95 for k, m in zip((1, 2), major))  # corners may blur


def test_a_uniform_map_has_no_tampering():
    qm = np.tile(jpeg.zigzag(jpeg.standard_table(80))[:15], (20, 20, 1))
    r = regions.cluster(qm)
    assert r["k"] == 1 and not r["mask"].any()


def test_auc_and_scores_by_hand():
    assert regions.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert regions.auc([1, 1, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.5)
    s = regions.scores(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool), np.array([2, 1, 1, 0]))
    assert s["F1"] == pytest.approx(0.5) and s["MCC"] == pytest.approx(0.0)


def test_window_geometry():
    ys, xs = regions.window_grid((200, 130), 8)
    assert ys.tolist() == list(range(0, 137, 8)) and xs.tolist() == list(range(0, 67, 8))
    mask = np.zeros((200, 130), int)
    mask[100:, :] = 1
    t = regions.truth_at_windows(mask, 8)
    assert t.shape == (len(ys), len(xs)) and (t[ys + 32 >= 100] == 1).all() and (t[ys + 32 < 100] == 0).all()
    px = regions.to_pixels(t, (200, 130), 8)
    assert px.shape == (200, 130) and px[150, 60] == 1 and px[10, 10] == 0


keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def tiny_model():
    from qpaper import model
    keras.utils.set_random_seed(0)
    return model.build_model("class", depth=7, growth=6)


def test_dense_path_is_exact_without_spatial_convolutions():
    """With 1x1 convolutions a window's output depends on its own pixels only, so the dense path
    must reproduce the per-window forward pass exactly: this checks the stride-1 pooling offsets
    and the final dilated mean; 3x3 convolutions add only the border effect measured below."""
    from keras import layers

    from qpaper.model import BlockSoftmax
    keras.utils.set_random_seed(3)
    inp = keras.Input((64, 64, 3))
    x = layers.Rescaling(1 / 255.0)(inp)
    x = layers.Conv2D(8, 1)(x)
    x = layers.Activation("relu")(layers.BatchNormalization()(x))
    for _ in range(2):
        x = layers.AveragePooling2D(2)(layers.Conv2D(8, 1)(x))
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(8, 1)(x))
    m = keras.Model(inp, BlockSoftmax(jpeg.q_max(15))(layers.Dense(int(jpeg.q_max(15).sum()))(x)))
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (90, 100, 3)).astype("float32")
    out = np.asarray(localize._dense_tile(m, keras.ops.convert_to_tensor(img[None]))).reshape(27, 37, -1)
    for y, x in ((0, 0), (5, 17), (26, 36)):
        ref = np.asarray(m.predict_on_batch(img[None, y:y + 64, x:x + 64]))[0]
        np.testing.assert_allclose(out[y, x], ref, rtol=1e-4, atol=1e-6)


def test_dense_maps_do_not_depend_on_tiling_and_mostly_agree_with_exact(tiny_model, astronaut):
    img = astronaut[:150, :160]
    a = localize.dense_qmap(tiny_model, img, tile=30, progress=False)
    b = localize.dense_qmap(tiny_model, img, tile=500, progress=False)
    assert np.array_equal(a, b) and a.shape == (87, 97, 15)
    exact, _ = localize.qmap(tiny_model, img, stride=1, progress=False)
    assert (exact == a).mean() > 0.8


def test_localize_cli_writes_maps_of_a_generated_splice(tmp_path, tiny_model, astronaut, coffee):
    import json
    from qpaper import cli
    from qpaper.train import save_model
    s = splices.make_splice(np.ascontiguousarray(astronaut[:256, :256]), [np.ascontiguousarray(coffee[:256, :256])],
                             75, [95], 90, seed=2)
    img = tmp_path / "splice.jpg"
    img.write_bytes(s.jpeg)
    save_model(tiny_model, tmp_path / "m.keras")
    out = tmp_path / "out"
    assert cli.main(["localize", str(img), "--stride", "16", "--out", str(out), "--model", str(tmp_path / "m.keras"),
                     "--quiet"]) == 0
    qm = np.load(out / "qm.npy")
    h, w = s.mask.shape
    assert qm.shape == ((h - 64) // 16 + 1, (w - 64) // 16 + 1, 15)
    for k in (1, 6, 14):
        assert (out / f"map-k{k:02d}.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "summary.json").read_text())["stride"] == 16
    # the same folder again, other coefficients (issue 25, item 3): the earlier maps this run does
    # not draw are removed and said, the summary lists exactly the files of this run
    assert cli.main(["localize", str(img), "--stride", "32", "--out", str(out), "--model", str(tmp_path / "m.keras"),
                     "--coefficients", "2", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(summary["files"]) and summary["stride"] == 32
    assert summary["removed_stale"] == ["map-k01.png", "map-k06.png", "map-k14.png"]
    qm = np.load(out / "qm.npy")  # the first run's map, read again below
    assert cli.main(["localize", str(img), "--stride", "16", "--out", str(out), "--model", str(tmp_path / "m.keras"),
                     "--quiet"]) == 0
    qm = np.load(out / "qm.npy")
    assert cli.main(["localize", str(img), "--stride", "16", "--dense", "--out", str(tmp_path / "d"),
                     "--model", str(tmp_path / "m.keras"), "--quiet"]) == 0
    dense = np.load(tmp_path / "d" / "qm.npy")
    assert dense.shape == qm.shape and (dense == qm).mean() > 0.8
    assert cli.main(["localize", str(tmp_path / "m.keras"), "--out", str(tmp_path / "x")]) == 2
    assert cli.main(["localize", str(img), "--stride", "0", "--out", str(tmp_path / "y"),
                     "--model", str(tmp_path / "m.keras")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    # an EXIF orientation tag changes nothing: maps are drawn as the pixels are stored
    from PIL import Image
    ex = Image.Exif()
    ex[0x0112] = 6
    app1 = ex.tobytes()
    app1 = app1 if app1.startswith(b"Exif") else b"Exif\x00\x00" + app1
    tagged = tmp_path / "tagged.jpg"
    tagged.write_bytes(s.jpeg[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + s.jpeg[2:])
    assert cli.main(["localize", str(tagged), "--stride", "16", "--out", str(tmp_path / "t"),
                     "--model", str(tmp_path / "m.keras"), "--quiet"]) == 0
    assert (np.load(tmp_path / "t" / "qm.npy") == qm).all()
    assert json.loads((tmp_path / "t" / "summary.json").read_text())["orientation"] == 6
    assert json.loads((out / "summary.json").read_text())["cannot_tell"] is None
    # a flat picture (issue 25, item 13): the map is made, and the summary and console say it means nothing
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(tmp_path / "flat.jpg", quality=90)
    assert cli.main(["localize", str(tmp_path / "flat.jpg"), "--stride", "16", "--out", str(tmp_path / "f"),
                     "--model", str(tmp_path / "m.keras"), "--quiet"]) == 0
    flat = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert flat["cannot_tell"].startswith("cannot tell: 0 of the 14") and flat["readable_coefficients"] == 0


def test_donor_rectangles_come_from_textured_regions(astronaut):
    bg = np.ascontiguousarray(astronaut[:384, :384])
    donor = np.ascontiguousarray(astronaut[100:484, 100:484]).copy()
    donor[:, :260] = 128  # mostly flat: a random rectangle would often be featureless
    assert splices.texture(donor[:, :200]) < 0.5 and splices.texture(astronaut[300:400, 300:400]) > 6
    for seed in range(4):
        s = splices.make_splice(bg, [donor], 75, [95], qf2=90, seed=seed)
        region = jpeg.decode(s.jpeg)[s.mask == 1]
        side = int(np.sqrt(len(region)))
        assert splices.texture(region[:side * side].reshape(side, side, 3)) > 3
    flat = [splices.make_splice(bg, [donor], 75, [95], qf2=90, seed=seed, texture_min=0.0) for seed in range(4)]
    assert any(jpeg.decode(s.jpeg)[s.mask == 1].std() < 2 for s in flat)


@pytest.fixture(scope="module")
def tiny_dct_model():
    from qpaper import model
    keras.utils.set_random_seed(0)
    return model.build_model("class", arch="dct", width=16, hidden=32)


def test_dct_dense_maps_equal_the_per_window_ones_on_the_grid(tiny_dct_model, coffee):
    img = coffee[:200, :232]
    exact, ce = localize.qmap(tiny_dct_model, img, 8, progress=False, path="exact")
    dense, cd = localize.qmap(tiny_dct_model, img, 8, progress=False, path="dense")
    assert exact.shape == dense.shape == (18, 22, 15)
    assert (exact == dense).all(-1).mean() > 0.98 and np.nanmax(np.abs(ce - cd)) < 0.05
    assert localize.is_dct(tiny_dct_model) and localize.qmap(tiny_dct_model, img, 8, progress=False)[0].shape == exact.shape
    one, _ = localize.dct_qmap(tiny_dct_model, img, 1, tile=48, progress=False)
    big, _ = localize.dct_qmap(tiny_dct_model, img, 1, tile=400, progress=False)
    assert np.array_equal(one, big) and np.array_equal(one[::8, ::8], dense)


def test_splice_set_has_the_flat_donor_case():
    s = splices.splice_set("smoke", 0, per_case=1)
    flat = [x for x in s if x["flat"]]
    assert len(s) == len(splices.SPLICE_CASES) + 1 and len(flat) == 1
    sp = flat[0]["splice"]
    for k in (1, 2):  # uniform donors, up to the ripples of the compressions at their edges
        assert np.median(np.abs(jpeg.decode(sp.jpeg)[sp.mask == k].astype(float) - splices.FLAT_COLOURS[k - 1])) <= 2
    assert all(splices.texture(jpeg.decode(x["splice"].jpeg)[x["splice"].mask == 1][:64 * 64].reshape(64, 64, 3)) > 2
               for x in s if not x["flat"])


def test_region_summary_counts_windows_answering_the_background():
    stride, size = 8, (160, 160)
    mask = np.zeros(size, np.int8)
    mask[64:128, 64:128] = 1
    bg = jpeg.zigzag(jpeg.standard_table(75))[:15]
    donor = jpeg.zigzag(jpeg.standard_table(95))[:15]
    ys, xs = regions.window_grid(size, stride)
    qm = np.broadcast_to(bg, (len(ys), len(xs), 15)).copy()
    inside = regions.truth_at_windows(mask, stride) == 1
    idx = np.argwhere(inside)
    qm[tuple(idx[: len(idx) // 4].T)] = donor  # a quarter of the donor's windows see the donor's table
    s = regions.region_summary(qm, mask, stride, 75)
    assert s["windows"] == inside.sum()
    assert s["as_background"] == pytest.approx(1 - (len(idx) // 4) / len(idx))
    assert s["nearest_qf_of_rest"] == 95
    qm[inside] = bg
    assert regions.region_summary(qm, mask, stride, 75)["nearest_qf_of_rest"] is None
    with pytest.raises(ValueError):
        regions.region_summary(qm, mask, stride, 75, label=2)


def test_step_contrast_reads_how_donors_stand_out():
    mask = np.zeros((128, 128), np.int8)
    mask[40:100, 40:100] = 1
    qm = np.full((9, 9, 15), 4, np.int16)
    truth = regions.truth_at_windows(mask, 8)
    qm[..., 0][truth > 0] = 9  # coefficient 1: every donor window answers another step
    c = regions.step_contrast(qm, mask, 8, (1, 2))
    assert c[1] == {"usual": 4.0, "inside": 1.0, "outside": 0.0}
    assert c[2] == {"usual": 4.0, "inside": 0.0, "outside": 0.0}


def test_score_splice_maps_clusters_and_scores_one_splice(tiny_model, astronaut, coffee):
    s = splices.make_splice(np.ascontiguousarray(astronaut[:256, :256]), [np.ascontiguousarray(coffee[:256, :256])],
                            75, [95], 90, seed=2)
    r = localize.score_splice(s, tiny_model, 16)
    qm, _ = localize.qmap(tiny_model, jpeg.decode(s.jpeg), 16, progress=False, path="auto")
    assert np.array_equal(r["qm"], qm) and np.array_equal(r["rgb"], jpeg.decode(s.jpeg))
    truth = regions.truth_at_windows(s.mask, 16) > 0
    assert r["scores"] == regions.scores(r["clusters"]["mask"], truth, r["clusters"]["score"])


def test_clustering_memory_grows_with_the_map_not_with_k():
    """Issue 25, item 11: cluster() holds a few float64 copies of a map, not one per k-means
    centre (the broadcast that made a stride-1 map of 2048x2048 peak at 4.3 GB); the bound is
    the one localize.plan promises, plus the silhouette's fixed sample."""
    import tracemalloc
    rng = np.random.default_rng(1)
    qm = np.tile(jpeg.zigzag(jpeg.standard_table(80))[:15], (600, 600, 1)).astype(np.int16)
    qm[100:300, 200:500] = jpeg.zigzag(jpeg.standard_table(95))[:15]
    qm[rng.random(qm.shape[:2]) < 0.02] = 3
    tracemalloc.start()
    res = regions.cluster(qm, max_k=4)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert res["k"] == 2 and abs(res["mask"].mean() - 1 / 6) < 0.01
    assert peak <= qm.shape[0] * qm.shape[1] * localize.BYTES_PER_WINDOW + 100e6, peak


def test_map_png_draws_in_bands_the_same_picture(astronaut):
    """map_png gives the bytes of colour_png(to_pixels(...)) while holding three bytes a pixel,
    not the float64 RGBA image of the whole picture (over 40 bytes a pixel with its temporaries)."""
    import tracemalloc
    rng = np.random.default_rng(0)
    for size, stride in [((200, 130), 8), ((301, 257), 3), ((64, 64), 1), ((300, 301), 64)]:
        ys, xs = regions.window_grid(size, stride)
        m = rng.integers(1, 40, (len(ys), len(xs))).astype(np.int16)
        assert localize.map_png(m, size, stride, band=37) == localize.colour_png(regions.to_pixels(m, size, stride))
        lab = rng.integers(0, 3, (len(ys), len(xs)))
        assert (localize.map_png(lab, size, stride, "tab10", 0, 9)
                == localize.colour_png(regions.to_pixels(lab, size, stride), "tab10", 0, 9))
    size = (2000, 1500)
    ys, xs = regions.window_grid(size, 8)
    m = rng.integers(1, 40, (len(ys), len(xs))).astype(np.int16)
    tracemalloc.start()
    localize.map_png(m, size, 8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * size[0] * size[1], peak


def test_a_map_that_cannot_fit_is_refused_up_front_with_a_stride_that_fits(tmp_path, astronaut):
    """Issue 25, item 11: the memory bound is said before the map, and a map above it (here a
    --max-memory of 1.6 GB) is refused in one line naming a stride that fits, before the backend
    starts and before the output folder exists; the bound's stride suggestion does fit."""
    import subprocess
    import sys
    from PIL import Image
    big = np.tile(astronaut, (3, 3, 1))[:1400, :1400]
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=90)
    p = localize.plan((1400, 1400), 1)
    assert p["windows"] == 1337 ** 2 and p["bytes"] > 1.6e9
    with pytest.raises(ValueError, match=r"--stride (\d+) fits") as e:
        localize.check_plan((1400, 1400), 1, limit=int(1.6e9))
    fits = int(e.value.args[0].rsplit("--stride ", 1)[1].split()[0])
    assert localize.plan((1400, 1400), fits)["bytes"] <= 1.6e9 < localize.plan((1400, 1400), fits - 1)["bytes"]
    assert localize.check_plan((1400, 1400), fits, limit=int(1.6e9))["windows"] < p["windows"]
    with pytest.raises(ValueError, match="crop the image"):
        localize.check_plan((1400, 1400), 1, limit=int(1e9))
    code = ("import sys\nfrom qpaper import cli\n"
            f"a = cli.main(['localize', {str(tmp_path / 'big.jpg')!r}, '--out', {str(tmp_path / 'o')!r}, "
            "'--stride', '1', '--max-memory', '1.6'])\n"
            "print(a, 'tensorflow' in sys.modules or 'keras' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.split() == ["2", "False"], r.stderr
    assert r.stderr.count("\n") == 1 and f"--stride {fits} fits" in r.stderr and "--max-memory" in r.stderr
    assert not (tmp_path / "o").exists()


def test_eta_says_once_how_long_at_the_measured_rate():
    """The up-front time estimate: the first unit (the backend's warm-up) is not timed; after
    ``after`` seconds the rate of the units since then gives the total, said once."""
    said, now = [], [0.0]
    eta = localize._Eta(1000, "window", said.append, after=2.0)
    eta.clock = lambda: now[0]
    eta.update(100)  # the first batch: warm-up, not timed
    now[0] = 1.0
    eta.update(200)
    assert said == []
    now[0] = 2.0
    eta.update(300)  # 200 windows in 2 s since the warm-up: 700 left take 7 s, 9 s since the warm-up
    now[0] = 3.0
    eta.update(400)
    assert said == ["about 9 s for 1,000 windows (the rate of the first 200)"]


def test_cluster_colours_follow_the_truth_they_overlap():
    """Figure 12 (issue 24): clusters renumbered to the true region they overlap most, one to
    one; a cluster over no region of its own gets a number above every true label."""
    truth = np.zeros((10, 10), int)
    truth[:3, :3], truth[6:, 6:] = 1, 2
    labels = np.zeros((10, 10), int)
    labels[:3, :3], labels[6:, 6:], labels[0, 9] = 2, 1, 3  # swapped numbers, and a stray cluster
    m = regions.match_labels(labels, truth)
    assert (m[:3, :3] == 1).all() and (m[6:, 6:] == 2).all() and m[0, 9] == 3 and m[5, 5] == 0
    missed = np.zeros((10, 10), int)  # one cluster only: the donors are missed and keep the background's colour
    assert (regions.match_labels(missed, truth) == 0).all()


def test_donor_cover_counts_found_windows_per_donor():
    truth = np.zeros((4, 5), int)
    truth[0, :2], truth[3, 3:] = 1, 2
    found = np.zeros((4, 5), bool)
    found[0, 0], found[3, 3:], found[1, 1] = True, True, True
    assert regions.donor_cover(found, truth) == {0: 1 / 16, 1: 0.5, 2: 1.0}
