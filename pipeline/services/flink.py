"""Manage a local Apache Flink session cluster for wirestream (stdlib only).

``wirestream flink start`` builds the Beam job server from Maven parts
(``deploy/flink/job-server/pom.xml``; Maven Central as reached here serves no job-server
jar for the SDK's Beam version), then starts on 127.0.0.1, each detached in its own
session: a Flink JobManager and one single-slot TaskManager per core (started from the
same jars), the Beam job server pointed at them, and a Python SDK worker pool (the
venv's Python) that runs the pipeline's DoFns.

One TaskManager per slot, not one with N slots: Beam's Flink runner shares one Python
SDK worker among a TaskManager's slots (measured: with 2 slots and
``--sdk_worker_parallelism=2`` one Python process did all the work of both slots), so a
JVM per slot is what gives every core its own Python process. ``stop`` stops them all;
``status`` says what runs. Logs and state live in ``<cache>/flink/``.

Beam does not promise that a 2.62 job server works with the 2.77 SDK; ``tests/test_flink.py``
is the guard. The day a matching job server is served, change ``JOB_SERVER_BEAM``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.config import REPO_ROOT
from pipeline.services.beam_patch import PatchError, build_patch_jar
from pipeline.services.daemons import (
    alive,
    file_lock,
    get_json,
    launch_detached,
    log_tail,
    port_in_use,
    read_json_file,
)
from pipeline.services.local_es import java_major
from transforms.paths import cache_dir

log = logging.getLogger(__name__)

JOB_SERVER_BEAM = "2.62.0"
FLINK_VERSION = "1.19"
HOST = "127.0.0.1"
JAVA_MAJORS = (17, 11)  # the Java versions Flink 1.19 supports, preferred first
POM = REPO_ROOT / "deploy" / "flink" / "job-server" / "pom.xml"
# Flink's own launch scripts pass these on Java 17 (env.java.opts.all in its default config).
JAVA_OPENS = [
    "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    *(
        f"--add-opens=java.base/{package}=ALL-UNNAMED"
        for package in (
            "java.lang",
            "java.net",
            "java.io",
            "java.nio",
            "sun.nio.ch",
            "java.lang.reflect",
            "java.text",
            "java.time",
            "java.util",
            "java.util.concurrent",
            "java.util.concurrent.atomic",
            "java.util.concurrent.locks",
        )
    ),
]


METRICS_SECONDS = 2.0  # how often the REST API's metrics are refreshed
TASK_HEAP_MB = 384  # a TaskManager's task heap: the Java side only moves bytes to Python
TM_HEAP_MB = 128 + TASK_HEAP_MB  # framework heap + task heap = -Xmx


class FlinkError(RuntimeError):
    """A local Flink operation failed; the message says what to do."""


@dataclass(frozen=True)
class Ports:
    """The local cluster's ports on 127.0.0.1, all below Linux's ephemeral range (32768 and
    up), where any process binding port 0 may take them: the worker pool's 50000 was
    taken during a start-up in a test run, and the pool could not listen."""

    rest: int = 8081
    rpc: int = 6123
    job: int = 8099
    artifact: int = 8098
    worker_pool: int = 8097


def flink_dir() -> Path:
    """Where the cluster's config, logs and state live."""
    return cache_dir() / "flink"


def job_server_dir() -> Path:
    """Where the job server is built (its pathing jar and ``lib/``)."""
    return cache_dir() / f"flink-job-server-{JOB_SERVER_BEAM}"


def job_server_jar() -> Path:
    """The job server's pathing jar (exists once built)."""
    return job_server_dir() / "target" / f"wirestream-flink-job-server-{JOB_SERVER_BEAM}.jar"


def build_job_server(force: bool = False) -> Path:
    """Build the job server with Maven (about a minute on a cold cache); return its jar."""
    jar = job_server_jar()
    if jar.exists() and (jar.parent / "patch-inputs").is_dir() and not force:
        return jar
    mvn = shutil.which("mvn")
    if mvn is None:
        raise FlinkError("Maven (`mvn`) is not on PATH; install it (apt-get install maven)")
    workdir = job_server_dir()
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(POM, workdir / "pom.xml")
    cmd = [mvn, "-B", "-q", "package"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if proc.returncode != 0 or not jar.exists():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise FlinkError(f"`{' '.join(cmd)}` in {workdir} failed (exit {proc.returncode}):\n{tail}")
    return jar


def build(force: bool = False) -> tuple[Path, Path]:
    """Build the job server and the project's patch of its runner; return both jars."""
    jar = build_job_server(force)
    try:
        return jar, build_patch_jar(jar.parent, find_java())
    except PatchError as exc:
        raise FlinkError(str(exc)) from None


def find_java() -> Path:
    """Return a ``java`` of a version Flink 1.19 runs on (``$FLINK_JAVA_HOME`` first)."""
    homes = [Path(os.environ["FLINK_JAVA_HOME"])] if os.environ.get("FLINK_JAVA_HOME") else []
    if not homes:
        jvm = Path("/usr/lib/jvm")
        homes = sorted(jvm.iterdir()) if jvm.is_dir() else []
        if os.environ.get("JAVA_HOME"):
            homes.insert(0, Path(os.environ["JAVA_HOME"]))
    found: dict[int | None, Path] = {}
    for home in homes:
        if (home / "bin" / "java").is_file():
            found.setdefault(java_major(home), home / "bin" / "java")
    for major in JAVA_MAJORS:
        if major in found:
            return found[major]
    raise FlinkError(
        f"Flink {FLINK_VERSION} needs Java {' or '.join(map(str, JAVA_MAJORS))}; found "
        f"{sorted(m for m in found if m)} (install openjdk-17 or set FLINK_JAVA_HOME)"
    )


def render_config(ports: Ports, slots: int, task_heap_mb: int = TASK_HEAP_MB) -> str:
    """Return ``flink-conf.yaml`` for a session cluster of single-slot TaskManagers on
    127.0.0.1 (``slots`` is the job's default parallelism).

    Started without Flink's shell scripts, the TaskManager needs every memory
    component explicit (the scripts would derive them); the JVM flags below match.
    """
    settings = {
        "jobmanager.rpc.address": HOST,
        "jobmanager.bind-host": HOST,
        "jobmanager.rpc.port": ports.rpc,
        "rest.address": HOST,
        "rest.bind-address": HOST,
        "rest.port": ports.rest,
        "taskmanager.host": HOST,
        "taskmanager.bind-host": HOST,
        "taskmanager.numberOfTaskSlots": 1,
        "taskmanager.cpu.cores": 1,
        # the REST API's metrics (a stream's counters) are at most 2 s old, not 10, so a
        # stopping stream sees its in-flight work written within seconds
        "metrics.fetcher.update-interval": int(METRICS_SECONDS * 1000),
        "parallelism.default": slots,
        "taskmanager.memory.framework.heap.size": "128m",
        "taskmanager.memory.task.heap.size": f"{task_heap_mb}m",
        "taskmanager.memory.framework.off-heap.size": "128m",
        "taskmanager.memory.task.off-heap.size": "0m",
        "taskmanager.memory.managed.size": "128m",
        "taskmanager.memory.network.min": "64m",
        "taskmanager.memory.network.max": "64m",
        "taskmanager.memory.jvm-metaspace.size": "256m",
        "taskmanager.memory.jvm-overhead.min": "192m",
        "taskmanager.memory.jvm-overhead.max": "192m",
        "io.tmp.dirs": str(flink_dir() / "tmp"),
    }
    return "".join(f"{key}: {value}\n" for key, value in settings.items())


# --------------------------------------------------------------------------- processes


def _state_file() -> Path:
    return flink_dir() / "state.json"


def _read_state() -> dict:
    return read_json_file(_state_file())


def _alive(pid: int | None) -> bool:
    return alive(pid)


def _overview(ports: Ports) -> dict | None:
    return get_json(f"http://{HOST}:{ports.rest}/overview")


def _jobs(rest: str) -> list[dict] | None:
    """Return the jobs of the cluster at ``rest`` (None when it does not answer)."""
    answer = get_json(f"http://{rest}/jobs/overview", timeout=5)
    return None if answer is None else answer.get("jobs", [])


def _lock():
    return file_lock(flink_dir() / ".lock")


def _launch(name: str, cmd: list[str], env: dict | None = None) -> int:
    return launch_detached(cmd, flink_dir() / "log" / f"{name}.log", flink_dir(), env).pid


def _log_tail(name: str, lines: int = 15) -> str:
    return log_tail(flink_dir() / "log" / f"{name}.log", lines, "(no log)")


def _wait(what: str, name: str, pid: int, ready, deadline: float) -> None:
    while time.monotonic() < deadline:
        if ready():
            return
        if not _alive(pid):
            raise FlinkError(
                f"the {what} exited during start-up; {flink_dir()}/log/{name}.log:\n"
                + _log_tail(name)
            )
        time.sleep(0.5)
    raise FlinkError(f"the {what} was not ready in time; see {flink_dir()}/log/{name}.log")


def start(slots: int | None = None, ports: Ports = Ports(), timeout: float = 180) -> dict:
    """Start the local cluster (or return the running one's state) once every part is ready."""
    deadline = time.monotonic() + timeout
    slots = slots or os.cpu_count() or 1
    with _lock():
        state = _read_state()
        if state and all(_alive(pid) for pid in state["pids"].values()):
            return state
        _stop_parts(state)
        busy = [f"{name} {port}" for name, port in asdict(ports).items() if port_in_use(port)]
        if busy:
            raise FlinkError(
                f"port(s) in use on {HOST}: {', '.join(busy)}; stop what listens there "
                "(`ss -ltnp`) or pass other ports"
            )
        java = str(find_java())
        jar, patch = build()
        lib = f"{patch}:{jar.parent / 'lib'}/*"  # the patched classes first
        for sub in ("conf", "log", "tmp"):
            (flink_dir() / sub).mkdir(parents=True, exist_ok=True)
        conf = flink_dir() / "conf"
        (conf / "flink-conf.yaml").write_text(render_config(ports, slots))
        pids: dict[str, int] = {}
        state = {"pids": pids, "slots": slots, "ports": asdict(ports), "started": time.time()}
        try:
            pids["jobmanager"] = _launch(
                "jobmanager",
                [
                    java,
                    *JAVA_OPENS,
                    "-Xmx512m",
                    "-cp",
                    lib,
                    "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
                    "--configDir",
                    str(conf),
                ],
            )
            _wait(
                "JobManager",
                "jobmanager",
                pids["jobmanager"],
                lambda: _overview(ports) is not None,
                deadline,
            )
            for number in range(1, slots + 1):
                pids[f"taskmanager-{number}"] = _launch(
                    f"taskmanager-{number}",
                    [
                        java,
                        *JAVA_OPENS,
                        f"-Xmx{TM_HEAP_MB}m",
                        f"-Xms{TM_HEAP_MB}m",
                        "-XX:MaxDirectMemorySize=192m",
                        "-XX:MaxMetaspaceSize=256m",
                        "-cp",
                        lib,
                        "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
                        "--configDir",
                        str(conf),
                    ],
                )
            _wait(
                "TaskManagers",
                "taskmanager-1",
                pids["taskmanager-1"],
                lambda: (_overview(ports) or {}).get("slots-total") == slots,
                deadline,
            )
            pids["job_server"] = _launch(
                "job-server",
                [
                    java,
                    *JAVA_OPENS,
                    "-Xmx512m",
                    "-cp",
                    f"{patch}:{jar}",
                    "org.apache.beam.runners.flink.FlinkJobServerDriver",
                    f"--flink-master={HOST}:{ports.rest}",
                    f"--job-host={HOST}",
                    f"--job-port={ports.job}",
                    f"--artifact-port={ports.artifact}",
                    "--expansion-port=-1",  # no expansion service (none is used)
                ],
            )
            _wait(
                "Beam job server",
                "job-server",
                pids["job_server"],
                lambda: port_in_use(ports.job),
                deadline,
            )
            pids["worker_pool"] = _launch(
                "worker-pool",
                [
                    sys.executable,
                    "-m",
                    "pipeline.services.worker_pool",
                    f"--port={ports.worker_pool}",
                ],
            )
            _wait(
                "Python worker pool",
                "worker-pool",
                pids["worker_pool"],
                lambda: port_in_use(ports.worker_pool),
                deadline,
            )
        except BaseException:
            _stop_parts(state)
            raise
        _state_file().write_text(json.dumps(state))
        return state


def _stop_parts(state: dict, timeout: float = 30) -> list[str]:
    """Stop the state's processes (workers first), SIGKILL after ``timeout``; return names."""
    known = state.get("pids", {})
    order = ["worker_pool", "job_server", *sorted(n for n in known if n.startswith("task"))]
    pids = {name: known.get(name) for name in [*order, "jobmanager"]}
    order.append("jobmanager")
    running = [name for name in order if _alive(pids[name])]
    for name in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pids[name], signal.SIGTERM)  # its own session: the SDK workers too
    deadline = time.monotonic() + timeout
    while any(_alive(pids[n]) for n in running) and time.monotonic() < deadline:
        time.sleep(0.3)
    for name in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pids[name], signal.SIGKILL)
    _state_file().unlink(missing_ok=True)
    return running


def stop() -> list[str]:
    """Cancel the cluster's running jobs (so their CLIs end), then stop the cluster;
    return the parts that were running."""
    with _lock():
        state = _read_state()
        if state:
            rest = f"{HOST}:{state['ports']['rest']}"
            for name in running_jobs(rest):
                print(f"cancelling running job {name}", flush=True)
                cancel_flink_job(rest, name)
        return _stop_parts(state)


def running_jobs(rest: str) -> list[str]:
    """Return the names of the jobs not yet ended on the cluster at ``rest``."""
    return [job["name"] for job in _jobs(rest) or [] if job["state"] not in _ENDED]


def status() -> dict | None:
    """Return the running cluster's state (slots, ports, jobs) or None when it is down."""
    state = _read_state()
    if not state or not all(_alive(pid) for pid in state["pids"].values()):
        return None
    overview = _overview(Ports(**state["ports"])) or {}
    return {**state, "jobs_running": overview.get("jobs-running"), "flink": overview}


def runner_args(streaming: bool) -> list[str]:
    """Beam arguments that submit to the running local cluster, using all its slots."""
    state = status()
    if state is None:
        raise FlinkError("the local Flink cluster is not running: `wirestream flink start`")
    ports, slots = Ports(**state["ports"]), state["slots"]
    return [
        "--runner=PortableRunner",
        f"--job_endpoint={HOST}:{ports.job}",
        f"--artifact_endpoint={HOST}:{ports.artifact}",
        "--environment_type=EXTERNAL",
        f"--environment_config={HOST}:{ports.worker_pool}",
        f"--parallelism={slots}",
        "--sdk_worker_parallelism=1",  # per TaskManager, which has one slot
    ] + (["--streaming"] if streaming else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wirestream flink")
    parser.add_argument("action", choices=["start", "stop", "status", "build"])
    parser.add_argument("--slots", type=int, help="task slots (default: one per core)")
    args = parser.parse_args(argv)
    if args.action == "build":
        jar, patch = build()
        print(f"job server: {jar}\nrunner patch: {patch}")
        return 0
    if args.action == "start":
        started = start(args.slots)
        ports = started["ports"]
        print(
            f"Flink {FLINK_VERSION} session cluster on {HOST}:{ports['rest']} with "
            f"{started['slots']} slots; Beam job server {JOB_SERVER_BEAM} on :{ports['job']}; "
            f"Python worker pool on :{ports['worker_pool']}; logs in {flink_dir() / 'log'}"
        )
        return 0
    if args.action == "stop":
        stopped = stop()
        print(f"stopped {', '.join(stopped)}" if stopped else "the local Flink cluster was off")
        return 0
    state = status()
    if state is None:
        print("the local Flink cluster is not running")
        return 1
    print(
        f"running: {state['slots']} slots, {state['jobs_running']} job(s) running, "
        f"pids {state['pids']}"
    )
    return 0


# --------------------------------------------------------------------------- cancelling


def rest_address(beam_args: list[str]) -> str | None:
    """Return the Flink REST address (HOST:PORT) a run's Beam arguments submit to, if any:
    ``--flink_master``, or the local cluster's when they name its job server."""
    values = dict(a[2:].split("=", 1) for a in beam_args if a.startswith("--") and "=" in a)
    master = values.get("flink_master")
    if master and not master.startswith("["):  # [local], [auto]: no cluster to call
        return master.removeprefix("http://")
    state = _read_state()
    if state and values.get("job_endpoint") == f"{HOST}:{state['ports']['job']}":
        return f"{HOST}:{state['ports']['rest']}"
    return None


def cancel_flink_job(rest: str, beam_job_id: str, timeout: float = 30) -> bool:
    """Cancel the Flink job of Beam job ``beam_job_id`` at ``rest``; True once it is gone.

    Beam's job server cancels only its own submission when the job runs on a session
    cluster: the Flink job would keep running (measured), so we ask Flink's REST API.
    """
    name = flink_name(beam_job_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = _jobs(rest)
        if jobs is None:
            return False
        live = [j for j in jobs if j["name"] == name and j["state"] not in _ENDED]
        if not live:
            return True
        for job in live:
            if job["state"] != "CANCELLING":
                request = urllib.request.Request(
                    f"http://{rest}/jobs/{job['jid']}?mode=cancel", method="PATCH"
                )
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(request, timeout=5).close()
        time.sleep(1)
    return False


_ENDED = ("FINISHED", "CANCELED", "FAILED")


def flink_name(beam_job_id: str) -> str:
    """A Beam job's Flink name: the Beam job id up to its first ``_``."""
    return beam_job_id.split("_", 1)[0]


def flink_job(rest: str, beam_job_id: str) -> dict | None:
    """Return the newest Flink job of Beam job ``beam_job_id`` at ``rest`` (None if none)."""
    jobs = [job for job in _jobs(rest) or [] if job["name"] == flink_name(beam_job_id)]
    return max(jobs, key=lambda job: job["start-time"]) if jobs else None


def user_counters(rest: str, beam_job_id: str) -> dict[tuple[str, str], int]:
    """Return the job's user counters by (namespace, name) from Flink's REST API: while it
    runs, from the Flink metrics Beam's runner updates after every bundle; once it ended,
    from the accumulator the runner fills at the end. (The 2.62 job service reports
    counters only for a finished job.) Raises when Flink has none."""
    job = flink_job(rest, beam_job_id)
    if job is None:
        raise FlinkError(f"no Flink job for {beam_job_id} at {rest}")
    if job["state"] in _ENDED:
        return _accumulated_counters(rest, job["jid"])
    return _live_counters(rest, job["jid"])


def _live_counters(rest: str, jid: str) -> dict[tuple[str, str], int]:
    """Sum the runner's Flink metrics ``<operator>.<namespace>_<name>`` over subtasks."""
    totals: dict[tuple[str, str], int] = {}
    for vertex in (get_json(f"http://{rest}/jobs/{jid}") or {}).get("vertices", []):
        base = f"http://{rest}/jobs/{jid}/vertices/{vertex['id']}/subtasks/metrics"
        names = [m["id"] for m in get_json(base) or [] if ".wirestream" in m["id"]]
        if not names:
            continue
        query = urllib.parse.urlencode({"get": ",".join(names), "agg": "sum"})
        for metric in get_json(f"{base}?{query}") or []:
            key = counter_key(metric["id"])
            with contextlib.suppress(KeyError, ValueError):  # a distribution has no sum
                totals[key] = totals.get(key, 0) + int(float(metric["sum"]))
    return totals


#: Counter namespaces ``wirestream.<word>`` whose word holds a ``_`` (Flink's metric name
#: joins namespace and name with ``_``); ``tests/test_flink_counters.py`` keeps it whole.
UNDERSCORED_NAMESPACES = ("wirestream.extracted_by", "wirestream.entities_skipped")


def counter_key(metric_id: str) -> tuple[str, str]:
    """Return (namespace, name) of the Beam counter behind a Flink metric id
    ``<operator>.<namespace>_<name>``."""
    joined = "wirestream" + metric_id.rsplit(".wirestream", 1)[1]
    for namespace in UNDERSCORED_NAMESPACES:
        if joined.startswith(namespace + "_"):
            return namespace, joined[len(namespace) + 1 :]
    namespace, _, name = joined.partition("_")
    return namespace, name


def _accumulated_counters(rest: str, jid: str) -> dict[tuple[str, str], int]:
    """Decode the runner's ``__metricscontainers`` accumulator (Beam MonitoringInfos)."""
    from apache_beam.metrics import monitoring_infos
    from apache_beam.portability.api import metrics_pb2
    from google.protobuf import json_format

    answer = get_json(f"http://{rest}/jobs/{jid}/accumulators") or {}
    totals: dict[tuple[str, str], int] = {}
    for accumulator in answer.get("user-task-accumulators", []):
        if accumulator["name"] != "__metricscontainers":
            continue
        for raw in json.loads(accumulator["value"])["metrics"].get("attempted", []):
            if raw["urn"] == monitoring_infos.USER_COUNTER_URN:
                info = json_format.ParseDict(raw, metrics_pb2.MonitoringInfo())
                key = (info.labels["NAMESPACE"], info.labels["NAME"])
                totals[key] = totals.get(key, 0) + monitoring_infos.extract_counter_value(info)
    return totals


class ClusterResult:
    """A job result whose ``cancel`` also cancels the job on the Flink cluster, and whose
    counters come from Flink (:func:`user_counters`), refreshed every few seconds."""

    counters_every = METRICS_SECONDS

    def __init__(self, result, rest: str) -> None:
        self.result, self.rest = result, rest
        self._counters: tuple[float, dict[tuple[str, str], int]] | None = None

    def user_counters(self) -> dict[tuple[str, str], int]:
        """The job's counters, asked of Flink at most once per refresh period."""
        now = time.monotonic()
        if self._counters is None or now - self._counters[0] >= METRICS_SECONDS / 2:
            self._counters = (now, user_counters(self.rest, self.result._job_id))
        return self._counters[1]

    def cancel(self):
        # Flink first: the job service's own cancel can block, and would leave the job running
        cancelled = cancel_flink_job(self.rest, self.result._job_id)
        try:
            return self.result.cancel()
        except Exception as exc:  # the job service may know the job is over by now
            if not cancelled:
                raise
            log.info("the job service's cancel: %s", exc)
            return self.result.state

    def __getattr__(self, name: str):
        return getattr(self.result, name)


def on_cluster(result, beam_args: list[str]):
    """Return ``result``, wrapped so that cancelling it cancels its Flink job too."""
    rest = rest_address(beam_args)
    return ClusterResult(result, rest) if rest and hasattr(result, "_job_id") else result
