"""The layout is the architecture (DESIGN.md "Layers"): every import in pooltop/ points down or stays
inside its own package, no package imports one beside it, and no unit outgrows what a reader can hold
(modules <= 500 lines, functions <= cyclomatic complexity 25, as radon counts)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from radon.complexity import cc_visit

PACKAGE = Path(__file__).resolve().parents[1] / "pooltop"

# Lowest first. A module may import what sits in a lower layer, or in its own unit; a unit beside it
# in the same layer is off limits (that is how cycles between packages start).
LAYERS: list[tuple[str, list[str]]] = [
    ("package", ["pooltop"]),
    ("errors", ["pooltop.errors"]),
    ("model", ["pooltop.model"]),
    ("atomic writes", ["pooltop.atomic"]),
    ("sources", ["pooltop.native"]),
    ("knowledge", ["pooltop.tagdb"]),
    ("judge", ["pooltop.judge"]),
    ("tracking", ["pooltop.tracking"]),
    ("sorting", ["pooltop.query"]),
    ("importers", ["pooltop.importers"]),
    ("recordings", ["pooltop.record"]),
    ("snapshot format", ["pooltop.snapshots"]),
    ("report", ["pooltop.report"]),
    ("attribution", ["pooltop.who"]),
    ("sharing", ["pooltop.share"]),
    ("features", ["pooltop.exporter", "pooltop.processes"]),
    ("command helpers", ["pooltop.clikit"]),
    ("commands", ["pooltop.app", "COMMANDS"]),
    ("entry", ["pooltop.cli"]),
    ("main", ["pooltop.__main__"]),
]
COMMAND_MODULES = ("command", "cli")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> tuple[int, str]:
    """(layer index, unit) of a pooltop module."""
    last = module.rsplit(".", 1)[-1]
    inside_commands = ".command." in module  # a feature's commands as a package (tagdb/command/)
    if module.count(".") >= 2 and (last in COMMAND_MODULES or inside_commands):
        return next(i for i, (_, units) in enumerate(LAYERS) if "COMMANDS" in units), module
    best: tuple[int, str] | None = None
    for i, (_, units) in enumerate(LAYERS):
        for unit in units:
            inside = module == unit or module.startswith(unit + ".")
            if inside and (best is None or len(unit) > len(best[1])):
                best = (i, unit)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS (and DESIGN.md)"
    return best


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pooltop":
                out += [(node.lineno, f"pooltop.{a.name}") for a in node.names]
            elif node.module.startswith("pooltop."):
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("pooltop")]
    return out


MODULES = sorted(PACKAGE.rglob("*.py"))


def _resolve(name: str) -> str:
    """`from pooltop.tagdb import resolve` names a module; `from pooltop.model import X` a symbol."""
    path = PACKAGE.parent / Path(*name.split("."))
    is_module = path.with_suffix(".py").exists() or (path / "__init__.py").exists()
    return name if is_module else name.rsplit(".", 1)[0]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    me = module_name(path)
    my_layer, my_unit = unit_of(me)
    wrong = []
    for line, target in imports_of(path):
        target = _resolve(target)
        layer, unit = unit_of(target)
        same_unit = unit == my_unit or (my_unit.startswith(unit + ".") and layer == my_layer) \
            or (target.startswith(my_unit.rsplit(".", 1)[0] + ".") and my_unit.count(".") >= 2)
        beside = layer == my_layer and not same_unit and LAYERS[layer][0] != "commands"
        if layer > my_layer or beside:
            wrong.append(f"line {line}: {me} ({LAYERS[my_layer][0]}) imports {target} ({LAYERS[layer][0]})")
    assert not wrong, "\n".join(wrong)


def test_no_cycle_between_packages() -> None:
    """pooltop.X -> pooltop.Y edges over every import, command modules included, form no cycle."""
    edges: dict[str, set[str]] = {}
    for path in MODULES:
        me = module_name(path).split(".")[:2]
        for _, target in imports_of(path):
            other = _resolve(target).split(".")[:2]
            if other != me:
                edges.setdefault(".".join(me), set()).add(".".join(other))
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(node):], node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            visit(nxt, [*trail, node])
        state[node] = 2

    for node in sorted(edges):
        visit(node, [])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports(path: Path) -> None:
    name = module_name(path)
    if "windows" in name.split(".") and name.endswith(("ntapi", "windows")):
        pytest.skip("needs Windows DLLs at import")
    importlib.import_module(name)


# Tables of constants may be longer; none is listed today.
LONG_TABLES: frozenset[str] = frozenset()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_units_stay_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n")
    if module_name(path) not in LONG_TABLES:
        assert lines <= 500, f"{path.relative_to(PACKAGE)} has {lines} lines (at most 500)"
    blocks = [m for b in cc_visit(text) for m in (getattr(b, "methods", None) or [b])]
    complex_ = [f"{b.name} (line {b.lineno}): {b.complexity}" for b in blocks if b.complexity > 25]
    assert not complex_, "cyclomatic complexity over 25: " + ", ".join(complex_)
