"""Byte-level edits used to demonstrate and test tamper detection."""

from __future__ import annotations

import struct


def wav_data_span(data: bytes) -> tuple[int, int]:
    """Offset and length of the ``data`` chunk of a RIFF/WAVE file."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        if chunk_id == b"data":
            return pos + 8, min(size, len(data) - pos - 8)
        pos += 8 + size + (size & 1)
    raise ValueError("the WAV file has no data chunk")


def flip_wav_sample(data: bytes, *, position: float = 0.5) -> bytes:
    """Flip the lowest bit of one 16-bit sample at ``position`` (0..1) of the audio."""
    if not 0.0 <= position <= 1.0:
        raise ValueError("position must be within [0, 1]")
    start, length = wav_data_span(data)
    sample = min(int(position * (length // 2)), length // 2 - 1)
    out = bytearray(data)
    out[start + 2 * sample] ^= 0x01
    return bytes(out)
