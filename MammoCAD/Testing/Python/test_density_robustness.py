"""Percent density across dense fractions, views and seeds (mammo.md §2.2, M14 of §5.4).

The truth is the generator's dense fraction (dense area / (breast − pectoral) area), never the
estimator's output. Bounds: |PD − g| <= 0.03 where g >= 0.1 (M14), and within 5 percentage points
for g = 0 and 0.05: an all-fatty breast has no dense plateau, and a two-class fit of its power-law
texture alone must not be read as dense tissue.

Phantoms are 512 x 512 at 0.14 mm (the field of view of M14's 1024 x 1024 at 0.07 mm); at that
spacing ``analysis`` passes the image to ``estimate_density`` unreduced (≈ 0.56 mm after its 4x block
mean). The generator's breast and pectoral masks are the inputs, so that the test measures the
density estimate and not the segmentation.
"""

from __future__ import annotations

import pytest

from MammoCADLib.density import estimate_density
from MammoCADLib.phantom import make_phantom

SPACING = 0.14
SHAPE = (512, 512)
VIEWS = [("CC", "L"), ("MLO", "R"), ("CC", "R"), ("MLO", "L")]


@pytest.mark.parametrize("dense_fraction", [0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.85])
def test_percent_density_across_fractions(dense_fraction):
    tolerance = 0.03 if dense_fraction >= 0.1 else 0.05
    errors = []
    for k, (view, laterality) in enumerate(VIEWS):
        seed = 9100 + 10 * k + round(100 * dense_fraction)
        p = make_phantom(
            shape=SHAPE,
            pixel_spacing_mm=SPACING,
            view=view,
            laterality=laterality,
            seed=seed,
            dense_fraction=dense_fraction,
        )
        result = estimate_density(p.image, p.breast_mask, p.pectoral_mask, SPACING)
        errors.append((seed, view, laterality, p.dense_fraction, result.percent_density / 100.0))
    bad = [e for e in errors if abs(e[4] - e[3]) > tolerance]
    assert not bad, f"(seed, view, laterality, true PD, estimated PD) outside ±{tolerance}: {bad}"


def test_all_fatty_breast_has_no_dense_mask():
    """dense_fraction = 0: the tissue is one class; nothing is marked dense and the category is a."""
    p = make_phantom(shape=SHAPE, pixel_spacing_mm=SPACING, view="MLO", laterality="L", seed=9200, dense_fraction=0.0)
    assert p.dense_fraction == 0.0
    result = estimate_density(p.image, p.breast_mask, p.pectoral_mask, SPACING)
    assert result.percent_density <= 5.0
    assert result.density_category == "a"
    assert result.dense_mask.sum() <= 0.05 * (p.breast_mask & ~p.pectoral_mask).sum()
