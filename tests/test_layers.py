"""The layering of docs/architecture.md holds in the code: no module imports one below it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "watchkeeper"


def _table() -> list[tuple[str, str]]:
    """(module, what it may import) rows of the architecture table, in order."""
    rows = []
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        m = re.match(r"\| `watchkeeper\.(\w+)` \|.*\| (.*) \|$", line)
        if m:
            rows.append((m.group(1), m.group(2)))
    return rows


def _imports(module: str) -> set[str]:
    """Every ``watchkeeper.<x>`` a module imports, at the top or inside functions."""
    path = PACKAGE / module
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    found: set[str] = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
                if node.module == "watchkeeper":
                    names = [f"watchkeeper.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "watchkeeper" and len(parts) > 1:
                    found.add(parts[1])
    found.discard(module)
    return found


def test_every_module_is_in_the_table() -> None:
    listed = {m for m, _ in _table()}
    present = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    present -= {"__init__", "__main__", "__pycache__", "py"}
    assert present - listed == set(), "add these to docs/architecture.md"


def test_no_module_imports_one_below_it() -> None:
    rows = _table()
    order = [m for m, _ in rows]
    lazy_roots = {"__init__", "__main__"}
    for i, (module, allowed_text) in enumerate(rows):
        imported = _imports(module) - lazy_roots
        below = {m for m in imported if m in order and order.index(m) > i}
        assert not below, f"watchkeeper.{module} imports modules below it: {sorted(below)}"
        if "everything" in allowed_text:
            continue
        allowed = set(re.findall(r"\b([a-z_]+)\b", allowed_text))
        assert imported <= allowed, (
            f"watchkeeper.{module} imports {sorted(imported - allowed)}, "
            "which docs/architecture.md does not list"
        )
