"""CalciumScoring: coronary artery calcium scoring (Agatston, volume, mass per artery) in 3D Slicer.

A thin Qt layer: the maths lives in ``CalciumScoringLib.agatston``, the MRML glue in
``CalciumScoringLib.mrml`` (shared with the web workstation, the CLI and the tests).
"""

import logging
import os
import pathlib
from typing import Annotated, Optional, Union

import slicer
import vtk
from slicer import (
    vtkMRMLLabelMapVolumeNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
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

PROFILES = ["standard", "siemens", "ge", "philips", "canon"]
ARTERY_CHOICES = ["LM", "LAD", "LCX", "RCA", "Unassigned"]


#
# CalciumScoring
#


class CalciumScoring(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Calcium Scoring")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Quantification")]
        self.parent.dependencies = ["QuantGPUCompute"]
        self.parent.contributors = ["QuantGPU developers"]
        self.parent.helpText = _(
            "Coronary artery calcium scoring on a non-contrast, ECG-gated cardiac CT (values in HU).<br>"
            "<b>Conventions</b> (all selectable, all echoed in the results): candidate voxels HU &gt;= 130 "
            "(inclusive); lesions are 2-D connected components in each axial slice (8-connected by default); "
            "a lesion counts when its area is &gt;= 1.0 mm² (vendor profiles change this rule); the density "
            "weight comes from the lesion's peak HU in that slice (130-199 -&gt; 1, 200-299 -&gt; 2, "
            "300-399 -&gt; 3, &gt;= 400 -&gt; 4); equivalent Agatston = sum(area mm² x weight) x slice "
            "increment / 3 mm, with the increment from the slice positions.<br>"
            "<b>Units</b>: volume in mm³ (counted voxels x voxel volume); mass in mg hydroxyapatite = "
            "c_HA (mg/cm³/HU) x sum(HU x voxel volume in cm³), reported only with a calibration (a factor, "
            "or 200 / (HU of the 200 mg/cm³ rod - HU of water)).<br>"
            "<b>Arteries</b>: an optional label volume (1 LM, 2 LAD, 3 LCX, 4 RCA) or segmentation assigns "
            "each 2-D lesion to the artery holding most of its voxels; 'Assign by click' assigns a whole "
            "connected 3-D lesion; 'Propose from position' is a geometric heuristic to be checked.<br>"
            "Risk: Agatston category (0, 1-10, 11-100, 101-400, &gt;400) and CAC-DRS (A0-A3, /N vessels).<br>"
            "Outputs: segmentation, table, DICOM SEG and Comprehensive 3D SR, PDF report, CSV. "
            "The input volume is never modified. Research use only; not a medical device."
        )
        self.parent.acknowledgementText = _(
            "Conventions follow Agatston et al. (JACC 1990), McCollough et al. (Radiology 2007) and the vendor "
            "parameters collected by van Praagh et al. (Med Phys 2021). QuantGPU uses slicer-core, highdicom, "
            "pydicom, NumPy, SciPy and CuPy."
        )
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """Register the digital calcium phantom (generated into Slicer's cache on first use, never downloaded)."""
    import SampleData

    from CalciumScoringLib.sample_data import sample_sources

    iconsPath = os.path.join(os.path.dirname(__file__), "Resources", "Icons")
    cacheDir = os.path.join(slicer.app.cachePath, "QuantGPU", "CalciumScoring")
    try:
        sources = sample_sources(cacheDir, thumbnail=os.path.join(iconsPath, "CalciumScoring.png"))
    except Exception as exc:  # sample data is a convenience: never break Slicer's start-up
        logging.warning(f"CalciumScoring sample data not registered: {exc}")
        return
    for source in sources:
        SampleData.SampleDataLogic.registerCustomSampleDataSource(**source)


#
# CalciumScoringParameterNode
#


@parameterNodeWrapper
class CalciumScoringParameterNode:
    """Panel state. Result numbers are stored on the same node as CalciumResultJSON (see mrml.py)."""

    inputVolume: vtkMRMLScalarVolumeNode
    arteryLabels: Optional[Union[vtkMRMLLabelMapVolumeNode, vtkMRMLSegmentationNode]]  # noqa: UP007, UP045
    profile: Annotated[str, Choice(PROFILES)] = "standard"
    thresholdHU: Annotated[float, WithinRange(50.0, 1000.0)] = 130.0
    minAreaMm2: Annotated[float, WithinRange(0.0, 10.0)] = 1.0
    connectivity: Annotated[str, Choice(["8", "4"])] = "8"
    kvp: Annotated[float, WithinRange(70.0, 150.0)] = 120.0
    calibrationMode: Annotated[str, Choice(["none", "factor", "rods"])] = "none"
    calibrationFactor: Annotated[float, WithinRange(0.01, 5.0)] = 0.8
    calibrationRodHU: Annotated[float, WithinRange(-1000.0, 3000.0)] = 250.0
    calibrationWaterHU: Annotated[float, WithinRange(-1000.0, 1000.0)] = 0.0
    outputSegmentation: vtkMRMLSegmentationNode
    outputTable: vtkMRMLTableNode
    arteryToAssign: Annotated[str, Choice(ARTERY_CHOICES)] = "LAD"
    outputDirectory: pathlib.Path
    forceOverwrite: bool = False


#
# CalciumScoringWidget
#


class CalciumScoringWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._clickNode = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CalciumScoring.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = CalciumScoringLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.scoreButton.connect("clicked(bool)", self.onScoreButton)
        # activated: the user's choice only, not the items connectGui clears and re-adds (which would
        # overwrite a stored minimum area with the first profile's on every module entry)
        self.ui.profileComboBox.connect("activated(int)", self.onProfileActivated)
        self.ui.assignByClickButton.connect("toggled(bool)", self.onAssignByClickToggled)
        self.ui.proposeButton.connect("clicked(bool)", self.onProposeButton)
        self.ui.undoButton.connect("clicked(bool)", self.onUndoButton)
        self.ui.redoButton.connect("clicked(bool)", self.onRedoButton)
        self.ui.exportSegButton.connect("clicked(bool)", lambda: self.onExport(("seg",)))
        self.ui.exportSrButton.connect("clicked(bool)", lambda: self.onExport(("sr",)))
        self.ui.exportPdfButton.connect("clicked(bool)", lambda: self.onExport(("pdf",)))
        self.ui.exportCsvButton.connect("clicked(bool)", lambda: self.onExport(("csv",)))

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.stopAssignByClick()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.ui.assignByClickButton.checked = False
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)

    def onSceneStartClose(self, caller, event) -> None:
        self.ui.assignByClickButton.checked = False
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode and not firstVolumeNode.IsA("vtkMRMLLabelMapVolumeNode"):
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode: Optional[CalciumScoringParameterNode]) -> None:  # noqa: UP045
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._updateButtons()
            self._showStoredResults()

    def _updateButtons(self, caller=None, event=None) -> None:
        ready = bool(self._parameterNode and self._parameterNode.inputVolume)
        self.ui.scoreButton.enabled = ready
        self.ui.scoreButton.toolTip = _("Score the CT volume") if ready else _("Select a CT volume")
        scored = self.logic.lastRun is not None
        for button in (
            self.ui.exportSegButton,
            self.ui.exportSrButton,
            self.ui.exportPdfButton,
            self.ui.exportCsvButton,
        ):
            button.enabled = scored
        self.ui.assignByClickButton.enabled = ready
        self.ui.proposeButton.enabled = ready
        self.ui.undoButton.enabled = self.logic.canUndo()
        self.ui.redoButton.enabled = self.logic.canRedo()

    def _showStoredResults(self) -> None:
        text = self.logic.riskSummary(self._parameterNode)
        self.ui.riskSummaryLabel.text = text or _("Not scored yet.")
        if self._parameterNode.outputTable:
            self.ui.resultsTableView.setMRMLTableNode(self._parameterNode.outputTable)

    def onProfileActivated(self, index: int) -> None:
        """A vendor profile sets the minimum lesion area it implies (Canon: 3 pixels, shown as 0 mm²)."""
        profile = self.ui.profileComboBox.itemText(index)
        if self._parameterNode and profile in PROFILES:
            self._parameterNode.minAreaMm2 = self.logic.profileMinimumArea(profile)

    def _progress(self, fraction: float, message: str) -> None:
        self.ui.progressBar.value = round(100 * fraction)
        self.ui.progressBar.format = f"{message} (%p%)"
        slicer.app.processEvents()

    def onScoreButton(self) -> None:
        if not ensurePythonPackages():
            return
        with slicer.util.tryWithErrorDisplay(_("Calcium scoring failed."), waitCursor=True):
            self.logic.process(self._parameterNode, progress=self._progress)
            self._afterScoring()

    def _afterScoring(self) -> None:
        run = self.logic.lastRun
        self._parameterNode.outputSegmentation = run.segmentation_node
        self._parameterNode.outputTable = run.table_node
        slicer.util.setSliceViewerLayers(background=self._parameterNode.inputVolume, fit=False)
        self._showStoredResults()
        self._updateButtons()

    # --- click-to-assign -----------------------------------------------------------

    def onAssignByClickToggled(self, on: bool) -> None:
        if on:
            self.startAssignByClick()
        else:
            self.stopAssignByClick()

    def startAssignByClick(self) -> None:
        """Place a markups point per click in any slice view; each point assigns the lesion under it."""
        if self._clickNode is None:
            self._clickNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "CalciumScoring click")
            self._clickNode.SetSaveWithScene(False)
            self._clickNode.CreateDefaultDisplayNodes()
            self._clickNode.GetDisplayNode().SetVisibility(False)
            self.addObserver(self._clickNode, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self.onPointPlaced)
        selectionNode = slicer.app.applicationLogic().GetSelectionNode()
        selectionNode.SetReferenceActivePlaceNodeClassName("vtkMRMLMarkupsFiducialNode")
        selectionNode.SetActivePlaceNodeID(self._clickNode.GetID())
        interactionNode = slicer.app.applicationLogic().GetInteractionNode()
        interactionNode.SetPlaceModePersistence(1)
        interactionNode.SetCurrentInteractionMode(interactionNode.Place)

    def stopAssignByClick(self) -> None:
        interactionNode = slicer.app.applicationLogic().GetInteractionNode()
        if interactionNode.GetCurrentInteractionMode() == interactionNode.Place:
            interactionNode.SetCurrentInteractionMode(interactionNode.ViewTransform)
        if self._clickNode is not None:
            self.removeObserver(
                self._clickNode, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self.onPointPlaced
            )
            slicer.mrmlScene.RemoveNode(self._clickNode)
            self._clickNode = None

    def onPointPlaced(self, caller, event) -> None:
        count = caller.GetNumberOfControlPoints()
        if count == 0:
            return
        ras = [0.0, 0.0, 0.0]
        caller.GetNthControlPointPositionWorld(count - 1, ras)
        caller.RemoveAllControlPoints()
        with slicer.util.tryWithErrorDisplay(_("Could not assign the lesion."), waitCursor=True):
            self.logic.assignAtRAS(self._parameterNode, ras, progress=self._progress)
            self._afterScoring()

    def onProposeButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not propose arteries."), waitCursor=True):
            self.logic.propose(self._parameterNode, progress=self._progress)
            self._afterScoring()

    def onUndoButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Undo failed."), waitCursor=True):
            self.logic.undo(self._parameterNode, progress=self._progress)
            self._afterScoring()

    def onRedoButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Redo failed."), waitCursor=True):
            self.logic.redo(self._parameterNode, progress=self._progress)
            self._afterScoring()

    # --- exports ---------------------------------------------------------------------

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
# CalciumScoringLogic
#


class CalciumScoringLogic(ScriptedLoadableModuleLogic):
    """Delegates to CalciumScoringLib.mrml; keeps the last run and the click-to-assign session."""

    def __init__(self, context=None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._context = context
        self.lastRun = None
        self.session = None

    def getParameterNode(self):
        return CalciumScoringParameterNode(super().getParameterNode())

    def context(self):
        if self._context is None:
            from quantgpu.slicer_env import slicer_context

            self._context = slicer_context()
        return self._context

    @staticmethod
    def profileMinimumArea(profile: str) -> float:
        from CalciumScoringLib.agatston import PROFILES as PROFILE_RULES

        return float(PROFILE_RULES[profile]["min_area_mm2"] or 0.0)

    def scoringParameters(self, p: CalciumScoringParameterNode):
        from CalciumScoringLib.mrml import parameters_from_settings

        return parameters_from_settings(
            profile=p.profile,
            threshold_hu=p.thresholdHU,
            min_area_mm2=p.minAreaMm2,
            connectivity=int(p.connectivity),
            kvp=p.kvp,
            calibration_mode=p.calibrationMode,
            calibration_factor=p.calibrationFactor,
            rod_hu=p.calibrationRodHU,
            water_hu=p.calibrationWaterHU,
        )

    def _labelsNode(self, p: CalciumScoringParameterNode):
        """The artery labels edited by click-to-assign when a session is open, else the chosen input."""
        if self.session is not None and self.session.volume_node is p.inputVolume:
            return self.session.label_node
        return p.arteryLabels

    def process(self, p: CalciumScoringParameterNode, progress=None, show: bool = True):
        """Score ``p.inputVolume``; create or update the output segmentation and table."""
        from CalciumScoringLib.mrml import score_volume_node
        from quantgpu.errors import InputError

        if not p.inputVolume:
            raise InputError(_("Select a CT volume."))
        self.lastRun = score_volume_node(
            self.context(),
            p.inputVolume,
            labels_node=self._labelsNode(p),
            params=self.scoringParameters(p),
            progress=progress,
            segmentation_node=p.outputSegmentation,
            table_node=p.outputTable,
            parameter_node=p.parameterNode,
            show=show,
        )
        return self.lastRun

    def riskSummary(self, p: CalciumScoringParameterNode) -> str:
        from CalciumScoringLib.mrml import risk_summary, stored_result, summary_text

        data = stored_result(p.parameterNode) if p else None
        return f"{summary_text(data)}\n{risk_summary(data)}" if data else ""

    def _session(self, p: CalciumScoringParameterNode):
        from CalciumScoringLib.mrml import ArteryAssignmentSession

        s = self.session
        if s is None or s.volume_node is not p.inputVolume or s.threshold_hu != p.thresholdHU:
            self.session = ArteryAssignmentSession(
                self.context(), p.inputVolume, labels_node=p.arteryLabels, threshold_hu=p.thresholdHU
            )
        return self.session

    def assignAtRAS(self, p: CalciumScoringParameterNode, ras, progress=None):
        self._session(p).assign_at_ras(ras, p.arteryToAssign)
        return self.process(p, progress)

    def propose(self, p: CalciumScoringParameterNode, progress=None):
        self._session(p).propose()
        return self.process(p, progress)

    def undo(self, p: CalciumScoringParameterNode, progress=None):
        if self.session is not None and self.session.undo() is not None:
            return self.process(p, progress)
        return self.lastRun

    def redo(self, p: CalciumScoringParameterNode, progress=None):
        if self.session is not None and self.session.redo() is not None:
            return self.process(p, progress)
        return self.lastRun

    def canUndo(self) -> bool:
        return self.session is not None and self.session.assigner.can_undo

    def canRedo(self) -> bool:
        return self.session is not None and self.session.assigner.can_redo

    @staticmethod
    def dicomHeaders(volumeNode) -> list:
        """Source slice headers of a volume loaded from Slicer's DICOM database (none otherwise)."""
        import pydicom

        uids = (volumeNode.GetAttribute("DICOM.instanceUIDs") or "").split()
        database = getattr(slicer, "dicomDatabase", None)
        if not uids or database is None:
            return []
        files = [database.fileForInstance(uid) for uid in uids]
        return [pydicom.dcmread(f, stop_before_pixels=True) for f in files if f]

    def export(self, p: CalciumScoringParameterNode, kinds) -> dict:
        from CalciumScoringLib.mrml import export_results
        from quantgpu.errors import InputError

        if self.lastRun is None:
            raise InputError(_("Score the volume first."))
        return export_results(
            self.context(),
            self.lastRun,
            p.inputVolume,
            p.outputDirectory,
            kinds,
            headers=self.dicomHeaders(p.inputVolume),
            force=p.forceOverwrite,
        )


#
# CalciumScoringTest
#


class CalciumScoringTest(ScriptedLoadableModuleTest):
    """Runs the same scenarios as pytest (CalciumScoringLib.scenarios) in the application's scene."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_scenarios()
        self.setUp()
        self.test_logic_scores_the_sample_phantom()

    def test_scenarios(self):
        from CalciumScoringLib import scenarios
        from quantgpu.slicer_env import slicer_context

        context = slicer_context()
        for name, scenario in scenarios.SCENARIOS.items():
            self.delayDisplay(f"Scenario {name}")
            slicer.mrmlScene.Clear()
            scenario(context)
        self.delayDisplay("Scenarios passed")

    def test_logic_scores_the_sample_phantom(self):
        """The module logic on the QRM-like phantom: totals from calcium.md §5, then one click-to-assign."""
        import numpy as np

        from CalciumScoringLib import scenarios

        logic = CalciumScoringLogic()
        hu, _labels, centres = scenarios.qrm_phantom()
        volume = scenarios.volume_node(logic.context(), hu, name="QRM phantom")
        p = logic.getParameterNode()
        p.inputVolume = volume
        p.calibrationMode = "factor"
        p.calibrationFactor = 0.8
        run = logic.process(p, show=False)
        total = scenarios.table_as_rows(run.table_node)[-1]
        self.assertEqual(total["Agatston"], 580.0)
        self.assertEqual(total["Volume (mm3)"], 522.0)
        self.assertAlmostEqual(total["Mass (mg)"], 243.6, places=6)
        p.arteryToAssign = "RCA"
        j, i = centres[(250.0, 5)]
        ras = (logic._session(p).ijk_to_ras @ np.array([i, j, 1.0, 1.0]))[:3]
        run = logic.assignAtRAS(p, ras)
        rows = {r["Artery"]: r for r in scenarios.table_as_rows(run.table_node)}
        self.assertEqual(rows["RCA"]["Agatston"], 80.0)  # the 5 mm, 250 HU rod: 20 mm² x 2 x 2 slices
        logic.undo(p)
        rows = {r["Artery"]: r for r in scenarios.table_as_rows(logic.lastRun.table_node)}
        self.assertEqual(rows["RCA"]["Agatston"], 0.0)
        self.delayDisplay("Logic test passed")
