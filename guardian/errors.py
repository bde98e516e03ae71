"""Guardian's error hierarchy.

Every error that Guardian raises on purpose derives from :class:`GuardianError`.
Front ends (CLI, HTTP API) catch only this root: the CLI maps ``exit_code`` to its
process exit status, the API maps it to an HTTP problem response.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the ``guardian`` command (``docs/cli.md``)."""

    OK = 0
    NOT_FOUND = 1
    USAGE = 2
    TAMPERED = 3
    UNREADABLE = 4
    FAILURE = 5
    REJECTED = 6
    """A consent check or a policy refused the request."""
    WATERMARKED = 7
    """A watermark with no registry match, which is weak evidence: anyone holding the
    public model can embed one."""


class GuardianError(Exception):
    """Root of every error Guardian raises deliberately."""

    exit_code: ExitCode = ExitCode.FAILURE
    http_status: int = 500

    def diagnostics(self) -> str:
        """One human-readable line that names the problem."""
        return str(self) or type(self).__name__


class UsageError(GuardianError):
    """The request itself is malformed (bad option, bad path, bad id)."""

    exit_code = ExitCode.USAGE
    http_status = 400


class NotFoundError(GuardianError):
    """A named object (key, label, subject) does not exist."""

    exit_code = ExitCode.NOT_FOUND
    http_status = 404


class ConfigError(GuardianError):
    """The configuration or the Guardian home is unusable."""


# --- audio -------------------------------------------------------------------------


class AudioError(GuardianError):
    """Base for audio input problems."""

    exit_code = ExitCode.UNREADABLE
    http_status = 422


class UnreadableAudioError(AudioError):
    """The input cannot be read or decoded as audio."""


class AudioTooLongError(AudioError):
    """The input exceeds the configured duration limit."""


class InvalidSamplesError(AudioError):
    """The decoded samples are unusable (NaN, inf, no frames)."""


class NotAudioError(UnreadableAudioError):
    """The input is not in any audio format Guardian recognises."""

    http_status = 415


class InputTooLargeError(AudioError):
    """An upload is larger than the configured limit (it was not read to the end)."""

    http_status = 413


# --- keys --------------------------------------------------------------------------


class KeyError_(GuardianError):
    """Base for signing-identity problems (named to avoid shadowing ``KeyError``)."""


class NoSigningKeyError(KeyError_):
    """There is no usable signing key."""

    exit_code = ExitCode.USAGE
    http_status = 409


class MasterKeyError(KeyError_):
    """The master key is missing, malformed or cannot decrypt the keystore."""


# --- provenance --------------------------------------------------------------------


class ProvenanceError(GuardianError):
    """Base for manifest signing and reading problems."""


class SigningError(ProvenanceError):
    """Embedding or signing a C2PA manifest failed."""


# --- watermark ---------------------------------------------------------------------


class WatermarkError(GuardianError):
    """Base for watermark embedding and detection problems."""


class WatermarkModelError(WatermarkError):
    """A watermark model cannot be found, verified or loaded."""


# --- consent and vault -------------------------------------------------------------


class VaultError(GuardianError):
    """A vault blob or a subject's data key is missing or unreadable."""


class ConsentError(GuardianError):
    """Base for consent problems: the request was understood and refused."""

    exit_code = ExitCode.REJECTED
    http_status = 422


class ChallengeError(ConsentError):
    """The consent challenge is unknown, expired or already used."""


class EnrollmentRejectedError(ConsentError):
    """A consent or sample check failed; ``problems`` names each one."""

    def __init__(self, problems: list[str], kinds: list[str] | None = None) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)
        self.kinds = list(kinds or [])
        """The class of each problem (``statement``, ``speaker``, ``quality``, …)."""

    def diagnostics(self) -> str:
        return "enrollment rejected: " + "; ".join(self.problems)


class DocumentError(GuardianError):
    """A signed document (consent record, erasure receipt) is malformed or does not verify."""

    exit_code = ExitCode.TAMPERED
    http_status = 422


class ConsentRecordError(DocumentError):
    """A consent record's signature or structure does not verify."""


class PolicyDeniedError(ConsentError):
    """The policies deny a use of a voice."""

    http_status = 403


# --- policy ------------------------------------------------------------------------


class PolicyError(GuardianError):
    """Policy files or their schema cannot be read or parsed, or facts are unusable.

    ``problems`` lists every problem found, one line each, naming the file.
    """

    # The operator must fix the policy directory they pointed Guardian at; for the
    # HTTP API that same state is a server misconfiguration, hence 500.
    exit_code = ExitCode.USAGE
    http_status = 500

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


# --- API access --------------------------------------------------------------------


class AuthenticationError(GuardianError):
    """No API key, or one that is unknown or revoked (the answer never says which)."""

    exit_code = ExitCode.REJECTED
    http_status = 401


class PermissionDeniedError(GuardianError):
    """The API key is valid but lacks the scope the operation needs."""

    exit_code = ExitCode.REJECTED
    http_status = 403


class RateLimitedError(GuardianError):
    """Too many requests from one key or client; ``retry_after`` is in seconds."""

    exit_code = ExitCode.FAILURE
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobStateError(GuardianError):
    """A job cannot move to the requested state (e.g. retrying a running job)."""

    exit_code = ExitCode.USAGE
    http_status = 409


# --- audit -------------------------------------------------------------------------


class AuditError(GuardianError):
    """The audit log cannot be written or read."""


__all__ = [
    "AudioError",
    "AudioTooLongError",
    "AuditError",
    "AuthenticationError",
    "ChallengeError",
    "ConfigError",
    "ConsentError",
    "ConsentRecordError",
    "DocumentError",
    "EnrollmentRejectedError",
    "ExitCode",
    "GuardianError",
    "InputTooLargeError",
    "InvalidSamplesError",
    "JobStateError",
    "KeyError_",
    "MasterKeyError",
    "NoSigningKeyError",
    "NotAudioError",
    "NotFoundError",
    "PermissionDeniedError",
    "PolicyDeniedError",
    "PolicyError",
    "ProvenanceError",
    "RateLimitedError",
    "SigningError",
    "UnreadableAudioError",
    "UsageError",
    "VaultError",
    "WatermarkError",
    "WatermarkModelError",
]
