"""The sentinel's asyncio shell: sockets and timers around :class:`~kvcluster.sentinel.core.SentinelCore`.

* a RESP server (the node's request parser and reply encoders) for clients and other sentinels;
* one :class:`Link` per address the core wants: a command connection, plus a pub/sub connection
  subscribed to ``__sentinel__:hello`` for nodes; replies go back to the core in order;
* a 100 ms timer calling ``core.tick``;
* after every input, :meth:`SentinelServer.apply` carries out the core's Ready: persist first
  (and stop rather than send anything if that fails), then send, then log/publish events.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fnmatch
import logging
import os
import random
import signal
import socket
import time
from typing import Any

import hiredis
from kvcluster.common.config import Config
from kvcluster.common.process import install_event_loop_policy, pidfile
from kvcluster.common.resp import ErrorReply, ProtocolError, Push, encode2, encode3, encode_command, make_request_parser
from kvcluster.sentinel import commands, state
from kvcluster.sentinel.commands import COMMANDS, NO_AUTH, NO_REPLY, PUBSUB_CONTEXT
from kvcluster.sentinel.core import (
    HELLO_CHANNEL,
    Addr,
    Err,
    Event,
    LinkSpec,
    Ready,
    SentinelCore,
    SentinelError,
    is_ip,
)

log = logging.getLogger("kvcluster.sentinel")

TICK = 0.1
RECONNECT_DELAY = 0.5
CONNECT_TIMEOUT = 2.0
SEED_RESOLVE_PERIOD = 30.0
# Asking the peers who leads a group known only from --monitor, at start-up (before listening).
START_UP_ASK_TIMEOUT = 1.5
_LEVELS = {"warning": logging.WARNING, "notice": logging.INFO, "log": logging.INFO, "debug": logging.DEBUG}


def _now_ms() -> float:
    return time.monotonic() * 1000.0


def _format_addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr or "")


def _convert(reply: Any) -> Any:
    if isinstance(reply, hiredis.ReplyError):
        return Err(str(reply))
    if isinstance(reply, list):
        return [_convert(r) for r in reply]
    return reply


# -- clients of the sentinel ----------------------------------------------------------------------


class SentinelClient(asyncio.Protocol):
    """One client connection: parse, execute, apply the core's Ready, then reply."""

    def __init__(self, server: SentinelServer):
        self.server = server
        self.parser = make_request_parser("auto")
        self.transport: asyncio.Transport | None = None
        self.id = server.next_client_id()
        self.addr = ""
        self.name = b""
        self.resp = 2
        self.encode = encode2
        self.authenticated = not server.config["requirepass"]
        self.subscriptions: set[bytes] = set()
        self.patterns: set[bytes] = set()
        self.close_after_reply = False
        self.created = time.time()
        self._batch: list[bytes] | None = None

    @property
    def in_pubsub(self) -> bool:
        return bool(self.subscriptions or self.patterns)

    @property
    def subscription_count(self) -> int:
        return len(self.subscriptions) + len(self.patterns)

    def set_resp(self, version: int) -> None:
        self.resp = version
        self.encode = encode3 if version == 3 else encode2

    def info_line(self) -> str:
        age = int(time.time() - self.created)
        flags = "P" if self.in_pubsub else "N"
        return f"id={self.id} addr={self.addr} name={self.name.decode('utf-8', 'replace')} age={age} flags={flags}"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.addr = _format_addr(transport.get_extra_info("peername"))
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.clients[self.id] = self
        self.server.stats_connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.clients.pop(self.id, None)

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        out: list[bytes] = []
        self._batch = out
        try:
            while not self.close_after_reply:
                args = self.parser.next_command()
                if args is None:
                    break
                if not args:
                    continue
                reply = self.server.execute(self, args)
                if reply is not NO_REPLY:
                    out.append(self.encode(reply))
        except ProtocolError as e:
            out.append(e.reply)
            self.close_after_reply = True
        finally:
            self._batch = None
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
        if self.close_after_reply:
            self.close()

    def push(self, value: Any) -> None:
        data = self.encode(value)
        if self._batch is not None:
            self._batch.append(data)
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# -- links to nodes and other sentinels ------------------------------------------------------


class Link:
    """The connections to one address the core wants; reconnects until stopped."""

    def __init__(self, server: SentinelServer, addr: Addr, spec: LinkSpec):
        self.server = server
        self.addr = addr
        self.spec = spec
        self.connected = False
        self.pending: collections.deque[tuple[str, ...] | None] = collections.deque()
        self.writer: asyncio.StreamWriter | None = None
        self.pubsub_writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopped = False

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        self.stopped = True
        self._close_writers()
        if self.task is not None:
            self.task.cancel()

    def restart(self) -> None:
        """Drop the connection now; the loop reconnects."""
        self._close_writers()

    def _close_writers(self) -> None:
        for w in (self.writer, self.pubsub_writer):
            if w is not None:
                w.close()

    def send(self, args: tuple[str, ...], tag: tuple[str, ...]) -> bool:
        if not self.connected or self.writer is None or self.writer.is_closing():
            return False
        self.writer.write(encode_command(*args))
        self.pending.append(tag)
        return True

    async def _run(self) -> None:
        while not self.stopped:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionError, TimeoutError, hiredis.ProtocolError) as e:
                log.debug("link to %s:%d: %s", self.addr[0], self.addr[1], e)
            except Exception:
                log.exception("link to %s:%d failed", self.addr[0], self.addr[1])
            finally:
                self._down()
            await asyncio.sleep(RECONNECT_DELAY)

    async def _open(self, kind: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
        host, port = self.addr
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
        preamble = 0
        if self.spec.auth_pass:
            creds = [self.spec.auth_user, self.spec.auth_pass] if self.spec.auth_user else [self.spec.auth_pass]
            writer.write(encode_command("AUTH", *creds))
            preamble += 1
        name = f"sentinel-{self.server.core.myid[:8]}-{kind}"
        writer.write(encode_command("CLIENT", "SETNAME", name))
        preamble += 1
        return reader, writer, preamble

    async def _session(self) -> None:
        reader, writer, preamble = await self._open("cmd")
        self.writer = writer
        self.pending.clear()
        self.pending.extend([None] * preamble)
        pubsub_task: asyncio.Task[None] | None = None
        try:
            if self.spec.kind == "node":
                preader, pwriter, ppre = await self._open("pubsub")
                pwriter.write(encode_command("SUBSCRIBE", HELLO_CHANNEL))
                self.pubsub_writer = pwriter
                pubsub_task = asyncio.get_running_loop().create_task(self._pubsub_loop(preader, ppre))
            self.connected = True
            peer = writer.get_extra_info("peername")
            local = writer.get_extra_info("sockname")
            self.server.on_link_up(self.addr, local[0] if local else "", peer[0] if peer else "")
            parser = hiredis.Reader()
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    raise ConnectionError("connection closed")
                parser.feed(data)
                while True:
                    reply = parser.gets()
                    if reply is False:
                        break
                    tag = self.pending.popleft() if self.pending else None
                    if tag is not None:
                        self.server.on_reply(self.addr, tag, _convert(reply))
        finally:
            if pubsub_task is not None:
                pubsub_task.cancel()

    async def _pubsub_loop(self, reader: asyncio.StreamReader, preamble: int) -> None:
        parser = hiredis.Reader()
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                parser.feed(data)
                while True:
                    reply = parser.gets()
                    if reply is False:
                        break
                    if preamble:
                        preamble -= 1
                        continue
                    if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                        self.server.on_hello(reply[2].decode("utf-8", "replace"))
        except (OSError, ConnectionError, hiredis.ProtocolError):
            pass
        finally:
            # Without its pub/sub half the link counts as down, as in Redis.
            if self.writer is not None:
                self.writer.close()

    def _down(self) -> None:
        was = self.connected
        self.connected = False
        self.pending.clear()
        self._close_writers()
        self.writer = self.pubsub_writer = None
        if was and not self.stopped:
            self.server.on_link_down(self.addr)


# -- the server ---------------------------------------------------------------------------------


class SentinelServer:
    def __init__(self, config: Config, core: SentinelCore, version: str = ""):
        self.config = config
        self.core = core
        self.version = version
        self.port = config["port"]
        self.clients: dict[int, SentinelClient] = {}
        self.links: dict[Addr, Link] = {}
        self.start_time = time.time()
        self.stats_connections = 0
        self.stats_commands = 0
        self._client_ids = 0
        self._servers: list[asyncio.base_events.Server] = []
        self._stopping: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.exit_code = 0
        self.admin: Any = None
        self._seed_names: list[Addr] = []
        self._seed_task: asyncio.Task[None] | None = None
        self._apply_settings()
        for name in ("announce-ip", "announce-port", "announce-hostnames", "resolve-hostnames"):
            config.on_change(name, lambda _v: self._apply_settings())
        for name in ("sentinel-user", "sentinel-pass"):
            config.on_change(name, lambda _v: self._apply_settings())

    def _apply_settings(self) -> None:
        core, config = self.core, self.config
        core.announce_ip = config["announce-ip"]
        core.announce_port = config["announce-port"]
        core.announce_hostnames = config["announce-hostnames"]
        core.resolve_hostnames = config["resolve-hostnames"]
        core.sentinel_user = config["sentinel-user"]
        core.sentinel_pass = config["sentinel-pass"]

    def next_client_id(self) -> int:
        self._client_ids += 1
        return self._client_ids

    def now(self) -> float:
        return _now_ms()

    # -- commands --------------------------------------------------------------------------

    def execute(self, client: SentinelClient, args: list[bytes]) -> Any:
        self.stats_commands += 1
        name = args[0].decode("utf-8", "replace").lower()
        entry = COMMANDS.get(name)
        try:
            if entry is None:
                shown = " ".join(f"'{a.decode('utf-8', 'replace')}'" for a in args[1:4])
                raise SentinelError(
                    f"ERR unknown command '{args[0].decode('utf-8', 'replace')}', with args beginning with: {shown}"
                )
            if not client.authenticated and name not in NO_AUTH:
                raise SentinelError("NOAUTH Authentication required.")
            if client.in_pubsub and client.resp == 2 and name not in PUBSUB_CONTEXT:
                raise SentinelError(
                    f"ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
                    "are allowed in this context"
                )
            handler, arity = entry
            commands.check_arity(name, arity, len(args))
            reply = handler(self, client, args)
        except SentinelError as e:
            reply = ErrorReply(e.message)
        if not self.apply(self.core.take_ready()):
            client.close_after_reply = True
            return ErrorReply("ERR the sentinel could not save its state and is stopping")
        return reply

    def monitor(self, name: str, host: str, port: int, quorum: int) -> None:
        m = self.core.monitor(name, host, port, quorum)
        config = self.config
        m.down_after = config["down-after-milliseconds"]
        m.failover_timeout = config["failover-timeout"]
        m.parallel_syncs = config["parallel-syncs"]
        m.auth_pass = config["auth-pass"]
        m.auth_user = config["auth-user"]

    # -- inputs from links ------------------------------------------------------------------

    def on_link_up(self, addr: Addr, local_ip: str, peer_ip: str) -> None:
        if peer_ip and peer_ip != addr[0]:
            self.core.resolved_host(addr[0], peer_ip)
        self.core.link_up(addr, local_ip, _now_ms())
        self.apply(self.core.take_ready())

    def on_link_down(self, addr: Addr) -> None:
        self.core.link_down(addr, _now_ms())
        self.apply(self.core.take_ready())

    def on_reply(self, addr: Addr, tag: tuple[str, ...], value: Any) -> None:
        self.core.on_reply(addr, tag, value, _now_ms())
        self.apply(self.core.take_ready())

    def on_hello(self, payload: str) -> None:
        self.core.on_hello(payload, _now_ms())
        self.apply(self.core.take_ready())

    # -- the Ready -----------------------------------------------------------------------------

    def apply(self, ready: Ready) -> bool:
        """Carry out a Ready in its order. False (and the process stops) if the state cannot be saved."""
        if not ready:
            return True
        if ready.persist:
            try:
                state.save(self.core, self.config)
            except Exception as e:
                log.critical("Sentinel was not able to save its state on disk (%s): stopping", e)
                self.exit_code = 1
                self.request_shutdown()
                return False
        for msg in ready.messages:
            link = self.links.get(msg.addr)
            # A link the core still thinks up but that just broke: the message is lost, the
            # core hears of the break next.
            if link is not None:
                link.send(msg.args, msg.tag)
        for event in ready.events:
            self._publish_event(event)
        for addr in ready.disconnects:
            link = self.links.get(addr)
            if link is not None:
                link.restart()
        self._reconcile_links()
        return True

    def _publish_event(self, event: Event) -> None:
        text = f"{event.kind} {event.text}".rstrip()
        log.log(_LEVELS.get(event.level, logging.WARNING), "%s", text)
        if event.level in ("debug", "log"):
            return
        channel = event.kind.encode()
        message = event.text.encode()
        for client in list(self.clients.values()):
            if channel in client.subscriptions:
                client.push(Push([b"message", channel, message]))
            for pattern in client.patterns:
                if fnmatch.fnmatchcase(event.kind, pattern.decode("utf-8", "replace")):
                    client.push(Push([b"pmessage", pattern, channel, message]))

    def _reconcile_links(self) -> None:
        wanted = self.core.wanted_links()
        for addr, spec in wanted.items():
            link = self.links.get(addr)
            if link is not None and link.spec != spec:
                link.stop()
                link = None
            if link is None:
                link = self.links[addr] = Link(self, addr, spec)
                link.start()
        for addr in list(self.links):
            if addr not in wanted:
                self.links.pop(addr).stop()

    # -- running -----------------------------------------------------------------------------

    def _tick(self) -> None:
        try:
            self.core.tick(_now_ms(), time.time() * 1000.0)
            self.apply(self.core.take_ready())
        except Exception:
            log.exception("error in the sentinel timer")
        self._timer = asyncio.get_running_loop().call_later(TICK, self._tick)

    async def _resolve_seeds(self) -> None:
        """Peers given by name (a headless Service): every address the name has is a peer."""
        loop = asyncio.get_running_loop()
        literal = [addr for addr in self.core.seeds if is_ip(addr[0])]
        while True:
            found: list[Addr] = []
            for host, port in self._seed_names:
                try:
                    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                except OSError as e:
                    log.warning("cannot resolve sentinel peer %s: %s", host, e)
                    found.append((host, port))  # connect by name meanwhile
                    continue
                found += sorted({(str(info[4][0]), port) for info in infos})
            seeds = list(dict.fromkeys([*literal, *found]))
            if seeds != self.core.seeds:
                self.core.seeds = seeds
                self.core._reindex()
                self._reconcile_links()
            await asyncio.sleep(SEED_RESOLVE_PERIOD)

    async def _discover_monitored_leader(self) -> None:
        """A group we know only from ``--monitor``: ask the peers who leads it now, and monitor that.

        A sentinel created (or re-created with no state) after a failover would otherwise monitor
        the stale --monitor address and hand it to clients until a hello reaches it. Quorum and
        settings stay ours; the leader and config-epoch come from the peer with the highest epoch.
        """
        core, config = self.core, self.config
        monitor = config["monitor"]
        m = core.masters.get(monitor[0]) if monitor else None
        if m is None or not core.seeds or m.config_epoch or m.slaves or m.sentinels:
            return  # nothing to ask, or our saved state knows more than the --monitor line
        peers = await _resolve_all(core.seeds)
        best = await _ask_peers(peers, m.name, config["sentinel-user"], config["sentinel-pass"], START_UP_ASK_TIMEOUT)
        if best is None:
            log.info("No sentinel peer knows %s yet: monitoring %s:%d as configured", m.name, m.host, m.port)
            return
        (host, port), epoch, peer = best
        if epoch <= m.config_epoch:
            return  # no failover since the --monitor line's configuration: it stands
        try:
            core.check_host(host)
        except SentinelError:
            log.warning("Peer %s:%d names %s:%d for %s, a host name: set resolve-hostnames", *peer, host, port, m.name)
            return
        log.warning(
            "Peer %s:%d says %s is led by %s:%d at config-epoch %d: monitoring it instead of %s:%d",
            *peer,
            m.name,
            host,
            port,
            epoch,
            m.host,
            m.port,
        )
        stale = m.addr
        del core.masters[m.name]
        fresh = core.monitor(m.name, host, port, m.quorum, event=False)
        for attr in ("down_after", "failover_timeout", "parallel_syncs", "auth_pass", "auth_user"):
            setattr(fresh, attr, getattr(m, attr))
        fresh.config_epoch = epoch
        core.current_epoch = max(core.current_epoch, epoch)
        if stale != (host, port):
            core.add_replica(fresh, stale[0], stale[1], event=False)  # it was the group's node
        core._reindex()

    def request_shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await self._discover_monitored_leader()  # before we listen: nobody hears a stale leader from us
        binds = self.config["bind"] or ["127.0.0.1"]
        for host in binds:
            host = host.lstrip("-")
            server = await loop.create_server(
                lambda: SentinelClient(self),
                host=None if host in ("*", "") else host,
                port=self.port,
                reuse_address=True,
            )
            self._servers.append(server)
            if self.port == 0:
                self.port = server.sockets[0].getsockname()[1]
        self.core.start(_now_ms())
        # Save once at start: the id (new or loaded) is on disk before anyone hears of it.
        if not self.apply(Ready(persist=True)):
            raise RuntimeError("cannot save the sentinel state")
        self._reconcile_links()
        self._timer = loop.call_later(TICK, self._tick)
        self._seed_names = [addr for addr in self.core.seeds if not is_ip(addr[0])]
        if self._seed_names:
            self._seed_task = loop.create_task(self._resolve_seeds())
        log.info("Sentinel ID is %s", self.core.myid)
        for m in self.core.masters.values():
            log.warning("+monitor master %s %s %d quorum %d", m.name, m.host, m.port, m.quorum)
        log.info("Ready to accept connections tcp on %s port %d", ",".join(binds), self.port)

    async def serve_forever(self) -> None:
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_shutdown)
        if self.config["admin-port"]:
            # Imported before the links start: importing aiohttp blocks the loop for a while.
            from kvcluster.sentinel.admin import SentinelAdmin

            port = self.config["admin-port"]
            self.admin = SentinelAdmin(self, self.config["admin-bind"], self.port + 10000 if port == -1 else port)
        await self.start()
        if self.admin is not None:
            await self.admin.start()
        with pidfile(self.config["pidfile"]):
            await self._stopping.wait()
            await self.stop()

    async def stop(self) -> None:
        if self.admin is not None:
            await self.admin.stop()
        if self._timer is not None:
            self._timer.cancel()
        if self._seed_task is not None:
            self._seed_task.cancel()
        for link in self.links.values():
            link.stop()
        for server in self._servers:
            server.close()
        for client in list(self.clients.values()):
            client.close()
        log.warning("kvcluster sentinel is now ready to exit, bye bye...")


async def _resolve_all(addrs: list[Addr]) -> list[Addr]:
    """Every address behind each peer name (a headless Service names them all)."""
    loop = asyncio.get_running_loop()
    out: list[Addr] = []
    for host, port in addrs:
        if is_ip(host):
            out.append((host, port))
            continue
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            out.append((host, port))
            continue
        out += sorted({(str(info[4][0]), port) for info in infos})
    return list(dict.fromkeys(out))


async def _ask_peer(peer: Addr, name: str, user: str, password: str, timeout: float) -> tuple[Addr, int] | None:
    """``SENTINEL MASTER name`` on a peer: (leader address, config-epoch), or None (unknown, no answer)."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(peer[0], peer[1])
            expected = 1
            if password:
                writer.write(encode_command("AUTH", *([user, password] if user else [password])))
                expected += 1
            writer.write(encode_command("SENTINEL", "MASTER", name))
            parser = hiredis.Reader()
            replies: list[Any] = []
            while len(replies) < expected:
                data = await reader.read(1 << 16)
                if not data:
                    return None
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    replies.append(reply)
    except (OSError, TimeoutError, hiredis.ProtocolError):
        return None
    finally:
        if writer is not None:
            writer.close()
    reply = replies[-1]
    if not isinstance(reply, list) or len(reply) % 2:
        return None
    fields = {_text_of(reply[i]): _text_of(reply[i + 1]) for i in range(0, len(reply), 2)}
    try:
        return (fields["ip"], int(fields["port"])), int(fields.get("config-epoch", "0"))
    except (KeyError, ValueError):
        return None


def _text_of(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


async def _ask_peers(
    peers: list[Addr], name: str, user: str, password: str, timeout: float
) -> tuple[Addr, int, Addr] | None:
    """The leader named at the highest config-epoch by any peer (and which peer), or None."""
    answers = await asyncio.gather(*(_ask_peer(p, name, user, password, timeout) for p in peers))
    best: tuple[Addr, int, Addr] | None = None
    for peer, answer in zip(peers, answers, strict=True):
        if answer is not None and (best is None or answer[1] > best[1]):
            best = (answer[0], answer[1], peer)
    return best


def build_core(config: Config, directives: state.SentinelDirectives) -> SentinelCore:
    """The core from the configuration: file lines, then the state file, then --monitor."""
    core = SentinelCore(port=config["port"], now=_now_ms(), rng=random.Random())
    core.resolve_hostnames = config["resolve-hostnames"]
    core.announce_hostnames = config["announce-hostnames"]
    lines = list(directives.lines)
    path = state.state_path(config)
    if path is not None:
        lines += state.read_state_file(path)
    state.apply_directives(core, lines, config.warnings)
    monitor = config["monitor"]
    if monitor and monitor[0] not in core.masters:
        m = core.monitor(monitor[0], monitor[1], int(monitor[2]), int(monitor[3]), event=False)
        m.down_after = config["down-after-milliseconds"]
        m.failover_timeout = config["failover-timeout"]
        m.parallel_syncs = config["parallel-syncs"]
        m.auth_pass = config["auth-pass"]
        m.auth_user = config["auth-user"]
    for peer in config["sentinel-peers"]:
        for item in peer.split(","):
            host, _, port = item.strip().rpartition(":")
            if host and port.isdigit():
                core.seeds.append((host.strip("[]"), int(port)))
    core._reindex()
    return core


def run_sentinel(config: Config, core: SentinelCore, version: str = "") -> int:
    loop_name = install_event_loop_policy()
    log.info("kvcluster sentinel starting (pid %d, %s event loop)", os.getpid(), loop_name)
    directory = config["dir"]
    if directory:
        os.makedirs(directory, exist_ok=True)
    server = SentinelServer(config, core, version)
    asyncio.run(server.serve_forever())
    return server.exit_code
