"""DICOM MG input: encodings, header fallback chains, spacing rules, input errors (mammo.md §2.1, M1-M3, M6)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from MammoCADLib import mgio
from quantgpu.errors import InputError


def _breast(shape=(160, 128), laterality="L", seed=0):
    """Half-ellipse 'breast' against the chest wall (column 0 for L, last column for R) + texture."""
    rows, cols = shape
    rr, cc = np.mgrid[0:rows, 0:cols].astype(np.float64)
    inside = ((rr - rows / 2) / (0.42 * rows)) ** 2 + (cc / (0.7 * cols)) ** 2 <= 1.0
    rng = np.random.default_rng(seed)
    texture = 0.6 + 0.2 * np.sin(rr / 7.0) * np.cos(cc / 5.0) + 0.05 * rng.standard_normal(shape)
    image = np.where(inside, texture, 0.05).astype(np.float32)
    return (image[:, ::-1].copy() if laterality == "R" else image), (inside[:, ::-1] if laterality == "R" else inside)


def _rewrite(path, edit):
    ds = pydicom.dcmread(path)
    edit(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


def _dciodvfy_errors(path) -> list[str]:
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools not installed")
@pytest.mark.parametrize("kind", ["presentation", "processing", "mono1"])
@pytest.mark.parametrize(("laterality", "view"), [("L", "CC"), ("R", "MLO")])
def test_written_mg_passes_dciodvfy(tmp_path, kind, laterality, view):
    image, _ = _breast(laterality=laterality)
    path = mgio.write_mg(tmp_path / "mg.dcm", image, 0.07, laterality, view, kind=kind)
    assert _dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    expected_class = mgio.MG_PROCESSING if kind == "processing" else mgio.MG_PRESENTATION
    assert ds.SOPClassUID == expected_class
    assert ds.BodyPartExamined == "BREAST"
    assert ds.ViewCodeSequence[0].CodeValue == mgio.VIEW_SCT[view][0]
    assert "\\".join(ds.PatientOrientation) == mgio.STANDARD_ORIENTATION[(laterality, view)]


def test_three_encodings_read_back_as_the_same_image(tmp_path):
    """M6 (reader part): MONOCHROME1 inverted; FOR PROCESSING log-inverted; r >= 0.99 inside the breast."""
    image, inside = _breast()
    read = {
        kind: mgio.read_mammogram(mgio.write_mg(tmp_path / f"{kind}.dcm", image, 0.07, "L", "CC", kind=kind))
        for kind in ("presentation", "processing", "mono1")
    }
    unit = (image - image.min()) / (image.max() - image.min())
    # 12-bit display quantisation: at most half a grey level away from the written image.
    assert np.abs(read["presentation"].image - unit).max() <= 0.5 / 4095 + 1e-6
    assert np.abs(read["mono1"].image - read["presentation"].image).max() <= 1e-6
    assert read["mono1"].photometric == "MONOCHROME1"
    assert read["processing"].presentation_intent == "FOR PROCESSING"
    for kind in ("processing", "mono1"):
        r = np.corrcoef(read[kind].image[inside], read["presentation"].image[inside])[0, 1]
        assert r >= 0.99, kind
    # bright = dense in every encoding: the breast is brighter than the background
    for m in read.values():
        assert m.image[inside].mean() > m.image[~inside].mean() + 0.3


def test_voi_lut_sequence_applied_for_presentation(tmp_path):
    image, _ = _breast()
    path = mgio.write_mg(tmp_path / "p.dcm", image, 0.07, "L", "CC")
    table = np.rint(np.sqrt(np.arange(4096) / 4095.0) * 65535).astype(np.uint16)  # a non-linear 16-bit VOI LUT

    def add_lut(ds):
        del ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction
        item = Dataset()
        item.LUTDescriptor = [4096, 0, 16]
        item.add_new(0x00283006, "US", table.tolist())  # LUTData (US)
        ds.VOILUTSequence = [item]

    _rewrite(path, add_lut)
    stored = pydicom.dcmread(path).pixel_array
    expected = table[stored].astype(np.float64)
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    got = mgio.read_mammogram(path).image
    assert np.abs(got - expected).max() < 1e-6


def test_window_ignored_for_processing(tmp_path):
    """The VOI module is forbidden for raw data: a window present there must not change the result."""
    image, _ = _breast()
    path = mgio.write_mg(tmp_path / "raw.dcm", image, 0.07, "L", "CC", kind="processing")
    before = mgio.read_mammogram(path).image

    def add_window(ds):
        ds.WindowCenter, ds.WindowWidth = 3000, 200

    after = mgio.read_mammogram(_rewrite(path, add_window)).image
    assert np.array_equal(before, after)
    stored = pydicom.dcmread(path).pixel_array.astype(np.float64)
    expected = -np.log(stored)
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    assert np.abs(after - expected).max() < 1e-6


# ----------------------------------------------------------------------------- laterality chain


def _add_frame_laterality(value):
    def edit(ds):
        anatomy = Dataset()
        anatomy.FrameLaterality = value
        group = Dataset()
        group.FrameAnatomySequence = [anatomy]
        ds.SharedFunctionalGroupsSequence = [group]

    return edit


def test_laterality_from_image_laterality(tmp_path):
    image, _ = _breast(laterality="R")
    m = mgio.read_mammogram(mgio.write_mg(tmp_path / "a.dcm", image, 0.07, "R", "CC"))
    assert (m.laterality, m.laterality_source) == ("R", "ImageLaterality")
    assert m.warnings == []


def test_laterality_falls_back_to_series_laterality(tmp_path):
    image, _ = _breast(laterality="R")
    path = mgio.write_mg(tmp_path / "a.dcm", image, 0.07, "R", "CC", omit=["ImageLaterality"])
    assert "Laterality" in pydicom.dcmread(path)
    m = mgio.read_mammogram(path)
    assert (m.laterality, m.laterality_source) == ("R", "Laterality")


def test_laterality_falls_back_to_frame_laterality(tmp_path):
    image, _ = _breast(laterality="L")
    path = mgio.write_mg(tmp_path / "a.dcm", image, 0.07, "L", "CC", omit=["ImageLaterality", "Laterality"])
    m = mgio.read_mammogram(_rewrite(path, _add_frame_laterality("L")))
    assert (m.laterality, m.laterality_source) == ("L", "FrameLaterality")


@pytest.mark.parametrize("laterality", ["L", "R"])
def test_laterality_falls_back_to_the_image(tmp_path, laterality):
    image, _ = _breast(laterality=laterality)
    path = mgio.write_mg(tmp_path / "a.dcm", image, 0.07, laterality, "CC", omit=["ImageLaterality", "Laterality"])
    m = mgio.read_mammogram(path)
    assert (m.laterality, m.laterality_source) == (laterality, "image")
    assert any("image-based" in w for w in m.warnings)


def test_image_laterality_rule_ignores_bright_labels():
    """OpenBreast isright: pixels above 0.95·max are dropped, so a bright label box on the far side
    (larger in column sum than the breast there) cannot flip the decision."""
    image, _ = _breast(laterality="L")
    image[5:60, 90:128] = 10.0  # saturated label on the right half
    assert mgio.image_laterality(image) == "L"


def test_laterality_tag_disagreeing_with_image_warns(tmp_path):
    image, _ = _breast(laterality="L")  # breast stored on the left, as a left breast
    path = mgio.write_mg(tmp_path / "a.dcm", image, 0.07, "R", "CC", omit=["PatientOrientation"])
    m = mgio.read_mammogram(path)
    assert m.laterality == "R"  # the tag wins ...
    assert any("disagrees" in w for w in m.warnings)  # ... with a warning


# ----------------------------------------------------------------------------- view chain


def test_view_from_view_code_sequence_wins(tmp_path):
    image, _ = _breast()
    path = mgio.write_mg(tmp_path / "a.dcm", image, 0.07, "L", "MLO")

    def conflicting_position(ds):
        ds.ViewPosition = "CC"

    m = mgio.read_mammogram(_rewrite(path, conflicting_position))
    assert (m.view, m.view_source) == ("MLO", "ViewCodeSequence")


@pytest.mark.parametrize(
    ("omit", "orientation", "description", "expected"),
    [
        (["ViewCodeSequence"], None, None, ("MLO", "ViewPosition")),
        (["ViewCodeSequence", "ViewPosition"], "A\\FR", None, ("MLO", "PatientOrientation")),
        (["ViewCodeSequence", "ViewPosition"], "P\\L", None, ("CC", "PatientOrientation")),
        (
            ["ViewCodeSequence", "ViewPosition", "PatientOrientation"],
            None,
            "LMLO phantom",
            ("MLO", "SeriesDescription"),
        ),
        (
            ["ViewCodeSequence", "ViewPosition", "PatientOrientation"],
            None,
            "R CC screening",
            ("CC", "SeriesDescription"),
        ),
    ],
)
def test_view_fallbacks(tmp_path, omit, orientation, description, expected):
    image, _ = _breast()
    path = mgio.write_mg(tmp_path / "a.dcm", image, 0.07, "L", "MLO", omit=omit, patient_orientation=orientation)
    if description:

        def set_description(ds):
            ds.SeriesDescription = description

        _rewrite(path, set_description)
    m = mgio.read_mammogram(path)
    assert (m.view, m.view_source) == expected


def test_view_from_protocol_name_then_unknown(tmp_path):
    image, _ = _breast()
    omit = ["ViewCodeSequence", "ViewPosition", "PatientOrientation", "SeriesDescription"]
    path = mgio.write_mg(tmp_path / "a.dcm", image, 0.07, "L", "CC", omit=omit)

    def protocol(ds):
        ds.ProtocolName = "L CC"

    m = mgio.read_mammogram(_rewrite(path, protocol))
    assert (m.view, m.view_source) == ("CC", "ProtocolName")

    def no_text(ds):
        del ds.ProtocolName

    m = mgio.read_mammogram(_rewrite(path, no_text))
    assert (m.view, m.view_source) == (None, "none")
    assert any("view unknown" in w for w in m.warnings)


def test_description_text_does_not_match_inside_words(tmp_path):
    assert mgio._view_from_text("ACCESSION") is None
    assert mgio._view_from_text("XCCL") is None
    assert mgio._view_from_text("RMLO tomo") == "MLO"


# ----------------------------------------------------------------------------- spacing


def test_pixel_spacing_preferred_then_imager_pixel_spacing(tmp_path):
    image, _ = _breast()
    path = mgio.write_mg(tmp_path / "a.dcm", image, 0.07, "L", "CC")

    def distinct(ds):
        ds.PixelSpacing = ["0.065", "0.065"]
        ds.ImagerPixelSpacing = ["0.07", "0.07"]

    m = mgio.read_mammogram(_rewrite(path, distinct))
    assert (m.pixel_spacing_mm, m.spacing_source) == (pytest.approx(0.065), "PixelSpacing")

    def drop_pixel_spacing(ds):
        del ds.PixelSpacing

    m = mgio.read_mammogram(_rewrite(path, drop_pixel_spacing))
    assert (m.pixel_spacing_mm, m.spacing_source) == (pytest.approx(0.07), "ImagerPixelSpacing")
    assert m.warnings == []


def test_missing_spacing_is_none_with_warning_unless_user_gives_it(tmp_path):
    image, _ = _breast()
    path = mgio.write_mg(tmp_path / "a.dcm", image, None, "L", "CC")
    m = mgio.read_mammogram(path)
    assert m.pixel_spacing_mm is None and m.spacing_source == "none"
    assert any("pixel spacing unknown" in w for w in m.warnings)
    m = mgio.read_mammogram(path, pixel_spacing_mm=0.05)
    assert (m.pixel_spacing_mm, m.spacing_source) == (0.05, "user")
    assert not any("spacing" in w for w in m.warnings)


def test_user_spacing_overrides_header_with_warning(tmp_path):
    image, _ = _breast()
    m = mgio.read_mammogram(mgio.write_mg(tmp_path / "a.dcm", image, 0.07, "L", "CC"), pixel_spacing_mm=0.1)
    assert (m.pixel_spacing_mm, m.spacing_source) == (0.1, "user")
    assert any("overrides PixelSpacing 0.07" in w for w in m.warnings)
    with pytest.raises(InputError):
        mgio.read_mammogram(tmp_path / "a.dcm", pixel_spacing_mm=-1.0)


# ----------------------------------------------------------------------------- digitised film, bad input


def test_cbis_ddsm_like_secondary_capture(tmp_path):
    """SC with Modality MG, laterality only in Laterality, view only as PatientOrientation 'MLO', no spacing."""
    image, _ = _breast(laterality="R")
    path = mgio.write_mg(
        tmp_path / "sc.dcm", image, None, "R", "MLO", secondary_capture=True, omit=["SeriesDescription"]
    )
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == mgio.SECONDARY_CAPTURE and ds.Modality == "MG"
    assert "ImageLaterality" not in ds and "ViewPosition" not in ds and "PixelSpacing" not in ds
    m = mgio.read_mammogram(path)
    assert (m.laterality, m.laterality_source) == ("R", "Laterality")
    assert (m.view, m.view_source) == ("MLO", "PatientOrientation")
    assert m.pixel_spacing_mm is None
    assert any("pixel spacing unknown" in w for w in m.warnings)
    assert m.presentation_intent == "FOR PRESENTATION"


def test_non_mammograms_are_rejected_naming_the_file(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not dicom")
    with pytest.raises(InputError, match=r"notes\.txt"):
        mgio.read_mammogram(text)

    image, _ = _breast()
    sc = mgio.write_mg(tmp_path / "ot.dcm", image, None, "L", "CC", secondary_capture=True)
    _rewrite(sc, lambda ds: setattr(ds, "Modality", "OT"))
    with pytest.raises(InputError, match=r"ot\.dcm: Secondary Capture with Modality OT"):
        mgio.read_mammogram(sc)

    ct = mgio.write_mg(tmp_path / "ct.dcm", image, 0.07, "L", "CC")

    def make_ct(ds):
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.Modality = "CT"

    _rewrite(ct, make_ct)
    with pytest.raises(InputError, match=r"ct\.dcm: not a mammogram"):
        mgio.read_mammogram(ct)


def test_collect_inputs_expands_directories(tmp_path):
    image, _ = _breast()
    (tmp_path / "exam" / "sub").mkdir(parents=True)
    a = mgio.write_mg(tmp_path / "exam" / "a.dcm", image, 0.07, "L", "CC")
    b = mgio.write_mg(tmp_path / "exam" / "sub" / "b", image, 0.07, "L", "MLO")
    (tmp_path / "exam" / "README").write_text("skip me")
    files = mgio.collect_inputs([tmp_path / "exam", a])
    assert files == sorted([a.resolve(), b.resolve()])
    with pytest.raises(InputError, match="no such file"):
        mgio.collect_inputs([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no DICOM files"):
        mgio.collect_inputs([tmp_path / "empty"])


def test_reader_does_not_modify_the_input(tmp_path):
    image, _ = _breast()
    path = mgio.write_mg(tmp_path / "a.dcm", image, 0.07, "L", "CC")
    before = path.read_bytes()
    mgio.read_mammogram(path, pixel_spacing_mm=0.1)
    assert path.read_bytes() == before


def test_writer_refuses_to_overwrite(tmp_path):
    image, _ = _breast()
    mgio.write_mg(tmp_path / "a.dcm", image, 0.07, "L", "CC")
    with pytest.raises(InputError, match="exists"):
        mgio.write_mg(tmp_path / "a.dcm", image, 0.07, "L", "CC")


# ----------------------------------------------------------------------------- hanging


def test_hanging_puts_chest_walls_back_to_back(tmp_path):
    """R breasts hang with the chest wall at the right screen edge, L at the left (radiological convention)."""
    left, _ = _breast(laterality="L")
    right, _ = _breast(laterality="R")
    lcc = mgio.read_mammogram(mgio.write_mg(tmp_path / "lcc.dcm", left, 0.07, "L", "CC"))
    rcc = mgio.read_mammogram(mgio.write_mg(tmp_path / "rcc.dcm", right, 0.07, "R", "CC"))
    assert not mgio.hanging_flipped(lcc) and not mgio.hanging_flipped(rcc)
    # An LCC stored mirrored (chest wall on the right, PatientOrientation P\R) is flipped for display.
    mirrored = mgio.read_mammogram(
        mgio.write_mg(tmp_path / "lccm.dcm", left[:, ::-1], 0.07, "L", "CC", patient_orientation="P\\R")
    )
    assert mirrored.chest_wall_side == "right" and mgio.hanging_flipped(mirrored)
    assert np.array_equal(mgio.hanging(mirrored), lcc.image)
    assert not any("chest wall" in w for w in mirrored.warnings)
    order = mgio.hanging_order([lcc, rcc])
    assert order[0] is rcc and order[1] is lcc and order[2] is None


def test_burned_in_label_on_digitised_film_is_outside_the_breast_mask(tmp_path):
    """A digitised film (SC, Modality MG, no spacing) with a burned-in label box and a film border:
    after reading, mammo A's breast mask keeps the breast and rejects the label."""
    from MammoCADLib.breast import segment_breast
    from MammoCADLib.phantom import make_phantom

    p = make_phantom(shape=(1024, 1024), view="CC", laterality="R", seed=3, label_box=True, film_border=True)
    assert p.label_box is not None
    path = mgio.write_mg(tmp_path / "film.dcm", p.image, None, "R", "CC", secondary_capture=True)
    m = mgio.read_mammogram(path)
    assert m.pixel_spacing_mm is None and m.laterality == "R"
    region = segment_breast(mgio.hanging(m), "left" if m.laterality == "L" else "right")  # hanging side
    r0, c0, r1, c1 = p.label_box
    assert not region.mask[r0:r1, c0:c1].any()
    dice = 2 * np.logical_and(region.mask, p.breast_mask).sum() / (region.mask.sum() + p.breast_mask.sum())
    assert dice >= 0.95


def test_three_encodings_give_the_same_detections(tmp_path):
    """M6: one phantom as FOR PRESENTATION, FOR PROCESSING and MONOCHROME1: r >= 0.99 inside the
    breast and the displayed marks agree within one mark (a mark matches within 1 mm)."""
    from MammoCADLib import export
    from MammoCADLib.phantom import make_phantom

    p = make_phantom(shape=(1024, 1024), view="CC", laterality="L", seed=11, n_clusters=1, n_masses=1)
    marks, images = {}, {}
    for kind in ("presentation", "processing", "mono1"):
        m = mgio.read_mammogram(mgio.write_mg(tmp_path / f"{kind}.dcm", p.image, 0.07, "L", "CC", kind=kind))
        item = export.analyze_mammogram(m, backend="cpu")
        images[kind] = m.image
        marks[kind] = [f for f in item.analysis.findings if export.is_displayed(f, "balanced")]
    reference = marks["presentation"]
    assert reference, "the phantom's lesions should be marked"
    for kind in ("processing", "mono1"):
        r = np.corrcoef(images[kind][p.breast_mask], images["presentation"][p.breast_mask])[0, 1]
        assert r >= 0.99, kind

        def matched(a, pool):
            return any(
                b.type == a.type
                and np.hypot(a.center_px[0] - b.center_px[0], a.center_px[1] - b.center_px[1]) * 0.07 <= 1.0
                for b in pool
            )

        unmatched = sum(not matched(a, marks[kind]) for a in reference) + sum(
            not matched(b, reference) for b in marks[kind]
        )
        assert unmatched <= 1, kind
