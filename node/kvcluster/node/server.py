"""The node's asyncio shell: sockets in, :class:`~kvcluster.node.core.Node` in the middle.

One :class:`Connection` (an ``asyncio.Protocol``) per client: it feeds bytes to
the request parser, runs every complete command of the read through
``Node.execute`` and writes all replies with one ``transport.write``. It also
enforces the per-connection limits (query buffer, output buffer, maxclients,
idle timeout). Timers run the node's periodic work (active expiry, timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from typing import Any

from kvcluster.common.config import Config
from kvcluster.common.process import install_event_loop_policy, pidfile
from kvcluster.common.resp import ErrorReply, ParserLimits, ProtocolError, Raw, make_request_parser
from kvcluster.node.client import Client
from kvcluster.node.commands.server import sample_server_metrics
from kvcluster.node.core import Node

log = logging.getLogger("kvcluster.node")

# Redis caps the query buffer of a client that has not authenticated yet at 1 MiB.
UNAUTH_QUERY_BUFFER_LIMIT = 1024 * 1024
# Replies of one read go to the transport once they pass this size, so output buffer
# limits apply while a pipeline of big replies runs (Redis checks after every reply).
_REPLY_FLUSH_SIZE = 64 * 1024
# Command names that are HTTP ("POST /", "Host: ..."): someone is using a browser or an SSRF
# to talk to us (cross protocol scripting). Redis drops such connections without a reply.
_HTTP_COMMAND_NAMES = (b"post", b"host:")
_SECURITY_WARNING_INTERVAL = 60.0
# The reply of a command whose real reply is held (semi-sync): nothing for now.
_HELD = Raw(b"")
_last_security_warning = -_SECURITY_WARNING_INTERVAL


def _is_http_command(name: bytes) -> bool:
    # Redis compares with strcasecmp: the C string ends at NUL.
    return name.split(b"\0", 1)[0].lower() in _HTTP_COMMAND_NAMES


class Connection(asyncio.Protocol):
    __slots__ = ("batch", "client", "closing", "node", "parser", "server", "transport")

    def __init__(self, server: NodeServer):
        self.server = server
        self.node = server.node
        self.transport: asyncio.Transport | None = None
        self.client: Client | None = None
        self.parser = make_request_parser(server.parser_kind, server.parser_limits)
        self.closing = False
        # While a read's commands run, their replies collect here; writes to this
        # connection meanwhile (a pub/sub message to itself, a MONITOR line) join the
        # list so they go out in order after the replies of earlier commands.
        self.batch: list[bytes] | None = None

    # -- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        node = self.node
        if len(node.clients) >= node.config["maxclients"]:
            node.stats.rejected_connections += 1
            transport.write(b"-ERR max number of clients reached\r\n")
            transport.close()
            self.closing = True
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client = node.new_client(_format_addr(peer), _format_addr(local), self)
        self.parser.auth_required = not self.client.authenticated

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None or self.closing:
            return
        client.last_interaction = time.monotonic()
        self.node.stats.total_net_input_bytes += len(data)
        self.parser.feed(data)
        if client.blocked:  # WAIT or a semi-sync write: later commands wait for its reply
            self._check_query_buffer(client)
        else:
            self._process(client)

    def resume(self, first: list[bytes] | None = None) -> None:
        """The client was unblocked: run the commands that arrived meanwhile (soon, not nested).

        ``first`` is a command CLIENT PAUSE postponed: it runs before them."""
        asyncio.get_running_loop().call_soon(self._resume, first)

    def _resume(self, first: list[bytes] | None = None) -> None:
        client = self.client
        if client is not None and not self.closing and not client.blocked:
            self._process(client, first)

    def _process(self, client: Client, first: list[bytes] | None = None) -> None:
        node = self.node
        parser = self.parser
        execute = node.execute
        out: list[bytes] = []
        out_size = 0
        auth_required = parser.auth_required
        self.batch = out
        try:
            while True:
                args = parser.next_command() if first is None else first
                first = None
                if args is None:
                    break
                reply = execute(client, args)
                if node.last_write_offset >= 0:  # semi-sync: the reply waits for the replicas
                    node.last_write_offset = -1
                    if client.kind == "normal" and node.role == "master" and node.repl_io is not None:
                        node.repl_io.hold_for_acks(client, reply)
                        reply = _HELD
                elif reply.__class__ is ErrorReply and _is_http_command(args[0]):  # unknown to the table
                    self._abort_cross_protocol()
                    return
                # After the call: HELLO may have switched the client's protocol.
                encoded = client.encode(reply)
                out.append(encoded)
                if client.close_after_reply:
                    self.closing = True
                    break
                if client.blocked:
                    break
                if client.authenticated == auth_required:  # AUTH, HELLO or RESET changed it
                    parser.auth_required = auth_required = not client.authenticated
                out_size += len(encoded)
                if out_size > _REPLY_FLUSH_SIZE:
                    self.batch = None
                    self.write(b"".join(out))
                    if self.closing:  # over an output buffer limit
                        out = []
                        break
                    out = []
                    out_size = 0
                    self.batch = out
        except ProtocolError as e:
            out.append(e.reply)
            node.stats.total_error_replies += 1
            node.stats.error_counts["ERR"] = node.stats.error_counts.get("ERR", 0) + 1
            log.debug("protocol error from %s: %s", client.addr, e)
            self.closing = True
        finally:
            self.batch = None
        if out:
            self.write(b"".join(out) if len(out) > 1 else out[0])
        if self.closing:
            self.close()
        else:
            self._check_query_buffer(client)

    def _check_query_buffer(self, client: Client) -> None:
        node = self.node
        if self.parser.pending() > (
            self.server.query_buffer_limit
            if client.authenticated
            else min(self.server.query_buffer_limit, UNAUTH_QUERY_BUFFER_LIMIT)
        ):
            node.stats.client_query_buffer_limit_disconnections += 1
            log.warning("closing client %s: query buffer over client-query-buffer-limit", client.addr)
            self.close()

    def _abort_cross_protocol(self) -> None:
        global _last_security_warning
        now = time.monotonic()
        if now - _last_security_warning >= _SECURITY_WARNING_INTERVAL:
            _last_security_warning = now
            log.warning(
                "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to "
                "kvcluster. This is likely due to an attacker attempting to use Cross Protocol Scripting to "
                "compromise your instance. Connection aborted."
            )
        self.closing = True
        if self.transport is not None:
            self.transport.abort()  # replies still queued for this client are dropped too, as in Redis

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        client = self.client
        if client is not None:
            self.node.remove_client(client)
            repl_io = self.node.repl_io
            if repl_io is not None:
                repl_io.client_gone(client)

    # -- ClientConnection ---------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.batch is not None:
            self.batch.append(data)
            return
        hold = self.node.hold_reply
        if hold is not None and hold(self, data):  # appendfsync always: sent once the AOF is on disk
            return
        self.send(data)

    def send(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.node.stats.total_net_output_bytes += len(data)
        transport.write(data)
        if transport.get_write_buffer_size() > self.server.obuf_check_threshold:
            self.server.check_output_buffer(self)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def output_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0


def _format_addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr or "")


def parse_obuf_limits(words: list[str]) -> dict[str, tuple[int, int, int]]:
    """``client-output-buffer-limit`` words -> class -> (hard, soft, soft_seconds)."""
    from kvcluster.common.config import ConfigError, parse_memory

    if len(words) % 4:
        raise ConfigError("wrong number of arguments for client-output-buffer-limit")
    limits: dict[str, tuple[int, int, int]] = {}
    for i in range(0, len(words), 4):
        cls = words[i].lower()
        if cls == "slave":
            cls = "replica"
        if cls not in ("normal", "replica", "pubsub"):
            raise ConfigError(f"invalid client class {words[i]!r} for client-output-buffer-limit")
        limits[cls] = (parse_memory(words[i + 1]), parse_memory(words[i + 2]), int(words[i + 3]))
    return limits


class NodeServer:
    """Owns the listening sockets, the timers and the node."""

    def __init__(self, config: Config, node: Node | None = None):
        self.config = config
        self.node = node or Node(config)
        self.parser_kind = config["resp-parser"]
        self.parser_limits = ParserLimits(config["proto-max-bulk-len"], config["proto-max-multibulk-len"])
        config.on_change("proto-max-bulk-len", lambda v: setattr(self.parser_limits, "max_bulk_len", v))
        config.on_change("proto-max-multibulk-len", lambda v: setattr(self.parser_limits, "max_multibulk_len", v))
        self.query_buffer_limit = config["client-query-buffer-limit"]
        config.on_change("client-query-buffer-limit", lambda v: setattr(self, "query_buffer_limit", v))
        self.obuf_limits = parse_obuf_limits(config["client-output-buffer-limit"])
        config.on_change("client-output-buffer-limit", self._set_obuf_limits)
        self.obuf_check_threshold = self._obuf_threshold()
        self.servers: list[asyncio.base_events.Server] = []
        self._stopping: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.node.request_shutdown = self.request_shutdown
        self.ports: list[int] = []
        from kvcluster.node.repl_io import ReplicationIO

        self.repl_io = ReplicationIO(self)
        from kvcluster.node.persistence import Persistence

        self.persistence = Persistence(self.node)
        self.admin: Any = None  # the HTTP admin server (kvcluster.node.admin) when admin-port is set

    def _set_obuf_limits(self, words: list[str]) -> None:
        self.obuf_limits = parse_obuf_limits(words)
        self.obuf_check_threshold = self._obuf_threshold()

    def _obuf_threshold(self) -> int:
        # Writes only look at limits once the buffer exceeds the smallest configured one.
        sizes = [x for hard, soft, _ in self.obuf_limits.values() for x in (hard, soft) if x > 0]
        return min(sizes) if sizes else 1 << 62

    def check_output_buffer(self, conn: Connection) -> None:
        client = conn.client
        if client is None or conn.closing:
            return
        hard, soft, soft_seconds = self.obuf_limits.get(client.kind, (0, 0, 0))
        size = conn.output_buffer_size()
        now = time.monotonic()
        over = False
        if hard and size >= hard:
            over = True
        elif soft and size >= soft:
            if not client.obuf_soft_since:
                client.obuf_soft_since = now
            elif now - client.obuf_soft_since >= soft_seconds:
                over = True
        else:
            client.obuf_soft_since = 0.0
        if over:
            self.node.stats.client_output_buffer_limit_disconnections += 1
            log.warning("closing client %s: output buffer %d bytes over the %s limit", client.addr, size, client.kind)
            # Drop what is queued: the point is to stop holding memory for a slow reader.
            if conn.transport is not None:
                conn.transport.abort()
            conn.closing = True

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        port = self.config["port"]
        binds = self.config["bind"] or ["127.0.0.1"]
        for host in binds:
            host = host.lstrip("-")  # "-::1" means optional in redis.conf
            server = await loop.create_server(
                lambda: Connection(self),
                host=None if host in ("*", "") else host,
                port=port,
                backlog=self.config["tcp-backlog"],
                reuse_address=True,
            )
            self.servers.append(server)
            for sock in server.sockets:
                self.ports.append(sock.getsockname()[1])
        self._schedule_cron()
        log.info(
            "Ready to accept connections tcp on %s port %s",
            ",".join(binds),
            self.ports[0] if self.ports else port,
        )

    def _schedule_cron(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(1.0 / self.config["hz"], self._cron)

    def _cron(self) -> None:
        """Periodic work, ``hz`` times a second: active expiry, idle timeouts, obuf soft limits."""
        try:
            hz = self.config["hz"]
            # Like Redis: up to 25% of each tick's time on active expiry.
            self.node.keyspace.active_expire_cycle(time_limit_us=int(250_000 / hz))
            self._close_idle_clients()
            self.repl_io.cron()
            self.persistence.cron()
            sample_server_metrics(self.node)  # INFO's instantaneous rates, every 100 ms
        except Exception:
            log.exception("error in periodic task")
        self._schedule_cron()

    def _close_idle_clients(self) -> None:
        timeout = self.config["timeout"]
        now = time.monotonic()
        monitors = self.node.monitors
        for client in list(self.node.clients.values()):
            conn = client.conn
            if not isinstance(conn, Connection):
                continue
            # Like Redis: replicas, MONITOR, pub/sub and blocked (WAIT) clients never time out.
            if (
                timeout
                and client.kind == "normal"
                and not client.in_pubsub
                and not client.blocked
                and client not in monitors
                and now - client.last_interaction > timeout
            ):
                log.info("closing idle client %s", client.addr)
                conn.close()
            elif client.obuf_soft_since:
                self.check_output_buffer(conn)

    def request_shutdown(self, save: bool | None = None) -> None:
        if self._stopping is not None:
            self._stopping.set()
            # Nothing more runs after the final save and AOF sync: no read, no write.
            for client in self.node.clients.values():
                conn = client.conn
                if isinstance(conn, Connection) and conn.transport is not None:
                    with contextlib.suppress(Exception):
                        conn.transport.pause_reading()

    async def serve_forever(self) -> None:
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)
        await self.start()
        try:
            await self.persistence.start()  # load the data (clients get -LOADING meanwhile)
        except BaseException:
            await self.stop()
            raise
        self.repl_io.start()
        if self.config["admin-port"]:
            from kvcluster.node.admin import AdminServer, resolve_admin_port

            self.admin = AdminServer(
                self.node,
                lambda: bool(self.servers) and all(s.is_serving() for s in self.servers),
                self.config["admin-bind"],
                resolve_admin_port(self.config),
            )
            await self.admin.start()
        with pidfile(self.config["pidfile"]):
            await self._stopping.wait()
            await self.stop()

    def _on_signal(self, sig: int) -> None:
        log.warning("Received %s scheduling shutdown...", signal.Signals(sig).name)
        if not self.persistence.prepare_shutdown(None, False):
            log.error("SIGTERM received but errors trying to shut down the server, check the logs for more information")
            return
        self.request_shutdown(None)

    async def stop(self) -> None:
        if self.admin is not None:  # first, so /readyz stops answering before clients are cut
            await self.admin.stop()
        if self._timer is not None:
            self._timer.cancel()
        await self.repl_io.stop()
        for server in self.servers:
            server.close()
        for client in list(self.node.clients.values()):
            client.close()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self.persistence.close()
        log.warning("kvcluster node is now ready to exit, bye bye...")


# File descriptors kept for everything but clients (Redis's CONFIG_MIN_RESERVED_FDS).
_RESERVED_FDS = 32


def adjust_open_files_limit(config: Config) -> None:
    """Like Redis at start-up: raise RLIMIT_NOFILE to maxclients + 32, or lower maxclients to fit.

    Otherwise clients past the descriptor limit are dropped without the
    "max number of clients reached" error, and the node itself runs out of files.
    """
    import resource

    maxclients = config["maxclients"]
    wanted = maxclients + _RESERVED_FDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
        soft = limit
    except (ValueError, OSError) as e:
        log.warning("Server can't set maximum open files to %d because of OS error: %s", limit, e)
    if soft >= wanted:
        return
    reduced = max(soft - _RESERVED_FDS, 1)
    log.warning(
        "You requested maxclients of %d requiring at least %d max file descriptors. Current maximum open files "
        "is %d. maxclients has been reduced to %d to compensate for low ulimit. "
        "If you need higher maxclients increase 'ulimit -n'.",
        maxclients,
        wanted,
        soft,
        reduced,
    )
    config.set_value("maxclients", reduced, source=config.sources.get("maxclients", "default"))


def run_node(config: Config) -> int:
    """Run a node until SHUTDOWN or a signal; the process exit code."""
    loop_name = install_event_loop_policy()
    log.info("kvcluster node starting (pid %d, %s event loop)", os.getpid(), loop_name)
    adjust_open_files_limit(config)
    directory = config["dir"]
    if directory:
        os.makedirs(directory, exist_ok=True)
    server = NodeServer(config)
    server.node.event_loop_name = loop_name  # type: ignore[attr-defined]
    from kvcluster.node.discovery import apply_start_up_discovery
    from kvcluster.node.persistence import PersistenceError

    async def discover_then_serve() -> None:
        # Before anything listens or loads: a restarted node must not serve a single write as a
        # leader the sentinels replaced (kvcluster.node.discovery).
        await apply_start_up_discovery(config, server.node)
        await server.serve_forever()

    try:
        asyncio.run(discover_then_serve())
    except PersistenceError as e:
        log.error("Fatal error loading the data: %s", e)
        return 1
    return 0
