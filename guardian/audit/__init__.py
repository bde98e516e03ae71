"""Hash-chained, signed, append-only audit log."""

from guardian.audit._chain import CERTIFY_ACTION, AuditProblem, AuditReport, key_fingerprint
from guardian.audit._log import AuditLog, acting_as

__all__ = [
    "CERTIFY_ACTION",
    "AuditLog",
    "AuditProblem",
    "AuditReport",
    "acting_as",
    "key_fingerprint",
]
