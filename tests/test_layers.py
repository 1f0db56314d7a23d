"""The package's layering, read from every module's imports (``ast``; function-level and ``TYPE_CHECKING``
imports included): ``control`` below ``envs`` and ``baselines``, neither of those importing the other, and
no import cycle between the packages of ``equiglb`` (docs/baselines.md, "Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: package -> the packages it must never import (any module of them, at any place in the file).
FORBIDDEN: dict[str, frozenset[str]] = {
    "control": frozenset({"envs", "baselines", "agents", "sweep", "datasets"}),
    "envs": frozenset({"baselines", "agents", "sweep"}),
    "baselines": frozenset({"envs", "agents", "sweep"}),
}


def module_name(path: Path, src: Path) -> str:
    """Dotted name of the module at ``path`` under ``src`` (``pkg/__init__.py`` is ``pkg``)."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, src: Path) -> set[str]:
    """Every module ``path`` imports anywhere in its body (relative imports resolved; ``from a import b``
    counts as ``a`` and ``a.b``, since ``b`` may be a submodule)."""
    name = module_name(path, src)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{alias.name}" for alias in node.names if alias.name != "*")
    return out


def package_of(module: str, root: str = "equiglb") -> str | None:
    """The package of ``root`` a module belongs to (its second dotted component: ``equiglb.envs.core`` ->
    ``envs``, ``equiglb.ledger`` -> ``ledger``); None for the root itself and for other distributions."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == root else None


def package_imports(src: Path, root: str = "equiglb") -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the modules of the first that import the second."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted((src / root).rglob("*.py")):
        mod = module_name(path, src)
        pkg = package_of(mod, root)
        if pkg is None:
            continue
        for target in imported_modules(path, src):
            other = package_of(target, root)
            if other is not None and other != pkg:
                graph.setdefault(pkg, {}).setdefault(other, set()).add(mod)
    return graph


def layer_violations(graph: dict[str, dict[str, set[str]]]) -> list[str]:
    """Each import that :data:`FORBIDDEN` rules out, as ``"module imports package"``."""
    return sorted(f"{mod} imports equiglb.{other}"
                  for pkg, banned in FORBIDDEN.items()
                  for other, mods in graph.get(pkg, {}).items() if other in banned
                  for mod in mods)


def subpackages(src: Path, root: str = "equiglb") -> set[str]:
    """The packages of ``root`` that are folders (``control``, ``envs``, ...), not single modules."""
    return {p.parent.name for p in (src / root).glob("*/__init__.py")}


def package_cycles(graph: dict[str, dict[str, set[str]]], nodes: set[str]) -> list[list[str]]:
    """The import cycles among the packages ``nodes`` (edges between two of them only): each strongly
    connected component of more than one package (sorted), found by reachability (a dozen nodes)."""
    graph = {p: {o: m for o, m in targets.items() if o in nodes} for p, targets in graph.items() if p in nodes}

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), {}):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {n: reach(n) for n in nodes}
    components = {frozenset({n} | {m for m in reachable[n] if n in reachable[m]}) for n in nodes}
    return sorted(sorted(c) for c in components if len(c) > 1)


def test_control_envs_baselines_layering():
    graph = package_imports(SRC)
    assert "control" in graph, "no module of equiglb.control imports another package: is SRC right?"
    assert layer_violations(graph) == []


def test_no_import_cycle_between_packages():
    """Between the folder packages; the single-module layer (``ledger``, ``scenario``, ``evaluation``, ...)
    is not a package."""
    packages = subpackages(SRC)
    assert {"control", "envs", "baselines", "agents", "sweep", "traces"} <= packages
    assert package_cycles(package_imports(SRC), packages) == []


def _write(src: Path, rel: str, text: str) -> None:
    path = src / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("rel, text, expected", [
    ("equiglb/control/bad.py", "def f():\n    from equiglb.envs import core\n",
     "equiglb.control.bad imports equiglb.envs"),
    ("equiglb/control/bad.py", "from ..baselines.policy import Policy\n",
     "equiglb.control.bad imports equiglb.baselines"),
    ("equiglb/envs/bad.py", "import typing\nif typing.TYPE_CHECKING:\n    import equiglb.baselines.mpc\n",
     "equiglb.envs.bad imports equiglb.baselines"),
    ("equiglb/baselines/bad.py", "from equiglb import envs\n", "equiglb.baselines.bad imports equiglb.envs"),
    ("equiglb/baselines/bad.py", "class A:\n    def f(self):\n        import equiglb.agents.cli\n",
     "equiglb.baselines.bad imports equiglb.agents"),
])
def test_checker_catches_a_forbidden_import(tmp_path, rel, text, expected):
    """The checker itself: a synthetic tree with one forbidden import (at module level, in a function, under
    TYPE_CHECKING, relative) is reported; the same tree without it is clean."""
    _write(tmp_path, "equiglb/__init__.py", "")
    _write(tmp_path, "equiglb/control/__init__.py", "from equiglb.scenario import Scenario\n")
    _write(tmp_path, "equiglb/envs/__init__.py", "from equiglb.control import routing\n")
    _write(tmp_path, "equiglb/baselines/__init__.py", "from equiglb.control import routing\n")
    assert layer_violations(package_imports(tmp_path)) == []
    _write(tmp_path, rel, text)
    assert layer_violations(package_imports(tmp_path)) == [expected]


def test_checker_catches_a_cycle(tmp_path):
    _write(tmp_path, "equiglb/__init__.py", "")
    _write(tmp_path, "equiglb/traces/__init__.py", "from equiglb.scenario import Scenario\n")
    _write(tmp_path, "equiglb/envs/__init__.py", "from equiglb.traces import load\n")
    _write(tmp_path, "equiglb/scenario.py", "import numpy\n")
    assert package_cycles(package_imports(tmp_path), subpackages(tmp_path)) == []
    _write(tmp_path, "equiglb/traces/x.py", "from . import y\ndef f():\n    from ..envs import core\n")
    _write(tmp_path, "equiglb/traces/y.py", "")
    assert package_cycles(package_imports(tmp_path), subpackages(tmp_path)) == [["envs", "traces"]]
