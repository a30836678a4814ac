"""Orders triggered through the Prefect REST API and `run_deployment`, executed by the stack's
real Prefect server and `polyflow serve` process (not the in-process test harness)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from domain.orders import order_id_for
from domain.settings import settings
from stores import mongodb, postgres
from stores.order_trail import order_trail
from tasks.outbox import ROUTES
from tests.helpers import catalog_product

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def api(stores: None) -> str:
    """The stack's Prefect API with the place-order deployment served; fails naming what is down."""
    url = settings().prefect_api_url.rstrip("/")
    try:
        response = httpx.get(f"{url}/deployments/name/place-order/api", timeout=5)
    except httpx.HTTPError as error:
        pytest.fail(
            f"Prefect server not reachable at {url} ({error}); start the stack: polyflow stack up",
            pytrace=False,
        )
    if response.status_code != httpx.codes.OK:
        pytest.fail(
            "the place-order/api deployment is not served; is 'polyflow serve' running? "
            "(polyflow stack status)",
            pytrace=False,
        )
    return url


def order_payload(tenant: str, key: str, quantity: int = 2) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "customer": {"customer_id": "api-1", "email": "api@example.com", "name": "Api"},
        "lines": [{"sku": "MUG-1", "quantity": quantity}],
        "currency": "EUR",
        "idempotency_key": key,
        "payment_reference": f"pay-{key}",
    }


def create_flow_run(api: str, parameters: dict[str, Any], key: str) -> httpx.Response:
    """POST create_flow_run; the flow-run idempotency key is scoped by tenant like the order's."""
    key = f"{parameters['request']['tenant']}:{key}"
    deployment = httpx.get(f"{api}/deployments/name/place-order/api", timeout=5).json()
    return httpx.post(
        f"{api}/deployments/{deployment['id']}/create_flow_run",
        json={"parameters": parameters, "idempotency_key": key},
        timeout=10,
    )


def wait_for(api: str, flow_run_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=5).json()
        if run["state"]["type"] in TERMINAL:
            return run
        time.sleep(1)
    pytest.fail(f"flow run {flow_run_id} did not finish within {timeout:.0f} s")


@pytest.fixture
def seeded(tenant: str) -> str:
    postgres.ensure_tenant(tenant)
    mongodb.upsert_products(tenant, [catalog_product("MUG-1", "9.50")])
    postgres.set_inventory(tenant, {"MUG-1": 10}, ROUTES)
    return tenant


def test_an_order_triggered_over_rest_lands_in_all_four_stores(api: str, seeded: str) -> None:
    response = create_flow_run(api, {"request": order_payload(seeded, "rest-1")}, "rest-1")
    assert response.status_code == httpx.codes.CREATED, response.text
    run = wait_for(api, response.json()["id"])

    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    order_id = order_id_for(seeded, "rest-1")
    order = postgres.find_order(seeded, order_id)
    assert order is not None and order.total == Decimal("19.00")
    trail = order_trail(seeded, order_id)
    assert trail["redis"] == "placed (version 1)"
    assert trail["cassandra"] == "order_placed"
    assert trail["neo4j"] == "api-1 PURCHASED MUG-1 x2 (placed)"

    again = create_flow_run(api, {"request": order_payload(seeded, "rest-1")}, "rest-1")
    assert again.json()["id"] == response.json()["id"]
    assert postgres.get_inventory(seeded, ["MUG-1"]) == {"MUG-1": 8}


def test_run_deployment_places_the_order_once_per_key(api: str, seeded: str) -> None:
    parameters = {"request": order_payload(seeded, "sdk-1", quantity=3)}
    with temporary_settings({PREFECT_API_URL: api}):
        runs = [
            run_deployment("place-order/api", parameters=parameters, timeout=180) for _ in range(2)
        ]

    assert [run.state.type.value for run in runs] == ["COMPLETED", "COMPLETED"]
    assert runs[0].id != runs[1].id
    assert postgres.get_inventory(seeded, ["MUG-1"]) == {"MUG-1": 7}
    assert postgres.find_order(seeded, order_id_for(seeded, "sdk-1")).status == "placed"


def test_a_malformed_payload_is_refused_by_the_api_naming_the_field(api: str, seeded: str) -> None:
    response = create_flow_run(api, {"request": order_payload(seeded, "bad-1", 0)}, "bad-1")

    assert response.status_code == httpx.codes.CONFLICT
    assert "request.lines[0].quantity" in response.json()["detail"]
    assert postgres.get_inventory(seeded, ["MUG-1"]) == {"MUG-1": 10}


def test_an_order_the_stores_refuse_fails_its_run_with_the_reason(api: str, seeded: str) -> None:
    response = create_flow_run(api, {"request": order_payload(seeded, "big-1", 11)}, "big-1")
    run = wait_for(api, response.json()["id"])

    assert run["state"]["type"] == "FAILED"
    assert "insufficient stock for sku 'MUG-1': 10 available, 11 asked" in run["state"]["message"]
    assert postgres.find_order(seeded, order_id_for(seeded, "big-1")) is None
