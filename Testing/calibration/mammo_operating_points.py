"""Calibrate MammoCAD's operating points on full-size phantom views (false marks per *image*).

    python Testing/calibration/mammo_operating_points.py [--exams 5] [--first-seed 2000]

"False marks per image" is per clinical view (3328x4096 at 0.07 mm, the breast covering about
150-200 cm²), not per 1024² test tile: false marks grow with the breast area, so thresholds read off
tiles show several times more false marks on a real view. Each exam is ``phantom.make_exam`` (LCC, RCC,
LMLO, RMLO; default background with the 30 % dense layer) with one calcification cluster and one mass
per view. Seeds 2000+ are calibration seeds, never used by the tests. Prints, per finding type, the
FROC (sensitivity at 0.1-2 false marks per image) and the lowest score threshold that keeps the false
marks per image at or below each target; operating_points.py records the numbers it used.
"""

from __future__ import annotations

import argparse
import json

from MammoCADLib import froc
from MammoCADLib.analysis import analyze_image
from MammoCADLib.phantom import make_exam

TARGETS = (0.1, 0.25, 0.5, 1.0, 2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exams", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=2000)
    args = parser.parse_args()
    marks, lesions, masks, spacing, n = [], [], [], 0.07, 0
    for e in range(args.exams):
        seed = args.first_seed + 10 * e
        try:
            exam = make_exam(seed=seed, pixel_spacing_mm=spacing, n_clusters=1, n_masses=1)
        except ValueError as exc:  # the generator found no room for a lesion
            print(f"seed {seed}: skipped ({exc})")
            continue
        for p in exam:
            a = analyze_image(p.image, spacing, p.view, p.laterality, backend="cpu")
            marks += froc.marks_from_findings(a.findings, n)
            lesions += froc.lesions_from_phantom(p, n)
            masks.append(p.breast_mask)
            n += 1
        print(f"seed {seed}: {n} views so far", flush=True)
    out = {}
    for kind in ("calcification_cluster", "mass"):
        curve = froc.froc(marks, lesions, n, spacing, kind, breast_masks=masks)
        out[kind] = {
            "summary": curve.summary(TARGETS),
            "threshold_at_fp_per_image": {t: curve.threshold_at(t) for t in TARGETS},
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
