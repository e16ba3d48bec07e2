"""Beam runner arguments: the local Prism binary, built from the Go module proxy.

Beam's Python wheel does not carry Prism and would download it from the web; we
build the same version from the Go module proxy's source into the wirestream cache
instead (listening on loopback only: :data:`PRISM_PATCH`) and always name the runner
explicitly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from apache_beam.version import __version__ as BEAM_VERSION

from transforms.paths import cache_dir

PRISM_MODULE = "github.com/apache/beam/sdks/v2"
PRISM_PACKAGE = "./go/cmd/prism"

#: Prism listens for jobs, artifacts and its workers on every interface
#: (``net.Listen(":port")`` in internal/jobservices/server.go) and has no flag to choose
#: the address. A job service reachable from the network runs whatever pipeline it is
#: sent (a PROCESS environment runs commands on this machine), so the project builds
#: Prism with that one call bound to loopback: every client of it is local (the
#: launcher and its LOOPBACK workers dial ``localhost``).
PRISM_PATCH = (
    "go/pkg/beam/runners/prism/internal/jobservices/server.go",
    'net.Listen("tcp", fmt.Sprintf(":%d", port))',
    'net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))',
)


class RunnerError(RuntimeError):
    """A runner's binary or setting is missing; the message says how to fix it."""


def prism_path() -> Path:
    """Return where the Prism binary lives: ``$WIRESTREAM_PRISM`` or the cache."""
    override = os.environ.get("WIRESTREAM_PRISM")
    return Path(override) if override else cache_dir() / "bin" / f"prism-{BEAM_VERSION}-loopback"


def _go(go: str, *args: str, cwd: Path | None = None) -> str:
    """Run ``go args`` and return its output; a failure raises :class:`RunnerError`."""
    proc = subprocess.run([go, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RunnerError(f"go {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


def _writable_copy(source: Path, target: Path) -> None:
    """Copy ``source`` (the module cache's read-only tree) to ``target``, writable."""
    shutil.copytree(source, target, copy_function=shutil.copyfile)
    for folder, _, _ in os.walk(target):
        os.chmod(folder, 0o755)


def build_prism(force: bool = False) -> Path:
    """Build Prism at the Python SDK's version, bound to loopback (:data:`PRISM_PATCH`),
    from the Go module proxy's source; return its path."""
    target = prism_path()
    if target.exists() and not force:
        return target
    go = shutil.which("go")
    if go is None:
        raise RunnerError("Go is not installed: it is needed once to build Beam's Prism runner")
    module = json.loads(_go(go, "mod", "download", "-json", f"{PRISM_MODULE}@v{BEAM_VERSION}"))
    work = target.parent / f"prism-src-{BEAM_VERSION}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.mkdir(parents=True)
        for name in ("go.mod", "go.sum"):
            shutil.copyfile(Path(module["Dir"]) / name, work / name)
        _writable_copy(Path(module["Dir"]) / "go", work / "go")
        path, listen_any, listen_loopback = PRISM_PATCH
        source = (work / path).read_text(encoding="utf-8")
        if source.count(listen_any) != 1:
            raise RunnerError(
                f"Prism {BEAM_VERSION}'s {path} no longer has `{listen_any}`: "
                "check how it listens and update PRISM_PATCH in pipeline/services/runners.py"
            )
        (work / path).write_text(source.replace(listen_any, listen_loopback), encoding="utf-8")
        _go(go, "build", "-o", str(target), PRISM_PACKAGE, cwd=work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def prism_args(streaming: bool) -> list[str]:
    """Return the Beam arguments that run a pipeline on the local Prism binary."""
    binary = prism_path()
    if not binary.exists():
        raise RunnerError(
            f"Prism {BEAM_VERSION} is not built at {binary}: run `wirestream setup` "
            "(or deploy/local/setup.sh) once, or set WIRESTREAM_PRISM"
        )
    args = [
        "--runner=PrismRunner",
        f"--prism_location={binary}",
        "--environment_type=LOOPBACK",
        "--prism_log_level=error",  # its info/warn lines are job bookkeeping, not ours
    ]
    return args + (["--streaming"] if streaming else [])


# Beam's portable runners (Prism, Flink) bound the job's state and message streams by
# --job_server_timeout (300 s by default): a longer job fails with DEADLINE_EXCEEDED.
# A job lasts until it is stopped or its input is done, so the deadline is set far
# beyond any run; the job service's own readiness checks have their own timeouts.
JOB_SERVER_TIMEOUT = 10 * 365 * 86400


def _named(beam_args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in beam_args)


RUNNERS = ("auto", "prism", "direct", "flink")


def direct_args(workers: int | None = None) -> list[str]:
    """Return the Beam arguments of Beam's DirectRunner with one SDK worker process per
    core (``workers`` to say how many): every core without a JVM, for batch jobs only.

    Prism 2.77 starts one SDK worker per environment (its ``internal/execute.go``), and
    with LOOPBACK that worker is threads of the launching process: one core for the
    Python work however many bundles run. The DirectRunner's ``multi_processing`` mode
    starts a worker process per core and splits each stage's input among them.
    """
    return [
        "--runner=DirectRunner",
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={workers or os.cpu_count() or 1}",
    ]


def blocking(beam_args: list[str]) -> bool:
    """Return whether ``beam_args`` run on the DirectRunner, whose ``run()`` returns only
    when the job is done and whose counters are known only then."""
    runners = [a.split("=", 1)[1] for a in beam_args if a.startswith("--runner=")]
    runners += [beam_args[i + 1] for i, a in enumerate(beam_args[:-1]) if a == "--runner"]
    return any(r.lower().removesuffix("runner") in ("direct", "switchingdirect") for r in runners)


def flink_master_args(master: str, streaming: bool) -> list[str]:
    """Beam arguments for a user's own Flink cluster: Beam's FlinkRunner starts the job
    server built here (``wirestream flink build``) and submits to ``master``'s REST port;
    the Python work goes to a worker pool beside each TaskManager (localhost:50000)."""
    from pipeline.services.flink import FLINK_VERSION, build_job_server

    return [
        "--runner=FlinkRunner",
        f"--flink_master={master}",
        f"--flink_version={FLINK_VERSION}",
        f"--flink_job_server_jar={build_job_server()}",
        "--environment_type=EXTERNAL",
        "--environment_config=localhost:50000",
    ] + (["--streaming"] if streaming else [])


def choose_runner(
    runner: str | None, flink_master: str | None = None, streaming: bool = False
) -> str:
    """Return ``prism``, ``direct`` or ``flink`` for the CLI's ``--runner``. ``auto``: the
    local Flink cluster when it runs; else, for a batch job on more than one core, the
    DirectRunner with a worker process per core; else Prism."""
    if flink_master or runner == "flink":
        return "flink"
    if runner in (None, "prism", "direct"):
        if runner == "direct" and streaming:
            raise RunnerError("--runner direct runs batch jobs only: streams run on prism or flink")
        return runner or "prism"
    from pipeline.services.flink import status

    if status() is not None:
        return "flink"
    return "direct" if not streaming and (os.cpu_count() or 1) > 1 else "prism"


def runner_args(
    beam_args: list[str],
    streaming: bool,
    runner: str | None = None,
    flink_master: str | None = None,
) -> list[str]:
    """Return the Beam arguments of a run: ``beam_args`` after the runner's own (Prism,
    the local Flink cluster, the Flink at ``flink_master``, or a Beam ``--runner=...`` in
    ``beam_args`` as given), with a job-service timeout that does not end long runs."""
    args = list(beam_args)
    if not _named(args, "--job_server_timeout"):
        args.append(f"--job_server_timeout={JOB_SERVER_TIMEOUT}")
    if _named(args, "--runner"):
        return args + (["--streaming"] if streaming and "--streaming" not in args else [])
    chosen = choose_runner(runner, flink_master, streaming)
    if chosen == "prism":
        return prism_args(streaming) + args
    if chosen == "direct":
        return direct_args() + args
    if flink_master:
        return flink_master_args(flink_master, streaming) + args
    from pipeline.services.flink import FlinkError
    from pipeline.services.flink import runner_args as local_flink_args

    try:
        return local_flink_args(streaming) + args
    except FlinkError as exc:
        raise RunnerError(str(exc)) from None
