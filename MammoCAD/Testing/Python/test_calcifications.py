"""Calcification candidates and clusters (mammo.md §2.3; M9, M15) on hand-built images."""

from __future__ import annotations

import numpy as np
import pytest

from MammoCADLib.calcifications import CalcificationParams, cluster_candidates, detect_calcifications
from quantgpu.backend import resolve

SPACING = 0.07


def test_m9_cluster_rule():
    """3 points within a 5 mm circle -> 1 cluster; 2 points -> 0; 3 points spread across 25 mm -> 0."""
    px = 1.0 / SPACING  # pixels per mm
    three = np.array([[0, 0], [2 * px, 0], [0, 3 * px]])
    assert len(cluster_candidates(three, [5, 6, 7], SPACING)) == 1
    assert cluster_candidates(three[:2], [5, 6], SPACING) == []
    spread = np.array([[0, 0], [12.5 * px, 0], [25 * px, 0]])  # neighbours 12.5 mm apart > 5 mm link
    assert cluster_candidates(spread, [5, 6, 7], SPACING) == []
    # single linkage: a chain of 4 mm steps links, although the ends are 12 mm apart
    chain = np.array([[0, 0], [4 * px, 0], [8 * px, 0], [12 * px, 0]])
    (cl,) = cluster_candidates(chain, [4, 9, 5, 8], SPACING)
    assert sorted(cl.members) == [0, 1, 2, 3]
    assert cl.score == pytest.approx((9 + 8 + 5) / 3)  # mean of the top-3 member z values
    assert cl.center_px == pytest.approx((6 * px, 0.0))


def _speck_image(rng, positions, amplitude=5.0, sigma_noise=1.0, shape=(400, 400)):
    """White noise plus Gaussian specks (σ 1.2 px, about a 0.2 mm calcification at 70 µm)."""
    image = rng.normal(0.0, sigma_noise, shape).astype(np.float32)
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    for r, c in positions:
        image += amplitude * np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * 1.2**2)).astype(np.float32)
    return image


SPECKS = [(200, 200), (210, 215), (195, 225), (220, 190), (185, 205)]  # within 2.5 mm


def test_specks_are_found_and_clustered(backend):
    rng = np.random.default_rng(1)
    image = _speck_image(rng, SPECKS)
    mask = np.ones(image.shape, bool)
    result = detect_calcifications(image, SPACING, mask, backend=backend)
    assert result.backend == backend.name
    found = [tuple(p) for p in result.candidates_px]
    for r, c in SPECKS:
        assert any(abs(r - fr) <= 1 and abs(c - fc) <= 1 for fr, fc in found), (r, c)
    true_clusters = [cl for cl in result.clusters if np.hypot(cl.center_px[0] - 202, cl.center_px[1] - 207) < 20]
    assert len(true_clusters) == 1
    cl = true_clusters[0]
    assert len(cl.members) >= 5
    member_z = np.sort(result.candidate_z[cl.members])[::-1]
    assert cl.score == pytest.approx(member_z[:3].mean(), rel=1e-6)
    r0, c0, r1, c1 = cl.bbox_px
    assert all(r0 <= r <= r1 and c0 <= c <= c1 for r, c in SPECKS)


def test_robust_z_is_scale_free():
    """z = DoG / (1.4826 MAD): an affine change of intensity (another display window) changes nothing."""
    rng = np.random.default_rng(2)
    image = _speck_image(rng, SPECKS)
    mask = np.ones(image.shape, bool)
    a = detect_calcifications(image, SPACING, mask, backend="cpu")
    b = detect_calcifications(7.0 * image + 3.0, SPACING, mask, backend="cpu")
    assert np.array_equal(a.candidates_px, b.candidates_px)
    np.testing.assert_allclose(a.candidate_z, b.candidate_z, rtol=1e-4)


def test_noise_floor_of_white_noise():
    """Pure white noise: the robust z behaves like a standard normal, so candidates above z = 4.5
    (local maxima of a smoothed field) are rare: far below one per 10^4 pixels."""
    rng = np.random.default_rng(3)
    image = rng.normal(0.0, 1.0, (600, 600)).astype(np.float32)
    result = detect_calcifications(image, SPACING, np.ones(image.shape, bool), backend="cpu")
    assert (result.candidate_z >= 4.5).sum() <= 5
    assert result.noise_sd[0] > 0


def test_candidates_stay_off_skin_and_pectoral():
    rng = np.random.default_rng(4)
    image = _speck_image(rng, [(20, 200), (200, 20), (300, 300)], amplitude=6.0)
    mask = np.ones(image.shape, bool)
    mask[:16, :] = False  # skin line 4 rows above the first speck: within the 1 mm margin (14 px)
    pectoral = np.zeros(image.shape, bool)
    pectoral[:, :10] = True  # muscle 10 px left of the second speck: within its 1.5 mm margin
    result = detect_calcifications(image, SPACING, mask, pectoral, backend="cpu")
    found = [tuple(p) for p in result.candidates_px]
    assert any(abs(r - 300) <= 1 and abs(c - 300) <= 1 for r, c in found)
    assert not any(abs(r - 20) <= 2 and abs(c - 200) <= 2 for r, c in found)
    assert not any(abs(r - 200) <= 2 and abs(c - 20) <= 2 for r, c in found)


def test_needs_pixel_spacing():
    with pytest.raises(ValueError, match="pixel spacing"):
        detect_calcifications(np.zeros((64, 64), np.float32), None, np.ones((64, 64), bool))


@pytest.mark.gpu
@pytest.mark.skipif(not resolve("auto").is_gpu, reason="no CUDA device (CuPy) on this machine")
def test_m15_gpu_and_cpu_give_identical_candidates():
    rng = np.random.default_rng(5)
    image = _speck_image(rng, SPECKS)
    mask = np.ones(image.shape, bool)
    params = CalcificationParams(candidate_z=4.0)
    cpu = detect_calcifications(image, SPACING, mask, backend="cpu", params=params)
    gpu = detect_calcifications(image, SPACING, mask, backend="gpu", params=params)
    strong = cpu.candidate_z >= 4.1  # away from the threshold (exact ties aside)
    gpu_set = {tuple(p) for p in gpu.candidates_px}
    assert all(tuple(p) in gpu_set for p in cpu.candidates_px[strong])
    assert len(cpu.clusters) == len(gpu.clusters)
