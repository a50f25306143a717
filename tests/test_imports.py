"""The import graph (DESIGN.md, "Every import points down"): ``mjsim`` and ``bot`` never import
each other, and the core imports no platform library.

Read from the source with ``ast`` (nothing is imported), so a lazy import inside a function
counts too: that is where a wrong arrow usually hides.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_LIBRARIES = ("telegram", "discord", "playwright")


def imports(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (as a dotted name) -> the top-level modules it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
        found[module] = names
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{module} imports {name}"
        for module, names in imports(package).items()
        for name in sorted(names)
        if name.split(".")[0] in forbidden
    ]


def test_the_simulator_imports_nothing_from_the_bot() -> None:
    assert offenders("mjsim", ("bot", "adapters")) == []


@pytest.mark.parametrize("package", ["bot", "adapters"])
def test_the_bot_imports_the_simulator_only_where_it_is_started(package: str) -> None:
    """The simulator is a sibling: the composition root, the CLI and the check start it."""
    allowed = {"bot.app", "bot.cli", "bot.checkup"}
    found = [line for line in offenders(package, ("mjsim",)) if line.split()[0] not in allowed]
    assert found == []


def test_the_core_imports_no_platform_library() -> None:
    assert offenders("bot", PLATFORM_LIBRARIES) == []


def test_the_core_imports_adapters_only_from_the_composition_root() -> None:
    found = [line for line in offenders("bot", ("adapters",)) if line.split()[0] != "bot.app"]
    assert found == []
