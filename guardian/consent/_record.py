"""Signed consent records: canonical JSON (RFC 8785), a service and a subject signature.

A record is ``{"record": BODY, "signatures": [...]}``. Both signatures cover the RFC
8785 canonical form of BODY (:mod:`guardian.keys._documents`), so a record can be
checked offline from the record alone. The subject's public key is part of BODY, so the
service signature also binds the subject's key.
"""

from __future__ import annotations

from dataclasses import dataclass

from guardian.errors import ConsentRecordError, DocumentError
from guardian.keys._documents import DocumentCheck, SignedDocument, check_document
from guardian.keys._documents import canonical as canonical

RECORD_TYPE = "guardian.consent/v1"


@dataclass(frozen=True)
class SignedRecord(SignedDocument):
    """A consent record body with its signatures."""

    TYPE = RECORD_TYPE
    KEY = "record"

    @property
    def consent_id(self) -> str:
        return str(self.body["consent_id"])

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedRecord:
        try:
            return super().from_bytes(data)
        except DocumentError as e:
            raise ConsentRecordError(str(e)) from e


RecordCheck = DocumentCheck


def check_record(record: SignedRecord, *, trust_anchors_pem: str | None = None) -> RecordCheck:
    """Check every signature of ``record`` (non-raising form)."""
    return check_document(record, id_key="consent_id", trust_anchors_pem=trust_anchors_pem)


def verify_record(record: SignedRecord, *, trust_anchors_pem: str | None = None) -> RecordCheck:
    """Raising form of :func:`check_record`."""
    result = check_record(record, trust_anchors_pem=trust_anchors_pem)
    if not result:
        raise ConsentRecordError("; ".join(result.problems))
    return result
