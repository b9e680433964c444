"""Named CAD operating points: score thresholds per finding type (mammo.md §3; DICOM PS3.17 E.4).

Every candidate is kept with its score; an operating point only chooses which are displayed
(score ≥ threshold). Scores: calcification cluster = mean of its top-3 robust z values (candidates
start at z 4.5, so 4.5 shows every cluster); mass = blob z weighted by convergence and spiculation
(``masses`` module doc; candidates start at 2.0).

False marks are counted per clinical view: thresholds are read off full-size views (3328×4096 at
0.07 mm, breast ≈ 150–200 cm²), because false marks grow with the breast area and thresholds read off
1024² test tiles show several times more false marks on a real view (``Testing/calibration/
mammo_operating_points.py --exams 15``: ``phantom.make_exam`` seeds 2000–2140, 60 views, default
background with the 30 % dense layer of contrast 8·σ_a, one cluster and one mass (A = 4·σ_a, D = 10 mm)
per view; never the tests' seeds, which are below 1000 and 3000+):

- clusters: no false cluster on any of the 60 views; every true cluster scores ≥ 4.67.
  high-sensitivity 4.5 (every candidate cluster), balanced 5.0 (mammo.md §5.2's z ≥ 5 reference row),
  high-specificity 6.5.
- masses (scores after the dense-plateau removal of ``masses``): 2 false marks per view at 3.41,
  1 at 3.68, 0.5 at 3.92, 0.25 at 4.23, 0.1 at 4.75; sensitivity 1.0 down to 0.25 per view and 0.93
  at 0.1. high-sensitivity 3.7 (≈ 1 false mass mark per view), balanced 3.9 (≈ 0.5), high-specificity
  4.2 (≈ 0.25), near the commercial anchors of mammo.md §5.3 (0.26–0.97 mass marks per image).

This background has no vessels, ducts or vascular calcifications: on real images expect more false
marks at the same thresholds (mammo.md §5.2).
"""

from __future__ import annotations

OPERATING_POINTS: dict[str, dict[str, float]] = {
    "high-sensitivity": {"calcification_cluster": 4.5, "mass": 3.7},
    "balanced": {"calcification_cluster": 5.0, "mass": 3.9},
    "high-specificity": {"calcification_cluster": 6.5, "mass": 4.2},
}


def displayed(finding, operating_point: str) -> bool:
    """True when the finding's score reaches the operating point's threshold for its type."""
    return float(finding.score) >= OPERATING_POINTS[operating_point][finding.type]
