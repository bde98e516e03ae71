"""Use-cases: DP training of a voice's adapter, and policy-checked, labeled synthesis."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlmodel import Session

from guardian.app._consent import check_id
from guardian.app._context import Guardian
from guardian.app._label import (
    LabelRequest,
    LabelResult,
    VoiceClaim,
    check_output_path,
    default_stages,
    label_audio,
)
from guardian.app._policy import require
from guardian.audio import Audio, decode_bytes
from guardian.errors import ConsentError, GuardianError, UsageError
from guardian.policy import Action, PolicyRequest
from guardian.store import Voice
from guardian.vault import BlobKind, SealedBlob
from guardian.watermark import MIN_SECONDS

if TYPE_CHECKING:  # the engine (torch, opacus) loads when a voice is trained or speaks
    from guardian.engine import BaseVoice, TrainedAdapter

MAX_TEXT_CHARS = 5000
"""Longest text one ``synthesize`` call accepts (about five minutes of speech)."""
DELTA_RUNS = 4
"""The default δ of a run is the voice's δ cap divided by this: four runs fit the cap."""
_PAUSE_S = 0.15
FIRST_CHUNK_WORDS = 3
"""Most words in the first ``--stream`` chunk."""
FIRST_CHUNK_S = 0.7
"""Target length of the first ``--stream`` chunk in the cloned voice: its cost, and so
the stream's first-chunk latency, grows with its length."""
MIN_PART_S = 0.55
"""Predicted length under which a ``--stream`` part joins the next (a watermark needs
0.5 s; a part that still comes out shorter ends in a pause, see ``_joined``)."""
BASE_SECONDS_PER_WORD = 0.29
"""Speaking time per word of the base voice (Piper joe), leading and trailing silence
included; measured over ordinary sentences of 2 to 10 words (0.24 to 0.39 s)."""
_SENTENCE = re.compile(r"[^.!?;]+[.!?;]*")


class NoAdapterError(ConsentError):
    """The voice has no trained adapter to synthesize with."""


class TrainingCancelled(GuardianError):
    """Training was cancelled; no adapter was stored, the ε it used was recorded."""

    exit_code = 130  # type: ignore[assignment]


def delta_cap(samples: int) -> float:
    """The voice's total δ: 1 / (10·N) for N enrollment utterances."""
    return 1.0 / (10 * max(samples, 1))


# --- training --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainResult:
    voice_id: str
    epsilon: float
    delta: float
    epsilon_total: float
    delta_total: float
    steps: int
    noise_multiplier: float
    utterances: int
    speaking_rate: float
    """Length of the voice's speech relative to the base voice's."""
    warnings: list[str] = field(default_factory=list)
    """Signs that DP noise, not the speaker, decided the voice (see TrainedAdapter)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class TrainPlan:
    """A training run the policies allowed: ids and budget only, no personal data.

    This is all that crosses to a remote worker; the worker decrypts the enrollment
    data itself (``run_training``).
    """

    voice_id: str
    subject_id: str
    epsilon: float
    delta: float
    device: Literal["cpu", "cuda"]
    utterances: int


@dataclass(frozen=True)
class TrainedRecord:
    """What a finished run hands back: the adapter sealed to its subject, and the
    accountant's record of what it spent."""

    sealed: SealedBlob
    epsilon: float
    steps: int
    noise_multiplier: float
    clip: float
    accountant: str
    speaking_rate: float
    warnings: list[str]


def _sample_count(g: Guardian, s: Session, voice: Voice) -> int:
    """Enrollment utterances of the voice, counted from the vault's metadata (nothing is
    decrypted)."""
    blobs = [b for b in g.vault.blobs(s, voice.subject_id) if b.ref == voice.id]
    if not any(b.kind is BlobKind.TRANSCRIPTS for b in blobs):
        raise UsageError(f"{voice.id} was enrolled without transcripts: training needs them")
    samples = sum(1 for b in blobs if b.kind is BlobKind.SAMPLE)
    if not samples:
        raise UsageError(f"{voice.id} has no enrollment audio left (retention removes it)")
    return samples


def _training_data(g: Guardian, s: Session, voice_id: str) -> tuple[list[Audio], list[str]]:
    voice = s.get(Voice, voice_id)
    if voice is None:
        raise UsageError(f"voice {voice_id} disappeared before training")
    blobs = [b for b in g.vault.blobs(s, voice.subject_id) if b.ref == voice.id]
    texts_blob = next((b for b in blobs if b.kind is BlobKind.TRANSCRIPTS), None)
    samples = [b for b in blobs if b.kind is BlobKind.SAMPLE]
    if texts_blob is None or not samples:
        raise UsageError(f"{voice.id} lost its enrollment data before training")
    texts = json.loads(g.vault.get(s, texts_blob.id))
    audio = [decode_bytes(g.vault.get(s, b.id), name="sample") for b in samples]
    return audio, list(texts)


def plan_training(
    g: Guardian,
    voice_id: str,
    *,
    epsilon: float,
    delta: float | None = None,
    device: str = "cpu",
    requester: str | None = None,
) -> TrainPlan:
    """Check the request, the δ cap and the policies (the decision is audited)."""
    if device not in ("cpu", "cuda"):
        raise UsageError("--device must be cpu or cuda")
    if not 0 < epsilon <= 100:
        raise UsageError("--epsilon must be in (0, 100]")
    with g.reading() as s:
        voice = s.get(Voice, check_id(voice_id, "voice"))
        if voice is None:
            raise UsageError(f"no voice {voice_id}") from None
        count = _sample_count(g, s, voice)
    cap = delta_cap(count)
    delta = delta if delta is not None else cap / DELTA_RUNS
    if not delta > 0 or voice.delta_spent + delta > cap * (1 + 1e-9):
        raise UsageError(
            f"δ {delta:.3g} would bring the voice's total to {voice.delta_spent + delta:.3g}, "
            f"above its cap 1/(10·N) = {cap:.3g}"
        )
    purpose = sorted(json.loads(voice.purposes_json))[0]
    require(
        g,
        PolicyRequest(
            Action.TRAIN, voice.id, purpose, requester or voice.organization, epsilon=epsilon
        ),
    )
    return TrainPlan(
        voice.id,
        voice.subject_id,
        epsilon,
        delta,
        "cuda" if device == "cuda" else "cpu",
        count,
    )


def run_training(
    g: Guardian,
    plan: TrainPlan,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainedRecord:
    """Decrypt the enrollment data, train, and seal the adapter to its subject.

    The plaintext lives only in this call's memory. Raises ``TrainingCancelledError``
    (with the ε spent) when ``should_stop`` says so.
    """
    from guardian.engine import train_adapter

    with g.reading() as s:
        audio, texts = _training_data(g, s, plan.voice_id)
    adapter = train_adapter(
        audio,
        texts,
        epsilon=plan.epsilon,
        delta=plan.delta,
        device=plan.device,
        progress=progress,
        should_stop=should_stop,
        base=g.base_voice,
    )
    with g.reading() as s:
        sealed = g.vault.seal(s, plan.subject_id, BlobKind.ADAPTER, adapter.to_bytes())
    return TrainedRecord(
        sealed=sealed,
        epsilon=adapter.epsilon_spent,
        steps=adapter.steps,
        noise_multiplier=adapter.noise_multiplier,
        clip=adapter.clip,
        accountant=adapter.accountant,
        speaking_rate=adapter.stretch,
        warnings=adapter.warnings(len(audio)),
    )


def train_voice(
    g: Guardian,
    voice_id: str,
    *,
    epsilon: float,
    delta: float | None = None,
    device: str = "cpu",
    requester: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    ray_address: str | None = None,
) -> TrainResult:
    """Train the voice's adapter with DP-SGD after the policies allow the budget.

    The decision (and a refusal) is audited before any training starts. The adapter
    is sealed into the subject's vault; ε and δ are added to the voice's ledger.
    ``requester`` is who asks (an API key's organisation); by default the organisation
    the voice was enrolled for. With ``ray_address`` the run itself is a Ray task
    (``docs/scaling.md``); the ledger is kept here either way.
    """
    plan = plan_training(
        g, voice_id, epsilon=epsilon, delta=delta, device=device, requester=requester
    )
    from guardian.engine import TrainingCancelledError

    try:
        if ray_address is not None:
            from guardian.app._train_ray import train_on_ray  # Ray loads only when asked

            record = train_on_ray(
                plan, address=ray_address, progress=progress, should_stop=should_stop
            )
        else:
            record = run_training(g, plan, progress=progress, should_stop=should_stop)
    except TrainingCancelledError as e:
        spent = e.epsilon_spent
        _record_spend(g, plan.voice_id, spent, plan.delta if spent else 0.0, None)
        raise TrainingCancelled(
            f"training cancelled: no adapter stored; ε {spent:.3f} was spent"
        ) from e
    total_eps, total_delta = _record_spend(g, plan.voice_id, record.epsilon, plan.delta, record)
    return TrainResult(
        voice_id=plan.voice_id,
        epsilon=record.epsilon,
        delta=plan.delta,
        epsilon_total=total_eps,
        delta_total=total_delta,
        steps=record.steps,
        noise_multiplier=record.noise_multiplier,
        utterances=plan.utterances,
        speaking_rate=record.speaking_rate,
        warnings=list(record.warnings),
    )


def _record_spend(
    g: Guardian, voice_id: str, epsilon: float, delta: float, record: TrainedRecord | None
) -> tuple[float, float]:
    """Add a run's ε and δ to the voice (basic composition) and store its adapter."""
    with g.transaction() as s:
        voice = s.get(Voice, voice_id)
        if voice is None:
            raise UsageError(f"voice {voice_id} disappeared during training")
        voice.epsilon_spent += epsilon
        voice.delta_spent += delta
        s.add(voice)
        if record is not None:
            sealed = record.sealed
            if sealed.subject_id != voice.subject_id or sealed.kind is not BlobKind.ADAPTER:
                raise UsageError(f"the training run returned a blob that is not {voice_id}'s")
            for old in g.vault.blobs(s, voice.subject_id, kind=BlobKind.ADAPTER):
                if old.ref == voice.id:
                    g.vault.delete(s, old.id)
            g.vault.put_sealed(s, record.sealed, ref=voice.id)
        g.audit.append(
            s,
            "voice.train" if record is not None else "voice.train.cancelled",
            target=voice.id,
            details={
                "epsilon": epsilon,
                "delta": delta,
                "epsilon_total": voice.epsilon_spent,
                "delta_total": voice.delta_spent,
                **(
                    {
                        "steps": record.steps,
                        "noise_multiplier": record.noise_multiplier,
                        "clip": record.clip,
                        "accountant": record.accountant,
                    }
                    if record
                    else {}
                ),
            },
        )
        return voice.epsilon_spent, voice.delta_spent


# --- synthesis -------------------------------------------------------------------------------


def check_text(text: str) -> str:
    """Refuse empty, over-long or non-text input; returns the text with spaces normalised."""
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise UsageError("the text contains control characters")
    cleaned = " ".join(text.split())
    if not cleaned:
        raise UsageError("nothing to say: the text is empty")
    if len(cleaned) > MAX_TEXT_CHARS:
        raise UsageError(f"the text is {len(cleaned)} characters; the limit is {MAX_TEXT_CHARS}")
    if not any(c.isalpha() for c in cleaned):
        raise UsageError("the text has no words to say")
    return cleaned


def sentences(text: str) -> list[str]:
    return [m.strip() for m in _SENTENCE.findall(text) if any(c.isalnum() for c in m)]


def stream_parts(text: str, *, stretch: float = 1.0) -> list[str]:
    """Sentences for ``--stream``, the first cut after a few words so that it is ready
    quickly. ``stretch`` is the voice's speaking rate (converted length over base
    length): a slow voice gets fewer words in its first chunk. Later parts predicted too
    short to carry a watermark are joined to the next."""
    per_word = BASE_SECONDS_PER_WORD * stretch
    least = max(1, math.ceil(MIN_PART_S / per_word))
    first = min(FIRST_CHUNK_WORDS, max(1, int(FIRST_CHUNK_S / per_word)))
    parts = sentences(text) or [text]
    words = parts[0].split()
    if len(words) > first + 2:
        commas = [i + 1 for i, w in enumerate(words) if w.endswith(",")]
        cut = next((c for c in commas if min(least, first) <= c <= first), first)
        parts = [" ".join(words[:cut]), " ".join(words[cut:]), *parts[1:]]
    # The first part stays as cut (a short one is padded); later short ones join the next.
    merged = parts[:1]
    for part in parts[1:]:
        if len(merged) > 1 and len(merged[-1].split()) < least:
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return merged


@dataclass(frozen=True)
class SynthesisRequest:
    voice_id: str
    text: str
    output: Path
    purpose: str
    requester: str


@dataclass
class SynthesisResult:
    voice_id: str
    labels: list[LabelResult] = field(default_factory=list)
    epsilon: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "voice_id": self.voice_id,
            "epsilon": self.epsilon,
            "outputs": [r.to_dict() for r in self.labels],
        }


def _adapter(g: Guardian, request: SynthesisRequest) -> tuple[Voice, TrainedAdapter]:
    """The voice's newest adapter; decrypted and checked once per process (by blob id)."""
    with g.reading() as s:
        voice = s.get(Voice, request.voice_id)
        blobs = g.vault.blobs(s, voice.subject_id, kind=BlobKind.ADAPTER) if voice else []
        mine = [b.id for b in blobs if voice and b.ref == voice.id]
        cached = g.adapters.get(mine[-1]) if mine else None
        data = g.vault.get(s, mine[-1]) if mine and cached is None else None
    if voice is None or not mine:
        with g.transaction() as s:
            g.audit.append(
                s,
                "synthesize.refused",
                target=request.voice_id,
                details={"reason": "no trained adapter"},
            )
        raise NoAdapterError(f"{request.voice_id} has no trained adapter: run `guardian train`")
    if cached is None and data is not None:
        from guardian.engine import TrainedAdapter

        cached = g.adapters[mine[-1]] = TrainedAdapter.from_bytes(data)
    if cached is None:
        raise NoAdapterError(f"{request.voice_id}: the adapter could not be read")
    return voice, cached


def _chunks(adapter: TrainedAdapter, base: BaseVoice, parts: list[str]) -> Iterator[Audio]:
    for part in parts:
        yield adapter.speak(base, part)


def _label(
    g: Guardian,
    audio: Audio,
    request: SynthesisRequest,
    voice: Voice,
    adapter: TrainedAdapter,
    output: Path,
) -> LabelResult:
    fmt = check_output_path(None, output)
    extra = {
        "epsilon": round(voice.epsilon_spent, 6),
        "delta": voice.delta_spent,
        "engine": {
            "base": adapter.base_model_id,
            "converter": adapter.converter_id,
            "converter_sha256": adapter.converter_sha256,
            "adapter_epsilon": round(adapter.epsilon_spent, 6),
        },
    }
    label = LabelRequest(
        source=Path("<synthesis>"),
        output=output,
        purpose=request.purpose,
        requester=request.requester,
        extra=extra,
    )
    claim = VoiceClaim(voice_id=voice.id, consent_id=voice.consent_id)
    return label_audio(g, audio, label, fmt=fmt, stages=default_stages(g), voice=claim)


def synthesize(
    g: Guardian,
    request: SynthesisRequest,
    *,
    stream: bool = False,
    on_chunk: Callable[[LabelResult], None] | None = None,
) -> SynthesisResult:
    """Policy decision, base TTS, adapter, watermark, manifest, registry, audit.

    With ``stream``, each sentence becomes its own labeled file (``OUT`` stem plus
    ``-001`` …), published as soon as it is ready; ``on_chunk`` is told of each.
    """
    text = check_text(request.text)
    check_id(request.voice_id, "voice")
    check_output_path(None, request.output)
    require(
        g, PolicyRequest(Action.SYNTHESIZE, request.voice_id, request.purpose, request.requester)
    )
    voice, adapter = _adapter(g, request)
    result = SynthesisResult(voice.id, epsilon=voice.epsilon_spent)
    if stream:
        parts = stream_parts(text, stretch=adapter.stretch)
        out = request.output
        for i, audio in enumerate(_chunks(adapter, g.base_voice, parts), start=1):
            path = out.with_name(f"{out.stem}-{i:03d}{out.suffix}")
            result.labels.append(_label(g, _joined([audio]), request, voice, adapter, path))
            if on_chunk is not None:
                on_chunk(result.labels[-1])
        return result
    pieces = list(_chunks(adapter, g.base_voice, sentences(text) or [text]))
    result.labels.append(_label(g, _joined(pieces), request, voice, adapter, request.output))
    return result


def _joined(pieces: list[Audio]) -> Audio:
    """Sentences one after another, with a short pause between them; speech shorter
    than a watermark needs (a lone "Yes.", or a stream's one-word first chunk) ends in
    a longer pause rather than waiting for more words, which would delay it."""
    rate = pieces[0].sample_rate
    gap = np.zeros((int(_PAUSE_S * rate), 1), np.float32)
    samples = np.concatenate([x for p in pieces for x in (p.samples, gap)][:-1])
    short = int((MIN_SECONDS + _PAUSE_S) * rate) - len(samples)
    if short > 0:
        samples = np.concatenate([samples, np.zeros((short, samples.shape[1]), np.float32)])
    return Audio(samples, rate)
