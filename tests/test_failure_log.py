"""The console stays readable: repeated failures are summarised, every one still counted."""

from __future__ import annotations

import logging
import time

from transforms.dead_letters import Failure, FailureLog


def _failure(n: int, reason: str = "timeout") -> Failure:
    return Failure("fetch", reason, f"http://127.0.0.1/{n}", "no answer within 5s")


def test_ten_thousand_failures_make_a_handful_of_lines(caplog):
    failures = FailureLog(first=3, every=0.2)
    caplog.set_level(logging.WARNING, logger="transforms.article")
    started = time.monotonic()
    n = 0
    while n < 10_000 or time.monotonic() - started < 0.5:
        failures.log(_failure(n), logging.WARNING)
        n += 1
    failures.log(_failure(n, "http_404"), logging.WARNING)  # another reason is shown at once
    lines = [r.getMessage() for r in caplog.records]
    assert 3 + 2 <= len(lines) <= 3 + 1 + int((time.monotonic() - started) / 0.2) + 1
    assert lines[0] == "fetch failed (timeout): http://127.0.0.1/0: no answer within 5s"
    assert lines[2].endswith("(more of these are summarised)")
    summary = lines[3]
    assert "fetch failed (timeout)" in summary and "more times" in summary
    assert "e.g. http://127.0.0.1/3" in summary
    assert lines[-1].startswith("fetch failed (http_404): http://127.0.0.1/")
