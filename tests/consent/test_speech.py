"""The spoken-consent check on the shipped synthetic voices (no synthesiser needed).

festival slt is the demo subject; festival kal's clips show the check does not depend
on one voice. Consent recordings are joined from the shipped clips in memory.
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardian.app._consent_voice import enrollment_samples, spoken_consent
from guardian.audio import Audio, read_audio, resample
from guardian.consent import (
    CODE_LENGTH,
    CODE_WORDS,
    PHRASE_ADJECTIVES,
    PHRASE_NOUNS,
    SpeechCheck,
    check_consent_speech,
    new_code,
    new_phrase,
    render_statement,
)
from guardian.consent._speech import (
    NO_MATCH_SCORE,
    STATEMENT_THRESHOLD,
    _compound,
    _grammar,
    _grammar_tokens,
    _recogniser,
    _spell,
    _statement_tokens,
    _tokens,
)
from guardian.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
SLT = ROOT / "guardian" / "app" / "assets" / "consent" / "slt"
KAL = ROOT / "tests" / "data" / "voices" / "kal"
NAME, ORG = "Alex Morgan", "Guardian Demo Studio"
CODE = ("whiskey", "alpha", "tango", "kilo", "november")
PHRASE = ("gentle", "orchard", "copper", "kettle")


@functools.cache
def _consent(voice: Path, code: tuple[str, ...] = CODE, phrase: tuple[str, ...] = PHRASE) -> Audio:
    return spoken_consent(voice, phrase, code)


def _check(
    audio: Audio, code: Sequence[str] = CODE, *, phrase: Sequence[str] = PHRASE, **kw: str
) -> SpeechCheck:
    name, org = kw.get("name", NAME), kw.get("org", ORG)
    return check_consent_speech(audio, name=name, org=org, code=code, phrase=phrase)


def _mono(audio: Audio) -> np.ndarray:
    return audio.mono()


def _without_statement(voice: Path, code: tuple[str, ...]) -> np.ndarray:
    """The end of a joined recording, from "My words are" to the code."""
    statement = read_audio(voice / "statement.flac")
    return _mono(_consent(voice, code))[statement.frames :]


# --- the statement and the code -------------------------------------------------------


def test_render_statement_names_subject_org_phrase_and_code() -> None:
    text = render_statement(name=NAME, org=ORG, code=CODE, phrase=PHRASE)
    assert text == (
        "I, Alex Morgan, am aware that recordings of my voice will be used by Guardian "
        "Demo Studio to create and use a synthetic version of my voice. My words are "
        "gentle orchard and copper kettle, and my code is whiskey alpha tango kilo november."
    )
    # A challenge issued before statements had a phrase keeps its wording.
    assert render_statement(name=NAME, org=ORG, code=CODE).endswith(
        "version of my voice. My code is whiskey alpha tango kilo november."
    )


def test_phrases_are_unpredictable_dictionary_words_apart_from_the_code() -> None:
    phrases = [new_phrase() for _ in range(1000)]
    assert all(len(p) == 4 for p in phrases)
    assert all(p[0] in PHRASE_ADJECTIVES and p[2] in PHRASE_ADJECTIVES for p in phrases)
    assert all(p[1] in PHRASE_NOUNS and p[3] in PHRASE_NOUNS for p in phrases)
    assert len(set(phrases)) >= 995  # 2**20 phrases
    assert {w for p in phrases for w in p} == set(PHRASE_ADJECTIVES + PHRASE_NOUNS)
    words = set(PHRASE_ADJECTIVES + PHRASE_NOUNS)
    assert len(words) == 64 and not words & set(CODE_WORDS)
    assert not words & set(_statement_tokens(name=NAME, org=ORG, phrase=()))
    assert all(_recogniser().knows(w) for w in words)  # scored, never guessed


@pytest.mark.parametrize(
    "phrase", [("gentle", "orchard"), ("orchard", "gentle", "copper", "kettle"), ("a",) * 4]
)
def test_a_phrase_that_cannot_have_been_issued_is_a_usage_error(phrase: tuple[str, ...]) -> None:
    with pytest.raises(UsageError):
        _check(_consent(SLT), phrase=phrase)


def test_codes_have_the_promised_length_vocabulary_and_entropy() -> None:
    codes = [new_code() for _ in range(1000)]
    assert all(len(c) == CODE_LENGTH for c in codes)
    assert all(set(c) <= set(CODE_WORDS) for c in codes)
    assert len(set(codes)) >= 995  # 26**5 codes: a repeat in 1000 is a 5 % event at most
    assert {w for c in codes for w in c} == set(CODE_WORDS)
    assert CODE_LENGTH * np.log2(len(set(CODE_WORDS))) >= 20.0


def test_every_code_and_phrase_word_has_a_clip_in_both_voices() -> None:
    for voice in (SLT, KAL):
        assert {p.name for p in voice.glob("code-*.flac")} == {f"code-{w}.flac" for w in CODE_WORDS}
        phrase_words = PHRASE_ADJECTIVES + PHRASE_NOUNS
        assert {p.name for p in voice.glob("phrase-*.flac")} == {
            f"phrase-{w}.flac" for w in phrase_words
        }
        # One transcript per enrollment sample (the demo speaker ships more than six).
        texts = (voice / "transcripts.txt").read_text().splitlines()
        assert len(enrollment_samples(voice)) == len(texts) >= 6


@pytest.mark.parametrize("code", [("alpha",) * 4, ("alpha", "bravo", "charlie", "delta", "one")])
def test_a_code_that_cannot_have_been_issued_is_a_usage_error(code: tuple[str, ...]) -> None:
    with pytest.raises(UsageError):
        _check(_consent(SLT), code)


# --- accepted ------------------------------------------------------------------------


@pytest.mark.parametrize("voice", [SLT, KAL], ids=["slt", "kal"])
def test_the_statement_with_its_code_passes(voice: Path) -> None:
    result = _check(_consent(voice))
    assert result, result.reason
    assert result.heard_code == CODE
    assert result.reason is None
    assert STATEMENT_THRESHOLD < result.statement_score < 0


def test_fresh_random_codes_pass_and_their_neighbours_fail() -> None:
    rng = random.Random(5)
    for _ in range(3):
        code = new_code()
        assert _check(_consent(SLT, code), code)
        i = rng.randrange(CODE_LENGTH)
        wrong = (*code[:i], rng.choice([w for w in CODE_WORDS if w != code[i]]), *code[i + 1 :])
        assert not _check(_consent(SLT, code), wrong)


def test_resampled_stereo_at_48_khz_passes() -> None:
    mono = resample(_mono(_consent(SLT)), 16_000, 48_000)
    assert _check(Audio(np.stack([mono, 0.5 * mono], axis=1), 48_000))


def test_a_quiet_recording_passes() -> None:
    audio = _consent(SLT)
    assert _check(Audio(audio.samples * 0.01, audio.sample_rate))


# --- rejected ------------------------------------------------------------------------


def test_one_wrong_code_word_fails_without_revealing_the_code() -> None:
    expected = (*CODE[:2], "echo", *CODE[3:])
    result = _check(_consent(SLT), expected)
    assert not result
    assert result.heard_code == CODE
    assert result.reason == (
        "the consent recording says code 'whiskey alpha tango kilo november', "
        "not this challenge's code"
    )
    assert "echo" not in (result.reason or "")


def test_an_entirely_different_code_fails() -> None:
    result = _check(_consent(SLT), ("bravo", "zulu", "oscar", "lima", "delta"))
    assert not result
    assert result.heard_code == CODE


def test_the_statement_without_a_code_fails() -> None:
    result = _check(read_audio(SLT / "statement.flac"))
    assert not result
    assert result.statement_score == NO_MATCH_SCORE
    assert result.reason == (
        "the consent recording does not say the consent statement followed by a code"
    )


@pytest.mark.parametrize("voice", [SLT, KAL], ids=["slt", "kal"])
def test_a_different_sentence_followed_by_the_right_code_fails(voice: Path) -> None:
    sample = read_audio(enrollment_samples(voice)[0])
    recording = np.concatenate([_mono(sample), _without_statement(voice, CODE)])
    result = _check(Audio(recording[:, None], sample.sample_rate))
    assert not result
    assert result.statement_score < STATEMENT_THRESHOLD


@pytest.mark.parametrize("voice", [SLT, KAL], ids=["slt", "kal"])
def test_an_earlier_challenges_phrase_with_this_code_fails(voice: Path) -> None:
    """The splice finding's replay: a reading kept from an earlier challenge, now with
    this challenge's code, and no seam to hear (the clips share one clean background).
    Every phrase word differs, as almost every earlier phrase's do."""
    for earlier in [("quiet", "lantern", "golden", "river"), ("noisy", "wagon", "tiny", "pilot")]:
        result = _check(_consent(voice, CODE, earlier))
        assert not result, earlier
        assert "consent statement" in (result.reason or ""), result.reason


def test_the_statement_for_another_organisation_fails() -> None:
    result = _check(_consent(SLT), org="Acme Voice Labs")
    assert not result
    assert "consent statement" in (result.reason or "")


def test_digital_silence_fails() -> None:
    result = _check(Audio(np.zeros((16_000 * 12, 1), np.float32), 16_000))
    assert not result
    assert result.reason == "the consent recording is silent"


def test_noise_fails() -> None:
    noise = np.random.default_rng(3).standard_normal(16_000 * 12).astype(np.float32) * 0.1
    result = _check(Audio(noise[:, None], 16_000))
    assert not result
    assert result.heard_code == ()


def test_the_code_alone_fails() -> None:
    code_only = _without_statement(SLT, CODE)
    assert not _check(Audio(code_only[:, None], 16_000))


# --- robustness ----------------------------------------------------------------------


def test_words_missing_from_the_dictionary_are_guessed_and_not_scored() -> None:
    tokens = _tokens("I, Zyxqa O'Brien-Smith of 3M Northwind, am")
    assert tokens == ["i", "zyxqa", "o'brien", "smith", "of", "3m", "northwind", "am"]
    grammar = _grammar_tokens(_recogniser(), tokens)
    assert grammar[0] == "i" and grammar[2] == "o'brien"
    assert grammar[1] == "( guardian_guess_zyxqa | <unknown>+ )"
    assert _recogniser().knows("guardian_guess_zyxqa")
    assert not _recogniser().knows("zyxqa")  # the guess never passes for the word
    assert _spell("zyxqa") == ["Z", "IY", "K", "S", "K", "AE"]
    north = _compound("northwind", _recogniser()._lookup)
    assert north == ["N", "AO", "R", "TH", "W", "AY", "N", "D"]


def test_accents_fold_and_unwritable_names_become_an_unknown_slot() -> None:
    assert _tokens("José Müller") == ["jose", "muller"]
    tokens = _statement_tokens(name="李雷", org="Acme")
    assert tokens[:3] == ["i", "", "am"]
    assert _grammar(_grammar_tokens(_recogniser(), tokens)).startswith(
        "#JSGF V1.0;\ngrammar consent;\npublic <consent> = i <unknown>+ am aware"
    )


@pytest.mark.parametrize(
    ("name", "org"),
    [("Kwame Lindqvist", "Northwind Audiobooks"), ("Zoë Okafor", "Studio 54")],
)
def test_guessed_words_do_not_break_the_alignment(name: str, org: str) -> None:
    """Checked as if it named someone the dictionary lacks, the shipped statement (which
    says Alex Morgan) still aligns and its code is still heard."""
    assert _check(_consent(SLT), name=name, org=org).heard_code == CODE


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=40))
def test_any_name_yields_tokens_that_cannot_escape_the_grammar(name: str) -> None:
    for token in _tokens(f"I, {name}, am"):
        assert token.replace("'", "").isalnum() and token.isascii()
        assert token == token.lower()


def test_concurrent_checks_share_the_recogniser_safely() -> None:
    other = ("zulu", "yankee", "xray", "victor", "uniform")
    results: dict[str, SpeechCheck] = {}

    def run(key: str, voice: Path, code: tuple[str, ...]) -> None:
        results[key] = _check(_consent(voice, code), code)

    threads = [
        threading.Thread(target=run, args=("slt", SLT, CODE)),
        threading.Thread(target=run, args=("kal", KAL, other)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["slt"].heard_code == CODE and results["slt"]
    assert results["kal"].heard_code == other and results["kal"]


def test_the_recording_is_never_written_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for var in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.setenv(var, str(tmp_path))
    assert _check(_consent(SLT))
    assert list(tmp_path.iterdir()) == []


# --- genuine readings refused: codes with "xray", and fallback partial paths --------------


@pytest.mark.parametrize(
    "code",
    [
        ("mike", "yankee", "xray", "bravo", "india"),
        ("romeo", "alpha", "charlie", "xray", "mike"),
    ],
)
def test_a_code_with_xray_read_as_shown_is_accepted(code: tuple[str, ...]) -> None:
    """The statement showed "xray", which a reader (here festival slt) says as something
    else: about one genuine reading in five was refused (every code with an xray)."""
    import shutil

    from guardian.corpus import festival

    if shutil.which("text2wave") is None:
        pytest.skip("festival is not installed")
    name, org = "Alex Morgan", "Guardian Demo Studio"
    text = render_statement(name=name, org=org, code=code, phrase=PHRASE)
    assert "x-ray" in text and "xray" not in text
    samples, rate = festival(text, "cmu_us_slt_arctic_hts")
    audio = Audio(np.asarray(samples, dtype=np.float32).reshape(-1, 1), rate)
    result = check_consent_speech(audio, name=name, org=org, code=code, phrase=PHRASE)
    assert result, (result.reason, result.heard_code)


def test_a_fallback_partial_path_is_never_judged_as_a_code() -> None:
    """When no path reaches the grammar's end, pocketsphinx returns the best partial one;
    its words are not a reading of the code and must not be reported as one."""
    from guardian.consent._speech import _complete, _Word

    statement = ["i", "alex", "morgan", "am", "aware"]
    full = [_Word(w, 10, -10.0) for w in [*statement, "alpha", "bravo", "echo", "golf", "kilo"]]
    assert _complete(full, statement)
    assert not _complete(full[:-2], statement), "stopped inside the code"
    shifted = [_Word(w, 10, -10.0) for w in ["alex", "morgan", "am", "aware", *["alpha"] * 6]]
    assert not _complete(shifted, statement), "statement words out of place"
    assert not _complete([*full, _Word("zulu", 10, -10.0)], statement)
