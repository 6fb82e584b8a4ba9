"""The layout stays true: import directions between the project's packages, and no circles.

Reads every module's imports with ``ast`` (module level, inside functions and under
``TYPE_CHECKING`` alike: a lazy import is still a dependency) and checks them against
the rules in the README's architecture section.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("realtime", "engines", "export")

# (importer prefix, forbidden target prefix, allowed exceptions)
FORBIDDEN: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # the two faces of the app import nothing of each other; the live command starts the
    # window through the one function ``realtime.ui.app`` exports for it
    ("realtime.cli", "realtime.ui", ("realtime.ui.app",)),
    ("realtime.ui", "realtime.cli", ()),
    # one frame's face work knows nothing of threads, sessions or faces of the app
    ("realtime.frame", "realtime.pipeline", ()),
    ("realtime.frame", "realtime.session", ()),
    ("realtime.frame", "realtime.cli", ()),
    ("realtime.frame", "realtime.ui", ()),
    # finding faces comes before the face work: the arrow points from frame to faces
    ("realtime.faces", "realtime.frame", ()),
    ("realtime.faces", "realtime.pipeline", ()),
    ("realtime.faces", "realtime.session", ()),
    ("realtime.faces", "realtime.cli", ()),
    ("realtime.faces", "realtime.ui", ()),
    # frames in and out know nothing of faces
    ("realtime.io", "realtime.faces", ()),
    ("realtime.io", "realtime.frame", ()),
    ("realtime.io", "realtime.pipeline", ()),
    ("realtime.io", "realtime.session", ()),
    # the host processor does not pull in torch's; the session chooses between them
    ("realtime.frame.process", "realtime.frame.process_torch", ()),
    # the TensorRT runtime is handed a build function; it never imports the builder
    ("engines.tensorrt", "export.tensorrt", ()),
    # engines run models; they know nothing of frames
    ("engines", "realtime", ()),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    found["main"] = ROOT / "main.py"
    return found


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules that ``path`` imports (``from a import b`` counts ``a.b`` when that
    is a module, else ``a``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in known else base)
    return {t for t in targets if t in known and t != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(path, name, known) for name, path in modules.items()}


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_graph_sees_the_layout(graph: dict[str, set[str]]) -> None:
    """A control: the reader finds the packages and the imports the rules are about."""
    for package in ("realtime.io", "realtime.faces", "realtime.frame", "realtime.cli",
                    "realtime.ui", "realtime.session", "realtime.pipeline"):
        assert any(under(m, package) for m in graph), package
    assert "realtime.faces.identity" in graph["realtime.frame.swap"]
    assert "realtime.ui.app" in graph["realtime.cli.live"]
    assert "realtime.session" in graph["realtime.ui.runtime_build"]


@pytest.mark.parametrize(("importer", "target", "allowed"), FORBIDDEN,
                         ids=[f"{a}-/->{b}" for a, b, _ in FORBIDDEN])
def test_forbidden_direction(graph: dict[str, set[str]], importer: str, target: str,
                             allowed: tuple[str, ...]) -> None:
    wrong = sorted(
        f"{module} imports {dep}"
        for module, deps in graph.items() if under(module, importer)
        for dep in deps if under(dep, target) and dep not in allowed
    )
    assert not wrong, "\n".join(wrong)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    """A control for the circle check below."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circles(graph: dict[str, set[str]]) -> None:
    cycle = find_cycle(graph)
    assert cycle is None, " → ".join(cycle or [])


def test_the_pipeline_wires_threads_only() -> None:
    """Issue 18: ``pipeline.py`` stays small and holds no face policy: which face wears
    what is ``faces.plan``'s, textures are ``frame.textures``'s / ``frame.motion``'s."""
    path = ROOT / "realtime" / "pipeline.py"
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 600
    known = set(project_modules())
    imported = imports_of(path, "realtime.pipeline", known)
    assert "realtime.faces.select" not in imported
    for policy in ("PENDING", "UNASSIGNED", "ACTIVE_SOURCE", "LEAVE_ALONE", "largest_faces",
                   "parse_mode", "refresh_order", "match:"):
        assert policy not in text, policy


ROOM_MODULES = ("window_state", "window_sources", "window_outputs", "window_faces",
                "window_lifecycle", "window_models", "window_actions", "controller_faces",
                "controller_outputs")


def room_classes() -> dict[str, type]:
    """Every class defined in the window's and the controller's room modules."""
    import importlib
    import inspect

    found: dict[str, type] = {}
    for name in ROOM_MODULES:
        module = importlib.import_module(f"realtime.ui.{name}")
        found.update({f"{name}.{cls.__name__}": cls
                      for cls in vars(module).values()
                      if inspect.isclass(cls) and cls.__module__ == module.__name__})
    return found


def test_the_window_is_composed_of_rooms_not_inherited_from_them() -> None:
    """Issue 28: each room is a component with its own state, handed what it uses in its
    constructor; none is a window or a base of another room, of the window or of the
    controller (the diamond of mixins on one ``QMainWindow`` stays gone)."""
    import inspect

    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QMainWindow, QWidget

    from realtime.ui.controller import Controller
    from realtime.ui.main_window import MainWindow

    rooms = room_classes()
    assert {"window_sources.SourcesRoom", "window_actions.ActionsRoom",
            "controller_outputs.OutputSwitching"} <= set(rooms)  # a control: they are read
    assert MainWindow.__bases__ == (QMainWindow,)
    assert Controller.__bases__ == (object,)
    wrong = [f"{name} is a window" for name, cls in rooms.items() if issubclass(cls, QWidget)]
    room_types = set(rooms.values())
    for cls in (*rooms.values(), MainWindow, Controller):
        wrong += [f"{cls.__name__} inherits {base.__name__}"
                  for base in cls.__mro__[1:] if base in room_types]
    for name, cls in rooms.items():  # a room's constructor names what it depends on
        if name.endswith("Room") and len(inspect.signature(cls).parameters) < 2:
            wrong.append(f"{name}.__init__ takes no collaborators")
    assert not wrong, "\n".join(wrong)
