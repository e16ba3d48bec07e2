"""The guard on a stage's ``process``: an element's error becomes its dead letter; the
runner's answer to a state request fails the bundle instead."""

from __future__ import annotations

import pytest
from apache_beam.runners.worker.sdk_worker import BundleProcessorCache

from transforms.guard import from_runner, guarded


class _Stage:
    def __init__(self, fail) -> None:
        self.fail = fail

    @guarded("poll", partial=True)
    def process(self, element):
        yield f"{element}-first"
        self.fail()


def _unknown_bundle() -> None:
    """What a state read raises in a worker whose bundle the runner no longer knows (a
    cancelled job): the SDK harness's own error, raised by its own code."""
    BundleProcessorCache(frozenset(), None, None, {}).lookup("bundle-of-a-cancelled-job")


def test_an_elements_error_is_its_dead_letter_after_what_it_yielded():
    out = list(_Stage(lambda: int("x")).process(("a.test:80", None)))
    assert out[0] == "('a.test:80', None)-first"
    (letter,) = out[1:]
    failure = letter.value
    assert failure.stage == "poll" and failure.reason == "error_ValueError"
    assert failure.url == "a.test:80"  # a keyed element: its key


def test_the_runners_answer_to_a_state_request_fails_the_bundle_not_the_element():
    with pytest.raises(RuntimeError, match="Unknown process bundle") as raised:
        list(_Stage(_unknown_bundle).process(("a.test:80", None)))
    assert from_runner(raised.value)
    assert not from_runner(_raised(lambda: int("x")))


def _raised(fn) -> BaseException:
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError("did not raise")
