"""The reject-share gate every file import runs before it writes anything.

A file whose rejected share is over the limit publishes nothing: the run fails with the counts,
and a markdown artifact lists the first rejects (all of them are in MongoDB `import_rejects`).
"""

from __future__ import annotations

from typing import Any, Protocol

from prefect.artifacts import create_markdown_artifact

from flows.artifacts import artifact_key, markdown_text, reject_table


class RejectShareExceeded(RuntimeError):
    """Too many rows of the file were rejected to publish any of it."""


class Checked(Protocol):
    source: str
    rows_read: int
    rejected: int
    first_rejects: list[dict[str, Any]]

    @property
    def reject_share(self) -> float: ...


def reject_share_gate(
    checked: Checked, tenant: str, max_reject_share: float, *, kind: str, rows: str, outcome: str
) -> None:
    """Fail the run (`RejectShareExceeded`) if too many rows were rejected; `kind` names the
    import ("catalog", "events"), `rows` what a row is, `outcome` what was not done."""
    if checked.reject_share <= max_reject_share:
        return
    message = (
        f"{checked.rejected} of {checked.rows_read} {rows} of {checked.source} were rejected "
        f"({checked.reject_share:.1%} > {max_reject_share:.1%}); {outcome}"
    )
    create_markdown_artifact(
        key=artifact_key(f"{kind}-import-gate", tenant),
        markdown=f"# {kind.capitalize()} import stopped\n\n{message}.\n\n"
        f"{reject_table(checked.first_rejects)}"
        f"\n\nAll rejects are in MongoDB `import_rejects` (tenant {markdown_text(tenant)}).",
        description=f"Reject-share gate of ingest-{kind}",
    )
    raise RejectShareExceeded(message)
