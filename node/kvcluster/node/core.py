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
from kvcluster.node.blocking import WaitingRoom
from kvcluster.node.client import Client
from kvcluster.node.commands import load_command_table
from kvcluster.node.commands.table import Command
from kvcluster.node.keyspace import Database, Keyspace
from kvcluster.node.replication import ReplicationLog

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

    def __init__(self, table: dict[str, Command] | None = None) -> None:
        self._table = table or {}
        self.reset()

    @property
    def total_commands_processed(self) -> int:
        # The sum of the per-command call counts (CONFIG RESETSTAT clears both): one
        # increment less per command on the hot path.
        return sum(cmd.calls + sum(sub.calls for sub in cmd.subcommands.values()) for cmd in self._table.values())

    def reset(self) -> None:
        self.total_connections_received = 0
        self.rejected_connections = 0
        self.total_net_input_bytes = 0
        self.total_net_output_bytes = 0
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self.total_error_replies = 0
        self.unexpected_error_replies = 0
        self.client_query_buffer_limit_disconnections = 0
        self.client_output_buffer_limit_disconnections = 0
        self.sync_full = 0
        self.sync_partial_ok = 0
        self.sync_partial_err = 0
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
        self.stats = Stats(self.table)
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
        # Clients blocked on keys (BLPOP...: commands/blocking.py); INFO's blocked_clients counts them.
        self.blocking = WaitingRoom()
        self.blocked_clients = self.blocking.by_client
        self.start_time = time.time()
        self.run_id = os.urandom(20).hex()
        self.loading = False
        # Durability (kvcluster.node.persistence, attached by the shell): hold_reply lets replies
        # wait for the disk (appendfsync always); disk_refusal refuses writes (-MISCONF).
        self.persistence: Any = None
        self.hold_reply: Callable[[Any, bytes], bool] | None = None
        self.disk_refusal: str | None = None
        # Replica side: the database the leader's stream is in (kept across links and restarts).
        self.stream_db = 0
        # Called after a full sync replaced the whole dataset (the AOF starts over).
        self.on_dataset_replaced: Callable[[], None] = lambda: None
        # Set by the I/O shell: called to stop the process (SHUTDOWN, signals).
        self.request_shutdown: Callable[[bool | None], None] = lambda save: None
        self._slowlog_threshold_ns = 0
        self._set_slowlog_threshold(config["slowlog-log-slower-than"])
        config.on_change("slowlog-log-slower-than", self._set_slowlog_threshold)
        config.on_change("slowlog-max-len", lambda n: self._trim_slowlog())
        self._init_replication()
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
        if self.blocking.by_client:
            from kvcluster.node.commands.blocking import client_gone

            client_gone(self, client)
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
        if self.gate_closed and client.kind != "master":
            refused = self._check_role(client, cmd)
            if refused is not None:
                return refused
        if self.pause_check is not None and client.kind == "normal":  # CLIENT PAUSE (commands/connection.py)
            held = self.pause_check(client, cmd, args)
            if held is not None:
                return held
        reply = self.call(client, cmd, args)
        if self.blocking.ready:  # a write filled keys clients wait on: serve them before anything else runs
            from kvcluster.node.commands.blocking import serve_ready

            serve_ready(self)
        return reply

    def call(self, client: Client, cmd: Command, args: list[bytes]) -> Any:
        """Run a handler with statistics; the part of dispatch MULTI/EXEC reuses."""
        ks = self.keyspace
        dirty_before = ks.dirty
        if self.snapshot_writers and cmd.is_write:
            # A snapshot is being streamed: keys about to change in place are written first.
            db_id = client.db.id
            for writer in self.snapshot_writers:
                for i in cmd.key_positions(args):
                    writer.before_write(db_id, args[i])
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
        client.last_command = cmd  # CLIENT LIST cmd= (the full name, e.g. client|list)
        if duration >= self._slowlog_threshold_ns:
            self._add_slowlog(client, args, duration // 1000)
        if ks.dirty != dirty_before and cmd.is_write:
            if ks.watched:
                for i in cmd.key_positions(args):
                    ks.signal_modified(client.db, args[i])
            if self.blocking.by_slot:
                self._signal_blocking(client, cmd, args)
            rewritten = self.rewritten
            if rewritten is not None:
                self.rewritten = None
            if self.propagating and client.kind != "master":
                if rewritten is None:
                    self.propagate(client.db.id, args)
                else:
                    for effect in rewritten:
                        self.propagate(client.db.id, effect)
            if self.snapshot_writers and cmd.name == "swapdb":
                for writer in self.snapshot_writers:
                    writer.swap_dbs(int(args[1]), int(args[2]))
            if self.write_waiters_enabled and client.kind == "normal":
                self.last_write_offset = self.repl.offset
        elif self.rewritten is not None:
            self.rewritten = None
        if ks.dirty != dirty_before:  # after EXEC's own call too: its stream bytes are fed by then
            client.woff = self.repl.offset
        # Like Redis, admin commands (CONFIG, DEBUG, ...) are too sensitive to show to monitors.
        if self.monitors and "admin" not in cmd.flags and "skip_monitor" not in cmd.flags:
            self._feed_monitors(client, args)
        return reply

    def _signal_blocking(self, client: Client, cmd: Command, args: list[bytes]) -> None:
        # Redis's signalKeyAsReady: keys a write touched may now serve blocked clients.
        room = self.blocking
        db_id = client.db.id
        for i in cmd.key_positions(args):
            room.signal(db_id, args[i])
        if cmd.name == "swapdb":
            room.signal_db(int(args[1]))
            room.signal_db(int(args[2]))
        elif cmd.name == "move":
            room.signal(int(args[2]), args[1])

    # -- replication: role, write gate, propagation -------------------------------

    def _init_replication(self) -> None:
        config = self.config
        self.repl = ReplicationLog(config["repl-backlog-size"])
        config.on_change("repl-backlog-size", lambda size: self.repl.backlog.resize(size))
        # Writes are streamed (backlog, replicas, later the AOF) once something consumes
        # them: a leader's first replica, or always on a replica (it may be promoted).
        self.propagating = False
        # A write command's effects, when they differ from the command (set by handlers
        # through replicate_as; consumed by call()).
        self.rewritten: list[list[bytes]] | None = None
        # While EXEC runs: the stream bytes of its writes, wrapped in MULTI/EXEC at the end.
        self._exec_stream: list[tuple[int, list[bytes]]] | None = None
        # Leader side: replica clients (syncing or online), by client id.
        self.replicas: dict[int, Client] = {}
        # Replica side: who we follow, and whether the link is up.
        self.role = "master"
        self.leader_addr: tuple[str, int] | None = None
        self.link_up = False
        self.link_down_since = time.time()
        # The highest epoch this node has adopted, and a higher one it learned of while
        # leading (0: none) -- both persisted, so a fenced leader that restarts stays fenced.
        self.epoch, self.fenced_by = read_epoch(config["dir"])
        # Why writes / non-stale commands are refused right now (None: they are not).
        self.write_refusal: str | None = None
        self.stale_refusal: str | None = None
        self.gate_closed = False
        # Hooks the I/O shell fills in.
        self.call_later: Callable[[float, Callable[[], None]], Any] = lambda delay, fn: None
        self.call_soon: Callable[[Callable[[], None]], Any] = lambda fn: fn()
        self._stream_out: list[bytes] = []
        # The append-only file's writer (the durability layer): called with the stream
        # bytes of every write. It needs `propagating` on to receive anything.
        self.write_log: Callable[[bytes], None] | None = None
        self._stream_flush_scheduled = False
        self.on_role_change: Callable[[], None] = lambda: None
        # While CLIENT PAUSE is in force: postpones a command (returns the empty reply) or None.
        self.pause_check: Callable[[Client, Command, list[bytes]], Any] | None = None
        self.keyspace.on_expired_hook = self._propagate_expired
        # RDB writers streaming a point-in-time snapshot (full syncs): see call().
        self.snapshot_writers: list[Any] = []
        # semi-sync: the stream offset after the last write of the current command
        # (read by the shell to hold the reply until replicas have it).
        self.write_waiters_enabled = config["durability"] == "semi-sync"
        config.on_change("durability", self._set_durability)
        # The gate reads these: a CONFIG SET takes effect at once (not at the next cron tick, or never).
        for name in ("replica-serve-stale-data", "min-replicas-to-write", "min-replicas-max-lag"):
            config.on_change(name, lambda value: self.update_gate())
        config.on_change("min-replicas-to-ack", lambda value: self.update_gate())
        self.last_write_offset = -1
        self.repl_io: Any = None  # kvcluster.node.repl_io.ReplicationIO, set by the shell
        self.update_gate()

    def _set_durability(self, mode: str) -> None:
        self.write_waiters_enabled = mode == "semi-sync"
        self.update_gate()

    def update_gate(self, good_replicas: int | None = None) -> None:
        """Recompute which commands the role, the epoch and min-replicas refuse."""
        config = self.config
        refusal = None
        if self.role != "master":
            refusal = "READONLY You can't write against a read only replica."
        elif self.fenced_by:
            refusal = (
                f"FENCED this node was leader at epoch {self.epoch} but epoch {self.fenced_by} exists: "
                "writes go to the new leader"
            )
        elif self.disk_refusal is not None:
            refusal = self.disk_refusal
        elif config["min-replicas-to-write"] and config["min-replicas-max-lag"]:
            if good_replicas is None:
                good_replicas = self.good_replicas()
            if good_replicas < config["min-replicas-to-write"]:
                refusal = "NOREPLICAS Not enough good replicas to write."
        if refusal is None and self.role == "master" and self.write_waiters_enabled:
            # semi-sync: refuse up front (nothing applied) rather than apply a write no replica can confirm.
            online = sum(1 for c in self.replicas.values() if c.replica is not None and c.replica.online)
            if online < config["min-replicas-to-ack"]:
                refusal = (
                    f"NOREPLICAS semi-sync needs {config['min-replicas-to-ack']} connected replica(s) to acknowledge "
                    f"writes, {online} connected"
                )
        self.write_refusal = refusal
        stale = None
        if self.role != "master" and not self.link_up and not config["replica-serve-stale-data"]:
            stale = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
        self.stale_refusal = stale
        self.gate_closed = refusal is not None or stale is not None or self.loading
        if self.role != "master" and self.blocking.by_client:
            from kvcluster.node.commands.blocking import UNBLOCKED_BY_ROLE, unblock_all

            unblock_all(self, UNBLOCKED_BY_ROLE)

    def good_replicas(self) -> int:
        """Online replicas whose last ACK is at most min-replicas-max-lag seconds old."""
        max_lag = self.config["min-replicas-max-lag"]
        now = time.time()
        return sum(
            1
            for c in self.replicas.values()
            if c.replica is not None and c.replica.online and now - c.replica.ack_time <= max_lag
        )

    def _check_role(self, client: Client, cmd: Command) -> Any:
        if self.loading and "loading" not in cmd.flags:
            return self._reject(client, cmd, "LOADING Redis is loading the dataset in memory")
        if self.stale_refusal is not None and "stale" not in cmd.flags:
            return self._reject(client, cmd, self.stale_refusal)
        if self.write_refusal is not None and (cmd.is_write or (cmd.name == "exec" and _queued_writes(client))):
            return self._reject(client, cmd, self.write_refusal)
        return None

    def set_epoch(self, epoch: int) -> None:
        """Adopt a higher epoch: persisted (fsynced) before anything acts on it."""
        if epoch <= self.epoch:
            return
        fenced_by = self.fenced_by if self.fenced_by > epoch else 0
        write_epoch(self.config["dir"], epoch, fenced_by)
        self.epoch = epoch
        self.fenced_by = fenced_by
        if self.role != "master" and self.repl_io is not None:
            self.repl_io.check_leader_epoch()  # a replica stops following a leader now behind it

    def learn_epoch(self, epoch: int) -> None:
        """Another node or a sentinel speaks of ``epoch``: a leader behind it is fenced at once."""
        if epoch <= self.epoch:
            return
        if self.role == "master":
            fenced_by = max(self.fenced_by, epoch)
            write_epoch(self.config["dir"], self.epoch, fenced_by)  # before refusing: survives a restart
            self.fenced_by = fenced_by
            log.warning("epoch %d is newer than ours (%d): refusing writes until repointed", epoch, self.epoch)
        else:
            self.set_epoch(epoch)
        self.update_gate()

    def replicate_as(self, *effects: list[bytes]) -> None:
        """From a write handler: replicate these commands instead of the one executed."""
        self.rewritten = list(effects)

    def propagate(self, db_id: int, args: list[bytes]) -> None:
        """Append one write's effect to the stream (backlog, replicas)."""
        if self._exec_stream is not None:
            self._exec_stream.append((db_id, args))
            return
        self._feed_writes(self.repl.command_bytes(db_id, args))

    def _feed_writes(self, data: bytes) -> None:
        """Stream bytes of writes: to replicas and, when enabled, the append-only file."""
        self._feed_stream(data)
        if self.write_log is not None:
            self.write_log(data)

    def _feed_stream(self, data: bytes) -> None:
        # Replicas only: also carries PING and REPLCONF GETACK, which the AOF does not want.
        self.repl.feed(data)
        if self.replicas:
            # Sent once per event loop iteration, like Redis's beforeSleep: one write per
            # replica for a whole pipeline of writes, not one per command.
            self._stream_out.append(data)
            if not self._stream_flush_scheduled:
                self._stream_flush_scheduled = True
                self.call_soon(self.flush_stream)

    def flush_stream(self) -> None:
        """Hand the stream bytes produced since the last flush to every replica."""
        self._stream_flush_scheduled = False
        if not self._stream_out:
            return
        data = b"".join(self._stream_out)
        self._stream_out.clear()
        for client in self.replicas.values():
            info = client.replica
            if info is None:
                continue
            if info.online:
                client.push_raw(data)
            else:
                info.pending.append(data)
                info.pending_bytes += len(data)

    def relay(self, data: bytes) -> None:
        """Replica side: stream bytes applied from our leader go to our own log and sub-replicas."""
        self._feed_writes(data)

    def _propagate_expired(self, db: Database, key: bytes) -> None:
        if self.propagating:
            self.propagate(db.id, [b"DEL", key])

    def begin_exec(self) -> None:
        if self.propagating:
            self._exec_stream = []

    def end_exec(self) -> None:
        effects = self._exec_stream
        self._exec_stream = None
        if not effects:
            return
        if len(effects) == 1:
            self.propagate(*effects[0])
            return
        # Like Redis 7: a transaction with several effects replicates as MULTI ... EXEC, in the
        # database of its first write (SELECTs inside follow the stream's rules).
        repl = self.repl
        data = [repl.command_bytes(effects[0][0], [b"MULTI"])]
        data.extend(repl.command_bytes(db_id, args) for db_id, args in effects)
        data.append(repl.command_bytes(repl.selected_db, [b"EXEC"]))
        self._feed_writes(b"".join(data))

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


def _queued_writes(client: Client) -> bool:
    """Whether the open transaction holds a write: like Redis, its EXEC is then a write for the gate
    (READONLY on a replica, OOM, NOREPLICAS, FENCED refuse it, and the refusal becomes EXECABORT)."""
    return client.multi is not None and any(c.is_write for c, _ in client.multi)


EPOCH_FILE = "kvcluster-epoch"


def read_epoch(directory: str) -> tuple[int, int]:
    """(epoch, fenced_by) persisted in the data directory: ``<epoch>\n[fenced-by <n>\n]`` ((0, 0): none)."""
    path = os.path.join(directory or ".", EPOCH_FILE)
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return 0, 0
    try:
        epoch = int(lines[0].strip() or 0)
        fenced_by = 0
        for line in lines[1:]:
            words = line.split()
            if len(words) == 2 and words[0] == "fenced-by":
                fenced_by = int(words[1])
            elif words:
                raise ValueError(f"unexpected line {line!r}")
    except ValueError as e:
        raise RuntimeError(f"{path} is corrupt: {e}") from None
    return epoch, fenced_by


def write_epoch(directory: str, epoch: int, fenced_by: int = 0) -> None:
    """Persist ``epoch`` atomically: temp file, fsync, rename, fsync of the directory."""
    directory = directory or "."
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, EPOCH_FILE)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{epoch}\n" + (f"fenced-by {fenced_by}\n" if fenced_by > epoch else ""))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
