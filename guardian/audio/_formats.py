"""Recognise audio containers from their first bytes, never from file names."""

from __future__ import annotations

from enum import Enum


class Container(str, Enum):
    """Audio containers Guardian reads."""

    WAV = "wav"
    FLAC = "flac"
    MP3 = "mp3"
    OGG = "ogg"
    MP4 = "mp4"
    AAC = "aac"
    WEBM = "webm"
    """WebM/Matroska (Opus from a browser's MediaRecorder)."""

    @property
    def mime(self) -> str:
        return _MIME[self]


_MIME = {
    Container.WAV: "audio/wav",
    Container.FLAC: "audio/flac",
    Container.MP3: "audio/mpeg",
    Container.OGG: "audio/ogg",
    Container.MP4: "audio/mp4",
    Container.AAC: "audio/aac",
    Container.WEBM: "audio/webm",
}


def sniff(head: bytes) -> Container | None:
    """Return the container whose signature starts ``head``, or ``None``."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return Container.WAV
    if head[:4] == b"fLaC":
        return Container.FLAC
    if head[:3] == b"ID3":
        return Container.MP3
    if head[:4] == b"OggS":
        return Container.OGG
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML header: WebM and Matroska
        return Container.WEBM
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return Container.MP4
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        layer = (head[1] >> 1) & 0b11
        # ADTS (AAC) sets the layer bits to 00; MPEG audio layers use 01..11.
        return Container.AAC if layer == 0 else Container.MP3
    return None


__all__ = ["Container", "sniff"]
