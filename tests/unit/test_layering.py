"""The layering rules of CONVENTIONS.md, checked on the source so a regression fails CI.

Routers are HTTP only (no SQL, no commits, no inline schemas); only the entry points
reach the worker loops; no module below the HTTP layer imports a router; handlers reach
runtime state through `RuntimeDep` alone. The simulator is a separate fake app and is
left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
ENTRY_POINTS = {"app.main", "app.cli"}
SQL_CALLS = {"select", "update", "insert", "delete", "text"}


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def gateway_modules() -> dict[str, ast.Module]:
    return {
        module_name(path): ast.parse(path.read_text(), str(path))
        for path in sorted(APP.rglob("*.py"))
        if "simulator" not in path.relative_to(APP).parts
    }


MODULES = gateway_modules()
ROUTERS = sorted(
    name
    for name in MODULES
    if name.rsplit(".", 1)[-1] in {"router", "upload_router"} or name == "app.ops.admin"
)


def imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def calls(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(functions, methods) called: `select(...)` is a function, `session.commit()` a method
    (so `@router.delete(...)` is not mistaken for SQL)."""
    functions: set[str] = set()
    methods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                functions.add(func.id)
            elif isinstance(func, ast.Attribute):
                methods.add(func.attr)
    return functions, methods


def session_methods(tree: ast.Module) -> set[str]:
    """Methods called on a name `session`: `session.get(...)` → get."""
    return {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "session"
    }


def test_the_routers_are_found() -> None:
    assert "app.ops.admin" in ROUTERS
    assert "app.media.upload_router" in ROUTERS
    assert len(ROUTERS) >= 8


@pytest.mark.parametrize("name", ROUTERS)
def test_a_router_holds_no_sql_and_no_commit(name: str) -> None:
    tree = MODULES[name]
    sqlalchemy = {module for module in imported(tree) if module.startswith("sqlalchemy")}
    functions, methods = calls(tree)

    assert sqlalchemy == set()
    assert functions & SQL_CALLS == set()
    assert methods & {"execute", "commit", "flush", "refresh", "scalars"} == set()
    assert session_methods(tree) == set()  # a router hands its session on, untouched


@pytest.mark.parametrize("name", ROUTERS)
def test_a_router_defines_no_schema(name: str) -> None:
    classes = [node.name for node in ast.walk(MODULES[name]) if isinstance(node, ast.ClassDef)]

    assert classes == []


def test_only_the_entry_points_import_the_workers() -> None:
    importers = {
        name
        for name, tree in MODULES.items()
        if not name.startswith("app.workers")
        and any(module.startswith("app.workers") for module in imported(tree))
    }

    assert importers <= ENTRY_POINTS


def test_no_module_below_http_imports_a_router() -> None:
    routers = set(ROUTERS)
    importers = {
        name
        for name, tree in MODULES.items()
        if name not in ENTRY_POINTS and imported(tree) & routers
    }

    assert importers == set()


def _is_app(node: ast.expr) -> bool:
    """`app` or `request.app`, never `request` (whose `.state` is per request)."""
    if isinstance(node, ast.Name):
        return node.id == "app"
    return isinstance(node, ast.Attribute) and node.attr == "app"


def test_runtime_state_is_reached_only_through_the_runtime() -> None:
    readers = {
        name
        for name, tree in MODULES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "state" and _is_app(node.value)
    }

    assert readers == {"app.main", "app.runtime"}
