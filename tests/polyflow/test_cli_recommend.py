"""`polyflow recommend` and `polyflow recommendations rebuild`, run as the real command."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import run_cli
from tests.recommendation_seed import forget, place_orders, seed_catalog


@pytest.fixture(autouse=True)
def clean(tenant: str) -> Iterator[None]:
    yield
    forget(tenant)


def test_rebuild_then_recommend_a_product_and_a_customer(tenant: str) -> None:
    seed_catalog(tenant)
    place_orders(tenant)

    rebuilt = run_cli("recommendations", "rebuild", "--tenant", tenant, "--top-n", "5", timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "gate" in rebuilt.stdout and "passed" in rebuilt.stdout

    product = run_cli("recommend", "--tenant", tenant, "--product", "A")
    assert product.returncode == 0, product.stderr
    assert "redis" in product.stdout
    bought = product.stdout.split("similar")[0]
    assert bought.index("│ B ") < bought.index("│ C ") and "0.816497" in bought

    customer = run_cli("recommend", "--tenant", tenant, "--customer", "ann")
    assert customer.returncode == 0 and "1.757522" in customer.stdout


def test_rebuild_refuses_bad_parameters_without_a_traceback() -> None:
    for option, value in (("--top-n", "0"), ("--lookback-days", "-5")):
        result = run_cli("recommendations", "rebuild", "--tenant", "acme", option, value)
        assert result.returncode == 2, result.stdout
        assert option in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_recommend_needs_exactly_one_subject_and_names_a_tenant_without_a_rebuild(
    tenant: str,
) -> None:
    both = run_cli("recommend", "--tenant", tenant, "--product", "A", "--customer", "ann")
    assert both.returncode == 2 and "exactly one" in both.stdout + both.stderr
    nothing = run_cli("recommend", "--tenant", tenant, "--product", "A")
    assert nothing.returncode == 1 and "no recommendations yet" in nothing.stdout
    assert "Traceback" not in nothing.stdout + nothing.stderr
    unknown = run_cli("recommendations", "rebuild", "--tenant", tenant)
    assert unknown.returncode == 1 and "unknown tenant" in unknown.stdout
    assert "Traceback" not in unknown.stdout + unknown.stderr
