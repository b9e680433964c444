"""Mass candidates (mammo.md §2.4) on hand-built images: position, scale, spiculation, scale-freeness."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from MammoCADLib.masses import detect_masses

SPACING = 0.1  # mm; the working grid is then 3 × 0.1 = 0.3 mm


def _nodule_image(rng, centre, radius_mm, amplitude=4.0, spicules=0, shape=(600, 600), noise=0.3):
    """Designer nodule A·(1 − r²/R²)^1.5 (mammo.md §5.2) on a flat, fully inside-the-breast background."""
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    r2 = ((rr - centre[0]) ** 2 + (cc - centre[1]) ** 2) * SPACING**2 / radius_mm**2
    image = 10.0 + amplitude * np.clip(1.0 - r2, 0.0, None) ** 1.5
    for k in range(spicules):  # straight bright lines from the rim outwards, 0.4 mm wide, 1.5 R long
        angle = 2 * np.pi * k / spicules
        d_r, d_c = np.sin(angle), np.cos(angle)
        along = (rr - centre[0]) * d_r + (cc - centre[1]) * d_c
        across = -(rr - centre[0]) * d_c + (cc - centre[1]) * d_r
        on = (along * SPACING > 0.5 * radius_mm) & (along * SPACING < 2.5 * radius_mm)
        image += 0.4 * amplitude * on * np.exp(-((across * SPACING) ** 2) / (2 * 0.15**2))
    image += rng.normal(0.0, noise, shape)
    return image.astype(np.float32)


def test_nodule_is_the_top_candidate_at_its_scale(backend):
    rng = np.random.default_rng(0)
    centre = (310.0, 280.0)
    image = _nodule_image(rng, centre, radius_mm=6.0)
    result = detect_masses(image, SPACING, np.ones(image.shape, bool), backend=backend)
    assert result.backend == backend.name and result.factor == 3
    top = result.candidates[0]
    assert np.hypot(top.center_px[0] - centre[0], top.center_px[1] - centre[1]) * SPACING <= 1.0
    # A dome of radius R peaks in a scale-normalised LoG at σ ≈ R / 2.5; with σ = R_s/√2 that is R_s ≈ 0.57 R.
    assert 2.5 <= top.radius_mm <= 5.0
    assert top.convergence > 0.8  # gradients point at the centre of a round dome
    assert top.score > 2 * max([c.score for c in result.candidates[1:]], default=0.0)


def test_spicules_raise_spiculation_and_score():
    centre = (300.0, 300.0)
    plain = detect_masses(
        _nodule_image(np.random.default_rng(1), centre, 5.0), SPACING, np.ones((600, 600), bool), backend="cpu"
    )
    spiky = detect_masses(
        _nodule_image(np.random.default_rng(1), centre, 5.0, spicules=12),
        SPACING,
        np.ones((600, 600), bool),
        backend="cpu",
    )

    def at_centre(result):
        return min(result.candidates, key=lambda c: np.hypot(c.center_px[0] - centre[0], c.center_px[1] - centre[1]))

    p, s = at_centre(plain), at_centre(spiky)
    assert s.spiculation_f1 > p.spiculation_f1 + 0.1
    assert s.spiculation_f2 >= 0.75  # 12 spicules cover every one of 8 sectors
    assert s.score / s.blob_z > p.score / p.blob_z


def test_scale_free_scores():
    rng = np.random.default_rng(2)
    image = _nodule_image(rng, (300.0, 300.0), 5.0)
    mask = np.ones(image.shape, bool)
    a = detect_masses(image, SPACING, mask, backend="cpu")
    b = detect_masses(5.0 * image + 100.0, SPACING, mask, backend="cpu")
    assert [c.center_px for c in a.candidates] == [c.center_px for c in b.candidates]
    np.testing.assert_allclose([c.score for c in a.candidates], [c.score for c in b.candidates], rtol=1e-3)


def test_no_candidates_outside_the_tissue():
    rng = np.random.default_rng(3)
    image = _nodule_image(rng, (300.0, 80.0), 5.0)
    mask = np.zeros(image.shape, bool)
    mask[:, 200:] = True  # the nodule lies outside the breast
    result = detect_masses(image, SPACING, mask, backend="cpu")
    assert all(c.center_px[1] >= 200 for c in result.candidates)


def test_needs_pixel_spacing():
    with pytest.raises(ValueError, match="pixel spacing"):
        detect_masses(np.zeros((64, 64), np.float32), None, np.ones((64, 64), bool))


def _plateau(shape, centre, radius_mm, height):
    """A dense-tissue island: a flat disc with a 0.5 mm soft edge (the phantom's dense layer, mammo.md §5.2)."""
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    disc = (np.hypot(rr - centre[0], cc - centre[1]) * SPACING <= radius_mm).astype(np.float64)
    return (height * ndi.gaussian_filter(disc, 0.5 / SPACING)).astype(np.float32)


def test_dense_island_does_not_outscore_a_nodule():
    # An island twice as bright as the nodule and of the LoG-matched size; the nodule sits on a larger plateau.
    rng = np.random.default_rng(4)
    nodule, island = (200.0, 400.0), (400.0, 200.0)
    image = _nodule_image(rng, nodule, 5.0)
    image += _plateau(image.shape, island, 4.0, 8.0) + _plateau(image.shape, nodule, 12.0, 8.0)
    result = detect_masses(image, SPACING, np.ones(image.shape, bool), backend="cpu")
    top = result.candidates[0]
    assert np.hypot(top.center_px[0] - nodule[0], top.center_px[1] - nodule[1]) * SPACING <= 1.0
    on_island = [
        c
        for c in result.candidates
        if np.hypot(c.center_px[0] - island[0], c.center_px[1] - island[1]) * SPACING <= 5.0
    ]
    assert on_island and max(c.score for c in on_island) < top.score  # without plateau removal it is ≈ 1.8×


def test_thin_breast_without_interior_gives_no_candidates(backend):
    """A 1 mm wide strip of tissue has no pixel 2 mm from the skin: no statistics, no candidates, no error."""
    rng = np.random.default_rng(4)
    image = _nodule_image(rng, (300.0, 80.0), 5.0)
    mask = np.zeros(image.shape, bool)
    width = max(1, round(1.0 / SPACING))
    mask[:, :width] = True
    result = detect_masses(image, SPACING, mask, backend=backend)
    assert result.candidates == []
