"""STYLE.md habit 3: domain/ is pure. It imports no transport, storage, telemetry or gateway
library, no generated code, and never reads the clock or the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_FILES = sorted(ROOT.glob("services/*/src/*/domain/*.py"))
FORBIDDEN_MODULES = (
    "grpc",
    "google.protobuf",
    "taskforge",  # generated code (taskforge_common is allowed)
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "stripe",
    "opentelemetry",
    "asyncio",
    "os",
    "time",
    "random",
)
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "getenv"}


def imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_there_is_a_domain_to_check() -> None:
    assert any("taskforge_metering" in str(p) for p in DOMAIN_FILES)


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_module_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text())
    bad_imports = [
        name
        for name in imported_modules(tree)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN_MODULES)
    ]
    assert not bad_imports, f"{path.name} imports {bad_imports}"
    clock_reads = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in FORBIDDEN_CALLS
    ]
    assert not clock_reads, f"{path.name} reads the clock or environment: {clock_reads}"
