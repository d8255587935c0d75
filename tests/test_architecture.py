"""The house rules of the code's shape, checked rather than hoped for.

- Imports run one way: no module imports, directly or through others, a module that imports
  it back (a circle makes import order matter and rooms impossible to read alone).
- ``models/`` (the networks and their runtime) never imports ``gateway/``: the product uses the
  models, not the other way round, and training runs without the gateway.
- The runtime never imports training: a worker must not load the synthetic-data generator.
- Modules stay under 400 lines and functions under 60, so that each can be read in one sitting.
  Generated data (``gateway/deid/data``) is not code and is not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "models")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


@pytest.fixture(scope="module")
def graph():
    # Imports under ``if TYPE_CHECKING:`` never run, so they cannot make a circle at run time.
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)


def _circles(graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_through_others(graph):
    assert _circles(graph) == []


def test_the_models_never_import_the_gateway(graph):
    assert not graph.chain_exists(importer="models", imported="gateway", as_packages=True)


def test_the_runtime_never_imports_training(graph):
    training = {m for m in graph.modules if m == "models.training" or m.startswith("models.training.")}
    runtime = sorted(set(graph.modules) - training)
    offenders = {m: sorted(graph.find_upstream_modules(m) & training) for m in runtime}
    assert {m: found for m, found in offenders.items() if found} == {}


def _sources() -> list[Path]:
    files = []
    for package in PACKAGES:
        files += [p for p in (ROOT / package).rglob("*.py") if "data" not in p.relative_to(ROOT).parts]
    return sorted(files)


def test_modules_stay_short():
    long = {str(p.relative_to(ROOT)): n for p in _sources()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_functions_stay_short():
    long = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = length
    assert long == {}
