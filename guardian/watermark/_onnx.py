"""The presence detector on ONNX Runtime: what ``verify`` runs, without torch.

A model card may pin an ONNX file of its detector (``guardian watermark export --onnx``)
beside its torch weights:

.. code-block:: yaml

    detector_onnx:
      file: guardian-wm-v15.detector.onnx
      sha256: …            # checked before the file is loaded
      from_weights: …      # the torch weights it was exported from (the card's sha256)
      precision: fp32

The graph maps chunks already in the detector's view (``_scoring.detector_view``) to
presence per sample; the payload is the tone code, read by numpy (``_tones``). Cards
without one, and official AudioSeal checkpoints, run the detector on torch instead.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from guardian.audio import Audio
from guardian.errors import WatermarkModelError
from guardian.watermark._config import (
    SHIPPED_CARD,
    EmbedConfig,
    card_embed,
    pinned_file,
    read_card,
)
from guardian.watermark._scoring import Detection, Detector, Look, look_with, read_payload


class Precision(str, Enum):
    FP32 = "fp32"
    """float32 arithmetic (weights stored as float16, exactly the torch weights)."""
    INT8 = "int8"
    """Dynamic int8 quantisation of the weights (onnxruntime.quantization)."""


ONNX_KEY = "detector_onnx"
"""The card's entry that pins the ONNX detector."""
INPUT, OUTPUT = "audio", "presence"
BATCH = 4
"""Equally long chunks per ONNX Runtime call: the LSTM steps them together."""
WORKERS = 2
"""Batches read at once. ONNX Runtime and numpy's FFT release the GIL, so one batch's
serial steps (its last small operators, the next one's band filter) overlap the other's
convolutions: about x1.2 on 2 cores (``benchmarks/verify_speed.py``)."""
_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


@dataclass(frozen=True)
class OnnxDetector:
    """A watermark detector whose presence runs on ONNX Runtime."""

    model_id: str
    embed: EmbedConfig
    threshold: float
    sha256: str
    """SHA-256 of the ONNX file, checked against the card before loading."""
    session: Any = field(repr=False, compare=False)
    runtime: str = "onnx"
    workers: int = WORKERS
    """Batches in flight at once (``_scoring.presence``); 1 where the process holds
    one core."""

    def _run(self, x: np.ndarray, bits: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if bits:  # refused at load: the graph has presence only
            raise WatermarkModelError("the ONNX detector has no bit outputs")
        (prob,) = self.session.run([OUTPUT], {INPUT: x[:, None, :]})
        return np.asarray(prob), None

    def detect(self, audio: Audio) -> Detection:
        return self.read(self.look(audio))

    def look(self, audio: Audio) -> Look:
        return look_with(
            self._run,
            audio,
            self.embed,
            threshold=self.threshold,
            batch=BATCH,
            workers=self.workers,
        )

    def read(self, look: Look) -> Detection:
        return read_payload(look, self.embed, self.threshold)

    def with_tones(self, tones: tuple[tuple[float, float], ...]) -> OnnxDetector:
        return dataclasses.replace(self, embed=dataclasses.replace(self.embed, payload_tones=tones))


def card_path(spec: str | None) -> Path | None:
    """The Guardian model card a ``GUARDIAN_WATERMARK_MODEL`` value names, if any."""
    if spec in (None, "", "guardian"):
        return SHIPPED_CARD
    assert spec is not None
    path = Path(spec).expanduser()
    return path if path.suffix in (".yaml", ".yml") else None


def session(path: Path, *, threads: int | None = None) -> Any:
    """An ONNX Runtime session on the CUDA provider where present, else the CPU, with
    ``threads`` intra-op threads (ONNX Runtime's default, one per core, when None)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initializers are noise
    # Idle pool threads would spin for work between calls: on a machine whose cores
    # other processes share, that doubled the CPU time of a detection for no speed.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    available = set(ort.get_available_providers())
    providers = [p for p in _PROVIDERS if p in available]
    return ort.InferenceSession(str(path), options, providers=providers)


def load_onnx_detector(
    card: Path, meta: dict[str, Any] | None = None, *, threads: int | None = None
) -> OnnxDetector:
    """The card's ONNX detector, after its SHA-256 and its source weights match the card."""
    meta = read_card(card) if meta is None else meta
    entry = meta.get(ONNX_KEY)
    if not isinstance(entry, dict) or not {"file", "sha256", "from_weights"} <= entry.keys():
        raise WatermarkModelError(f"{card.name} pins no ONNX detector (file, sha256, from_weights)")
    if entry["from_weights"] != meta.get("sha256"):
        raise WatermarkModelError(
            f"the ONNX detector of {card.name} was exported from other weights than the card "
            "pins; rebuild it with `guardian watermark export --onnx`"
        )
    embed = card_embed(card, meta)
    if embed.payload_tones is None:
        raise WatermarkModelError(f"{card.name}: an ONNX detector needs a tone-coded payload")
    path = pinned_file(card, entry["file"], entry["sha256"])
    from onnxruntime.capi.onnxruntime_pybind11_state import (
        Fail,
        InvalidArgument,
        InvalidGraph,
        InvalidProtobuf,
    )

    try:
        runtime = session(path, threads=threads)
    except (Fail, InvalidArgument, InvalidGraph, InvalidProtobuf) as e:
        raise WatermarkModelError(f"{path.name} is not a loadable ONNX model ({e})") from e
    return OnnxDetector(
        model_id=str(meta.get("model_id", card.stem)),
        embed=embed,
        threshold=float(meta.get("threshold", 0.5)),
        sha256=str(entry["sha256"]),
        session=runtime,
        workers=1 if threads == 1 else WORKERS,
    )


def load_detector(spec: str | None = None, *, threads: int | None = None) -> Detector:
    """The detector ``verify`` runs for a model spec (``load_model``'s): ONNX Runtime
    when the card pins an ONNX detector (``threads`` intra-op threads), else the torch
    model."""
    card = card_path(spec)
    if card is not None:
        meta = read_card(card)
        if ONNX_KEY in meta:
            return load_onnx_detector(card, meta, threads=threads)
    import torch

    from guardian.watermark._detect import TorchDetector
    from guardian.watermark._loader import load_model

    if threads is not None:
        torch.set_num_threads(threads)
    return TorchDetector(load_model(spec))


def preload_detector(spec: str | None = None, *, threads: int | None = None) -> Future[Detector]:
    """:func:`load_detector` on a thread of its own, started now.

    Most of a load is ONNX Runtime building its session, which runs without the GIL: a
    cold ``guardian verify`` opens its database meanwhile. The result (or the load's
    error) is the future's.
    """
    future: Future[Detector] = Future()

    def load() -> None:
        try:
            future.set_result(load_detector(spec, threads=threads))
        except BaseException as e:  # handed to whoever waits on the future
            future.set_exception(e)

    threading.Thread(target=load, name="guardian-detector-load").start()
    return future
