import cv2
import numpy as np
import pytest

from qpaper import jpeg, sources


def test_skimage_source_is_pinned_and_excludes_jpeg_derived():
    recs = sources.skimage_source()
    files = {r.path.rsplit("/", 1)[1] for r in recs}
    assert not files & {"ihc.png", "coins.png", "page.png", "grass.png"}
    for r in recs:
        assert sources.sha256_file(r.path) == r.sha256
    assert {r.scene for r in recs if r.id.startswith("motorcycle")} == {"motorcycle"}


def test_trace_check_flags_a_qf90_jpeg_but_not_the_photo(astronaut):
    raw = sources.jpeg_trace_score(astronaut)
    assert raw < sources.TRACE_THRESHOLD
    jpg = jpeg.decode(jpeg.encode_opencv(astronaut, 90))
    assert sources.jpeg_trace_score(jpg) > 10 * sources.TRACE_THRESHOLD
    # a cropped (grid-shifted) JPEG is flagged too: the check looks at all 64 offsets
    assert sources.jpeg_trace_score(jpg[3:, 5:]) > 10 * sources.TRACE_THRESHOLD


def test_grass_carries_a_trace_which_is_why_it_is_excluded():
    grass = sources.read_image(sources.skimage_dir() / "grass.png")
    assert sources.jpeg_trace_score(grass) > sources.TRACE_THRESHOLD


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_wallpaper_preparation_erases_the_jpeg_history(name):
    img = sources.read_image(sources.skimage_dir() / f"{name}.png")
    big = cv2.resize(img, (img.shape[1] * 3, img.shape[0] * 3), interpolation=cv2.INTER_CUBIC)
    wallpaper = jpeg.decode(jpeg.encode_opencv(big, 85))  # a JPEG wallpaper stand-in
    assert sources.jpeg_trace_score(wallpaper) > sources.TRACE_THRESHOLD
    f = sources.downscale_factor(name, seed=0)
    assert 2.1 <= f <= 3.0
    prepared = sources.prepare_wallpaper(wallpaper, f)
    assert prepared.shape[0] % 16 == 0 and prepared.shape[1] % 16 == 0
    assert sources.jpeg_trace_score(prepared) < sources.TRACE_THRESHOLD


def test_downscale_factor_is_seeded_and_non_integer():
    fs = [sources.downscale_factor(f"scene{i}", 0) for i in range(50)]
    assert fs == [sources.downscale_factor(f"scene{i}", 0) for i in range(50)]
    assert fs != [sources.downscale_factor(f"scene{i}", 1) for i in range(50)]
    assert all(2.1 <= f <= 3.0 for f in fs)
    # one factor per scene, spread over the range: the 8x8 grid of a wallpaper's old JPEG lands on
    # a different non-integer grid in each prepared photo
    assert len(set(fs)) == len(fs) and max(fs) - min(fs) > 0.6 and sum(f == round(f) for f in fs) == 0


def test_prepared_wallpapers_carry_no_jpeg_trace():
    """The real ones, when `make data` has run (CI runs it before the tests)."""
    try:
        recs = sources.wallpapers_source()
    except sources.SourceError:
        pytest.skip("wallpapers not prepared: run `make data`")
    assert len(recs) == 37 and len({r.scene for r in recs}) == 37
    for r in recs:
        img = sources.load_image(r.path, r.sha256)
        assert sources.jpeg_trace_score(img) < sources.TRACE_THRESHOLD, r.id


def test_wallpaper_table_lists_37_scenes_with_licences():
    rows = sources.wallpaper_table()
    assert len(rows) == 37 and len({r["scene"] for r in rows}) == 37
    assert all(r["licence"] not in ("", "None") for r in rows)
    assert not any("umang" in r["path"] for r in rows)


def test_split_by_scene_is_deterministic_and_disjoint():
    recs = sources.skimage_source()
    tr = sources.split_records(recs, "train", seed=3)
    te = sources.split_records(recs, "test", seed=3)
    assert {r.scene for r in tr}.isdisjoint({r.scene for r in te})
    assert len(tr) + len(te) == len(recs)
    assert [r.id for r in tr] == [r.id for r in sources.split_records(recs, "train", seed=3)]
    # a scene's images stay together (the motorcycle pair)
    moto = {r.id for r in tr + te if r.scene == "motorcycle"}
    assert moto <= {r.id for r in tr} or moto <= {r.id for r in te}


def test_raise_like_split_counts():
    recs = [sources.ImageRecord(f"r{i}", f"r{i}", "", None, "", "raise") for i in range(8156)]
    assert len(sources.split_records(recs, "test", n_test=1156)) == 1156
    assert len(sources.split_records(recs, "train", n_test=1156)) == 7000


def test_folder_source(tmp_path, astronaut):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), astronaut[:, :, ::-1])
    (tmp_path / "notes.txt").write_text("x")
    recs = sources.get_source(f"folder:{tmp_path}")
    assert [r.scene for r in recs] == ["img0", "img1", "img2"]
    assert np.array_equal(sources.read_image(recs[0].path), astronaut)
    with pytest.raises(sources.SourceError):
        sources.get_source(f"folder:{tmp_path / 'missing'}")


def test_load_image_refuses_a_wrong_checksum(tmp_path, astronaut):
    p = tmp_path / "a.png"
    cv2.imwrite(str(p), astronaut[:, :, ::-1])
    with pytest.raises(sources.SourceError, match="sha256"):
        sources.load_image(str(p), "0" * 64)


def test_a_build_with_an_invalid_source_claims_no_folder(tmp_path):
    """Issue 25, item 3: the source is checked before the folder is made and claimed, so the valid
    rerun into the same folder is not refused."""
    import dataclasses

    from qpaper import shards
    from qpaper.profiles import dataset_spec
    from qpaper.sources import SourceError
    good = dataset_spec("smoke", "test", 90)
    bad = dataclasses.replace(good, source=f"folder:{tmp_path / 'nowhere'}")
    with pytest.raises((SourceError, ValueError)):
        shards.build(bad, tmp_path / "d", workers=1, progress=False, log=lambda *a: None)
    assert not (tmp_path / "d").exists()
    m = shards.build(good, tmp_path / "d", workers=1, progress=False, log=lambda *a: None)
    assert m["count"] > 0
