"""The domains depend one way (DESIGN: labs -> jobs -> executors, tensorboard on jobs,
projects below them all, auth below projects) and nothing wires a hook on import.

Imports are read with `ast` from every module under labyard/, including imports inside
functions and under `if TYPE_CHECKING`, so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import labyard

ROOT = Path(labyard.__file__).parent
DOMAINS = (
    "auth",
    "projects",
    "flavors",
    "datasets",
    "jobs",
    "searches",
    "labs",
    "tensorboard",
    "sessions",
    "overview",
    "nodes",
    "monitoring",
    "notifications",
    "weights",
    "deephealth",
)
# A domain may import only domains of a lower layer.
LAYER = {"auth": 0, "projects": 1, "flavors": 2, "datasets": 2, "jobs": 3, "searches": 4}
LAYER["labs"] = 5  # a lab submits grids (jobs) and starts searches
LAYER["tensorboard"] = 6  # builds on jobs (and opens a lab's jobs)
LAYER["sessions"] = 7  # a lab's JupyterLab runs as a job, proxied like TensorBoard
LAYER["overview"] = 8  # the home and project overviews read every domain; none reads them
LAYER["nodes"] = 9  # the machines that run jobs and the jobs on them (reads jobs, overview)
LAYER["monitoring"] = 10  # Prometheus' /metrics reads jobs, GPUs, TensorBoards, sessions
LAYER["weights"] = 4  # registered models of finished jobs (labs fine-tune from them)
LAYER["notifications"] = 11  # told when jobs, sweeps, searches end (skips session jobs)
LAYER["deephealth"] = 12  # DeepHealth's API over projects, datasets, labs, jobs (and weights)
COMPOSITION_ROOTS = ("labyard.app", "labyard.cli", "labyard.bootstrap")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The modules (and module.attribute candidates) that one import statement names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".")
        base = base if is_package else base[:-1]
        base = base[: len(base) - node.level + 1]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    return [target, *(f"{target}.{alias.name}" for alias in node.names)]


def _domain(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "labyard" and parts[1] in DOMAINS else None


def import_edges() -> dict[tuple[str, str], list[str]]:
    """(importing module, imported name) -> ["file:line", ...] over all of labyard/."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for name in _imported(node, module, path.name == "__init__.py"):
                if name.startswith("labyard"):
                    edges[(module, name)].append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    return edges


def domain_graph() -> dict[str, dict[str, list[str]]]:
    """domain -> imported domain -> where."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for (source, target), where in import_edges().items():
        a, b = _domain(source), _domain(target)
        if a and b and a != b:
            graph[a][b].extend(where)
    return graph


def find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_a_lazy_import_cycle() -> None:
    graph = {"labs": {"jobs": ["a.py:1"]}, "jobs": {"labs": ["b.py:9 (in a function)"]}}
    assert find_cycle(graph) == ["jobs", "labs", "jobs"]
    assert find_cycle({"labs": {"jobs": ["a.py:1"]}}) is None


def test_function_level_imports_are_read() -> None:
    source = "def f():\n    from labyard.labs.models import Lab\n"
    names = [
        n for node in ast.walk(ast.parse(source)) for n in _imported(node, "labyard.jobs.x", False)
    ]
    assert "labyard.labs.models" in names


def test_domain_packages_import_each_other_without_cycles() -> None:
    graph = domain_graph()
    cycle = find_cycle(graph)
    where = (
        {f"{a}->{b}": graph[a][b] for a, b in zip(cycle, cycle[1:], strict=False)} if cycle else {}
    )
    assert cycle is None, f"import cycle {' -> '.join(cycle or [])}: {where}"


def test_domains_import_only_lower_layers() -> None:
    graph = domain_graph()
    upward = {
        f"{a} -> {b}": where
        for a, targets in graph.items()
        for b, where in targets.items()
        if LAYER[b] >= LAYER[a]
    }
    assert not upward, f"imports against the layering {LAYER}: {upward}"


def test_no_domain_imports_a_composition_root() -> None:
    """app, cli and bootstrap import every domain; a domain importing them hides a cycle."""
    bad = {
        f"{source} -> {target}": where
        for (source, target), where in import_edges().items()
        if _domain(source) and target.startswith(COMPOSITION_ROOTS)
    }
    assert not bad


def _module_level_calls(tree: ast.Module) -> list[ast.Call]:
    """Calls made when the module is imported (outside any def or class body)."""
    calls: list[ast.Call] = []
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if isinstance(node, ast.Call):
            calls.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return calls


def _is_registration(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "connect" or name.startswith("register")


def test_no_module_registers_a_hook_when_imported() -> None:
    found = [
        f"{path.relative_to(ROOT.parent)}:{call.lineno}"
        for path in sorted(ROOT.rglob("*.py"))
        for call in _module_level_calls(ast.parse(path.read_text()))
        if _is_registration(call)
    ]
    assert not found, f"hooks registered at import time: {found}"
    sample = ast.parse("register_project_storage(f)\ndef g():\n    POINT.connect(h)\n")
    assert [c.lineno for c in _module_level_calls(sample) if _is_registration(c)] == [1]


IMPORT_ALL_THEN_WIRE = """
import importlib, pkgutil, labyard
from labyard import hooks
for info in pkgutil.walk_packages(labyard.__path__, "labyard."):
    importlib.import_module(info.name)
print("after imports", sorted(p.name for p in hooks.ALL_POINTS if p.wired))
from labyard.app import wire_hooks
wire_hooks()
print("after wiring", sorted(p.name for p in hooks.ALL_POINTS if not p.wired))
print("points", len(hooks.ALL_POINTS))
"""


def test_importing_every_module_wires_nothing_and_wire_hooks_wires_everything() -> None:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_THEN_WIRE], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "after imports []"
    assert out[1] == "after wiring []"
    assert int(out[2].split()[1]) >= 5


def test_lab_files_are_reached_only_through_the_labs_file_service() -> None:
    """The permission check for a lab's files lives in labs.file_service, not in routers."""
    edges = import_edges()
    web_modules = ("labyard.labs.router", "labyard.labs.lab_pages", "labyard.labs.pages")
    direct = {
        source: where
        for (source, target), where in edges.items()
        if source in web_modules and target == "labyard.labs.files"
    }
    assert not direct, f"lab files used without labs.file_service: {direct}"
    assert any(s in web_modules for s, t in edges if t == "labyard.labs.file_service")
