"""Folders of article files: plain text (like ``../shared/seeds/``) or saved HTML pages.

One document per file. Metadata comes from a sidecar JSON beside the file
(``x.json`` or ``x.txt.json``: url, title, published_at, language, source,
publisher, authors, tags); else from the file name (a leading ``2026-03-09`` or
``20260309`` is the publish date) and the text (the first line is the title).
A file without a URL is identified by ``archive://<folder>/<path in folder>``,
so re-reading the folder finds the same document.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from pathlib import PurePosixPath

from transforms.article import Article, FeedItem, Page, text_digest
from transforms.dead_letters import Failure
from transforms.fetch import decode_html
from transforms.language import with_language
from transforms.sources.files import FileInput, read_optional
from transforms.sources.metadata import DocumentMeta, validate_meta
from transforms.urls import canonicalize_url, source_domain

TEXT_SUFFIXES = (".txt", ".text", ".md", ".txt.gz")
HTML_SUFFIXES = (".html", ".htm", ".html.gz")
SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES
_NAME_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
TITLE_CHARS = 200

log = logging.getLogger(__name__)


def date_from_name(name: str) -> datetime | None:
    """Return the date a file name starts with (``2026-03-09-...``), or None."""
    match = _NAME_DATE.match(name)
    if not match:
        return None
    try:
        year, month, day = map(int, match.groups())
        return datetime(year, month, day, tzinfo=timezone.utc)
    except ValueError:
        return None


def archive_url(root: str, path: str) -> str:
    """Return the stable identity of a file found under ``root``."""
    relative = PurePosixPath(path).relative_to(PurePosixPath(root)) if root else path
    return canonicalize_url(f"archive://{PurePosixPath(root).name or 'archive'}/{relative}")


def first_line_title(text: str) -> str:
    """Return the first non-empty line, cut at a word boundary to ``TITLE_CHARS``."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if len(line) <= TITLE_CHARS:
        return line
    return line[:TITLE_CHARS].rsplit(" ", 1)[0] + " ..."


def read_sidecar(path: str) -> DocumentMeta:
    """Return the sidecar metadata of ``path`` (empty when none); raise ``ValueError``
    naming the sidecar and the bad keys."""
    stem = re.sub(r"\.(txt|text|md|html?)(\.gz)?$", "", path, flags=re.I)
    for candidate in (f"{stem}.json", f"{path}.json"):
        data = read_optional(candidate)
        if data is not None:
            try:
                meta = validate_meta(json.loads(data))
            except ValueError as exc:  # json.JSONDecodeError and MetadataError
                raise ValueError(f"{candidate}: {exc}") from None
            if meta.unknown:
                log.info("%s: keys ignored: %s", candidate, ", ".join(meta.unknown))
            return meta
    return DocumentMeta()


def parse_text_file(file: FileInput):
    """Yield the Article (text) or Page (HTML) in one archive file, or a Failure."""
    try:
        meta = read_sidecar(file.path)
    except ValueError as exc:
        yield Failure("read", "bad_metadata", file.path, str(exc))
        return
    text = decode_html(file.data).strip()
    if not text:
        yield Failure("read", "empty_file", file.path, "no text")
        return
    url = canonicalize_url(meta.url) if meta.url else archive_url(file.root, file.path)
    name = PurePosixPath(file.path).name
    published = meta.published or date_from_name(name)
    language = meta.language
    if file.path.lower().endswith(HTML_SUFFIXES):
        item = FeedItem(
            url=url,
            feed_url=file.root,
            title=meta.title,
            published_at=published,
            language=language,
            tags=list(meta.tags),
            publisher=meta.publisher,
            authors=list(meta.authors),
        )
        yield Page(url=url, final_url=url, html=text, fetched_at=file.modified, item=item)
        return
    yield with_language(
        Article(
            url=url,
            canonical_url=url,
            source=meta.source or source_domain(url),
            feed_url=file.root,
            title=meta.title or first_line_title(text),
            body=text,
            fetched_at=file.modified,
            published_at=published,
            authors=list(meta.authors),
            language_declared=language,
            tags=list(meta.tags),
            publisher=meta.publisher,
            page_digest=text_digest(text),
        )
    )
