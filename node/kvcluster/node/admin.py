"""The node's HTTP admin port: ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``.

Off unless ``admin-port`` is set (``-1`` means the client port + 10000). The
server runs on the node's own event loop, so every request sees the node's
state between two commands, never in the middle of one.

Metrics cost nothing on the command path: :class:`NodeCollector` reads the
counters the node keeps anyway (``Node.stats``, each ``Command``'s ``calls``,
``usec`` and log2 ``latency_buckets``, the keyspace) when Prometheus scrapes.
The per-command histogram ``kvcluster_command_duration_seconds`` turns the
log2 buckets (bucket ``i`` counts durations below ``2**i`` ns) into cumulative
``le`` buckets from about 1 µs to 34 s; its ``_sum`` has microsecond
resolution.

Probes:

* ``/healthz`` answers 200 whenever the event loop runs (a handler running is the proof);
* ``/readyz`` answers 200 when the node listens for clients and is not loading
  its dataset, plus whatever :func:`register_readiness_check` adds (replication
  adds "replica in sync"); otherwise 503 with the reasons.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kvcluster.node.commands.connection import REDIS_COMPAT_VERSION
from kvcluster.node.commands.server import KVCLUSTER_VERSION, iter_commands, server_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from aiohttp import web
    from kvcluster.node.core import Node

log = logging.getLogger("kvcluster.node")

# A check returns None when fine, or the reason the node is not ready.
ReadinessCheck = Callable[["Node"], "str | None"]
READINESS_CHECKS: dict[str, ReadinessCheck] = {}
# Other components' metrics, read at scrape time like ours.
MetricsProvider = Callable[["Node"], Iterable[Metric]]
METRICS_PROVIDERS: list[MetricsProvider] = []

# Histogram buckets exported: log2 bucket indexes 10 (< 1.024 µs) .. 35 (< 34.4 s).
_FIRST_BUCKET = 10
_LAST_BUCKET = 35
_BUCKET_BOUNDS = [floatToGoString((1 << i) / 1e9) for i in range(_FIRST_BUCKET, _LAST_BUCKET + 1)]


def register_readiness_check(name: str, check: ReadinessCheck) -> None:
    READINESS_CHECKS[name] = check


def register_metrics(provider: MetricsProvider) -> None:
    METRICS_PROVIDERS.append(provider)


def resolve_admin_port(config: Any) -> int:
    """The admin port from the settings: 0 off, -1 the client port + 10000."""
    port = int(config["admin-port"])
    return config["port"] + 10000 if port == -1 else port


def cumulative_buckets(latency_buckets: list[int]) -> list[tuple[str, int]]:
    """log2 nanosecond buckets -> Prometheus cumulative ``(le, count)`` pairs ending with ``+Inf``."""
    out: list[tuple[str, int]] = []
    running = sum(latency_buckets[:_FIRST_BUCKET])
    for index, bound in zip(range(_FIRST_BUCKET, _LAST_BUCKET + 1), _BUCKET_BOUNDS, strict=True):
        running += latency_buckets[index]
        out.append((bound, running))
    out.append(("+Inf", sum(latency_buckets)))
    return out


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class NodeCollector(Collector):
    """Reads the node's own counters at scrape time."""

    def __init__(self, node: Node):
        self.node = node

    def collect(self) -> Iterable[Metric]:
        node = self.node
        stats = node.stats
        ks = node.keyspace
        metrics = server_metrics(node)

        build = GaugeMetricFamily(
            "kvcluster_node_info", "Node build and identity", labels=["version", "redis_version", "run_id", "role"]
        )
        role = "replica" if ks.is_replica else "leader"
        build.add_metric([KVCLUSTER_VERSION, REDIS_COMPAT_VERSION.decode(), node.run_id, role], 1)
        yield build
        yield _gauge("kvcluster_uptime_seconds", "Seconds since the node started", time.time() - node.start_time)
        yield _gauge("kvcluster_loading", "1 while the dataset is being loaded", 1 if node.loading else 0)

        # Clients and connections.
        yield _gauge(
            "kvcluster_connected_clients",
            "Client connections, replicas excluded",
            sum(1 for c in node.clients.values() if c.kind != "replica"),
        )
        yield _gauge("kvcluster_max_clients", "The maxclients setting", node.config["maxclients"])
        yield _counter("kvcluster_connections_received", "Connections accepted", stats.total_connections_received)
        yield _counter(
            "kvcluster_rejected_connections", "Connections refused over maxclients", stats.rejected_connections
        )
        yield _counter(
            "kvcluster_client_query_buffer_limit_disconnections",
            "Clients closed for a query buffer over client-query-buffer-limit",
            stats.client_query_buffer_limit_disconnections,
        )
        yield _counter(
            "kvcluster_client_output_buffer_limit_disconnections",
            "Clients closed for an output buffer over client-output-buffer-limit",
            stats.client_output_buffer_limit_disconnections,
        )
        yield _counter("kvcluster_net_input_bytes", "Bytes read from clients", stats.total_net_input_bytes)
        yield _counter("kvcluster_net_output_bytes", "Bytes written to clients", stats.total_net_output_bytes)

        # Keyspace.
        keys = GaugeMetricFamily("kvcluster_keys", "Keys per database (non-empty databases)", labels=["db"])
        expiring = GaugeMetricFamily(
            "kvcluster_expiring_keys", "Keys with a TTL per database (non-empty databases)", labels=["db"]
        )
        for db in ks.dbs:
            if db.data:
                keys.add_metric([str(db.id)], len(db.data))
                expiring.add_metric([str(db.id)], len(db.expires))
        yield keys
        yield expiring
        yield _counter("kvcluster_expired_keys", "Keys deleted because their TTL passed", ks.stat_expired_keys)
        yield _counter("kvcluster_evicted_keys", "Keys evicted by maxmemory", getattr(ks, "stat_evicted_keys", 0))
        yield _counter("kvcluster_keyspace_hits", "Key lookups that found the key", stats.keyspace_hits)
        yield _counter("kvcluster_keyspace_misses", "Key lookups that missed", stats.keyspace_misses)
        yield _gauge("kvcluster_changes_since_last_save", "Writes since the last snapshot", ks.dirty)
        yield _gauge("kvcluster_pubsub_channels", "Channels with subscribers", len(node.channels))
        yield _gauge("kvcluster_pubsub_patterns", "Patterns with subscribers", len(node.patterns))

        # Memory: RSS, see INFO memory.
        yield _gauge("kvcluster_memory_rss_bytes", "Resident set size of the node process", metrics.rss())
        yield _gauge("kvcluster_memory_peak_rss_bytes", "Largest resident set size seen", metrics.rss_peak)
        yield _gauge("kvcluster_memory_max_bytes", "The maxmemory setting (0: none)", node.config.get("maxmemory", 0))

        # Commands and errors.
        yield _counter("kvcluster_commands_processed", "Commands executed", stats.total_commands_processed)
        yield _gauge(
            "kvcluster_instantaneous_ops_per_sec", "Commands per second, sampled like Redis", metrics.ops.rate()
        )
        yield _counter("kvcluster_error_replies", "Error replies sent", stats.total_error_replies)
        errors = CounterMetricFamily("kvcluster_errors", "Error replies by error prefix", labels=["prefix"])
        for prefix, count in stats.error_counts.items():
            errors.add_metric([prefix], count)
        yield errors
        yield _gauge("kvcluster_slowlog_length", "Entries in the slow log", len(node.slowlog))
        yield from self._command_metrics()

        for provider in METRICS_PROVIDERS:
            yield from provider(node)

    def _command_metrics(self) -> Iterable[Metric]:
        calls = CounterMetricFamily("kvcluster_commands", "Calls per command", labels=["cmd"])
        rejected = CounterMetricFamily(
            "kvcluster_command_rejected_calls", "Calls refused before running (arity, auth...)", labels=["cmd"]
        )
        failed = CounterMetricFamily("kvcluster_command_failed_calls", "Calls that ran and failed", labels=["cmd"])
        duration = HistogramMetricFamily(
            "kvcluster_command_duration_seconds", "Command execution time (log2 buckets)", labels=["cmd"]
        )
        # Only commands used so far: 200+ commands x 28 series each would swamp a scrape.
        for cmd in iter_commands(self.node.table):
            if not (cmd.calls or cmd.rejected_calls or cmd.failed_calls):
                continue
            label = [cmd.full_name]
            calls.add_metric(label, cmd.calls)
            rejected.add_metric(label, cmd.rejected_calls)
            failed.add_metric(label, cmd.failed_calls)
            if cmd.calls:
                duration.add_metric(label, cumulative_buckets(cmd.latency_buckets), sum_value=cmd.usec / 1e6)
        yield calls
        yield rejected
        yield failed
        yield duration


class AdminServer:
    """aiohttp server for the admin endpoints, on the node's event loop."""

    def __init__(self, node: Node, serving: Callable[[], bool], host: str, port: int):
        self.node = node
        self.serving = serving
        self.host = host
        self.port = port
        self.registry = CollectorRegistry()
        self.registry.register(NodeCollector(node))
        self.registry.register(ProcessCollector(registry=None))
        self._runner: web.AppRunner | None = None

    def make_app(self) -> web.Application:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/metrics", self.handle_metrics)
        app.router.add_get("/healthz", self.handle_healthz)
        app.router.add_get("/readyz", self.handle_readyz)
        app.router.add_get("/", self.handle_index)
        return app

    async def start(self) -> None:
        from aiohttp import web

        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            log.error("Cannot listen on the admin port %s:%d: %s", self.host, self.port, e)
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("Admin HTTP server on http://%s:%d (/metrics /healthz /readyz)", self.host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def not_ready_reasons(self) -> list[str]:
        reasons = []
        if not self.serving():
            reasons.append("not serving clients")
        if self.node.loading:
            reasons.append("loading the dataset")
        for name, check in READINESS_CHECKS.items():
            try:
                reason = check(self.node)
            except Exception as e:  # a broken check must read as not ready, not crash the probe
                reason = f"{name}: check failed: {type(e).__name__}: {e}"
            if reason:
                reasons.append(reason)
        return reasons

    def _facts(self) -> dict[str, Any]:
        node = self.node
        return {
            "run_id": node.run_id,
            "role": "replica" if node.keyspace.is_replica else "leader",
            "uptime_seconds": int(time.time() - node.start_time),
            "version": KVCLUSTER_VERSION,
        }

    async def handle_metrics(self, request: web.Request) -> web.Response:
        from aiohttp import web

        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(self.registry), headers={"Content-Type": content_type})

    async def handle_healthz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.json_response({"status": "ok", **self._facts()})

    async def handle_readyz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        reasons = self.not_ready_reasons()
        body = {"ready": not reasons, "reasons": reasons, "loading": bool(self.node.loading), **self._facts()}
        return web.json_response(body, status=200 if not reasons else 503, dumps=json.dumps)

    async def handle_index(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.Response(text="kvcluster node admin: /metrics /healthz /readyz\n")
