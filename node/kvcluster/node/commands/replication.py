"""Replication commands: REPLICAOF/SLAVEOF, REPLCONF, PSYNC/SYNC, ROLE, WAIT, EPOCH, INFO replication.

The stream logic is sans-I/O in :mod:`kvcluster.node.replication`; what needs sockets and
timers (streaming a snapshot, the link to our leader, acknowledgements) is in
:mod:`kvcluster.node.repl_io`, reached through ``node.repl_io``. A node without that shell
(unit tests that drive the core directly) answers these commands but cannot replicate.

Epochs (ours, see docs/protocol.md): ``REPLICAOF NO ONE EPOCH <n>`` promotes at epoch ``n``,
``REPLICAOF <host> <port> EPOCH <n>`` follows at epoch ``n``, ``EPOCH`` answers the node's
epoch and ``EPOCH <n>`` tells it of epoch ``n`` (a leader behind it stops taking writes).
"""

from __future__ import annotations

import time
from typing import Any

from kvcluster.common.resp import OK, CommandError, Raw, Status, string2ll
from kvcluster.node.client import Client
from kvcluster.node.commands.server import register_info_section
from kvcluster.node.commands.table import command
from kvcluster.node.replication import PsyncContinue, ReplicaInfo

NO_REPLY = Raw(b"")


def _parse_epoch(args: list[bytes], at: int) -> int | None:
    """An optional trailing ``EPOCH <n>`` starting at ``args[at]``."""
    rest = args[at:]
    if not rest:
        return None
    if len(rest) != 2 or rest[0].upper() != b"EPOCH":
        raise CommandError("ERR syntax error")
    try:
        epoch = int(rest[1])
    except ValueError:
        raise CommandError("ERR value is not an integer or out of range") from None
    if epoch < 0:
        raise CommandError("ERR epoch must be positive")
    return epoch


@command(
    "replicaof",
    -3,
    "admin noscript stale",
    group="server",
    summary="Configures a server as replica of another, or promotes it to a master.",
    since="5.0.0",
)
def replicaof(client: Client, args: list[bytes]) -> Any:
    node = client.node
    if client.kind == "master":
        raise CommandError("ERR Command is not valid when client is a replica.")
    epoch = _parse_epoch(args, 3)
    if epoch is not None and epoch < node.epoch:
        raise CommandError(f"FENCED epoch {epoch} is older than this node's epoch {node.epoch}")
    if args[1].lower() == b"no" and args[2].lower() == b"one":
        if epoch is not None:
            node.set_epoch(epoch)
            if node.fenced_by and node.fenced_by <= epoch:
                node.fenced_by = 0
        if node.role == "master":
            node.update_gate()
            return Status(b"OK")
        _require_io(node).promote()
        return OK
    host = args[1].decode("utf-8", "replace")
    try:
        port = int(args[2])
    except ValueError:
        raise CommandError("ERR Invalid master port") from None
    if not 0 < port < 65536:
        raise CommandError("ERR Invalid master port")
    if epoch is not None:
        node.set_epoch(epoch)
    if node.role != "master" and node.leader_addr == (host, port):
        return Status(b"OK Already connected to specified master")
    _require_io(node).follow(host, port)
    return OK


@command(
    "slaveof",
    -3,
    "admin noscript stale",
    group="server",
    summary="Sets a Redis server as a replica of another, or promotes it to being a master.",
)
def slaveof(client: Client, args: list[bytes]) -> Any:
    return replicaof(client, args)


def _require_io(node: Any) -> Any:
    if node.repl_io is None:
        raise CommandError("ERR replication is not available in this process")
    return node.repl_io


@command("replconf", -1, "admin noscript loading stale allow_busy", group="server", summary="An internal command.")
def replconf(client: Client, args: list[bytes]) -> Any:
    node = client.node
    if (len(args) - 1) % 2:
        raise CommandError("ERR syntax error")
    info = client.replica
    for i in range(1, len(args), 2):
        option = args[i].lower()
        value = args[i + 1]
        if option == b"ack" or option == b"fack":
            # No reply, ever: the leader never answers a replica's ACK.
            if info is not None and option == b"ack":
                try:
                    offset = int(value)
                except ValueError:
                    return NO_REPLY
                if offset > info.ack_offset:
                    info.ack_offset = offset
                info.ack_time = time.time()
                if node.repl_io is not None:
                    node.repl_io.on_ack()
            return NO_REPLY
        if option == b"getack":
            # Sent by a leader on the stream: the replica's link answers it (repl_io); here nothing.
            return NO_REPLY
        info = _pending_info(client)
        if option == b"listening-port":
            try:
                info.listening_port = int(value)
            except ValueError:
                raise CommandError("ERR value is not an integer or out of range") from None
        elif option == b"ip-address":
            info.ip = value.decode("utf-8", "replace")
        elif option == b"capa":
            info.capa.add(value.decode("utf-8", "replace").lower())
        elif option == b"epoch":
            try:
                theirs = int(value)
            except ValueError:
                raise CommandError("ERR value is not an integer or out of range") from None
            info.epoch = theirs
            node.learn_epoch(theirs)
            if node.role == "master" and node.fenced_by:
                raise CommandError(f"FENCED this node's epoch {node.epoch} is behind epoch {node.fenced_by}")
            return node.epoch
        elif option in (b"rdb-only", b"rdb-filter-only", b"ip-address"):
            pass
        else:
            raise CommandError(f"ERR Unrecognized REPLCONF option: {value.decode('utf-8', 'replace')}")
    return OK


def _pending_info(client: Client) -> ReplicaInfo:
    # Settings a replica sends before PSYNC; the client becomes a replica at PSYNC.
    info = client.replica
    if info is None:
        info = client.replica = ReplicaInfo(ip=client.addr.rsplit(":", 1)[0].strip("[]"))
    return info


@command("psync", -3, "admin noscript no_multi", group="server", summary="An internal command used in replication.")
def psync(client: Client, args: list[bytes]) -> Any:
    return _start_sync(client, args[1].decode("utf-8", "replace"), args[2])


@command("sync", 1, "admin noscript no_multi", group="server", summary="An internal command used in replication.")
def sync(client: Client, args: list[bytes]) -> Any:
    return _start_sync(client, "?", b"-1", old_protocol=True)


def _start_sync(client: Client, replid: str, offset_arg: bytes, old_protocol: bool = False) -> Any:
    node = client.node
    if client.kind == "replica" and client.replica is not None and client.replica.state != "wait_bgsave":
        return NO_REPLY  # already replicating: ignore, as Redis does
    if node.role != "master" and not node.link_up:
        raise CommandError("NOMASTERLINK Can't SYNC while not connected with my master")
    if node.fenced_by:
        raise CommandError(f"FENCED this node's epoch {node.epoch} is behind epoch {node.fenced_by}")
    io = _require_io(node)
    try:
        offset = int(offset_arg)
    except ValueError:
        raise CommandError("ERR value is not an integer or out of range") from None
    info = _pending_info(client)
    client.kind = "replica"
    node.unwatch_all(client)
    if not node.propagating:
        # The first replica: start streaming writes under a fresh history (as Redis creates its backlog).
        node.repl.shift_replid()
        node.repl.clear_replid2()
        node.propagating = True
    # Stream bytes not yet handed to replicas are in the backlog already: hand them out
    # before this replica joins, or it would get them twice (backlog + flush).
    node.flush_stream()
    decision = node.repl.psync(replid, offset)
    node.replicas[client.id] = client
    if isinstance(decision, PsyncContinue) and not old_protocol:
        node.stats.sync_partial_ok += 1
        reply = b"+CONTINUE %s\r\n" % decision.replid.encode() if "psync2" in info.capa else b"+CONTINUE\r\n"
        client.push_raw(reply)
        backlog = node.repl.backlog.read_from(decision.offset)
        if backlog:
            client.push_raw(backlog)
        info.state = "online"
        info.ack_offset = decision.offset
        info.ack_time = time.time()
        io.log.info(
            "Partial resynchronization request from %s accepted: %d bytes of backlog", client.addr, len(backlog)
        )
        node.update_gate()
        return NO_REPLY
    if replid != "?":
        node.stats.sync_partial_err += 1
        io.log.info("Partial resynchronization not accepted from %s: %s", client.addr, decision.reason)
    node.stats.sync_full += 1
    if not old_protocol:
        client.push_raw(b"+FULLRESYNC %s %d\r\n" % (decision.replid.encode(), decision.offset))
    io.start_full_sync(client, eof_capa="eof" in info.capa and not old_protocol)
    return NO_REPLY


@command("role", 1, "noscript loading stale fast", group="server", summary="Returns the replication role.")
def role(client: Client, args: list[bytes]) -> Any:
    node = client.node
    if node.role == "master":
        replicas = [
            [c.replica.ip.encode(), str(c.replica.listening_port).encode(), str(c.replica.ack_offset).encode()]
            for c in node.replicas.values()
            if c.replica is not None and c.replica.online
        ]
        return [b"master", node.repl.offset, replicas]
    host, port = node.leader_addr or ("", 0)
    return [b"slave", host.encode(), port, _link_state(node).encode(), node.repl.offset if node.link_up else -1]


def _link_state(node: Any) -> str:
    if node.link_up:
        return "connected"
    io = node.repl_io
    return io.link_state() if io is not None else "connect"


@command(
    "wait",
    3,
    "noscript",
    group="generic",
    summary="Blocks until the asynchronous replication of all preceding write commands reaches a number of replicas.",
    since="3.0.0",
)
def wait(client: Client, args: list[bytes]) -> Any:
    node = client.node
    if node.role != "master":
        raise CommandError(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 "
            "if a replica is configured to be writable (which is not the default) writes to replicas "
            "are just local and are not propagated."
        )
    # Redis's string2ll: no spaces, "+", "_" or values past 64 bits (a timer that long cannot be set).
    numreplicas = string2ll(args[1])
    if numreplicas is None:
        raise CommandError("ERR value is not an integer or out of range")
    timeout_ms = string2ll(args[2])
    if timeout_ms is None:
        raise CommandError("ERR timeout is not an integer or out of range")
    if timeout_ms < 0:
        raise CommandError("ERR timeout is negative")
    # As in Redis: the client's own writes (not other clients', PINGs or GETACKs) are waited for.
    target = client.woff
    acked = acked_replicas(node, target)
    if acked >= numreplicas or node.in_exec or node.repl_io is None:
        return acked
    # On timeout repl_io passes -1 - acked (semi-sync's convention); WAIT answers the count either way.
    node.repl_io.wait_for_acks(client, target, numreplicas, timeout_ms, lambda n: n if n >= 0 else -1 - n)
    return NO_REPLY


def acked_replicas(node: Any, offset: int) -> int:
    return sum(
        1
        for c in node.replicas.values()
        if c.replica is not None and c.replica.online and c.replica.ack_offset >= offset
    )


@command("epoch", -1, "admin noscript loading stale fast", group="server", summary="Gets or raises the fencing epoch.")
def epoch(client: Client, args: list[bytes]) -> Any:
    node = client.node
    if len(args) == 1:
        return node.epoch
    if len(args) != 2:
        raise CommandError("ERR syntax error")
    try:
        value = int(args[1])
    except ValueError:
        raise CommandError("ERR value is not an integer or out of range") from None
    node.learn_epoch(value)
    return node.epoch


def _replication_info(node: Any) -> list[tuple[str, Any]]:
    repl = node.repl
    fields: list[tuple[str, Any]] = [("role", "master" if node.role == "master" else "slave")]
    if node.role != "master":
        host, port = node.leader_addr or ("", 0)
        io = node.repl_io
        last_io = int(time.time() - io.last_leader_io) if io is not None and io.last_leader_io else -1
        fields += [
            ("master_host", host),
            ("master_port", port),
            ("master_link_status", "up" if node.link_up else "down"),
            ("master_last_io_seconds_ago", last_io if node.link_up else -1),
            ("master_sync_in_progress", 1 if io is not None and io.sync_in_progress else 0),
            ("slave_read_repl_offset", repl.offset),
            ("slave_repl_offset", repl.offset),
        ]
        if io is not None and io.sync_in_progress:
            fields += [("master_sync_total_bytes", io.sync_total_bytes), ("master_sync_read_bytes", io.sync_read_bytes)]
        if not node.link_up:
            fields.append(("master_link_down_since_seconds", int(time.time() - node.link_down_since)))
        fields += [
            ("slave_priority", node.config["replica-priority"]),
            ("slave_read_only", 1),
            ("replica_announced", 1),
        ]
    online = [c for c in node.replicas.values() if c.replica is not None]
    fields.append(("connected_slaves", len(online)))
    if node.role == "master" and node.config["min-replicas-to-write"]:
        fields.append(("min_slaves_good_slaves", node.good_replicas()))
    now = time.time()
    for i, c in enumerate(online):
        info = c.replica
        lag = int(now - info.ack_time) if info.ack_time else 0
        fields.append(
            (
                f"slave{i}",
                f"ip={info.ip},port={info.listening_port},state={info.state},offset={info.ack_offset},lag={lag}",
            )
        )
    fields += [
        ("master_failover_state", "no-failover"),
        ("master_replid", repl.replid),
        ("master_replid2", repl.replid2),
        ("master_repl_offset", repl.offset),
        # Redis's convention: the first byte the previous id does not cover (-1: none).
        ("second_repl_offset", repl.second_offset + 1 if repl.second_offset >= 0 else -1),
        ("repl_backlog_active", 1 if node.propagating else 0),
        ("repl_backlog_size", repl.backlog.size),
        ("repl_backlog_first_byte_offset", repl.backlog.start + 1 if len(repl.backlog) else 0),
        ("repl_backlog_histlen", len(repl.backlog)),
        # Ours: the fencing epoch (docs/protocol.md), and whether a newer one has fenced this leader.
        ("kvcluster_epoch", node.epoch),
        ("kvcluster_fenced", 1 if node.fenced_by else 0),
        ("kvcluster_durability", node.config["durability"]),
    ]
    return fields


register_info_section("replication", _replication_info)


def _replication_metrics(node: Any) -> Any:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    repl = node.repl
    yield GaugeMetricFamily("kvcluster_repl_offset", "Replication stream offset", value=repl.offset)
    yield GaugeMetricFamily("kvcluster_epoch", "Fencing epoch this node is at", value=node.epoch)
    yield GaugeMetricFamily("kvcluster_fenced", "1 if a newer epoch fenced us", value=int(bool(node.fenced_by)))
    yield GaugeMetricFamily(
        "kvcluster_master_link_up", "Replica: 1 while the link to the leader is up", value=1 if node.link_up else 0
    )
    yield GaugeMetricFamily(
        "kvcluster_connected_replicas", "Replicas connected (syncing or online)", value=len(node.replicas)
    )
    offsets = GaugeMetricFamily(
        "kvcluster_replica_offset", "Last offset each replica acknowledged", labels=["replica", "state"]
    )
    lag_bytes = GaugeMetricFamily(
        "kvcluster_replica_lag_bytes", "Stream bytes each replica has not acknowledged", labels=["replica"]
    )
    lag_seconds = GaugeMetricFamily(
        "kvcluster_replica_lag_seconds", "Seconds since each replica's last acknowledgement", labels=["replica"]
    )
    now = time.time()
    for c in node.replicas.values():
        info = c.replica
        if info is None:
            continue
        name = f"{info.ip}:{info.listening_port}"
        offsets.add_metric([name, info.state], info.ack_offset)
        lag_bytes.add_metric([name], max(0, repl.offset - info.ack_offset))
        lag_seconds.add_metric([name], now - info.ack_time if info.ack_time else 0)
    yield offsets
    yield lag_bytes
    yield lag_seconds
    stats = node.stats
    yield CounterMetricFamily("kvcluster_sync_full", "Full resyncs served", value=stats.sync_full)
    yield CounterMetricFamily("kvcluster_sync_partial_ok", "Partial resyncs accepted", value=stats.sync_partial_ok)
    yield CounterMetricFamily("kvcluster_sync_partial_err", "Partial resyncs refused", value=stats.sync_partial_err)


def _replication_readiness(node: Any) -> str | None:
    # A replica serves reads only once it holds its leader's data (Kubernetes routes by this).
    if node.role == "master":
        return None
    if not node.link_up:
        return "replica: the link to the leader is down"
    return None


def _register_admin_hooks() -> None:
    from kvcluster.node.admin import register_metrics, register_readiness_check

    register_metrics(_replication_metrics)
    register_readiness_check("replication", _replication_readiness)


_register_admin_hooks()
