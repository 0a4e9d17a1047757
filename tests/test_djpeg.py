import json
import os

import numpy as np
import pytest

from qpaper import dataset, djpeg, jpeg, shards
from qpaper.djpeg import DatasetSpec, DJpegDataset


def spec(**kw):
    base = dict(source="skimage", split="all", qf2=90, qf1=(60, 95), patches_per_image=10, patches_per_qf1=60)
    base.update(kw)
    return DatasetSpec(**base)


def test_labels_are_read_back_from_the_qf1_file():
    # Photoshop tables have no QF: a label computed from a QF number could not produce them
    ds = DJpegDataset(spec(qf1=("ps8", 70), encoder="pillow", subsampling="4:4:4"))
    x, q1, meta = ds.shard(range(ds.n_units))
    ps = meta["qf1"] == 0
    assert np.all(q1[ps] == jpeg.zigzag(jpeg.photoshop_table(8)))
    assert np.all(q1[~ps] == jpeg.zigzag(jpeg.standard_table(70)))


def test_labels_follow_the_file_not_the_qf_number(monkeypatch):
    """If the encoder writes another table than the QF implies, the label follows the file."""
    real = jpeg.encode

    def encode(img, q, encoder="opencv", subsampling="4:2:0"):
        return real(img, 50 if q == 60 else q, encoder, subsampling)

    monkeypatch.setattr(jpeg, "encode", encode)
    ds = DJpegDataset(spec(qf1=(60,), patches_per_qf1=10))
    _, q1, _ = ds.unit(0)
    assert np.all(q1 == jpeg.zigzag(jpeg.standard_table(50)))


def test_sample_is_a_pure_function_of_spec_and_index():
    s = spec()
    a, b = DJpegDataset(s), DJpegDataset(s)
    idx = [37, 0, 59, 12, 100, 119]
    for i in idx:
        xa, qa, ma = a[i]
        xb, qb, mb = b[i]
        assert np.array_equal(xa, xb) and np.array_equal(qa, qb) and ma == mb
    # and equal to the same sample taken from its unit's batch
    u, k = a.unit_of(59)
    assert np.array_equal(a.unit(u)[0][k], b[59][0])
    # another seed gives other bytes
    c = DJpegDataset(spec(seed=1))
    assert not all(np.array_equal(a[i][0], c[i][0]) for i in idx)


def test_patches_are_double_compressed_with_the_spec_settings():
    ds = DJpegDataset(spec(grid_shift="aligned", qf1=(60,), patches_per_qf1=10))
    x, q1, meta = ds.unit(0)
    assert x.shape == (10, 64, 64, 3) and x.dtype == np.uint8
    assert q1.shape == (10, 64) and meta["qf2"][0] == 90 and meta["aligned"].all()
    assert np.all(meta["y"] % 64 == 0) and np.all(meta["x"] % 64 == 0)
    assert len({(y, x_) for y, x_ in zip(meta["y"], meta["x"])}) == 10  # distinct positions
    y = DJpegDataset(spec(channels="y", qf1=(60,), patches_per_qf1=10)).unit(0)[0]
    assert y.shape == (10, 64, 64, 1)


@pytest.mark.parametrize("policy", ["random", "aligned", "misaligned"])
def test_grid_shift_policies(policy):
    rng = np.random.default_rng(0)
    shifts = np.array([djpeg.draw_shift(rng, policy) for _ in range(6400)])
    assert shifts.min() >= 0 and shifts.max() <= 7
    aligned = np.all(shifts == 0, axis=1)
    if policy == "aligned":
        assert aligned.all()
    elif policy == "misaligned":
        assert not aligned.any() and len({tuple(s) for s in shifts}) == 63
    else:
        assert len({tuple(s) for s in shifts}) == 64
        assert 0.5 / 64 < aligned.mean() < 2 / 64


def test_dataset_shifts_stay_in_range():
    ds = DJpegDataset(spec(patches_per_image=5, patches_per_qf1=200))
    rs = np.array([u[3] for u in ds.units])
    cs = np.array([u[4] for u in ds.units])
    assert rs.min() >= 0 and rs.max() <= 7 and cs.min() >= 0 and cs.max() <= 7
    assert len(ds) == 400


@pytest.mark.parametrize("sub", ["4:4:4", "4:2:0", "4:2:2"])
def test_crop_path_is_bit_identical_to_the_whole_image_path(sub):
    ds = DJpegDataset(spec(subsampling=sub, qf1=(65, 95), patches_per_image=12, patches_per_qf1=48))
    for u in range(ds.n_units):
        w, c = ds.unit(u, "whole"), ds.unit(u, "crop")
        for a, b in zip(w, c):
            assert np.array_equal(a, b), (sub, u)


def test_build_is_independent_of_worker_count(tmp_path):
    s = spec(patches_per_image=10, patches_per_qf1=30)
    m1 = shards.build(s, tmp_path / "w1", workers=1, progress=False, log=lambda *_: None)
    m2 = shards.build(s, tmp_path / "w2", workers=2, progress=False, log=lambda *_: None)
    assert m1["content_sha256"] == m2["content_sha256"]
    for f in ("x", "q1", "meta"):
        for k in range(len(m1["shards"])):
            n = f"{f}-{k:05d}.npy"
            assert (tmp_path / "w1" / n).read_bytes() == (tmp_path / "w2" / n).read_bytes()
    x, q1, meta = dataset.load_arrays(tmp_path / "w1")
    ds = DJpegDataset(s)
    for i in (0, 17, 59):
        assert np.array_equal(x[i], ds[i][0]) and np.array_equal(q1[i], ds[i][1])


def test_a_half_written_shard_is_detected_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "SHARD_PATCHES", 20)
    s = spec(patches_per_image=10, patches_per_qf1=40)
    out = tmp_path / "d"
    m = shards.build(s, out, workers=1, progress=False, log=lambda *_: None)
    assert len(m["shards"]) == 4
    good = dataset.info(out)
    # corrupt a shard in place: info refuses it
    x1 = out / "x-00001.npy"
    data = x1.read_bytes()
    x1.write_bytes(data[: len(data) // 2])
    with pytest.raises(djpeg.DatasetError):
        dataset.info(out)
    # a killed build: the marker is missing for shard 2, a stray temporary file lies around
    (out / "done-00002.json").unlink()
    (out / ".x-00002.npy.abc.tmp").write_bytes(b"partial")
    os.remove(out / "manifest.json")
    with pytest.raises(djpeg.DatasetError, match="manifest"):
        dataset.open_dataset(out)
    built = []
    monkeypatch.setattr(shards, "_build_shard", lambda a, f=shards._build_shard: built.append(a[0]) or f(a))
    shards.build(s, out, workers=1, progress=False, log=lambda *_: None)
    assert sorted(built) == [1, 2]  # the truncated one and the unmarked one, nothing else
    assert dataset.info(out) == good


def test_a_folder_holding_another_spec_is_refused(tmp_path):
    shards.build(spec(patches_per_qf1=10), tmp_path, workers=1, progress=False, log=lambda *_: None)
    with pytest.raises(djpeg.DatasetError, match="another"):
        shards.build(spec(patches_per_qf1=20), tmp_path, workers=1, progress=False, log=lambda *_: None)


def test_info_reports_counts_and_digest_last(tmp_path):
    m = shards.build(spec(), tmp_path, workers=1, progress=False, log=lambda *_: None)
    text = dataset.info(tmp_path)
    assert text.splitlines()[-1] == f"content sha256 {m['content_sha256']}"
    assert "    60       60" in text
    assert json.loads((tmp_path / "manifest.json").read_text())["count"] == 120


def test_spec_validation():
    with pytest.raises(ValueError):
        spec(grid_shift="sometimes")
    with pytest.raises(ValueError):
        spec(qf1=("ps10",))  # OpenCV cannot write Photoshop tables
    with pytest.raises(ValueError):
        spec(qf1=("ps7",), encoder="pillow")
