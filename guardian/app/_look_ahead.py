"""What ``guardian verify`` can do before the database is open: read the clip, decode it
and let the detector look at it, on a thread of its own.

The detector's look needs neither the database nor a key (``guardian.watermark.Look``);
only reading the payload needs the deployment's key. ONNX Runtime and numpy's FFT run
without holding the interpreter, so the look costs a cold ``verify`` almost nothing
while the main thread imports and opens the database layer.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from guardian.audio import Audio, decode_bytes, read_input_bytes
from guardian.config import Settings
from guardian.watermark import Detector, Look


@dataclass(frozen=True)
class Seen:
    """A clip read, decoded and looked at by the detector."""

    data: bytes
    audio: Audio
    look: Look
    model_id: str
    """The model that took the look: its payload must be read by the same model."""


def read_clip(path: Path, settings: Settings) -> tuple[bytes, Audio]:
    """The file's bytes and audio, within the deployment's size and length limits."""
    data = read_input_bytes(path, max_bytes=settings.max_input_bytes)
    return data, decode_bytes(data, name=path.name, max_seconds=settings.max_audio_seconds)


def look_ahead(detector: Future[Detector], path: Path, settings: Settings) -> Future[Seen]:
    """:class:`Seen` for the clip at ``path``, worked out on a thread started now, once
    ``detector`` has loaded. A bad file's error, or the load's, is the future's, raised
    where the result is asked for, so it surfaces where it would have without the
    thread."""
    future: Future[Seen] = Future()

    def work() -> None:
        try:
            data, audio = read_clip(path, settings)
            loaded = detector.result()
            future.set_result(Seen(data, audio, loaded.look(audio), loaded.model_id))
        except BaseException as e:  # handed to whoever waits on the future
            future.set_exception(e)

    threading.Thread(target=work, name="guardian-look-ahead").start()
    return future
