"""The package's layers, top to bottom, and the rule that holds them: a module imports only from its own layer or
the ones below, and no two modules import each other, however indirectly (docs/ARCHITECTURE.md is the map).

    cli      the command line: parser, one module per command, the renderer, the terminal UI, the wizard
    sandbox  the emulated account (moto behind a local server)
    flows    what changes an account: provision, teardown, deploy, deployments, locking, the template
    aws      the client, one module per resource kind, discovery, waiting, concurrency
    local    this machine's state: paths, records, the SSH config
    core     plain data and rules: plan, facts, catalog, cost, capacity, permissions, tags, events, errors

Every import counts, also one inside a function (it runs when that function does); one under
`if TYPE_CHECKING:` never runs and only names a type, so it does not.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "amazonei_setup"
LAYERS = ("core", "local", "aws", "flows", "sandbox", "cli")  # bottom first


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node except what sits under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                       for a in node.names]
        else:
            continue
        found |= {t for t in targets if t.startswith("amazonei_setup.") and t in known and t != name}
    return found


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_every_module_sits_in_a_layer():
    loose = [m for m in modules() if layer_of(m) is None
             and m not in ("amazonei_setup", "amazonei_setup.__main__")]
    assert loose == [], f"put these in a layer's package: {loose}"


def test_no_module_imports_from_a_layer_above_its_own():
    upward = sorted(f"{m} -> {d}" for m, deps in graph().items() for d in deps
                    if layer_of(m) is not None and layer_of(d) is not None and layer_of(d) > layer_of(m))
    assert upward == []


def test_no_import_cycles():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in edges:
        if module not in index:
            visit(module)
    assert cycles == []


def test_a_module_of_an_upper_layer_that_imports_downward_is_allowed_and_an_upward_one_is_caught(tmp_path):
    """The rule itself, on a made-up pair: the checker must see an upward import when there is one."""
    assert layer_of("amazonei_setup.core.plan") < layer_of("amazonei_setup.cli.main")
    tree = ast.parse("def f():\n    from amazonei_setup.cli.main import main\n")
    names = {n.module for n in _runtime_nodes(tree) if isinstance(n, ast.ImportFrom)}
    assert names == {"amazonei_setup.cli.main"}
    typed = ast.parse("from typing import TYPE_CHECKING\n"
                      "if TYPE_CHECKING:\n    from amazonei_setup.cli.main import x\n")
    assert not [n for n in _runtime_nodes(typed) if isinstance(n, ast.ImportFrom) and n.module.endswith("main")]
