"""Errors of the speaker-verification, synthetic-speech and audio-quality checks.

Kept beside the checks rather than in :mod:`guardian.errors` so that the consent
work can grow its own group without editing the shared hierarchy.
"""

from __future__ import annotations

from guardian.errors import AudioError, ConfigError


class SpeakerModelError(ConfigError):
    """The speaker encoder or its pinned weights are missing, altered or unloadable."""


class SyntheticModelError(ConfigError):
    """The synthetic-speech model file is missing, altered or malformed."""


class NoSpeechError(AudioError):
    """A recording holds no speech to measure or identify a speaker from."""


__all__ = ["NoSpeechError", "SpeakerModelError", "SyntheticModelError"]
