"""The search-engine client every stage and command uses, and which failures may heal.

One retry layer per caller: commands and look-ups let the client retry a request
(``settings.max_retries``); the bulk sink asks for a client without retries and retries
whole batches itself for a bounded time (``transforms.index.bulk.bulk_index``), so one batch
never multiplies into dozens of requests.

Elasticsearch is reached with elasticsearch-py; OpenSearch (``engine: opensearch``) with
opensearch-py, wrapped by ``OpenSearchClient`` in elasticsearch-py's calling style (body
fields as keywords) for the few calls the project makes, so every caller is written
once. ``streaming_bulk`` and ``scan`` pick the engine's own helpers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import opensearchpy
from elasticsearch import ApiError, BadRequestError, Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import NotFoundError as ESNotFoundError
from elasticsearch import TransportError as ESTransportError

from transforms.settings import ElasticsearchSettings

# Statuses worth retrying: the node is busy (429) or a proxy or node is down (5xx).
RETRYABLE_STATUS = (429, 500, 502, 503, 504)

# What each engine's client raises, for callers that catch either.
CONNECTION_ERRORS = (ESConnectionError, opensearchpy.ConnectionError)
TRANSPORT_ERRORS = (ESTransportError, opensearchpy.TransportError)
#: Any failed request: unreachable, timed out, or answered with an error status.
REQUEST_ERRORS = (*TRANSPORT_ERRORS, ApiError)
NOT_FOUND_ERRORS = (ESNotFoundError, opensearchpy.NotFoundError)
BAD_REQUEST_ERRORS = (BadRequestError, opensearchpy.RequestError)

# The search keywords that go in the request body (the rest are URL parameters).
BODY_FIELDS = {"query", "size", "sort", "aggs", "track_total_hits", "source", "from_"}


def error_reason(exc: Exception) -> str:
    """Return the engine's own reason for a failed request, else the exception's text."""
    body = getattr(exc, "body", None) or getattr(exc, "info", None)
    if isinstance(body, dict):
        return str(body.get("error", {}).get("reason", exc))
    return str(exc)


class _OpenSearchIndices:
    def __init__(self, client: OpenSearchClient) -> None:
        self.client = client

    def refresh(self, index: str, **params: Any) -> Any:
        return self.client.raw.indices.refresh(index=index, **self.client.params(params))

    def put_index_template(self, name: str, meta: Any = None, **fields: Any) -> Any:
        body = fields | ({"_meta": meta} if meta is not None else {})
        return self.client.raw.indices.put_index_template(name=name, body=body)

    def analyze(self, **fields: Any) -> Any:
        return self.client.raw.indices.analyze(body=fields)

    def put_settings(self, index: str, settings: dict[str, Any], **params: Any) -> Any:
        return self.client.raw.indices.put_settings(
            index=index, body=settings, **self.client.params(params)
        )

    def stats(self, index: str, metric: str, **params: Any) -> Any:
        return self.client.raw.indices.stats(
            index=index, metric=metric, **self.client.params(params)
        )


class OpenSearchClient:
    """opensearch-py behind the elasticsearch-py calls the project makes (``search``,
    ``count``, ``indices.refresh``/``put_index_template``/``analyze``/``put_settings``/``stats``,
    ``options``, ``close``)."""

    def __init__(self, raw: opensearchpy.OpenSearch, ignore: tuple[int, ...] = ()) -> None:
        self.raw = raw
        self.ignore = ignore
        self.indices = _OpenSearchIndices(self)

    def params(self, params: dict[str, Any]) -> dict[str, Any]:
        return params | ({"ignore": self.ignore} if self.ignore else {})

    def options(self, ignore_status: int | tuple[int, ...] = ()) -> OpenSearchClient:
        statuses = (ignore_status,) if isinstance(ignore_status, int) else tuple(ignore_status)
        return OpenSearchClient(self.raw, statuses)

    def search(self, index: str, **kwargs: Any) -> Any:
        body = {k.rstrip("_"): v for k, v in kwargs.items() if k in BODY_FIELDS}
        if "source" in body:
            body["_source"] = body.pop("source")
        params = {k: v for k, v in kwargs.items() if k not in BODY_FIELDS}
        if "source_includes" in params:
            params["_source_includes"] = ",".join(params.pop("source_includes"))
        return self.raw.search(index=index, body=body, **self.params(params))

    def count(self, index: str, query: dict | None = None, **params: Any) -> Any:
        body = {"query": query} if query else None
        return self.raw.count(index=index, body=body, **self.params(params))

    def close(self) -> None:
        self.raw.close()


SearchClient = Elasticsearch | OpenSearchClient


def make_client(settings: ElasticsearchSettings, retries: int | None = None) -> SearchClient:
    """Return a client for ``settings`` (API key or basic auth, optional CA certificate)
    that retries a failed request ``retries`` times (default ``settings.max_retries``)."""
    retries = settings.max_retries if retries is None else retries
    kwargs: dict[str, Any] = {
        "max_retries": retries,
        "retry_on_status": RETRYABLE_STATUS if retries else (),
        "retry_on_timeout": retries > 0,
    }
    if settings.url.startswith("https://"):
        kwargs["verify_certs"] = settings.verify_certs
        if settings.ca_certs:
            kwargs["ca_certs"] = settings.ca_certs
    basic = (settings.username, settings.password or "") if settings.username else None
    if settings.engine == "opensearch":  # the settings refuse an api_key here
        if basic:
            kwargs["http_auth"] = basic
        raw = opensearchpy.OpenSearch([settings.url], timeout=settings.request_timeout, **kwargs)
        return OpenSearchClient(raw)
    if settings.api_key:
        kwargs["api_key"] = settings.api_key
    elif basic:
        kwargs["basic_auth"] = basic
    return Elasticsearch(settings.url, request_timeout=settings.request_timeout, **kwargs)


def streaming_bulk(client, actions: list[dict[str, Any]], **kwargs: Any) -> Iterable:
    """The engine's ``helpers.streaming_bulk`` over ``client``."""
    if isinstance(client, OpenSearchClient):
        return opensearchpy.helpers.streaming_bulk(client.raw, actions, **kwargs)
    from elasticsearch import helpers

    return helpers.streaming_bulk(client, actions, **kwargs)


def scan(client, index: str, query: dict[str, Any], **kwargs: Any) -> Iterable[dict[str, Any]]:
    """The engine's ``helpers.scan``: every hit of ``query`` (a search body) in ``index``."""
    if isinstance(client, OpenSearchClient):
        return opensearchpy.helpers.scan(client.raw, query=query, index=index, **kwargs)
    from elasticsearch import helpers

    return helpers.scan(client, index=index, query=query, **kwargs)


def transient(status: int | str, reason: str) -> bool:
    """Whether a failed write may succeed later: no answer (``N/A``), the node busy, or
    writes blocked (``403 cluster_block_exception``, e.g. a disk flood-stage block)."""
    return (
        status == "N/A"
        or status in RETRYABLE_STATUS
        or (status == 403 and "cluster_block_exception" in reason)
    )
