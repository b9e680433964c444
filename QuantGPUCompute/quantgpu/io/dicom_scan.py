"""Find DICOM image files and group them into series, reading headers only.

Headers are read with ``stop_before_pixels`` so that scanning a CT of several
hundred slices costs milliseconds per file; pixels are read later, once the
series and the slice order are known.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from ..errors import InputError
from .dicom_multiframe import frame_headers, is_enhanced_multiframe

# Media Storage Directory (DICOMDIR) is an index, not an image.
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
# Derived objects that have Rows/Columns but are results, not images to analyse
# (our own SEG and Parametric Map exports often sit beside the source series).
_DERIVED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation",
    "1.2.840.10008.5.1.4.1.1.30": "Parametric Map",
}


@dataclass
class Header:
    """One DICOM image file's header (no pixel data) and where it came from."""

    path: Path
    ds: Any
    frame: int | None = None  # frame index in an enhanced multi-frame file

    def get(self, keyword: str, default=None):
        return self.ds.get(keyword, default)

    @property
    def name(self) -> str:
        """File name (and frame) for messages."""
        return self.path.name if self.frame is None else f"{self.path.name} frame {self.frame + 1}"


def expand_paths(
    path_or_paths: str | os.PathLike | Sequence[str | os.PathLike],
) -> tuple[list[tuple[Path, bool]], str]:
    """Files to scan, each with whether the caller named it (directories are searched
    recursively, sorted), and a source label for messages."""
    if isinstance(path_or_paths, (str, os.PathLike)):
        items = [Path(path_or_paths)]
        source = str(path_or_paths)
    else:
        items = [Path(p) for p in path_or_paths]
        if not items:
            raise InputError("no input files given")
        source = str(items[0].parent if len(items) > 1 else items[0])
    files: list[tuple[Path, bool]] = []
    for item in items:
        if item.is_dir():
            try:
                files.extend((p, False) for p in sorted(item.rglob("*")) if p.is_file())
            except OSError as exc:
                raise InputError(f"cannot list directory ({exc.strerror or exc})", item) from None
        elif item.is_file():
            files.append((item, True))
        else:
            raise InputError("does not exist", item)
    return files, source


def _looks_like_raw_dataset(path: Path) -> bool:
    """A dataset written without preamble and file meta (older tools) starts with a group 0008 tag."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head[:2] == b"\x08\x00"


def dcmread(path: Path, stop_before_pixels: bool = False):
    """``pydicom.dcmread`` that also reads preamble-less (raw) datasets.

    Raises ``InvalidDicomError`` for files that are not DICOM at all.
    """
    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        if not _looks_like_raw_dataset(path):
            raise
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=True)
    except Exception:
        raise InvalidDicomError("not a DICOM file") from None
    if "SOPClassUID" not in ds:
        raise InvalidDicomError("not a DICOM file")
    # Without file meta the transfer syntax is what the reader detected.
    implicit, little = ds.original_encoding
    ds.file_meta = FileMetaDataset()
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    else:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    return ds


def read_headers(files: Iterable[tuple[Path, bool]], source: str) -> list[Header]:
    """Headers of the DICOM image files among ``files``.

    Files that are not DICOM are skipped when scanning a directory (README, DICOMDIR,
    thumbnails) but rejected when the caller listed them explicitly.
    Non-image objects (SR, SEG without rows, presentation states) are skipped.
    """
    headers: list[Header] = []
    n_checked = 0
    for path, explicit in files:
        n_checked += 1
        try:
            ds = dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            if explicit:
                raise InputError("not a DICOM file", path) from None
            continue
        except Exception as exc:  # truncated or corrupt file: name it
            raise InputError(f"unreadable DICOM file ({type(exc).__name__}: {exc})", path) from None
        sop_class = str(ds.get("SOPClassUID", "") or getattr(ds.get("file_meta"), "MediaStorageSOPClassUID", ""))
        if not sop_class or ("SOPClassUID" not in ds and sop_class != _DICOMDIR_SOP_CLASS):
            # pydicom reads a truncated file without complaint; an object without its class is one.
            raise InputError("incomplete DICOM file (no SOPClassUID; truncated?)", path)
        if sop_class == _DICOMDIR_SOP_CLASS or "Rows" not in ds or "Columns" not in ds:
            if explicit:
                raise InputError("DICOM file holds no image (no Rows/Columns)", path)
            continue
        if sop_class in _DERIVED_SOP_CLASSES:
            if explicit:
                raise InputError(f"DICOM {_DERIVED_SOP_CLASSES[sop_class]} object, not an image series", path)
            continue
        if is_enhanced_multiframe(ds):
            headers.extend(Header(path, fh, frame=n) for n, fh in frame_headers(path, ds))
            continue
        headers.append(Header(path, ds))
    if not headers:
        raise InputError(f"no DICOM image files found ({n_checked} files checked)", source)
    return headers


def group_by_series(headers: list[Header]) -> dict[str, list[Header]]:
    """SeriesInstanceUID -> headers, in the order found."""
    groups: dict[str, list[Header]] = {}
    for h in headers:
        uid = h.get("SeriesInstanceUID")
        if not uid:
            raise InputError("DICOM image without SeriesInstanceUID", h.path)
        groups.setdefault(str(uid), []).append(h)
    return groups


def series_label(headers: list[Header]) -> str:
    """'series #3 'CTA 0.6 mm' (CT, 320 files)' — no patient data."""
    ds = headers[0].ds
    num = ds.get("SeriesNumber")
    desc = str(ds.get("SeriesDescription", "") or "")
    num_text = f"#{num}" if num not in (None, "") else "#?"
    desc_text = f" '{desc}'" if desc else ""
    n_files = len({h.path for h in headers})
    frames = f", {len(headers)} frames" if len(headers) != n_files else ""
    return f"series {num_text}{desc_text} ({ds.get('Modality', '?')}, {n_files} files{frames})"
