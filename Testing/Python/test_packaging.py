"""The extension packages every module file, and the Qt layer matches its .ui files."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from Testing.Python.packaging import (
    SCRIPTED_MODULES,
    module_class_problems,
    module_ui_problems,
    packaging_problems,
    parameter_widget_problems,
    ui_property_problems,
)

ROOT = Path(__file__).resolve().parents[2]
ANALYSIS_MODULES = [m for m in SCRIPTED_MODULES if m != "QuantGPUCompute"]


def test_top_level_cmakelists_is_a_complete_extension():
    text = (ROOT / "CMakeLists.txt").read_text()
    for required in (
        "find_package(Slicer REQUIRED)",
        "include(${Slicer_USE_FILE})",
        "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
        "include(${Slicer_EXTENSION_CPACK})",
    ):
        assert required in text
    for module in SCRIPTED_MODULES:
        assert f"add_subdirectory({module})" in text
    for key in (
        "EXTENSION_HOMEPAGE",
        "EXTENSION_CATEGORY",
        "EXTENSION_CONTRIBUTORS",
        "EXTENSION_DESCRIPTION",
        "EXTENSION_ICONURL",
        "EXTENSION_SCREENSHOTURLS",
        "EXTENSION_DEPENDS",
    ):
        assert re.search(rf"set\({key} ", text), key
    assert "example.com" not in text and "This is an example" not in text
    order = [
        text.index(s)
        for s in (
            "project(",
            "EXTENSION_HOMEPAGE",
            "find_package(Slicer",
            "add_subdirectory(",
            "Slicer_EXTENSION_GENERATE_CONFIG",
            "Slicer_EXTENSION_CPACK",
        )
    ]
    assert order == sorted(order), "top-level CMakeLists.txt is not in the order of Slicer's template"


@pytest.mark.parametrize("module", SCRIPTED_MODULES)
def test_every_module_file_is_packaged(module):
    assert packaging_problems(ROOT / module) == []


@pytest.mark.parametrize("module", SCRIPTED_MODULES)
def test_module_file_has_the_template_classes(module):
    assert module_class_problems(ROOT / module / f"{module}.py") == []


@pytest.mark.parametrize("module", ANALYSIS_MODULES)
def test_ui_names_and_parameter_bindings(module):
    module_dir = ROOT / module
    assert module_ui_problems(module_dir / f"{module}.py", module_dir / "Resources" / "UI" / f"{module}.ui") == []


@pytest.mark.parametrize("module", ANALYSIS_MODULES)
def test_bound_widgets_have_a_gui_connector_and_real_properties(module):
    module_dir = ROOT / module
    ui_file = module_dir / "Resources" / "UI" / f"{module}.ui"
    assert parameter_widget_problems(module_dir / f"{module}.py", ui_file) == []
    assert ui_property_problems(ui_file) == []


@pytest.mark.parametrize("module", ANALYSIS_MODULES)
def test_module_icon_is_packaged_png(module):
    icon = ROOT / module / "Resources" / "Icons" / f"{module}.png"
    assert icon.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Negative controls: the checkers find each defect in a deliberately broken module.


def _write_module(tmp_path: Path, cmake_scripts: str, ui_extra: str = "", module_extra: str = "") -> Path:
    module = tmp_path / "Broken"
    (module / "BrokenLib").mkdir(parents=True)
    (module / "Resources" / "UI").mkdir(parents=True)
    (module / "BrokenLib" / "algo.py").write_text("x = 1\n")
    (module / "Broken.py").write_text(
        textwrap.dedent(f"""
        @parameterNodeWrapper
        class BrokenParameterNode:
            threshold: float = 1.0
            profile: str = "a"

        class Broken: pass
        class BrokenWidget:
            def setup(self):
                self.ui.applyButton.enabled = True
                self.ui.missingButton.enabled = True
        class BrokenLogic: pass
        class BrokenTest:
            def runTest(self):
                self.setUp()
                {module_extra or "self.test_something()"}
        """)
    )
    (module / "Resources" / "UI" / "Broken.ui").write_text(
        textwrap.dedent(f"""\
        <ui version="4.0"><class>Broken</class><widget class="qMRMLWidget" name="Broken">
        <widget class="QPushButton" name="applyButton"/>
        <widget class="ctkSliderWidget" name="thresholdSlider">
          <property name="SlicerParameterName" stdset="0"><string>threshold</string></property>
        </widget>{ui_extra}
        </widget></ui>""")
    )
    (module / "CMakeLists.txt").write_text(
        textwrap.dedent(f"""\
        set(MODULE_NAME Broken)
        set(MODULE_PYTHON_SCRIPTS
          ${{MODULE_NAME}}.py
          {cmake_scripts}
          )
        set(MODULE_PYTHON_RESOURCES
          Resources/UI/${{MODULE_NAME}}.ui
          )
        slicerMacroBuildScriptedModule(NAME ${{MODULE_NAME}} SCRIPTS ${{MODULE_PYTHON_SCRIPTS}} WITH_GENERIC_TESTS)
        """)
    )
    return module


def test_checkers_find_unlisted_and_ghost_files(tmp_path):
    module = _write_module(tmp_path, cmake_scripts="BrokenLib/ghost.py")
    problems = packaging_problems(module)
    assert any("BrokenLib/algo.py is not in MODULE_PYTHON_SCRIPTS" in p for p in problems)
    assert any("lists BrokenLib/ghost.py, which does not exist" in p for p in problems)
    assert packaging_problems(_write_module(tmp_path / "ok", cmake_scripts="BrokenLib/algo.py")) == []


def test_checkers_find_missing_ui_names_and_unbound_parameters(tmp_path):
    module = _write_module(tmp_path, cmake_scripts="BrokenLib/algo.py")
    problems = module_ui_problems(module / "Broken.py", module / "Resources" / "UI" / "Broken.ui")
    assert problems == [
        "Broken.py: self.ui.missingButton has no widget of that objectName in Broken.ui",
        "Broken.py: parameter BrokenParameterNode.profile has no widget with SlicerParameterName",
    ]


def test_checkers_find_a_self_test_that_runs_nothing(tmp_path):
    module = _write_module(tmp_path, cmake_scripts="BrokenLib/algo.py", module_extra="pass")
    assert "Broken.py: BrokenTest.runTest runs no test" in module_class_problems(module / "Broken.py")


def test_checkers_find_widgets_without_a_gui_connector(tmp_path):
    (tmp_path / "Typed.py").write_text(
        textwrap.dedent("""
        Inputs = Union[vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode]

        @parameterNodeWrapper
        class TypedParameterNode:
            unbounded: float = 1.0
            bounded: Annotated[float, WithinRange(0, 1)] = 0.5
            free: str = "a"
            chosen: Annotated[str, Choice(["a", "b"])] = "a"
            folder: pathlib.Path
            nodes: Optional[Inputs]
            flag: bool = False
        """)
    )
    ui_file = tmp_path / "Typed.ui"

    def write_ui(*widgets):
        body = "".join(
            f'<widget class="{cls}" name="{name}"><property name="SlicerParameterName" stdset="0">'
            f"<string>{field}</string></property>{extra}</widget>"
            for cls, name, field, extra in widgets
        )
        ui_file.write_text(f'<ui version="4.0"><widget class="qMRMLWidget" name="Typed">{body}</widget></ui>')

    write_ui(
        ("ctkSliderWidget", "unboundedSlider", "unbounded", ""),
        ("QLineEdit", "boundedEdit", "bounded", ""),
        ("QComboBox", "freeCombo", "free", ""),
        ("QComboBox", "chosenCombo", "chosen", ""),
        ("QLineEdit", "folderEdit", "folder", ""),
        ("ctkPathLineEdit", "nodesEdit", "nodes", ""),
        ("ctkDoubleSpinBox", "flagSpinBox", "flag", '<property name="specialValueText"><string>x</string></property>'),
    )
    assert parameter_widget_problems(tmp_path / "Typed.py", ui_file) == [
        "Typed.ui: ctkSliderWidget 'unboundedSlider' bound to TypedParameterNode.unbounded: "
        "needs WithinRange (or Minimum and Maximum)",
        "Typed.ui: QLineEdit 'boundedEdit' bound to TypedParameterNode.bounded: no GUI connector from float to QLineEdit",
        "Typed.ui: QComboBox 'freeCombo' bound to TypedParameterNode.free: a combo box needs the Choice annotation",
        "Typed.ui: QLineEdit 'folderEdit' bound to TypedParameterNode.folder: no GUI connector from path to QLineEdit",
        "Typed.ui: ctkPathLineEdit 'nodesEdit' bound to TypedParameterNode.nodes: "
        "no GUI connector from node to ctkPathLineEdit",
        "Typed.ui: ctkDoubleSpinBox 'flagSpinBox' bound to TypedParameterNode.flag: "
        "no GUI connector from bool to ctkDoubleSpinBox",
    ]
    assert ui_property_problems(ui_file) == [
        "Typed.ui: ctkDoubleSpinBox 'flagSpinBox' has no property 'specialValueText'"
    ]

    write_ui(
        ("ctkSliderWidget", "boundedSlider", "bounded", '<property name="decimals"><number>2</number></property>'),
        ("QLineEdit", "freeEdit", "free", ""),
        ("QComboBox", "chosenCombo", "chosen", ""),
        ("ctkDirectoryButton", "folderButton", "folder", ""),
        ("qMRMLNodeComboBox", "nodesCombo", "nodes", ""),
        ("QCheckBox", "flagCheckBox", "flag", ""),
        (
            "QDoubleSpinBox",
            "unboundedSpinBox",
            "unbounded",
            '<property name="specialValueText"><string>x</string></property>',
        ),
    )
    assert parameter_widget_problems(tmp_path / "Typed.py", ui_file) == []
    assert ui_property_problems(ui_file) == []
