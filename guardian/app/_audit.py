"""Use-case: check the audit log."""

from __future__ import annotations

from guardian.app._context import Guardian
from guardian.audit import AuditReport


def verify_audit(g: Guardian) -> AuditReport:
    with g.reading() as s:
        return g.audit.verify(s)


def recent_audit(g: Guardian, *, limit: int) -> list[dict[str, object]]:
    """The newest ``limit`` entries, oldest first, as plain dicts."""
    import json

    with g.reading() as s:
        entries = g.audit.entries(s)[-limit:]
        return [
            {
                "seq": e.seq,
                "at": e.at,
                "action": e.action,
                "target": e.target,
                "details": json.loads(e.details_json),
                "entry_hash": e.entry_hash,
            }
            for e in entries
        ]
