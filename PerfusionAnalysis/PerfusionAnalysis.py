"""PerfusionAnalysis: CT perfusion, MR DSC and MR DCE maps, stroke core/penumbra in 3D Slicer.

A thin Qt layer: the maths lives in ``PerfusionAnalysisLib.pipeline`` (deconvolution, DCE fits,
stroke summary), the MRML glue in ``PerfusionAnalysisLib.mrml`` (shared with the web workstation,
the CLI and the tests).
"""

import logging
import os
import pathlib
from typing import Annotated, Optional, Union

import slicer
import vtk
from slicer import (
    vtkMRMLLabelMapVolumeNode,
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLSequenceBrowserNode,
    vtkMRMLSequenceNode,
)
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from QuantGPUCompute import ensurePythonPackages  # the hidden provider module (parent.dependencies)

# The choices of PerfusionAnalysisLib.pipeline / deconvolution (MODALITIES, METHODS, DCE_MODELS),
# spelled out because the parameter node is declared before any PerfusionAnalysisLib import.
MODALITIES = ["ct", "dsc", "dce"]
METHODS = ["ssvd", "csvd", "osvd", "tikhonov"]
DCE_MODELS = ["tofts", "extended-tofts", "patlak"]
BACKENDS = ["auto", "cpu", "gpu"]
AIF_POINTS_NAME = "AIF points"
SAMPLE_NAME = "PerfusionPhantom"
# Node types of the 4-D input (a sequence, its browser, or the proxy volume Slicer shows) and of the AIF/VOF.
SeriesNode = Union[vtkMRMLSequenceNode, vtkMRMLSequenceBrowserNode, vtkMRMLScalarVolumeNode]  # noqa: UP007
MaskNode = Union[vtkMRMLLabelMapVolumeNode, vtkMRMLSegmentationNode, vtkMRMLMarkupsFiducialNode]  # noqa: UP007


#
# PerfusionAnalysis
#


class PerfusionAnalysis(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Perfusion Analysis")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Quantification")]
        self.parent.dependencies = ["QuantGPUCompute"]
        self.parent.contributors = ["QuantGPU developers"]
        self.parent.helpText = _(
            "Perfusion maps from a 4-D series (a volume sequence): CT perfusion (HU), MR DSC (signal, "
            "converted to ΔR2* with the echo time) and MR DCE (signal, converted to concentration with "
            "T1, flip angle and TR).<br>"
            "<b>CT / DSC</b>: model-free deconvolution (sSVD, cSVD, oSVD, Tikhonov) of the tissue curves "
            "with the arterial input function (AIF). CBF in mL/100 g/min, CBV in mL/100 g (with the "
            "haematocrit factor k_H and the tissue density), MTT, Tmax and TTP in s. Stroke summary: core "
            "= rCBF &lt; 30 % of the contralateral hemisphere's mean; hypoperfusion = Tmax &gt; 6 s "
            "(also 4, 8, 10 s); mismatch volume and ratio; DEFUSE 3 (core &lt; 70 mL, mismatch &gt; 15 mL, "
            "ratio &gt; 1.8) and EXTEND (core &lt;= 70 mL, ratio &gt; 1.2, mismatch &gt; 10 mL).<br>"
            "<b>DCE</b>: Tofts, extended Tofts or Patlak fits; Ktrans and kep in /min, ve and vp "
            "(fractions). Without an AIF mask the Parker population AIF is used.<br>"
            "<b>AIF / VOF</b>: automatic, a label volume or segmentation, or points placed by clicking "
            "('Place AIF'): each point selects a 3 x 3 voxel square on its slice.<br>"
            "Outputs: one scalar volume per map (colour table, units), the core/penumbra segmentation, "
            "the curves as a plot, a summary table; Tmax is volume-rendered in 3-D. Exports: DICOM "
            "Parametric Maps and SEG (series loaded from DICOM), NRRD. The input is never modified. "
            "Research use only; not a medical device."
        )
        self.parent.acknowledgementText = _(
            "Conventions follow Østergaard et al. (MRM 1996), Wu et al. (MRM 2003), Tofts et al. (JMRI 1999), "
            "the DEFUSE 3 (Albers 2018) and EXTEND (Ma 2019) trial criteria. QuantGPU uses slicer-core, "
            "highdicom, pydicom, NumPy, SciPy and CuPy."
        )
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """Register the CT perfusion stroke phantom: generated into Slicer's cache on first use, never
    downloaded. Its frames are float32 sums of convolutions, so no fixed checksum is recorded."""
    import SampleData

    from PerfusionAnalysisLib.phantom import write_phantom

    iconsPath = os.path.join(os.path.dirname(__file__), "Resources", "Icons")
    cacheDir = pathlib.Path(slicer.app.cachePath) / "QuantGPU" / "PerfusionAnalysis"
    files = {"series": cacheDir / "phantom_4d.nrrd", "aif": cacheDir / "aif_mask.nrrd"}
    try:
        if not all(path.exists() for path in files.values()):
            write_phantom(cacheDir, dicom=False, nrrd=True, force=True)
    except Exception as exc:  # sample data is a convenience: never break Slicer's start-up
        logging.warning(f"PerfusionAnalysis sample data not registered: {exc}")
        return
    thumbnail = os.path.join(iconsPath, "PerfusionAnalysis.png")
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category="QuantGPU",
        sampleName=SAMPLE_NAME,
        uris=files["series"].resolve().as_uri(),
        fileNames=f"{SAMPLE_NAME}.seq.nrrd",
        nodeNames=SAMPLE_NAME,
        thumbnailFileName=thumbnail,
        loadFileType="SequenceFile",
    )
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category="QuantGPU",
        sampleName=f"{SAMPLE_NAME}AIF",
        uris=files["aif"].resolve().as_uri(),
        fileNames=f"{SAMPLE_NAME}AIF.nrrd",
        nodeNames=f"{SAMPLE_NAME}AIF",
        thumbnailFileName=thumbnail,
        loadFileType="VolumeFile",
        loadFileProperties={"labelmap": True},
    )


#
# PerfusionAnalysisParameterNode
#


@parameterNodeWrapper
class PerfusionAnalysisParameterNode:
    """Panel state. A 0 for the frame interval, echo time, flip angle or TR means: from the series."""

    inputSeries: Optional[SeriesNode]  # noqa: UP045
    modality: Annotated[str, Choice(MODALITIES)] = "ct"
    method: Annotated[str, Choice(METHODS)] = "csvd"
    dceModel: Annotated[str, Choice(DCE_MODELS)] = "tofts"
    kh: Annotated[float, WithinRange(0.1, 2.0)] = 0.73
    density: Annotated[float, WithinRange(0.5, 2.0)] = 1.04
    frameIntervalS: Annotated[float, WithinRange(0.0, 120.0)] = 0.0
    echoTimeS: Annotated[float, WithinRange(0.0, 0.5)] = 0.0
    flipAngleDeg: Annotated[float, WithinRange(0.0, 90.0)] = 0.0
    repetitionTimeS: Annotated[float, WithinRange(0.0, 1.0)] = 0.0
    t1S: Annotated[float, WithinRange(0.1, 5.0)] = 1.4
    aifInput: Optional[MaskNode]  # noqa: UP045
    vofInput: Optional[MaskNode]  # noqa: UP045
    motionCorrection: bool = False
    backend: Annotated[str, Choice(BACKENDS)] = "auto"
    showTmaxIn3D: bool = True
    outputDirectory: pathlib.Path
    forceOverwrite: bool = False


#
# PerfusionAnalysisWidget
#


class PerfusionAnalysisWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._cancelRequested = False
        self._running = False

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/PerfusionAnalysis.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = PerfusionAnalysisLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.runButton.connect("clicked(bool)", self.onRunButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.placeAifButton.connect("toggled(bool)", self.onPlaceAifToggled)
        self.ui.exportPmButton.connect("clicked(bool)", lambda: self.onExport(("pm",)))
        self.ui.exportSegButton.connect("clicked(bool)", lambda: self.onExport(("seg",)))
        self.ui.exportNrrdButton.connect("clicked(bool)", lambda: self.onExport(("nrrd",)))

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.stopPlaceAif()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.ui.placeAifButton.checked = False
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)

    def onSceneStartClose(self, caller, event) -> None:
        self.ui.placeAifButton.checked = False
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputSeries:
            firstSequence = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSequenceNode")
            if firstSequence:
                self._parameterNode.inputSeries = firstSequence

    def setParameterNode(self, inputParameterNode: Optional[PerfusionAnalysisParameterNode]) -> None:  # noqa: UP045
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._updateButtons()

    def _updateButtons(self, caller=None, event=None) -> None:
        ready = bool(self._parameterNode and self._parameterNode.inputSeries)
        self.ui.runButton.enabled = ready and not self._running
        self.ui.runButton.toolTip = _("Compute the maps") if ready else _("Select a 4-D series")
        self.ui.cancelButton.enabled = self._running
        self.ui.placeAifButton.enabled = ready
        done = self.logic.lastNodes is not None
        for button in (self.ui.exportPmButton, self.ui.exportSegButton, self.ui.exportNrrdButton):
            button.enabled = done and not self._running
        dce = bool(self._parameterNode) and self._parameterNode.modality == "dce"
        self.ui.methodComboBox.enabled = not dce
        self.ui.dceModelComboBox.enabled = dce

    def _progress(self, fraction: float) -> None:
        self.ui.progressBar.value = round(100 * fraction)
        slicer.app.processEvents()  # keeps Cancel clickable

    def _cancel(self) -> bool:
        return self._cancelRequested

    def onRunButton(self) -> None:
        if not ensurePythonPackages():
            return
        self._cancelRequested, self._running = False, True
        self._updateButtons()
        try:
            with slicer.util.tryWithErrorDisplay(_("Perfusion analysis failed."), waitCursor=True):
                from PerfusionAnalysisLib.deconvolution import Cancelled

                try:
                    nodes = self.logic.process(self._parameterNode, progress=self._progress, cancel=self._cancel)
                except Cancelled:
                    slicer.util.showStatusMessage(_("Perfusion analysis cancelled."), 5000)
                    return
                self._showResults(nodes)
        finally:
            self._running = False
            self._updateButtons()

    def onCancelButton(self) -> None:
        self._cancelRequested = True

    def _showResults(self, nodes) -> None:
        maps = nodes.maps
        shown = next((maps[name] for name in ("tmax", "ktrans") if name in maps), next(iter(maps.values())))
        slicer.util.setSliceViewerLayers(background=shown, fit=True)
        self.ui.summaryLabel.text = self.logic.summary()
        self.ui.resultsTableView.setMRMLTableNode(nodes.summary_table)
        slicer.modules.plots.logic().ShowChartInLayout(nodes.chart)

    # --- AIF placement by click -----------------------------------------------------------

    def onPlaceAifToggled(self, on: bool) -> None:
        if on:
            self.startPlaceAif()
        else:
            self.stopPlaceAif()

    def startPlaceAif(self) -> None:
        """Each click in a slice view adds a point to the AIF point list, which becomes the AIF input."""
        pointsNode = self.logic.aifPointsNode()
        self._parameterNode.aifInput = pointsNode
        selectionNode = slicer.app.applicationLogic().GetSelectionNode()
        selectionNode.SetReferenceActivePlaceNodeClassName("vtkMRMLMarkupsFiducialNode")
        selectionNode.SetActivePlaceNodeID(pointsNode.GetID())
        interactionNode = slicer.app.applicationLogic().GetInteractionNode()
        interactionNode.SetPlaceModePersistence(1)
        interactionNode.SetCurrentInteractionMode(interactionNode.Place)

    def stopPlaceAif(self) -> None:
        interactionNode = slicer.app.applicationLogic().GetInteractionNode()
        if interactionNode.GetCurrentInteractionMode() == interactionNode.Place:
            interactionNode.SetCurrentInteractionMode(interactionNode.ViewTransform)

    # --- exports ---------------------------------------------------------------------------

    def onExport(self, kinds) -> None:
        if not ensurePythonPackages():
            return
        with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
            if str(self._parameterNode.outputDirectory) in ("", "."):
                # an empty path line edit reads as Path("") == Path("."): the application's working directory
                raise ValueError(_("Choose an output folder first."))
            written = self.logic.export(self._parameterNode, kinds)
            slicer.util.showStatusMessage(_("Written: {files}").format(files=", ".join(written.values())), 5000)


#
# PerfusionAnalysisLogic
#


class PerfusionAnalysisLogic(ScriptedLoadableModuleLogic):
    """Delegates to PerfusionAnalysisLib.mrml; keeps the nodes of the last run."""

    def __init__(self, context=None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._context = context
        self.lastNodes = None
        self.lastInput = None

    def getParameterNode(self):
        return PerfusionAnalysisParameterNode(super().getParameterNode())

    def context(self):
        if self._context is None:
            from quantgpu.slicer_env import slicer_context

            self._context = slicer_context()
        return self._context

    def analysisOptions(self, p: PerfusionAnalysisParameterNode) -> dict:
        from PerfusionAnalysisLib.mrml import analysis_options

        return analysis_options(
            kh=p.kh,
            density=p.density,
            model=p.dceModel,
            te_s=p.echoTimeS,
            flip_angle_deg=p.flipAngleDeg,
            tr_s=p.repetitionTimeS,
            t1_s=p.t1S,
            motion_correction=p.motionCorrection,
            backend=p.backend,
        )

    def aifPointsNode(self):
        """The point list that AIF clicks go to (created on first use)."""
        node = slicer.mrmlScene.GetFirstNodeByName(AIF_POINTS_NAME)
        if node is None or not node.IsA("vtkMRMLMarkupsFiducialNode"):
            node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", AIF_POINTS_NAME)
            node.CreateDefaultDisplayNodes()
        return node

    def process(self, p: PerfusionAnalysisParameterNode, progress=None, cancel=None, show: bool = True):
        """Analyse ``p.inputSeries``; add maps, segmentation, curves and summary to the scene."""
        from PerfusionAnalysisLib.mrml import analyze_node, input_sequence_node, input_series

        ctx = self.context()
        sequence = input_sequence_node(ctx, p.inputSeries)
        series = input_series(ctx, sequence, p.frameIntervalS or None)
        if self.lastNodes is not None and self.lastNodes.volume_rendering is not None:
            self.lastNodes.volume_rendering.SetVisibility(False)  # one Tmax rendering in the 3-D view
        self.lastNodes = analyze_node(
            ctx,
            series,
            p.modality,
            p.method,
            aif=p.aifInput,
            vof=p.vofInput,
            prefix=sequence.GetName(),
            volume_rendering=show and p.showTmaxIn3D,
            progress=progress,
            cancel=cancel,
            **self.analysisOptions(p),
        )
        self.lastInput = sequence
        return self.lastNodes

    def summary(self) -> str:
        from PerfusionAnalysisLib.mrml import summary_text

        return summary_text(self.lastNodes.result) if self.lastNodes is not None else ""

    @staticmethod
    def dicomHeaders(sequenceNode) -> list:
        """Slice headers of the first frame of a series loaded from Slicer's DICOM database (none otherwise)."""
        import pydicom

        frame = sequenceNode.GetNthDataNode(0) if sequenceNode.GetNumberOfDataNodes() else None
        uids = ((frame.GetAttribute("DICOM.instanceUIDs") if frame else None) or "").split()
        database = getattr(slicer, "dicomDatabase", None)
        if not uids or database is None:
            return []
        files = [database.fileForInstance(uid) for uid in uids]
        return [pydicom.dcmread(f, stop_before_pixels=True) for f in files if f]

    def export(self, p: PerfusionAnalysisParameterNode, kinds) -> dict:
        from PerfusionAnalysisLib.mrml import export_results
        from quantgpu.errors import InputError

        if self.lastNodes is None:
            raise InputError(_("Run the analysis first."))
        return export_results(
            self.lastNodes.result,
            p.outputDirectory,
            kinds,
            headers=self.dicomHeaders(self.lastInput),
            force=p.forceOverwrite,
        )


#
# PerfusionAnalysisTest
#


class PerfusionAnalysisTest(ScriptedLoadableModuleTest):
    """Runs the same scenarios as pytest (PerfusionAnalysisLib.scenarios) in the application's scene."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_scenarios()
        self.setUp()
        self.test_logic_on_the_phantom()

    def test_scenarios(self):
        from PerfusionAnalysisLib import scenarios
        from quantgpu.slicer_env import slicer_context

        context = slicer_context()
        for scenario in scenarios.ALL_SCENARIOS:
            self.delayDisplay(f"Scenario {scenario.__name__}")
            slicer.mrmlScene.Clear()
            scenario(context)
        self.delayDisplay("Scenarios passed")

    def test_logic_on_the_phantom(self):
        """The module logic on the stroke phantom with its AIF mask: truth volumes from phantom.py."""
        from PerfusionAnalysisLib import phantom
        from quantgpu.io import Series4D, Volume
        from quantgpu.mrml import sequence_node_from_series4d, volume_node_from_array

        logic = PerfusionAnalysisLogic()
        ph = phantom.make_phantom()
        series = Series4D(ph.frames, ph.frame_times_s, Volume(ph.frames[0], ph.spacing, ph.ijk_to_lps, modality="CT"))
        nodes = sequence_node_from_series4d(logic.context(), series, name="Perfusion phantom")
        aif = volume_node_from_array(
            logic.context(), ph.aif_mask, ph.spacing, ph.ijk_to_lps, name="AIF mask", labelmap=True
        )
        p = logic.getParameterNode()
        p.inputSeries = nodes.proxy  # the volume Slicer shows for the sequence
        p.aifInput = aif
        p.method = "osvd"
        progress = []
        result = logic.process(p, progress=progress.append, show=False).result
        # 4 slices x 16 x 24 voxels per zone, 20 mm³ each: core 30.72 mL, Tmax > 6 s three zones.
        self.assertAlmostEqual(result.stroke.volumes_ml["core"], 30.72, places=9)
        self.assertAlmostEqual(result.stroke.volumes_ml["tmax_gt_6s"], 92.16, places=9)
        self.assertEqual(result.stroke.eligibility, {"defuse3": True, "extend": True})
        self.assertIn("DEFUSE 3 +, EXTEND +", logic.summary())
        self.assertEqual(progress[-1], 1.0)
        self.delayDisplay("Logic test passed")
