"""Use-case: records of processing activities (GDPR Art. 30), from live config and data."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlmodel import func, select

from guardian import __version__
from guardian.app._context import Guardian
from guardian.app._label import TIME_FORMAT
from guardian.app._retention import retention_rules
from guardian.store import Label, Subject, Voice, VoiceStatus, utcnow

CATEGORIES = (
    (
        "consent recordings and enrollment samples",
        "voice audio; may be biometric data",
        "encrypted in the subject's vault",
    ),
    ("speaker embeddings", "biometric data derived from the audio", "encrypted in the vault"),
    (
        "consent records",
        "name, statement, terms, hashes, verification scores",
        "encrypted in the vault; terms in the voice row",
    ),
    ("voice adapters", "a model of the subject's voice", "encrypted in the vault"),
    (
        "registry of generated clips",
        "pseudonymous voice id, purpose, requester, fingerprint",
        "database",
    ),
    ("audit log", "pseudonymous ids, actions, policy decisions", "database, hash-chained"),
)

SECURITY_MEASURES = (
    "a data key per subject (AES-256-GCM), wrapped under the master key and a vault root "
    "key that is ratcheted on every erasure (crypto-shredding reaches backups)",
    "no plaintext audio, embedding or name outside the vault, temp files included",
    "signed consent records (ES256, optional Ed25519 co-signature by the subject)",
    "spoken consent with a single-use code, speaker verification and clone detection",
    "every use decided by Cedar policies and logged with the deciding policy ids",
    "hash-chained, Ed25519-signed audit log with a signed head",
    "differentially private training with a per-voice privacy budget",
    "AudioSeal watermark and signed C2PA manifest on every generated clip",
)


@dataclass(frozen=True)
class ProcessingReport:
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def to_markdown(self) -> str:
        d = self.data
        lines = [
            f"# Records of processing — {d['controller']}",
            "",
            f"Generated {d['generated_at']} by guardian {d['software']} from the live "
            "configuration and data (GDPR Art. 30).",
            "",
            "## Purposes",
            "",
            "| purpose | active voices |",
            "|---|---|",
            *[f"| {p} | {n} |" for p, n in d["purposes"].items()],
            "",
            "## Data subjects",
            "",
            *[f"- {k}: {v}" for k, v in d["subjects"].items()],
            "",
            "## Categories of personal data",
            "",
            "| category | content | where |",
            "|---|---|---|",
            *[f"| {c['category']} | {c['content']} | {c['storage']} |" for c in d["categories"]],
            "",
            "## Recipients (requesters allowed by consent)",
            "",
            *[f"- {r}" for r in d["recipients"]],
            "",
            "## Retention",
            "",
            *[f"- {k}: {v}" for k, v in d["retention"].items()],
            "",
            "## Security measures (Art. 32)",
            "",
            *[f"- {m}" for m in d["security_measures"]],
            "",
            f"Transfers to third countries: {d['transfers']}",
        ]
        return "\n".join(lines) + "\n"


def processing_report(g: Guardian) -> ProcessingReport:
    """Build the Art. 30 record from what this deployment actually holds and allows."""
    with g.reading() as s:
        voices = s.exec(select(Voice)).all()
        statuses = Counter(r.status.value for r in s.exec(select(Subject)).all())
        clips = int(s.exec(select(func.count()).select_from(Label)).one())
    active = [v for v in voices if v.status is VoiceStatus.ACTIVE]
    revoked = sum(v.status is VoiceStatus.REVOKED for v in voices)
    erased = sum(v.status is VoiceStatus.ERASED for v in voices)
    purposes = Counter(p for v in active for p in json.loads(v.purposes_json))
    recipients = sorted(
        {r for v in active for r in json.loads(v.requesters_json)}
        | {v.organization for v in active}
    )
    return ProcessingReport(
        {
            "controller": g.settings.organization,
            "generated_at": utcnow().strftime(TIME_FORMAT),
            "software": __version__,
            "purposes": dict(sorted(purposes.items())),
            "subjects": {
                "enrolled": statuses.get("enrolled", 0),
                "pending (challenge issued, not enrolled)": statuses.get("pending", 0),
                "erased (tombstones)": statuses.get("erased", 0),
                "voices active / revoked / erased": f"{len(active)} / {revoked} / {erased}",
                "generated clips in the registry": clips,
            },
            "categories": [
                {"category": c, "content": what, "storage": where} for c, what, where in CATEGORIES
            ],
            "recipients": recipients,
            "retention": retention_rules(g).to_dict(),
            "security_measures": list(SECURITY_MEASURES),
            "transfers": "none: Guardian runs on the operator's own machines",
        }
    )
