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


@pytest.mark.integration
def test_prism_listens_on_loopback_only():
    """The job, artifact and worker services (one port) are not reachable from the network.
    Beam's own Prism binds every interface; `wirestream setup` builds it bound to loopback."""
    import socket
    import subprocess
    import time

    from pipeline.services.runners import prism_path
    from tests.support.processes import listening, loopback_only

    binary = prism_path()
    if not binary.exists():
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"Prism not built at {binary}")
    with socket.socket() as probe:  # the check itself sees a socket open to the network
        probe.bind(("0.0.0.0", 0))
        probe.listen()
        assert not loopback_only(listening(os.getpid()))
        port = probe.getsockname()[1]
    prism = subprocess.Popen(
        [str(binary), f"--job_port={port}", "--serve_http=false"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not listening(prism.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        addresses = listening(prism.pid)
        assert ("127.0.0.1", port) in addresses
        assert loopback_only(addresses), addresses
    finally:
        prism.kill()
        prism.wait()
