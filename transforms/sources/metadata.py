"""What a sidecar JSON or a URL-list row may say about a document, validated.

The same kind of model as the run settings (``transforms/settings.py``): a wrong type is
an error naming the key (the caller adds the file and line, and dead-letters the
document as ``read:bad_metadata``), never a silently wrong value (a string of tags
becoming one-letter tags, an RFC 2822 date becoming no date).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from dateutil import parser as dateparser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from transforms.settings import describe_errors

_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")


class MetadataError(ValueError):
    """Metadata that does not validate; the message names each bad key."""


def parse_date(value: Any) -> datetime | None:
    """Return a timezone-aware datetime (UTC when the text has no zone) from ISO 8601,
    RFC 2822 or any other form dateutil reads; None for an empty value.

    Raise ``ValueError`` for text that is not a date, or names no four-digit year
    (dateutil would fill a missing year or day from today)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif not isinstance(value, str) or not _YEAR.search(value):
        raise ValueError(f"not a date with a year: {value!r}")
    else:
        try:
            parsed = dateparser.parse(value.strip())
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"not a date: {value!r} ({exc})") from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


class DocumentMeta(BaseModel):
    """Known keys are checked; other keys are ignored (exports from other tools carry
    their own), and ``unknown`` lists them so the reader can say so."""

    model_config = ConfigDict(extra="allow", frozen=True)

    url: str | None = None
    title: str = ""
    published_at: datetime | None = None
    date: datetime | None = None  # a sidecar's other name for published_at
    language: str | None = None
    source: str | None = None
    publisher: str = ""
    authors: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @field_validator("published_at", "date", mode="before")
    @classmethod
    def _date(cls, value: Any) -> datetime | None:
        return parse_date(value)

    @field_validator("authors", "tags", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, str):  # one name, not a list of its letters
            return [value] if value.strip() else []
        return value

    @field_validator("authors", "tags")
    @classmethod
    def _strip(cls, values: list[str]) -> list[str]:
        return [v.strip() for v in values if v.strip()]

    @field_validator("url", "title", "language", "source", "publisher", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @property
    def published(self) -> datetime | None:
        return self.published_at or self.date

    @property
    def unknown(self) -> list[str]:
        return sorted(self.model_extra or {})


def validate_meta(data: Any) -> DocumentMeta:
    """Return ``data`` (a JSON object) as ``DocumentMeta``; raise ``MetadataError``."""
    if not isinstance(data, dict):
        raise MetadataError(f"expected a JSON object, got {type(data).__name__}")
    try:
        return DocumentMeta.model_validate(data)
    except ValidationError as exc:
        raise MetadataError(describe_errors(exc)) from None
