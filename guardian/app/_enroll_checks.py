"""The checks of an enrollment (step 4 of :mod:`guardian.app._enroll`): not a Guardian
clip, audio quality, one take on one channel with no splice points, the spoken
statement and code, one speaker throughout, and a person rather than a synthesiser.
Each problem is recorded twice: in words for the person, and as a fixed class for the
permanent audit log."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from guardian.app._consent import ChallengeSecret
from guardian.app._context import Guardian
from guardian.app._verify import Verdict, verify_bytes
from guardian.audio import Audio
from guardian.consent import (
    THRESHOLD,
    Quality,
    SpeakerCheck,
    SpeechCheck,
    SyntheticCheck,
    channel_problem,
    check_consent_speech,
    check_same_speaker,
    check_synthetic,
    embed,
    measure,
    splice_problem,
    total_speech_problem,
)


@dataclass
class CheckedInput:
    label: str
    """How a problem names the file to the user (may contain the file name)."""
    audit_label: str
    """How the audit log names it (never the file name, which may be personal)."""
    data: bytes
    audio: Audio
    quality: Quality | None = None
    embedding: np.ndarray | None = None


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    audit_problems: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    speech: SpeechCheck | None = None
    speaker: SpeakerCheck | None = None
    synthetic: SyntheticCheck | None = None

    def passed(self) -> tuple[SpeakerCheck, SpeechCheck, SyntheticCheck]:
        """The three scored checks, once every check has run and passed."""
        if self.problems or self.speaker is None or self.speech is None or self.synthetic is None:
            raise RuntimeError("enrollment checks incomplete")  # a bug, not bad input
        return self.speaker, self.speech, self.synthetic

    def add(self, item: CheckedInput | None, problem: str, *, kind: str) -> None:
        """Record a problem: the person sees ``problem``, the permanent audit log only its
        ``kind`` (a fixed class name): a message may quote a file name or a transcript,
        and the log cannot be erased."""
        self.problems.append(f"{item.label}: {problem}" if item else problem)
        self.audit_problems.append(f"{item.audit_label}: {kind}" if item else kind)
        self.kinds.append(kind)


def _not_a_clip(g: Guardian, item: CheckedInput, found: Findings) -> None:
    result = verify_bytes(g, item.data, name=item.audit_label)
    if result.manifest.present:
        found.add(
            item,
            "carries a C2PA manifest: consent must be a live recording, not a clip",
            kind="c2pa-manifest",
        )
    elif result.verdict is not Verdict.NOT_FOUND:
        found.add(
            item,
            f"is Guardian-made audio ({result.verdict.value}): consent must be a live "
            "recording, not a clip",
            kind=f"guardian-audio-{result.verdict.value}",
        )


def inspect_inputs(g: Guardian, items: list[CheckedInput], secret: ChallengeSecret) -> Findings:
    found = Findings()
    consent, samples = items[0], items[1:]
    for item in items:
        _not_a_clip(g, item, found)
        item.quality = measure(item.audio)
        if not item.quality:
            found.add(item, ", ".join(item.quality.problems), kind="quality")
    split = channel_problem(consent.audio)
    if split:
        found.add(consent, split, kind="channels")
    joined = splice_problem(consent.audio)
    if joined:
        found.add(consent, joined, kind="splice")
    total = total_speech_problem([i.quality for i in samples if i.quality is not None])
    if total:
        found.add(None, total, kind="total-speech")
    found.speech = check_consent_speech(
        consent.audio,
        name=secret.name,
        org=secret.organization,
        code=secret.code,
        phrase=secret.phrase,
    )
    if not found.speech:
        found.add(consent, found.speech.reason or "does not say the statement", kind="statement")
    for item in items:
        item.embedding = embed(item.audio)
    found.speaker = check_same_speaker(
        embedding_of(consent), [embedding_of(i) for i in samples], threshold=THRESHOLD
    )
    if not found.speaker:
        found.add(
            None, found.speaker.reason or "the recordings are not of one speaker", kind="speaker"
        )
    found.synthetic = check_synthetic(consent.audio)
    if found.synthetic.synthetic and not g.settings.allow_synthetic_consent:
        found.add(consent, found.synthetic.reason, kind="synthetic-speech")
    return found


def embedding_of(item: CheckedInput) -> np.ndarray:
    if item.embedding is None:
        raise RuntimeError("embedding missing")  # programming error, not input
    return item.embedding
