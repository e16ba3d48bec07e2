"""Which runner a run gets, and the DirectRunner's arguments (no job is run here)."""

import os

import pytest

from pipeline.services.runners import (
    RunnerError,
    blocking,
    choose_runner,
    direct_args,
    runner_args,
)


def test_the_direct_runner_gets_a_worker_per_core_and_is_recognised_in_both_spellings():
    args = runner_args([], streaming=False, runner="direct")
    assert args[: len(direct_args())] == direct_args()
    assert f"--direct_num_workers={os.cpu_count()}" in args
    assert blocking(args) and blocking(["--runner", "DirectRunner"])
    assert not blocking(runner_args(["--runner=PrismRunner"], streaming=False))


def test_a_stream_never_gets_the_direct_runner():
    assert choose_runner("prism", streaming=True) == "prism"
    with pytest.raises(RunnerError, match="batch jobs only"):
        choose_runner("direct", streaming=True)
    assert choose_runner("flink", streaming=True) == "flink"
