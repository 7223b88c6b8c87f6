"""Layer rules of DESIGN.md §2 that import-linter cannot express on its own.

A context's ``tables`` module is its private storage: other contexts reach its data through its
``service`` functions, never by importing its tables. Only the context itself, the migrations (which
need every table) and the web app assembly (which wires engine and metadata) may import them; tests
may too, and live outside ``tradewindow/`` so the walk below never sees them.

Floors and model purity are checked by import-linter (``.importlinter``), run by ``make test``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "tradewindow"

# Modules (and the packages below them) that may import any context's tables.
TABLE_IMPORTERS_EVERYWHERE = ("tradewindow.migrations", "tradewindow.web.app")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    return imports_in_source(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def imports_in_source(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """Every module a source imports, relative imports resolved, ``from X import y`` also as ``X.y``."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*")
    return found


def tables_owner(imported: str) -> str | None:
    """``tradewindow.X`` when ``imported`` is ``tradewindow.X.tables`` or a module inside it."""
    parts = imported.split(".")
    if len(parts) >= 3 and parts[0] == "tradewindow" and parts[2] == "tables":
        return ".".join(parts[:2])
    return None


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_a_context_never_imports_another_contexts_tables() -> None:
    offences = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        importer = module_name(path)
        if any(within(importer, allowed) for allowed in TABLE_IMPORTERS_EVERYWHERE):
            continue
        for lineno, imported in imported_modules(path):
            owner = tables_owner(imported)
            if owner is not None and not within(importer, owner):
                offences.append(f"{path.relative_to(PACKAGE_ROOT.parent)}:{lineno} imports {imported}")
    assert not offences, (
        "A context reaches another context's data through its service, never its tables:\n  "
        + "\n  ".join(sorted(set(offences)))
    )


def test_the_rule_sees_absolute_relative_and_from_imports() -> None:
    # The checker itself, on made-up sources, so a refactoring of it cannot make it blind.
    owners = {tables_owner(m) for m in ("tradewindow.registry.tables", "tradewindow.registry.tables.x")}
    assert owners == {"tradewindow.registry"}
    assert tables_owner("tradewindow.registry.service") is None
    assert tables_owner("tradewindow.tables") is None

    source = (
        "from ..registry import tables\n"
        "from tradewindow.tariff.tables import measures\n"
        "import tradewindow.bonded.tables as bt\n"
        "from . import tables\n"
    )
    imports = {m for _, m in imports_in_source(source, "tradewindow.customs.service", is_package=False)}
    assert {
        "tradewindow.registry.tables",
        "tradewindow.tariff.tables",
        "tradewindow.bonded.tables",
        "tradewindow.customs.tables",
    } <= imports
