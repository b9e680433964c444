"""Shared pytest fixtures: compute backends and the headless Slicer test bed."""

from __future__ import annotations

import pytest

from quantgpu.backend import gpu_available, resolve

_GPU = pytest.mark.skipif(not gpu_available(), reason="no CUDA device (CuPy) on this machine")


@pytest.fixture(params=["cpu", pytest.param("gpu", marks=[pytest.mark.gpu, _GPU])])
def backend(request):
    """Every algorithm test runs once per available backend."""
    return resolve(request.param)


@pytest.fixture(scope="session")
def _mrml_context_session():
    from quantgpu.slicer_env import headless_context

    return headless_context()


@pytest.fixture
def mrml(_mrml_context_session):
    """A real MRML scene with Slicer's logics (slicer-core); cleared after each test."""
    yield _mrml_context_session
    _mrml_context_session.clear()
