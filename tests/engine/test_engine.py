"""The DP speaker adapter: Opacus accounting, Poisson sampling, serialisation, cancelling.

Runs on the shipped synthetic slt enrollment samples (festival), a few utterances and a
few DP-SGD steps, so each test takes seconds. Quality is measured by
``benchmarks/engine.py``, not here.
"""

from __future__ import annotations

import base64
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from opacus.accountants import RDPAccountant

from guardian.audio import Audio, resample
from guardian.corpus import public_voice
from guardian.engine import (
    AdapterFormatError,
    BaseVoice,
    DPConfig,
    EngineModelError,
    EnrollmentDataError,
    PublicConverter,
    TrainedAdapter,
    TrainingCancelledError,
    epsilon_of,
    load_converter,
    train_adapter,
)
from guardian.engine._data import pad
from guardian.engine._dp import noise_per_utterance, train_dp
from guardian.engine._prior import REFERENCE_DELTA, REFERENCE_UTTERANCES, SHIPPED_CARD, Tier
from guardian.engine._trained import MEASURED_NOISE, prepare_examples

DELTA = 1e-3
Enrollment = tuple[list[Audio], list[str]]


@pytest.fixture(scope="module")
def converter() -> PublicConverter:
    return load_converter()


@pytest.fixture(scope="module")
def packed(enrollment: Enrollment, base_voice: BaseVoice, converter: PublicConverter) -> np.ndarray:
    utterances, texts = enrollment
    prior = converter.prior_for(8.0)
    return prepare_examples(utterances, texts, prior, base_voice)


@pytest.fixture(scope="module")
def adapter(
    enrollment: Enrollment, base_voice: BaseVoice, converter: PublicConverter
) -> TrainedAdapter:
    utterances, texts = enrollment
    return train_adapter(
        utterances, texts, epsilon=8.0, delta=DELTA, base=base_voice, converter=converter, seed=1
    )


@pytest.mark.slow
def test_trained_adapter_spends_what_opacus_accounts(adapter: TrainedAdapter) -> None:
    assert 0.0 < adapter.epsilon_spent <= 8.0 + 0.05
    assert adapter.noise_multiplier > 0.3
    acc = RDPAccountant()
    acc.history = list(adapter.history)
    assert acc.get_epsilon(delta=DELTA) == pytest.approx(adapter.epsilon_spent, rel=1e-6)
    # DP-SGD's steps, then the speaking rate's own Gaussian release, one accountant.
    *sgd, release = adapter.history
    assert sum(steps for _, _, steps in sgd) == adapter.steps
    assert release == (adapter.rate_noise_multiplier, 1.0, 1)


@pytest.mark.slow
def test_speaking_rate_release_is_accounted_and_cannot_be_dropped(
    adapter: TrainedAdapter,
) -> None:
    doc = json.loads(adapter.to_bytes())
    assert doc["privacy"]["rate_release"]["noise_multiplier"] == adapter.rate_noise_multiplier
    without = json.loads(adapter.to_bytes())
    without["privacy"]["history"] = without["privacy"]["history"][:-1]
    with pytest.raises(AdapterFormatError):
        TrainedAdapter.from_bytes(json.dumps(without).encode())
    hidden = json.loads(adapter.to_bytes())
    del hidden["privacy"]["rate_release"]
    with pytest.raises(AdapterFormatError):
        TrainedAdapter.from_bytes(json.dumps(hidden).encode())


@pytest.mark.slow
def test_smaller_budget_means_more_noise(packed: np.ndarray, converter: PublicConverter) -> None:
    prior = converter.prior_for(8.0)
    cfg = DPConfig(clip=1.0, batch_fraction=0.5, epochs=3, lr=0.5)
    loose = train_dp(packed, prior, cfg, epsilon=8.0, delta=DELTA, seed=0)
    tight = train_dp(packed, prior, cfg, epsilon=1.0, delta=DELTA, seed=0)
    assert tight.noise_multiplier > 2 * loose.noise_multiplier
    assert tight.epsilon == pytest.approx(1.0, abs=0.05)


def test_batches_are_poisson_sampled(packed: np.ndarray, converter: PublicConverter) -> None:
    prior = converter.prior_for(8.0)
    many = pad([packed[i % len(packed)] for i in range(40)])
    cfg = DPConfig(clip=1.0, batch_fraction=0.25, epochs=5, lr=0.5)
    run = train_dp(many, prior, cfg, epsilon=8.0, delta=DELTA, seed=3)
    assert run.poisson
    assert run.sample_rate == pytest.approx(0.25)
    # Fixed-size batches would all hold 10 utterances.
    assert len(set(run.batch_sizes)) > 1


def test_round_trip_keeps_parameters_and_output(
    adapter: TrainedAdapter, base_voice: BaseVoice
) -> None:
    again = TrainedAdapter.from_bytes(adapter.to_bytes())
    np.testing.assert_array_equal(again.theta, adapter.theta)
    assert again.epsilon_spent == adapter.epsilon_spent
    assert again.history == adapter.history
    spoken = base_voice.synthesize("A quiet lantern waited near the river.")
    a, b = adapter.convert(spoken), again.convert(spoken)
    assert a.sample_rate == 16_000 and a.duration > 1.0
    np.testing.assert_allclose(a.samples, b.samples, atol=1e-6)


def test_adapter_claiming_less_epsilon_than_its_history_is_refused(
    adapter: TrainedAdapter,
) -> None:
    doc = json.loads(adapter.to_bytes())
    doc["privacy"]["epsilon"] = adapter.epsilon_spent / 4
    with pytest.raises(AdapterFormatError, match="history gives"):
        TrainedAdapter.from_bytes(json.dumps(doc).encode())


def test_adapter_with_wrong_parameter_count_is_refused(adapter: TrainedAdapter) -> None:
    doc = json.loads(adapter.to_bytes())
    doc["size"]["components"] = adapter.components + 1
    with pytest.raises(AdapterFormatError):
        TrainedAdapter.from_bytes(json.dumps(doc).encode())


@pytest.mark.slow
def test_cancelled_run_leaves_no_adapter_and_reports_spent_epsilon(
    enrollment: Enrollment, base_voice: BaseVoice, converter: PublicConverter
) -> None:
    utterances, texts = enrollment
    calls: list[int] = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3  # after the data is prepared and two steps are taken

    with pytest.raises(TrainingCancelledError) as info:
        train_adapter(
            utterances,
            texts,
            epsilon=8.0,
            delta=DELTA,
            base=base_voice,
            converter=converter,
            should_stop=stop,
        )
    err = info.value
    # The speaking rate is released only by a completed run: two steps, nothing else.
    assert sum(steps for _, _, steps in err.history) == 2
    assert all(q < 1.0 for _, q, _ in err.history)
    assert 0.0 < err.epsilon_spent < 8.0
    assert err.epsilon_spent == pytest.approx(epsilon_of(err.history, DELTA, "rdp"))


def test_texts_must_match_utterances(enrollment: Enrollment, base_voice: BaseVoice) -> None:
    utterances, texts = enrollment
    with pytest.raises(EnrollmentDataError):
        train_adapter(utterances, texts[:-1], epsilon=8.0, delta=DELTA, base=base_voice)
    with pytest.raises(EnrollmentDataError):
        train_adapter(utterances, texts, epsilon=0.0, delta=DELTA, base=base_voice)


def test_altered_converter_weights_are_refused(tmp_path: Path) -> None:
    for f in SHIPPED_CARD.parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    weights = tmp_path / SHIPPED_CARD.with_suffix(".pt").name
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(EngineModelError, match="SHA-256"):
        load_converter(tmp_path / SHIPPED_CARD.name)


def test_tiers_pick_a_smaller_adapter_for_a_smaller_budget(converter: PublicConverter) -> None:
    tiers: tuple[Tier, ...] = converter.tiers
    sizes = [converter.prior_for(e).p * converter.prior_for(e).order for e in (1.0, 8.0)]
    assert sizes[0] <= sizes[1]
    assert all(t.dp.clip > 0 for t in tiers)


def test_base_voice_speaks(base_voice: BaseVoice) -> None:
    audio = base_voice.synthesize("Hello there.")
    assert isinstance(audio, Audio)
    assert audio.sample_rate == base_voice.sample_rate and audio.duration > 0.3


def _with_log_rate(adapter: TrainedAdapter, log_rate: float) -> TrainedAdapter:
    """The same adapter with its speaking rate (the last parameter) set in natural units."""
    prior = adapter._module.prior
    doc = json.loads(adapter.to_bytes())
    theta = np.frombuffer(base64.b64decode(doc["theta"]), dtype="<f4").copy()
    theta[-1] = (log_rate - float(prior.init["rate"][0])) / prior.scales["rate"]
    doc["theta"] = base64.b64encode(theta.tobytes()).decode("ascii")
    return TrainedAdapter.from_bytes(json.dumps(doc).encode())


def test_warnings_name_too_little_data_and_a_rate_at_its_bound(adapter: TrainedAdapter) -> None:
    steady = _with_log_rate(adapter, 0.1)
    assert steady.stretch == pytest.approx(np.exp(0.1), rel=1e-5)
    enough = 1 + int(steady.noise_multiplier / (steady.sample_rate * MEASURED_NOISE))
    assert steady.warnings(enough) == []
    (few,) = steady.warnings(enough - 1)
    assert f"only {enough - 1} enrollment utterances" in few
    for log_rate in (-3.0, 3.0):
        (bound,) = _with_log_rate(adapter, log_rate).warnings(enough)
        assert "speaking rate hit its bound" in bound


@pytest.mark.slow
def test_measured_noise_is_the_benchmarks_noisiest_setting(converter: PublicConverter) -> None:
    dp = converter.tier(1.0).dp
    noisiest = noise_per_utterance(1.0, REFERENCE_DELTA, REFERENCE_UTTERANCES, dp)
    assert noisiest == pytest.approx(MEASURED_NOISE, rel=0.01)


@pytest.mark.slow
def test_little_data_gets_the_small_adapter_even_at_a_large_epsilon(
    converter: PublicConverter,
) -> None:
    """Tiers were chosen for 100 utterances; a few carry more noise each, whatever ε,
    and many carry less."""
    small, large = min(converter.tiers, key=lambda t: t.min_epsilon), converter.tier(8.0)
    assert converter.tier(8.0, utterances=100, delta=REFERENCE_DELTA) == large
    assert converter.tier(1.0, utterances=100, delta=REFERENCE_DELTA) == small
    assert converter.tier(8.0, utterances=6, delta=1e-3) == small
    assert converter.tier(1.0, utterances=1000, delta=1e-6) == large


def test_public_voices_vary_in_pace_and_repeat_by_seed(base_voice: BaseVoice) -> None:
    spoken = base_voice.synthesize("A quiet lantern waited near the river.")
    x = resample(spoken.mono(), spoken.sample_rate, 16_000)
    stretches = [len(public_voice(random.Random(seed))(x)) / len(x) for seed in range(4)]
    assert all(0.45 < s < 2.1 for s in stretches)
    assert max(stretches) / min(stretches) > 1.2
    again = public_voice(random.Random(2))(x)
    np.testing.assert_array_equal(again, public_voice(random.Random(2))(x))
