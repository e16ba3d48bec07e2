"""Titles without the site's name, and bylines as a list of names.

Pages dress their metadata for display: ``<title>`` and ``og:title`` carry the site's
name (" | The Guardian", "BBC News - "), bylines carry "By", roles, dates and e-mail
addresses, and several authors come as one string ("A, B and C"). No library cleans
these the way an index needs them (newspaper4k's byline heuristics are what gave a
third of its authors wrong on unseen sites), so the rules are here, chosen on the
development pages (see docs/extraction.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from transforms.gazetteer import strip_diacritics
from transforms.page_meta import Author

#: Separators between a title and the site's name.
_SEPARATOR_RE = re.compile(r"\s+(?:[|\-–—:·•»*]|::)\s+")
_BYLINE_SEGMENT_RE = re.compile(r"^by\s+\S", re.IGNORECASE)
_BY_RE = re.compile(r"^(?:(?:written|words|reporting|text|story)\s+)?by[:\s]+", re.IGNORECASE)
_EMAIL_RE = re.compile(r"\S+@\S+\.\w+")
_DATE_RE = re.compile(
    r"\b(?:updated|published|posted)\b.*$|\b\d{1,2}[:.]\d{2}\b.*$|\b(?:jan|feb|mar|apr|may|jun|jul"
    r"|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}\b.*$|\b\d{4}-\d{2}-\d{2}\b.*$",
    re.IGNORECASE,
)
#: Strings pages put where a byline goes that name nobody (image credits, placeholders).
_NOT_A_BYLINE_RE = re.compile(
    r"^\(|\b(?:image|images|photo|photos|getty|shutterstock|credit|no author|unknown|anonymous)\b",
    re.IGNORECASE,
)
#: " in Washington", " in Stanstead, Quebec": where the reporter filed from (Guardian style).
_FILED_FROM_RE = re.compile(r"\s+in\s+[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*)*(?:,\s*[A-Z][\w.'’-]*)?")
_SPLIT_RE = re.compile(r"\s*(?:,|;|\||&|\band\b|\bund\b)\s*", re.IGNORECASE)
#: Words that make a byline segment a role, not a name ("Senior Reporter").
ROLE_WORDS = frozenset(
    (
        "reporter", "correspondent", "editor", "writer", "contributor", "columnist",
        "producer", "journalist", "senior", "chief", "political", "staff", "news", "desk",
        "photographer", "photos", "photography", "analyst", "for", "at", "in", "with",
        "contributing", "deputy", "associate", "bureau", "special", "freelance", "video",
    )
)  # fmt: skip


def fold(text: str) -> str:
    """Return ``text`` lowercased, without diacritics or non-word characters."""
    return " ".join(re.findall(r"\w+", strip_diacritics(text.casefold())))


def _is_site(segment: str, sites: Iterable[str]) -> bool:
    part = fold(segment).replace(" ", "")
    if not part:
        return True
    for site in sites:
        name = fold(site).replace(" ", "")
        if name and (part == name or (len(part) >= 3 and (part in name or name in part))):
            return True
    return False


def clean_title(title: str, site_names: Iterable[str] = (), domain: str = "") -> str:
    """Return ``title`` without the site's name at its start or end.

    A leading or trailing segment (split at " | ", " - ", " – ", " :: ", " * ", ...) is
    dropped when it names the site: a declared site name (og:site_name, the publisher) or
    the domain's main label ("theguardian" for www.theguardian.com); so is a trailing
    "by Author".
    """
    title = " ".join(title.split())
    label = domain.removeprefix("www.").split(".")[0] if domain else ""
    sites = [*site_names, *([label] if len(label) >= 3 else [])]
    parts = _SEPARATOR_RE.split(title)
    if len(parts) < 2:
        return title
    while len(parts) > 1 and (_is_site(parts[-1], sites) or _BYLINE_SEGMENT_RE.match(parts[-1])):
        parts.pop()
    while len(parts) > 1 and _is_site(parts[0], sites):
        parts.pop(0)
    if len(parts) == len(_SEPARATOR_RE.split(title)):
        return title
    # Keep the title's own separators: cut the original string where the kept parts are.
    start = title.find(parts[0])
    end = title.rfind(parts[-1]) + len(parts[-1])
    return title[start:end].strip() if start >= 0 and end > start else " - ".join(parts)


def _is_role(segment: str) -> bool:
    words = fold(segment).split()
    return not words or any(w in ROLE_WORDS for w in words) and len(words) <= 5


def _looks_like_name(segment: str) -> bool:
    words = segment.split()
    return 1 <= len(words) <= 5 and all(w[:1].isupper() or w.lower() in _PARTICLES for w in words)


_PARTICLES = frozenset(
    ("van", "von", "de", "der", "den", "da", "di", "du", "la", "le", "al", "bin", "el")
)


def clean_byline(name: str) -> list[str]:
    """Return the names in one byline string ("By A and B, Senior Reporter" -> [A, B])."""
    if _NOT_A_BYLINE_RE.search(name.strip()):
        return []
    text = _EMAIL_RE.sub(" ", " ".join(name.split()))
    text = _BY_RE.sub("", text.strip())
    text = _DATE_RE.sub("", text).strip(" ,;|-–—")
    text = _FILED_FROM_RE.sub("", text)
    if not text:
        return []
    segments = [s.strip(" .") for s in _SPLIT_RE.split(text) if s.strip(" .")]
    names = [s for s in segments if not _is_role(s)]
    if len(segments) > 1 and names and all(_looks_like_name(s) for s in names):
        return [_BY_RE.sub("", s) for s in names]
    return [text] if not (len(segments) > 1 and not names) else []


def clean_authors(authors: Iterable[Author]) -> list[str]:
    """Return distinct author names in order: organisations whole, bylines split."""
    names: list[str] = []
    for author in authors:
        names += [author.name.strip()] if author.organization else clean_byline(author.name)
    seen: set[str] = set()
    kept = []
    for name in names:
        if name and fold(name) not in seen:
            seen.add(fold(name))
            kept.append(name)
    return kept
