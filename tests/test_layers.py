"""The layers of docs/design.md, checked on the imports of every module.

Each rule says which modules a layer must not import (at any depth of the file, lazy
imports included), so the diagram cannot silently stop being true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cosloss_cli"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to full names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}

#: layer (a module or a package prefix) -> what it must not import.
RULES = {
    "cosloss_cli.core": ["click", "rich", "cosloss_cli.readers", "cosloss_cli.pipeline", "cosloss_cli.cli"],
    "cosloss_cli._fallback": ["cosloss_cli.core", "click"],
    "cosloss_cli.params": ["numpy", "click"],
    "cosloss_cli.errors": ["numpy", "click"],
    "cosloss_cli.readers": ["click", "rich", "cosloss_cli.pipeline", "cosloss_cli.cli", "cosloss_cli.batch"],
    "cosloss_cli.pipeline": ["click", "rich", "cosloss_cli.cli", "cosloss_cli.render", "cosloss_cli.batch"],
    "cosloss_cli.batch": ["click", "cosloss_cli.cli"],
    "cosloss_cli.render": ["click", "cosloss_cli.cli"],
    "cosloss_cli.writers": ["click", "cosloss_cli.cli"],
    "cosloss_cli.output": ["numpy", "click", "cosloss_cli.cli"],
    "cosloss_cli.options": ["numpy", "cosloss_cli.cli"],
    "cosloss_cli.cli.compute": ["cosloss_cli.cli.batch"],
    "cosloss_cli.cli.batch": ["cosloss_cli.cli.compute"],
}


def in_layer(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


@pytest.mark.parametrize("layer", sorted(RULES))
def test_layer_does_not_import_what_is_above_it(layer: str) -> None:
    members = [name for name in MODULES if in_layer(name, layer)]
    assert members, f"no module {layer}: the diagram of docs/design.md names a module that is gone"
    broken = [
        (name, imported)
        for name in members
        for imported in MODULES[name]
        if any(in_layer(imported, forbidden) for forbidden in RULES[layer])
    ]
    assert broken == []


def test_the_import_graph_is_read() -> None:
    """The rules above would pass vacuously if imports were not found: check known edges."""
    assert "cosloss_cli.batch" in MODULES["cosloss_cli.cli.batch"]
    assert "cosloss_cli.readers" in MODULES["cosloss_cli.pipeline"]
    assert "cosloss_cli._kernel" in MODULES["cosloss_cli.core"]
