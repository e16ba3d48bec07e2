"""The Elasticsearch client every stage and command uses, and which failures may heal.

One retry layer per caller: commands and look-ups let the client retry a request
(``settings.max_retries``); the bulk sink asks for a client without retries and retries
whole batches itself for a bounded time (``transforms.sinks.bulk_index``), so one batch
never multiplies into dozens of requests.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from transforms.settings import ElasticsearchSettings

# Statuses worth retrying: the node is busy (429) or a proxy or node is down (5xx).
RETRYABLE_STATUS = (429, 500, 502, 503, 504)


def make_client(settings: ElasticsearchSettings, retries: int | None = None) -> Elasticsearch:
    """Return a client for ``settings`` (API key or basic auth, optional CA certificate)
    that retries a failed request ``retries`` times (default ``settings.max_retries``)."""
    retries = settings.max_retries if retries is None else retries
    kwargs: dict[str, Any] = {
        "request_timeout": settings.request_timeout,
        "max_retries": retries,
        "retry_on_status": RETRYABLE_STATUS if retries else (),
        "retry_on_timeout": retries > 0,
    }
    if settings.api_key:
        kwargs["api_key"] = settings.api_key
    elif settings.username:
        kwargs["basic_auth"] = (settings.username, settings.password or "")
    if settings.url.startswith("https://"):
        kwargs["verify_certs"] = settings.verify_certs
        if settings.ca_certs:
            kwargs["ca_certs"] = settings.ca_certs
    return Elasticsearch(settings.url, **kwargs)


def transient(status: int | str, reason: str) -> bool:
    """Whether a failed write may succeed later: no answer (``N/A``), the node busy, or
    writes blocked (``403 cluster_block_exception``, e.g. a disk flood-stage block)."""
    return (
        status == "N/A"
        or status in RETRYABLE_STATUS
        or (status == 403 and "cluster_block_exception" in reason)
    )
