"""DICOM MG input: normalisation to a display-like image and the header fallback chains.

Conventions (mammo.md §2.1, §4):
- The returned ``image`` keeps the stored pixel matrix orientation (row, column), so every
  coordinate reported downstream (``center_px``, SR SCOORDs) refers to the stored pixels.
  ``hanging`` gives the flip that shows it in the radiological convention.
- ``image`` is float32 in [0, 1], bright = dense:
  FOR PRESENTATION: Modality LUT, then VOI LUT or window, then MONOCHROME1 inverted.
  FOR PROCESSING: values are taken as linear in detector exposure (the raw SOP class), clipped to
  [1, 2**BitsStored - 1], log-transformed and inverted (OpenBreast ``ffdmRead``); the VOI module is
  not applied (forbidden for raw data).
  Secondary Capture with Modality MG (digitised film) is display data: treated as FOR PRESENTATION.
- Pixel spacing is never invented: PixelSpacing, else ImagerPixelSpacing, else None and a warning.
  An explicit user value overrides the header (the warning records what it replaced).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from quantgpu.errors import InputError

log = logging.getLogger("quantgpu.mammo.io")

MG_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
MG_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
# Multi-frame grayscale byte/word SC (some digitisers); accepted like SC when Modality is MG.
SECONDARY_CAPTURE_GRAY = ("1.2.840.10008.5.1.4.1.1.7.2", "1.2.840.10008.5.1.4.1.1.7.3")

# CID 4014 view codes (SNOMED CT) and the legacy SNOMED RT values still found in older files.
VIEW_CODES = {
    "399162004": "CC",
    "399368009": "MLO",
    "399260004": "ML",
    "399352003": "LM",
    "399192003": "XCCL",
    "399101009": "CV",
    "R-10242": "CC",
    "R-10226": "MLO",
    "R-10224": "ML",
    "R-10228": "LM",
    "R-1024A": "XCCL",
}
VIEW_SCT = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}
LATERALITY_SCT = {"L": ("80248007", "Left breast"), "R": ("73056007", "Right breast")}
# Standard PatientOrientation per view (mammo.md §2.1): chest wall at column 0 for "A" rows.
STANDARD_ORIENTATION = {("L", "CC"): "A\\R", ("R", "CC"): "P\\L", ("L", "MLO"): "A\\FR", ("R", "MLO"): "P\\FL"}

_TEXT_VIEW = re.compile(r"(?<![A-Z])(?:[LR])?(MLO|CC)(?![A-Z])")


@dataclass
class Mammogram:
    """One mammogram, normalised (bright = dense), stored orientation, resolved header facts."""

    image: np.ndarray
    source: str
    sop_instance_uid: str | None
    laterality: str
    laterality_source: str
    view: str | None
    view_source: str
    pixel_spacing_mm: float | None
    spacing_source: str
    presentation_intent: str
    photometric: str
    warnings: list[str] = field(default_factory=list)
    dataset: Dataset | None = None  # header without pixel data

    @property
    def chest_wall_side(self) -> str:
        """'left' or 'right': the image column side the chest wall is stored on."""
        orientation = _patient_orientation(self.dataset) if self.dataset is not None else None
        if orientation and orientation[0] in ("A", "P"):
            return "left" if orientation[0] == "A" else "right"
        return "left" if self.laterality == "L" else "right"


# --------------------------------------------------------------------------- inputs


def collect_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and directories (recursively) into a sorted list of candidate DICOM files.

    Directory members that are not DICOM (no preamble) are skipped; files named explicitly are
    kept so that ``read_mammogram`` can say why they are not usable.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError("no such file or directory", path)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _is_dicom_file(p))
            if not found:
                raise InputError("directory holds no DICOM files", path)
            files.extend(found)
        else:
            files.append(path)
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique


def _is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


# --------------------------------------------------------------------------- reading


def read_mammogram(path: str | Path, pixel_spacing_mm: float | None = None) -> Mammogram:
    """Read one DICOM MG (or SC with Modality MG) file; see the module docstring for conventions."""
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise InputError(f"not a readable DICOM file ({type(exc).__name__})", path) from exc
    sop_class = str(ds.get("SOPClassUID", ""))
    modality = str(ds.get("Modality", ""))
    if sop_class in (SECONDARY_CAPTURE, *SECONDARY_CAPTURE_GRAY):
        if modality != "MG":
            raise InputError(f"Secondary Capture with Modality {modality or 'missing'}, not MG", path)
    elif sop_class not in (MG_PRESENTATION, MG_PROCESSING):
        raise InputError(
            f"not a mammogram (SOP class {sop_class or 'missing'}, modality {modality or 'missing'})", path
        )
    if "PixelData" not in ds:
        raise InputError("has no pixel data", path)
    try:
        stored = ds.pixel_array
    except Exception as exc:
        raise InputError(f"cannot decode pixel data ({type(exc).__name__}: {exc})", path) from exc
    if stored.ndim != 2:
        raise InputError(f"expected one 2-D grayscale frame, got pixel array of shape {stored.shape}", path)

    warnings: list[str] = []
    intent = _presentation_intent(ds, sop_class)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise InputError(f"PhotometricInterpretation {photometric} is not a grayscale mammogram", path)
    image = normalise(stored, ds, intent, photometric)

    laterality, lat_source = resolve_laterality(ds, image, warnings)
    view, view_source = resolve_view(ds, warnings)
    spacing, spacing_source = resolve_spacing(ds, pixel_spacing_mm, warnings)

    header = ds.copy()
    for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if tag in header:
            delattr(header, tag)
    return Mammogram(
        image=image,
        source=str(path),
        sop_instance_uid=str(ds.SOPInstanceUID) if "SOPInstanceUID" in ds else None,
        laterality=laterality,
        laterality_source=lat_source,
        view=view,
        view_source=view_source,
        pixel_spacing_mm=spacing,
        spacing_source=spacing_source,
        presentation_intent=intent,
        photometric=photometric,
        warnings=warnings,
        dataset=header,
    )


def read_exam(paths: Iterable[str | Path], pixel_spacing_mm: float | None = None) -> list[Mammogram]:
    """Read every mammogram under ``paths`` (files or directories)."""
    return [read_mammogram(p, pixel_spacing_mm) for p in collect_inputs(paths)]


def _presentation_intent(ds: Dataset, sop_class: str) -> str:
    if sop_class == MG_PROCESSING:
        return "FOR PROCESSING"
    if sop_class == MG_PRESENTATION:
        return "FOR PRESENTATION"
    # Secondary Capture (digitised film): display data unless the header says otherwise.
    intent = str(ds.get("PresentationIntentType", "FOR PRESENTATION")).strip().upper()
    return "FOR PROCESSING" if intent == "FOR PROCESSING" else "FOR PRESENTATION"


def normalise(stored: np.ndarray, ds: Dataset, intent: str, photometric: str) -> np.ndarray:
    """Stored pixels -> float32 [0, 1], bright = dense (mammo.md §2.1)."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    if intent == "FOR PROCESSING":
        # Raw data are linear in exposure: denser tissue -> fewer photons -> smaller values.
        bits = int(ds.get("BitsStored", 14))
        exposure = np.clip(stored.astype(np.float64), 1.0, float(2**bits - 1))
        values = -np.log(exposure)
    else:
        values = apply_modality_lut(stored, ds)
        if values.dtype.kind == "f" and np.array_equal(values, np.rint(values)):
            values = values.astype(np.int64)  # a VOI LUT table is indexed by integer values
        has_voi = "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds)
        if has_voi:
            values = apply_voi_lut(values, ds, index=0)
        values = np.asarray(values, dtype=np.float64)
        if photometric == "MONOCHROME1":
            values = -values
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.float32)
    return ((values - lo) / (hi - lo)).astype(np.float32)


# --------------------------------------------------------------------------- header chains


def _patient_orientation(ds: Dataset | None) -> list[str] | None:
    if ds is None or "PatientOrientation" not in ds or not ds.PatientOrientation:
        return None
    value = ds.PatientOrientation
    parts = [
        str(v).strip().upper() for v in (value if isinstance(value, (list, pydicom.multival.MultiValue)) else [value])
    ]
    return [p for p in parts if p] or None


def _frame_laterality(ds: Dataset) -> str | None:
    for seq_name in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in ds.get(seq_name, []) or []:
            for anatomy in group.get("FrameAnatomySequence", []) or []:
                value = str(anatomy.get("FrameLaterality", "")).strip().upper()
                if value in ("L", "R"):
                    return value
    return None


def image_laterality(image: np.ndarray) -> str:
    """OpenBreast ``isright``: drop pixels above 0.95·max, sum columns, compare halves.

    The breast (bulk) on the image's right half means a right breast in the standard hanging.
    """
    work = np.where(image > 0.95 * float(image.max()), 0.0, image.astype(np.float64))
    columns = work.sum(axis=0)
    half = columns.size // 2
    return "R" if columns[:half].sum() < columns[-half:].sum() else "L"


def resolve_laterality(ds: Dataset, image: np.ndarray, warnings: list[str]) -> tuple[str, str]:
    """ImageLaterality -> Laterality -> FrameLaterality -> image-based rule (mammo.md §2.1)."""
    from_image = image_laterality(image)
    for keyword in ("ImageLaterality", "Laterality"):
        value = str(ds.get(keyword, "") or "").strip().upper()
        if value in ("L", "R"):
            _check_image_side(ds, value, from_image, keyword, warnings)
            return value, keyword
    frame = _frame_laterality(ds)
    if frame:
        _check_image_side(ds, frame, from_image, "FrameLaterality", warnings)
        return frame, "FrameLaterality"
    warnings.append(f"no laterality in the header; image-based rule says {from_image}")
    return from_image, "image"


def _check_image_side(ds: Dataset, tag_value: str, from_image: str, keyword: str, warnings: list[str]) -> None:
    orientation = _patient_orientation(ds)
    if orientation and orientation[0] in ("A", "P"):
        # The stored chest-wall side is given by the orientation, not by laterality; the image rule
        # then checks the orientation rather than the laterality.
        expected_side = "L" if orientation[0] == "A" else "R"
        if expected_side != from_image:
            warnings.append(f"chest wall found on the other side than PatientOrientation {orientation[0]} implies")
        return
    if tag_value != from_image:
        warnings.append(f"{keyword} {tag_value} disagrees with the image-based laterality {from_image}")


def _view_from_text(text: str) -> str | None:
    match = _TEXT_VIEW.search(text.upper())
    return match.group(1) if match else None


def resolve_view(ds: Dataset, warnings: list[str]) -> tuple[str | None, str]:
    """ViewCodeSequence -> ViewPosition -> PatientOrientation -> description text."""
    for item in ds.get("ViewCodeSequence", []) or []:
        code = str(item.get("CodeValue", "")).strip()
        if code in VIEW_CODES:
            return VIEW_CODES[code], "ViewCodeSequence"
    position = str(ds.get("ViewPosition", "") or "").strip().upper()
    if position:
        return position, "ViewPosition"
    orientation = _patient_orientation(ds)
    if orientation:
        joined = "\\".join(orientation)
        if joined in ("CC", "MLO"):  # digitised film (CBIS-DDSM) puts the view here
            return joined, "PatientOrientation"
        if len(orientation) == 2 and orientation[0] in ("A", "P"):
            return ("MLO" if "F" in orientation[1] else "CC"), "PatientOrientation"
    for keyword in ("SeriesDescription", "ProtocolName", "AcquisitionDeviceProcessingDescription"):
        view = _view_from_text(str(ds.get(keyword, "") or ""))
        if view:
            return view, keyword
    warnings.append("view unknown (no ViewCodeSequence, ViewPosition, PatientOrientation or description)")
    return None, "none"


def resolve_spacing(ds: Dataset, user_mm: float | None, warnings: list[str]) -> tuple[float | None, str]:
    """PixelSpacing -> ImagerPixelSpacing -> explicit user value; None with a warning otherwise."""
    header = None
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is not None and len(value) == 2 and all(float(v) > 0 for v in value):
            row_mm, col_mm = float(value[0]), float(value[1])
            if abs(row_mm - col_mm) > 0.01 * max(row_mm, col_mm):
                warnings.append(f"{keyword} is anisotropic ({row_mm} x {col_mm} mm); using the mean")
            header = ((row_mm + col_mm) / 2.0, keyword)
            break
    if user_mm is not None:
        if not user_mm > 0:
            raise InputError(f"pixel spacing must be positive, got {user_mm}")
        if header is not None and abs(header[0] - user_mm) > 0.01 * user_mm:
            warnings.append(f"user pixel spacing {user_mm} mm overrides {header[1]} {header[0]:g} mm")
        return float(user_mm), "user"
    if header is not None:
        return header
    warnings.append("pixel spacing unknown: mm-based outputs (areas in cm², mm sizes) are disabled")
    return None, "none"


# --------------------------------------------------------------------------- hanging


def hanging(mammogram: Mammogram) -> np.ndarray:
    """The image flipped for display: chest wall on the screen side of its laterality.

    Radiological convention: right breasts hang with the chest wall at the right edge of the
    screen, left breasts at the left edge (back to back). Only a left-right flip is applied.
    """
    want = "left" if mammogram.laterality == "L" else "right"
    return mammogram.image if mammogram.chest_wall_side == want else mammogram.image[:, ::-1]


def hanging_flipped(mammogram: Mammogram) -> bool:
    """True when ``hanging`` flips columns (display column = cols - 1 - stored column)."""
    want = "left" if mammogram.laterality == "L" else "right"
    return mammogram.chest_wall_side != want


def hanging_order(mammograms: Sequence[Mammogram]) -> list[Mammogram | None]:
    """Four-view order RCC, LCC, RMLO, LMLO (None where a view is missing)."""
    slots: list[Mammogram | None] = [None, None, None, None]
    index = {("R", "CC"): 0, ("L", "CC"): 1, ("R", "MLO"): 2, ("L", "MLO"): 3}
    for m in mammograms:
        key = (m.laterality, m.view or "CC")
        if key in index and slots[index[key]] is None:
            slots[index[key]] = m
    return slots


# --------------------------------------------------------------------------- writing (phantoms, tests)

_PROCESSING_BITS = 14
_PRESENTATION_BITS = 12
# FOR PROCESSING encoding: exposure = I0 * exp(-ATTENUATION_SCALE * image01); the reader's log
# inversion then recovers the image up to an affine map.
_I0 = 12000.0
_ATTENUATION_SCALE = 4.0


def write_mg(
    path: str | Path,
    image: np.ndarray,
    pixel_spacing_mm: float | None,
    laterality: str,
    view: str,
    *,
    kind: str = "presentation",
    secondary_capture: bool = False,
    omit: Sequence[str] = (),
    patient_orientation: str | None = None,
    study: dict | None = None,
    instance_number: int = 1,
    force: bool = False,
) -> Path:
    """Write ``image`` (bright = dense, any scale) as a real DICOM mammogram.

    kind: "presentation" (MG For Presentation, MONOCHROME2, 12 bit + window), "mono1" (same, stored
    MONOCHROME1 with an INVERSE presentation LUT shape) or "processing" (MG For Processing, 14-bit
    values linear in exposure, MONOCHROME1). ``secondary_capture`` writes a digitised-film style
    Secondary Capture with Modality MG (no spacing, view in PatientOrientation as CBIS-DDSM does).
    ``omit`` lists keywords removed at the end (header fallback tests). ``study`` shares patient and
    study identity between the views of one exam (keys: StudyInstanceUID, SeriesInstanceUID, ...).
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from quantgpu.output import write_with

    if kind not in ("presentation", "processing", "mono1"):
        raise ValueError(f"unknown kind {kind!r}")
    if laterality not in ("L", "R"):
        raise ValueError(f"laterality must be 'L' or 'R', got {laterality!r}")
    image = np.asarray(image, dtype=np.float64)
    lo, hi = float(image.min()), float(image.max())
    unit = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    study = dict(study or {})

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    sop_class = SECONDARY_CAPTURE if secondary_capture else MG_PROCESSING if kind == "processing" else MG_PRESENTATION
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = study.get("SOPInstanceUID") or generate_uid()
    ds.PatientName = study.get("PatientName", "Phantom^Mammo")
    ds.PatientID = study.get("PatientID", "QGPU-MAMMO-PHANTOM")
    ds.PatientBirthDate = ""
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study.get("StudyInstanceUID") or generate_uid()
    ds.StudyDate = study.get("StudyDate", "20260101")
    ds.StudyTime = "120000"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.Modality = "MG"
    ds.SeriesInstanceUID = study.get("SeriesInstanceUID") or generate_uid()
    ds.SeriesNumber = study.get("SeriesNumber", 1)
    ds.SeriesDescription = f"{laterality}{view} phantom"
    # General Series Laterality is forbidden when ImageLaterality is present (MG IOD, type 2C): it is
    # written only for Secondary Capture and for the header-fallback variants without ImageLaterality.
    if secondary_capture or "ImageLaterality" in omit:
        ds.Laterality = laterality
    ds.BodyPartExamined = "BREAST"
    ds.Manufacturer = "QuantGPU phantom"
    ds.InstanceNumber = instance_number
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.BurnedInAnnotation = "NO"
    ds.Rows, ds.Columns = unit.shape
    ds.SamplesPerPixel = 1
    ds.PixelRepresentation = 0
    ds.BitsAllocated = 16
    ds.PatientOrientation = (patient_orientation or STANDARD_ORIENTATION[(laterality, view)]).split("\\")

    if kind == "processing":
        bits = _PROCESSING_BITS
        stored = np.clip(np.rint(_I0 * np.exp(-_ATTENUATION_SCALE * unit)), 1, 2**bits - 1)
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.PresentationLUTShape = "INVERSE"
        ds.PresentationIntentType = "FOR PROCESSING"
        ds.PixelIntensityRelationship = "LIN"
        ds.PixelIntensityRelationshipSign = -1
    else:
        bits = _PRESENTATION_BITS
        display = np.rint(unit * (2**bits - 1))
        if kind == "mono1":
            stored = (2**bits - 1) - display
            ds.PhotometricInterpretation = "MONOCHROME1"
            ds.PresentationLUTShape = "INVERSE"
        else:
            stored = display
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.PresentationLUTShape = "IDENTITY"
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.PixelIntensityRelationship = "LOG"
        ds.PixelIntensityRelationshipSign = 1
        ds.WindowCenter = (2**bits) / 2.0
        ds.WindowWidth = float(2**bits)
        ds.VOILUTFunction = "LINEAR"
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.LossyImageCompression = "00"

    if secondary_capture:
        ds.ConversionType = "DF"
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.PatientOrientation = [view]  # CBIS-DDSM style: non-standard view text
        for keyword in ("PresentationIntentType", "PixelIntensityRelationship", "PixelIntensityRelationshipSign"):
            delattr(ds, keyword)
    else:
        ds.ImageType = ["ORIGINAL", "PRIMARY", ""]
        ds.ImageLaterality = laterality
        ds.ViewPosition = view
        ds.PositionerType = "MAMMOGRAPHIC"
        ds.OrganExposed = "BREAST"
        ds.DetectorType = "DIRECT"
        ds.AcquisitionContextSequence = []
        ds.AnatomicRegionSequence = [_code("76752008", "SCT", "Breast")]
        view_code = _code(*VIEW_SCT[view][:1], "SCT", VIEW_SCT[view][1]) if view in VIEW_SCT else None
        if view_code is None:
            raise ValueError(f"view must be CC or MLO, got {view!r}")
        view_code.ViewModifierCodeSequence = []
        ds.ViewCodeSequence = [view_code]
        if pixel_spacing_mm is not None:
            ds.ImagerPixelSpacing = [f"{pixel_spacing_mm:.6g}", f"{pixel_spacing_mm:.6g}"]
            ds.PixelSpacing = [f"{pixel_spacing_mm:.6g}", f"{pixel_spacing_mm:.6g}"]
            ds.EstimatedRadiographicMagnificationFactor = 1.0
        ds.KVP = "28"
        ds.BreastImplantPresent = "NO"
        ds.PartialView = "NO"
    ds.PixelData = stored.astype(np.uint16).tobytes()
    for keyword in omit:
        if keyword in ds:
            delattr(ds, keyword)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta

    def _write(tmp: Path) -> None:
        ds.save_as(tmp, enforce_file_format=True)

    return write_with(Path(path), _write, force=force)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def write_phantom_exam(
    out_dir: str | Path,
    *,
    shape: tuple[int, int] = (4096, 3328),
    seed: int = 0,
    pixel_spacing_mm: float = 0.07,
    kind: str = "presentation",
    force: bool = False,
    **phantom_kwargs,
) -> list[Path]:
    """Write mammo A's four-view phantom exam (LCC, RCC, LMLO, RMLO) as DICOM MG plus truth.json.

    Defaults to one calcification cluster and one mass per view (override through ``phantom_kwargs``).
    """
    from pydicom.uid import generate_uid

    from quantgpu.output import write_json

    from .phantom import make_exam

    phantom_kwargs.setdefault("n_clusters", 1)
    phantom_kwargs.setdefault("n_masses", 1)
    out = Path(out_dir)
    study = {"StudyInstanceUID": generate_uid(), "SeriesInstanceUID": generate_uid()}
    paths, truth = [], {}
    for n, p in enumerate(make_exam(shape=shape, seed=seed, pixel_spacing_mm=pixel_spacing_mm, **phantom_kwargs)):
        name = f"{n + 1:02d}_{p.laterality}{p.view}.dcm"
        path = write_mg(
            out / name,
            p.image,
            p.pixel_spacing_mm,
            p.laterality,
            p.view,
            kind=kind,
            study=study,
            instance_number=n + 1,
            force=force,
        )
        paths.append(path)
        truth[name] = p.truth_json()
    write_json(out / "truth.json", truth, force=force)
    return paths
