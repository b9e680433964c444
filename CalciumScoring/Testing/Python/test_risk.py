"""Risk categories, CAC-DRS and MESA risk against calcium.md cases C10-C12."""

from __future__ import annotations

import math

import pytest

from CalciumScoringLib.risk import MesaRiskFactors, agatston_category, arterial_age, cac_drs, mesa_chd_risk_10y
from quantgpu.errors import InputError


def test_c10_per_artery_total():
    per_artery = {"LM": 0.0, "LAD": 150.0, "LCX": 20.0, "RCA": 200.0}
    total = sum(per_artery.values())
    assert total == 370.0
    assert agatston_category(total) == "101-400"
    assert cac_drs(total, per_artery) == "A3/N3"


@pytest.mark.parametrize(
    ("score", "label"),
    [
        (0, "0"),
        (1e-9, "1-10"),
        (1, "1-10"),
        (10, "1-10"),
        (10.4, "11-100"),
        (100, "11-100"),
        (100.0001, "101-400"),
        (101, "101-400"),
        (400, "101-400"),
        (400.01, ">400"),
        (401, ">400"),
        (5000, ">400"),
    ],
)
def test_c11_category_edges(score, label):
    assert agatston_category(score) == label


@pytest.mark.parametrize(
    ("score", "klass"), [(0, "A0"), (0.5, "A1"), (99, "A1"), (99.99, "A1"), (100, "A2"), (299, "A2"), (300, "A3")]
)
def test_c11_cac_drs_edges(score, klass):
    assert cac_drs(score) == klass


def test_cac_drs_vessel_modifier():
    assert cac_drs(0, {"LM": 0, "LAD": 0, "LCX": 0, "RCA": 0}) == "A0"  # A0 without N
    assert cac_drs(350, {"LM": 1, "LAD": 100, "LCX": 49, "RCA": 200}) == "A3/N4"
    assert cac_drs(5, {"LAD": 5}) == "A1/N1"
    with pytest.raises(InputError, match="artery"):
        cac_drs(5, {"PDA": 5})
    with pytest.raises(InputError):
        agatston_category(float("nan"))
    with pytest.raises(InputError):
        cac_drs(-1)


C12 = MesaRiskFactors(
    age=70,
    male=True,
    race="hispanic",
    systolic_bp_mmhg=130,
    hdl_mg_dl=50,
    total_cholesterol_mg_dl=190,
    bp_medication=True,
)


@pytest.mark.parametrize(("cac", "percent"), [(0, 3.06), (10, 5.82), (100, 10.43), (400, 14.86), (1000, 18.67)])
def test_c12_mesa_ten_year_risk(cac, percent):
    out = mesa_chd_risk_10y(cac, C12)
    assert out["risk_percent"] == pytest.approx(percent, abs=0.005)
    assert out["clamped"] is False and out["warnings"] == []


def test_mesa_not_clamped_and_warns():
    young = MesaRiskFactors(age=30, male=False, total_cholesterol_mg_dl=150, hdl_mg_dl=70, systolic_bp_mmhg=100)
    out = mesa_chd_risk_10y(0, young)
    assert out["risk_percent"] < 1.0  # CVrisk would report 1 %
    assert any("age" in w for w in out["warnings"]) and any("does not" in w for w in out["warnings"])
    with pytest.raises(InputError, match="race"):
        MesaRiskFactors(age=60, male=True, race="martian")


def test_arterial_age():
    assert arterial_age(0) == pytest.approx(39.1)
    assert arterial_age(100) == pytest.approx(39.1 + 7.25 * math.log(101))
