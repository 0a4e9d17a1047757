import io

import numpy as np
import pytest
from PIL import Image

from qpaper import jpeg


def test_zigzag_order_is_the_jpeg_scan():
    # T.81 Figure 5: row-major index of the first zig-zag positions, and a full permutation
    assert jpeg.ZIGZAG[:10].tolist() == [0, 1, 8, 16, 9, 2, 3, 10, 17, 24]
    assert sorted(jpeg.ZIGZAG.tolist()) == list(range(64))
    t = np.arange(64).reshape(8, 8)
    assert np.array_equal(jpeg.unzigzag(jpeg.zigzag(t)), t)
    # consecutive zig-zag positions are neighbours on the same anti-diagonal or the next one
    r, c = jpeg.ZIGZAG // 8, jpeg.ZIGZAG % 8
    assert np.all(np.abs(np.diff(r + c)) <= 1)


def test_q_max_is_the_qf50_table():
    assert jpeg.q_max().tolist() == [16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24]
    assert jpeg.q_max().sum() == 226
    assert np.array_equal(jpeg.standard_table(50), jpeg.STD_LUMINANCE)


def test_libjpeg_scaling_examples():
    assert jpeg.standard_table(100).max() == 1
    assert jpeg.standard_table(1).max() == 255  # clamped to baseline
    assert jpeg.zigzag(jpeg.standard_table(90))[:6].tolist() == [3, 2, 2, 3, 2, 2]
    assert jpeg.zigzag(jpeg.standard_table(75))[:3].tolist() == [8, 6, 6]
    with pytest.raises(ValueError):
        jpeg.standard_table(0)


def test_table_zigzag_equals_what_opencv_writes_for_every_qf(rng):
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for qf in range(1, 101):
        info = jpeg.read_qtables(jpeg.encode_opencv(img, qf))
        assert np.array_equal(info["tables"][0], jpeg.standard_table(qf)), qf
        assert np.array_equal(info["tables"][1], jpeg.standard_table(qf, chroma=True)), qf


def test_reader_agrees_with_pillow_natural_order_not_zigzag(rng):
    """Pillow >= 8.3 returns natural order; a reader that took it for zig-zag would scramble."""
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    table = np.arange(1, 65, dtype=np.uint16).reshape(8, 8)  # every position distinct
    data = jpeg.encode_pillow(img, table=table)
    ours = jpeg.luminance_table(data)
    assert np.array_equal(ours, table)
    pil = np.array(Image.open(io.BytesIO(data)).quantization[0]).reshape(8, 8)
    assert np.array_equal(pil, table)
    assert not np.array_equal(jpeg.unzigzag(pil.reshape(64)), table)


@pytest.mark.parametrize("q", [8, 9, 10, 12])
def test_photoshop_tables_match_exiftool_fingerprints(q):
    assert jpeg.dqt_md5(jpeg.photoshop_table(q)) == jpeg.PHOTOSHOP_MD5[q]


@pytest.mark.parametrize("q", [7, 11])
def test_unknown_photoshop_qualities_are_refused(q):
    with pytest.raises(ValueError, match="unknown"):
        jpeg.photoshop_table(q)


def test_pillow_writes_photoshop_table_444(rng):
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    data = jpeg.encode(img, "ps9", encoder="pillow", subsampling="4:4:4")
    info = jpeg.read_qtables(data)
    assert np.array_equal(jpeg.luminance_table(data), jpeg.photoshop_table(9))
    assert [c[1:3] for c in info["components"]] == [(1, 1)] * 3


def test_opencv_subsampling_choice(rng):
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert jpeg.read_qtables(jpeg.encode_opencv(img, 90))["components"][0][1:3] == (2, 2)
    assert jpeg.read_qtables(jpeg.encode_opencv(img, 90, "4:4:4"))["components"][0][1:3] == (1, 1)


def test_nearest_standard_qf():
    assert jpeg.nearest_standard_qf(jpeg.standard_table(73)) == (73, 0.0)
    qf, d = jpeg.nearest_standard_qf(jpeg.photoshop_table(10))
    assert d > 0 and 90 <= qf <= 100
    assert jpeg.nearest_photoshop_quality(jpeg.photoshop_table(8)) == (8, 0.0)


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n", b"hello", b"\xff\xd8\xff\xdb\x00\x43\x00"])
def test_reader_rejects_non_jpeg_and_truncated(data):
    with pytest.raises(jpeg.JpegError):
        jpeg.read_qtables(data)


def test_grayscale_jpeg_table(rng):
    img = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    data = jpeg.encode_opencv(img, 80)
    assert np.array_equal(jpeg.luminance_table(data), jpeg.standard_table(80))
    assert len(jpeg.read_qtables(data)["components"]) == 1
