"""The admin HTTP port: /metrics (parsed with prometheus_client), /healthz, /readyz."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import NodeProcess, free_port, wait_until
from kvcluster.node.admin import AdminServer, cumulative_buckets, register_readiness_check, resolve_admin_port
from kvcluster.node.core import Node
from kvcluster.node.settings import node_config
from prometheus_client.parser import text_string_to_metric_families


def http_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class AdminNode:
    def __init__(self, proc: NodeProcess, admin_port: int):
        self.proc = proc
        self.admin_port = admin_port

    def scrape(self) -> dict[str, Any]:
        """Samples by name -> {frozenset(labels.items()): value}."""
        status, headers, body = http_get(self.admin_port, "/metrics")
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain")
        samples: dict[str, dict[frozenset, float]] = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
        return samples


def value(samples: dict[str, Any], name: str, **labels: str) -> float:
    return samples.get(name, {}).get(frozenset(labels.items()), 0.0)


def wait_http(port: int) -> None:
    wait_until(lambda: http_get(port, "/healthz")[0] == 200, timeout=15, what=f"admin port {port}")


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminNode]:
    admin_port = free_port()
    proc = NodeProcess(tmp_path_factory.mktemp("admin"), "--admin-port", str(admin_port))
    proc.start()
    wait_http(admin_port)
    yield AdminNode(proc, admin_port)
    proc.stop()


@pytest.fixture
def client(admin: AdminNode) -> Iterator[redis.Redis]:
    c = admin.proc.client(protocol=2)
    c.flushall()
    yield c
    c.close()


def test_metrics_command_counters_and_histogram(admin: AdminNode, client: redis.Redis) -> None:
    before = admin.scrape()
    for i in range(7):
        client.set(f"k{i}", "v")
    for i in range(3):
        client.get(f"k{i}")
    with pytest.raises(redis.ResponseError):
        client.execute_command("NOSUCHCOMMAND")
    with pytest.raises(redis.ResponseError):
        client.execute_command("SET", "onlykey")
    after = admin.scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("kvcluster_commands_total", cmd="set") == 7
    assert delta("kvcluster_commands_total", cmd="get") == 3
    assert delta("kvcluster_command_rejected_calls_total", cmd="set") == 1
    assert delta("kvcluster_errors_total", prefix="ERR") == 2
    assert delta("kvcluster_commands_processed_total") >= 10

    # The histogram: cumulative buckets in increasing le order, +Inf == count == calls.
    calls = value(after, "kvcluster_commands_total", cmd="set")
    buckets = sorted(
        (float(dict(labels)["le"]), count)
        for labels, count in after["kvcluster_command_duration_seconds_bucket"].items()
        if dict(labels)["cmd"] == "set"
    )
    assert buckets[-1] == (float("inf"), calls)
    counts = [count for _, count in buckets]
    assert counts == sorted(counts) and counts[0] >= 0
    assert buckets[0][0] == pytest.approx(1.024e-6)
    assert value(after, "kvcluster_command_duration_seconds_count", cmd="set") == calls
    assert 0 < value(after, "kvcluster_command_duration_seconds_sum", cmd="set") < calls  # seconds, not µs


def test_metrics_keyspace_and_process(admin: AdminNode, client: redis.Redis) -> None:
    for i in range(4):
        client.set(f"a{i}", "v")
    client.set("ttl", "v", ex=100)
    client.execute_command("SELECT", "5")
    client.set("in5", "v")
    client.execute_command("SELECT", "0")
    samples = admin.scrape()
    assert value(samples, "kvcluster_keys", db="0") == 5
    assert value(samples, "kvcluster_expiring_keys", db="0") == 1
    assert value(samples, "kvcluster_keys", db="5") == 1
    assert value(samples, "kvcluster_keys", db="1") == 0  # empty databases are left out
    assert value(samples, "kvcluster_connected_clients") >= 1
    assert value(samples, "kvcluster_memory_rss_bytes") > 1_000_000
    assert value(samples, "kvcluster_memory_peak_rss_bytes") >= value(samples, "kvcluster_memory_rss_bytes")
    assert value(samples, "kvcluster_uptime_seconds") > 0
    assert value(samples, "kvcluster_net_input_bytes_total") > 0
    assert value(samples, "kvcluster_net_output_bytes_total") > 0
    assert value(samples, "process_resident_memory_bytes") > 0
    info = client.info("server")
    [labels] = samples["kvcluster_node_info"]
    assert dict(labels)["run_id"] == info["run_id"]
    assert dict(labels)["redis_version"] == "7.2.0" and dict(labels)["role"] == "leader"


def test_metrics_expired_keys(admin: AdminNode, client: redis.Redis) -> None:
    before = value(admin.scrape(), "kvcluster_expired_keys_total")
    client.psetex("short", 1, "v")
    wait_until(lambda: client.dbsize() == 0, timeout=5, what="active expiry")
    assert value(admin.scrape(), "kvcluster_expired_keys_total") == before + 1


def test_metrics_openmetrics_negotiation(admin: AdminNode) -> None:
    status, headers, body = http_get(
        admin.admin_port, "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_healthz_and_readyz(admin: AdminNode, client: redis.Redis) -> None:
    status, headers, body = http_get(admin.admin_port, "/healthz")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    health = json.loads(body)
    assert health["status"] == "ok"
    assert health["run_id"] == client.info("server")["run_id"]
    status, _, body = http_get(admin.admin_port, "/readyz")
    ready = json.loads(body)
    assert status == 200
    assert ready["ready"] is True and ready["reasons"] == [] and ready["loading"] is False
    assert http_get(admin.admin_port, "/nosuchpage")[0] == 404


async def test_readyz_reports_reasons_in_process() -> None:
    import aiohttp

    node = Node(node_config())
    serving = {"value": True}
    server = AdminServer(node, lambda: serving["value"], "127.0.0.1", free_port())
    await server.start()
    url = f"http://127.0.0.1:{server.port}/readyz"
    register_readiness_check("test-replica", lambda n: "replica not in sync" if n.loading else None)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                assert response.status == 200
            serving["value"] = False
            node.loading = True
            async with session.get(url) as response:
                assert response.status == 503
                body = await response.json()
            assert body["ready"] is False
            assert body["reasons"] == ["not serving clients", "loading the dataset", "replica not in sync"]
            # /healthz only says the event loop runs.
            async with session.get(f"http://127.0.0.1:{server.port}/healthz") as response:
                assert response.status == 200
    finally:
        from kvcluster.node import admin as admin_module

        admin_module.READINESS_CHECKS.pop("test-replica", None)
        await server.stop()


def test_cumulative_buckets_conversion() -> None:
    buckets = [0] * 64
    buckets[3] = 2  # < 8 ns: folded into the first exported bucket
    buckets[10] = 1  # < 1.024 µs
    buckets[20] = 4  # < 1.048576 ms
    buckets[40] = 1  # beyond the last bound (34 s): only in +Inf
    pairs = cumulative_buckets(buckets)
    assert pairs[0] == ("1.024e-06", 3)
    assert dict(pairs)["0.001048576"] == 7
    assert pairs[-2] == ("34.359738368", 7)
    assert pairs[-1] == ("+Inf", 8)


def test_admin_port_minus_one_is_port_plus_10000(tmp_path: Path) -> None:
    config = node_config()
    config.set("port", "6380")
    config.set("admin-port", "-1")
    assert resolve_admin_port(config) == 16380

    def candidate() -> int:
        port = free_port()
        if port + 10000 > 65535:
            return 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                return 0
        return port

    port = wait_until(candidate, what="a port whose +10000 is free")
    proc = NodeProcess(tmp_path, "--admin-port", "-1", port=port).start()
    try:
        wait_http(port + 10000)
    finally:
        assert proc.stop() == 0
    # Stopped with the node.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port + 10000), timeout=1).close()


def test_admin_port_in_use_fails_startup(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = NodeProcess(tmp_path, "--admin-port", str(taken.getsockname()[1]))
        proc.start(wait=False)
        try:
            assert proc.proc is not None
            assert proc.proc.wait(15) != 0
            assert "admin" in proc.log().lower()
        finally:
            proc.stop()


def test_sigterm_with_admin_exits_cleanly(tmp_path: Path) -> None:
    admin_port = free_port()
    proc = NodeProcess(tmp_path, "--admin-port", str(admin_port)).start()
    wait_http(admin_port)
    assert proc.stop() == 0  # a hang would end in SIGKILL and a negative code
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", admin_port), timeout=1).close()
