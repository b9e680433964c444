"""The Slicer self-test scenarios (MammoCADLib.scenarios), run against slicer-core's headless scene."""

from __future__ import annotations

import pytest

from MammoCADLib import scenarios


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("mammo_scenarios")


@pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda s: s.__name__)
def test_scenario(mrml, workdir, scenario):
    scenario(mrml, workdir)
