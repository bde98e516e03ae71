"""Audio input and output: decoding with limits, encoding, resampling."""

from guardian.audio._edits import flip_wav_sample, wav_data_span
from guardian.audio._formats import Container, sniff
from guardian.audio._io import (
    DEFAULT_MAX_SECONDS,
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    Audio,
    OutputFormat,
    decode_bytes,
    encode_bytes,
    max_samples,
    read_audio,
    read_input_bytes,
    resample,
)
from guardian.audio._polyphase import resample_poly
from guardian.audio._synth import speechlike

__all__ = [
    "DEFAULT_MAX_SECONDS",
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "Audio",
    "Container",
    "OutputFormat",
    "decode_bytes",
    "encode_bytes",
    "flip_wav_sample",
    "max_samples",
    "read_audio",
    "read_input_bytes",
    "resample",
    "resample_poly",
    "sniff",
    "speechlike",
    "wav_data_span",
]
