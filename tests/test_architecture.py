"""The package's structure, read with `ast` (imports inside functions included): imports flow one way
through the layers below, no module imports itself around a cycle, ganforge.backprop needs numpy
alone, and no function is longer than 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ganforge"

# Layer of each top-level unit of ganforge: an import may go to a lower layer or stay in its own unit.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "backprop"),  # the bottom: errors and the numpy engine
    ("registry", "config", "stats"),
    ("run",),  # run-directory layout, checkpoint and weights I/O, device, data spec
    ("data", "augment"),
    ("nets", "metrics"),
    ("objectives",),
    ("alarms", "report"),
    ("sample", "evaluate"),
    ("train",),
    ("api",),  # the Python face: load(run) -> Generator, train(config)
    ("serve", "export"),  # the web explorer and portable exports, built on the API
    ("cli",),
    ("__main__",),
]
RANK = {unit: i for i, units in enumerate(LAYERS) for unit in units}
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported ganforge module or name) for every import in the file, at any depth."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "ganforge")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ganforge":
                continue
            if node.module:
                yield node.lineno, target
            for a in node.names:  # `from . import x`: x may be a module
                yield node.lineno, f"{target}.{a.name}"


def unit(module: str) -> str:
    """The top-level unit of a ganforge module: 'ganforge.train.loop' -> 'train'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def existing_modules() -> set[str]:
    return {module_name(p) for p in SRC.rglob("*.py")}


def upward_imports(edges: list[tuple[str, int, str]]) -> list[str]:
    """'file:line a -> b' for every import from a unit to one in a higher (or unknown) layer."""
    bad = []
    for src, line, dst in edges:
        a, b = unit(src), unit(dst)
        if a == b or b == "__init__" or a == "__init__":
            continue
        if a not in RANK or b not in RANK or RANK[b] >= RANK[a]:
            bad.append(f"{src}:{line} {a} -> {b}")
    return bad


def module_edges() -> list[tuple[str, int, str]]:
    """(importing module, line, imported module) for imports of ganforge modules that exist."""
    known = existing_modules()
    out = []
    for path in sorted(SRC.rglob("*.py")):
        src = module_name(path)
        for line, target in imports(path):
            while target not in known and "." in target:
                target = target.rpartition(".")[0]  # a name imported from a module: the module
            if target in known and target != src:
                out.append((src, line, target))
    return out


def find_cycle(edges: list[tuple[str, int, str]]) -> list[str]:
    """One import cycle between modules (a package's __init__ importing its own modules excepted)."""
    graph: dict[str, set[str]] = {}
    for src, _, dst in edges:
        if dst.startswith(src + "."):  # a package's __init__ re-exporting its submodules
            continue
        graph.setdefault(src, set()).add(dst)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_every_unit_has_a_layer():
    units = {unit(m) for m in existing_modules()} - {"__init__"}
    assert units <= set(RANK), f"place these in LAYERS: {sorted(units - set(RANK))}"


def test_imports_flow_down_the_layers():
    assert upward_imports(module_edges()) == []


def test_the_layer_check_catches_an_upward_import():
    # run at the bottom importing train (what the old train/rundir layout invited), and a cli import
    edges = [("ganforge.run.layout", 3, "ganforge.train.loop"), ("ganforge.metrics.fid", 9, "ganforge.cli"),
             ("ganforge.train.loop", 1, "ganforge.run.layout")]
    assert upward_imports(edges) == ["ganforge.run.layout:3 run -> train", "ganforge.metrics.fid:9 metrics -> cli"]


def test_no_import_cycle_between_modules():
    assert find_cycle(module_edges()) == []


def test_the_cycle_check_finds_a_cycle():
    edges = [("ganforge.a", 1, "ganforge.b"), ("ganforge.b", 1, "ganforge.c"), ("ganforge.c", 1, "ganforge.a")]
    assert find_cycle(edges) == ["ganforge.a", "ganforge.b", "ganforge.c", "ganforge.a"]


def test_backprop_imports_numpy_alone():
    for path in (SRC / "backprop").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            for name in names:
                top = name.split(".")[0]
                assert top not in ("torch", "ganforge"), f"{path.name}:{node.lineno} imports {name}"


def long_functions(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_is_longer_than_60_lines():
    assert long_functions(SRC) == []


@pytest.mark.parametrize("lines, found", [(60, False), (61, True)])
def test_the_length_check_counts_def_to_last_line(tmp_path, lines, found):
    body = "".join(f"    x{i} = {i}\n" for i in range(lines - 1))
    (tmp_path / "m.py").write_text("def f():\n" + body)
    assert bool(long_functions(tmp_path)) is found
