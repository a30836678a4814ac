from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from stores import clients, postgres
from tasks.outbox import ROUTES


def test_inventory_round_trip_is_an_upsert(tenant: str) -> None:
    postgres.upsert_tenants({tenant: "Acme"})
    postgres.set_inventory(tenant, {"SKU-1": 5, "SKU-2": 0}, ROUTES)
    postgres.set_inventory(tenant, {"SKU-1": 3}, ROUTES)

    assert postgres.get_inventory(tenant, ["SKU-1", "SKU-2", "SKU-3"]) == {"SKU-1": 3, "SKU-2": 0}
    with postgres.unit_of_work() as session:
        versions = dict(
            session.execute(
                select(postgres.Inventory.sku, postgres.Inventory.version).where(
                    postgres.Inventory.tenant_id == tenant
                )
            ).all()
        )
    assert versions == {"SKU-1": 2, "SKU-2": 1}


def test_setting_the_same_stock_again_changes_nothing(tenant: str) -> None:
    postgres.upsert_tenants({tenant: "Acme"})
    postgres.set_inventory(tenant, {"SKU-1": 5}, ROUTES)
    postgres.set_inventory(tenant, {"SKU-1": 5}, ROUTES)

    with postgres.unit_of_work() as session:
        version = session.scalar(
            select(postgres.Inventory.version).where(postgres.Inventory.tenant_id == tenant)
        )
    assert version == 1


def test_stock_can_never_be_negative(tenant: str) -> None:
    postgres.upsert_tenants({tenant: "Acme"})
    with pytest.raises(IntegrityError, match="inventory_never_negative"):
        postgres.set_inventory(tenant, {"SKU-1": -1}, ROUTES)
    assert postgres.get_inventory(tenant, ["SKU-1"]) == {}


def test_tenants_do_not_see_each_others_stock(tenant: str) -> None:
    other = f"{tenant}-other"
    postgres.upsert_tenants({tenant: "A", other: "B"})
    postgres.set_inventory(tenant, {"SKU-1": 1}, ROUTES)
    postgres.set_inventory(other, {"SKU-1": 9}, ROUTES)

    assert postgres.get_inventory(tenant, ["SKU-1"]) == {"SKU-1": 1}
    assert postgres.get_inventory(other, ["SKU-1"]) == {"SKU-1": 9}


def test_strings_that_look_like_sql_are_stored_literally(tenant: str) -> None:
    postgres.upsert_tenants({tenant: "x'); DROP TABLE tenants; --"})
    postgres.set_inventory(tenant, {"' OR 1=1 --": 2}, ROUTES)

    assert postgres.get_inventory(tenant, ["' OR 1=1 --"]) == {"' OR 1=1 --": 2}
    with postgres.unit_of_work() as session:
        assert session.get(postgres.Tenant, tenant).name == "x'); DROP TABLE tenants; --"


def test_ensure_tenant_keeps_an_existing_name(tenant: str) -> None:
    postgres.ensure_tenant(tenant)
    postgres.upsert_tenants({tenant: "Acme"})
    postgres.ensure_tenant(tenant)

    with postgres.unit_of_work() as session:
        assert session.get(postgres.Tenant, tenant).name == "Acme"


def test_a_held_lock_fails_the_call_within_its_bound_instead_of_hanging(tenant: str) -> None:
    postgres.upsert_tenants({tenant: "Acme"})
    postgres.set_inventory(tenant, {"SKU-1": 5}, ROUTES)
    with postgres.unit_of_work() as holder:
        holder.execute(
            select(postgres.Inventory)
            .where(postgres.Inventory.tenant_id == tenant)
            .with_for_update()
        ).all()
        with (
            clients.pointed_at(call_timeout=1),
            pytest.raises(OperationalError, match="lock timeout"),
        ):
            postgres.set_inventory(tenant, {"SKU-1": 6}, ROUTES)
    assert postgres.get_inventory(tenant, ["SKU-1"]) == {"SKU-1": 5}
