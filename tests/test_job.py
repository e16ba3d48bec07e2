"""pipeline/job.py: a job's phases and how its end is reported (counters read once, the
sink reconciled once). The whole runs are in test_stream.py, test_backfill.py and
test_lifecycle.py."""

import json

import pytest

from pipeline.config import Settings
from pipeline.job import BackfillEnd, Job, JobEnd, run_job
from transforms.index.reconcile import ReconciliationError

W = "wirestream"


def _counters(entered: int, acknowledged: int, **more: int) -> dict[tuple[str, str], int]:
    counters = {(W, "to_index"): entered, (W, "indexed"): acknowledged, (W, "read"): entered}
    return counters | {(W, name): value for name, value in more.items()}


def test_a_streams_end_prints_its_counters_and_sink_and_fails_on_a_gap(capsys):
    JobEnd().ended(_counters(5, 5))
    out = capsys.readouterr().out
    assert "pipeline counters: indexed=5, read=5, to_index=5" in out
    assert "sink: 5 entered = 5 acknowledged" in out
    with pytest.raises(ReconciliationError, match="2 documents entered"):
        JobEnd().ended(_counters(5, 3))
    assert "GAP: +2 unaccounted for" in capsys.readouterr().out


def test_a_drained_stop_prints_the_counters_without_reconciling(capsys):
    JobEnd().stopped(_counters(5, 3))  # the cancel that follows cuts the rest short
    assert "pipeline counters: indexed=3" in capsys.readouterr().out


def test_a_backfills_end_prints_and_writes_its_summary_once(tmp_path, capsys):
    summary = tmp_path / "summary.json"
    end = BackfillEnd(Settings(), lambda: [4], True, progress=False, summary_path=str(summary))
    end.building()
    end.ended(_counters(4, 3, index_superseded=1))
    out = capsys.readouterr().out
    assert "backfill finished in" in out and "indexed 3" in out
    assert out.count("sink: 4 entered = 3 acknowledged") == 1
    written = json.loads(summary.read_text())
    assert written["sink"]["gap"] == 0 and written["indexed"] == 3 and written["seconds"] >= 0
    with pytest.raises(ReconciliationError, match="re-run the backfill"):
        end.ended(_counters(4, 2))


def test_a_job_whose_node_is_unreachable_ends_in_its_prepare_phase():
    built = []
    settings = Settings().with_overrides(elasticsearch={"url": "http://127.0.0.1:1"})
    job = Job("stream", settings, built.append, JobEnd(), grace=1)
    with pytest.raises(SystemExit, match=r"cannot reach Elasticsearch at http://127.0.0.1:1"):
        run_job(job, ["--runner=PrismRunner"])
    assert built == []  # nothing ran
