"""No single element can fail a job: ``@guarded(stage)`` on a DoFn's ``process`` turns
any exception raised for one element into a logged, counted dead letter
(``<stage>:error_<ExceptionType>``) with the element's URL, instead of a failed bundle
that Beam retries and then fails the whole job with.

Beam's ``with_exception_handling`` does this per transform but sends
``(element, exception)`` pairs to a separate output and warns on stateful DoFns; every
stage here already has one ``dead_letter`` output of ``Failure`` records, so the guard
writes there, in the same shape as the stage's own failures. An error the runner
returns for a state request is not the element's (:func:`from_runner`): it fails the
bundle, as without the guard.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from typing import Any

from apache_beam.metrics import Metrics

from transforms.dead_letters import DEGRADED, Failure, dead_letter

log = logging.getLogger(__name__)


def element_url(element: Any) -> str:
    """Return the URL (or path) an element is about, for the dead letter; ``""`` if none."""
    if isinstance(element, tuple) and len(element) == 2:  # (key, value) of a keyed stage
        key, value = element
        return element_url(value) or (key if isinstance(key, str) else "")
    for name in ("url", "path"):
        value = getattr(element, name, None)
        if isinstance(value, str):
            return value
    item = getattr(element, "item", None)  # a Page keeps its feed item
    return getattr(item, "url", "") if item is not None else ""


def crash_failure(stage: str, element: Any, exc: BaseException) -> Failure:
    """Return the dead letter of ``exc`` raised for ``element``: the last frames name
    where it happened."""
    where = "".join(traceback.format_exception(exc, limit=-3)[-4:]).strip()
    url = element_url(element)
    return Failure(stage, f"error_{type(exc).__name__}", url, f"{url}: {where}"[:2000])


def from_runner(exc: BaseException) -> bool:
    """Whether ``exc`` is the runner's answer to a state or timer request (the SDK
    harness raises it, e.g. "Unknown process bundle id" for a bundle of a cancelled
    job): a failure of the runner, not of the element. The bundle fails, and the runner
    retries it, or has already given it up."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename.endswith(_SDK_HARNESS)


_SDK_HARNESS = "/apache_beam/runners/worker/sdk_worker.py"


def guarded(stage: str, partial: bool = False, passthrough: bool = False) -> Callable:
    """Decorate ``process`` so an exception for one element becomes its dead letter.

    The element's outputs are collected first, so a failure half-way emits none of them;
    with ``partial`` (a reader of many records) those before the failure are kept. With
    ``passthrough`` (an optional enrichment) the element goes on unchanged instead, and
    the error is only logged and counted (``wirestream.degraded`` / ``<stage>:<reason>``).
    """

    def decorate(process: Callable) -> Callable:
        def failed(element, exc: Exception) -> list:
            if from_runner(exc):
                raise exc
            failure = crash_failure(stage, element, exc)
            if not passthrough:
                return [dead_letter(failure, logging.ERROR)]
            Metrics.counter(DEGRADED, failure.key).inc()
            log.error(
                "%s failed (%s), passed on without it: %s", stage, failure.reason, failure.detail
            )
            return [element]

        if partial:

            @functools.wraps(process)  # Beam reads the DoFn parameters through this
            def streaming(self, element, *args, **kwargs):
                try:
                    yield from process(self, element, *args, **kwargs) or ()
                except Exception as exc:  # any input-caused error; the job goes on
                    yield from failed(element, exc)

            return streaming

        @functools.wraps(process)
        def collected(self, element, *args, **kwargs):
            try:
                return list(process(self, element, *args, **kwargs) or ())
            except Exception as exc:
                return failed(element, exc)

        return collected

    return decorate
