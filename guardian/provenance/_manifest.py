"""Pure construction of Guardian's C2PA manifest definition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

ASSERTION_LABEL = "org.guardian.provenance"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


@dataclass(frozen=True)
class GuardianAssertion:
    """What Guardian asserts about a clip, signed inside the manifest.

    It holds pseudonymous references only: never a name, never audio.
    """

    label_id: str
    created_at: str
    software: str
    purpose: str | None = None
    voice_id: str | None = None
    consent_id: str | None = None
    requester: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Fields contributed by pipeline stages (watermark, model, privacy budget)."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        d = {k: v for k, v in d.items() if v is not None}
        d.update(extra)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuardianAssertion:
        known = {
            "label_id",
            "created_at",
            "software",
            "purpose",
            "voice_id",
            "consent_id",
            "requester",
        }
        missing = {"label_id", "created_at", "software"} - data.keys()
        if missing:
            raise ValueError(f"Guardian assertion lacks {', '.join(sorted(missing))}")
        core = {k: data[k] for k in known if k in data}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**core, extra=extra)


def build_manifest(assertion: GuardianAssertion, *, title: str, mime: str) -> dict[str, Any]:
    """The manifest definition handed to the C2PA builder."""
    from guardian import __version__

    return {
        "claim_generator_info": [{"name": "guardian", "version": __version__}],
        "title": title,
        "format": mime,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": "guardian", "version": __version__},
                        }
                    ]
                },
            },
            {"label": ASSERTION_LABEL, "data": assertion.to_dict()},
        ],
    }
