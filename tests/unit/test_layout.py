"""The code's layout as docs/architecture.md describes it: operators/core grouped by stage, no import circles, no
SDK types in the core."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "operators" / "core"


def _imports() -> dict[str, set[str]]:
    """Module -> the project modules it imports (top-level, lazy and type-checking imports alike)."""
    graph = {}
    for path in (ROOT / "operators").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = deps
    return graph


def test_no_import_circles():
    graph = _imports()
    cycles, state = [], {}

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for dep in sorted(graph[module] & graph.keys()):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert cycles == []


def test_core_is_grouped_by_stage():
    top = sorted(p.name for p in CORE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 8, top
    assert {p.name for p in CORE.iterdir() if p.is_dir() and not p.name.startswith("__")} == {
        "dicom", "selection", "model", "steps", "writers"}
    documented = (ROOT / "docs" / "architecture.md").read_text()
    for path in CORE.rglob("*.py"):
        if path.name != "__init__.py":
            assert path.name in documented, f"{path.relative_to(ROOT)} is not in docs/architecture.md"


def test_core_imports_no_sdk():
    for module, deps in _imports().items():
        if module.startswith("operators.core"):
            assert not {d for d in deps if d.split(".")[0] in ("holoscan", "monai")
                        and d.startswith(("holoscan", "monai.deploy"))}, module
