"""Tests for pipeline.services.local_es.

Unit tests need no Elasticsearch. Tests marked ``integration`` use the node that ``.ci/run``
starts at ``$WIRESTREAM_ES_URL`` (default http://127.0.0.1:9200): unreachable means a failure
under CI (env ``CI`` set) and a skip otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipeline.services import local_es
from tests.support.processes import listening, loopback_only
from transforms.paths import cache_dir

# --------------------------------------------------------------------------- unit


def _fake_jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "release").write_text(f'IMPLEMENTOR="Test"\nJAVA_VERSION="{version}"\n')
    return home


@pytest.mark.parametrize(
    ("version", "major"), [("25.0.3", 25), ("17.0.15", 17), ("1.8.0_392", 8), ("21", 21)]
)
def test_java_major_reads_release_file(tmp_path: Path, version: str, major: int) -> None:
    assert local_es.java_major(_fake_jdk(tmp_path, "jdk", version)) == major


def test_find_java_home_picks_newest_jdk_at_least_21(tmp_path: Path) -> None:
    _fake_jdk(tmp_path, "java-17", "17.0.15")
    _fake_jdk(tmp_path, "jdk-21", "21.0.4")
    newest = _fake_jdk(tmp_path, "temurin-25", "25.0.3")
    (tmp_path / "not-a-jdk").mkdir()
    assert local_es.find_java_home(env={}, search_dirs=(tmp_path,)) == newest.resolve()


def test_find_java_home_honours_es_java_home(tmp_path: Path) -> None:
    _fake_jdk(tmp_path, "temurin-25", "25.0.3")
    jdk21 = _fake_jdk(tmp_path, "jdk-21", "21.0.4")
    env = {"ES_JAVA_HOME": str(jdk21)}
    assert local_es.find_java_home(env=env, search_dirs=(tmp_path,)) == jdk21


def test_find_java_home_rejects_old_es_java_home(tmp_path: Path) -> None:
    env = {"ES_JAVA_HOME": str(_fake_jdk(tmp_path, "java-17", "17.0.15"))}
    with pytest.raises(local_es.LocalElasticsearchError, match="ES_JAVA_HOME"):
        local_es.find_java_home(env=env, search_dirs=(tmp_path,))


def test_find_java_home_without_jdk_21_says_what_to_do(tmp_path: Path) -> None:
    _fake_jdk(tmp_path, "java-17", "17.0.15")
    with pytest.raises(local_es.LocalElasticsearchError, match=r"No JDK >= 21.*ES_JAVA_HOME"):
        local_es.find_java_home(env={}, search_dirs=(tmp_path, tmp_path / "missing"))


def test_render_config_is_single_node_loopback_without_security(tmp_path: Path) -> None:
    text = local_es.render_config(9250, tmp_path / "data", tmp_path / "logs", node_name="n1")
    settings = {
        key: json.loads(value)
        for key, value in (
            line.split(": ", 1) for line in text.splitlines() if line and not line.startswith("#")
        )
    }
    assert settings == {
        "cluster.name": "wirestream-local",
        "node.name": "n1",
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": 9250,
        "path.data": str(tmp_path / "data"),
        "path.logs": str(tmp_path / "logs"),
        "xpack.security.enabled": "false",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
    }


def test_cache_dir_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIRESTREAM_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert local_es.es_home().parent == tmp_path / "c"
    assert local_es.node_dir().parent == tmp_path / "c"


def test_start_on_busy_port_gives_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A foreign listener on the port is reported before anything is fetched or launched."""
    monkeypatch.setenv("WIRESTREAM_CACHE", str(tmp_path / "cache"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(local_es.LocalElasticsearchError, match=f"Port {port} .* in use"):
            local_es.start(port=port, timeout=10)
    assert not local_es.es_home().exists()


# --------------------------------------------------------------------------- integration


@pytest.fixture(scope="module")
def es_url() -> str:
    """URL of the running node; fail under CI, skip elsewhere, when it is unreachable."""
    url = os.environ.get("WIRESTREAM_ES_URL", "http://127.0.0.1:9200").rstrip("/")
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=5) as resp:
            json.loads(resp.read())
    except OSError as exc:
        message = (
            f"Elasticsearch not reachable at {url} ({exc}); start it with "
            "`deploy/local/elasticsearch.sh start` or set WIRESTREAM_ES_URL."
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.mark.integration
def test_status_reports_running_node(es_url: str) -> None:
    info = local_es.status(port=urlsplit(es_url).port or local_es.DEFAULT_PORT)
    assert info["running"] is True
    assert info["health"] in ("green", "yellow")
    assert info["version"] == local_es.ES_VERSION
    assert info["url"] == es_url
    if info["ours"]:
        assert isinstance(info["pid"], int)


@pytest.mark.integration
@pytest.mark.parametrize(
    "engine", [local_es.ELASTICSEARCH, local_es.OPENSEARCH], ids=lambda engine: engine.name
)
def test_the_nodes_listen_on_loopback_only(engine, request) -> None:
    request.getfixturevalue("es_url" if engine is local_es.ELASTICSEARCH else "os_client")
    info = local_es.status(engine=engine)
    if not info["ours"]:
        pytest.skip(f"the node on {info['url']} was not started by wirestream")
    addresses = listening(info["pid"])
    assert {port for _, port in addresses} >= {engine.port, engine.port + 100}  # HTTP, transport
    assert loopback_only(addresses), addresses


@pytest.mark.integration
def test_second_start_returns_immediately(es_url: str) -> None:
    began = time.monotonic()
    url = local_es.start(port=urlsplit(es_url).port or local_es.DEFAULT_PORT, timeout=30)
    assert url == es_url
    assert time.monotonic() - began < 5


@pytest.mark.integration
def test_cli_status_prints_one_line(es_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    port = str(urlsplit(es_url).port or local_es.DEFAULT_PORT)
    assert local_es.main(["status", "--port", port]) == 0
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0
    assert es_url in out


def test_opensearch_runs_on_a_jdk_with_the_security_manager(tmp_path: Path) -> None:
    """OpenSearch 2.x needs Java 17-23 (24 removed the SecurityManager): never the 25 here."""
    jdk17 = _fake_jdk(tmp_path, "java-17", "17.0.15")
    _fake_jdk(tmp_path, "temurin-25", "25.0.3")
    engine = local_es.OPENSEARCH
    assert local_es.find_java_home(env={}, search_dirs=(tmp_path,), engine=engine) == jdk17
    env = {"OPENSEARCH_JAVA_HOME": str(tmp_path / "temurin-25")}
    with pytest.raises(local_es.LocalElasticsearchError, match="OPENSEARCH_JAVA_HOME.*17 to 23"):
        local_es.find_java_home(env=env, search_dirs=(tmp_path,), engine=engine)


def test_opensearch_has_its_own_port_node_and_config(tmp_path: Path) -> None:
    engine = local_es.OPENSEARCH
    text = local_es.render_config(9201, tmp_path / "d", tmp_path / "l", engine=engine)
    assert "xpack" not in text and 'transport.port: "9301"' in text
    assert local_es.node_dir(engine) != local_es.node_dir()
    assert local_es.es_home(engine=engine).name == f"opensearch-{engine.version}"
    assert local_es.maven_zip(engine=engine).name == f"opensearch-{engine.version}.zip"


@pytest.mark.integration
def test_status_reports_the_running_opensearch_node(os_client) -> None:
    info = local_es.status(engine=local_es.OPENSEARCH)
    assert info["running"] is True and info["health"] in ("green", "yellow")
    assert info["version"] == local_es.OPENSEARCH.version
