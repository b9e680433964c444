"""The analysis modules' panels in the workstation's side drawer.

Each module may provide ``<M>Lib/web_panel.py`` with ``TITLE: str`` and
``build(ws) -> None``; ``build`` is called inside the drawer's layout context
(trame vuetify3 widgets). A module without a web panel is skipped with a log
line; a web panel that exists but fails to import or build is an error, never
hidden.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from types import ModuleType

log = logging.getLogger(__name__)

MODULE_PACKAGES = ("CalciumScoringLib", "PerfusionAnalysisLib", "MammoCADLib")


@dataclass(frozen=True)
class ModulePanel:
    package: str
    title: str
    module: ModuleType

    @property
    def element_id(self) -> str:
        """DOM id of the panel (tests and deep links find it by this)."""
        return f"panel-{self.package}"


def find_module_panels(packages: tuple[str, ...] = MODULE_PACKAGES) -> list[ModulePanel]:
    """Import each package's ``web_panel`` that exists, in ``packages`` order."""
    panels = []
    for package in packages:
        name = f"{package}.web_panel"
        if importlib.util.find_spec(name) is None:
            log.info("%s has no web panel yet; nothing shown for it", package)
            continue
        module = importlib.import_module(name)  # import errors of an existing panel propagate
        title = getattr(module, "TITLE", None)
        if not isinstance(title, str) or not callable(getattr(module, "build", None)):
            raise TypeError(f"{name} must define TITLE (str) and build(ws)")
        panels.append(ModulePanel(package, title, module))
    return panels
