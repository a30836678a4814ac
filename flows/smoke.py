"""`smoke`: write and read back one record in each of the six stores, through Prefect tasks."""

from __future__ import annotations

from prefect import flow

from domain.tenancy import TenantId
from tasks.smoke import ROUND_TRIPS


@flow(name="smoke", log_prints=True)
def smoke(tenant: TenantId = "smoke") -> list[str]:
    """The six round trips run concurrently; a mismatch or an outage fails the run."""
    futures = [round_trip.submit(tenant) for round_trip in ROUND_TRIPS]
    results = [future.result() for future in futures]
    for line in results:
        print(line)
    return results
