"""QuantGPU shared package: compute backend, input/output, DICOM export, rendering.

Shipped inside the hidden QuantGPUCompute Slicer module; the analysis modules
(CalciumScoring, PerfusionAnalysis, MammoCAD) depend on it.
"""

__version__ = "0.1.0"
