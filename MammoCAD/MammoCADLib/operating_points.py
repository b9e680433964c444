"""Named CAD operating points: score thresholds per finding type (mammo.md §3; DICOM PS3.17 E.4).

Every candidate is kept with its score; an operating point only chooses which are displayed
(score ≥ threshold). Scores: calcification cluster = mean of its top-3 robust z values (candidates
start at z 4.5, so 4.5 shows every cluster); mass = blob z weighted by convergence and spiculation
(``masses`` module doc; candidates start at 2.0).

Calibration (FROC of ``froc.py`` through ``analysis.analyze_image`` on 1024×1024 default phantoms at
0.07 mm — dense fraction 0.3 of contrast 8·σ_a — with one cluster and one mass each (A = 4·σ_a,
D = 10 mm), calibration seeds 2000–2019, 20 images, never used by the tests, which use seeds below
1000 and 3000+):

- clusters: no false cluster at any score ≥ 4.5, every true cluster ≥ 6.64. high-sensitivity 4.5
  (every cluster), balanced 5.0 (mammo.md §5.2's z ≥ 5 reference row), high-specificity 6.5 (keeps
  every calibration cluster).
- masses (scores after the dense-plateau removal of ``masses``): 1 FP/image at 2.94, 0.5 at 3.35,
  0.25 at 3.59, sensitivity 0.95 at each. high-sensitivity 2.0 (every candidate), balanced 3.0
  (≤ 1 FP/image), high-specificity 3.6 (≤ 0.25 FP/image).
"""

from __future__ import annotations

OPERATING_POINTS: dict[str, dict[str, float]] = {
    "high-sensitivity": {"calcification_cluster": 4.5, "mass": 2.0},
    "balanced": {"calcification_cluster": 5.0, "mass": 3.0},
    "high-specificity": {"calcification_cluster": 6.5, "mass": 3.6},
}


def displayed(finding, operating_point: str) -> bool:
    """True when the finding's score reaches the operating point's threshold for its type."""
    return float(finding.score) >= OPERATING_POINTS[operating_point][finding.type]
