"""Bulk writes with the one retry loop: outages are waited out, rejections reported."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from apache_beam.metrics import Metrics

from transforms.index.client import TRANSPORT_ERRORS, streaming_bulk, transient
from transforms.index.reconcile import WAITED_MS
from transforms.settings import ElasticsearchSettings

log = logging.getLogger(__name__)


MAX_BACKOFF = 30.0  # seconds between two tries of one batch during an outage


SUPERSEDED = "superseded"  # a version conflict: an equal or newer copy is indexed


def count_wait(seconds: float) -> None:
    """Count ``seconds`` the sink waited for Elasticsearch (``sink_waited_ms``)."""
    Metrics.counter("wirestream", WAITED_MS).inc(int(seconds * 1000))


def bulk_index(
    client,
    actions: list[dict[str, Any]],
    settings: ElasticsearchSettings,
    on_wait: Callable[[float], None] = count_wait,
):
    """Index ``actions`` (distinct ids); return (indexed count, [(action, reason, detail)]
    that were not indexed). ``on_wait`` is told each wait between tries.

    What may heal is retried with exponential backoff (up to ``MAX_BACKOFF`` seconds)
    for ``settings.retry_seconds``: the node down or unreachable, timeouts, 429, 5xx and
    write blocks (``cluster_block_exception``, e.g. a disk flood-stage block). While it
    waits the calling stage waits too, which holds back the stages feeding it. Only
    then are the documents reported ``unavailable``. A rejection (mapping conflict,
    oversized document) is reported at once; a version conflict as ``superseded``: not
    an error, a newer copy is already there.
    """
    pending = {action["_id"]: action for action in actions}
    indexed, failed = 0, []
    last: tuple[int | str, str] = ("N/A", "")
    started, attempt = time.monotonic(), 0
    while True:
        retry: dict[str, dict[str, Any]] = {}
        try:
            for ok, info in streaming_bulk(
                client,
                list(pending.values()),
                chunk_size=max(len(pending), 1),
                raise_on_error=False,
                raise_on_exception=False,
                max_retries=0,  # the loop below is the one retry layer
            ):
                (result,) = info.values()
                doc_id = result.get("_id")
                if ok:
                    indexed += 1
                    pending.pop(doc_id, None)
                    continue
                status = result.get("status", "N/A")
                error = result.get("error") or result.get("exception")
                reason = json.dumps(error, default=str)
                if transient(status, reason):
                    retry[doc_id] = pending.pop(doc_id)
                    last = (status, reason[:1000])
                elif status == 409 and "version_conflict" in reason:
                    failed.append((pending.pop(doc_id), SUPERSEDED, reason[:1000]))
                else:
                    failed.append((pending.pop(doc_id), f"rejected_{status}", reason[:1000]))
        except TRANSPORT_ERRORS as exc:  # node down or unreachable: the whole request failed
            last = ("N/A", f"{exc.__class__.__name__}: {exc}"[:1000])
        retry.update(pending)
        if not retry:
            return indexed, failed
        pending = retry
        delay = min(2.0**attempt, MAX_BACKOFF)
        waited = time.monotonic() - started
        if waited + delay > settings.retry_seconds:
            break
        log.warning(
            "Elasticsearch cannot take %d documents yet (%s%s); retrying in %.0fs "
            "(waiting %.0fs so far, up to %.0fs)",
            len(pending),
            last[0],
            " write block" if "cluster_block" in last[1] else "",
            delay,
            waited,
            settings.retry_seconds,
        )
        time.sleep(delay)
        on_wait(delay)
        attempt += 1
    log.error(
        "Elasticsearch still cannot take %d documents after %.0fs (%s); they go to dead letters",
        len(pending),
        time.monotonic() - started,
        last[0],
    )
    failed.extend((action, "unavailable", last[1]) for action in pending.values())
    return indexed, failed
