"""Data-subject rights: erasure receipts (and, in ``guardian.app``, erasure and export)."""

from guardian.rights._receipt import (
    LEGAL_BASIS,
    RECEIPT_TYPE,
    ErasureReceipt,
    check_receipt,
    receipt_body,
    subject_ref,
)
from guardian.rights._retention import RetentionRules

__all__ = [
    "LEGAL_BASIS",
    "RECEIPT_TYPE",
    "ErasureReceipt",
    "RetentionRules",
    "check_receipt",
    "receipt_body",
    "subject_ref",
]
