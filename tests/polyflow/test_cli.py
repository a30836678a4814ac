"""`polyflow health` as an operator runs it: a table, exit 1 naming any store that is down."""

from __future__ import annotations

import pytest

from stores.registry import STORES
from tests.helpers import CATALOG_FIXTURES, run_cli

CLOSED_PORT_URLS = {
    "postgres": "postgresql+psycopg://polyflow:polyflow@127.0.0.1:1/polyflow",
    "mongodb": "mongodb://127.0.0.1:1/polyflow",
    "redis": "redis://127.0.0.1:1/0",
    "cassandra": "cassandra://127.0.0.1:1/polyflow",
    "elasticsearch": "http://127.0.0.1:1",
    "neo4j": "bolt://127.0.0.1:1",
}


def health_rows(output: str) -> dict[str, str]:
    """store name -> its table row."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) > 2 and cells[1] in CLOSED_PORT_URLS:
            rows[cells[1]] = line
    return rows


def test_all_six_stores_report_healthy_with_versions(stores: None) -> None:
    result = run_cli("health")

    assert result.returncode == 0, result.stdout + result.stderr
    rows = health_rows(result.stdout)
    assert set(rows) == {store.name for store in STORES}
    assert all(" yes " in row for row in rows.values()), result.stdout


@pytest.mark.parametrize("down", sorted(CLOSED_PORT_URLS))
def test_a_down_store_is_named_and_the_others_still_report(down: str, stores: None) -> None:
    result = run_cli("health", **{f"POLYFLOW_{down.upper()}_URL": CLOSED_PORT_URLS[down]})

    assert result.returncode == 1
    rows = health_rows(result.stdout)
    assert set(rows) == set(CLOSED_PORT_URLS), result.stdout
    assert " NO " in rows[down]
    assert "127.0.0.1:1 " in rows[down]
    assert all(" yes " in row for name, row in rows.items() if name != down), result.stdout


def test_catalog_import_prints_the_counts_and_search_finds_the_products(tenant: str) -> None:
    imported = run_cli(
        "catalog", "import", str(CATALOG_FIXTURES / "products.csv"), "--tenant", tenant, timeout=120
    )
    found = run_cli("search", "kettle", "--tenant", tenant)

    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "│    8 │        8 │       0 │         0 │        0 │" in imported.stdout
    assert found.returncode == 0, found.stdout + found.stderr
    assert "KET-001" in found.stdout and "kitchen/kettles" in found.stdout


def test_catalog_import_over_the_reject_share_exits_1_saying_why(tenant: str) -> None:
    result = run_cli(
        "catalog", "import", str(CATALOG_FIXTURES / "nasty.csv"), "--tenant", tenant, timeout=120
    )

    assert result.returncode == 1
    assert "import failed" in result.stdout and "nothing was published" in result.stdout


@pytest.mark.parametrize("command", [("health",), ("stack", "status")])
def test_commands_print_no_driver_warnings(command: tuple[str, ...], stores: None) -> None:
    """Every Cassandra Cluster names its protocol version: no "Downgrading ..." on any command."""
    result = run_cli(*command)

    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "WARNING" not in output and "Downgrading" not in output, output


def test_an_unencoded_password_is_refused_naming_the_variable_not_the_password() -> None:
    result = run_cli("health", POLYFLOW_REDIS_URL="redis://:Kq7@Zx9/Wm4#Vt2%Rb8@127.0.0.1:6379/0")

    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "POLYFLOW_REDIS_URL" in output
    assert "Traceback" not in output
    assert [piece for piece in ("Kq7", "Zx9", "Wm4", "Vt2", "Rb8") if piece in output] == []
