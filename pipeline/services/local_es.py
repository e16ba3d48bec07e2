"""Manage a local single-node Elasticsearch, or OpenSearch, for the demo and the tests
(stdlib only).

The distribution is the core-only ``integ-test-zip`` fetched from Maven Central with ``mvn``,
unpacked under :func:`cache_dir` and run detached in the background. When running as root,
the node (which refuses root) runs as the unprivileged system user ``wirestream-es``. Each
engine (``ELASTICSEARCH``, ``OPENSEARCH``) has its own version, port, node folder and
state, so both can run side by side.

CLI: ``python -m pipeline.services.local_es start|stop|status [--port N] [--engine E]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.services.daemons import (
    alive,
    file_lock,
    get_json,
    launch_detached,
    log_tail,
    port_in_use,
    read_json_file,
)
from transforms.paths import cache_dir

ES_VERSION = "9.2.4"
DEFAULT_PORT = 9200
MIN_JAVA = 21
ES_USER = "wirestream-es"
HOST = "127.0.0.1"
MAVEN_GROUP = "org.elasticsearch.distribution.integ-test-zip"
JVM_DIRS = (Path("/usr/lib/jvm"),)


@dataclass(frozen=True)
class Module:
    """A module of the full distribution that its integ-test zip leaves out."""

    name: str  # its folder under modules/ and its Maven artifact
    group: str
    classname: str
    description: str


@dataclass(frozen=True)
class Engine:
    """A search engine the project can run locally: where it comes from and how it starts."""

    name: str  # the distribution's name: its Maven artifact, binary and config file
    title: str
    version: str
    port: int
    maven_group: str
    min_java: int
    max_java: int | None  # OpenSearch 2.x needs the SecurityManager, gone in Java 24
    env: str  # prefix of its environment variables (ES_JAVA_HOME, OPENSEARCH_JAVA_HOME)
    node: str  # the node folder under the cache
    settings: dict[str, str] = field(default_factory=dict)  # engine-only config lines
    modules: tuple[Module, ...] = ()  # modules the integ-test zip lacks, from Maven jars


ELASTICSEARCH = Engine(
    "elasticsearch",
    "Elasticsearch",
    ES_VERSION,
    DEFAULT_PORT,
    MAVEN_GROUP,
    MIN_JAVA,
    None,
    "ES",
    "es-node",
    {"xpack.security.enabled": "false"},
)
# 2.19 is the newest line that runs on Java 17/21 here (3.x needs 21+ and is served too);
# its integ-test zip has no security plugin, so nothing to switch off.
OPENSEARCH = Engine(
    "opensearch",
    "OpenSearch",
    "2.19.6",
    9201,
    "org.opensearch.distribution.integ-test-zip",
    17,
    23,
    "OPENSEARCH",
    "opensearch-node",
    {"transport.port": "9301"},
    # The language analyzers (german, french, cjk, ...) every full distribution ships;
    # Elasticsearch publishes no such jar, so its local node has only the standard one.
    (
        Module(
            "analysis-common",
            "org.opensearch.plugin",
            "org.opensearch.analysis.common.CommonAnalysisPlugin",
            'Adds "built in" analyzers to OpenSearch.',
        ),
    ),
)
ENGINES = {e.name: e for e in (ELASTICSEARCH, OPENSEARCH)}


class LocalElasticsearchError(RuntimeError):
    """A local Elasticsearch operation failed; the message says what to do."""


# --------------------------------------------------------------------------- paths


def es_home(version: str | None = None, engine: Engine = ELASTICSEARCH) -> Path:
    """Directory of the unpacked distribution."""
    return cache_dir() / f"{engine.name}-{version or engine.version}"


def node_dir(engine: Engine = ELASTICSEARCH) -> Path:
    """Directory holding the node's config, data, logs, tmp and state files."""
    return cache_dir() / engine.node


def _state_file(engine: Engine) -> Path:
    return node_dir(engine) / "wirestream-state.json"


def _console_log(engine: Engine) -> Path:
    return node_dir(engine) / "logs" / "console.log"


def maven_zip(version: str | None = None, engine: Engine = ELASTICSEARCH) -> Path:
    """Where ``mvn dependency:get`` leaves the distribution zip."""
    group = engine.maven_group.replace(".", "/")
    version = version or engine.version
    return (
        Path.home()
        / ".m2"
        / "repository"
        / group
        / engine.name
        / version
        / f"{engine.name}-{version}.zip"
    )


# --------------------------------------------------------------------------- java


def java_major(java_home: Path) -> int | None:
    """Major Java version of a JDK home (from its ``release`` file, else ``java -version``)."""
    release = java_home / "release"
    text = release.read_text(errors="replace") if release.is_file() else ""
    match = re.search(r'^JAVA_VERSION="([^"]+)"', text, re.M)
    if not match and (java_home / "bin" / "java").is_file():
        proc = subprocess.run(
            [str(java_home / "bin" / "java"), "-version"], capture_output=True, text=True
        )
        match = re.search(r'version "([^"]+)"', proc.stderr)
    if not match:
        return None
    parts = match.group(1).split(".")
    major = parts[1] if parts[0] == "1" and len(parts) > 1 else parts[0]
    digits = re.match(r"\d+", major)
    return int(digits.group()) if digits else None


def find_java_home(
    env: Mapping[str, str] | None = None,
    search_dirs: tuple[Path, ...] = JVM_DIRS,
    engine: Engine = ELASTICSEARCH,
) -> Path:
    """``$ES_JAVA_HOME`` (``$OPENSEARCH_JAVA_HOME``) if set, else the newest JDK the
    engine runs on (Elasticsearch: >= 21) found under ``search_dirs``."""
    env = os.environ if env is None else env
    low, high = engine.min_java, engine.max_java or 10_000
    wanted = f">= {low}" if engine.max_java is None else f"{low} to {high}"
    variable = f"{engine.env}_JAVA_HOME"
    if env.get(variable):
        home = Path(env[variable])
        major = java_major(home)
        if major is None or not low <= major <= high:
            raise LocalElasticsearchError(
                f"{variable}={home} is not a JDK {wanted} (found {major}); "
                f"point it at a JDK {wanted} or unset it."
            )
        return home
    found = [
        (major, home.resolve())
        for root in search_dirs
        if root.is_dir()
        for home in sorted(root.iterdir())
        if (home / "bin" / "java").is_file() and (major := java_major(home)) is not None
    ]
    usable = sorted((m, h) for m, h in found if low <= m <= high)
    if not usable:
        raise LocalElasticsearchError(
            f"No JDK {wanted} found in {', '.join(map(str, search_dirs))} "
            f"(found {sorted({m for m, _ in found})}); install one or set {variable}."
        )
    return usable[-1][1]


# --------------------------------------------------------------------------- fetch


def _mvn_get(version: str, engine: Engine, artifact: str | None = None) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise LocalElasticsearchError(
            "Maven (`mvn`) is not on PATH; install it (apt-get install maven) to fetch "
            f"{engine.title}."
        )
    artifact = artifact or f"{engine.maven_group}:{engine.name}:{version}:zip"
    cmd = [mvn, "-q", "-B", "dependency:get", "-Dtransitive=false", f"-Dartifact={artifact}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise LocalElasticsearchError(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}); check Maven Central "
            f"access.\n{tail}"
        )


def _unzip(zip_path: Path, dest: Path) -> None:
    """Extract keeping Unix permission bits (zipfile drops them)."""
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = Path(archive.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                target.chmod(mode)


def fetch(version: str | None = None, engine: Engine = ELASTICSEARCH) -> Path:
    """Ensure the distribution is unpacked in the cache (idempotent); return its home."""
    version = version or engine.version
    home = es_home(version, engine)
    if (home / "bin" / engine.name).is_file():
        _install_modules(home, version, engine)
        return home
    zip_path = maven_zip(version, engine)
    if not zip_path.is_file():
        _mvn_get(version, engine)
    if not zip_path.is_file():
        raise LocalElasticsearchError(
            f"Maven finished but {zip_path} is missing; point Maven's localRepository "
            "(settings.xml) back to ~/.m2/repository or place the zip there."
        )
    staging = cache_dir() / f".unpack-{version}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _unzip(zip_path, staging)
        shutil.rmtree(home, ignore_errors=True)
        (staging / f"{engine.name}-{version}").rename(home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _install_modules(home, version, engine)
    return home


def _install_modules(home: Path, version: str, engine: Engine) -> None:
    """Put each of ``engine.modules`` (a jar from Maven and its descriptor) into
    ``home/modules`` unless it is there (idempotent)."""
    for module in engine.modules:
        folder = home / "modules" / module.name
        if (folder / "plugin-descriptor.properties").is_file():
            continue
        jar = (
            Path.home() / ".m2" / "repository" / module.group.replace(".", "/") / module.name
            / version / f"{module.name}-{version}.jar"
        )  # fmt: skip
        if not jar.is_file():
            _mvn_get(version, engine, f"{module.group}:{module.name}:{version}:jar")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(jar, folder / jar.name)
        descriptor = {
            "description": module.description,
            "version": version,
            "name": module.name,
            "classname": module.classname,
            "java.version": "11",
            f"{engine.name}.version": version,
            "custom.foldername": "",
            "extended.plugins": "",
            "has.native.controller": "false",
        }
        (folder / "plugin-descriptor.properties").write_text(
            "".join(f"{k}={v}\n" for k, v in descriptor.items()), encoding="utf-8"
        )


# --------------------------------------------------------------------------- config


def render_config(
    port: int,
    data_dir: Path,
    logs_dir: Path,
    node_name: str = "wirestream-1",
    engine: Engine = ELASTICSEARCH,
) -> str:
    """Text of ``elasticsearch.yml`` (``opensearch.yml``) for the local single-node cluster."""
    settings = {
        "cluster.name": "wirestream-local",
        "node.name": node_name,
        "discovery.type": "single-node",
        "network.host": HOST,
        "http.port": port,
        "path.data": str(data_dir),
        "path.logs": str(logs_dir),
        **engine.settings,
        "cluster.routing.allocation.disk.threshold_enabled": "false",
    }
    lines = [f"{key}: {json.dumps(value)}" for key, value in settings.items()]
    header = "# Written by pipeline/services/local_es.py; rewritten on every start.\n"
    return header + "\n".join(lines) + "\n"


def render_jvm_options(logs_dir: Path) -> str:
    """Extra JVM options keeping heap dumps and crash files under ``logs_dir``.

    The distro's own ``-Xlog:gc*:file=gc.log`` is relative to the working dir, which
    :func:`_launch` sets to ``logs_dir``.
    """
    return f"-XX:HeapDumpPath={logs_dir}\n-XX:ErrorFile={logs_dir}/hs_err_pid%p.log\n"


def _write_config(home: Path, port: int, engine: Engine) -> Path:
    """Create the node's config dir (copy of the distro's plus our files); return it."""
    node = node_dir(engine)
    conf = node / "config"
    for sub in ("data", "logs", "tmp"):
        (node / sub).mkdir(parents=True, exist_ok=True)
    if not (conf / "jvm.options").is_file():
        shutil.copytree(home / "config", conf, dirs_exist_ok=True)
    config = render_config(port, node / "data", node / "logs", engine=engine)
    (conf / f"{engine.name}.yml").write_text(config)
    (conf / "jvm.options.d").mkdir(exist_ok=True)
    (conf / "jvm.options.d" / "wirestream.options").write_text(render_jvm_options(node / "logs"))
    return conf


# --------------------------------------------------------------------------- user


def _es_user() -> pwd.struct_passwd | None:
    """The account ES runs as: ``wirestream-es`` (created if needed) when root, else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(ES_USER)
    except KeyError:
        pass
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ES_USER]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 9):  # 9: already exists (race)
        raise LocalElasticsearchError(
            f"Could not create user {ES_USER} ({proc.stderr.strip()}); create it by hand."
        )
    return pwd.getpwnam(ES_USER)


def _chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    os.chown(path, user.pw_uid, user.pw_gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), user.pw_uid, user.pw_gid)


def _check_reachable(path: Path) -> None:
    """Fail if an ancestor of ``path`` is not world-traversable (the ES user needs it)."""
    for parent in path.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise LocalElasticsearchError(
                f"{parent} is not traversable by user {ES_USER}; set WIRESTREAM_CACHE to a "
                "directory outside it (e.g. /var/cache/wirestream)."
            )


# --------------------------------------------------------------------------- process


def _read_state(engine: Engine) -> dict:
    return read_json_file(_state_file(engine))


def _alive(pid: int | None, engine: Engine = ELASTICSEARCH) -> bool:
    """Whether ``pid`` is a live (non-zombie) process of the engine."""
    return alive(pid, engine.name.encode())


def _server_pid(state: dict) -> int | None:
    """PID of the ES server JVM (from ES's pid file), else the launcher's."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        return int(Path(state["es_pidfile"]).read_text().strip())
    return state.get("pgid")


def _health(url: str) -> str | None:
    """Cluster health status (green/yellow/red) or None when unreachable."""
    body = get_json(f"{url}/_cluster/health")
    return body.get("status") if body else None


def _log_tail(engine: Engine, lines: int = 20) -> str:
    return log_tail(_console_log(engine), lines)


def _lock(engine: Engine):
    """Serialise start/stop across processes sharing the cache."""
    return file_lock(
        cache_dir() / (".es.lock" if engine is ELASTICSEARCH else f".{engine.name}.lock")
    )


def _launch(
    home: Path,
    conf: Path,
    heap: str,
    java_home: Path,
    user: pwd.struct_passwd | None,
    engine: Engine,
) -> subprocess.Popen:
    """Start the node detached in its own session, console output to ``logs/console.log``."""
    node = node_dir(engine)
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "JAVA_TOOL_OPTIONS")}
    prefix = engine.env
    env.update(
        {
            f"{prefix}_JAVA_HOME": str(java_home),
            f"{prefix}_PATH_CONF": str(conf),
            f"{prefix}_TMPDIR": str(node / "tmp"),
            f"{prefix}_JAVA_OPTS": f"-Xms{heap} -Xmx{heap}",
            "HOME": str(node),
        }
    )
    cmd = [str(home / "bin" / engine.name), "-p", str(node / "es.pid")]
    if user is not None:
        cmd = [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--init-groups",
            "--",
        ] + cmd
    (node / "es.pid").unlink(missing_ok=True)
    return launch_detached(cmd, _console_log(engine), node / "logs", env)


def _wait_healthy(url: str, proc: subprocess.Popen | None, deadline: float, engine: Engine) -> None:
    while time.monotonic() < deadline:
        if _health(url) in ("green", "yellow"):
            return
        if proc is not None and proc.poll() is not None:
            raise LocalElasticsearchError(
                f"{engine.title} exited during startup (code {proc.returncode}); see "
                f"{_console_log(engine)}:\n{_log_tail(engine)}"
            )
        time.sleep(1)
    raise LocalElasticsearchError(
        f"{engine.title} did not become healthy at {url} in time; raise the timeout or "
        f"check {_console_log(engine)}:\n{_log_tail(engine)}"
    )


# --------------------------------------------------------------------------- public API


def start(
    port: int | None = None, heap: str = "1g", timeout: float = 180, engine: Engine = ELASTICSEARCH
) -> str:
    """Start the node (or reuse ours if already running) and return its URL once healthy."""
    port = port or engine.port
    deadline = time.monotonic() + timeout
    url = f"http://{HOST}:{port}"
    with _lock(engine):
        state = _read_state(engine)
        if _alive(state.get("pgid"), engine) or _alive(_server_pid(state), engine):
            if state.get("port") != port:
                raise LocalElasticsearchError(
                    f"Our {engine.title} is already running on port {state.get('port')}; "
                    f"stop it first (`wirestream {_command(engine)} stop`) to use another port."
                )
            _wait_healthy(url, None, deadline, engine)
            return url
        if port_in_use(port):
            raise LocalElasticsearchError(
                f"Port {port} on {HOST} is already in use by another process; stop it "
                f"(see `ss -ltnp 'sport = :{port}'`) or choose another port with --port."
            )
        java_home = find_java_home(engine=engine)
        user = _es_user()
        if user is not None:
            _check_reachable(node_dir(engine))
        home = fetch(engine=engine)
        conf = _write_config(home, port, engine)
        if user is not None:
            _chown_tree(home, user)
            _chown_tree(node_dir(engine), user)
        proc = _launch(home, conf, heap, java_home, user, engine)
        state = {"pgid": proc.pid, "port": port, "url": url, "started": time.time()}
        state["es_pidfile"] = str(node_dir(engine) / "es.pid")
        _state_file(engine).write_text(json.dumps(state))
    try:
        _wait_healthy(url, proc, deadline, engine)
    except LocalElasticsearchError:
        stop(timeout=30, engine=engine)
        raise
    return url


def _command(engine: Engine) -> str:
    return "es" if engine is ELASTICSEARCH else engine.name


def stop(timeout: float = 60, engine: Engine = ELASTICSEARCH) -> bool:
    """Stop our node: SIGTERM its process group, SIGKILL after ``timeout``. True if it ran."""
    with _lock(engine):
        state = _read_state(engine)
        pgid, server = state.get("pgid"), _server_pid(state)
        pids = [p for p in (pgid, server) if p is not None and _alive(p, engine)]
        if pids:
            _signal_all(pgid, pids, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while any(_alive(p, engine) for p in pids) and time.monotonic() < deadline:
                time.sleep(0.5)
            if any(_alive(p, engine) for p in pids):
                _signal_all(pgid, pids, signal.SIGKILL)
                time.sleep(1)
        _state_file(engine).unlink(missing_ok=True)
        return bool(pids)


def _signal_all(pgid: int | None, pids: list[int], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if pgid:
            os.killpg(pgid, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def status(port: int | None = None, engine: Engine = ELASTICSEARCH) -> dict:
    """Running?, pid, url, cluster health and version of the node (ours, or any on ``port``)."""
    port = port or engine.port
    state = _read_state(engine)
    pid = _server_pid(state)
    ours = _alive(state.get("pgid"), engine) or _alive(pid, engine)
    url = state["url"] if ours and state.get("url") else f"http://{HOST}:{port}"
    health = _health(url)
    nodes = get_json(f"{url}/_nodes/_local?filter_path=nodes.*.version") or {}
    versions = [n.get("version") for n in nodes.get("nodes", {}).values()]
    return {
        "running": health is not None,
        "ours": ours,
        "pid": pid if ours else None,
        "url": url,
        "health": health,
        "version": versions[0] if versions else None,
        "cache": str(cache_dir()),
    }


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.services.local_es start|stop|status [--port N] [--engine E]``;
    the exit code."""
    parser = argparse.ArgumentParser(prog="local_es", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--engine", choices=sorted(ENGINES), default=ELASTICSEARCH.name)
    parser.add_argument("--port", type=int, help="default 9200 (OpenSearch 9201)")
    parser.add_argument("--heap", default="1g")
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args(argv)
    try:
        return _run(args, ENGINES[args.engine])
    except LocalElasticsearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, engine: Engine) -> int:
    name = engine.name
    if args.action == "start":
        began = time.monotonic()
        url = start(args.port, args.heap, args.timeout, engine)
        info = status(args.port, engine)
        print(
            f"{name} {info['version']} {info['health']} at {url} "
            f"(pid {info['pid']}, ready in {time.monotonic() - began:.1f}s)"
        )
        return 0
    if args.action == "stop":
        stopped = stop(args.timeout, engine)
        print(f"{name} stopped" if stopped else f"{name} was not running")
        return 0
    info = status(args.port, engine)
    if not info["running"]:
        print(f"{name} not running at {info['url']}")
        return 3
    owner = f"pid {info['pid']}" if info["ours"] else "not started by wirestream"
    print(f"{name} {info['version']} {info['health']} at {info['url']} ({owner})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
