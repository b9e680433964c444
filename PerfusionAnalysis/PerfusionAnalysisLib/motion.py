"""Optional rigid (translation) motion correction of perfusion frames.

Each frame is registered to the mean of the first ``n_reference`` frames by phase correlation
(scikit-image ``phase_cross_correlation``, subpixel ``upsample_factor``) and shifted back with
linear interpolation (edges repeat the nearest value). Translation only: rotations and through-plane
motion are not corrected. Returns new arrays; the input is not modified.
"""

from __future__ import annotations

import logging

import numpy as np

from quantgpu.errors import InputError

log = logging.getLogger("PerfusionAnalysisLib.motion")


def correct_translation(frames, n_reference: int = 3, upsample_factor: int = 10, max_shift_vox: float = 10.0):
    """(corrected frames float32 [t, ...], shifts [t, ndim] in voxels that were undone).

    Shifts larger than ``max_shift_vox`` in any axis are treated as failed registrations and not applied
    (logged), so a frame full of contrast cannot be thrown across the volume.
    """
    from scipy.ndimage import shift as nd_shift
    from skimage.registration import phase_cross_correlation

    f = np.asarray(frames, dtype=np.float32)
    if f.ndim < 3:
        raise InputError(f"motion correction needs frames [t, ...] with >= 2 spatial axes, got {f.shape}")
    n_reference = max(1, min(int(n_reference), f.shape[0]))
    reference = f[:n_reference].mean(axis=0)
    out = np.empty_like(f)
    shifts = np.zeros((f.shape[0], f.ndim - 1))
    for t in range(f.shape[0]):
        shift, _err, _phase = phase_cross_correlation(
            reference, f[t], upsample_factor=upsample_factor, normalization=None
        )
        if np.max(np.abs(shift)) > max_shift_vox:
            log.warning("frame %d: registration shift %s voxels is implausible; frame left unmoved", t, shift)
            shift = np.zeros_like(shift)
        shifts[t] = shift
        out[t] = f[t] if not np.any(shift) else nd_shift(f[t], shift, order=1, mode="nearest")
    return out, shifts
