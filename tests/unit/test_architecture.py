"""The house rules of `docs/architecture.md`, kept by walking the imports with `ast`.

Each rule names the file and line that breaks it, so a violation is fixed where it is,
not argued about in review. The walk reads source only: nothing under `app/` is imported.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"

# Lower layers never import higher ones. A unit is a top-level module or package of `app`,
# except the HTTP boundary (see `_is_http`), which is one layer of its own above the
# domains and the runtime: routers and request dependencies may use everything below,
# and nothing below may import them.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "clock",
        "ids",
        "money",
        "statuses",
        "metrics",
        "errors",
        "settings",
        "logging",
        "backoff",
        "unavailable",
        "validation",
        "__init__",
    ),
    ("db", "net", "storage"),
    ("models",),
    ("providers",),
    ("auth",),
    ("billing",),
    ("media",),
    ("delivery",),
    ("jobs",),
    ("inbound",),
    ("ops",),
    ("runtime",),
    ("http", "guard", "request_id", "serving"),  # routers, dependencies, middleware
    ("workers",),
    ("main", "cli", "openapi"),
)
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
# The simulator stands for the outside world: it shares nothing with the gateway but
# the ground floor and the infrastructure (its callbacks dial through `app.net`).
ISOLATED = {"simulator"}
ISOLATED_MAY_USE = 1  # the highest layer an isolated unit may import
HTTP_MODULES = {"app/ops/admin.py", "app/db/session.py"}


def _is_http(rel: str) -> bool:
    if rel.startswith("app/simulator/"):
        return False  # the simulator is a world of its own (see ISOLATED)
    name = rel.rsplit("/", 1)[-1]
    return (
        name in {"router.py", "dependencies.py"} or name.endswith("_router.py")
    ) or rel in HTTP_MODULES


# Where a transaction may be committed: the request boundary. Workers use
# `app.db.engine.transaction`, which commits through `session.begin()`.
COMMIT_ALLOWED = {"app/db/session.py"}

SQL_CONSTRUCTORS = {"select", "update", "insert", "delete", "text", "literal_column", "func"}
SQL_METHODS = {"execute", "scalar", "scalars", "stream_scalars"}


def _sql_allowed(rel: str) -> bool:
    """Statements are written in repositories; db/ and models/ define the schema."""
    return (
        rel.endswith("/repository.py")
        or rel.startswith(("app/db/", "app/models/"))
        or "/repositories/" in rel
    )


@dataclass(frozen=True)
class Import:
    source: str  # the importing file, relative to the repository root
    line: int
    target: str  # dotted module name, e.g. "app.jobs.state"


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _files() -> tuple[Path, ...]:
    return tuple(sorted(APP.rglob("*.py")))


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of import nodes under `if TYPE_CHECKING:`: annotations, not dependencies."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids |= {id(inner) for stmt in node.body for inner in ast.walk(stmt)}
    return ids


def _imports(path: Path) -> list[Import]:
    found = []
    tree = _tree(path)
    skipped = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [Import(_rel(path), node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(path, node)
            found.append(Import(_rel(path), node.lineno, module))
            # `from app import jobs` imports the package `app.jobs`.
            if module == "app":
                found += [Import(_rel(path), node.lineno, f"app.{a.name}") for a in node.names]
    return [i for i in found if i.target == "app" or i.target.startswith("app.")]


@cache
def _modules() -> dict[str, str]:
    """Dotted module name → path relative to the root, for every module of `app`."""
    return {_module_name(p): _rel(p) for p in _files()}


def _unit(dotted: str) -> str:
    """The unit an imported name belongs to (a `from m import name` may name a module)."""
    rel = _modules().get(dotted) or _modules().get(dotted.rsplit(".", 1)[0], "")
    if rel and _is_http(rel):
        return "http"
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _unit_of_file(path: Path) -> str:
    return "http" if _is_http(_rel(path)) else _unit(_module_name(path))


def test_every_unit_of_app_has_a_layer() -> None:
    units = {_unit_of_file(p) for p in _files()}
    unplaced = sorted(units - RANK.keys() - ISOLATED)
    assert not unplaced, f"add these to LAYERS in {_rel(Path(__file__))}: {unplaced}"


def test_no_import_reaches_up_a_layer() -> None:
    violations = []
    for path in _files():
        here = _unit_of_file(path)
        if here in ISOLATED:
            continue
        for imp in _imports(path):
            there = _unit(imp.target)
            if there in ISOLATED and here not in LAYERS[-1]:
                violations.append(f"{imp.source}:{imp.line} imports {imp.target} (simulator)")
            elif there in RANK and RANK[there] > RANK[here]:
                violations.append(f"{imp.source}:{imp.line} ({here}) imports up: {imp.target}")
    assert not violations, "\n".join(violations)


def test_the_simulator_uses_only_the_ground_floor_and_infrastructure() -> None:
    violations = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for path in _files()
        if _unit_of_file(path) in ISOLATED
        for imp in _imports(path)
        if _unit(imp.target) not in ISOLATED and RANK[_unit(imp.target)] > ISOLATED_MAY_USE
    ]
    assert not violations, "\n".join(violations)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_folder_level_import_cycle() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], str] = {}
    for path in _files():
        here = _unit_of_file(path)
        for imp in _imports(path):
            there = _unit(imp.target)
            if there != here and here != "__init__" and there != "__init__":
                edges[here].add(there)
                where.setdefault((here, there), f"{imp.source}:{imp.line}")
    cycles = _cycles(edges)
    described = [
        " ↔ ".join(c) + ": " + ", ".join(where[(a, b)] for a in c for b in c if (a, b) in where)
        for c in cycles
    ]
    assert not cycles, "\n".join(described)


def _calls(path: Path) -> list[tuple[int, str, str]]:
    """(line, kind, name) for every call; kind is "name" or "attr"."""
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                found.append((node.lineno, "name", node.func.id))
            elif isinstance(node.func, ast.Attribute):
                base = node.func.value
                owner = base.id if isinstance(base, ast.Name) else ""
                found.append((node.lineno, "attr", f"{owner}.{node.func.attr}"))
    return found


def _sqlalchemy_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def test_sql_is_written_only_in_repositories() -> None:
    violations = []
    for path in _files():
        rel = _rel(path)
        if _sql_allowed(rel) or _unit_of_file(path) in ISOLATED:
            continue
        constructors = _sqlalchemy_names(path) & SQL_CONSTRUCTORS
        for line, kind, name in _calls(path):
            owner, _, method = name.rpartition(".")
            if (kind == "name" and name in constructors and name != "func") or (
                kind == "attr" and owner == "func" and "func" in constructors
            ):
                violations.append(f"{rel}:{line} builds SQL with {name}()")
            elif kind == "attr" and method in SQL_METHODS:
                violations.append(f"{rel}:{line} runs SQL with .{method}()")
    assert not violations, "\n".join(violations)


def test_commits_happen_only_at_the_request_boundary() -> None:
    violations = [
        f"{_rel(path)}:{line} calls {name}()"
        for path in _files()
        if _rel(path) not in COMMIT_ALLOWED and _unit_of_file(path) not in ISOLATED
        for line, kind, name in _calls(path)
        if kind == "attr" and name.endswith(".commit")
    ]
    assert not violations, "\n".join(violations)


def _routers() -> list[Path]:
    """The HTTP modules that hold routes: not the request dependencies, not the session."""
    return [
        p
        for p in _files()
        if _is_http(_rel(p))
        and _rel(p) != "app/db/session.py"
        and not _rel(p).endswith("dependencies.py")
    ]


def test_the_routers_are_found() -> None:
    found = {_rel(p) for p in _routers()}
    assert {"app/ops/admin.py", "app/media/upload_router.py", "app/jobs/router.py"} <= found


def test_routers_define_no_schema_and_leave_the_session_alone() -> None:
    """HTTP only: parse, call a service, shape the answer. Schemas live in the domain's
    `schemas.py`; a router hands its session on untouched."""
    violations = []
    for path in _routers():
        rel = _rel(path)
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ClassDef):
                violations.append(f"{rel}:{node.lineno} defines class {node.name}")
        violations += [
            f"{rel}:{line} calls {name}()"
            for line, kind, name in _calls(path)
            if kind == "attr" and name.startswith("session.")
        ]
    assert not violations, "\n".join(violations)


def _is_app(node: ast.expr) -> bool:
    """`app` or `request.app`, never `request` (whose `.state` is per request)."""
    if isinstance(node, ast.Name):
        return node.id == "app"
    return isinstance(node, ast.Attribute) and node.attr == "app"


def test_runtime_state_is_reached_only_through_the_runtime() -> None:
    readers = {
        _rel(path)
        for path in _files()
        if _unit_of_file(path) not in ISOLATED
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.Attribute) and node.attr == "state" and _is_app(node.value)
    }
    assert readers == {"app/main.py", "app/runtime.py"}


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    edges: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert _cycles(edges) == expected
