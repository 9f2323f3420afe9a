"""The node's command processor: one gate in front of every handler.

``Node.execute(client, args)`` is the equivalent of Redis's ``processCommand`` +
``call``: look the command up in the table, check arity, authentication, MULTI
queueing and the pub/sub context from the command's flags, run the handler,
and keep the statistics (commandstats, slow log, latency histogram, MONITOR).
Handlers stay dumb: they never re-check these conditions.

Nothing here does I/O; :mod:`kvcluster.node.server` is the asyncio shell.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

from kvcluster.common.config import Config
from kvcluster.common.resp import CommandError, ErrorReply, Raw
from kvcluster.node.client import Client
from kvcluster.node.commands import load_command_table
from kvcluster.node.commands.table import Command
from kvcluster.node.keyspace import Keyspace

log = logging.getLogger("kvcluster.node")

# A handler returns this when it has already written its replies (SUBSCRIBE writes
# one per channel) or will reply later (blocking commands).
NO_REPLY = Raw(b"")

_PUBSUB_ALLOWED = frozenset(
    [b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"ssubscribe", b"sunsubscribe"]
    + [b"ping", b"quit", b"reset"]
)


class Stats:
    """Counters INFO stats reports (Redis field names)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total_connections_received = 0
        self.total_commands_processed = 0
        self.rejected_connections = 0
        self.total_net_input_bytes = 0
        self.total_net_output_bytes = 0
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self.total_error_replies = 0
        self.unexpected_error_replies = 0
        self.client_query_buffer_limit_disconnections = 0
        self.client_output_buffer_limit_disconnections = 0
        self.error_counts: dict[str, int] = {}


class SlowlogEntry:
    __slots__ = ("args", "client_addr", "client_name", "duration_us", "id", "timestamp")

    def __init__(self, entry_id: int, timestamp: int, duration_us: int, args: list[bytes], client: Client):
        self.id = entry_id
        self.timestamp = timestamp
        self.duration_us = duration_us
        # Like Redis: at most 32 arguments, each cut at 128 bytes.
        shown = [a if len(a) <= 128 else a[:128] + b"... (%d more bytes)" % (len(a) - 128) for a in args[:32]]
        if len(args) > 32:
            shown[-1] = b"... (%d more arguments)" % (len(args) - 31)
        self.args = shown
        self.client_addr = client.addr.encode()
        self.client_name = client.name


class Node:
    """All state of one data node except sockets."""

    def __init__(self, config: Config, clock_ms: Callable[[], int] | None = None):
        self.config = config
        self.keyspace = Keyspace(config["databases"], clock_ms) if clock_ms else Keyspace(config["databases"])
        self.table: dict[str, Command] = load_command_table()
        # Lookup by the name as clients send it: exact bytes first (upper and lower
        # case pre-filled), then a lowercased fallback.
        self.commands: dict[bytes, Command] = {}
        for name, cmd in self.table.items():
            self.commands[name.encode()] = cmd
            self.commands[name.upper().encode()] = cmd
        self.clients: dict[int, Client] = {}
        self._next_client_id = 1
        self.stats = Stats()
        self.slowlog: deque[SlowlogEntry] = deque()
        self.slowlog_next_id = 0
        self.monitors: set[Client] = set()
        # Pub/sub registry: channel -> subscribers, pattern -> subscribers.
        self.channels: dict[bytes, set[Client]] = {}
        self.patterns: dict[bytes, set[Client]] = {}
        # Shard channels (SSUBSCRIBE / SPUBLISH): a separate namespace, as in Redis 7.
        self.shard_channels: dict[bytes, set[Client]] = {}
        # True while EXEC runs its queued commands: blocking commands must not block then.
        self.in_exec = False
        self.start_time = time.time()
        self.run_id = os.urandom(20).hex()
        self.loading = False
        # Set by the I/O shell: called to stop the process (SHUTDOWN, signals).
        self.request_shutdown: Callable[[bool | None], None] = lambda save: None
        self._slowlog_threshold_ns = 0
        self._set_slowlog_threshold(config["slowlog-log-slower-than"])
        config.on_change("slowlog-log-slower-than", self._set_slowlog_threshold)
        config.on_change("slowlog-max-len", lambda n: self._trim_slowlog())
        # Access bookkeeping (OBJECT FREQ / IDLETIME) follows maxmemory-policy: LFU counters or LRU stamps.
        self._apply_lfu_config()
        for name in ("maxmemory-policy", "lfu-log-factor", "lfu-decay-time"):
            config.on_change(name, lambda value: self._apply_lfu_config())

    def _apply_lfu_config(self) -> None:
        ks = self.keyspace
        ks.lfu_log_factor = self.config["lfu-log-factor"]
        ks.lfu_decay_time = self.config["lfu-decay-time"]
        ks.set_lfu(str(self.config["maxmemory-policy"]).endswith("-lfu"))

    # -- clients ---------------------------------------------------------------

    def new_client(self, addr: str = "", laddr: str = "", conn: Any = None) -> Client:
        client = Client(self, self._next_client_id, addr, laddr, conn)
        self._next_client_id += 1
        self.clients[client.id] = client
        self.stats.total_connections_received += 1
        return client

    def remove_client(self, client: Client) -> None:
        self.clients.pop(client.id, None)
        self.monitors.discard(client)
        self.unwatch_all(client)
        for channel in client.subscriptions:
            subs = self.channels.get(channel)
            if subs is not None:
                subs.discard(client)
                if not subs:
                    del self.channels[channel]
        for pattern in client.patterns:
            subs = self.patterns.get(pattern)
            if subs is not None:
                subs.discard(client)
                if not subs:
                    del self.patterns[pattern]
        for channel in client.shard_subscriptions:
            subs = self.shard_channels.get(channel)
            if subs is not None:
                subs.discard(client)
                if not subs:
                    del self.shard_channels[channel]
        client.subscriptions.clear()
        client.patterns.clear()
        client.shard_subscriptions.clear()

    def unwatch_all(self, client: Client) -> None:
        watched = self.keyspace.watched
        for item in client.watched:
            clients = watched.get(item)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del watched[item]
        client.watched.clear()
        client.watch_dirty = False

    # -- the gate ----------------------------------------------------------------

    def lookup_command(self, name: bytes) -> Command | None:
        cmd = self.commands.get(name)
        if cmd is None:
            cmd = self.commands.get(name.lower())
        return cmd

    def execute(self, client: Client, args: list[bytes]) -> Any:
        """Run one command for ``client``; returns the reply value (never raises CommandError)."""
        cmd = self.commands.get(args[0])
        if cmd is None:
            cmd = self.commands.get(args[0].lower())
            if cmd is None:
                return self._reject(client, None, _unknown_command(args))
        n = len(args)
        arity = cmd.arity
        if (arity > 0 and n != arity) or n < -arity:
            return self._reject(client, cmd, f"ERR wrong number of arguments for '{cmd.name}' command")
        if cmd.subcommands and n > 1:  # bare COMMAND runs the container's own handler
            sub = cmd.subcommands.get(args[1].decode("utf-8", "replace").lower())
            if sub is None:
                if args[1].lower() == b"help" and "help" not in cmd.subcommands:
                    return self._reject(client, cmd, f"ERR unknown subcommand 'help'. Try {cmd.name.upper()} HELP.")
                sub_name = args[1].decode("utf-8", "replace")
                return self._reject(client, cmd, f"ERR unknown subcommand '{sub_name}'. Try {cmd.name.upper()} HELP.")
            cmd = sub
            arity = cmd.arity
            if (arity > 0 and n != arity) or n < -arity:
                return self._reject(client, cmd, f"ERR wrong number of arguments for '{cmd.full_name}' command")
        if client.slow_path:
            refused = self._check_context(client, cmd, args)
            if refused is not None:
                return refused
        return self.call(client, cmd, args)

    def call(self, client: Client, cmd: Command, args: list[bytes]) -> Any:
        """Run a handler with statistics; the part of dispatch MULTI/EXEC reuses."""
        ks = self.keyspace
        dirty_before = ks.dirty
        start = perf_counter_ns()
        try:
            reply = cmd.handler(client, args)  # type: ignore[misc]
        except CommandError as e:
            reply = self._error(cmd, e.message)
            cmd.failed_calls += 1
        except Exception as e:  # a handler bug must not take the process down
            log.exception("error executing %r", args[:3])
            reply = self._error(cmd, f"ERR internal error executing '{cmd.full_name}': {type(e).__name__}")
            cmd.failed_calls += 1
        duration = perf_counter_ns() - start
        cmd.calls += 1
        cmd.nsec += duration
        cmd.latency_buckets[duration.bit_length()] += 1
        self.stats.total_commands_processed += 1
        client.last_command = cmd  # CLIENT LIST cmd= (the full name, e.g. client|list)
        if duration >= self._slowlog_threshold_ns:
            self._add_slowlog(client, args, duration // 1000)
        if ks.dirty != dirty_before and ks.watched and cmd.is_write:
            for i in cmd.key_positions(args):
                ks.signal_modified(client.db, args[i])
        # Like Redis, admin commands (CONFIG, DEBUG, ...) are too sensitive to show to monitors.
        if self.monitors and "admin" not in cmd.flags and "skip_monitor" not in cmd.flags:
            self._feed_monitors(client, args)
        return reply

    def _check_context(self, client: Client, cmd: Command, args: list[bytes]) -> Any:
        if not client.authenticated and "no_auth" not in cmd.flags:
            return self._reject(client, cmd, "NOAUTH Authentication required.")
        if client.multi is not None and not cmd.no_multi:
            client.multi.append((cmd, args))
            return Raw(b"+QUEUED\r\n")
        if client.resp == 2 and client.in_pubsub and args[0].lower() not in _PUBSUB_ALLOWED:
            return self._reject(
                client,
                cmd,
                f"ERR Can't execute '{cmd.full_name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
                "are allowed in this context",
            )
        return None

    def _reject(self, client: Client, cmd: Command | None, message: str) -> ErrorReply:
        if cmd is not None:
            cmd.rejected_calls += 1
            if cmd.handler is not None and cmd.name == "exec" and cmd.parent is None:
                # Redis's execCommandAbort: a refused EXEC ends the transaction, and says why
                # (an ERR reason loses its prefix, others such as READONLY or OOM keep theirs).
                client.multi = None
                client.multi_error = False
                self.unwatch_all(client)
                client.update_slow_path()
                reason = message[4:] if message.startswith("ERR ") else message
                return self._error(None, f"EXECABORT Transaction discarded because of: {reason}")
        if client.multi is not None:
            client.multi_error = True
        return self._error(None, message)

    def _error(self, cmd: Command | None, message: str) -> ErrorReply:
        stats = self.stats
        stats.total_error_replies += 1
        prefix = message.split(" ", 1)[0]
        stats.error_counts[prefix] = stats.error_counts.get(prefix, 0) + 1
        return ErrorReply(message)

    # -- slow log and monitor ---------------------------------------------------

    def _set_slowlog_threshold(self, value: int) -> None:
        # Compared with each call's duration in ns; a negative setting disables the log.
        self._slowlog_threshold_ns = value * 1000 if value >= 0 else 1 << 62

    def _add_slowlog(self, client: Client, args: list[bytes], duration_us: int) -> None:
        maxlen = self.config["slowlog-max-len"]
        if maxlen <= 0:
            return
        self.slowlog.appendleft(SlowlogEntry(self.slowlog_next_id, int(time.time()), duration_us, args, client))
        self.slowlog_next_id += 1
        self._trim_slowlog()

    def _trim_slowlog(self) -> None:
        maxlen = max(self.config["slowlog-max-len"], 0)
        while len(self.slowlog) > maxlen:
            self.slowlog.pop()

    def _feed_monitors(self, client: Client, args: list[bytes]) -> None:
        now = time.time()
        quoted = " ".join(_monitor_quote(a) for a in args)
        line = f"+{now:.6f} [{client.db.id} {client.addr or 'lua'}] {quoted}\r\n".encode()
        for m in list(self.monitors):
            if m is not client:
                m.push_raw(line)


def _unknown_command(args: list[bytes]) -> str:
    # Redis's exact text, trailing space included: "... beginning with: 'a' 'b' ". Redis
    # formats C strings (cut at NUL), the name with %.128s and the arguments until they
    # pass 128 bytes together; raw bytes go back as sent (surrogateescape, see resp).
    name = args[0].split(b"\0", 1)[0][:128]
    rest = b""
    for arg in args[1:]:
        if len(rest) >= 128:
            break
        rest += b"'" + arg.split(b"\0", 1)[0][: 128 - len(rest)] + b"' "
    text = b"ERR unknown command '" + name + b"', with args beginning with: " + rest
    return text.decode("utf-8", "surrogateescape")


def _monitor_quote(arg: bytes) -> str:
    out = ['"']
    for c in arg:
        if c == 0x22:
            out.append('\\"')
        elif c == 0x5C:
            out.append("\\\\")
        elif c == 0x0A:
            out.append("\\n")
        elif c == 0x0D:
            out.append("\\r")
        elif c == 0x09:
            out.append("\\t")
        elif c == 0x07:
            out.append("\\a")
        elif c == 0x08:
            out.append("\\b")
        elif 32 <= c < 127:
            out.append(chr(c))
        else:
            out.append(f"\\x{c:02x}")
    out.append('"')
    return "".join(out)
