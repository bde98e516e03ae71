"""Model loading from all three sources, calibration, payload, bad input."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given
from hypothesis import strategies as st

from guardian.audio import Audio, speechlike
from guardian.errors import InvalidSamplesError, WatermarkModelError
from guardian.watermark import (
    Payload,
    calibrate,
    candidate_label_tags,
    detect,
    label_tag,
    load_card,
    load_model,
)
from guardian.watermark._detect import Segment, _folded_head, _run_detector
from guardian.watermark._model import ArchConfig, build_detector, build_generator, seanet_config
from guardian.watermark._scoring import segments


def _clip(seconds: float = 2.0, seed: int = 1) -> Audio:
    return Audio(speechlike(seconds, seed=seed)[:, None], 16000)


# --- loading ----------------------------------------------------------------------------


def test_deployment_card_loads_and_pins_its_hash(tiny_watermark_card: Path, tmp_path: Path) -> None:
    model = load_model(str(tiny_watermark_card))
    assert model.model_id == "tiny-test" and model.generator is not None
    card = yaml.safe_load(tiny_watermark_card.read_text())
    tampered = tmp_path / "tampered.yaml"
    weights = tmp_path / card["weights"]
    data = bytearray((tiny_watermark_card.parent / card["weights"]).read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    tampered.write_text(yaml.safe_dump(card))
    with pytest.raises(WatermarkModelError, match="does not match the model card"):
        load_card(tampered)


def test_missing_card_and_weights_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WatermarkModelError, match="does not exist"):
        load_model(str(tmp_path / "nope.yaml"))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"weights": "w.pt", "sha256": "0", "arch": {}}))
    with pytest.raises(WatermarkModelError, match="missing"):
        load_model(str(tmp_path / "c.yaml"))
    with pytest.raises(WatermarkModelError, match="unknown watermark model"):
        load_model("not-a-model")


def test_official_card_offline_fails_fast_and_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIOSEAL_CACHE_DIR", str(tmp_path / "cache"))
    t0 = time.perf_counter()
    with pytest.raises(WatermarkModelError, match="does not download"):
        load_model("audioseal_wm_16bits")
    assert time.perf_counter() - t0 < 5, "must not wait on the network"


def _official_files(root: Path) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Checkpoints in the official release's layout (xp.cfg + pre-scripting keys)."""
    arch = ArchConfig(n_filters=4, dimension=8, lstm=1)
    gen, det = build_generator(arch), build_detector(arch)
    seanet = dict(vars(seanet_config(arch)))

    def legacy(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k.replace(".inner_conv.", "."): v for k, v in sd.items()}

    decoder = {"final_activation": None, "final_activation_params": None, "trim_right_ratio": 1.0}
    torch.save(
        {
            "xp.cfg": {"seanet": seanet, "decoder": decoder, "nbits": 16},
            "model": legacy(gen.state_dict()),
        },
        root / "generator_base.pth",
    )
    torch.save(
        {
            "xp.cfg": {"seanet": seanet, "detector": {"output_dim": 32}, "nbits": 16},
            "model": legacy(det.state_dict()),
        },
        root / "detector_base.pth",
    )
    return gen, det


def test_official_checkpoints_load_through_the_official_classes(tmp_path: Path) -> None:
    from audioseal.models import AudioSealDetector, AudioSealWM

    _gen, det = _official_files(tmp_path)
    model = load_model(str(tmp_path))
    assert isinstance(model.generator, AudioSealWM)
    assert isinstance(model.detector, AudioSealDetector)
    assert model.source == "audioseal" and len(model.weights_sha256) == 64
    x = torch.from_numpy(speechlike(1.0)[None, None, :])
    det.eval()
    with torch.inference_mode():
        assert torch.allclose(model.detector.detector(x), det.detector(x), atol=1e-5)


def test_official_card_name_uses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache" / "audioseal"
    cache.mkdir(parents=True)
    _official_files(tmp_path)
    (tmp_path / "generator_base.pth").rename(cache / "generator_base.pth")
    (tmp_path / "detector_base.pth").rename(cache / "detector_base.pth")
    monkeypatch.setenv("AUDIOSEAL_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(WatermarkModelError, match="do not match their AudioSeal config"):
        load_model("audioseal_wm_16bits")


# --- detection and calibration -------------------------------------------------------------


def test_folded_head_gives_the_whole_detectors_output(tmp_path: Path) -> None:
    """Detection folds the detector's last two layers into one map: presence and bit
    logits must be those of the whole network, for Guardian's and an official layout."""
    _official_files(tmp_path)
    for model in (load_model(str(tmp_path)), load_model("guardian")):
        head = _folded_head(model)
        assert head is not None
        x = torch.from_numpy(speechlike(2.3, seed=4)[None, None, :])
        with torch.inference_mode():
            full = model.detector.detector(x)
            prob, bits = _run_detector(model, x, head, bits=True)
            plain_prob, plain_bits = _run_detector(model, x, None, bits=True)
        assert bits is not None and plain_bits is not None
        assert torch.allclose(prob, torch.softmax(full[:, :2], dim=1)[:, 1], atol=1e-5)
        assert torch.allclose(bits, full[:, 2:], atol=1e-4)
        assert torch.allclose(plain_prob, prob, atol=1e-5)
        assert torch.allclose(plain_bits, bits, atol=1e-4)
        only, none = _run_detector(model, x, head, bits=False)
        assert none is None and torch.allclose(only, prob, atol=1e-6)


def test_calibrated_threshold_clears_every_negative(tiny_watermark_card: Path) -> None:
    model = load_model(str(tiny_watermark_card))
    negatives = [_clip(2.0, seed=s) for s in range(200, 208)]
    thr = calibrate(model, negatives)
    model.threshold = thr
    assert all(not detect(model, a).detected for a in negatives)
    assert 0.0 < thr <= 1.0


def test_too_short_silent_and_dc_inputs_are_results(tiny_watermark_card: Path) -> None:
    model = load_model(str(tiny_watermark_card))
    short = detect(model, Audio(np.zeros((4000, 1), np.float32) + 0.1, 16000))
    assert not short.detected and "too short" in (short.note or "")
    silent = detect(model, Audio(np.zeros((32000, 1), np.float32), 16000))
    assert not silent.detected and "silent" in (silent.note or "")
    dc = detect(model, Audio(np.full((32000, 1), 0.3, np.float32), 16000))
    assert not dc.detected and "silent" in (dc.note or "")
    with pytest.raises(InvalidSamplesError):
        Audio(np.full((32000, 1), np.nan, np.float32), 16000)


def test_any_rate_and_stereo(tiny_watermark_card: Path) -> None:
    model = load_model(str(tiny_watermark_card))
    x = speechlike(2.0, sample_rate=44100)
    d = detect(model, Audio(np.stack([x, x], axis=1), 44100))
    assert 0.0 <= d.score <= 1.0


# --- payload ----------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=0xFFFF))
def test_payload_bits_round_trip(value: int) -> None:
    p = Payload(value)
    assert Payload.from_bits(p.bits()) == p
    assert p.value == (p.deployment << 12) | p.label_tag


def test_candidate_tags_recover_weak_bit_errors() -> None:
    p = Payload.for_label(deployment=5, label_id="lbl_abc")
    assert p.label_tag == label_tag("lbl_abc")
    bits = p.bits()
    conf = [0.9] * 16
    bits[10] ^= 1
    conf[10] = 0.05  # the flipped bit is the least confident one
    assert p.label_tag in candidate_label_tags(bits, conf)
    with pytest.raises(ValueError):
        Payload(1 << 16)


def test_card_with_a_bad_band_is_a_clear_error(tiny_watermark_card: Path, tmp_path: Path) -> None:
    meta = yaml.safe_load(tiny_watermark_card.read_text())
    meta["embed"]["band_hz"] = [3000, 2000]
    card = tmp_path / tiny_watermark_card.name
    card.write_text(yaml.safe_dump(meta))
    shutil.copy(tiny_watermark_card.parent / meta["weights"], tmp_path / meta["weights"])
    with pytest.raises(WatermarkModelError, match="is invalid: band_hz"):
        load_card(card)


def test_localization_keeps_runs_that_reach_the_threshold_only() -> None:
    prob = np.full(600, 0.1, dtype=np.float32)  # 6 s of 10 ms frames
    prob[100:300] = 0.95  # 1-3 s: watermarked
    prob[400:440] = 0.6  # 4-4.4 s: unwatermarked speech just over 0.5
    assert segments(prob, 0.85) == [Segment(1.0, 3.0)]
    assert segments(prob, 0.55) == [Segment(1.0, 3.0), Segment(4.0, 4.4)]
