"""The folder layout is the architecture: imports point down the layers and never back up.

polyflow -> deployments -> flows -> tasks -> stores | expectations -> domain. These tests read
the source (no store needed) and fail when someone adds an upward import or a package cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {
    "polyflow": 5,
    "deployments": 4,
    "flows": 3,
    "tasks": 2,
    "stores": 1,
    "expectations": 1,
    "domain": 0,
}
HEAVY = (
    "prefect",
    "sqlalchemy",
    "psycopg",
    "pymongo",
    "redis",
    "cassandra",
    "elasticsearch",
    "neo4j",
    "great_expectations",
    "pandas",
)


def imported_packages(package: str) -> dict[str, set[str]]:
    """For each other top-level package `package` imports: the modules that import it."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in LAYERS and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_import_between_packages_points_down_a_layer() -> None:
    upward = [
        f"{module} imports {target}"
        for package in LAYERS
        for target, modules in imported_packages(package).items()
        if LAYERS[target] >= LAYERS[package]
        for module in sorted(modules)
    ]
    assert upward == []


def test_no_cycle_between_top_level_packages() -> None:
    graph = {package: set(imported_packages(package)) for package in LAYERS}

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            step == goal or (step not in seen and reaches(step, goal, seen | {step}))
            for step in graph[start]
        )

    assert [package for package in LAYERS if reaches(package, package)] == []


def test_polyflow_help_imports_no_driver_and_no_prefect() -> None:
    probe = (
        "import sys\n"
        "from polyflow.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert "Usage" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"
