"""Risk classes from a coronary calcium score.

- Agatston category: five classes with (lo, hi] intervals on the unrounded score
  (calcium.md 2.3).
- CAC-DRS (Hecht et al., JCCT 2018;12:185): A0 (0), A1 (0 < s < 100),
  A2 (100 <= s < 300), A3 (>= 300); "/N<k>" appended when per-artery scores are
  known, k = number of arteries among LM, LAD, LCX, RCA with a score > 0. A0 is
  written without N. When labels are given but all calcium is unassigned, k is 0
  and the class reads e.g. "A1/N0" (no vessel identified), as the issue defines k.
- MESA 10-year CHD risk with CAC (McClelland et al., JACC 2015;66:1643), with the
  coefficients as encoded in the R package CVrisk. QuantGPU does NOT clamp the
  result (CVrisk clamps to [1, 30] %); it returns the model value and a warning
  when the value or the age lies outside the range the model was fitted on.
- Arterial age = 39.1 + 7.25 ln(CAC + 1) years (McClelland 2009, Am J Cardiol
  103:59; equation from a third-party source, unverified).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from quantgpu.errors import InputError

ARTERIES = ("LM", "LAD", "LCX", "RCA")

# (upper edge inclusive, label); s == 0 is "0"
_CATEGORY_EDGES = ((10.0, "1-10"), (100.0, "11-100"), (400.0, "101-400"))


def _check_score(score: float) -> float:
    s = float(score)
    if not math.isfinite(s) or s < 0:
        raise InputError(f"calcium score must be a finite number >= 0, got {score!r}")
    return s


def agatston_category(score: float) -> str:
    """Five-class category on the unrounded score: "0", "1-10", "11-100", "101-400", ">400"."""
    s = _check_score(score)
    if s == 0:
        return "0"
    for upper, label in _CATEGORY_EDGES:
        if s <= upper:
            return label
    return ">400"


def cac_drs(score: float, per_artery: dict[str, float] | None = None) -> str:
    """CAC-DRS class, e.g. "A2/N3"; "/N<k>" only when per-artery scores are given and s > 0."""
    s = _check_score(score)
    if s == 0:
        return "A0"
    klass = "A1" if s < 100 else "A2" if s < 300 else "A3"
    if per_artery is None:
        return klass
    unknown = set(per_artery) - set(ARTERIES)
    if unknown:
        raise InputError(f"unknown artery name(s) {sorted(unknown)}; expected {', '.join(ARTERIES)}")
    vessels = sum(1 for name in ARTERIES if _check_score(per_artery.get(name, 0.0)) > 0)
    return f"{klass}/N{vessels}"


# MESA 10-year CHD risk with CAC (McClelland 2015), coefficients as in CVrisk.
MESA_S0 = 0.99833
MESA_BETA = {
    "age": 0.0172,
    "male": 0.4079,
    "chinese": -0.3475,
    "african_american": 0.0353,
    "hispanic": -0.0222,
    "diabetes": 0.3892,
    "smoker": 0.3717,
    "total_cholesterol": 0.0043,
    "hdl": -0.0114,
    "lipid_lowering": 0.1206,
    "systolic_bp": 0.0066,
    "bp_medication": 0.2278,
    "family_history": 0.3239,
    "ln_cac_plus_1": 0.2743,
}
RACES = ("white", "chinese", "african_american", "hispanic")
MESA_AGE_RANGE = (45.0, 85.0)
MESA_CALIBRATED_PERCENT = (1.0, 30.0)


@dataclass(frozen=True)
class MesaRiskFactors:
    """Inputs of the MESA 10-year CHD risk score (units: years, mg/dL, mmHg)."""

    age: float
    male: bool
    race: str = "white"  # white | chinese | african_american | hispanic
    diabetes: bool = False
    smoker: bool = False
    total_cholesterol_mg_dl: float = 0.0
    hdl_mg_dl: float = 0.0
    lipid_lowering: bool = False
    systolic_bp_mmhg: float = 0.0
    bp_medication: bool = False
    family_history: bool = False

    def __post_init__(self):
        if self.race not in RACES:
            raise InputError(f"race {self.race!r} is not one of {', '.join(RACES)}")
        for name in ("age", "total_cholesterol_mg_dl", "hdl_mg_dl", "systolic_bp_mmhg"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value < 0:
                raise InputError(f"MESA risk factor {name} must be a finite number >= 0, got {value!r}")


def mesa_chd_risk_10y(cac: float, factors: MesaRiskFactors) -> dict:
    """10-year CHD risk in percent: 100 (1 - S0^exp(sum beta_i x_i)); not clamped.

    Returns {"risk_percent", "clamped": False, "warnings": [...], "inputs": {...}}.
    """
    s = _check_score(cac)
    f = factors
    x = {
        "age": float(f.age),
        "male": float(f.male),
        "chinese": float(f.race == "chinese"),
        "african_american": float(f.race == "african_american"),
        "hispanic": float(f.race == "hispanic"),
        "diabetes": float(f.diabetes),
        "smoker": float(f.smoker),
        "total_cholesterol": float(f.total_cholesterol_mg_dl),
        "hdl": float(f.hdl_mg_dl),
        "lipid_lowering": float(f.lipid_lowering),
        "systolic_bp": float(f.systolic_bp_mmhg),
        "bp_medication": float(f.bp_medication),
        "family_history": float(f.family_history),
        "ln_cac_plus_1": math.log(s + 1.0),
    }
    linear = sum(MESA_BETA[k] * v for k, v in x.items())
    risk = 100.0 * (1.0 - MESA_S0 ** math.exp(linear))
    warnings = []
    lo_age, hi_age = MESA_AGE_RANGE
    if not lo_age <= f.age <= hi_age:
        warnings.append(f"age {f.age:g} outside the MESA range {lo_age:g}-{hi_age:g} years")
    lo, hi = MESA_CALIBRATED_PERCENT
    if not lo <= risk <= hi:
        warnings.append(f"risk {risk:.2f} % outside {lo:g}-{hi:g} % (CVrisk would clamp; QuantGPU does not)")
    return {"risk_percent": risk, "clamped": False, "warnings": warnings, "inputs": asdict(f), "cac": s}


def arterial_age(cac: float) -> float:
    """Arterial age in years, 39.1 + 7.25 ln(CAC + 1) (McClelland 2009; unverified)."""
    return 39.1 + 7.25 * math.log(_check_score(cac) + 1.0)
