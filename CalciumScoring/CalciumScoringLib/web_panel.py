"""CalciumScoring panel of the browser workstation (trame vuetify3 widgets in the side drawer).

The same workflow as the Slicer panel, on the same MRML layer (``mrml.py``): choose a
loaded CT volume (or load a DICOM folder / NRRD from the server, or the sample
phantom), optional artery labels, profile, threshold, minimum area, connectivity,
calibration; Score; results table, risk summary; artery assignment at the crosshair
(Shift + mouse move in a slice view places it), proposal from position, undo/redo;
exports (DICOM SEG/SR, PDF, CSV) into ``ws.output_dir / "calcium"``. State keys start
with ``calcium_``.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("quantgpu.calcium.web")

TITLE = "Calcium Scoring (coronary calcium)"

NO_LABELS = "none"
TABLE_HEADERS = [
    {"title": "Artery", "key": "artery"},
    {"title": "Lesions", "key": "lesions"},
    {"title": "Agatston", "key": "agatston"},
    {"title": "Volume (mm³)", "key": "volume"},
    {"title": "Mass (mg)", "key": "mass"},
]


class CalciumPanel:
    """Panel logic without widgets (plain methods, testable with a real trame state)."""

    def __init__(self, ws):
        from .agatston import PROFILES
        from .mrml import SEGMENT_NAMES

        self.ws = ws
        self.run_result = None  # mrml.CalciumScoringRun of the last Score
        self.session = None  # mrml.ArteryAssignmentSession
        self.headers: dict[str, list] = {}  # volume node ID -> DICOM headers (for SEG/SR)
        s = ws.state
        s.calcium_input = ""
        s.calcium_volumes = []
        s.calcium_volume_id = None
        s.calcium_label_options = [{"title": "No artery labels", "value": NO_LABELS}]
        s.calcium_labels_id = NO_LABELS
        s.calcium_profiles = list(PROFILES)
        s.calcium_profile = "standard"
        s.calcium_threshold = 130.0
        s.calcium_min_area = 1.0
        s.calcium_connectivity = "8"
        s.calcium_kvp = 120.0
        s.calcium_calibration_modes = ["none", "factor", "rods"]
        s.calcium_calibration_mode = "none"
        s.calcium_calibration_factor = 0.8
        s.calcium_rod_hu = 250.0
        s.calcium_water_hu = 0.0
        s.calcium_busy = False
        s.calcium_progress = 0
        s.calcium_rows = []
        s.calcium_headers = TABLE_HEADERS
        s.calcium_summary = ""
        s.calcium_risk = []
        s.calcium_arteries = list(SEGMENT_NAMES)
        s.calcium_artery = "LAD"
        s.calcium_force = False
        s.calcium_exported = []
        self.refresh_nodes()

    # --- inputs ------------------------------------------------------------------------

    def refresh_nodes(self) -> None:
        """Volumes and label nodes of the scene as select items."""
        scene = self.ws.mrml.scene
        volumes, labels = [], [{"title": "No artery labels", "value": NO_LABELS}]
        for n in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
            node = scene.GetNthNodeByClass(n, "vtkMRMLScalarVolumeNode")
            item = {"title": node.GetName(), "value": node.GetID()}
            (labels if node.IsA("vtkMRMLLabelMapVolumeNode") else volumes).append(item)
        for n in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")):
            node = scene.GetNthNodeByClass(n, "vtkMRMLSegmentationNode")
            if node.GetAttribute("QuantGPU.CalciumOutput") != "1":  # not our own output
                labels.append({"title": node.GetName(), "value": node.GetID()})
        s = self.ws.state
        s.calcium_volumes = volumes
        s.calcium_label_options = labels
        ids = [v["value"] for v in volumes]
        if s.calcium_volume_id not in ids:
            s.calcium_volume_id = ids[-1] if ids else None
        if s.calcium_labels_id not in [v["value"] for v in labels]:
            s.calcium_labels_id = NO_LABELS

    def load_input(self) -> None:
        """Load the DICOM folder / NRRD / NIfTI named in ``calcium_input`` (a path on the server)."""
        from quantgpu.errors import InputError

        path = str(self.ws.state.calcium_input or "").strip()
        try:
            if not path:
                raise InputError("give a DICOM folder or an .nrrd/.nii.gz file on the server")
            self._load(Path(path), Path(path).name or "CT")
        except InputError as exc:
            self.ws.notify(f"Calcium scoring: {exc}")

    def load_phantom(self) -> None:
        """Write the digital phantom as a DICOM series in the output folder, load it with its artery labels."""
        from quantgpu.errors import InputError
        from quantgpu.mrml import volume_node_from_array

        from . import phantom

        target = Path(self.ws.output_dir) / "calcium" / "phantom_ct"
        try:
            if not any(target.glob("*.dcm")):
                phantom.write_phantom_dicom(target)
            node = self._load(target, "Calcium phantom")
            _hu, labels, truth = phantom.make_phantom()
            labels_node = volume_node_from_array(
                self.ws.mrml,
                labels,
                truth["spacing"],
                phantom.phantom_ijk_to_lps(),
                "Calcium phantom arteries",
                labelmap=True,
            )
            self.refresh_nodes()
            s = self.ws.state
            s.calcium_volume_id = node.GetID()
            s.calcium_labels_id = labels_node.GetID()
            s.calcium_calibration_mode = "rods"  # the phantom's 200 mg/cm3 rod reads 250 HU, its water 0 HU
            s.calcium_rod_hu, s.calcium_water_hu = 250.0, 0.0
        except InputError as exc:
            self.ws.notify(f"Calcium scoring: {exc}")

    def _load(self, path: Path, name: str):
        from quantgpu.errors import InputError
        from quantgpu.io import load_volume
        from quantgpu.mrml import volume_node_from_volume

        volume = load_volume(path)
        if volume.modality not in (None, "CT"):
            raise InputError(f"is {volume.modality}, not CT", path)
        node = volume_node_from_volume(self.ws.mrml, volume, name)
        self.headers[node.GetID()] = list(volume.headers)
        self.ws.show_volume(node)
        self.refresh_nodes()
        self.ws.state.calcium_volume_id = node.GetID()
        return node

    def _node(self, node_id):
        return self.ws.mrml.scene.GetNodeByID(node_id) if node_id and node_id != NO_LABELS else None

    def parameters(self):
        from .mrml import parameters_from_settings

        s = self.ws.state
        return parameters_from_settings(
            profile=s.calcium_profile,
            threshold_hu=float(s.calcium_threshold),
            min_area_mm2=float(s.calcium_min_area),
            connectivity=int(s.calcium_connectivity),
            kvp=float(s.calcium_kvp),
            calibration_mode=s.calcium_calibration_mode,
            calibration_factor=float(s.calcium_calibration_factor),
            rod_hu=float(s.calcium_rod_hu),
            water_hu=float(s.calcium_water_hu),
        )

    def set_profile(self, profile) -> None:
        """A vendor profile sets the minimum lesion area it implies (Siemens/Canon: 0 mm²)."""
        from .agatston import PROFILES

        if profile in PROFILES:
            self.ws.state.calcium_min_area = float(PROFILES[profile]["min_area_mm2"] or 0.0)

    # --- scoring -----------------------------------------------------------------------

    def score(self) -> None:
        from quantgpu.errors import InputError

        from . import mrml

        s = self.ws.state
        s.calcium_busy = True
        try:
            volume = self._node(s.calcium_volume_id)
            if volume is None:
                raise InputError("load or choose a CT volume first")
            labels = self._labels_node(volume)
            previous = self.run_result if self.run_result and self.run_result.volume_id == volume.GetID() else None

            def progress(fraction, message):
                s.calcium_progress = round(100 * fraction)
                s.flush()

            run = mrml.score_volume_node(
                self.ws.mrml,
                volume,
                labels_node=labels,
                params=self.parameters(),
                backend=self.ws.backend,
                progress=progress,
                segmentation_node=previous.segmentation_node if previous else None,
                table_node=previous.table_node if previous else None,
                parameter_node=previous.parameter_node if previous else None,
            )
            run.segmentation_node.SetAttribute("QuantGPU.CalciumOutput", "1")
            run.volume_id = volume.GetID()
            self.run_result = run
            if self.ws.volume_node is not volume:
                self.ws.show_volume(volume)
            mrml.show_results(self.ws.mrml, volume, run.segmentation_node)
            self._show(run)
        except InputError as exc:
            self.ws.notify(f"Calcium scoring: {exc}")
        finally:
            s.calcium_busy = False

    def _labels_node(self, volume):
        if self.session is not None and self.session.volume_node is volume:
            return self.session.label_node
        return self._node(self.ws.state.calcium_labels_id)

    def _show(self, run) -> None:
        from .mrml import risk_summary, summary_text

        data = run.result.to_json()
        s = self.ws.state
        s.calcium_rows = [
            {
                "artery": row["Artery"],
                "lesions": int(row["Lesions"]),
                "agatston": f"{row['Agatston']:.1f}",
                "volume": f"{row['Volume (mm3)']:.1f}",
                "mass": "n/a" if row["Mass (mg)"] is None else f"{row['Mass (mg)']:.1f}",
            }
            for row in run.rows
        ]
        s.calcium_summary = summary_text(data)
        s.calcium_risk = risk_summary(data).split("\n")
        s.flush()

    # --- artery assignment -------------------------------------------------------------

    def _session(self):
        from quantgpu.errors import InputError

        from .mrml import ArteryAssignmentSession

        s = self.ws.state
        volume = self._node(s.calcium_volume_id)
        if volume is None:
            raise InputError("load or choose a CT volume first")
        threshold = float(s.calcium_threshold)
        if self.session is None or self.session.volume_node is not volume or self.session.threshold_hu != threshold:
            self.session = ArteryAssignmentSession(
                self.ws.mrml, volume, labels_node=self._node(s.calcium_labels_id), threshold_hu=threshold
            )
        return self.session

    def crosshair_ras(self):
        """The crosshair position (RAS), which Shift + mouse move sets in a slice view."""
        crosshair = self.ws.mrml.scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
        if crosshair is None:
            return None
        return list(crosshair.GetCrosshairRAS())

    def assign_at_crosshair(self) -> None:
        from quantgpu.errors import InputError

        try:
            ras = self.crosshair_ras()
            if ras is None:
                raise InputError("no crosshair in the scene")
            change = self._session().assign_at_ras(ras, self.ws.state.calcium_artery)
            self.ws.notify(f"{change.voxel_count} voxels assigned to {self.ws.state.calcium_artery}")
            self.score()
        except InputError as exc:
            self.ws.notify(f"Calcium scoring: {exc}")

    def propose(self) -> None:
        from quantgpu.errors import InputError

        try:
            changes = self._session().propose()
            self.ws.notify(f"{len(changes)} lesions assigned from their position (a proposal: check it)")
            self.score()
        except InputError as exc:
            self.ws.notify(f"Calcium scoring: {exc}")

    def undo(self) -> None:
        if self.session is not None and self.session.undo() is not None:
            self.score()

    def redo(self) -> None:
        if self.session is not None and self.session.redo() is not None:
            self.score()

    # --- exports -----------------------------------------------------------------------

    def export(self, kinds) -> None:
        from quantgpu.errors import InputError

        from .mrml import export_results

        s = self.ws.state
        try:
            if self.run_result is None:
                raise InputError("score a volume first")
            volume = self._node(self.run_result.volume_id)
            written = export_results(
                self.ws.mrml,
                self.run_result,
                volume,
                Path(self.ws.output_dir) / "calcium",
                tuple(kinds),
                headers=self.headers.get(self.run_result.volume_id),
                force=bool(s.calcium_force),
            )
            s.calcium_exported = [*s.calcium_exported, *written.values()]
            self.ws.notify("Written: " + ", ".join(Path(p).name for p in written.values()))
        except InputError as exc:
            self.ws.notify(f"Calcium scoring: {exc}")


def build(ws) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    panel = CalciumPanel(ws)
    ws.calcium_panel = panel
    ws.state.change("calcium_profile")(lambda calcium_profile, **_: panel.set_profile(calcium_profile))

    dense = {"density": "compact", "hide_details": "auto"}
    with v3.VContainer(id="calcium-panel", classes="pa-2"):
        v3.VTextField(
            v_model=("calcium_input",),
            label="DICOM folder or .nrrd/.nii.gz (on the server)",
            id="calcium-input",
            **dense,
        )
        with html.Div(classes="d-flex ga-2 my-1"):
            v3.VBtn("Load", click=panel.load_input, id="calcium-load")
            v3.VBtn("Sample phantom", click=panel.load_phantom, id="calcium-phantom")
            v3.VBtn(icon="mdi-refresh", click=panel.refresh_nodes, size="small", id="calcium-refresh")
        v3.VSelect(
            v_model=("calcium_volume_id",), items=("calcium_volumes",), label="CT volume", id="calcium-volume", **dense
        )
        v3.VSelect(
            v_model=("calcium_labels_id",),
            items=("calcium_label_options",),
            label="Artery labels",
            id="calcium-labels",
            **dense,
        )
        v3.VSelect(
            v_model=("calcium_profile",),
            items=("calcium_profiles",),
            label="Vendor profile",
            id="calcium-profile",
            **dense,
        )
        v3.VTextField(
            v_model_number=("calcium_threshold",),
            type="number",
            label="Threshold (HU, inclusive)",
            id="calcium-threshold",
            **dense,
        )
        v3.VTextField(
            v_model_number=("calcium_min_area",),
            type="number",
            label="Minimum lesion area (mm², inclusive)",
            id="calcium-min-area",
            **dense,
        )
        v3.VSelect(
            v_model=("calcium_connectivity",),
            items=("['8', '4']",),
            label="In-slice connectivity",
            id="calcium-connectivity",
            **dense,
        )
        v3.VTextField(
            v_model_number=("calcium_kvp",), type="number", label="Tube voltage (kVp)", id="calcium-kvp", **dense
        )
        v3.VSelect(
            v_model=("calcium_calibration_mode",),
            items=("calcium_calibration_modes",),
            label="Mass calibration",
            id="calcium-calibration",
            **dense,
        )
        v3.VTextField(
            v_if="calcium_calibration_mode == 'factor'",
            v_model_number=("calcium_calibration_factor",),
            type="number",
            label="c_HA (mg/cm³/HU)",
            **dense,
        )
        with html.Div(v_if="calcium_calibration_mode == 'rods'", classes="d-flex ga-2"):
            v3.VTextField(v_model_number=("calcium_rod_hu",), type="number", label="200 mg/cm³ rod (HU)", **dense)
            v3.VTextField(v_model_number=("calcium_water_hu",), type="number", label="Water (HU)", **dense)
        v3.VBtn(
            "Score",
            click=panel.score,
            loading=("calcium_busy",),
            color="primary",
            block=True,
            classes="my-2",
            id="calcium-score",
        )
        v3.VProgressLinear(v_model=("calcium_progress",), v_show="calcium_busy")
        html.Div("{{ calcium_summary }}", classes="text-body-2 my-1", id="calcium-summary")
        with v3.VList(density="compact", id="calcium-risk"):
            v3.VListItem(v_for="(line, i) in calcium_risk", key="i", title=("line",))
        v3.VDataTable(
            headers=("calcium_headers",),
            items=("calcium_rows",),
            density="compact",
            items_per_page=-1,
            id="calcium-table",
        )
        v3.VDivider(classes="my-2")
        html.Div("Artery assignment (Shift + mouse move in a slice view sets the crosshair)", classes="text-caption")
        v3.VSelect(
            v_model=("calcium_artery",), items=("calcium_arteries",), label="Artery", id="calcium-artery", **dense
        )
        with html.Div(classes="d-flex flex-wrap ga-2 my-1"):
            v3.VBtn("Assign at crosshair", click=panel.assign_at_crosshair, id="calcium-assign")
            v3.VBtn("Propose", click=panel.propose, id="calcium-propose")
            v3.VBtn("Undo", click=panel.undo, id="calcium-undo")
            v3.VBtn("Redo", click=panel.redo, id="calcium-redo")
        v3.VDivider(classes="my-2")
        v3.VCheckbox(v_model=("calcium_force",), label="Overwrite existing files", **dense)
        with html.Div(classes="d-flex flex-wrap ga-2"):
            v3.VBtn("SEG", click=(panel.export, "[['seg']]"), id="calcium-export-seg")
            v3.VBtn("SR", click=(panel.export, "[['sr']]"), id="calcium-export-sr")
            v3.VBtn("PDF", click=(panel.export, "[['pdf']]"), id="calcium-export-pdf")
            v3.VBtn("CSV", click=(panel.export, "[['csv']]"), id="calcium-export-csv")
        with v3.VList(density="compact", id="calcium-exported"):
            v3.VListItem(v_for="(path, i) in calcium_exported", key="i", title=("path",))
