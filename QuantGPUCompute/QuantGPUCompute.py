"""Hidden module that ships QuantGPU's shared package (``quantgpu``) inside Slicer.

The analysis modules declare ``parent.dependencies = ["QuantGPUCompute"]`` so that
Slicer loads this module, and with it the compute backend, the DICOM/NRRD input,
the DICOM writers and the rendering helpers, before them.
"""

import logging

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
)


class QuantGPUCompute(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("QuantGPU Compute")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Quantification")]
        self.parent.dependencies = []
        self.parent.contributors = ["QuantGPU developers"]
        self.parent.hidden = True
        self.parent.helpText = _(
            "Shared compute backend of QuantGPU: runs the analyses on the GPU through CuPy when a CUDA "
            "device is usable, otherwise on the CPU through NumPy/SciPy with the same results. "
            "Set the environment variable QUANTGPU_BACKEND to cpu or gpu to override the choice."
        )
        self.parent.acknowledgementText = _("QuantGPU uses slicer-core, highdicom, pydicom, NumPy, SciPy and CuPy.")


# import name -> pip requirement of the packages QuantGPU needs beyond Slicer's own (numpy, scipy, pydicom, vtk)
REQUIRED_PACKAGES = {
    "highdicom": "highdicom>=0.28",
    "nrrd": "pynrrd>=1.0",
    "nibabel": "nibabel>=5.2",
    "skimage": "scikit-image>=0.24",
    "fpdf": "fpdf2>=2.7",
}


class QuantGPUComputeLogic(ScriptedLoadableModuleLogic):
    """Reports the backend that analyses will use; installs optional packages with consent."""

    def backendSummary(self) -> str:
        from quantgpu.backend import available_backends, gpu_name, resolve

        backend = resolve("auto")
        gpu = gpu_name()
        return f"backend: {backend.name}; available: {available_backends()}; GPU: {gpu or 'none'}"

    def ensurePythonPackages(self, packages: dict[str, str] = REQUIRED_PACKAGES) -> bool:
        """Install missing packages after asking the user (called from a button, never at import time)."""
        import importlib.util

        missing = [req for name, req in packages.items() if importlib.util.find_spec(name) is None]
        if not missing:
            return True
        if not slicer.util.confirmOkCancelDisplay(
            _("QuantGPU needs these Python packages: {packages}. Install them now?").format(packages=", ".join(missing))
        ):
            return False
        slicer.util.pip_install(missing)
        return True


def ensurePythonPackages() -> bool:
    """For the analysis modules' Run/Score/Export buttons: True when the packages are there (or were
    installed after the user agreed); False when the user declined, and the action should not start."""
    return QuantGPUComputeLogic().ensurePythonPackages()


class QuantGPUComputeTest(ScriptedLoadableModuleTest):
    def runTest(self):
        self.setUp()
        self.test_backend_resolves()

    def test_backend_resolves(self):
        from quantgpu.backend import resolve

        backend = resolve("cpu")
        self.assertEqual(backend.name, "numpy")
        logging.info(QuantGPUComputeLogic().backendSummary())
