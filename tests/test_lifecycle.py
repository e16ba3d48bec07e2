"""How a stop request reaches the stages: in-process, and through the run's stop marker
for workers in other processes (a cluster)."""

from __future__ import annotations

import multiprocessing

from transforms.lifecycle import StopRequest, clear_stop, request_stop, stop_marker_path


def _seen_elsewhere(marker: str) -> bool:
    return StopRequest(marker, every=0).is_set()


def test_a_stop_marker_reaches_another_process_and_is_removed_after(tmp_path):
    marker = stop_marker_path(str(tmp_path / "dead-letter"))  # the folder may not exist yet
    assert marker != stop_marker_path(str(tmp_path / "dead-letter"))  # one per run
    here = StopRequest(marker, every=0)
    context = multiprocessing.get_context("spawn")  # no memory shared with this process
    with context.Pool(1) as pool:
        assert not pool.apply(_seen_elsewhere, (marker,))
        request_stop(marker)
        assert pool.apply(_seen_elsewhere, (marker,))
    assert here.is_set()
    clear_stop(marker)
    assert not StopRequest(marker, every=0).is_set()
    clear_stop(marker)  # nothing to remove: no error


def test_a_stop_is_looked_for_at_most_once_per_period(tmp_path):
    marker = str(tmp_path / ".stop-x")
    request = StopRequest(marker, every=3600)
    assert not request.is_set()
    request_stop(marker)
    assert not request.is_set()  # not looked for again yet
    assert StopRequest(marker, every=3600).is_set()


def test_a_marker_that_cannot_be_written_is_logged_not_raised(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    request_stop(str(blocker / ".stop-x"))  # its folder is a file
    assert "cannot write the stop marker" in caplog.text
