"""Elasticsearch index template installation, and read-back summaries."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transforms.analysis import analyzable_languages, with_search_mapping
from transforms.index.client import REQUEST_ERRORS, SearchClient, error_reason
from transforms.index.names import stats_index_name, stories_index_name, template_name
from transforms.paths import REPO_ROOT
from transforms.settings import ElasticsearchSettings, StatsSettings

INDEX_TEMPLATE = REPO_ROOT / "configs" / "index-template.json"
STATS_TEMPLATE = REPO_ROOT / "configs" / "stats-template.json"
STORIES_TEMPLATE = REPO_ROOT / "configs" / "stories-template.json"
log = logging.getLogger(__name__)


def template_priority(base: int, name: str) -> int:
    """Return ``base`` plus the length of ``name`` (a prefix or an index name).

    Elasticsearch refuses two composable templates of equal priority whose patterns
    overlap. Two profiles' ``prefix-*`` patterns overlap only when one prefix extends the
    other (``news`` and ``news-de``), so they always differ in length: the longer, more
    specific one gets the higher priority and wins its own indices. The stats template's
    base is far higher, so its exact index name always beats any articles pattern."""
    return base + len(name)


def index_template(
    settings: ElasticsearchSettings, path: Path = INDEX_TEMPLATE, refresh: str | None = None
) -> dict[str, Any]:
    """Return the composable index template with the configured prefix and alias, and the
    refresh interval ``refresh`` (default ``settings.refresh_interval``)."""
    template = copy.deepcopy(json.loads(path.read_text(encoding="utf-8")))
    template["index_patterns"] = [f"{settings.index_prefix}-*"]
    template["priority"] = template_priority(template["priority"], settings.index_prefix)
    template["template"]["aliases"] = {settings.alias: {}}
    template["template"]["settings"]["refresh_interval"] = refresh or settings.refresh_interval
    return template


class TemplateConflict(RuntimeError):
    """Another index template with the same priority claims some of the same indices."""


def _put_template(client: SearchClient, name: str, **body: Any) -> None:
    from transforms.index.client import BAD_REQUEST_ERRORS

    try:
        client.indices.put_index_template(name=name, **body)
    except BAD_REQUEST_ERRORS as exc:
        reason = error_reason(exc)
        if "matching patterns from existing" not in reason:
            raise
        raise TemplateConflict(
            f"index template '{name}' (patterns {body['index_patterns']}, priority "
            f"{body['priority']}) overlaps another template of the same priority: {reason}. "
            "Choose an index_prefix that does not overlap, or delete the other template."
        ) from None


def install_index_template(
    client: SearchClient, settings: ElasticsearchSettings, refresh: str | None = None
) -> None:
    """Create or update the articles template (idempotent), with a per-language search
    copy for each language whose analyzer the node has, and give the articles indices
    that exist the refresh interval ``refresh`` (default ``settings.refresh_interval``):
    a job's preparation also undoes what a killed backfill left (:func:`bulk_loading`)."""
    languages, missing = analyzable_languages(client)
    if missing:
        log.warning(
            "the node at %s has no analyzer for %s (a core-only build without the "
            "analysis-common module): those languages are searched through body only",
            settings.url,
            ", ".join(missing),
        )
    body = with_search_mapping(index_template(settings, refresh=refresh), languages)
    _put_template(
        client,
        template_name(settings),
        index_patterns=body["index_patterns"],
        template=body["template"],
        priority=body.get("priority"),
        meta=body.get("_meta"),
    )
    client.options(ignore_status=404).indices.put_settings(
        index=settings.alias,
        settings={"index": {"refresh_interval": body["template"]["settings"]["refresh_interval"]}},
        allow_no_indices=True,
    )


@contextmanager
def bulk_loading(settings: ElasticsearchSettings) -> Iterator[None]:
    """Within: the articles indices, existing and new, refresh every
    ``backfill_refresh_interval`` (a refresh every 5 s of each of a backfill's monthly
    indices cost the node half its CPU on bench/peers.py). After, even on an error or
    Ctrl-C: ``refresh_interval`` again, and everything written is searchable. A killed
    backfill leaves the slower interval, which the next job's preparation undoes."""
    from transforms.index.client import make_client

    client = make_client(settings, retries=1)
    try:
        install_index_template(client, settings, refresh=settings.backfill_refresh_interval)
        yield
    finally:
        try:
            install_index_template(client, settings)
            client.indices.refresh(index=settings.alias, ignore_unavailable=True)
        except REQUEST_ERRORS as exc:
            log.warning(
                "could not set refresh_interval %s on '%s' again (%s): the next run or "
                "backfill does",
                settings.refresh_interval,
                settings.alias,
                error_reason(exc),
            )
        finally:
            client.close()


def _install_single_index_template(client: SearchClient, index: str, path: Path) -> str:
    """Create or update the template of one index outside the alias (its priority beats
    every articles pattern); return the index name."""
    body = json.loads(path.read_text(encoding="utf-8"))
    _put_template(
        client,
        f"wirestream-{index}",
        index_patterns=[index],
        template=body["template"],
        priority=template_priority(body["priority"], index),
        meta=body["_meta"],
    )
    return index


def install_stats_template(
    client: SearchClient, es: ElasticsearchSettings, stats: StatsSettings
) -> str:
    """Create or update the template of the ingestion-health index; return the index name."""
    return _install_single_index_template(client, stats_index_name(es, stats), STATS_TEMPLATE)


def install_stories_template(client: SearchClient, es: ElasticsearchSettings) -> str:
    """Create or update the template of the stories index; return the index name."""
    return _install_single_index_template(client, stories_index_name(es), STORIES_TEMPLATE)
