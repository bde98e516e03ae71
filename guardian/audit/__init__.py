"""Hash-chained, signed, append-only audit log."""

from guardian.audit._chain import AuditProblem, AuditReport
from guardian.audit._log import AuditLog, acting_as

__all__ = ["AuditLog", "AuditProblem", "AuditReport", "acting_as"]
