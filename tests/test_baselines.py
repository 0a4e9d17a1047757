"""Model-based Q1 baselines (issue 5): Galvan et al. 2014 and Bianchi & Piva 2012."""
import numpy as np
import pytest

from qpaper import jpeg
from qpaper.baselines import bianchi, common, galvan, predict_q1_baseline
from qpaper.explain import compress_gray
from qpaper.jpeg import block_dct

Q2_90 = jpeg.standard_table(90)


def zz(qf, n=15):
    return jpeg.zigzag(jpeg.standard_table(qf))[:n].astype(np.int64)


@pytest.fixture(scope="module")
def gray(astronaut):
    return jpeg.to_luma(astronaut)


@pytest.fixture(scope="module")
def crop_70_90(gray):
    return compress_gray(gray[:256, :256], 70, 90)


def test_batched_dct_matches_block_dct(gray):
    g = gray[:64, :72]
    assert np.allclose(common.block_dct_batch(g[None])[0], block_dct(g))
    assert np.allclose(common.block_dct_batch(g[None], 3, 5, 6, 7)[0], block_dct(g[3:51, 5:61]))


def test_luma_batch_matches_to_luma(astronaut):
    p = np.stack([astronaut[:64, :64], astronaut[64:128, 100:164]])
    assert np.array_equal(common.luma_batch(p)[1], jpeg.to_luma(p[1]))


@pytest.mark.parametrize("mod", [galvan, bianchi])
def test_aligned_qf1_below_qf2_low_frequencies_exact(mod, crop_70_90):
    est = mod.estimate(crop_70_90, Q2_90)
    assert est.dtype == np.int64 and est.shape == (15,)
    assert np.array_equal(est[:6], zz(70)[:6])
    assert (est == zz(70)).mean() >= 0.8


@pytest.mark.parametrize("mod", [galvan, bianchi])
def test_rgb_input_same_as_its_luma(mod, astronaut):
    rgb = jpeg.decode(jpeg.encode_opencv(jpeg.decode(jpeg.encode_opencv(astronaut[:128, :128], 60)), 90))
    assert np.array_equal(mod.estimate(rgb, Q2_90), mod.estimate(jpeg.to_luma(rgb), Q2_90))


@pytest.mark.parametrize("mod", [galvan, bianchi])
def test_qf1_above_qf2_mostly_wrong(mod, gray):
    d = compress_gray(gray[:256, :256], 95, 80)
    est = mod.estimate(d, jpeg.standard_table(80))
    assert (est == zz(95)).mean() < 0.3


@pytest.mark.parametrize("mod", [galvan, bianchi])
def test_ambiguity_q1_equal_or_divides_q2_returns_q2(mod, gray):
    # q1 == q2: the documented answer is q2, which is right.
    d = compress_gray(gray[:256, :256], 90, 90)
    assert np.array_equal(mod.estimate(d, Q2_90)[:6], zz(90)[:6])
    # QF1 = 100 (every q1 = 1 divides q2): no trace of the first compression, answer q2 (wrong).
    d = compress_gray(gray[:256, :256], 100, 90)
    est = mod.estimate(d, Q2_90)
    assert (est[:6] == np.minimum(zz(90), jpeg.q_max(15))[:6]).all()
    assert not (est == 1).any()


@pytest.mark.parametrize("mod", [galvan, bianchi])
def test_single_compression_no_trace(mod, gray):
    d = compress_gray(gray[:256, :256], None, 90)
    assert (mod.estimate(d, Q2_90) == zz(90)).mean() >= 0.8


@pytest.mark.parametrize("rc", [(3, 5), (1, 2), (7, 0), (0, 4), (4, 4)])
def test_bianchi_finds_grid_shift(gray, rc):
    d = compress_gray(gray[100:400, 100:400], 60, 90, rc)[:256, :256]
    assert bianchi.estimate_shift(d, Q2_90) == rc


def test_bianchi_aligned_shift_is_zero_and_nonaligned_estimates(gray):
    d = compress_gray(gray[100:400, 100:400], 60, 90)[:256, :256]
    assert bianchi.estimate_shift(d, Q2_90) == (0, 0)
    d = compress_gray(gray[100:400, 100:400], 60, 90, (1, 2))[:256, :256]
    est = bianchi.estimate(d, Q2_90, aligned=None)
    assert (est[:6] == zz(60)[:6]).all()
    # the aligned model on a non-aligned image sees no double compression: q2 comes back
    assert (bianchi.estimate(d, Q2_90, aligned=True)[:6] != zz(60)[:6]).sum() >= 4


@pytest.fixture(scope="module")
def patches_70_90(astronaut):
    d = jpeg.decode(jpeg.encode_opencv(jpeg.decode(jpeg.encode_opencv(astronaut, 70)), 90))
    return np.stack([d[y:y + 64, x:x + 64] for y in range(0, 512, 128) for x in range(0, 512, 64)])


@pytest.mark.parametrize("mod", [galvan, bianchi])
def test_batch_equals_per_patch(mod, patches_70_90):
    batch = mod.estimate_batch(patches_70_90, Q2_90, chunk=5)
    single = np.stack([mod.estimate(p, Q2_90) for p in patches_70_90])
    assert np.array_equal(batch, single)
    q = jpeg.q_max(15)
    assert (batch >= 1).all() and (batch <= q).all()
    assert (batch[:, :3] == zz(70)[:3]).mean() > 0.7  # 64x64 patches: mostly right at low frequencies


def test_predict_q1_baseline(patches_70_90):
    a = predict_q1_baseline("galvan", [patches_70_90[:10], patches_70_90[10:]], Q2_90, nc=10)
    assert np.array_equal(a, galvan.estimate_batch(patches_70_90, Q2_90, 10))
    b = predict_q1_baseline("bianchi", patches_70_90[:4], Q2_90, nc=15)
    assert np.array_equal(b, bianchi.estimate_batch(patches_70_90[:4], Q2_90))
    with pytest.raises(ValueError):
        predict_q1_baseline("nope", patches_70_90, Q2_90)
