"""Text normaliser: article bodies and titles to the canonical token format.

The format is specified in ``../shared/FORMAT.md``: lowercase Penn-Treebank-style
tokens joined by single spaces, one segment per line. The work is done by a few
compiled regular expressions over the whole text (no per-character Python loop),
so time grows linearly with the input; every pattern is written so that a failed
match at one position costs a bounded number of steps.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.article import Article

__all__ = [
    "BOUND_PREFIXES",
    "NormalizeArticles",
    "normalize_article",
    "normalize_text",
    "normalize_title",
    "tokenize",
]

#: Prefixes that stay bound to the next word across a hyphen (``al-moualem``,
#: ``re-take``, ``ex-us``). Every other hyphen inside a compound becomes its own
#: token (``iran - backed``). The list is CoreNLP PTBLexer's set of hyphenated
#: prefixes that it keeps whole when splitting hyphens (from the ETTB 2.0
#: guidelines), plus the Arabic articles ``al`` and ``el``. A prefix binds only at
#: the start of a word and only to the segment right after it.
BOUND_PREFIXES: tuple[str, ...] = (
    "a", "agro", "al", "ante", "anti", "arch", "be", "bi", "bio", "co", "counter",
    "cross", "cyber", "de", "e", "eco", "el", "ex", "extra", "inter", "intra",
    "macro", "mega", "micro", "mid", "mini", "multi", "neo", "non", "over", "pan",
    "para", "peri", "post", "pre", "pro", "pseudo", "quasi", "re", "semi", "sub",
    "super", "tri", "u", "ultra", "un", "uni", "vice", "x",
)  # fmt: skip

#: Abbreviations (lowercase, without their period) that keep a following period
#: inside the token (``mr.``, ``jan.``); dotted letter sequences (``u.s.``,
#: ``d.c.``) and single-letter initials (``f.``) are recognised by shape.
ABBREVIATIONS: tuple[str, ...] = (
    "adm", "apr", "assn", "aug", "ave", "blvd", "bros", "capt", "cmdr", "co", "col",
    "corp", "cpl", "dec", "dept", "dr", "drs", "esq", "etc", "feb", "fig", "fri",
    "ft", "gen", "gov", "hon", "inc", "jan", "jr", "jul", "jun", "lt", "ltd", "maj",
    "mar", "messrs", "mon", "mr", "mrs", "ms", "mt", "nov", "oct", "plc", "pres",
    "prof", "pvt", "rep", "rev", "sen", "sep", "sept", "sgt", "sr", "st", "thu",
    "thurs", "tue", "tues", "univ", "vs", "wed",
    # teaspoons and US states, as CoreNLP's PTBLexer lists them (only the states
    # that are not also English words)
    "tbsp", "tsp", "ala", "ariz", "calif", "colo", "conn", "fla", "kan", "kans",
    "ky", "md", "mich", "minn", "neb", "nev", "okla", "tenn", "vt", "wis", "wyo",
)  # fmt: skip

#: For other languages: titles and the abbreviations of "about", "number", "and so on"
#: that Latin-script European languages share (not a per-language list).
COMMON_ABBREVIATIONS: tuple[str, ...] = (
    "bzw", "ca", "dr", "etc", "hr", "jr", "mlle", "mme", "nr", "prof", "sr", "sra", "st",
    "usw", "vgl",
)  # fmt: skip

_CLOSERS = frozenset("'\")]}")


def _mark_ranges() -> str:
    """Return a regex class body matching combining marks (category M*) in the BMP."""
    ranges: list[str] = []
    start = prev = -2
    for cp in range(0x300, 0x10000):
        if unicodedata.category(chr(cp))[0] == "M":
            if cp != prev + 1:
                if start >= 0:
                    ranges.append(f"\\u{start:04x}-\\u{prev:04x}")
                start = cp
            prev = cp
    ranges.append(f"\\u{start:04x}-\\u{prev:04x}")
    return "".join(ranges)


def _char_table() -> dict[int, str | None]:
    """Return the ``str.translate`` table for quotes, dashes, spaces and controls."""
    table: dict[int, str | None] = {}
    for cp in [*range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F, *range(0x80, 0xA0)]:
        table[cp] = None  # control characters carry no text
    for cp in range(0xD800, 0xE000):
        table[cp] = None  # lone surrogates cannot be written as UTF-8
    for ch in "\u00ad\u200b\u2060\ufeff":
        table[ord(ch)] = None  # soft hyphen and zero-width spaces
    for ch in "\t\u00a0\u1680\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B))):
        table[ord(ch)] = " "
    for ch in "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029":
        table[ord(ch)] = "\n"  # every line boundary str.splitlines knows is a break
    for ch in "`\u00b4\u2018\u2019\u201a\u201b\x91\x92":
        table[ord(ch)] = "'"
    for ch in "\u201c\u201d\u201e\u201f\x93\x94":
        table[ord(ch)] = '"'
    for ch in "\u2012\u2013\u2014\u2015\x96\x97":
        table[ord(ch)] = " - "  # a dash is a token of its own
    for ch in "\u2010\u2011\u2212\ufe63\uff0d":
        table[ord(ch)] = "-"  # hyphen and minus variants join like '-'
    table[0x2026] = "..."
    # NFC maps a few singletons onto characters above (U+2000 -> U+2002): map
    # them directly so one pass of the table is stable.
    for cp in range(0x80, 0x10000):
        ch = chr(cp)
        if cp in table or 0xD800 <= cp < 0xE000:
            continue
        nfc = unicodedata.normalize("NFC", ch)
        if nfc != ch and any(ord(c) in table for c in nfc):
            table[cp] = nfc.translate(table)
    return table


_TABLE = _char_table()
_SPECIAL_CHAR_RE = re.compile("[" + "".join(f"\\U{cp:08x}" for cp in sorted(_TABLE)) + "]")
_SPECIAL_STR = {chr(cp): value or "" for cp, value in _TABLE.items()}
_MARKS = _mark_ranges()
_MARKS += "\u200c\u200d"  # zero-width (non-)joiners belong to the word they are in
_W = rf"[\w{_MARKS}]"  # a word character: letter, digit, underscore, mark or joiner
_EMOJI = "\u2190-\u21ff\u2300-\u23ff\u25a0-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff"
_CLITIC = rf"'(?:s|re|ve|ll|d|m)(?![\w{_MARKS}])"
# A word: word characters joined by single dots, ampersands or apostrophes, and by
# commas, colons or slashes between digits (20,000 22:30 1/2); an apostrophe that starts a
# clitic ends the word (fighter 's).
_WORD = rf"{_W}+(?:(?:[.&]|'(?!{_CLITIC[1:]})|(?<=\d)[,:/](?=\d)){_W}+)*"
_URL_END = r"""[^\s<>"'.,;:!?)\]}]"""


def _trie(words: tuple[str, ...]) -> str:
    """Return a regex alternation for ``words`` factored by first letter (faster to fail)."""
    groups: dict[str, list[str]] = {}
    for word in sorted(words):
        groups.setdefault(word[0], []).append(word[1:])
    parts = []
    for first, rests in groups.items():
        tails = sorted((r for r in rests if r), key=len, reverse=True)
        optional = "?" if "" in rests else ""
        parts.append(f"{first}(?:{'|'.join(tails)}){optional}" if tails else first)
    return "|".join(parts)


#: Elided articles and pronouns split off the next word (``l'homme`` -> ``l' homme``) in
#: the languages that write them: Lucene's French and Italian elision lists (what their
#: analyzers strip), and Catalan's.
ELISIONS: dict[str, tuple[str, ...]] = {
    "fr": ("c", "d", "j", "jusqu", "l", "lorsqu", "m", "n", "puisqu", "qu", "quoiqu", "s", "t"),
    "it": (
        "agl", "all", "c", "coll", "d", "dagl", "dall", "degl", "dell", "gl", "l", "m",
        "negl", "nell", "pell", "s", "sugl", "sull", "t", "un", "v",
    ),
    "ca": ("d", "l", "m", "n", "s", "t"),
}  # fmt: skip
#: Languages written without spaces between words, whose Han characters are tokens of
#: their own (kana runs stay whole): what Elasticsearch's cjk bigrams start from.
CJK_LANGUAGES = frozenset({"zh", "ja", "yue", "wuu"})
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_KANA_RUN_RE = re.compile("[\u3041-\u309f]+|[\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f]+")
_HAN_RE = re.compile(f"[{_HAN}]")
_CJK_STOPS = str.maketrans({"\u3002": ".", "\uff0e": "."})  # 。 and ．end a sentence


def _alternatives(english: bool, elisions: tuple[str, ...] = ()) -> list[str]:
    """Return the token alternatives, in the order they are tried: English's clitics
    and abbreviations only for English (and text of unknown language)."""
    word = _WORD if english else rf"{_W}+(?:(?:[.&']|(?<=\d)[,:/](?=\d)){_W}+)*"
    return [
        r"\n",
        # The common case first: a plain word not followed by a character that could
        # join it to something longer.
        rf"{_W}++(?![.'&@:/\-]|(?<=\d),(?=\d))",
        r"[,;:()\"\[\]{}]",
        rf"(?:https?|ftp)://[^\s<>\"]*{_URL_END}",
        rf"www\.[^\s<>\"]*{_URL_END}",
        # a bare domain with a path (pic.twitter.com/x): the domain scan covers only
        # characters the word alternative would take anyway, so failing is cheap
        rf"(?:\w+\.)+(?:com|org|net|edu|gov|io|ly|co|uk)/[^\s<>\"]*{_URL_END}",
        r"@[^\W\d]\w*|#[^\W\d]\w*",  # handles and hashtags
        r"\d{4}-\d\d-\d\d(?!\w)",  # ISO dates stay whole
        *([_CLITIC] if english else []),  # 's 're 've 'll 'd 'm
        *([rf"(?<![\w{_MARKS}])(?:{_trie(elisions)})'"] if elisions else []),  # l' qu'
        rf"(?:[a-z]\.)+(?!{_W}|\.)",  # u.s. d.c. a.m. and initials
        rf"(?:{_trie(ABBREVIATIONS if english else COMMON_ABBREVIATIONS)})\.(?!{_W}|\.)",
        rf"(?<![\w{_MARKS}.])[-+.](?=\d){word}",  # a signed number: -5 +49 .45
        rf"(?:{_trie(BOUND_PREFIXES)})-{word}",
        word,
        r"\.+|-+|[?!]+|\*+",
        # an emoji with its modifiers and zero-width-joined partners stays whole
        rf"[{_EMOJI}](?:[\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]|\u200d[{_EMOJI}])*",
        r"\S",
    ]


@dataclass(frozen=True)
class _Rules:
    """The tokeniser of one language family: with and without e-mail addresses."""

    english: bool
    cjk: bool
    plain: re.Pattern[str]
    email: re.Pattern[str]


#: An e-mail address is tried first; the local part is bounded (RFC 5321: 64) so a
#: failed attempt costs constant time.
_EMAIL = r"[\w.+-]{1,64}@\w[\w-]*(?:\.\w[\w-]*)+|"


@functools.cache
def _rules_for(key: str) -> _Rules:
    english = key == "en"
    joined = "|".join(_alternatives(english, ELISIONS.get(key, ())))
    return _Rules(english, key == "cjk", re.compile(joined), re.compile(_EMAIL + joined))


def _rules(language: str | None) -> _Rules:
    """Return the rules for ``language`` (ISO 639-1; None, unknown, is English's)."""
    if not language or language == "en":
        return _rules_for("en")
    if language in CJK_LANGUAGES:
        return _rules_for("cjk")
    return _rules_for(language if language in ELISIONS else "other")


#: ``n't`` after a word character, with any ``n't`` chained after it (``don't``,
#: ``can't``). It starts with a literal, so the search skips ahead quickly, and the
#: lookbehinds let it start only at the first ``n't`` of a chain: linear time.
_NOT_RE = re.compile(rf"n(?<={_W}n)(?<!n'tn)'t(?:n't)*+(?!{_W})")
_CANNOT_RE = re.compile(rf"cannot(?<!{_W}cannot)(?!{_W})")
_BREAK_RUN_RE = re.compile(r"\n\n+")
_ORPHAN_LINE_RE = re.compile(r"(?:^|\n)[\'\")\]}](?: [\'\")\]}])*(?:\n|$)")
#: The spaces after an abbreviation that ends a sentence (tabs are spaces by now;
#: the literal ". " lets the search skip ahead): a dotted acronym or a
#: company/name suffix, followed by a capitalised word that usually starts one
#: (``in Washington D.C. The ...``). Case is still known here; the break it leaves
#: is kept by later passes, so the result stays idempotent.
_ABBREV_SENTENCE_END_RE = re.compile(
    r"\. (?:(?<=[A-Za-z]\.[A-Za-z]\. )|(?<=\b(?:Inc|Ltd|etc)\. )|(?<=\b(?:Co|Jr|Sr)\. )"
    r"|(?<=\bCorp\. )) *(?=(?:The|He|She|It|They|We|I|But|And|In|This|That|A|An|His|Her"
    r"|Their|Its|There|Our|However|After|When|While|As|If)\b)"
)
_ASCII_SPECIAL_RE = re.compile("[" + "".join(f"\\x{cp:02x}" for cp in _TABLE if cp < 0x80) + "]")


def _prepare(text: str, rules: _Rules) -> str:
    """Return ``text`` with characters mapped, composed (NFC) and lowercased."""
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    if text.isascii():
        if _ASCII_SPECIAL_RE.search(text):
            text = text.translate(_TABLE)
    else:
        text = _SPECIAL_CHAR_RE.sub(lambda m: _SPECIAL_STR[m.group()], text)
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
    if rules.english:
        text = _ABBREV_SENTENCE_END_RE.sub(".\n", text)
    elif rules.cjk:
        text = _HAN_RE.sub(r" \g<0> ", text.translate(_CJK_STOPS))
        text = _KANA_RUN_RE.sub(r" \g<0> ", text)
    return text.lower()


def _tokens(text: str, language: str | None = None) -> list[str]:
    """Return the tokens of ``text`` with ``"\\n"`` tokens at line boundaries."""
    rules = _rules(language)
    text = _prepare(text, rules)
    if rules.english:
        if "n't" in text:
            text = _NOT_RE.sub(lambda m: " " + m.group().replace("tn", "t n"), text)
        if "cannot" in text:
            text = _CANNOT_RE.sub("can not", text)
    pattern = rules.email if "@" in text else rules.plain
    return pattern.findall(text)


def tokenize(text: str, language: str | None = None) -> list[str]:
    """Return the lowercased tokens of ``text`` (in ``language``), without the line logic."""
    return [token for token in _tokens(text, language) if token != "\n"]


def normalize_text(text: str, language: str | None = None) -> str:
    """Return ``text`` in the normalised format: one segment per line, no final newline.

    ``language`` (ISO 639-1) picks the rules: English's (also for None, unknown) are
    FORMAT.md's; others differ where English's do not belong (docs/normalizer.md)."""
    tokens = _tokens(text, language)
    # A period is document-final when only closing quotes/brackets and line
    # breaks follow it; it is the one period token that stays.
    end = len(tokens)
    while end and (tokens[end - 1] == "\n" or tokens[end - 1] in _CLOSERS):
        end -= 1
    if end and len(tokens[end - 1]) > 1 and tokens[end - 1][-1] == "." != tokens[end - 1][0]:
        # An abbreviation ends the document: its period is also the final one (u.s. .).
        tokens.insert(end, ".")
        end += 1
    tail = ""
    if end and tokens[end - 1] == ".":
        tail = " ".join(t for t in tokens[end - 1 :] if t != "\n")
        del tokens[end - 1 :]
    body = f" {' '.join(tokens)} "
    # Every other period token ends its line; two passes because str.replace does
    # not see overlapping matches (" . . ").
    body = body.replace(" . ", " \n ").replace(" . ", " \n ")
    body = body.replace(" \n", "\n").replace("\n ", "\n").strip(" \n")
    if "\n\n" in body:
        body = _BREAK_RUN_RE.sub("\n", body)
    if _ORPHAN_LINE_RE.search(body):
        body = _merge_orphans(body)
    if tail:
        body = f"{body} {tail}" if body else tail
    return body


def _merge_orphans(body: str) -> str:
    """Return ``body`` with lines of only closing quotes/brackets joined to the next line."""
    lines: list[str] = []
    carry = ""
    for line in body.split("\n"):
        if all(token in _CLOSERS for token in line.split(" ")):
            carry = f"{carry} {line}" if carry else line
        elif carry:
            lines.append(f"{carry} {line}")
            carry = ""
        else:
            lines.append(line)
    if carry:
        if lines:
            lines[-1] = f"{lines[-1]} {carry}"
        else:
            lines.append(carry)
    return "\n".join(lines)


def normalize_title(title: str, language: str | None = None) -> str:
    """Return ``title`` normalised by the same rules, on one line."""
    return normalize_text(title, language).replace("\n", " ")


# --- Beam stage -------------------------------------------------------------------------


MAX_BODY_CHARS = 200_000  # a very long feature is ~60,000 characters


def bound_body(article: Article, limit: int = MAX_BODY_CHARS) -> Article:
    """Return ``article`` with its body cut to at most ``limit`` characters, at the last
    space before the limit when there is one nearby, and ``body_truncated`` set; so one
    huge page (a 4.5 MB one-line "article") cannot hold a worker's memory in every later
    stage and in Elasticsearch."""
    if len(article.body) <= limit:
        return article
    cut = article.body[:limit]
    space = cut.rfind(" ", max(limit - 1000, 0))
    Metrics.counter("wirestream", "bodies_truncated").inc()
    return article.replace(body=(cut[:space] if space > 0 else cut).rstrip(), body_truncated=True)


def normalize_article(article: Article, max_body_chars: int = MAX_BODY_CHARS) -> Article:
    """Return ``article`` (its body bounded by ``max_body_chars``) with ``title_normalized``,
    ``body_normalized`` and ``word_count`` set."""
    article = bound_body(article, max_body_chars)
    language = article.language
    body = normalize_text(article.body, language)
    words = sum(1 for token in body.split() if any(ch.isalnum() for ch in token))
    return article.replace(
        title_normalized=normalize_title(article.title, language),
        body_normalized=body,
        word_count=words,
    )


class NormalizeArticles(beam.PTransform):
    """Article -> Article with the bounded body and the normalised title and body
    (FORMAT.md)."""

    def __init__(self, max_body_chars: int = MAX_BODY_CHARS) -> None:
        super().__init__()
        self.max_body_chars = max_body_chars

    def expand(self, articles):
        return articles | beam.Map(normalize_article, self.max_body_chars)
