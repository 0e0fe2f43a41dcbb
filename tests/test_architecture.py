"""The import rules of ARCHITECTURE.md, and the public API of ``crmbridge``.

Each module of the package belongs to one part (the folder under ``src/crmbridge``; each
connector subpackage is a part of its own). A part may import only the parts listed for it
below, which is what ARCHITECTURE.md's "Rules between the parts" says in prose.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import crmbridge

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "crmbridge"
ARCHITECTURE = (Path(__file__).resolve().parents[1] / "ARCHITECTURE.md").read_text()

CONTRACT = {"connectors.base", "core", "errors"}
CONNECTOR = CONTRACT | {"connectors.common"}

#: part -> the parts it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "core": {"errors"},
    "connectors.base": {"core", "errors"},
    "connectors.common": CONTRACT,
    "connectors.registry": CONTRACT,
    "profiles": {"core", "errors"},
    "state": {"core", "errors"},
    "connections": {"core", "errors", "connectors.base", "connectors.registry", "state"},
    "runner": {"core", "errors", "connectors.base", "profiles", "connections", "state"},
    "sync": {"core", "errors", "connectors.base", "profiles", "connections", "state", "runner"},
    "schedules": {"core", "errors", "profiles", "state", "sync", "workers"},
    "ops": {"errors", "profiles", "state"},
    "web": {
        "crmbridge",  # its __version__
        "core",
        "errors",
        "connectors.base",
        "connectors.registry",
        "profiles",
        "connections",
        "state",
        "runner",
        "sync",
    },
    "workers": {
        "core",
        "errors",
        "connectors.base",
        "profiles",
        "connections",
        "state",
        "runner",
        "sync",
        "ops",
    },
    "sandbox": {"errors"},
    "testing": CONTRACT | {"runner"},
    "cli": {"*"},
    "__main__": {"cli"},
    "crmbridge": {"*"},  # the public API re-exports
}
#: the parts a connector subpackage may import
CONNECTOR_ALLOWED = CONNECTOR
#: what the sandbox may import besides the standard library and crmbridge (ARCHITECTURE.md)
SANDBOX_THIRD_PARTY = {"cryptography"}
#: modules of the connectors package itself that are no connector
CONNECTOR_INFRASTRUCTURE = {"base", "common", "registry", "__init__"}


def part_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "crmbridge"
    if parts[1] == "connectors":
        if len(parts) == 2:
            return "connectors.registry"  # the package's __init__ belongs with the registry
        return f"connectors.{parts[2]}"
    return parts[1]


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(SRC).with_suffix("").parts)
    return name.removesuffix(".__init__")


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "crmbridge" or name.startswith("crmbridge.")}


def allowed_for(part: str) -> set[str]:
    if part.startswith("connectors.") and part.split(".")[1] not in CONNECTOR_INFRASTRUCTURE:
        return CONNECTOR_ALLOWED
    return ALLOWED[part]


def test_every_part_has_a_rule() -> None:
    for path in PACKAGE.rglob("*.py"):
        part = part_of(module_name(path))
        assert part.startswith("connectors.") or part in ALLOWED, f"{path}: unknown part {part}"


def test_parts_import_only_what_architecture_allows() -> None:
    broken: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        part = part_of(module)
        allowed = allowed_for(part)
        if "*" in allowed:
            continue
        for imported in sorted(imports_of(path)):
            other = part_of(imported)
            if other != part and other not in allowed:
                broken.append(f"{module} ({part}) imports {imported} ({other})")
    assert not broken, "imports that break ARCHITECTURE.md's rules:\n" + "\n".join(broken)


def _third_party_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found - set(sys.stdlib_module_names) - {"crmbridge", "__future__"}


def test_the_sandbox_imports_only_the_standard_library_and_cryptography() -> None:
    broken = {
        module_name(path): sorted(extra)
        for path in sorted((PACKAGE / "sandbox").rglob("*.py"))
        if (extra := _third_party_imports(path) - SANDBOX_THIRD_PARTY)
    }
    assert not broken, f"the sandbox imports more than ARCHITECTURE.md allows: {broken}"
    assert "`cryptography`" in ARCHITECTURE


def test_no_connector_is_named_in_code_outside_its_package() -> None:
    """Connectors are found through entry points only (ARCHITECTURE.md)."""
    connectors = {
        p.name
        for p in (PACKAGE / "connectors").iterdir()
        if p.is_dir() and p.name not in CONNECTOR_INFRASTRUCTURE and not p.name.startswith("_")
    }
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        for imported in imports_of(path):
            other = part_of(imported)
            if (
                other.startswith("connectors.")
                and other.split(".")[1] in connectors
                and part_of(module) != other
            ):
                offenders.append(f"{module} imports {imported}")
    assert not offenders, offenders


def test_the_rules_are_written_in_architecture_md() -> None:
    for heading in ("## The parts", "## How data flows", "## Rules between the parts"):
        assert heading in ARCHITECTURE
    for part in ALLOWED:
        if part not in ("crmbridge", "__main__", "connectors.registry", "connectors.base"):
            assert f"`{part.split('.')[-1]}" in ARCHITECTURE, f"{part} is not described"


def test_public_api_is_all_of_crmbridge() -> None:
    for name in crmbridge.__all__:
        assert getattr(crmbridge, name) is not None, name
    assert set(crmbridge.__all__) <= set(dir(crmbridge))
    with pytest.raises(AttributeError):
        crmbridge.no_such_name  # noqa: B018


def test_public_names_are_the_defining_modules_objects() -> None:
    for name, module in crmbridge._EXPORTS.items():
        assert getattr(crmbridge, name) is getattr(importlib.import_module(module), name)


def test_importing_crmbridge_loads_nothing_heavy() -> None:
    code = (
        "import sys, crmbridge, crmbridge.errors; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pyarrow', 'duckdb', 'sqlalchemy', 'crmbridge.runner')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_all_lists_exactly_the_exports() -> None:
    assert set(crmbridge.__all__) == {"__version__", *crmbridge._EXPORTS}
