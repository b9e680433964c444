"""Click-to-assign calcium lesions to coronary arteries (array part, no MRML).

A click in a slice view gives one voxel. The whole connected 3-D candidate lesion
(HU >= threshold, 26-connectivity) that contains the voxel, or the nearest one
within ``search_radius_mm``, is written into an artery label array
(0 = none, 1 = LM, 2 = LAD, 3 = LCX, 4 = RCA, as in ``agatston.ARTERIES``).
Scoring then assigns each 2-D lesion to the artery holding most of its voxels,
so assigning the 3-D lesion assigns every 2-D lesion it is made of.

3-D components are used here only for assignment (calcium.md §3); the score
itself always uses 2-D per-slice lesions.

Every assignment is recorded so that it can be undone and redone, like the
segment editor's undo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quantgpu.errors import InputError

#: Label value per artery (the label volume convention of issue 3 item 2).
ARTERY_LABELS = {"LM": 1, "LAD": 2, "LCX": 3, "RCA": 4}
#: Writing 0 removes an assignment.
UNASSIGNED = "Unassigned"


def artery_label_value(artery: str) -> int:
    if artery == UNASSIGNED:
        return 0
    try:
        return ARTERY_LABELS[artery]
    except KeyError:
        raise InputError(f"unknown artery {artery!r}; expected one of LM, LAD, LCX, RCA, Unassigned") from None


def candidate_components(hu: np.ndarray, threshold_hu: float) -> np.ndarray:
    """3-D connected candidate lesions (HU >= threshold, 26-connectivity), int32 labels."""
    from .agatston import candidate_lesions_3d

    return np.asarray(candidate_lesions_3d(hu, threshold_hu, connectivity=26))


@dataclass(frozen=True)
class Assignment:
    """One undoable change of the artery label array."""

    flat_indices: np.ndarray  # voxels of the 3-D lesion (raveled [k,j,i] indices)
    previous: np.ndarray  # their label values before the change
    value: int  # the label value written
    component: int  # candidate component id

    @property
    def voxel_count(self) -> int:
        return int(self.flat_indices.size)


class ArteryAssigner:
    """Holds an artery label array and edits it lesion by lesion, with undo/redo.

    ``labels`` is copied: the caller's array is never modified. ``candidates`` may be
    given (labels of 3-D components on the same grid) to avoid relabelling.
    """

    def __init__(
        self,
        hu: np.ndarray,
        spacing: Sequence[float],
        threshold_hu: float = 130.0,
        labels: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ):
        hu = np.asarray(hu)
        if hu.ndim != 3:
            raise InputError(f"expected a 3-D volume [k,j,i], got shape {hu.shape}")
        self.shape = hu.shape
        self.spacing = np.asarray(spacing, dtype=float)
        if self.spacing.shape != (3,) or np.any(self.spacing <= 0):
            raise InputError(f"spacing must be three positive numbers (dk, dj, di), got {spacing!r}")
        if labels is None:
            self.labels = np.zeros(self.shape, dtype=np.uint8)
        else:
            if labels.shape != self.shape:
                raise InputError(f"artery label grid {labels.shape} does not match the CT grid {self.shape}")
            self.labels = np.array(labels, dtype=np.uint8, copy=True)
        self.candidates = candidate_components(hu, threshold_hu) if candidates is None else np.asarray(candidates)
        if self.candidates.shape != self.shape:
            raise InputError("candidate lesion grid does not match the CT grid")
        self._undo: list[Assignment] = []
        self._redo: list[Assignment] = []

    # --- finding the lesion -------------------------------------------------
    def component_at(self, ijk: Sequence[float], search_radius_mm: float = 3.0) -> int:
        """Id of the candidate lesion containing voxel ``ijk`` (i, j, k order, as Slicer's IJK),
        else of the nearest candidate voxel within ``search_radius_mm``; 0 when none."""
        kji = np.rint([ijk[2], ijk[1], ijk[0]]).astype(int)
        if np.any(kji < 0) or np.any(kji >= self.shape):
            return 0
        hit = int(self.candidates[tuple(kji)])
        if hit:
            return hit
        reach = np.ceil(search_radius_mm / self.spacing).astype(int)
        lo = np.maximum(kji - reach, 0)
        hi = np.minimum(kji + reach + 1, self.shape)
        window = self.candidates[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        found = np.argwhere(window > 0)
        if found.size == 0:
            return 0
        offsets_mm = (found + lo - kji) * self.spacing
        distances = np.sqrt((offsets_mm**2).sum(axis=1))
        best = int(np.argmin(distances))
        if distances[best] > search_radius_mm:
            return 0
        return int(window[tuple(found[best])])

    # --- editing ------------------------------------------------------------
    def assign_at(self, ijk: Sequence[float], artery: str, search_radius_mm: float = 3.0) -> Assignment:
        """Assign the lesion at (or nearest to) ``ijk`` to ``artery``; raises InputError when
        no candidate lesion lies within the search radius."""
        value = artery_label_value(artery)
        component = self.component_at(ijk, search_radius_mm)
        if component == 0:
            raise InputError(f"no calcium candidate (HU >= threshold) within {search_radius_mm:g} mm of the point")
        return self.assign_component(component, value)

    def assign_component(self, component: int, value: int) -> Assignment:
        flat = np.flatnonzero(self.candidates.ravel() == component)
        flat_labels = self.labels.reshape(-1)
        change = Assignment(flat, flat_labels[flat].copy(), int(value), int(component))
        flat_labels[flat] = value
        self._undo.append(change)
        self._redo.clear()
        return change

    def undo(self) -> Assignment | None:
        if not self._undo:
            return None
        change = self._undo.pop()
        self.labels.reshape(-1)[change.flat_indices] = change.previous
        self._redo.append(change)
        return change

    def redo(self) -> Assignment | None:
        if not self._redo:
            return None
        change = self._redo.pop()
        self.labels.reshape(-1)[change.flat_indices] = change.value
        self._undo.append(change)
        return change

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    # --- automatic proposal -------------------------------------------------
    def propose_all(
        self,
        ijk_to_ras: np.ndarray,
        heart_centre_ras: Sequence[float] | None = None,
        seeds_ras: dict[str, Sequence[Sequence[float]]] | None = None,
        only_unassigned: bool = True,
    ) -> list[Assignment]:
        """Assign every candidate lesion to the artery proposed from its centroid position.

        A proposal, not a segmentation of the arteries: the user checks and corrects it
        (see ``propose_artery``). Lesions that already carry an artery keep it unless
        ``only_unassigned`` is false. Each lesion is one undoable step.
        """
        ids = self.candidates.ravel()
        n = int(ids.max()) if ids.size else 0
        if n == 0:
            return []
        counts = np.bincount(ids, minlength=n + 1)
        kji = np.indices(self.shape).reshape(3, -1)
        centroid_kji = np.stack([np.bincount(ids, weights=kji[a], minlength=n + 1) for a in range(3)], axis=1)
        centroid_kji[1:] /= counts[1:, None]
        if heart_centre_ras is None:
            centre_ijk = (np.array(self.shape[::-1], dtype=float) - 1) / 2
            heart_centre_ras = (np.asarray(ijk_to_ras) @ np.append(centre_ijk, 1.0))[:3]
        assigned = np.bincount(ids, weights=(self.labels.ravel() > 0).astype(float), minlength=n + 1)
        changes = []
        for component in range(1, n + 1):
            if counts[component] == 0 or (only_unassigned and assigned[component] > 0):
                continue
            ijk = np.append(centroid_kji[component][::-1], 1.0)
            ras = (np.asarray(ijk_to_ras) @ ijk)[:3]
            artery = propose_artery(ras, heart_centre_ras, seeds_ras)
            changes.append(self.assign_component(component, ARTERY_LABELS[artery]))
        return changes


def propose_artery(
    point_ras: Sequence[float],
    heart_centre_ras: Sequence[float],
    seeds_ras: dict[str, Sequence[Sequence[float]]] | None = None,
    lm_superior_mm: float = 25.0,
) -> str:
    """Propose the artery of a lesion from its position. A heuristic, to be checked by the user.

    With ``seeds_ras`` (artery -> points the user placed on each artery, e.g. markups),
    the artery of the nearest seed is proposed. Otherwise a coarse rule from the usual
    course of the arteries relative to the heart centre (RAS: +R patient right,
    +A anterior, +S superior) is used:

    - right of the heart centre -> RCA (right atrioventricular groove);
    - left and more than ``lm_superior_mm`` above the centre -> LM (from the aortic root);
    - left and anterior -> LAD (anterior interventricular groove);
    - left and posterior -> LCX (left atrioventricular groove).

    The rule ignores the oblique heart axis, dominance and anatomical variants: it is
    right for typical lesions only and is offered as a starting point, not a result.
    """
    p = np.asarray(point_ras, dtype=float)
    if seeds_ras:
        best, best_d = None, np.inf
        for artery, points in seeds_ras.items():
            artery_label_value(artery)  # validates the name
            for q in points:
                d = float(np.linalg.norm(p - np.asarray(q, dtype=float)))
                if d < best_d:
                    best, best_d = artery, d
        if best is not None and best != UNASSIGNED:
            return best
    d = p - np.asarray(heart_centre_ras, dtype=float)
    if d[0] > 0:
        return "RCA"
    if d[2] > lm_superior_mm:
        return "LM"
    return "LAD" if d[1] > 0 else "LCX"
