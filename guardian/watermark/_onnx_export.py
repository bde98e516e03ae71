"""Export a card's presence detector to ONNX and pin it in the card (needs torch and onnx).

The exported graph is the detector up to presence, with its last two layers folded
(``_detect._folded_head``): chunks in the detector's view (B, 1, T) to presence (B, T),
any batch and length. Three things need care:

- audioseal's convolutions pad by an amount computed in Python from the input length,
  which the tracing exporter would freeze at the example's length. During export each
  convolution pads by a fixed amount instead, the most that length-dependent padding
  can reach (:func:`_static_padding`): the output is the same for every length, and
  ONNX Runtime folds the fixed padding into the convolution, so no copy of the signal
  is made at each layer;
- ELU is written as ``max(x, exp(min(x, 0)) - 1)`` (:class:`_Elu`), which ONNX
  Runtime computes with vectorised kernels where its ``Elu`` is not;
- the weights are stored as float16 with a cast to float32 in the graph. The torch
  weights are float16 on disk, so this loses nothing, and the file is half the size.

Every export is checked against the torch detector on clips of other lengths before
it is written.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections import Counter
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
CHECK_SECONDS = (2.5, 2.25, 1.37, 0.98765, 0.6)
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


def _static_padding(self: Any, x: torch.Tensor) -> torch.Tensor:
    """audioseal's ``StreamingConv1d.forward`` (non-causal, zero padding) with a padding
    that does not depend on the length.

    audioseal pads ``left`` and ``right + extra`` zeros, where ``extra < stride`` makes
    the last window full: ``ceil(T / stride)`` outputs. Padding ``right + stride - 1``
    gives the same outputs (``floor((T - 1) / stride) + 1`` of them), since the zeros
    past ``extra`` lie beyond the last window."""
    if self.causal or self.pad_mode != "constant" or self._streaming_state.is_streamable():
        raise WatermarkModelError("the ONNX export handles non-causal, zero-padded convolutions")
    stride = self._stride
    right = self._padding_total // 2
    left = self._padding_total - right
    padded = torch.nn.functional.pad(x, (left, right + stride - 1))
    return self.conv(padded)  # type: ignore[no-any-return]


class _Elu(torch.nn.Module):
    """ELU (alpha 1) as ``max(x, exp(min(x, 0)) - 1)``: for x > 0 the second term is 0,
    and for x <= 0 it is at least x."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(x, torch.exp(torch.clamp(x, max=0.0)) - 1.0)


@contextmanager
def _export_forms(module: torch.nn.Module) -> Iterator[None]:
    """``module`` with the export's padding and ELU (see the module's docstring), put back
    afterwards."""
    from audioseal.libs.moshi.modules.conv import StreamingConv1d

    swapped: list[tuple[torch.nn.Module, str, torch.nn.Module]] = []
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.ELU):
                if child.alpha != 1.0:
                    raise WatermarkModelError("the ONNX export handles ELU with alpha 1")
                swapped.append((parent, name, child))
                setattr(parent, name, _Elu())
    original = StreamingConv1d.forward
    StreamingConv1d.forward = _static_padding  # type: ignore[method-assign]
    try:
        yield
    finally:
        StreamingConv1d.forward = original  # type: ignore[method-assign]
        for parent, name, child in swapped:
            setattr(parent, name, child)


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
        _export_forms(module),
    ):
        # the tracer's warnings about shapes it records, and the legacy exporter's
        # deprecation notice
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


def _constants_folded(data: bytes) -> bytes:
    """The graph after ONNX Runtime's basic rewrites, which are hardware-independent and
    keep to standard operators: constant folding turns the padding amounts into
    initializers."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "traced.onnx", Path(tmp) / "folded.onnx"
        src.write_bytes(data)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(dst)
        options.log_severity_level = 3
        ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
        return dst.read_bytes()


def _planar_convolutions(data: bytes) -> bytes:
    """Each zero padding folded into the convolution it feeds, and each 1-D convolution
    run as a 2-D one of height 1, which ONNX Runtime computes in its blocked channel
    layout (with the ELU form, detection 1.2-1.3x faster than the traced graph:
    docs/benchmarks/verify_speed.md)."""
    import onnx
    from onnx import helper, numpy_helper

    graph_model = onnx.load_from_string(_constants_folded(data))
    graph = graph_model.graph
    weights = {init.name: init for init in graph.initializer}
    pads = {node.output[0]: node for node in graph.node if node.op_type == "Pad"}
    readers = Counter(name for node in graph.node for name in node.input)
    axis = numpy_helper.from_array(np.array([2], dtype=np.int64), "planar_axis")
    graph.initializer.append(axis)
    nodes, folded = [], set()
    for node in graph.node:
        if node.op_type != "Conv":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        source, (left, right) = _zero_padding(node.input[0], pads, weights, readers)
        if source != node.input[0]:
            folded.add(node.input[0])
        weight = weights[node.input[1]]
        value = numpy_helper.to_array(weight)
        weight.CopyFrom(numpy_helper.from_array(value[:, :, None, :], weight.name))
        flat, planar = node.name + "_planar_in", node.name + "_planar_out"
        nodes += [
            helper.make_node("Unsqueeze", [source, axis.name], [flat]),
            helper.make_node(
                "Conv",
                [flat, *node.input[1:]],
                [planar],
                name=node.name,
                kernel_shape=[1, attrs["kernel_shape"][0]],
                strides=[1, attrs["strides"][0]],
                dilations=[1, attrs["dilations"][0]],
                pads=[0, attrs["pads"][0] + left, 0, attrs["pads"][1] + right],
                group=attrs["group"],
            ),
            helper.make_node("Squeeze", [planar, axis.name], list(node.output)),
        ]
    kept = [n for n in nodes if not (n.op_type == "Pad" and n.output[0] in folded)]
    if any(n.op_type == "Pad" for n in kept):
        raise WatermarkModelError("the ONNX export left a padding it could not fold")
    del graph.node[:]
    graph.node.extend(kept)
    onnx.checker.check_model(graph_model)
    return bytes(graph_model.SerializeToString())


def _zero_padding(
    name: str, pads: dict[str, Any], weights: dict[str, Any], readers: Counter[str]
) -> tuple[str, tuple[int, int]]:
    """What feeds a convolution's input ``name``: the unpadded tensor and the zeros a
    constant ``Pad`` adds at either end of the time axis ((name, (0, 0)) without one)."""
    from onnx import numpy_helper

    pad = pads.get(name)
    if pad is None:
        return name, (0, 0)
    mode = next((a.s for a in pad.attribute if a.name == "mode"), b"constant")
    amounts = weights.get(pad.input[1])
    if (
        mode != b"constant"
        or amounts is None
        or (len(pad.input) > 2 and pad.input[2])
        or readers[name] != 1
    ):
        raise WatermarkModelError(f"the ONNX export cannot fold the padding {pad.name}")
    begin_b, begin_c, left, end_b, end_c, right = numpy_helper.to_array(amounts).tolist()
    if begin_b or begin_c or end_b or end_c:
        raise WatermarkModelError(f"the padding {pad.name} pads more than time")
    return pad.input[0], (int(left), int(right))


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
    data = _planar_convolutions(_trace(model))
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
