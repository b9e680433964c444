"""The CalciumScoring scenarios (shared with Slicer's self-test) on the headless MRML test bed."""

from __future__ import annotations

import pytest

from CalciumScoringLib import scenarios


@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_scenario(mrml, name):
    scenarios.SCENARIOS[name](mrml)


def test_run_all_runs_every_scenario(mrml):
    results = scenarios.run_all(mrml)
    assert list(results) == list(scenarios.SCENARIOS)
    assert results["qrm_phantom"] == {"agatston": 580.0, "mass_mg": pytest.approx(243.6), "cac_drs": "A3/N3"}


def test_qrm_phantom_geometry_matches_the_reference_table():
    # calcium.md §5: disks of d = 5 / 3 / 1 mm at 0.5 mm pixels hold 80 / 32 / 4 pixels
    assert [int(scenarios.disk(r).sum()) for r in scenarios.QRM_RADII_PX] == [80, 32, 4]
    hu, labels, _ = scenarios.qrm_phantom()
    assert int((hu > 0).sum()) == 2 * 3 * (80 + 32 + 4)
    assert int((labels > 0).sum()) == 2 * 3 * (80 + 32 + 4) - 2 * 4  # one 1 mm rod unassigned


def test_scenario_checks_fail_on_a_wrong_number(mrml, monkeypatch):
    # negative control: a scenario must fail when the MRML layer reports a wrong table
    real = scenarios.mrml.table_rows

    def off_by_one(result):
        rows = real(result)
        rows[-1]["Agatston"] += 1.0
        return rows

    monkeypatch.setattr(scenarios.mrml, "table_rows", off_by_one)
    with pytest.raises(AssertionError, match="C1 Agatston"):
        scenarios.scenario_c1_basic(mrml)
