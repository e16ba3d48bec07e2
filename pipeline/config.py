"""Run settings: defaults in one place, loaded from a YAML profile, validated once.

A profile (``configs/*.yaml``) names its feeds (inline or in ``configs/feeds/*.yaml``
files) and overrides any default (the section models are in ``transforms/settings.py``);
the command line overrides the profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from transforms import paths
from transforms.settings import (
    BackfillSettings,
    ElasticsearchSettings,
    EnrichSettings,
    ExtractSettings,
    FeedSpec,
    FetchSettings,
    SitemapSpec,
    StatsSettings,
    StoriesSettings,
    StreamSettings,
    StrictModel,
    describe_errors,
)

__all__ = [
    "BackfillSettings",
    "ConfigError",
    "ElasticsearchSettings",
    "EnrichSettings",
    "ExtractSettings",
    "FeedSpec",
    "FetchSettings",
    "Settings",
    "SitemapSpec",
    "StatsSettings",
    "StoriesSettings",
    "StreamSettings",
    "load_settings",
]

REPO_ROOT = paths.REPO_ROOT


class ConfigError(ValueError):
    """A profile or feeds file is missing or invalid; the message names the bad key."""


class Settings(StrictModel):
    """Everything a run needs."""

    feeds: list[FeedSpec] = Field(default_factory=list)
    sitemaps: list[SitemapSpec] = Field(default_factory=list)
    fetch: FetchSettings = FetchSettings()
    extract: ExtractSettings = ExtractSettings()
    elasticsearch: ElasticsearchSettings = ElasticsearchSettings()
    enrich: EnrichSettings = EnrichSettings()
    stream: StreamSettings = StreamSettings()
    backfill: BackfillSettings = BackfillSettings()
    stats: StatsSettings = StatsSettings()
    stories: StoriesSettings = StoriesSettings()
    dead_letter_dir: str = "var/dead-letter"
    max_body_chars: int = Field(
        200_000, gt=0, description="longer bodies are cut (the document says body_truncated)"
    )

    @property
    def sources(self) -> list[FeedSpec]:
        """What the stream polls: the feeds, then the sitemaps."""
        return [*self.feeds, *self.sitemaps]

    @model_validator(mode="after")
    def _unique_feeds(self) -> Settings:
        urls = [f.url for f in self.sources]
        dupes = sorted({u for u in urls if urls.count(u) > 1})
        if dupes:
            raise ValueError(f"feeds or sitemaps listed twice: {', '.join(dupes)}")
        return self

    def with_overrides(self, **sections: Any) -> Settings:
        """Return a copy with some fields of some sections replaced (CLI flags)."""
        data = self.model_dump(exclude_unset=True)  # what is derived is derived again
        for section, values in sections.items():
            if isinstance(values, dict):
                given = {k: v for k, v in values.items() if v is not None}
                data[section] = {**(data.get(section) or {}), **given}
            elif values is not None:
                data[section] = values
        return _validate(data, "command-line overrides")


def _validate(data: dict[str, Any], origin: str) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {describe_errors(exc)}") from None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_feeds_file(path: Path) -> list[dict[str, Any]]:
    """Return the feed entries of a ``configs/feeds/*.yaml`` file (a list, or ``feeds:``)."""
    data = _read_yaml(path)
    if isinstance(data, dict):
        data = data.get("feeds")
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of feeds (or a 'feeds:' key holding one)")
    return data


def load_settings(path: str | Path | None = None) -> Settings:
    """Return validated settings from a profile, or the defaults when ``path`` is None."""
    if path is None:
        return Settings()
    path = Path(path)
    data = _read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    feeds = list(data.get("feeds") or [])
    for name in data.pop("feeds_files", None) or []:
        feeds_path = Path(name)
        if not feeds_path.is_absolute():
            feeds_path = (
                (path.parent / feeds_path)
                if (path.parent / feeds_path).exists()
                else REPO_ROOT / feeds_path
            )
        feeds.extend(load_feeds_file(feeds_path))
    data["feeds"] = feeds
    return _validate(data, str(path))
