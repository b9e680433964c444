"""The digital calcium phantom as Slicer sample data (generated locally, never downloaded).

Slicer's Sample Data module fetches a URI and checks its checksum. QuantGPU's phantom
is generated (``phantom.make_phantom``) into a cache folder the first time it is
needed and registered with a ``file://`` URI; the checksums below are the SHA-256
of the generated files (uncompressed NRRD, so the bytes are deterministic). When
the phantom's definition changes, ``test_calcium_mrml`` tells you to update them.
No Slicer import here: the Qt module calls ``sample_sources`` and registers them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

CATEGORY = "QuantGPU"
PHANTOM_NAME = "CalciumPhantom"
ARTERIES_NAME = "CalciumPhantomArteries"
FILES = {PHANTOM_NAME: "CalciumPhantom.nrrd", ARTERIES_NAME: "CalciumPhantomArteries.nrrd"}
SHA256 = {
    PHANTOM_NAME: "00dbf3f633341825e27be0c996bea5d7ea43a646dc23c883e99a3ebe49b3ea0d",
    ARTERIES_NAME: "b65472b7eecb744a57b51e43007a6c12f87595cb254880421fee82d3f8209d2e",
}


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _nrrd_bytes(array: np.ndarray, ijk_to_lps: np.ndarray) -> bytes:
    """A raw little-endian NRRD (LPS space) without a date comment, so that its bytes are
    reproducible (pynrrd writes the current time into every header)."""
    types = {np.dtype(np.int16): "int16", np.dtype(np.uint8): "uint8"}
    m = np.asarray(ijk_to_lps, dtype=float)

    def vec(v) -> str:
        return "(" + ",".join(f"{float(x):.17g}" for x in v) + ")"

    nk, nj, ni = array.shape
    header = "\n".join(
        [
            "NRRD0004",
            f"type: {types[array.dtype]}",
            "dimension: 3",
            "space: left-posterior-superior",
            f"sizes: {ni} {nj} {nk}",
            "space directions: " + " ".join(vec(m[:3, c]) for c in range(3)),
            "kinds: domain domain domain",
            "endian: little",
            "encoding: raw",
            f"space origin: {vec(m[:3, 3])}",
        ]
    )
    # NRRD's fastest axis is i: C order of a [k, j, i] array
    return (header + "\n\n").encode("ascii") + np.ascontiguousarray(array).astype(
        array.dtype.newbyteorder("<")
    ).tobytes()


def write_sample_files(cache_dir: str | os.PathLike, force: bool = False) -> dict[str, Path]:
    """Write the phantom CT (int16 HU) and its artery labels (uint8) as raw NRRD files, atomically."""
    from quantgpu.output import write_bytes_atomic

    from . import phantom

    hu, labels, _truth = phantom.make_phantom()
    hu16 = hu.astype(np.int16)
    if not np.array_equal(hu16, hu):  # the phantom's HU are integers; keep the file exact
        raise ValueError("phantom HU values are not integers")
    m = phantom.phantom_ijk_to_lps()
    cache_dir = Path(cache_dir)
    paths = {name: cache_dir / filename for name, filename in FILES.items()}
    write_bytes_atomic(paths[PHANTOM_NAME], _nrrd_bytes(hu16, m), force=force)
    write_bytes_atomic(paths[ARTERIES_NAME], _nrrd_bytes(labels.astype(np.uint8), m), force=force)
    return paths


def ensure_sample_files(cache_dir: str | os.PathLike) -> dict[str, Path]:
    """The sample files in ``cache_dir``, (re)generated when missing or not matching ``SHA256``."""
    cache_dir = Path(cache_dir)
    paths = {name: cache_dir / filename for name, filename in FILES.items()}
    if all(p.exists() and file_sha256(p) == SHA256[name] for name, p in paths.items()):
        return paths
    return write_sample_files(cache_dir, force=True)


def sample_sources(cache_dir: str | os.PathLike, thumbnail: str | None = None) -> list[dict]:
    """Keyword arguments of ``SampleData.SampleDataLogic.registerCustomSampleDataSource``."""
    paths = ensure_sample_files(cache_dir)
    return [
        {
            "category": CATEGORY,
            "sampleName": PHANTOM_NAME,
            "uris": paths[PHANTOM_NAME].resolve().as_uri(),
            "fileNames": FILES[PHANTOM_NAME],
            "nodeNames": PHANTOM_NAME,
            "thumbnailFileName": thumbnail,
            "loadFileType": "VolumeFile",
            "checksums": f"SHA256:{SHA256[PHANTOM_NAME]}",
        },
        {
            "category": CATEGORY,
            "sampleName": ARTERIES_NAME,
            "uris": paths[ARTERIES_NAME].resolve().as_uri(),
            "fileNames": FILES[ARTERIES_NAME],
            "nodeNames": ARTERIES_NAME,
            "thumbnailFileName": thumbnail,
            "loadFileType": "VolumeFile",
            "loadFileProperties": {"labelmap": True},
            "checksums": f"SHA256:{SHA256[ARTERIES_NAME]}",
        },
    ]
