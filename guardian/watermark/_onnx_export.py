"""Export a card's presence detector to ONNX and pin it in the card (needs torch and onnx).

The exported graph is the detector up to presence, with its last two layers folded
(``_detect._folded_head``): chunks in the detector's view (B, 1, T) to presence (B, T),
any batch and length. Two things need care:

- audioseal's convolutions pad by an amount computed in Python from the input length,
  which the tracing exporter would freeze at the example's length; during export it is
  computed with tensor operations instead (the same value, see :func:`_traced_padding`);
- the weights are stored as float16 with a cast to float32 in the graph. The torch
  weights are float16 on disk, so this loses nothing, and the file is half the size.

Every export is checked against the torch detector on clips of other lengths before
it is written.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from guardian.audio import speechlike
from guardian.errors import WatermarkModelError
from guardian.watermark._config import read_card, sha256_file
from guardian.watermark._detect import _folded_head, _Head, _run_detector
from guardian.watermark._loader import load_card
from guardian.watermark._model import WatermarkModel, no_compile
from guardian.watermark._onnx import INPUT, ONNX_KEY, OUTPUT, Precision, session
from guardian.watermark._scoring import detector_view

OPSET = 17
CHECK_SECONDS = (2.5, 2.25, 1.37, 0.6)
"""Clip lengths the export is checked on: a detection chunk with context, a first or
last chunk, and lengths no hop divides."""


TOLERANCE = {Precision.FP32: 1e-4, Precision.INT8: 0.15}
"""Largest presence difference from torch an export may show on the check clips."""


class _Presence(torch.nn.Module):
    """The detector's body and folded presence row: (B, 1, T) to presence (B, T)."""

    row: torch.Tensor
    bias: torch.Tensor

    def __init__(self, head: _Head) -> None:
        super().__init__()
        self.body = head.body
        w = head.weight
        self.register_buffer("row", (w[:, 1] - w[:, 0]).contiguous())
        self.register_buffer("bias", (head.bias[1] - head.bias[0]).reshape(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        latent = self.body(x)
        logit = torch.einsum("bif,ik->bfk", latent, self.row).reshape(x.shape[0], -1)
        return torch.sigmoid(logit[:, : x.shape[-1]] + self.bias)


def _traced_padding(x: torch.Tensor, kernel_size: int, stride: int, padding_total: int = 0) -> Any:
    """audioseal's ``get_extra_padding_for_conv1d`` as a modulo the tracer records:
    ``ceil(m / stride) * stride - m`` is ``-m mod stride`` for ``m = T - kernel + padding``."""
    length = x.shape[-1]
    return (-(length - kernel_size + padding_total)) % stride


@contextmanager
def _length_independent_padding() -> Iterator[None]:
    from audioseal.libs.moshi.modules import conv

    original = conv.get_extra_padding_for_conv1d
    conv.get_extra_padding_for_conv1d = _traced_padding
    try:
        yield
    finally:
        conv.get_extra_padding_for_conv1d = original


def _trace(model: WatermarkModel) -> bytes:
    head = _folded_head(model)
    if head is None:
        raise WatermarkModelError(f"{model.model_id}: its detector has no foldable head")
    module = _Presence(head).eval()
    example = torch.from_numpy(speechlike(2.5, seed=1)[None, None, :]).float()
    with (
        tempfile.TemporaryDirectory() as tmp,
        warnings.catch_warnings(),
        torch.inference_mode(),
        no_compile(),
        _length_independent_padding(),
    ):
        # the tracer's warnings are about the padding this module replaces, and the
        # legacy exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            Path(tmp) / "detector.onnx",
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch", 2: "samples"}, OUTPUT: {0: "batch", 1: "samples"}},
            opset_version=OPSET,
            dynamo=False,
        )
        return (Path(tmp) / "detector.onnx").read_bytes()


def _float16_storage(data: bytes) -> bytes:
    """The graph with every float32 initializer stored as float16 and cast back on load,
    when float16 holds it exactly (else it stays float32)."""
    import onnx
    from onnx import helper, numpy_helper

    graph_model = onnx.load_from_string(data)
    graph = graph_model.graph
    casts, kept = [], []
    for init in graph.initializer:
        value = numpy_helper.to_array(init)
        half = value.astype(np.float16)
        if value.dtype != np.float32 or not np.array_equal(half.astype(np.float32), value):
            kept.append(init)
            continue
        stored = init.name + "__f16"
        kept.append(numpy_helper.from_array(half, stored))
        casts.append(helper.make_node("Cast", [stored], [init.name], to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*casts, *nodes])
    onnx.checker.check_model(graph_model)
    return bytes(graph_model.SerializeToString())


def _int8(data: bytes) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(data)
        # it logs, on the root logger, each shape tensor it rightly leaves alone
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        return dst.read_bytes()


def _check(model: WatermarkModel, path: Path, tolerance: float) -> float:
    """Largest presence difference between the ONNX file and the torch detector."""
    runtime = session(path)
    head = _folded_head(model)
    worst = 0.0
    for seconds in CHECK_SECONDS:
        x = detector_view(speechlike(seconds, seed=int(seconds * 100)), model.embed)[None, :]
        with torch.inference_mode(), no_compile():
            ref, _ = _run_detector(model, torch.from_numpy(x)[:, None, :], head, bits=False)
        (got,) = runtime.run([OUTPUT], {INPUT: x[:, None, :]})
        worst = max(worst, float(np.abs(np.asarray(got) - ref.numpy()).max()))
    if worst > tolerance:
        raise WatermarkModelError(
            f"the ONNX export differs from the torch detector by {worst:.4f} (> {tolerance})"
        )
    return worst


def export_onnx(card: Path, *, precision: Precision = Precision.FP32) -> Path:
    """Rebuild ``card``'s ONNX detector from its torch weights, check it, write it beside
    the card and pin it there by SHA-256. Returns the ONNX file."""
    model = load_card(card)  # hash-checked torch weights
    if model.embed.payload_tones is None:
        raise WatermarkModelError(f"{card.name}: the ONNX detector carries presence only")
    data = _trace(model)
    data = _int8(data) if precision is Precision.INT8 else _float16_storage(data)
    suffix = ".detector.onnx" if precision is Precision.FP32 else ".detector.int8.onnx"
    path = card.with_name(card.stem + suffix)
    path.write_bytes(data)
    try:
        _check(model, path, TOLERANCE[precision])
    except WatermarkModelError:
        path.unlink()
        raise
    meta = read_card(card)
    previous = meta.get(ONNX_KEY)
    if isinstance(previous, dict) and previous.get("file") not in (None, path.name):
        card.with_name(str(previous["file"])).unlink(missing_ok=True)  # one detector file
    meta[ONNX_KEY] = {
        "file": path.name,
        "sha256": sha256_file(path),
        "from_weights": meta["sha256"],
        "precision": precision.value,
        "opset": OPSET,
    }
    card.write_text(yaml.safe_dump(meta, sort_keys=False))
    return path
