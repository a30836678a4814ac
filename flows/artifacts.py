"""What every flow's artifacts share: per-tenant keys that never collide, and markdown that
shows input as text.

Artifact keys take only lower-case letters, digits and '-', while tenant ids also take '_', so
spelling '_' as '-' alone would give tenants `a_b` and `a-b` one key, and each would overwrite
the other's "latest" artifact. The key therefore ends in a short digest of the exact tenant id.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from hashlib import blake2b
from typing import Any

from domain.tenancy import check_tenant


def artifact_key(kind: str, tenant: str) -> str:
    """`<kind>-<tenant, '_' as '-'>-<digest>`: one key per (kind, tenant), distinct tenants
    never share one."""
    digest = blake2b(check_tenant(tenant).encode(), digest_size=4).hexdigest()
    return f"{kind}-{tenant.replace('_', '-')}-{digest}"


def markdown_text(value: Any) -> str:
    """A value as literal text inside a markdown table cell: no HTML, no table break, no
    markdown syntax from the input is interpreted."""
    text = html.escape(str(value), quote=False).replace("\r", " ").replace("\n", " ")
    for special in ("\\", "|", "`", "*", "_", "[", "]", "#"):
        text = text.replace(special, f"\\{special}")
    return text


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table whose cells are escaped with `markdown_text`."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(markdown_text(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def reject_table(rejects: Iterable[dict[str, Any]]) -> str:
    """The quarantine's first rows as a markdown table: line, fields, reason (escaped)."""
    rows = ((r["line"], r["fields"], r["reason"]) for r in rejects)
    return markdown_table(("line", "fields", "reason"), rows)
