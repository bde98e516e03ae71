"""Consent: the spoken statement and its one-time code, speaker verification, the
synthetic-speech check, audio quality gates and signed consent records."""

from guardian.consent._quality import (
    MIN_TOTAL_SPEECH_S,
    Quality,
    channel_problem,
    measure,
    total_speech_problem,
)
from guardian.consent._record import (
    RECORD_TYPE,
    RecordCheck,
    SignedRecord,
    canonical,
    check_record,
    verify_record,
)
from guardian.consent._speaker import THRESHOLD, SpeakerCheck, check_same_speaker, embed
from guardian.consent._speech import (
    CODE_LENGTH,
    CODE_WORDS,
    PHRASE_ADJECTIVES,
    PHRASE_NOUNS,
    SpeechCheck,
    check_consent_speech,
    new_code,
    new_phrase,
    render_statement,
    written_code,
)
from guardian.consent._splice import splice_problem
from guardian.consent._synthetic import SyntheticCheck, check_synthetic
from guardian.keys._documents import Signature, public_key_b64, sign_as_service, sign_as_subject

__all__ = [
    "CODE_LENGTH",
    "CODE_WORDS",
    "MIN_TOTAL_SPEECH_S",
    "PHRASE_ADJECTIVES",
    "PHRASE_NOUNS",
    "RECORD_TYPE",
    "THRESHOLD",
    "Quality",
    "RecordCheck",
    "Signature",
    "SignedRecord",
    "SpeakerCheck",
    "SpeechCheck",
    "SyntheticCheck",
    "canonical",
    "channel_problem",
    "check_consent_speech",
    "check_record",
    "check_same_speaker",
    "check_synthetic",
    "embed",
    "measure",
    "new_code",
    "new_phrase",
    "public_key_b64",
    "render_statement",
    "sign_as_service",
    "sign_as_subject",
    "splice_problem",
    "total_speech_problem",
    "verify_record",
    "written_code",
]
