"""Run a pipeline so that Ctrl-C stops it cleanly.

A terminal's Ctrl-C reaches every process in its foreground group, Prism
included, which would die at once and drop what is in flight. So the pipeline
runs in a child process in its own session; the parent turns the first Ctrl-C
(or SIGTERM) into a drain request: the child stops polling, gives in-flight
articles ``grace`` seconds to reach Elasticsearch, then cancels the job. A second
Ctrl-C cancels the job at once (a job on a cluster too) and kills the child and its
runner. When the DoFns run on a cluster (Flink), they cannot see the drain request, so
the first Ctrl-C cancels the job there after the same flush window: what was in flight
is redone by the next run (documents are idempotent, a backfill resumes).

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
from typing import TYPE_CHECKING

import apache_beam as beam
from apache_beam.runners.runner import PipelineResult

from pipeline.progress import read_counters, wirestream_counters
from transforms.index.reconcile import TO_INDEX, failures, sink_of
from transforms.lifecycle import DRAINING

if TYPE_CHECKING:
    from pipeline.job import JobEnd

log = logging.getLogger(__name__)

# Set on a second stop request: cancel the job now.
ABORTING = threading.Event()
# How to cancel the running job (set once it started); used on abort and parent death.
_cancel_job: Callable[[], object] | None = None


def _stop_requested(*_args) -> None:
    (ABORTING if DRAINING.is_set() else DRAINING).set()


def cancel_job(timeout: float = 15) -> None:
    """Cancel the running job (if any) within ``timeout`` seconds; never raise."""
    if _cancel_job is None:
        return
    worker = threading.Thread(target=_cancel_quietly, args=(_cancel_job,), daemon=True)
    worker.start()
    worker.join(timeout)


def _cancel_quietly(cancel: Callable[[], object]) -> None:
    try:
        cancel()
    except Exception as exc:  # the job may be over already
        log.info("cancelling the job: %s", exc)


def _run_job(
    run: Callable[[], PipelineResult],
    grace: float,
    on_drain: Callable[[], None] | None,
    end: JobEnd,
) -> None:
    """Start the job, then wait for it to finish or for a drain request (``on_drain`` is
    called when one arrives); ``end`` reports how it ended."""
    global _cancel_job
    signal.signal(signal.SIGTERM, _stop_requested)
    signal.signal(signal.SIGINT, _stop_requested)
    result = run()
    _cancel_job = result.cancel
    end.started(result)
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
    settled = Settled(result)
    while not finished.wait(0.5):
        if DRAINING.is_set() and drain_started is None:
            drain_started = time.monotonic()
            log.warning("stopping: no new polls; writing what is in flight (at most %.0fs)", grace)
            if on_drain is not None:
                on_drain()
        if ABORTING.is_set():
            log.warning("aborting: cancelling the job")
            end.failed()
            cancel_job()
            raise SystemExit(130)
        if drain_started is None:
            continue
        if settled():
            log.warning("stopping: everything in flight is written; cancelling the job")
        elif time.monotonic() - drain_started > grace:
            log.warning("flush window over; cancelling the job")
        else:
            continue
        end.stopped(read_counters(result))
        quiet_cancel(result)
        return
    if errors:
        end.failed()
        raise errors[0]
    end.ended(read_counters(result))


#: A stopping stream ends once every feed item its polls emitted has reached an end
#: (written, superseded, skipped or dead-lettered: :func:`items_in_flight`), every
#: document that entered the sink is accounted for, and its counters have been still
#: for this long. A runner without counters mid-run waits out the flush window.
SETTLED_SECONDS = 2.0

#: Failures that do not end a feed item: a feed's or sitemap's poll, the sink (its
#: documents are counted by ``to_index``) and the side indices.
NOT_ITEM_FAILURES = ("poll:", "sitemap:", "index:", "stats:", "stories:")


def items_in_flight(totals: dict[str, int]) -> int | None:
    """Return how many feed items are between their poll and an end (None for a job
    that polls nothing): a repeat the dedupe dropped, a skip, a failure or the sink."""
    if "feed_items" not in totals:
        return None
    entered = totals["feed_items"] - totals.get("items_duplicate", 0)
    skipped = sum(value for key, value in totals.items() if key.startswith("skipped."))
    failed = sum(
        value for key, value in failures(totals).items() if not key.startswith(NOT_ITEM_FAILURES)
    )
    ended = totals.get(TO_INDEX, 0) + skipped + failed
    return entered - ended


class Settled:
    """Whether a draining job has written what it had in flight (:data:`SETTLED_SECONDS`)."""

    def __init__(self, result: PipelineResult) -> None:
        self.result = result
        self.last: dict[str, int] | None = None
        self.since = time.monotonic()
        # counters that arrive every few seconds must stay still longer than that
        self.still = max(SETTLED_SECONDS, 2 * getattr(result, "counters_every", 0) + 1)

    def __call__(self) -> bool:
        try:  # Prism's attempted counters mid-run are its open bundles' only
            totals = wirestream_counters(self.result, committed=True)
        except Exception:  # a runner without counters mid-run: its flush window decides
            return False
        now = time.monotonic()
        if totals != self.last:
            self.last, self.since = totals, now
            return False
        pending = items_in_flight(totals)
        return (
            now - self.since >= self.still
            and sink_of(totals)["gap"] <= 0
            and (pending is None or pending <= 0)
        )


def quiet_cancel(result: PipelineResult) -> None:
    """Cancel the job without the runner's noise: the bundles the cancel cuts short fail
    by design, and their workers' errors are not ours."""
    for name in ("apache_beam", "grpc"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    threading.excepthook = _cancelled_thread  # LOOPBACK workers' streams close under them
    result.cancel()


def _cancelled_thread(args) -> None:
    log.debug("after the cancel, thread %s: %s", args.thread, args.exc_value)


class BackgroundRun(PipelineResult):
    """A job on a runner whose ``run()`` returns only at the end (Beam's DirectRunner),
    run in a thread so that the launcher can watch for Ctrl-C meanwhile. It cannot be
    cancelled: its worker processes stop with this process; what they had in flight is
    redone by the next run (documents are idempotent, a backfill resumes)."""

    def __init__(self, pipeline: beam.Pipeline) -> None:
        super().__init__(beam.runners.runner.PipelineState.RUNNING)
        self._done = threading.Event()
        self._result: PipelineResult | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, args=(pipeline,), name="job", daemon=True).start()

    def _run(self, pipeline: beam.Pipeline) -> None:
        try:
            self._result = pipeline.run()
        except BaseException as exc:  # raised to whoever waits for the job
            self._error = exc
        finally:
            self._done.set()

    @property
    def state(self):
        if not self._done.is_set():
            return beam.runners.runner.PipelineState.RUNNING
        return self._result.state if self._result else beam.runners.runner.PipelineState.FAILED

    def wait_until_finish(self, duration=None):
        if not self._done.wait(None if duration is None else duration / 1000):
            return self.state
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result.wait_until_finish()

    def cancel(self):
        log.warning("the DirectRunner cannot cancel a job: its workers stop with this process")
        return self.state

    def metrics(self):
        if self._result is None:
            raise RuntimeError("the DirectRunner reports its counters only when the job ends")
        return self._result.metrics()


def job_starter(
    build: Callable[[beam.Pipeline], None], beam_args: list[str]
) -> Callable[[], PipelineResult]:
    """Return the function ``run_supervised`` calls in its child: build the pipeline with
    ``build``, run it (on a Flink session cluster, cancellable through its REST API),
    and return its result."""

    def run() -> PipelineResult:
        from apache_beam.options.pipeline_options import PipelineOptions

        from pipeline.services.flink import on_cluster
        from pipeline.services.runners import blocking

        pipeline = beam.Pipeline(options=PipelineOptions(beam_args, save_main_session=False))
        build(pipeline)
        if blocking(beam_args):
            return BackgroundRun(pipeline)
        return on_cluster(pipeline.run(), beam_args)

    return run


ABORT_SECONDS = 20  # after a second Ctrl-C, how long the child may take to cancel the job
PR_SET_PDEATHSIG = 1
PARENT_DIED = signal.SIGUSR1


def _kill_own_group(*_args) -> None:
    cancel_job()  # a job on a cluster would outlive this process
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


def _child(
    run: Callable[[], PipelineResult],
    grace: float,
    parent: int,
    on_drain: Callable[[], None] | None,
    end: JobEnd,
) -> None:
    os.setsid()  # out of the terminal's foreground group: Ctrl-C goes to the parent only
    die_with_parent(parent)
    faulthandler.enable()  # a crash in native code prints where it happened
    code = 0
    try:
        _run_job(run, grace, on_drain, end)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
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
    run: Callable[[], PipelineResult],
    grace: float,
    on_tick: Callable[[], None] | None,
    on_drain: Callable[[], None] | None,
    end: JobEnd,
) -> int:
    """Run ``run()`` (starts a job, returns its result) in a child; return the exit code.

    ``on_tick`` is called about once a second while the child runs (progress display);
    ``on_drain`` in the child when the first stop request arrives; ``end`` reports, in
    the child, how the job ended.
    """
    context = multiprocessing.get_context("fork")
    child = context.Process(
        target=_child, args=(run, grace, os.getpid(), on_drain, end), name="wirestream-pipeline"
    )
    child.start()
    pid = child.pid
    assert pid is not None  # started
    interrupts = 0
    kill_at = None

    def forward(signum, _frame) -> None:
        nonlocal interrupts, kill_at
        interrupts += 1
        if interrupts == 1:
            print(
                f"\nstopping: flushing in-flight work (up to {grace:.0f}s); "
                "press Ctrl-C again to abort",
                flush=True,
            )
            os.kill(pid, signal.SIGTERM)
        elif kill_at is None:
            print("\naborting: cancelling the job", flush=True)
            os.kill(pid, signal.SIGTERM)  # the child cancels the job, then exits
            kill_at = time.monotonic() + ABORT_SECONDS
        else:
            kill_at = time.monotonic()

    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, forward) for s in stops}
    try:
        while child.is_alive():
            child.join(timeout=1.0)
            if kill_at is not None and time.monotonic() >= kill_at:
                os.killpg(pid, signal.SIGKILL)
            if on_tick is not None and child.is_alive():
                on_tick()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _sweep(pid)
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
