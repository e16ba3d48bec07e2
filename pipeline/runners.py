"""Beam runner arguments: the local Prism binary, built from the Go module proxy.

Beam's Python wheel does not carry Prism and would download it from the web; we
build the same version with ``go install`` into the wirestream cache instead and
always name the runner explicitly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from apache_beam.version import __version__ as BEAM_VERSION

from pipeline.local_es import cache_dir

PRISM_MODULE = "github.com/apache/beam/sdks/v2/go/cmd/prism"


class RunnerError(RuntimeError):
    """A runner's binary or setting is missing; the message says how to fix it."""


def prism_path() -> Path:
    """Return where the Prism binary lives: ``$WIRESTREAM_PRISM`` or the cache."""
    override = os.environ.get("WIRESTREAM_PRISM")
    return Path(override) if override else cache_dir() / "bin" / f"prism-{BEAM_VERSION}"


def build_prism(force: bool = False) -> Path:
    """Build Prism at the Python SDK's version with ``go install``; return its path."""
    target = prism_path()
    if target.exists() and not force:
        return target
    go = shutil.which("go")
    if go is None:
        raise RunnerError("Go is not installed: it is needed once to build Beam's Prism runner")
    gobin = target.parent / f"go-build-{BEAM_VERSION}"
    gobin.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(gobin)}
    cmd = [go, "install", f"{PRISM_MODULE}@v{BEAM_VERSION}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RunnerError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    shutil.move(str(gobin / "prism"), target)
    shutil.rmtree(gobin, ignore_errors=True)
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


def runner_args(beam_args: list[str], streaming: bool) -> list[str]:
    """Return ``beam_args`` with the local Prism defaults unless a runner was named, and
    a job-service timeout that does not end long runs unless one was given."""
    args = list(beam_args)
    if not _named(args, "--job_server_timeout"):
        args.append(f"--job_server_timeout={JOB_SERVER_TIMEOUT}")
    if _named(args, "--runner"):
        return args + (["--streaming"] if streaming and "--streaming" not in args else [])
    return prism_args(streaming) + args
