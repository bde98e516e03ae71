"""The ONNX Runtime detector that verify runs: the same results as torch, pinned like the
weights, rebuilt by export."""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from guardian.audio import Audio, read_audio, speechlike
from guardian.errors import WatermarkModelError
from guardian.watermark import (
    SHIPPED_CARD,
    OnnxDetector,
    Payload,
    PayloadKey,
    TorchDetector,
    detect,
    embed,
    export_onnx,
    load_card,
    load_detector,
    preload_detector,
)
from guardian.watermark._scoring import chunks, detector_view, in_order, presence
from guardian.watermark._signal import detector_input

SPEECH = Path(__file__).parents[1] / "data" / "voices" / "kal"


@pytest.fixture(scope="module")
def shipped():  # type: ignore[no-untyped-def]
    return load_card(SHIPPED_CARD), load_detector()


def _clips(model) -> list[Audio]:  # type: ignore[no-untyped-def]
    """Watermarked and plain speech, of lengths that give first, middle and short last
    chunks, and a stereo 44.1 kHz clip."""
    out = []
    for i, name in enumerate(("sample-01.flac", "sample-02.flac", "sample-03.flac")):
        speech = read_audio(SPEECH / name)
        out += [speech, embed(model, speech, Payload(0x2A5C + i))]
    stereo = np.stack([speechlike(3.3, sample_rate=44100, seed=5)] * 2, axis=1)
    out.append(embed(model, Audio(stereo, 44100), Payload(0x0F0F)))
    return out


@pytest.mark.parametrize("n", [16000, 36000, 40000, 12345])
def test_the_numpy_view_is_the_torch_view(n: int) -> None:
    x = speechlike(n / 16000 + 0.01, seed=n)[:n]
    cfg = load_card(SHIPPED_CARD).embed
    expected = detector_input(torch.from_numpy(x)[None, None, :], cfg)[0, 0].numpy()
    assert np.allclose(detector_view(x, cfg), expected, atol=2e-5)


def test_chunks_cover_the_clip_once_with_context() -> None:
    spans = chunks(16000 * 5 + 123, 2.0)
    assert [c.start for c in spans] == [0, 32000, 64000]
    assert spans[-1].stop == 16000 * 5 + 123
    assert all(c.lo == max(0, c.start - 4000) for c in spans)


def test_the_shipped_card_verifies_on_onnx(shipped) -> None:  # type: ignore[no-untyped-def]
    _model, detector = shipped
    assert isinstance(detector, OnnxDetector) and detector.runtime == "onnx"


def test_the_shipped_graph_pads_inside_planar_convolutions() -> None:
    """The export's faster forms: no padding copied ahead of a convolution, no ``Elu``
    kernel, and every convolution 2-D (ONNX Runtime's blocked layout)."""
    import onnx

    meta = yaml.safe_load(SHIPPED_CARD.read_text())["detector_onnx"]
    graph = onnx.load(str(SHIPPED_CARD.with_name(meta["file"]))).graph
    ops = [n.op_type for n in graph.node]
    assert "Pad" not in ops and "Elu" not in ops
    convolutions = [n for n in graph.node if n.op_type == "Conv"]
    assert convolutions and all(
        len(next(a.ints for a in n.attribute if a.name == "kernel_shape")) == 2
        for n in convolutions
    )


def test_batches_read_on_two_threads_give_what_one_thread_gives(shipped) -> None:  # type: ignore[no-untyped-def]
    """Each chunk is read alone, so reading two batches at once changes no number."""
    model, detector = shipped
    assert detector.workers == 2
    alone = dataclasses.replace(detector, workers=1)
    for clip in _clips(model):
        a, b = detector.detect(clip), alone.detect(clip)
        assert (a.score, a.bits, a.bit_confidence, a.segments) == (
            b.score,
            b.bits,
            b.bit_confidence,
            b.segments,
        )


def test_presence_on_several_threads_is_the_presence_on_one(shipped) -> None:  # type: ignore[no-untyped-def]
    _model, detector = shipped
    mono = speechlike(11.3, sample_rate=16000, seed=3)
    one = presence(detector._run, mono, detector.embed, bits=False, batch=1, workers=1)[0]
    for workers in (2, 3):
        many = presence(detector._run, mono, detector.embed, bits=False, batch=1, workers=workers)
        assert np.array_equal(many[0], one)


def test_in_order_keeps_the_order_and_bounds_what_is_in_flight() -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def slow(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.002 * (i % 3))  # later items can finish first
        with lock:
            running -= 1
        return i * i

    started: list[int] = []

    def items():  # type: ignore[no-untyped-def]
        for i in range(40):
            started.append(i)
            yield i

    out = []
    for value in in_order(slow, items(), 2):
        out.append(value)
        # never more than two per thread handed out ahead of what was consumed
        assert len(started) - len(out) <= 4
    assert out == [i * i for i in range(40)]
    assert most <= 2
    assert list(in_order(slow, range(5), 1)) == [0, 1, 4, 9, 16]


def test_a_failing_batch_raises_from_in_order() -> None:
    def boom(i: int) -> int:
        if i == 3:
            raise ValueError("bad batch")
        return i

    with pytest.raises(ValueError, match="bad batch"):
        list(in_order(boom, range(10), 2))


@pytest.mark.slow  # loads the torch model and exports
def test_onnx_and_torch_give_the_same_detection(shipped) -> None:  # type: ignore[no-untyped-def]
    """Score, verdict, payload bits and localization agree on speech, watermarked or not,
    under the shipped tones and under a deployment's keyed tones."""
    model, detector = shipped
    key = PayloadKey.derive(b"k" * 32)
    keyed = TorchDetector(model).with_tones(key.tones)
    for clip in _clips(model):
        for reference, onnx in (
            (detect(model, clip), detector.detect(clip)),
            (keyed.detect(clip), detector.with_tones(key.tones).detect(clip)),
        ):
            assert onnx.score == pytest.approx(reference.score, abs=1e-4)
            assert onnx.detected == reference.detected
            assert onnx.bits == reference.bits and onnx.payload == reference.payload
            assert onnx.segments == reference.segments
            assert np.allclose(onnx.bit_confidence, reference.bit_confidence, atol=1e-3)
    assert any(detect(model, c).detected for c in _clips(model)[1::2])


def _copy_card(tmp_path: Path) -> Path:
    for f in SHIPPED_CARD.parent.glob("guardian-wm-v15*"):
        if f.suffix != ".pt":  # the weights are not read here: link, do not copy 12 MB
            shutil.copy(f, tmp_path / f.name)
        else:
            (tmp_path / f.name).symlink_to(f)
    return tmp_path / SHIPPED_CARD.name


def test_a_changed_onnx_file_is_refused(tmp_path: Path) -> None:
    card = _copy_card(tmp_path)
    onnx = card.with_name(yaml.safe_load(card.read_text())["detector_onnx"]["file"])
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 1
    onnx.write_bytes(bytes(data))
    with pytest.raises(WatermarkModelError, match="does not match the model card"):
        load_detector(str(card))


def test_an_onnx_file_from_other_weights_is_refused(tmp_path: Path) -> None:
    card = _copy_card(tmp_path)
    meta = yaml.safe_load(card.read_text())
    meta["detector_onnx"]["from_weights"] = "0" * 64
    card.write_text(yaml.safe_dump(meta, sort_keys=False))
    with pytest.raises(WatermarkModelError, match="exported from other weights"):
        load_detector(str(card))


def test_a_preloaded_detector_is_the_card_s_and_keeps_its_checks(tmp_path: Path) -> None:
    """``preload_detector`` loads on another thread: the same file, the same refusals."""
    detector = preload_detector().result(timeout=120)
    assert isinstance(detector, OnnxDetector) and detector.sha256 == load_detector().sha256
    card = _copy_card(tmp_path)
    onnx = card.with_name(yaml.safe_load(card.read_text())["detector_onnx"]["file"])
    onnx.write_bytes(onnx.read_bytes()[:-1])
    with pytest.raises(WatermarkModelError, match="does not match the model card"):
        preload_detector(str(card)).result(timeout=120)


def test_a_card_without_onnx_runs_on_torch(tiny_watermark_card: Path) -> None:
    detector = load_detector(str(tiny_watermark_card))
    assert isinstance(detector, TorchDetector) and detector.runtime == "torch"


@pytest.mark.slow  # loads the torch model and exports
def test_export_rebuilds_the_pinned_file_and_matches_torch(
    tiny_watermark_card: Path, tmp_path: Path
) -> None:
    for f in tiny_watermark_card.parent.glob("tiny.*"):
        shutil.copy(f, tmp_path / f.name)
    card = tmp_path / "tiny.yaml"
    path = export_onnx(card)
    entry = yaml.safe_load(card.read_text())["detector_onnx"]
    assert entry["file"] == path.name and entry["precision"] == "fp32"
    detector = load_detector(str(card))
    assert isinstance(detector, OnnxDetector)
    model = load_card(card)
    clip = Audio(speechlike(4.3, seed=9)[:, None], 16000)
    assert detector.detect(clip).score == pytest.approx(detect(model, clip).score, abs=1e-4)
    first = path.read_bytes()
    assert export_onnx(card).read_bytes() == first, "the export is reproducible"


@pytest.mark.slow
def test_the_shipped_onnx_file_is_what_export_builds(tmp_path: Path) -> None:
    """The pinned file is rebuilt from the weights, byte for byte."""
    card = _copy_card(tmp_path)
    shipped = card.with_name(yaml.safe_load(card.read_text())["detector_onnx"]["file"])
    before = shipped.read_bytes()
    shipped.unlink()
    assert export_onnx(card).read_bytes() == before
