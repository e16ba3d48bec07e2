"""The plumbing both local daemon managers share (the Elasticsearch/OpenSearch node and
the Flink session cluster): a lock across processes, detached launches, liveness, a
log's tail, state files and the JSON endpoints they poll."""

from __future__ import annotations

import contextlib
import fcntl
import json
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``: start and stop are serialised across the
    processes that share the cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def launch_detached(
    cmd: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start ``cmd`` in a session of its own (a Ctrl-C in the terminal does not reach
    it), its output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def alive(pid: int | None, marker: bytes = b"") -> bool:
    """Whether ``pid`` is a live, non-zombie process (whose command line holds
    ``marker``, when given: a recycled pid is not ours)."""
    if not pid:
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if marker else b""
    except OSError:
        return False
    return marker in cmdline and "\nState:\tZ" not in status


def log_tail(path: Path, lines: int, missing: str = "(no log yet)") -> str:
    """Return the last ``lines`` lines of ``path``."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return missing
    return "\n".join(text.splitlines()[-lines:])


def read_json_file(path: Path) -> dict:
    """Return the JSON object in ``path``, or ``{}`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def port_in_use(port: int) -> bool:
    """Whether something listens on ``port`` of 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


def get_json(url: str, timeout: float = 3) -> dict | None:
    """Return the JSON answer of a GET on ``url``, or None when there is none."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
