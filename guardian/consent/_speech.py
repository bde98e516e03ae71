"""Consent statement, one-time code and the spoken-statement check (pocketsphinx).

The subject reads "I, NAME, am aware that recordings of my voice will be used by ORG
to create and use a synthetic version of my voice. My words are A1 N1 and A2 N2, and
my code is W1 ... W5." The words A1 N1 A2 N2 (the challenge's *phrase*) and the code
are drawn afresh for every challenge, so no earlier reading holds the end of the
statement: a replayed take must be cut and joined mid-sentence, where the splice check
(``_splice.py``) looks for joins. The check decodes the recording offline with
pocketsphinx's bundled English model under a JSGF grammar that admits exactly that
statement, phrase included, followed by ``CODE_LENGTH`` code words, so the recogniser
only has to tell code words apart, and then asks two questions:

* **Is it the statement?** Pocketsphinx reports a word's acoustic score normalised,
  frame by frame, by the best score its search holds at that frame. A phone-loop
  decode run beside the grammar scored about 0 on that scale (0.0 to 0.4 nats over a
  whole utterance), so the grammar's own per-frame score already is the
  log-likelihood ratio against an unconstrained decode, and the second pass (as slow
  again) is left out. Where the recording says something else, either no path
  through the grammar survives the search beam (almost always) or the aligned words
  score far below a genuine reading. The statement score is the lowest per-frame
  mean over the first sentence's three thirds, the closing ("My words are ..., and
  my code is") and the phrase alone, so saying only part of it, another
  organisation's name or an earlier challenge's phrase fails too.
* **Which code does it say?** The words aligned to the code slot, compared with the
  challenge's code in constant time.

Name and organisation words that the dictionary lacks are said as guessed from their
spelling (two dictionary words run together, else letter groups to phones), or as
anything at all through a loop of pocketsphinx's "spoken noise" model where the guess
is wrong; a name written without Latin letters or digits is the loop alone. None of
them is scored. With the loop alone, a subject and organisation both missing from the
dictionary pulled genuine statements down to -6.3 (the neighbouring words absorbed
the name); with the guess they score like any other (-1.1 to -1.7). The measurements
behind the vocabulary and the thresholds are in
``docs/benchmarks/consent_speech.md``. Audio never leaves memory.
"""

from __future__ import annotations

import functools
import hmac
import math
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from guardian.audio import Audio, resample
from guardian.errors import ConfigError, UsageError

CODE_WORDS: tuple[str, ...] = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
)
"""The vocabulary one-time codes are drawn from (recognisable, distinct words).

The NATO spelling alphabet in CMUdict spellings, chosen for telling words apart over
noisy radio. Under the same grammar, 5 NATO words (23.5 bits) were recognised at least
as well as 6 digits (19.9 bits): 151 of 152 codes against 146 of 152 in two runs over
festival slt, kal, ked and Piper joe, the digits losing 4 of 18 codes on ked in one of
them. Each spoken word carries 4.7 bits instead of 3.3.
"""

CODE_LENGTH: int = 5
"""Words per code: 26**5 codes, 23.5 bits."""

PHRASE_ADJECTIVES: tuple[str, ...] = (
    "quiet", "bright", "heavy", "narrow", "golden", "rusty", "gentle", "silver",
    "frozen", "hollow", "ancient", "tiny", "purple", "careful", "sleepy", "distant",
    "muddy", "wooden", "broken", "clever", "noisy", "velvet", "bitter", "lonely",
    "yellow", "crimson", "sudden", "humble", "windy", "sandy", "marble", "copper",
)  # fmt: skip
PHRASE_NOUNS: tuple[str, ...] = (
    "lantern", "teacher", "bicycle", "orchard", "engine", "blanket", "violin", "kitten",
    "ladder", "garden", "village", "window", "compass", "pilot", "river", "mountain",
    "basket", "letter", "museum", "candle", "farmer", "bridge", "market", "forest",
    "tower", "wagon", "meadow", "kettle", "sailor", "island", "pencil", "rabbit",
)  # fmt: skip
"""A challenge's phrase is two adjective-noun pairs from these lists (20 bits): common
words of the pronouncing dictionary, none of them a code word or a statement word."""

PHRASE_PAIRS: int = 2
"""Adjective-noun pairs per phrase."""

STATEMENT_THRESHOLD = -3.0
"""Lowest statement score accepted, in nats per frame.

Genuine readings by festival and Piper voices score -1.1 to -1.8; other statements that
align at all score -5.3 and below; a genuine reading checked against another
organisation's statement scores -3.3 to -3.7.
"""

CODE_WORD_THRESHOLD = -8.0
"""Lowest per-frame score of any code word; genuine code words score -5.2 at worst."""

NO_MATCH_SCORE = -100.0
"""Statement score reported when the recording cannot be aligned with the statement."""

_STATEMENT = (
    "I, {name}, am aware that recordings of my voice will be used by {org} "
    "to create and use a synthetic version of my voice."
)
_CLOSING = "My words are {phrase}, and my code is"
_CLOSING_WITHOUT_PHRASE = "My code is"
"""How statements issued before challenges had a phrase end (their check still works)."""
_RATE = 16_000
_PEAK = 0.7
"""Peak level the recording is scaled to, so quiet takes keep their 16-bit detail."""
_SILENT_PEAK = 1e-4
"""Below -80 dBFS at its loudest, a recording holds no speech."""
_PARTS = 3
_UNKNOWN = "guardian_unknown_word"
"""Grammar token for words missing from the dictionary: pocketsphinx's spoken noise."""
_GUESSED = "guardian_guess_"
"""Prefix of dictionary entries whose pronunciation was guessed from the spelling."""
_NAMELESS = ""
"""Token for a name or organisation written without Latin letters or digits."""
_EXTRA_WORDS = {"xray": "EH K S R EY", _UNKNOWN: "+SPN+"}
"""Pronunciations that CMUdict lacks (it spells the word "x-ray")."""
_UNDERFLOW_PER_FRAME = -50.0
"""Per-frame score used when a word's likelihood underflows a double: hopeless."""


def new_code() -> tuple[str, ...]:
    """A fresh one-time code drawn with ``secrets``."""
    return tuple(secrets.choice(CODE_WORDS) for _ in range(CODE_LENGTH))


def new_phrase(
    choice: Callable[[Sequence[str]], str] = secrets.choice,
) -> tuple[str, ...]:
    """A fresh phrase, adjective then noun ``PHRASE_PAIRS`` times, drawn with ``secrets``.

    Tests and benchmarks pass a seeded generator's ``choice`` to draw repeatable ones.
    """
    words: list[str] = []
    for _ in range(PHRASE_PAIRS):
        words += [choice(PHRASE_ADJECTIVES), choice(PHRASE_NOUNS)]
    return tuple(words)


def _said_phrase(phrase: Sequence[str]) -> str:
    pairs = [f"{phrase[i]} {phrase[i + 1]}" for i in range(0, len(phrase), 2)]
    return " and ".join(pairs)


def _closing(phrase: Sequence[str]) -> str:
    return _CLOSING.format(phrase=_said_phrase(phrase)) if phrase else _CLOSING_WITHOUT_PHRASE


def _opening(*, name: str, org: str) -> str:
    """The statement's first sentence, the same in every challenge for a subject."""
    return _STATEMENT.format(name=name.strip(), org=org.strip())


def _lead(*, name: str, org: str, phrase: Sequence[str] = ()) -> str:
    """The statement up to the code: "I, NAME, ... My words are ..., and my code is"."""
    return f"{_opening(name=name, org=org)} {_closing(phrase)}"


_SPOKEN_FORM = {"xray": "x-ray"}
"""How a code word is written for reading aloud. The vocabulary's "xray" is what the
dictionary entry is called; written that way, speech synthesisers (and people) read it
as "zray", "ex ray" or letter by letter, so one challenge in five (the share of codes
with an xray: 1 - (25/26)^5 = 18 %) was refused although it was read as shown."""


def render_statement(
    *, name: str, org: str, code: Sequence[str], phrase: Sequence[str] = ()
) -> str:
    """The statement the subject reads aloud, with the phrase, ending with the code."""
    return f"{_lead(name=name, org=org, phrase=phrase)} {' '.join(written_code(code))}."


def written_code(code: Sequence[str]) -> tuple[str, ...]:
    """The code as shown to the person who reads it ("x-ray", not the vocabulary's "xray")."""
    return tuple(_SPOKEN_FORM.get(w, w) for w in code)


@dataclass(frozen=True)
class SpeechCheck:
    """Outcome of checking a consent recording against its statement and code."""

    ok: bool
    heard_code: tuple[str, ...]
    statement_score: float
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok


# --- recogniser ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Word:
    """One aligned word: its text and its acoustic score summed over its frames."""

    text: str
    frames: int
    score: float

    @property
    def per_frame(self) -> float:
        return self.score / self.frames


class _Recogniser:
    """One pocketsphinx decoder (about 0.1 s to load) shared by the process.

    A decoder is not thread-safe, so every decode holds the lock.
    """

    def __init__(self) -> None:
        try:
            import pocketsphinx
        except ImportError as e:
            raise ConfigError("pocketsphinx is not installed: pip install pocketsphinx") from e
        # No language model: every decode uses a grammar built for its statement.
        self._decoder: Any = pocketsphinx.Decoder(pocketsphinx.Config(lm=None, loglevel="FATAL"))
        for word, phones in _EXTRA_WORDS.items():
            self._decoder.add_word(word, phones, True)
        self._lock = threading.Lock()

    def knows(self, word: str) -> bool:
        if word == _NAMELESS:
            return False
        with self._lock:
            return self._lookup(word) is not None

    def _lookup(self, word: str) -> str | None:
        phones = self._decoder.lookup_word(word)
        return None if phones is None else str(phones)

    def stand_in(self, word: str) -> str:
        """A grammar token that says an out-of-dictionary ``word`` as guessed.

        The guess goes into the dictionary under a name of its own, so the word itself
        stays unknown (and unscored) in later checks. Pocketsphinx cannot remove words,
        so the process keeps one short entry per distinct unknown word it has seen.
        """
        token = _GUESSED + word.replace("'", "")
        with self._lock:
            if self._lookup(token) is None:
                phones = _compound(word, self._lookup) or _spell(word)
                self._decoder.add_word(token, " ".join(phones), True)
        return token

    def align(self, pcm: bytes, grammar: str) -> list[_Word] | None:
        """The words of the best path through ``grammar``, or None when none survives."""
        with self._lock:
            d = self._decoder
            d.add_jsgf_string("consent", grammar)
            d.activate_search("consent")
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            if d.hyp() is None:
                return None
            return [_word(s) for s in d.seg() if _is_word(s.word)]


def _is_word(token: str) -> bool:
    """Whether a segment or grammar token is a scored word, not filler or stand-in."""
    return not (token.startswith(("<", "[", "+", "(", _GUESSED)) or token == _UNKNOWN)


def _word(segment: Any) -> _Word:
    frames = max(1, int(segment.end_frame) - int(segment.start_frame) + 1)
    density = float(segment.ascore)  # exp of the normalised log score; 0.0 on underflow
    score = math.log(density) if density > 0.0 else _UNDERFLOW_PER_FRAME * frames
    return _Word(str(segment.word).split("(")[0], frames, score)


_recogniser_lock = threading.Lock()


@functools.cache
def _load_recogniser() -> _Recogniser:
    return _Recogniser()


def _recogniser() -> _Recogniser:
    with _recogniser_lock:
        return _load_recogniser()


# --- pronouncing words the dictionary lacks ---------------------------------------------

_LETTER_GROUPS = {
    "tch": "CH", "sch": "S K", "ch": "CH", "sh": "SH", "th": "TH", "ph": "F", "gh": "G",
    "ck": "K", "ng": "NG", "qu": "K W", "wh": "W", "ee": "IY", "ea": "IY", "oo": "UW",
    "ou": "AW", "ow": "OW", "ai": "EY", "ay": "EY", "ei": "EY", "ie": "IY", "oa": "OW",
    "au": "AO", "aw": "AO", "oi": "OY", "oy": "OY", "er": "ER", "ir": "ER", "ur": "ER",
    "ar": "AA R", "or": "AO R",
    "a": "AE", "b": "B", "c": "K", "d": "D", "e": "EH", "f": "F", "g": "G", "h": "HH",
    "i": "IH", "j": "JH", "k": "K", "l": "L", "m": "M", "n": "N", "o": "OW", "p": "P",
    "q": "K", "r": "R", "s": "S", "t": "T", "u": "UW", "v": "V", "w": "W", "x": "K S",
    "y": "IY", "z": "Z",
    "0": "Z IH R OW", "1": "W AH N", "2": "T UW", "3": "TH R IY", "4": "F AO R",
    "5": "F AY V", "6": "S IH K S", "7": "S EH V AH N", "8": "EY T", "9": "N AY N",
}  # fmt: skip
"""Letters to ARPAbet, longest group first: rough, but the right length and sounds."""


def _spell(word: str) -> list[str]:
    """A pronunciation guessed letter by letter (doubled letters sound once)."""
    letters = re.sub(r"(.)\1", r"\1", word.replace("'", ""))
    phones: list[str] = []
    i = 0
    while i < len(letters):
        for size in (3, 2, 1):
            group = _LETTER_GROUPS.get(letters[i : i + size])
            if group is not None:
                phones += group.split()
                i += size
                break
        else:
            i += 1  # nothing the table spells (cannot happen after _tokens)
    return phones or ["AH"]


def _compound(word: str, lookup: Callable[[str], str | None]) -> list[str] | None:
    """The pronunciation of ``word`` as two dictionary words ("northwind"), if it is one."""
    for cut in range(3, len(word) - 2):
        head, tail = lookup(word[:cut]), lookup(word[cut:])
        if head is not None and tail is not None:
            return [*head.split(), *tail.split()]
    return None


# --- grammar and scores --------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    """Lower-case words as the dictionary spells them: letters, digits, apostrophes.

    Accents are folded (José reads as jose, which CMUdict knows).
    """
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*", folded.lower())


def _statement_tokens(*, name: str, org: str, phrase: Sequence[str] = ()) -> list[str]:
    """The statement's words up to the code; a name or organisation with none becomes
    one unknown slot."""
    head, rest = _STATEMENT.split("{name}")
    middle, tail = rest.split("{org}")
    return [
        *_tokens(head),
        *(_tokens(name) or [_NAMELESS]),
        *_tokens(middle),
        *(_tokens(org) or [_NAMELESS]),
        *_tokens(tail),
        *_tokens(_closing(phrase)),
    ]


def _grammar_tokens(recogniser: _Recogniser, tokens: Sequence[str]) -> list[str]:
    """Grammar tokens for the statement's words.

    Dictionary words stand for themselves and are scored. A word the dictionary lacks
    is said as guessed from its spelling, or as anything at all (a loop of the
    spoken-noise model) when the guess is wrong; a name with no spellable word is the
    loop alone. Neither is scored.
    """
    out = []
    for token in tokens:
        if recogniser.knows(token):
            out.append(token)
        elif token == _NAMELESS:
            out.append("<unknown>+")
        else:
            out.append(f"( {recogniser.stand_in(token)} | <unknown>+ )")
    return out


def _grammar(
    statement: Sequence[str], *, words: Sequence[str] = CODE_WORDS, length: int = CODE_LENGTH
) -> str:
    """A JSGF grammar: the statement, then ``length`` code words from ``words``.

    The statement comes from ``_grammar_tokens`` over ``_tokens``, so user text cannot
    inject grammar syntax. Other vocabularies than CODE_WORDS are for the benchmark
    that compares them.
    """
    slot = " ".join(["<code>"] * length)
    return (
        "#JSGF V1.0;\ngrammar consent;\n"
        f"public <consent> = {' '.join(statement)} {slot};\n"
        f"<code> = {' | '.join(words)};\n"
        f"<unknown> = {_UNKNOWN};\n"
    )


def _mean(words: Sequence[_Word]) -> float:
    return sum(w.score for w in words) / sum(w.frames for w in words)


def _statement_score(words: Sequence[_Word], phrase: Sequence[str] = ()) -> float:
    """The lowest per-frame mean score over the statement's parts: the first sentence's
    thirds, the closing ("My words are ..., and my code is") and the phrase alone.

    Each part is short enough that saying a piece of it wrong shows: in a third of the
    whole statement, another organisation's name or an earlier challenge's phrase
    would be diluted enough to pass. The closing's words are all in the dictionary, so
    they are the last scored words.
    """
    closing = _tokens(_closing(phrase))
    opening, end = words[: len(words) - len(closing)], words[len(words) - len(closing) :]
    start = len(_tokens(_CLOSING.split("{phrase}")[0])) if phrase else 0
    said = end[start : start + len(_tokens(_said_phrase(phrase)))] if phrase else []
    n = len(opening)
    parts = [opening[i * n // _PARTS : (i + 1) * n // _PARTS] for i in range(_PARTS)]
    means = [_mean(part) for part in [*parts, end, said] if part]
    return max(NO_MATCH_SCORE, min(means))


def _pcm16(audio: Audio) -> bytes | None:
    """16 kHz mono int16 at a fixed peak, or None for a silent recording."""
    mono = resample(audio.mono(), audio.sample_rate, _RATE)
    peak = float(np.max(np.abs(mono)))
    if peak < _SILENT_PEAK:
        return None
    scaled = np.round(mono * (_PEAK / peak) * 32767.0)
    return scaled.astype("<i2").tobytes()


def _check_phrase(phrase: Sequence[str]) -> None:
    pairs = list(zip(phrase[::2], phrase[1::2], strict=False))
    if phrase and (
        len(phrase) != 2 * PHRASE_PAIRS
        or any(a not in PHRASE_ADJECTIVES or n not in PHRASE_NOUNS for a, n in pairs)
    ):
        raise UsageError(f"a consent phrase is {PHRASE_PAIRS} adjective-noun pairs of its lists")


def _expected(code: Sequence[str]) -> tuple[str, ...]:
    words = tuple(code)
    if len(words) != CODE_LENGTH or not set(words) <= set(CODE_WORDS):
        raise UsageError(f"a consent code is {CODE_LENGTH} words from the code vocabulary")
    return words


# --- the check -----------------------------------------------------------------------


def check_consent_speech(
    audio: Audio, *, name: str, org: str, code: Sequence[str], phrase: Sequence[str] = ()
) -> SpeechCheck:
    """Check that ``audio`` says the statement for ``name``/``org`` with ``phrase``,
    ending in ``code``. An empty ``phrase`` is a statement issued before challenges had
    one.

    Raises:
        UsageError: ``code`` is not a code this module could have issued.
        ConfigError: pocketsphinx is not installed.
    """
    expected = _expected(code)
    _check_phrase(phrase)
    pcm = _pcm16(audio)
    if pcm is None:
        return SpeechCheck(False, (), NO_MATCH_SCORE, "the consent recording is silent")
    recogniser = _recogniser()
    grammar = _grammar_tokens(recogniser, _statement_tokens(name=name, org=org, phrase=phrase))
    words = recogniser.align(pcm, _grammar(grammar))
    if words is None:
        reason = "the consent recording does not say the consent statement followed by a code"
        return SpeechCheck(False, (), NO_MATCH_SCORE, reason)
    statement = [t for t in grammar if _is_word(t)]
    if not _complete(words, statement):
        # Pocketsphinx falls back to the best partial path when no path reaches the
        # grammar's end; its "code" is whatever the search held, not what was said.
        reason = "the consent recording does not say the whole statement followed by a code"
        return SpeechCheck(False, (), NO_MATCH_SCORE, reason)
    scored = len(statement)
    return _judge(words[:scored], words[scored:], expected, phrase)


def _complete(words: Sequence[_Word], statement: Sequence[str]) -> bool:
    """Whether the aligned path is the whole grammar: every scored statement word in
    order, then exactly ``CODE_LENGTH`` code words (not a fallback partial path)."""
    n = len(statement)
    return (
        len(words) == n + CODE_LENGTH
        and [w.text for w in words[:n]] == list(statement)
        and all(w.text in CODE_WORDS for w in words[n:])
    )


def _judge(
    statement: list[_Word], spoken: list[_Word], expected: tuple[str, ...], phrase: Sequence[str]
) -> SpeechCheck:
    heard = tuple(w.text for w in spoken)
    score = _statement_score(statement, phrase)
    if score < STATEMENT_THRESHOLD:
        reason = (
            f"the consent recording does not clearly say the consent statement "
            f"(score {score:.2f}, at least {STATEMENT_THRESHOLD:g} needed)"
        )
        return SpeechCheck(False, heard, score, reason)
    if len(spoken) != CODE_LENGTH or min(w.per_frame for w in spoken) < CODE_WORD_THRESHOLD:
        reason = "the consent recording does not clearly say a code after the statement"
        return SpeechCheck(False, heard, score, reason)
    if not hmac.compare_digest(" ".join(heard).encode(), " ".join(expected).encode()):
        reason = f"the consent recording says code '{' '.join(heard)}', not this challenge's code"
        return SpeechCheck(False, heard, score, reason)
    return SpeechCheck(True, heard, score)
