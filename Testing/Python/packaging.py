"""Static checks of the Slicer extension packaging and of the Qt module files.

Desktop Slicer cannot run here, so what would only fail inside Slicer is checked
from the files: every Python file and resource of a module is listed in its
CMakeLists.txt (unlisted files silently vanish from the extension package), every
``self.ui.<name>`` exists as an objectName in the module's .ui file, and every
parameter-node field is bound to a widget through ``SlicerParameterName``.
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

SCRIPTED_MODULES = ("QuantGPUCompute", "CalciumScoring", "PerfusionAnalysis", "MammoCAD")


def _cmake_set(text: str, variable: str) -> list[str]:
    match = re.search(rf"set\(\s*{variable}\b(.*?)\)", text, re.S)
    if not match:
        return []
    body = re.sub(r"#[^\n]*", "", match.group(1))
    return body.split()


def cmake_listed_files(module_dir: Path) -> tuple[set[str], set[str]]:
    """Files named by MODULE_PYTHON_SCRIPTS and MODULE_PYTHON_RESOURCES, relative to the module."""
    text = (module_dir / "CMakeLists.txt").read_text()
    name = re.search(r"set\(\s*MODULE_NAME\s+(\S+?)\s*\)", text)
    module_name = name.group(1) if name else module_dir.name

    def expand(items: list[str]) -> set[str]:
        return {i.replace("${MODULE_NAME}", module_name).strip('"') for i in items}

    return expand(_cmake_set(text, "MODULE_PYTHON_SCRIPTS")), expand(_cmake_set(text, "MODULE_PYTHON_RESOURCES"))


def packaging_problems(module_dir: Path) -> list[str]:
    """What the module's CMakeLists.txt misses or lists wrongly."""
    problems = []
    cmake = module_dir / "CMakeLists.txt"
    if not cmake.exists():
        return [f"{module_dir.name}: no CMakeLists.txt"]
    text = cmake.read_text()
    scripts, resources = cmake_listed_files(module_dir)
    on_disk_py = {
        p.relative_to(module_dir).as_posix()
        for p in module_dir.rglob("*.py")
        if "Testing" not in p.relative_to(module_dir).parts and "__pycache__" not in p.parts
    }
    on_disk_resources = (
        {
            p.relative_to(module_dir).as_posix()
            for p in (module_dir / "Resources").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        if (module_dir / "Resources").exists()
        else set()
    )
    # CMake lists scripts with or without the .py suffix; accept both spellings
    listed_py = {s if s.endswith(".py") else f"{s}.py" for s in scripts}
    for missing in sorted(on_disk_py - listed_py):
        problems.append(f"{module_dir.name}: {missing} is not in MODULE_PYTHON_SCRIPTS")
    for missing in sorted(on_disk_resources - resources):
        problems.append(f"{module_dir.name}: {missing} is not in MODULE_PYTHON_RESOURCES")
    for ghost in sorted((listed_py - on_disk_py) | (resources - on_disk_resources)):
        problems.append(f"{module_dir.name}: CMakeLists.txt lists {ghost}, which does not exist")
    if "slicerMacroBuildScriptedModule" not in text:
        problems.append(f"{module_dir.name}: CMakeLists.txt does not call slicerMacroBuildScriptedModule")
    elif "WITH_GENERIC_TESTS" not in text:
        problems.append(f"{module_dir.name}: slicerMacroBuildScriptedModule without WITH_GENERIC_TESTS")
    return problems


def ui_object_names(ui_file: Path) -> set[str]:
    root = ET.parse(ui_file).getroot()
    return {w.get("name") for w in root.iter() if w.tag in ("widget", "action", "layout") and w.get("name")}


def ui_parameter_bindings(ui_file: Path) -> set[str]:
    """Values of the SlicerParameterName dynamic properties in a .ui file."""
    root = ET.parse(ui_file).getroot()
    names = set()
    for prop in root.iter("property"):
        if prop.get("name") == "SlicerParameterName":
            value = prop.find("string")
            if value is not None and value.text:
                names.add(value.text)
    return names


def module_ui_problems(module_file: Path, ui_file: Path) -> list[str]:
    """self.ui names missing from the .ui, and parameter-node fields without a bound widget."""
    tree = ast.parse(module_file.read_text())
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "ui"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "self"
    }
    problems = []
    if not ui_file.exists():
        return [f"{module_file.name}: {ui_file.name} is missing"]
    names = ui_object_names(ui_file)
    for name in sorted(used - names):
        problems.append(f"{module_file.name}: self.ui.{name} has no widget of that objectName in {ui_file.name}")
    bindings = ui_parameter_bindings(ui_file)
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        decorators = {d.id if isinstance(d, ast.Name) else getattr(d, "attr", "") for d in cls.decorator_list}
        if "parameterNodeWrapper" not in decorators:
            continue
        fields = [s.target.id for s in cls.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
        if not fields:
            problems.append(f"{module_file.name}: parameter node {cls.name} declares no fields")
        for field in fields:
            if field not in bindings:
                problems.append(
                    f"{module_file.name}: parameter {cls.name}.{field} has no widget with SlicerParameterName"
                )
        for bound in sorted(bindings - set(fields)):
            problems.append(f"{ui_file.name}: SlicerParameterName {bound!r} names no field of {cls.name}")
    return problems


def module_class_problems(module_file: Path) -> list[str]:
    """The scripted-module template's five classes, and a self-test that runs something."""
    name = module_file.stem
    tree = ast.parse(module_file.read_text())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    if name == "QuantGPUCompute":  # hidden provider module: no panel, so no widget or parameters
        expected = [name, f"{name}Logic", f"{name}Test"]
    else:
        expected = [name, f"{name}ParameterNode", f"{name}Widget", f"{name}Logic", f"{name}Test"]
    problems = [f"{module_file.name}: class {c} is missing" for c in expected if c not in classes]
    test = classes.get(f"{name}Test")
    if test is not None:
        run = next((f for f in test.body if isinstance(f, ast.FunctionDef) and f.name == "runTest"), None)
        calls = [n for n in ast.walk(run) if isinstance(n, ast.Call)] if run else []
        if len(calls) < 2:  # setUp plus at least one scenario
            problems.append(f"{module_file.name}: {name}Test.runTest runs no test")
    return problems


# --- parameter-node fields against Slicer's GUI connectors -------------------------------------------
#
# connectGui raises "Unable to create GUI connector" (or a narrower RuntimeError) inside Slicer when a
# SlicerParameterName widget's class cannot represent its field's type. The table below is the
# ``canRepresent`` of each connector in Slicer's Base/Python/slicer/parameterNodeWrapper/guiConnectors.py
# (exact class names: the connectors compare ``type(widget)``, so subclasses do not count).

_FLOAT_WIDGETS = {
    "QDoubleSpinBox",
    "ctkSliderWidget",
    "qMRMLSliderWidget",
    "ctkDoubleSlider",
    "ctkDoubleSpinBox",
    "qMRMLSpinBox",
}
_COMBO_WIDGETS = {"QComboBox", "ctkComboBox"}  # str/int/float/bool with a Choice annotation
CONNECTOR_WIDGETS = {
    "bool": {"QCheckBox", "ctkCheckBox", "QPushButton", "ctkCheckablePushButton"} | _COMBO_WIDGETS,
    "int": {"QSlider", "QSpinBox"} | _FLOAT_WIDGETS | _COMBO_WIDGETS,
    "float": _FLOAT_WIDGETS | _COMBO_WIDGETS,
    "str": {"QLineEdit", "QLabel", "QTextEdit"} | _COMBO_WIDGETS,
    "path": {"ctkPathLineEdit", "ctkDirectoryButton"},
    "node": {"qMRMLNodeComboBox"},
}
# these connectors raise for a field without WithinRange (or both Minimum and Maximum)
_NEED_BOUNDS = {"ctkSliderWidget", "qMRMLSliderWidget", "QSlider"}


def _field_kind(annotation: ast.expr, aliases: dict[str, ast.expr]) -> tuple[str, set[str]]:
    """(kind, annotation call names) of a parameter-node field annotation; kind is one of
    CONNECTOR_WIDGETS' keys, "none" or "other" (enum, FloatRange, packs, ...: not checked)."""
    if isinstance(annotation, ast.Constant) and annotation.value is None:
        return "none", set()
    if isinstance(annotation, ast.Name | ast.Attribute):
        name = annotation.id if isinstance(annotation, ast.Name) else annotation.attr
        if name in aliases:
            return _field_kind(aliases[name], aliases)
        if name in ("bool", "int", "float", "str"):
            return name, set()
        if name in ("Path", "PurePath", "PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath"):
            return "path", set()
        if name.startswith("vtkMRML"):
            return "node", set()
        return "other", set()
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        members = [annotation.left, annotation.right]
    elif isinstance(annotation, ast.Subscript):
        head = annotation.value.id if isinstance(annotation.value, ast.Name) else getattr(annotation.value, "attr", "")
        args = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
        if head == "Annotated":
            kind, _ = _field_kind(args[0], aliases)
            calls = {
                a.func.id if isinstance(a.func, ast.Name) else getattr(a.func, "attr", "")
                for a in args[1:]
                if isinstance(a, ast.Call)
            }
            return kind, calls
        if head not in ("Optional", "Union"):
            return "other", set()
        members = list(args)
    else:
        return "other", set()
    kinds = {_field_kind(m, aliases)[0] for m in members} - {"none"}
    return (kinds.pop() if kinds in ({"node"}, {"path"}) else "other"), set()


def ui_parameter_widgets(ui_file: Path) -> dict[str, tuple[str, str]]:
    """SlicerParameterName -> (widget class, objectName) in a .ui file."""
    root = ET.parse(ui_file).getroot()
    bound = {}
    for widget in root.iter("widget"):
        for prop in widget.findall("property"):
            value = prop.find("string")
            if prop.get("name") == "SlicerParameterName" and value is not None and value.text:
                bound[value.text] = (widget.get("class"), widget.get("name"))
    return bound


def parameter_widget_problems(module_file: Path, ui_file: Path) -> list[str]:
    """Widgets bound to parameter-node fields that Slicer's GUI connectors cannot connect."""
    tree = ast.parse(module_file.read_text())
    aliases = {
        s.targets[0].id: s.value
        for s in tree.body
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
    }
    widgets = ui_parameter_widgets(ui_file)
    problems = []
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        decorators = {d.id if isinstance(d, ast.Name) else getattr(d, "attr", "") for d in cls.decorator_list}
        if "parameterNodeWrapper" not in decorators:
            continue
        for stmt in cls.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            field = stmt.target.id
            if field not in widgets:
                continue  # module_ui_problems reports unbound fields
            widget_class, widget_name = widgets[field]
            kind, calls = _field_kind(stmt.annotation, aliases)
            where = f"{ui_file.name}: {widget_class} {widget_name!r} bound to {cls.name}.{field}"
            if kind == "other":
                continue
            if widget_class not in CONNECTOR_WIDGETS.get(kind, set()):
                problems.append(f"{where}: no GUI connector from {kind} to {widget_class}")
            elif widget_class in _COMBO_WIDGETS and "Choice" not in calls:
                problems.append(f"{where}: a combo box needs the Choice annotation")
            elif widget_class in _NEED_BOUNDS and not ("WithinRange" in calls or {"Minimum", "Maximum"} <= calls):
                problems.append(f"{where}: needs WithinRange (or Minimum and Maximum)")
    return problems


# Designer properties of widget classes whose Qt look-alikes have more (ctkDoubleSpinBox is a QWidget,
# not a QDoubleSpinBox). A property a class does not declare is silently stored as a dynamic property
# and has no effect. Q_PROPERTY lists from commontk/CTK Libs/Widgets/<class>.h; QWidget's from Qt 5.
def _words(text: str) -> set[str]:
    return set(text.split())


_QWIDGET_PROPERTIES = _words(
    "objectName acceptDrops accessibleDescription accessibleName autoFillBackground baseSize childrenRect "
    "childrenRegion contextMenuPolicy cursor enabled focus focusPolicy font frameGeometry frameSize fullScreen "
    "geometry height inputMethodHints isActiveWindow layoutDirection locale maximized maximumHeight maximumSize "
    "maximumWidth minimized minimumHeight minimumSize minimumSizeHint minimumWidth modal mouseTracking "
    "normalGeometry palette pos rect size sizeHint sizeIncrement sizePolicy statusTip styleSheet tabletTracking "
    "toolTip toolTipDuration updatesEnabled visible whatsThis width windowFilePath windowFlags windowIcon "
    "windowIconText windowModality windowModified windowOpacity windowTitle x y"
)
WIDGET_PROPERTIES = {
    "ctkDoubleSpinBox": _QWIDGET_PROPERTIES
    | _words(
        "alignment frame readOnly prefix suffix cleanText decimals decimalsOption minimum maximum singleStep "
        "value setMode invertedControls sizeHintPolicy isSettingValue"
    ),
    "ctkSliderWidget": _QWIDGET_PROPERTIES
    | _words(
        "decimals singleStep pageStep minimum maximum value prefix suffix tickInterval tickPosition "
        "synchronizeSiblings spinBoxAlignment tracking spinBoxVisible popupSlider invertedAppearance "
        "invertedControls"
    ),
}


def ui_property_problems(ui_file: Path) -> list[str]:
    """Designer properties set on a widget class (of WIDGET_PROPERTIES) that does not declare them."""
    root = ET.parse(ui_file).getroot()
    problems = []
    for widget in root.iter("widget"):
        known = WIDGET_PROPERTIES.get(widget.get("class"))
        if known is None:
            continue
        for prop in widget.findall("property"):
            if prop.get("stdset") != "0" and prop.get("name") not in known:
                problems.append(
                    f"{ui_file.name}: {widget.get('class')} {widget.get('name')!r} has no property {prop.get('name')!r}"
                )
    return problems
