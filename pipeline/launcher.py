"""Run a pipeline so that Ctrl-C stops it cleanly.

A terminal's Ctrl-C reaches every process in its foreground group, Prism
included, which would die at once and drop what is in flight. So the pipeline
runs in a child process in its own session; the parent turns the first Ctrl-C
(or SIGTERM) into a drain request: the child stops polling, gives in-flight
articles ``grace`` seconds to reach Elasticsearch, then cancels the job. A second
Ctrl-C kills the child and its runner at once.

Kill means stop: if the CLI dies, even by SIGKILL to its process group, the child
gets a parent-death signal and kills its own group (itself, the runner and any
workers); when the child ends, however it ends, the CLI sweeps that group too, so
nothing is left behind. A child that dies of a signal (a crash) makes the CLI exit
non-zero, naming the signal.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from pipeline.reconcile import check, format_sink, reconcile

log = logging.getLogger(__name__)

# Set in the pipeline's process when a stop was requested; pollers check it.
DRAINING = threading.Event()


def _run_job(run: Callable[[], object], grace: float) -> None:
    """Start the job, then wait for it to finish or for a drain request."""
    signal.signal(signal.SIGTERM, lambda *_: DRAINING.set())
    signal.signal(signal.SIGINT, lambda *_: DRAINING.set())
    result = run()
    finished = threading.Event()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            result.wait_until_finish()
        except BaseException as exc:  # reported by the main thread below
            errors.append(exc)
        finally:
            finished.set()

    threading.Thread(target=wait, name="wait-for-job", daemon=True).start()
    drain_started = None
    while not finished.wait(0.5):
        if DRAINING.is_set() and drain_started is None:
            drain_started = time.monotonic()
            log.warning("stopping: no new polls; flushing in-flight articles for %.0fs", grace)
        if drain_started is not None and time.monotonic() - drain_started > grace:
            log.warning("flush window over; cancelling the job")
            report_counters(result)
            result.cancel()
            return
    if errors:
        raise errors[0]
    totals = report_counters(result)
    if "to_index" in totals and not getattr(result, "reconciled", False):
        sink = reconcile(
            totals["to_index"],
            totals.get("indexed", 0),
            totals.get("index_superseded", 0),
            totals.get("dead_letters.index", 0),
        )
        print(format_sink(sink), flush=True)
        check(sink, "see the log for the failing stage")


def report_counters(result) -> dict[str, int]:
    """Print the job's ``wirestream`` counters (committed or attempted) on one line each."""
    totals: dict[str, int] = {}
    try:
        counters = result.metrics().query()["counters"]
    except Exception as exc:  # a runner without metrics must not fail the run
        log.info("no metrics from the runner: %s", exc)
        return totals
    for counter in counters:
        key = counter.key.metric
        if not key.namespace.startswith("wirestream"):
            continue
        name = key.name if key.namespace == "wirestream" else f"{key.namespace[11:]}.{key.name}"
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[name] = totals.get(name, 0) + (value or 0)
    if totals:
        print(
            "pipeline counters: " + ", ".join(f"{k}={v}" for k, v in sorted(totals.items())),
            flush=True,
        )
    return totals


PR_SET_PDEATHSIG = 1
PARENT_DIED = signal.SIGUSR1


def _kill_own_group(*_args) -> None:
    os.killpg(0, signal.SIGKILL)


def die_with_parent(parent: int) -> None:
    """Kill this process's group when ``parent`` dies: Linux's parent-death signal, and a
    watchdog thread that also covers other systems and a parent that died just before."""
    signal.signal(PARENT_DIED, _kill_own_group)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DIED), 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.error("the wirestream CLI is gone; stopping the pipeline and its runner")
        _kill_own_group()

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _child(run: Callable[[], object], grace: float, parent: int) -> None:
    os.setsid()  # out of the terminal's foreground group: Ctrl-C goes to the parent only
    die_with_parent(parent)
    faulthandler.enable()  # a crash in native code prints where it happened
    code = 0
    try:
        _run_job(run, grace)
    except BaseException as exc:
        log.error("pipeline failed: %s", exc)
        code = 1
    _stop_descendants()
    os._exit(code)


def _stop_descendants(timeout: float = 15) -> None:
    """Stop the processes this one started (the runner) and wait for them to exit.

    A forked child skips atexit hooks, so Beam would not stop Prism for us.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # none left
        if pid == 0:
            time.sleep(0.1)
    log.warning("runner processes still running after %.0fs", timeout)


def run_supervised(
    run: Callable[[], object], grace: float, on_tick: Callable[[], None] | None = None
) -> int:
    """Run ``run()`` (starts a job, returns its result) in a child; return the exit code.

    ``on_tick`` is called about once a second while the child runs (progress display).
    """
    context = multiprocessing.get_context("fork")
    child = context.Process(
        target=_child, args=(run, grace, os.getpid()), name="wirestream-pipeline"
    )
    child.start()
    interrupts = 0

    def forward(signum, _frame) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            print(
                f"\nstopping: flushing in-flight work (up to {grace:.0f}s); "
                "press Ctrl-C again to abort",
                flush=True,
            )
            os.kill(child.pid, signal.SIGTERM)
        else:
            print("\naborting", flush=True)
            os.killpg(child.pid, signal.SIGKILL)

    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, forward) for s in stops}
    try:
        while child.is_alive():
            child.join(timeout=1.0)
            if on_tick is not None and child.is_alive():
                on_tick()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _sweep(child.pid)
    code = child.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        print(f"error: the pipeline process died of {name}", file=sys.stderr, flush=True)
        return 1
    return code if code is not None else 1


def _sweep(group: int) -> None:
    """SIGKILL whatever is left in the child's process group (a runner it did not stop)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
