"""The import graph (DESIGN.md, "Every import points down"): ``mjsim`` and ``bot`` never import
each other, the core imports no platform library, no module of ``bot/`` or ``adapters/`` takes
part in an import cycle, adapters never import each other, and only the CLI imports the
composition root.

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


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph(*packages: str) -> dict[str, set[str]]:
    """Each module of ``packages`` -> the modules of ``packages`` it imports (absolute and
    relative, at any depth: function-level and ``TYPE_CHECKING`` imports count too).

    ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``.
    """
    files = {module_name(path): path for p in packages for path in (ROOT / p).rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for module, path in sorted(files.items()):
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    name = f"{base}.{alias.name}"
                    targets.add(name if name in files else base)
        # an import of a.b.c names a module of ours, or (a library's) nothing we track
        edges[module] = {t for t in targets if t in files and t != module}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a list of modules, first repeated last) per strongly connected group."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    found = []
    for group in groups:
        start = min(group)
        path, seen = [start], {start}
        while True:  # walk inside the group until we are back at the start
            options = sorted(edges[path[-1]] & group)
            if start in options:
                found.append([*path, start])
                break
            step = next((o for o in options if o not in seen), None)
            if step is None:  # a dead end inside the group: back up
                path.pop()
                if not path:
                    found.append(sorted(group))
                    break
                continue
            seen.add(step)
            path.append(step)
    return sorted(found)


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


def test_no_import_cycles() -> None:
    """Among the modules of bot/, adapters/ and mjsim/ (each cycle found is listed)."""
    assert cycles(graph("bot", "adapters", "mjsim")) == []


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(edges) == [["a", "b", "c", "a"]]


def test_adapters_never_import_each_other() -> None:
    """Where two adapters meet (Telegram's Mini App is the web adapter's page), the
    composition root puts them together."""
    found = [
        f"{module} imports {target}"
        for module, targets in graph("adapters").items()
        for target in sorted(targets)
        if target.split(".")[:2] != module.split(".")[:2] and module.count(".") >= 1
    ]
    assert found == []


def test_only_the_cli_imports_the_composition_root() -> None:
    """bot.app builds everything; nothing it builds may reach back up to it (tests and
    bench/ may)."""
    found = [
        module
        for module, targets in graph("bot", "adapters", "mjsim").items()
        if "bot.app" in targets and module != "bot.cli"
    ]
    assert found == []
