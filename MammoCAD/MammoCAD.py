"""MammoCAD: mammography CAD on the reading workstation (Slicer module, thin Qt layer).

The analysis lives in MammoCADLib (arrays), its MRML layer in MammoCADLib.mrml, and the outputs in
MammoCADLib.export; this file only binds the panel to them.
"""

import logging
import pathlib
import tempfile
from typing import Annotated

import slicer
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

OPERATING_POINTS = ["high-sensitivity", "balanced", "high-specificity"]
BACKENDS = ["auto", "cpu", "gpu"]


class MammoCAD(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MammoCAD")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Quantification")]
        self.parent.dependencies = ["QuantGPUCompute"]
        self.parent.contributors = ["QuantGPU developers"]
        self.parent.helpText = _(
            "Mammography CAD without model downloads: breast and pectoral masks, percent density (PD %) "
            "with a PD-derived category a-d (not a BI-RADS assessment), calcification clusters and masses "
            "with scores. Every candidate is kept; the operating point (high-sensitivity, balanced, "
            "high-specificity) selects the marks shown. Input: DICOM MG For Presentation / For Processing "
            "or Secondary Capture with Modality MG. Pixel spacing in mm comes from PixelSpacing, then "
            "ImagerPixelSpacing, then the value entered here (0 = header only); without any, areas in cm2 "
            "are not reported. Mark positions are (row, column) of the stored pixel matrix. Outputs: "
            "Mammography CAD SR (TID 4000), DICOM SEG, PNG/PDF overview, JSON. Runs on the GPU (CuPy) "
            "when available, otherwise on the CPU with the same results."
        )
        self.parent.acknowledgementText = _(
            "Part of QuantGPU. Methods follow published classical CAD (Karssemeijer and te Brake 1996; "
            "OpenBreast, Pertuz 2019) re-implemented from their descriptions; no third-party code or "
            "model weights are included."
        )


@parameterNodeWrapper
class MammoCADParameterNode:
    """Panel parameters. pixelSpacingMm 0 means: use the header spacing only."""

    inputPath: pathlib.Path
    outputDirectory: pathlib.Path
    operatingPoint: Annotated[str, Choice(OPERATING_POINTS)] = "balanced"
    pixelSpacingMm: Annotated[float, WithinRange(0.0, 1.0)] = 0.0
    backend: Annotated[str, Choice(BACKENDS)] = "auto"
    showDensityOverlay: bool = True
    writeOutputs: bool = True


class MammoCADWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._examNodes = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MammoCAD.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MammoCADLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        # activated: only the user's choice (connectGui refills the combo box, which fires currentTextChanged)
        self.ui.operatingPointComboBox.connect("activated(int)", self.onOperatingPointActivated)
        self.ui.densityOverlayCheckBox.connect("toggled(bool)", self.onDensityOverlayToggled)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()
        self._setParameterNode(None)

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self._setParameterNode(None)

    def onSceneStartClose(self, caller, event) -> None:
        self._setParameterNode(None)
        self._examNodes = None

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self._setParameterNode(MammoCADParameterNode(self.logic.getParameterNode()))

    def _setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    def onApplyButton(self) -> None:
        if not ensurePythonPackages():
            return
        with slicer.util.tryWithErrorDisplay(_("MammoCAD failed."), waitCursor=True):
            p = self._parameterNode
            # an empty path line edit reads as Path("") == Path("."): the application's working directory,
            # which collect_inputs would search recursively
            if str(p.inputPath) in ("", "."):
                raise ValueError(_("Choose a mammogram file or a folder of mammograms."))
            outputDirectory = (
                str(p.outputDirectory) if p.writeOutputs and str(p.outputDirectory) not in ("", ".") else None
            )
            result, self._examNodes = self.logic.process(
                str(p.inputPath),
                operatingPoint=p.operatingPoint,
                pixelSpacingMm=p.pixelSpacingMm or None,
                backend=p.backend,
                outputDirectory=outputDirectory,
                progress=self._progress,
            )
            self.onDensityOverlayToggled(p.showDensityOverlay)
            self.ui.resultsLabel.text = result["summary"]

    def onOperatingPointActivated(self, index) -> None:
        name = self.ui.operatingPointComboBox.itemText(index)
        if self._examNodes is None or name not in OPERATING_POINTS:
            return
        with slicer.util.tryWithErrorDisplay(_("Could not change the operating point."), waitCursor=True):
            visible = self.logic.setOperatingPoint(self._examNodes, name)
            self.ui.resultsLabel.text = _("{count} mark(s) shown at the {name} operating point").format(
                count=visible, name=name
            )

    def onDensityOverlayToggled(self, on) -> None:
        if self._examNodes is None:
            return
        self.logic.setDensityOverlayVisible(self._examNodes, bool(on))

    def _progress(self, fraction, text) -> None:
        self.ui.resultsLabel.text = f"{100 * fraction:.0f} % {text}"
        slicer.app.processEvents()


class MammoCADLogic(ScriptedLoadableModuleLogic):
    """Thin: reads and analyses through MammoCADLib, builds nodes through MammoCADLib.mrml."""

    def getParameterNode(self):
        return ScriptedLoadableModuleLogic.getParameterNode(self)

    def process(
        self,
        inputPath,
        operatingPoint="balanced",
        pixelSpacingMm=None,
        backend="auto",
        outputDirectory=None,
        progress=None,
        context=None,
    ):
        """Analyse every mammogram under ``inputPath``; return (result JSON dict, MammoExamNodes)."""
        from MammoCADLib import export, mrml
        from quantgpu.slicer_env import slicer_context

        export.check_operating_point(operatingPoint)
        items = export.analyze_exam([inputPath], pixel_spacing_mm=pixelSpacingMm, backend=backend, progress=progress)
        backendName = items[0].analysis.backend if items else backend
        nodes = mrml.load_exam(context or slicer_context(), items, operatingPoint)
        if outputDirectory:
            export.write_outputs(outputDirectory, items, operatingPoint, backendName)
        result = export.result_json(items, operatingPoint, backendName)
        logging.info("MammoCAD: %s", result["summary"])
        return result, nodes

    def setOperatingPoint(self, examNodes, operatingPoint, context=None):
        from MammoCADLib import mrml
        from quantgpu.slicer_env import slicer_context

        return mrml.set_operating_point(context or slicer_context(), examNodes, operatingPoint)

    def setDensityOverlayVisible(self, examNodes, visible, context=None):
        from MammoCADLib import mrml
        from quantgpu.slicer_env import slicer_context

        mrml.set_density_overlay(context or slicer_context(), examNodes, visible)


class MammoCADTest(ScriptedLoadableModuleTest):
    """Runs the same scenarios as pytest (MammoCADLib.scenarios) in the running application."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        from MammoCADLib import scenarios
        from quantgpu.slicer_env import slicer_context

        for scenario in scenarios.ALL:
            self.setUp()
            self.delayDisplay(f"MammoCAD scenario: {scenario.__name__}")
            with tempfile.TemporaryDirectory() as workdir:
                scenario(slicer_context(), pathlib.Path(workdir))
        self.delayDisplay("MammoCAD scenarios passed")
