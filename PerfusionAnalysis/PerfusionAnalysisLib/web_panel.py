"""PerfusionAnalysis panel of the browser workstation (trame vuetify3 widgets in the side drawer).

The same workflow as the Slicer panel, on the same MRML layer (``mrml.py``): load a 4-D series from
the server (DICOM folder, 4-D NRRD/NIfTI) or the CT perfusion phantom, or choose a loaded volume
sequence; modality, deconvolution method or DCE model, k_H, density, frame interval; AIF/VOF from
a label volume, a segmentation, points placed at the crosshair (Shift + mouse move in a slice view
places it) or automatic; Run (in a worker thread, with progress and Cancel); summary line and table;
the maps in the slice views with the core/penumbra segmentation, Tmax volume-rendered in 3-D;
exports (DICOM Parametric Maps, SEG, NRRD) into ``ws.output_dir / "perfusion"``. State keys start
with ``perf_``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("quantgpu.perfusion.web")

TITLE = "Perfusion Analysis (CT/MR perfusion)"

AUTOMATIC = "auto"
OUTPUT_ATTRIBUTE = "QuantGPU.PerfusionOutput"
AIF_POINTS_NAME = "AIF points"
TABLE_HEADERS = [
    {"title": "Quantity", "key": "quantity"},
    {"title": "Value", "key": "value"},
    {"title": "Unit", "key": "unit"},
]


@dataclass
class _Request:
    """What one run needs, read from the scene on the server's thread before the worker starts."""

    series: Any
    modality: str
    method: str
    aif_mask: Any
    vof_mask: Any
    options: dict
    input_id: str
    prefix: str


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.4g}"


class PerfusionPanel:
    """Panel logic without widgets (plain methods, testable with a real trame state)."""

    def __init__(self, ws):
        from .deconvolution import DENSITY_DEFAULT, KH_DEFAULT, METHODS
        from .pipeline import DCE_DEFAULTS, DCE_MODELS, MODALITIES

        self.ws = ws
        self.nodes = None  # mrml.PerfusionNodes of the last run
        self.input_id: str | None = None  # sequence node analysed by the last run
        self.headers: dict[str, list] = {}  # sequence node ID -> DICOM headers of one frame (for PM/SEG)
        self._cancel = threading.Event()
        self.task = None  # asyncio task of the last run started by the Run button
        self._fraction = 0.0
        s = ws.state
        s.perf_input = ""
        s.perf_inputs = []
        s.perf_input_id = None
        s.perf_modalities = list(MODALITIES)
        s.perf_modality = "ct"
        s.perf_methods = list(METHODS)
        s.perf_method = "csvd"
        s.perf_models = list(DCE_MODELS)
        s.perf_model = "tofts"
        s.perf_kh = KH_DEFAULT
        s.perf_density = DENSITY_DEFAULT
        s.perf_frame_interval = 0.0
        s.perf_te = 0.0
        s.perf_flip_angle = 0.0
        s.perf_tr = 0.0
        s.perf_t1 = DCE_DEFAULTS["t1_s"]
        s.perf_motion = False
        s.perf_mask_options = [{"title": "Automatic", "value": AUTOMATIC}]
        s.perf_aif_id = AUTOMATIC
        s.perf_vof_id = AUTOMATIC
        s.perf_busy = False
        s.perf_progress = 0
        s.perf_summary = ""
        s.perf_rows = []
        s.perf_headers = TABLE_HEADERS
        s.perf_maps = []
        s.perf_map = None
        s.perf_force = False
        s.perf_exported = []
        self.refresh_nodes()

    # --- inputs ------------------------------------------------------------------------

    def refresh_nodes(self) -> None:
        """Volume sequences and AIF/VOF candidates (label volumes, segmentations, point lists) as select items."""
        scene = self.ws.mrml.scene

        def nodes(cls):
            return [scene.GetNthNodeByClass(n, cls) for n in range(scene.GetNumberOfNodesByClass(cls))]

        sequences = [{"title": n.GetName(), "value": n.GetID()} for n in nodes("vtkMRMLSequenceNode")]
        masks = [{"title": "Automatic", "value": AUTOMATIC}]
        for cls in ("vtkMRMLLabelMapVolumeNode", "vtkMRMLSegmentationNode", "vtkMRMLMarkupsFiducialNode"):
            masks += [
                {"title": n.GetName(), "value": n.GetID()}
                for n in nodes(cls)
                if n.GetAttribute(OUTPUT_ATTRIBUTE) != "1"  # not our own core/penumbra output
            ]
        s = self.ws.state
        s.perf_inputs = sequences
        s.perf_mask_options = masks
        ids = [v["value"] for v in sequences]
        if s.perf_input_id not in ids:
            s.perf_input_id = ids[-1] if ids else None
        mask_ids = [v["value"] for v in masks]
        if s.perf_aif_id not in mask_ids:
            s.perf_aif_id = AUTOMATIC
        if s.perf_vof_id not in mask_ids:
            s.perf_vof_id = AUTOMATIC

    def load_input(self) -> None:
        """Load the 4-D series named in ``perf_input`` (a DICOM folder or a 4-D .nrrd/.nii on the server)."""
        from quantgpu.errors import InputError

        path = str(self.ws.state.perf_input or "").strip()
        try:
            if not path:
                raise InputError("give a DICOM folder or a 4-D .nrrd/.nii.gz file on the server")
            self._load(Path(path), Path(path).name or "Perfusion series")
        except InputError as exc:
            self.ws.notify(f"Perfusion: {exc}")

    def load_phantom(self) -> None:
        """Write the CT perfusion stroke phantom as a 4-D DICOM series in the output folder and load it."""
        from quantgpu.errors import InputError

        from . import phantom

        target = Path(self.ws.output_dir) / "perfusion" / "phantom"
        try:
            if not any((target / "dicom").glob("*.dcm")):
                phantom.write_phantom(target, nrrd=False, force=True)
            self._load(target / "dicom", "Perfusion phantom")
            self.ws.state.perf_modality = "ct"
        except InputError as exc:
            self.ws.notify(f"Perfusion: {exc}")

    def _load(self, path: Path, name: str):
        from quantgpu.io import load_series_4d
        from quantgpu.mrml import sequence_node_from_series4d

        interval = float(self.ws.state.perf_frame_interval or 0.0) or None
        series = load_series_4d(path, frame_interval_s=interval)
        nodes = sequence_node_from_series4d(self.ws.mrml, series, name=name)
        self.headers[nodes.sequence.GetID()] = list(series.headers)
        if nodes.proxy is not None:
            self.ws.show_volume(nodes.proxy, volume_rendering=False)  # 3-D view is kept for the Tmax map
        self.refresh_nodes()
        self.ws.state.perf_input_id = nodes.sequence.GetID()
        return nodes.sequence

    def _node(self, node_id):
        return self.ws.mrml.scene.GetNodeByID(node_id) if node_id and node_id != AUTOMATIC else None

    # --- AIF placement -------------------------------------------------------------------

    def crosshair_ras(self):
        """The crosshair position (RAS), which Shift + mouse move sets in a slice view."""
        crosshair = self.ws.mrml.scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
        return None if crosshair is None else list(crosshair.GetCrosshairRAS())

    def aif_points_node(self):
        """The point list that AIF clicks go to (created on first use, kept in the scene)."""
        scene = self.ws.mrml.scene
        node = scene.GetFirstNodeByName(AIF_POINTS_NAME)
        if node is None or not node.IsA("vtkMRMLMarkupsFiducialNode"):
            node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", AIF_POINTS_NAME)
            node.CreateDefaultDisplayNodes()
        return node

    def place_aif_at_crosshair(self) -> None:
        """Add the crosshair position to the AIF points; the run turns each point into a 3 x 3 voxel region."""
        from quantgpu.errors import InputError

        try:
            ras = self.crosshair_ras()
            if ras is None:
                raise InputError("no crosshair in the scene")
            node = self.aif_points_node()
            node.AddControlPointWorld(*ras)
            self.refresh_nodes()
            self.ws.state.perf_aif_id = node.GetID()
            count = node.GetNumberOfControlPoints()
            self.ws.notify(f"AIF point {count} at RAS ({ras[0]:.1f}, {ras[1]:.1f}, {ras[2]:.1f}) mm")
        except InputError as exc:
            self.ws.notify(f"Perfusion: {exc}")

    def clear_aif_points(self) -> None:
        node = self.ws.mrml.scene.GetFirstNodeByName(AIF_POINTS_NAME)
        if node is not None:
            node.RemoveAllControlPoints()
        if self.ws.state.perf_aif_id == (node.GetID() if node is not None else None):
            self.ws.state.perf_aif_id = AUTOMATIC

    # --- analysis ------------------------------------------------------------------------

    def _request(self) -> _Request:
        from quantgpu.errors import InputError

        from .mrml import analysis_options, input_series, mask_from_input

        s = self.ws.state
        node = self._node(s.perf_input_id)
        if node is None:
            raise InputError("load or choose a 4-D series first")
        series = input_series(self.ws.mrml, node, float(s.perf_frame_interval or 0.0) or None)
        options = analysis_options(
            kh=float(s.perf_kh),
            density=float(s.perf_density),
            model=s.perf_model,
            te_s=float(s.perf_te or 0.0),
            flip_angle_deg=float(s.perf_flip_angle or 0.0),
            tr_s=float(s.perf_tr or 0.0),
            t1_s=float(s.perf_t1),
            motion_correction=bool(s.perf_motion),
            backend=self.ws.backend,
        )
        return _Request(
            series=series,
            modality=s.perf_modality,
            method=s.perf_method,
            aif_mask=mask_from_input(self._node(s.perf_aif_id), series),
            vof_mask=mask_from_input(self._node(s.perf_vof_id), series),
            options=options,
            input_id=node.GetID(),
            prefix=node.GetName(),
        )

    def _analyze(self, request: _Request):
        """The pipeline on the worker thread: arrays only, no MRML."""
        from .pipeline import analyze

        def progress(fraction: float) -> None:
            self._fraction = float(fraction)

        return analyze(
            request.series,
            request.modality,
            request.method,
            aif_mask=request.aif_mask,
            vof_mask=request.vof_mask,
            progress=progress,
            cancel=self._cancel.is_set,
            **request.options,
        )

    def start_run(self) -> None:
        """The Run button: the analysis becomes a task of the server's loop (``self.task``) and the click
        returns at once, because the server handles one client message at a time (Cancel would wait)."""
        from trame.app.asynchronous import create_task

        self.task = create_task(self.run())

    async def run(self) -> None:
        """Analyse the chosen series in a worker thread; progress and Cancel stay live meanwhile."""
        from quantgpu.errors import QuantGPUError

        s = self.ws.state
        if s.perf_busy:
            return
        self._cancel.clear()
        self._fraction = 0.0
        with s:
            s.perf_busy, s.perf_progress = True, 0
        try:
            request = self._request()
            future = asyncio.get_running_loop().run_in_executor(None, functools.partial(self._analyze, request))
            while not future.done():
                await asyncio.wait({future}, timeout=0.2)
                with s:
                    s.perf_progress = round(100 * self._fraction)
            self._show_result(future.result(), request)
        except QuantGPUError as exc:  # bad input, or Cancelled
            self.ws.notify(f"Perfusion: {exc}")
        finally:
            with s:
                s.perf_busy = False

    def cancel(self) -> None:
        """Ask the running analysis to stop at its next check (between stages and voxel chunks)."""
        if self.ws.state.perf_busy:
            self._cancel.set()

    def _show_result(self, result, request: _Request) -> None:
        from .mrml import add_result_nodes, summary_columns, summary_text

        if self.nodes is not None:  # the previous run stays in the scene, hidden from the 3-D view
            if self.nodes.volume_rendering is not None:
                self.nodes.volume_rendering.SetVisibility(False)
            if self.nodes.segmentation is not None:
                self.nodes.segmentation.GetDisplayNode().SetVisibility(False)
        if not result.headers:
            result.headers = list(self.headers.get(request.input_id, []))
        nodes = add_result_nodes(self.ws.mrml, result, request.prefix, volume_rendering="tmax" in result.maps)
        for node in (*nodes.maps.values(), nodes.segmentation, nodes.curves_table, nodes.summary_table):
            if node is not None:
                node.SetAttribute(OUTPUT_ATTRIBUTE, "1")
        self.nodes, self.input_id = nodes, request.input_id
        columns = summary_columns(result)
        s = self.ws.state
        s.perf_rows = [
            {"quantity": q, "value": _format_value(v), "unit": u}
            for q, v, u in zip(columns["quantity"], columns["value"], columns["unit"])
        ]
        s.perf_summary = summary_text(result)
        s.perf_maps = list(result.maps)
        s.perf_map = "tmax" if "tmax" in result.maps else next(iter(result.maps))
        s.perf_progress = 100
        self.show_map(s.perf_map)
        self.refresh_nodes()

    def show_map(self, name) -> None:
        """Show map ``name`` of the last run in the slice views (with the core/penumbra outlines)."""
        if self.nodes is None or name not in self.nodes.maps:
            return
        self.ws.show_volume(self.nodes.maps[name], volume_rendering=False)

    # --- exports -----------------------------------------------------------------------

    def export(self, kinds) -> None:
        from quantgpu.errors import InputError

        from .mrml import export_results

        s = self.ws.state
        try:
            if self.nodes is None:
                raise InputError("run the analysis first")
            written = export_results(
                self.nodes.result,
                Path(self.ws.output_dir) / "perfusion",
                tuple(kinds),
                headers=self.headers.get(self.input_id),
                force=bool(s.perf_force),
            )
            s.perf_exported = [*s.perf_exported, *written.values()]
            self.ws.notify("Written: " + ", ".join(Path(p).name for p in written.values()))
        except InputError as exc:
            self.ws.notify(f"Perfusion: {exc}")


def build(ws) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    panel = PerfusionPanel(ws)
    ws.perfusion_panel = panel
    ws.state.change("perf_map")(lambda perf_map, **_: panel.show_map(perf_map))

    dense = {"density": "compact", "hide_details": "auto"}
    with v3.VContainer(id="perf-panel", classes="pa-2"):
        v3.VTextField(
            v_model=("perf_input",), label="DICOM folder or 4-D .nrrd/.nii.gz (on the server)", id="perf-input", **dense
        )
        with html.Div(classes="d-flex ga-2 my-1"):
            v3.VBtn("Load", click=panel.load_input, id="perf-load")
            v3.VBtn("Perfusion phantom", click=panel.load_phantom, id="perf-phantom")
            v3.VBtn(icon="mdi-refresh", click=panel.refresh_nodes, size="small", id="perf-refresh")
        v3.VSelect(v_model=("perf_input_id",), items=("perf_inputs",), label="4-D series", id="perf-series", **dense)
        v3.VSelect(
            v_model=("perf_modality",), items=("perf_modalities",), label="Modality", id="perf-modality", **dense
        )
        v3.VSelect(
            v_if="perf_modality != 'dce'",
            v_model=("perf_method",),
            items=("perf_methods",),
            label="Deconvolution",
            id="perf-method",
            **dense,
        )
        v3.VSelect(
            v_if="perf_modality == 'dce'",
            v_model=("perf_model",),
            items=("perf_models",),
            label="Kinetic model",
            id="perf-model",
            **dense,
        )
        with html.Div(classes="d-flex ga-2"):
            v3.VTextField(v_model_number=("perf_kh",), type="number", label="k_H", id="perf-kh", **dense)
            v3.VTextField(
                v_model_number=("perf_density",), type="number", label="Density (g/mL)", id="perf-density", **dense
            )
        v3.VTextField(
            v_model_number=("perf_frame_interval",),
            type="number",
            label="Frame interval (s, 0 = from the series)",
            id="perf-frame-interval",
            **dense,
        )
        v3.VTextField(
            v_if="perf_modality == 'dsc'",
            v_model_number=("perf_te",),
            type="number",
            label="Echo time (s, 0 = header)",
            id="perf-te",
            **dense,
        )
        with html.Div(v_if="perf_modality == 'dce'", classes="d-flex ga-2"):
            v3.VTextField(
                v_model_number=("perf_flip_angle",), type="number", label="Flip angle (°, 0 = header)", **dense
            )
            v3.VTextField(v_model_number=("perf_tr",), type="number", label="TR (s, 0 = header)", **dense)
            v3.VTextField(v_model_number=("perf_t1",), type="number", label="T1 (s)", **dense)
        v3.VCheckbox(v_model=("perf_motion",), label="Motion correction", **dense)
        v3.VSelect(v_model=("perf_aif_id",), items=("perf_mask_options",), label="AIF", id="perf-aif", **dense)
        v3.VSelect(
            v_if="perf_modality != 'dce'",
            v_model=("perf_vof_id",),
            items=("perf_mask_options",),
            label="VOF",
            id="perf-vof",
            **dense,
        )
        html.Div("AIF by click: Shift + mouse move in a slice view sets the crosshair", classes="text-caption")
        with html.Div(classes="d-flex ga-2 my-1"):
            v3.VBtn("AIF at crosshair", click=panel.place_aif_at_crosshair, id="perf-aif-click")
            v3.VBtn("Clear AIF points", click=panel.clear_aif_points, id="perf-aif-clear")
        with html.Div(classes="d-flex ga-2 my-2"):
            v3.VBtn("Run", click=panel.start_run, loading=("perf_busy",), color="primary", id="perf-run")
            v3.VBtn("Cancel", click=panel.cancel, disabled=("!perf_busy",), id="perf-cancel")
        v3.VProgressLinear(v_model=("perf_progress",), v_show="perf_busy")
        html.Div("{{ perf_summary }}", classes="text-body-2 my-1", id="perf-summary")
        v3.VSelect(v_model=("perf_map",), items=("perf_maps",), label="Map shown", id="perf-map", **dense)
        v3.VDataTable(
            headers=("perf_headers",), items=("perf_rows",), density="compact", items_per_page=-1, id="perf-table"
        )
        v3.VDivider(classes="my-2")
        v3.VCheckbox(v_model=("perf_force",), label="Overwrite existing files", **dense)
        with html.Div(classes="d-flex flex-wrap ga-2"):
            v3.VBtn("Parametric Maps", click=(panel.export, "[['pm']]"), id="perf-export-pm")
            v3.VBtn("SEG", click=(panel.export, "[['seg']]"), id="perf-export-seg")
            v3.VBtn("NRRD", click=(panel.export, "[['nrrd']]"), id="perf-export-nrrd")
        with v3.VList(density="compact", id="perf-exported"):
            v3.VListItem(v_for="(path, i) in perf_exported", key="i", title=("path",))
