"""What the page's markup suggests where it declares nothing: trafilatura's heuristics.

trafilatura's full metadata pass (``bare_extraction(with_metadata=True)``) reads every
field on every page, and costs 12-14 ms a page (a sixth of a backfill's CPU, and a second
on one page with an 840 KB live-blog JSON-LD that its author regex backtracks over).
Most of it repeats what :mod:`transforms.page_meta` already read from JSON-LD and
``<meta>``. So the body is extracted without it, and its parts run here one by one:

- always, as they cost well under a millisecond: the OpenGraph/``<meta>`` reading (image,
  canonical URL, meta authors), the canonical ``<link>``, and the heading heuristic for the
  title;
- only for a field still missing after the page's declarations and the feed entry: the
  author heuristic (XPaths over a copy of the page) and htmldate's date search.

Pages larger than :data:`MAX_GUESS_CHARS` get no date or author guess: what a heuristic
finds in megabytes of markup is seldom the article's, and it would cost seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from htmldate import find_date
from trafilatura.metadata import examine_meta, extract_author, extract_title, extract_url
from trafilatura.settings import set_date_params

log = logging.getLogger(__name__)

#: Above this many characters of HTML, the author and date heuristics are not run. The
#: 171 extraction-bench pages are at most 1.68 M characters; on them the two heuristics
#: cost at most 0.3 ms per 1,000 characters, so this bounds them to ~0.6 s a page.
MAX_GUESS_CHARS = 2_000_000


@dataclass
class Guesses:
    """trafilatura's cheap readings of a page; empty where it found nothing."""

    title: str = ""
    authors: list[str] | None = None
    top_image: str | None = None
    canonical: str | None = None


def _authors(value: str | None) -> list[str]:
    return [a.strip() for a in (value or "").split(";") if a.strip()]


def _day(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc) if value else None
    except ValueError:
        return None


def cheap_guesses(tree, url: str) -> Guesses:
    """Return the guesses that cost well under a millisecond: title, image, canonical URL
    and authors from ``<meta>`` tags (none for an unparsed page, ``tree`` None)."""
    if tree is None:
        return Guesses()
    try:
        meta = examine_meta(tree)
        canonical = meta.url or extract_url(tree)
        title = meta.title or extract_title(tree) or ""  # trafilatura's order
    except Exception as exc:  # lxml errors on hostile markup only lose the guesses
        log.debug("no cheap guesses for %s: %s", url, exc)
        return Guesses()
    author = meta.author if meta.author and " " in meta.author else None  # as trafilatura
    return Guesses(
        title=title.strip(),
        authors=_authors(author),
        top_image=meta.image or None,
        canonical=canonical if canonical and canonical != url else None,
    )


def guess_authors(tree, size: int) -> list[str]:
    """Return the authors trafilatura's XPath heuristic finds in the page's markup."""
    if tree is None or size > MAX_GUESS_CHARS:
        return []
    try:
        return _authors(extract_author(tree))
    except Exception as exc:  # lxml errors on hostile markup
        log.debug("no author guess: %s", exc)
        return []


def guess_date(tree, url: str, size: int) -> datetime | None:
    """Return htmldate's guess of the page's original publication day (UTC midnight)."""
    if tree is None or size > MAX_GUESS_CHARS:
        return None
    try:
        return _day(find_date(tree, url=url, **set_date_params(extensive=True)))
    except Exception as exc:  # htmldate errors on hostile markup
        log.debug("no date guess for %s: %s", url, exc)
        return None
