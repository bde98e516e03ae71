"""``guardian demo``: the whole chain, as far as it exists, on a fresh home."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from guardian.app._audit import verify_audit
from guardian.app._consent import create_challenge, revoke_consent
from guardian.app._consent_voice import (
    enrollment_samples,
    held_out_recordings,
    spoken_consent,
)
from guardian.app._context import Guardian, open_guardian
from guardian.app._engine import SynthesisRequest, _adapter, synthesize, train_voice
from guardian.app._enroll import EnrollRequest, enroll
from guardian.app._keys import init_keys, rotate_key
from guardian.app._policy import explain
from guardian.app._rights import forget
from guardian.app._verify import Verdict, verify_file
from guardian.app._voice_match import VoiceMatch, match_voice
from guardian.audio import (
    Audio,
    OutputFormat,
    decode_bytes,
    encode_bytes,
    flip_wav_sample,
    read_audio,
    resample,
)
from guardian.config import Settings
from guardian.engine import TrainedAdapter
from guardian.errors import ConsentError
from guardian.policy import Action, PolicyRequest

DEMO_NAME = "Alex Morgan"
DEMO_ORG = "Guardian Demo Studio"
DEMO_VOICE = Path(__file__).with_name("assets") / "consent" / "slt"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoStep:
    name: str
    expected: str
    got: str
    seconds: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.got in self.expected.split(" or ")


@dataclass
class DemoReport:
    home: str
    kept: bool = False
    steps: list[DemoStep] = field(default_factory=list)
    voice: VoiceMatch | None = None
    """The synthesized clip measured against the demo speaker's held-out recordings."""

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "home": self.home,
            "voice": None if self.voice is None else self.voice.to_dict(),
            "steps": [
                {
                    "name": s.name,
                    "expected": s.expected,
                    "got": s.got,
                    "ok": s.ok,
                    "seconds": round(s.seconds, 4),
                    "detail": s.detail,
                }
                for s in self.steps
            ],
        }

    def summary(self) -> str:
        lines = [f"{'step':58} {'expected':22} {'got':22} {'time':>8}"]
        for s in self.steps:
            mark = "ok" if s.ok else "FAIL"
            lines.append(f"{s.name:58} {s.expected:22} {s.got:22} {s.seconds * 1000:6.0f}ms {mark}")
            if s.detail:
                lines.append(f"    {s.detail[:150]}")
        if self.voice is not None:
            lines.append(f"cloned voice: {self.voice.summary()}")
        where = self.home if self.kept else f"{self.home} (temporary, removed)"
        lines.append("demo " + ("passed" if self.ok else "FAILED") + f"; home: {where}")
        return "\n".join(lines)


@contextmanager
def _workspace(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="guardian-demo-") as tmp:
        yield Path(tmp)


def _write(path: Path, audio: Audio, fmt: OutputFormat = OutputFormat.WAV) -> Path:
    path.write_bytes(encode_bytes(audio, fmt))
    return path


def run_demo(*, workdir: Path | None = None, progress: Progress | None = None) -> DemoReport:
    """Enroll with consent; label, verify, re-encode, tamper, rotate; revoke, erase, audit."""
    say = progress or (lambda _msg: None)
    with _workspace(workdir) as work:
        home = work / "home"
        g = open_guardian(
            Settings(home=home, database_url=None, master_key=None, allow_synthetic_consent=True)
        )
        report = DemoReport(home=str(home), kept=workdir is not None)

        def step(name: str, expected: str, fn: Callable[[], tuple[str, str]]) -> None:
            say(f"- {name} ...")
            t0 = time.perf_counter()
            got, detail = fn()
            report.steps.append(DemoStep(name, expected, got, time.perf_counter() - t0, detail))

        step(
            "create signing identity (root CA, signer, audit)",
            "created",
            lambda: ("created", ", ".join(k.kid for k in init_keys(g))),
        )
        voice_id = _consent_steps(g, work, step)
        labeled = work / "speech.labeled.wav"
        report.voice = _engine_steps(g, step, voice_id, labeled)
        _verify_step(g, step, "verify the synthesized clip", labeled, Verdict.VERIFIED)
        reencoded = _reencode(labeled, work / "speech.reencoded.wav")
        _verify_step(
            g, step, "verify after WAV->MP3 128k->WAV @44.1 kHz", reencoded, Verdict.TRACED
        )
        tampered = work / "speech.tampered.wav"
        tampered.write_bytes(flip_wav_sample(labeled.read_bytes(), position=0.37))
        _verify_step(g, step, "verify with one sample flipped", tampered, Verdict.TAMPERED)
        other_audio = _asset("other-speech.flac")
        other = _write(work / "other.wav", other_audio)
        _verify_step(g, step, "verify an unrelated clip", other, Verdict.NOT_FOUND)
        spliced = _write(work / "spliced.wav", _splice(labeled, other_audio))
        # The excerpt is found by its watermark, or (when its fingerprint survives the
        # splice) traced to the registered clip: either way it is not lost.
        _verify_step(
            g,
            step,
            "verify 3 s of it spliced into other speech",
            spliced,
            Verdict.WATERMARKED,
            also=Verdict.TRACED,
        )
        step("rotate the signing key", "rotated", lambda: ("rotated", rotate_key(g).kid))
        _verify_step(g, step, "verify the old clip after rotation", labeled, Verdict.VERIFIED)

        def do_audit() -> tuple[str, str]:
            r = verify_audit(g)
            return ("intact" if r else "broken"), f"{r.entries} entries"

        if voice_id:
            step(
                "revoke the consent",
                "revoked",
                lambda: ("revoked", revoke_consent(g, voice_id).revoked_at.isoformat()),
            )
            _policy_step(g, step, "policy after revocation", voice_id, "demo", "deny")

            def refused() -> tuple[str, str]:
                try:
                    synthesize(g, _say(voice_id, "One more try.", work / "after.wav"))
                except ConsentError as e:
                    return "refused", e.diagnostics()
                return "synthesized", "the revoked voice was used"

            step("synthesize after revocation", "refused", refused)
            step(
                "erase the subject (crypto-shredding, signed receipt)",
                "erased",
                lambda: ("erased", forget(g, voice_id).receipt.receipt_id),
            )

            def verify_erased() -> tuple[str, str]:
                r = verify_file(g, labeled)
                return f"{r.verdict.value}, voice {r.voice_status}", "; ".join(r.reasons)

            step("verify the labeled clip after erasure", "verified, voice erased", verify_erased)
        step("check the audit log", "intact", do_audit)
        g.engine.dispose()
        return report


Step = Callable[[str, str, Callable[[], tuple[str, str]]], None]


def enroll_demo_voice(g: Guardian, work: Path, index: int, *, purpose: str) -> str:
    """Enroll the shipped demo voice afresh (a new challenge and voice id each call), its
    spoken consent written under ``work``. Benchmarks and the engine corpus use it."""
    c = create_challenge(g, name=DEMO_NAME, organization=DEMO_ORG)
    consent = _write(work / f"consent{index}.wav", spoken_consent(DEMO_VOICE, c.phrase, c.code))
    request = EnrollRequest(
        challenge_id=c.challenge_id,
        consent=consent,
        samples=tuple(enrollment_samples(DEMO_VOICE)),
        purposes=(purpose,),
        transcripts=tuple((DEMO_VOICE / "transcripts.txt").read_text().splitlines()),
    )
    return enroll(g, request).voice_id


def trained_demo_adapter(g: Guardian, work: Path, index: int, *, purpose: str) -> TrainedAdapter:
    """The demo voice enrolled afresh and DP-trained at ε = 8: the engine's adapter, as
    ``synthesize`` uses it. Each call draws its own DP noise, so its own speaking rate and
    timbre; the watermark's benchmark and training corpus of the engine's speech use it."""
    voice = enroll_demo_voice(g, work, index, purpose=purpose)
    train_voice(g, voice, epsilon=8.0)
    return _adapter(g, SynthesisRequest(voice, "x", work / "x.wav", purpose, DEMO_ORG))[1]


def _strict_enroll(g: Guardian, work: Path, samples: list[Path]) -> tuple[str, str]:
    """The demo subject is a festival voice: a deployment as shipped refuses it."""
    strict = replace(g, settings=g.settings.model_copy(update={"allow_synthetic_consent": False}))
    c = create_challenge(strict, name=DEMO_NAME, organization=DEMO_ORG)
    consent = _write(work / "consent-strict.wav", spoken_consent(DEMO_VOICE, c.phrase, c.code))
    request = EnrollRequest(c.challenge_id, consent, tuple(samples), ("demo",))
    try:
        enroll(strict, request)
    except ConsentError as e:
        return "rejected", e.diagnostics()
    return "enrolled", "a speech synthesiser's reading was enrolled"


def _consent_steps(g: Guardian, work: Path, step: Step) -> str | None:
    """Challenge, spoken consent in the demo voice, enrollment, a refused reuse, policy."""
    samples = enrollment_samples(DEMO_VOICE)
    ids: dict[str, str] = {}

    def challenge() -> tuple[str, str]:
        c = create_challenge(g, name=DEMO_NAME, organization=DEMO_ORG)
        ids["challenge"] = c.challenge_id
        consent = work / "consent.wav"
        _write(consent, spoken_consent(DEMO_VOICE, c.phrase, c.code))
        ids["consent"] = str(consent)
        return "issued", f"{c.challenge_id}: {c.statement!r}"

    def do_enroll() -> tuple[str, str]:
        request = EnrollRequest(
            challenge_id=ids["challenge"],
            consent=Path(ids["consent"]),
            samples=tuple(samples),
            purposes=("demo", "audiobook"),
            transcripts=tuple((DEMO_VOICE / "transcripts.txt").read_text().splitlines()),
        )
        try:
            r = enroll(g, request)
        except ConsentError as e:
            return "rejected", e.diagnostics()
        ids["voice"] = r.voice_id
        detail = (
            f"{r.voice_id}; speaker score {r.speaker.consent_score:.2f} "
            f"(threshold {r.speaker.threshold}); {r.speech_s:.0f} s of speech; "
            f"synthetic-speech score {r.synthetic.score:.2f} (threshold "
            f"{r.synthetic.threshold:.2f})"
            + (": a synthesiser, let through by this demo's setting" if r.synthetic_allowed else "")
        )
        return "enrolled", detail

    step("issue a consent challenge (statement, phrase and code)", "issued", challenge)
    step(f"enroll: spoken consent + {len(samples)} samples, all checks", "enrolled", do_enroll)
    step("enroll again with the same (used) challenge", "rejected", do_enroll)
    step(
        "enroll where synthetic consent is off, as in production",
        "rejected",
        lambda: _strict_enroll(g, work, samples),
    )
    voice = ids.get("voice")
    if voice:
        _policy_step(
            g, step, "policy: synthesize for a consented purpose", voice, "audiobook", "allow"
        )
        _policy_step(
            g, step, "policy: synthesize for another purpose", voice, "advertising", "deny"
        )
    return voice


DEMO_TEXT = (
    "Hello. This voice was cloned with its owner's spoken consent. "
    "Every clip it makes carries a watermark and a signed manifest."
)


def _say(voice: str, text: str, out: Path) -> SynthesisRequest:
    return SynthesisRequest(voice, text, out, "demo", DEMO_ORG)


def _engine_steps(g: Guardian, step: Step, voice: str | None, out: Path) -> VoiceMatch | None:
    """DP training on the enrollment samples, one labeled synthesis, and how close its
    voice is to the demo speaker."""
    if voice is None:
        return None
    measured: list[VoiceMatch] = []

    def do_train() -> tuple[str, str]:
        r = train_voice(g, voice, epsilon=8.0)
        detail = (
            f"ε {r.epsilon:.2f}, δ {r.delta:.1g} on {r.utterances} utterances, "
            f"{r.steps} DP-SGD steps (noise multiplier {r.noise_multiplier:.2f}), "
            f"speaking rate x{r.speaking_rate:.2f}"
        )
        if r.warnings:
            detail += f"; {len(r.warnings)} warning(s): " + "; ".join(r.warnings)
        return "trained", detail

    def do_synthesize() -> tuple[str, str]:
        label = synthesize(g, _say(voice, DEMO_TEXT, out)).labels[0]
        return "synthesized", f"{label.label_id}, {label.duration_s:.1f} s"

    def do_compare() -> tuple[str, str]:
        m = match_voice(
            decode_bytes(out.read_bytes(), name=out.name),
            reading=read_audio(DEMO_VOICE / "heldout-demo.flac"),
            references=[read_audio(p) for p in held_out_recordings(DEMO_VOICE)],
            base=g.base_voice.synthesize(DEMO_TEXT),
        )
        measured.append(m)
        return "measured", m.summary()

    step("train the voice's adapter with DP-SGD (ε = 8)", "trained", do_train)
    step("synthesize (policy, base TTS, adapter, watermark, C2PA)", "synthesized", do_synthesize)
    # Reported, not a pass/fail step: each training draws its own DP noise, and the
    # figures say how close this draw came (docs/cli.md gives the bars).
    step("measure the clip against the speaker's held-out recordings", "measured", do_compare)
    return measured[0] if measured else None


def _policy_step(g: Guardian, step: Step, name: str, voice: str, purpose: str, want: str) -> None:
    def run() -> tuple[str, str]:
        request = PolicyRequest(
            action=Action.SYNTHESIZE, voice_id=voice, purpose=purpose, requester=DEMO_ORG
        )
        d = explain(g, request)
        return ("allow" if d else "deny"), "; ".join(
            f"[{p}] {r}" for p, r in zip(d.policy_ids, d.reasons, strict=False)
        )

    step(name, want, run)


def _verify_step(
    g: Guardian,
    step: Step,
    name: str,
    path: Path,
    expected: Verdict,
    *,
    also: Verdict | None = None,
) -> None:
    """A verify step; ``also`` names a second verdict that counts as the expected one."""

    def run() -> tuple[str, str]:
        r = verify_file(g, path)
        wm = r.watermark
        marks = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in wm.segments)
        seen = f"watermark score {wm.score:.2f}" + (f" at {marks}" if marks else "")
        return r.verdict.value, "; ".join([*r.reasons, seen])

    want = expected.value + (f" or {also.value}" if also else "")
    step(name, want, run)


def _asset(name: str) -> Audio:
    return decode_bytes((Path(__file__).with_name("assets") / name).read_bytes(), name=name)


def _splice(labeled: Path, other: Audio) -> Audio:
    """3 s cut from the labeled clip, inserted 2 s into unrelated speech."""
    marked = decode_bytes(labeled.read_bytes())
    rate = other.sample_rate
    excerpt = marked.samples[2 * rate : 5 * rate]
    mixed = np.concatenate([other.samples[: 2 * rate], excerpt, other.samples[2 * rate :]])
    return Audio(mixed, rate)


def _reencode(src: Path, dst: Path) -> Path:
    """Strip metadata the way a platform does: lossy transcode, then resample."""
    audio = decode_bytes(src.read_bytes(), name=src.name)
    mp3 = decode_bytes(encode_bytes(audio, OutputFormat.MP3, bitrate_kbps=128), name="mp3")
    up = resample(mp3.samples, mp3.sample_rate, 44100)
    return _write(dst, Audio(np.clip(up, -1, 1), 44100))
