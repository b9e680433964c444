"""Sample data sets by name, for the web workstation (``quantgpu web --sample NAME``) and demos.

Each module's phantom is loaded lazily through ``<M>Lib.phantom.sample_volume()``
so that asking for one sample does not import (or build) the others. "Sphere"
is built in: a small CT-like ball that needs no analysis module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np

from .errors import InputError
from .io.volume import Volume, ijk_to_lps_matrix


def sphere_volume(size: int = 64, spacing_mm: float = 2.0) -> Volume:
    """A soft-tissue ball (40 HU) in air (-1000 HU) with a dense core (700 HU), axial LPS geometry.

    The core sits a little off the centre (towards the patient's right, anterior
    and superior) yet crosses the three central planes, so that the axial,
    sagittal and coronal views and the 3D view each show it.
    """
    centre = (size - 1) / 2
    k, j, i = np.ogrid[0:size, 0:size, 0:size]
    distance2 = (k - centre) ** 2 + (j - centre) ** 2 + (i - centre) ** 2
    array = np.full((size, size, size), -1000.0, dtype=np.float32)
    array[distance2 <= (0.4 * size) ** 2] = 40.0
    shift = 0.08 * size  # superior (+k), anterior (-j), right (-i) in LPS axial order
    core = (k - centre - shift) ** 2 + (j - centre + shift) ** 2 + (i - centre + shift) ** 2
    array[core <= (0.15 * size) ** 2] = 700.0
    # LPS axial: i -> left, j -> posterior, k -> superior; the ball's centre at the origin.
    origin = -centre * spacing_mm * np.ones(3)
    return Volume(
        array=array,
        spacing=(spacing_mm, spacing_mm, spacing_mm),
        ijk_to_lps=ijk_to_lps_matrix(origin, np.eye(3), (spacing_mm,) * 3),
        modality="CT",
        source="built-in sphere sample",
    )


def _module_sample(module: str) -> Callable[[], Volume]:
    def load() -> Volume:
        return importlib.import_module(f"{module}.phantom").sample_volume()

    return load


SAMPLES: dict[str, Callable[[], Volume]] = {
    "Sphere": sphere_volume,
    "CalciumPhantom": _module_sample("CalciumScoringLib"),
    "PerfusionPhantom": _module_sample("PerfusionAnalysisLib"),
    "MammoPhantom": _module_sample("MammoCADLib"),
}


def sample_names() -> list[str]:
    return list(SAMPLES)


def load_sample(name: str) -> Volume:
    """The named sample as a ``quantgpu.io.Volume``; ``InputError`` listing the names when unknown."""
    try:
        load = SAMPLES[name]
    except KeyError:
        raise InputError(f"unknown sample {name!r}; choose from {', '.join(SAMPLES)}") from None
    return load()
