"""Free-response ROC (FROC) tooling (mammo.md §3, §5.3).

Hit rules (mammo.md §3; printed with every result as ``HIT_RULE``):

- mass: the mark's centre lies inside the truth outline (the disc of radius R for the phantom's
  round masses, or a given outline mask), or within max(R, 5 mm) of the truth centre;
- calcification cluster: the mark's box contains ≥ 2 true calcification centres of the cluster, or
  the mark's centre lies within 5 mm of the true cluster centroid.

Counting (mammo.md §5.3): each mark is assigned to the nearest lesion of its type that it hits;
several marks on one lesion are one true positive and no false positive; a mark that hits no
lesion, or lies outside the breast mask when one is given, is a false positive. A separate FROC is
computed per lesion type.

The curve: for every distinct mark score t (descending), LLF(t) = lesions with an assigned mark of
score ≥ t / lesions, NLF(t) = false marks with score ≥ t / images. ``sensitivity_at(x)`` is the
highest LLF among points with NLF ≤ x (0 when none); ``partial_auc(1.0)`` integrates LLF over NLF
from 0 to 1 with straight lines between consecutive points, starting at (0, 0) and held flat after
the last point.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

HIT_RULE = (
    "mass: mark inside the truth outline or within max(R, 5 mm) of its centre; "
    "calcification cluster: mark contains >= 2 true calcifications or centroid within 5 mm (mammo.md §3)"
)
MASS_MIN_RADIUS_MM = 5.0
CLUSTER_RADIUS_MM = 5.0
CLUSTER_MIN_CONTAINED = 2
FP_RATES = (0.1, 0.25, 0.5, 1.0, 2.0)  # false marks per image reported (mammo.md §5.3)


@dataclass
class Mark:
    image: int  # index of the image
    type: str  # "calcification_cluster" | "mass"
    center_px: tuple[float, float]  # (row, col)
    score: float
    bbox_px: tuple[int, int, int, int] | None = None  # (r0, c0, r1, c1), inclusive


@dataclass
class Lesion:
    image: int
    type: str
    center_px: tuple[float, float]  # (row, col): mass centre or cluster centroid
    radius_mm: float | None = None  # mass radius R
    calcifications_px: list[tuple[float, float]] = field(default_factory=list)  # cluster members
    outline: np.ndarray | None = None  # optional bool mask of the mass outline (image shape)


@dataclass
class FROCCurve:
    type: str
    thresholds: np.ndarray  # descending distinct scores
    llf: np.ndarray  # sensitivity at each threshold
    nlf: np.ndarray  # false marks per image at each threshold
    n_lesions: int
    n_images: int
    n_true_positive_marks: int  # marks assigned to a lesion (all thresholds)
    n_false_marks: int  # false marks (all thresholds)

    def sensitivity_at(self, fp_per_image: float) -> float:
        ok = self.nlf <= fp_per_image + 1e-12
        return float(self.llf[ok].max()) if ok.any() else 0.0

    def threshold_at(self, fp_per_image: float) -> float:
        """The lowest threshold whose NLF stays ≤ ``fp_per_image`` (inf when none does)."""
        ok = self.nlf <= fp_per_image + 1e-12
        return float(self.thresholds[ok].min()) if ok.any() else float("inf")

    def partial_auc(self, max_fp_per_image: float = 1.0) -> float:
        xs = np.concatenate([[0.0], self.nlf])
        ys = np.concatenate([[0.0], self.llf])
        limit = float(max_fp_per_image)
        area = 0.0
        for k in range(len(xs) - 1):
            x0, x1, y0, y1 = xs[k], xs[k + 1], ys[k], ys[k + 1]
            if x0 >= limit:
                break
            if x1 > limit:
                y1 = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
                x1 = limit
            area += 0.5 * (y0 + y1) * (x1 - x0)
        if xs[-1] < limit:
            area += ys[-1] * (limit - xs[-1])
        return float(area)

    def points(self) -> list[tuple[float, float]]:
        return [(float(a), float(b)) for a, b in zip(self.nlf, self.llf)]

    def summary(self, rates: Iterable[float] = FP_RATES) -> dict:
        return {
            "type": self.type,
            "hit_rule": HIT_RULE,
            "n_images": self.n_images,
            "n_lesions": self.n_lesions,
            "sensitivity_at_fp_per_image": {float(r): self.sensitivity_at(r) for r in rates},
            "pauc_to_1_fp": self.partial_auc(1.0),
        }


def _in_box(point, box) -> bool:
    r0, c0, r1, c1 = box
    return r0 <= point[0] <= r1 and c0 <= point[1] <= c1


def hit_distance_mm(mark: Mark, lesion: Lesion, pixel_spacing_mm: float) -> float | None:
    """Distance (mm) from the mark's centre to the lesion's centre when the mark hits it, else None."""
    if mark.image != lesion.image or mark.type != lesion.type:
        return None
    d = float(np.hypot(mark.center_px[0] - lesion.center_px[0], mark.center_px[1] - lesion.center_px[1]))
    d_mm = d * pixel_spacing_mm
    if lesion.type == "mass":
        radius = float(lesion.radius_mm or 0.0)
        if d_mm <= max(radius, MASS_MIN_RADIUS_MM):
            return d_mm
        if lesion.outline is not None:
            r, c = round(mark.center_px[0]), round(mark.center_px[1])
            if 0 <= r < lesion.outline.shape[0] and 0 <= c < lesion.outline.shape[1] and lesion.outline[r, c]:
                return d_mm
        return None
    if d_mm <= CLUSTER_RADIUS_MM:
        return d_mm
    if mark.bbox_px is not None:
        contained = sum(_in_box(p, mark.bbox_px) for p in lesion.calcifications_px)
        if contained >= CLUSTER_MIN_CONTAINED:
            return d_mm
    return None


def assign_marks(
    marks: Sequence[Mark],
    lesions: Sequence[Lesion],
    pixel_spacing_mm: float | Sequence[float],
    breast_masks: Sequence[np.ndarray | None] | None = None,
) -> list[int | None]:
    """For each mark, the index of the (nearest) lesion it hits, or None for a false mark."""
    out: list[int | None] = []
    for mark in marks:
        spacing = pixel_spacing_mm if np.isscalar(pixel_spacing_mm) else pixel_spacing_mm[mark.image]
        if breast_masks is not None and breast_masks[mark.image] is not None:
            mask = breast_masks[mark.image]
            r, c = round(mark.center_px[0]), round(mark.center_px[1])
            if not (0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and mask[r, c]):
                out.append(None)  # outside the breast: a false mark whatever it touches
                continue
        best, best_d = None, np.inf
        for k, lesion in enumerate(lesions):
            d = hit_distance_mm(mark, lesion, float(spacing))
            if d is not None and d < best_d:
                best, best_d = k, d
        out.append(best)
    return out


def froc(
    marks: Sequence[Mark],
    lesions: Sequence[Lesion],
    n_images: int,
    pixel_spacing_mm: float | Sequence[float],
    lesion_type: str,
    breast_masks: Sequence[np.ndarray | None] | None = None,
) -> FROCCurve:
    """The FROC curve of one lesion type (see the module docstring for the rules)."""
    marks = [m for m in marks if m.type == lesion_type]
    lesions = [les for les in lesions if les.type == lesion_type]
    assigned = assign_marks(marks, lesions, pixel_spacing_mm, breast_masks)
    scores = np.array([m.score for m in marks], float)
    thresholds = np.unique(scores)[::-1]
    best_score = np.full(len(lesions), -np.inf)
    false_scores = []
    for mark, target in zip(marks, assigned):
        if target is None:
            false_scores.append(mark.score)
        else:
            best_score[target] = max(best_score[target], mark.score)
    false_scores = np.sort(np.array(false_scores, float))
    llf = np.array([(best_score >= t).sum() for t in thresholds], float) / max(len(lesions), 1)
    nlf = (false_scores.size - np.searchsorted(false_scores, thresholds, side="left")) / max(n_images, 1)
    return FROCCurve(
        type=lesion_type,
        thresholds=thresholds,
        llf=llf,
        nlf=nlf.astype(float),
        n_lesions=len(lesions),
        n_images=n_images,
        n_true_positive_marks=sum(a is not None for a in assigned),
        n_false_marks=len(false_scores),
    )


def bootstrap_sensitivity(
    marks: Sequence[Mark],
    lesions: Sequence[Lesion],
    n_images: int,
    pixel_spacing_mm: float | Sequence[float],
    lesion_type: str,
    fp_per_image: float,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Case-level bootstrap confidence interval of the sensitivity at ``fp_per_image`` (mammo.md §5.3)."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        pick = rng.integers(0, n_images, n_images)
        new_marks, new_lesions, spacing = [], [], []
        for new, old in enumerate(pick):
            spacing.append(pixel_spacing_mm if np.isscalar(pixel_spacing_mm) else pixel_spacing_mm[old])
            new_marks += [Mark(new, m.type, m.center_px, m.score, m.bbox_px) for m in marks if m.image == old]
            new_lesions += [
                Lesion(new, les.type, les.center_px, les.radius_mm, les.calcifications_px, les.outline)
                for les in lesions
                if les.image == old
            ]
        curve = froc(new_marks, new_lesions, n_images, spacing, lesion_type)
        values.append(curve.sensitivity_at(fp_per_image))
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def lesions_from_phantom(phantom, image: int) -> list[Lesion]:
    """Truth lesions of a ``phantom.MammoPhantom`` (clusters with their member centres, round masses)."""
    lesions = []
    for cl in phantom.clusters:
        members = [tuple(float(v) for v in phantom.calcifications[m]["center_px"]) for m in cl["members"]]
        lesions.append(Lesion(image, "calcification_cluster", tuple(cl["center_px"]), None, members))
    for m in phantom.masses:
        lesions.append(Lesion(image, "mass", tuple(float(v) for v in m["center_px"]), float(m["radius_mm"])))
    return lesions


def marks_from_findings(findings, image: int) -> list[Mark]:
    """FROC marks of ``analysis.Finding`` objects (every candidate, whatever the operating point)."""
    return [Mark(image, f.type, tuple(f.center_px), float(f.score), tuple(f.bbox_px)) for f in findings]
