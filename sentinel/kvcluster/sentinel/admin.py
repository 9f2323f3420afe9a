"""The sentinel's HTTP admin port: ``/metrics`` (Prometheus), ``/healthz``, ``/readyz``.

Metrics are read from the core when scraped: per group the sdown/odown state, the config
epoch, known replicas and sentinels, whether quorum and majority are reachable, the failover
state; globally the current epoch, TILT, and failovers started/finished/aborted.
``/readyz`` is 200 when the sentinel is not in TILT and every group can reach a majority.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from aiohttp import web
    from kvcluster.sentinel.server import SentinelServer

log = logging.getLogger("kvcluster.sentinel")


class SentinelCollector(Collector):
    def __init__(self, server: SentinelServer):
        self.server = server

    def collect(self) -> Iterable[Metric]:
        core = self.server.core
        g = GaugeMetricFamily
        epoch = g("kvcluster_sentinel_current_epoch", "The sentinel's current epoch")
        epoch.add_metric([], core.current_epoch)
        tilt = g("kvcluster_sentinel_tilt", "1 while in TILT mode (not acting)")
        tilt.add_metric([], 1 if core.tilt else 0)
        started = CounterMetricFamily("kvcluster_sentinel_failovers_started", "Failovers this sentinel started")
        started.add_metric([], core.failovers_started)
        finished = CounterMetricFamily("kvcluster_sentinel_failovers_finished", "Failovers this sentinel completed")
        finished.add_metric([], core.failovers_finished)
        aborted = CounterMetricFamily("kvcluster_sentinel_failovers_aborted", "Failovers this sentinel aborted")
        aborted.add_metric([], core.failovers_aborted)
        labels = ["master"]
        sdown = g("kvcluster_sentinel_master_sdown", "1 if this sentinel sees the leader down", labels=labels)
        odown = g("kvcluster_sentinel_master_odown", "1 if a quorum of sentinels sees the leader down", labels=labels)
        config_epoch = g("kvcluster_sentinel_master_config_epoch", "Epoch of the group's leader", labels=labels)
        replicas = g("kvcluster_sentinel_master_replicas", "Known replicas", labels=labels)
        sentinels = g("kvcluster_sentinel_master_sentinels", "Known sentinels, this one included", labels=labels)
        usable = g(
            "kvcluster_sentinel_master_usable_sentinels", "Reachable sentinels, this one included", labels=labels
        )
        quorum = g("kvcluster_sentinel_master_quorum_reachable", "1 if quorum sentinels are reachable", labels=labels)
        majority = g(
            "kvcluster_sentinel_master_majority_reachable", "1 if a failover could be authorized", labels=labels
        )
        state = g("kvcluster_sentinel_master_failover_state", "Failover state (0: none)", labels=labels)
        for m in core.masters.values():
            n, ok_quorum, ok_majority = core.quorum_status(m)
            sdown.add_metric([m.name], 1 if m.sdown else 0)
            odown.add_metric([m.name], 1 if m.odown else 0)
            config_epoch.add_metric([m.name], m.config_epoch)
            replicas.add_metric([m.name], len(m.slaves))
            sentinels.add_metric([m.name], len(m.sentinels) + 1)
            usable.add_metric([m.name], n)
            quorum.add_metric([m.name], 1 if ok_quorum else 0)
            majority.add_metric([m.name], 1 if ok_majority else 0)
            state.add_metric([m.name], int(m.failover_state))
        yield from (epoch, tilt, started, finished, aborted, sdown, odown, config_epoch, replicas, sentinels)
        yield from (usable, quorum, majority, state)


class SentinelAdmin:
    def __init__(self, server: SentinelServer, host: str, port: int):
        self.server = server
        self.host = host
        self.port = port
        self.registry = CollectorRegistry()
        self.registry.register(SentinelCollector(server))
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/metrics", self.handle_metrics)
        app.router.add_get("/healthz", self.handle_healthz)
        app.router.add_get("/readyz", self.handle_readyz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        log.info("Admin HTTP server on http://%s:%d (/metrics /healthz /readyz)", self.host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def handle_metrics(self, request: web.Request) -> web.Response:
        from aiohttp import web

        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(self.registry), headers={"Content-Type": content_type})

    async def handle_healthz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.json_response({"status": "ok", "myid": self.server.core.myid})

    async def handle_readyz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        core = self.server.core
        reasons = ["in TILT mode"] if core.tilt else []
        for m in core.masters.values():
            if not core.quorum_status(m)[2]:
                reasons.append(f"{m.name}: no majority of sentinels reachable")
        return web.json_response({"ready": not reasons, "reasons": reasons}, status=200 if not reasons else 503)
