"""Erasure receipts: what was destroyed, for whom and when, signed by the service.

A receipt names the subject only by a hash of its pseudonymous id, so it holds no
personal data; the subject, who knows their id, can match it. It is an RFC 8785 JSON
document with a service signature (:mod:`guardian.keys._documents`), verifiable
offline with ``guardian receipt verify FILE``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from guardian.keys._documents import DocumentCheck, SignedDocument, check_document

RECEIPT_TYPE = "guardian.erasure-receipt/v1"
LEGAL_BASIS = "GDPR Art. 17 (right to erasure)"


def subject_ref(subject_id: str) -> str:
    """The pseudonymous reference kept after erasure: SHA-256 of the subject id."""
    return hashlib.sha256(subject_id.encode()).hexdigest()


@dataclass(frozen=True)
class ErasureReceipt(SignedDocument):
    """A signed statement that a subject's data key and data were destroyed."""

    TYPE = RECEIPT_TYPE
    KEY = "receipt"

    @property
    def receipt_id(self) -> str:
        return str(self.body["receipt_id"])


def receipt_body(
    *,
    receipt_id: str,
    subject_id: str,
    voices: Sequence[str],
    erased_at: str,
    reason: str,
    blobs_destroyed: int,
    vault_epoch: int,
    software: str,
) -> dict[str, Any]:
    return {
        "type": RECEIPT_TYPE,
        "receipt_id": receipt_id,
        "subject_ref": subject_ref(subject_id),
        "voices": sorted(voices),
        "erased_at": erased_at,
        "created_at": erased_at,
        "legal_basis": LEGAL_BASIS,
        "reason": reason,
        "destroyed": {
            "data_key": True,
            "vault_blobs": blobs_destroyed,
            "vault_key_epoch_retired": vault_epoch - 1,
        },
        "software": software,
    }


def check_receipt(
    receipt: ErasureReceipt, *, trust_anchors_pem: str | None = None
) -> DocumentCheck:
    """Check a receipt's service signature (non-raising form)."""
    return check_document(receipt, id_key="receipt_id", trust_anchors_pem=trust_anchors_pem)
