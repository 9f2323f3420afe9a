"""Replication's asyncio shell: snapshot streaming, the link to our leader, acknowledgements.

Everything that decides (PSYNC answers, the handshake, offsets) is sans-I/O in
:mod:`kvcluster.node.replication`; this module moves bytes and runs timers around it:

* leader side: :meth:`ReplicationIO.start_full_sync` streams an RDB snapshot to a replica
  a chunk at a time (yielding to the event loop between chunks, waiting when the socket
  buffer is full), then the stream bytes produced meanwhile; waiters (WAIT, semi-sync
  writes) are released as ACKs arrive; the cron pings replicas and drops silent ones;
* replica side: one task owns the connection to the leader: connect, handshake, load the
  snapshot, then apply the command stream and answer GETACK; it reconnects every second
  while the node is configured to follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kvcluster.common.resp import ErrorReply
from kvcluster.node.forkchild import read_report, run_child
from kvcluster.node.rdb import KeyspaceLoader, RDBError, RDBWriter
from kvcluster.node.replication import LinkConfig, LinkState, ReplicaLink, encode_command

if TYPE_CHECKING:
    from kvcluster.node.client import Client
    from kvcluster.node.server import NodeServer

log = logging.getLogger("kvcluster.node")

# A full sync pauses while this much is queued in the replica's socket buffer.
_SYNC_HIGH_WATER = 4 * 1024 * 1024
# From repl-fork-sync-min-keys keys a full sync forks (the child writes the snapshot to the
# replica's socket): the in-process point-in-time copy of the key maps costs ~70 ms per
# million keys in one step, a fork a few ms per GB. Below it the copy is cheaper than a fork.
_RECONNECT_DELAY = 1.0


@dataclass
class _Waiter:
    client: Client
    offset: int
    replicas: int
    make_reply: Callable[[int], Any]
    timer: Any = None
    done: bool = False


class _LeaderConnection:
    """The master client's connection on a replica: replies to the leader are not sent."""

    def __init__(self, link: asyncio.StreamWriter | None = None) -> None:
        self.closed = False
        self.link = link

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        # CLIENT KILL TYPE master: drop the link (the link task reconnects and PSYNCs).
        self.closed = True
        if self.link is not None:
            self.link.close()

    def output_buffer_size(self) -> int:
        return 0


class ReplicationIO:
    def __init__(self, server: NodeServer):
        self.server = server
        self.node = server.node
        self.node.repl_io = self
        self.log = log
        self._waiters: list[_Waiter] = []
        self._getack_pending = False
        self._last_ping = time.monotonic()
        self._last_ack_sent = 0.0
        self._no_replicas_since = time.monotonic()
        # Replica side.
        self._link_task: asyncio.Task[None] | None = None
        self._link_writer: asyncio.StreamWriter | None = None
        self._link: ReplicaLink | None = None
        self.last_leader_io = 0.0
        self.sync_in_progress = False
        self.sync_total_bytes = -1
        self.sync_read_bytes = 0
        self._sync_tasks: set[asyncio.Task[None]] = set()
        # Forked full syncs: child pid -> the pipe it reports on.
        self._sync_children: dict[int, int] = {}
        # Stream bytes of the leader's open MULTI, counted (relayed) only with its EXEC.
        self._multi_pending: list[bytes] = []
        # Started as a replica with nothing to continue from: the first PSYNC is "? -1".
        self._no_history = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.node.call_later = loop.call_later
        self.node.call_soon = loop.call_soon
        leader = self.node.config["replicaof"]
        if leader and [w.lower() for w in leader] != ["no", "one"]:
            self._no_history = self.node.repl.offset == 0
            self.follow(leader[0], int(leader[1]))

    async def stop(self) -> None:
        for waiter in list(self._waiters):
            self._finish_waiter(waiter, ErrorReply("ERR server is shutting down"))
        if self._link_task is not None:
            self._link_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._link_task
        for task in list(self._sync_tasks):
            task.cancel()
        for pid in list(self._sync_children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)

    # -- leader side: full sync ---------------------------------------------------

    def start_full_sync(self, client: Client, eof_capa: bool) -> None:
        """Snapshot now (at the offset the FULLRESYNC reply named), stream it in the background."""
        node = self.node
        repl = node.repl
        if (
            eof_capa
            and hasattr(os, "fork")
            and sum(len(db.data) for db in node.keyspace.dbs) >= node.config["repl-fork-sync-min-keys"]
            and self._send_pending_replies(client)
            and self._fork_sync(client)
        ):
            return
        writer = RDBWriter(
            node.keyspace,
            snapshot=True,
            repl_id=repl.replid,
            repl_offset=repl.offset,
            repl_stream_db=max(repl.selected_db, 0),
        )
        # From here on, writes are serialized into the snapshot before they change a key,
        # and their stream bytes queue in info.pending. The replica starts in db 0: the
        # next write must SELECT.
        repl.selected_db = -1
        node.snapshot_writers.append(writer)
        task = asyncio.get_running_loop().create_task(self._full_sync(client, writer, eof_capa))
        self._sync_tasks.add(task)
        task.add_done_callback(self._sync_tasks.discard)

    async def _full_sync(self, client: Client, writer: RDBWriter, eof_capa: bool) -> None:
        node = self.node
        info = client.replica
        conn = client.conn
        if info is None or conn is None:
            with contextlib.suppress(ValueError):
                node.snapshot_writers.remove(writer)
            return
        info.state = "send_bulk"
        started = time.monotonic()
        try:
            if eof_capa:
                mark = os.urandom(20).hex().encode()
                conn.write(b"$EOF:" + mark + b"\r\n")
                for chunk in writer:
                    if getattr(conn, "closing", False):
                        return
                    conn.write(chunk)
                    await self._drain(conn)
                conn.write(mark)
            else:
                # No EOF capability (old replicas): the length must come first, so build it all.
                chunks = []
                for chunk in writer:
                    chunks.append(chunk)
                    await asyncio.sleep(0)
                payload = b"".join(chunks)
                conn.write(b"$%d\r\n" % len(payload))
                conn.write(payload)
        except Exception:
            log.exception("full sync to %s failed", client.addr)
            client.close()
            return
        finally:
            with contextlib.suppress(ValueError):
                node.snapshot_writers.remove(writer)
        if getattr(conn, "closing", False):
            return
        pending, info.pending, info.pending_bytes = info.pending, [], 0
        for data in pending:
            conn.write(data)
        info.state = "online"
        info.ack_time = time.time()
        log.info(
            "Synchronization with replica %s succeeded (%d keys, %d bytes, %.1f s)",
            client.addr,
            writer.keys_written,
            writer.bytes_written,
            time.monotonic() - started,
        )
        node.update_gate()

    def _send_pending_replies(self, client: Client) -> bool:
        """Put this read's replies (the FULLRESYNC line) on the wire now; True if nothing is left queued."""
        conn = client.conn
        transport = getattr(conn, "transport", None)
        if transport is None or transport.is_closing():
            return False
        batch = getattr(conn, "batch", None)
        if batch:
            data = b"".join(batch)
            batch.clear()  # the read's reply list, in place: they must not go out twice
            conn.send(data)  # type: ignore[union-attr]
        return conn.output_buffer_size() == 0  # type: ignore[union-attr]

    def _fork_sync(self, client: Client) -> bool:
        """Fork a child that writes the snapshot straight to the replica's socket (diskless, EOF-marked)."""
        node = self.node
        repl = node.repl
        info = client.replica
        sock = client.conn.transport.get_extra_info("socket")  # type: ignore[union-attr]
        if info is None or sock is None:
            return False
        fd = sock.fileno()
        r, w = os.pipe()
        mark = os.urandom(20).hex().encode()
        position = (repl.replid, repl.offset, max(repl.selected_db, 0))
        gc.freeze()  # the parent's collections would touch (copy) every page the child shares
        started = time.monotonic()
        try:
            pid = os.fork()
        except OSError as e:
            gc.unfreeze()
            os.close(r)
            os.close(w)
            log.warning("Can't fork for a full sync (%s): streaming it from the event loop", e)
            return False
        if pid == 0:
            run_child(_sync_job(node.keyspace, fd, mark, position), w, keep_fds=(fd,))  # never returns
        os.close(w)
        log.info(
            "Full sync to %s forked (pid %d, %.1f ms); the child streams the snapshot",
            client.addr,
            pid,
            (time.monotonic() - started) * 1000,
        )
        repl.selected_db = -1  # the replica starts in db 0: the next write must SELECT
        info.state = "send_bulk"
        asyncio.get_running_loop().add_reader(r, self._fork_sync_done, client, pid, r, started)
        self._sync_children[pid] = r
        return True

    def _fork_sync_done(self, client: Client, pid: int, r: int, started: float) -> None:
        # The pipe reads EOF (or the report) once the child is done.
        loop = asyncio.get_running_loop()
        loop.remove_reader(r)
        report = read_report(r)
        os.close(r)
        self._sync_children.pop(pid, None)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        if not self._sync_children:
            gc.unfreeze()
        info = client.replica
        conn = client.conn
        if not report.get("ok") or info is None or conn is None or getattr(conn, "closing", False):
            log.warning("Full sync to %s failed in its child: %s", client.addr, report.get("error", "no report"))
            client.close()
            return
        pending, info.pending, info.pending_bytes = info.pending, [], 0
        for data in pending:
            conn.write(data)
        info.state = "online"
        info.ack_time = time.time()
        log.info(
            "Synchronization with replica %s succeeded (%d keys, %d bytes, %.1f s)",
            client.addr,
            report.get("keys", 0),
            report.get("bytes", 0),
            time.monotonic() - started,
        )
        self.node.update_gate()

    async def _drain(self, conn: Any) -> None:
        # Let clients run between chunks; wait while the socket buffer is full.
        await asyncio.sleep(0)
        while not getattr(conn, "closing", False) and conn.output_buffer_size() > _SYNC_HIGH_WATER:
            await asyncio.sleep(0.002)

    def client_gone(self, client: Client) -> None:
        """A connection closed: forget its waits, and the replica it was."""
        for waiter in list(self._waiters):
            if waiter.client is client:
                waiter.done = True
                if waiter.timer is not None:
                    waiter.timer.cancel()
                self._waiters.remove(waiter)
        if client.kind == "replica":
            self.replica_gone(client)

    def replica_gone(self, client: Client) -> None:
        node = self.node
        if node.replicas.pop(client.id, None) is not None:
            log.info("Connection with replica %s lost.", client.addr)
            node.update_gate()
            self._check_waiters()

    # -- leader side: acknowledgements ------------------------------------------------

    def wait_for_acks(
        self, client: Client, offset: int, replicas: int, timeout_ms: int, make_reply: Callable[[int], Any]
    ) -> None:
        """Block ``client`` until ``replicas`` replicas acknowledged ``offset`` (or the timeout)."""
        waiter = _Waiter(client, offset, replicas, make_reply)
        client.blocked = True
        self._waiters.append(waiter)
        if timeout_ms:
            loop = asyncio.get_running_loop()
            waiter.timer = loop.call_later(timeout_ms / 1000, self._waiter_timeout, waiter)
        self.request_acks()

    def _waiter_timeout(self, waiter: _Waiter) -> None:
        if not waiter.done:
            from kvcluster.node.commands.replication import acked_replicas

            self._finish_waiter(waiter, waiter.make_reply(-1 - acked_replicas(self.node, waiter.offset)))

    def _finish_waiter(self, waiter: _Waiter, reply: Any) -> None:
        if waiter.done:
            return
        waiter.done = True
        if waiter.timer is not None:
            waiter.timer.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        client = waiter.client
        if client.blocked:
            client.unblock(reply)

    def request_acks(self) -> None:
        """Ask every replica for its offset, once per event loop iteration however many ask."""
        if self._getack_pending:
            return
        self._getack_pending = True
        asyncio.get_running_loop().call_soon(self._send_getack)

    def _send_getack(self) -> None:
        self._getack_pending = False
        if self._waiters and self.node.replicas:
            self.node._feed_stream(encode_command([b"REPLCONF", b"GETACK", b"*"]))

    def on_ack(self) -> None:
        if self._waiters:
            self._check_waiters()

    def _check_waiters(self) -> None:
        from kvcluster.node.commands.replication import acked_replicas

        for waiter in list(self._waiters):
            acked = acked_replicas(self.node, waiter.offset)
            if acked >= waiter.replicas:
                self._finish_waiter(waiter, waiter.make_reply(acked))

    def hold_for_acks(self, client: Client, reply: Any) -> None:
        """semi-sync: hold a write's reply until min-replicas-to-ack replicas have it."""
        node = self.node
        config = node.config
        needed = config["min-replicas-to-ack"]
        timeout = config["semi-sync-timeout"]

        def make_reply(acked: int) -> Any:
            if acked >= 0:
                return reply
            have = -1 - acked
            return ErrorReply(
                f"NOREPLICAS write applied on the leader but acknowledged by {have} of {needed} replica(s) "
                f"within {timeout} ms: it may be lost if the leader fails now"
            )

        self.wait_for_acks(client, node.repl.offset, needed, timeout, make_reply)

    # -- periodic work (the server's cron) ----------------------------------------------

    def cron(self) -> None:
        node = self.node
        config = node.config
        now = time.monotonic()
        wall = time.time()
        if node.replicas:
            self._no_replicas_since = now
            if now - self._last_ping >= config["repl-ping-replica-period"]:
                self._last_ping = now
                node._feed_stream(encode_command([b"PING"]))
            timeout = config["repl-timeout"]
            hard = self.server.obuf_limits.get("replica", (0, 0, 0))[0]
            for client in list(node.replicas.values()):
                info = client.replica
                if info is None:
                    continue
                if info.online and wall - info.ack_time > timeout:
                    log.warning("Disconnecting timedout replica (streaming sync): %s", client.addr)
                    client.close()
                elif not info.online and hard and info.pending_bytes > hard:
                    log.warning("Replica %s fell too far behind during its full sync: disconnecting", client.addr)
                    client.close()
        elif (
            node.propagating
            and node.role == "master"
            and config["repl-backlog-ttl"]
            and now - self._no_replicas_since > config["repl-backlog-ttl"]
            and node.write_log is None  # the AOF is the stream too: it keeps flowing while enabled
        ):
            log.info("Replication backlog freed after %d seconds without replicas.", config["repl-backlog-ttl"])
            node.propagating = False
            node.repl.backlog.clear()
            node.repl.backlog.end = node.repl.offset
        if node.role == "master" and (config["min-replicas-to-write"] or node.write_waiters_enabled):
            node.update_gate()
        # Replica side: ACK every second, drop a silent link.
        if node.role != "master" and node.link_up and self._link_writer is not None:
            if now - self._last_ack_sent >= 1.0:
                self._last_ack_sent = now
                self._send_ack()
            if self.last_leader_io and wall - self.last_leader_io > config["repl-timeout"]:
                log.warning("MASTER timeout: no data nor PING received for %d s", config["repl-timeout"])
                self._link_writer.close()

    # -- replica side ---------------------------------------------------------------------

    def link_state(self) -> str:
        link = self._link
        if link is None:
            return "connect"
        if link.state == LinkState.CONNECTING:
            return "connecting"
        if link.state == LinkState.TRANSFER:
            return "sync"
        if link.state == LinkState.CONNECTED:
            return "connected"
        return "handshake"

    def follow(self, host: str, port: int) -> None:
        node = self.node
        was_master = node.role == "master"
        node.role = "slave"
        node.keyspace.is_replica = True
        node.leader_addr = (host, port)
        node.link_up = False
        node.link_down_since = time.time()
        node.fenced_by = 0  # a replica takes no writes, fenced or not
        # Our history stays ours to PSYNC with (PSYNC2): the new leader may have it as replid2.
        node.propagating = True
        self._disconnect_replicas()
        for waiter in list(self._waiters):
            self._finish_waiter(waiter, ErrorReply("UNBLOCKED this node became a replica while the command waited"))
        node.update_gate()
        if was_master:
            log.info("Before turning into a replica, using my own master parameters to synthesize a cached master")
        log.info("Connecting to MASTER %s:%d", host, port)
        if self._link_task is not None:
            self._link_task.cancel()
        self._link_task = asyncio.get_running_loop().create_task(self._link_loop(host, port))
        node.on_role_change()

    def check_leader_epoch(self) -> None:
        """Our epoch went up: drop the link to a leader behind it (the retry's handshake refuses it)."""
        link = self._link
        if link is None:
            return
        link.config.epoch = self.node.epoch  # a handshake under way checks the new epoch
        if link.state > LinkState.RECEIVE_EPOCH and link.leader_epoch < self.node.epoch:
            log.warning(
                "Epoch %d is newer than the leader's (%d): dropping the link", self.node.epoch, link.leader_epoch
            )
            if self._link_writer is not None:
                self._link_writer.close()

    def promote(self) -> None:
        node = self.node
        self._no_history = False  # what we write from now on is a history others can continue
        if self._link_task is not None:
            self._link_task.cancel()
            self._link_task = None
        if self._link_writer is not None:
            self._link_writer.close()
            self._link_writer = None
        self._link = None
        node.role = "master"
        node.keyspace.is_replica = False
        node.leader_addr = None
        node.link_up = False
        node.repl.shift_replid()
        node.propagating = True
        self._disconnect_replicas()  # they reconnect and PSYNC under the new id
        node.update_gate()
        log.info("MASTER MODE enabled (epoch %d, new replication id %s)", node.epoch, node.repl.replid)
        node.on_role_change()

    def _disconnect_replicas(self) -> None:
        for client in list(self.node.replicas.values()):
            client.close()

    def _send_ack(self) -> None:
        if self._link_writer is not None:
            self._link_writer.write(encode_command([b"REPLCONF", b"ACK", str(self.node.repl.offset).encode()]))

    async def _link_loop(self, host: str, port: int) -> None:
        node = self.node
        while node.role != "master" and node.leader_addr == (host, port):
            try:
                await self._run_link(host, port)
            except asyncio.CancelledError:
                raise
            except (TimeoutError, OSError) as e:
                log.warning("Error condition on socket for SYNC: %s", e)
            except Exception:
                log.exception("replication link to %s:%d failed", host, port)
            finally:
                self._link_down()
            await asyncio.sleep(_RECONNECT_DELAY)

    def _link_down(self) -> None:
        node = self.node
        if self._link_writer is not None:
            self._link_writer.close()
            self._link_writer = None
        if node.link_up:
            node.link_up = False
            node.link_down_since = time.time()
            log.warning("Connection with master lost.")
            # Sub-replicas follow us: they must resync once we have a leader again.
            self._disconnect_replicas()
            node.update_gate()
        self.sync_in_progress = False

    async def _run_link(self, host: str, port: int) -> None:
        node = self.node
        config = node.config
        timeout = config["repl-timeout"]
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        self._link_writer = writer
        self.last_leader_io = time.time()
        server_port = self.server.ports[0] if self.server.ports else config["port"]
        link = ReplicaLink(
            LinkConfig(
                listening_port=config["replica-announce-port"] or server_port,
                announce_ip=config["replica-announce-ip"],
                masterauth=config["masterauth"],
                masteruser=config["masteruser"],
                epoch=node.epoch,
                # A node started as a replica with no data of its own asks for a full sync,
                # as Redis does (PSYNC ? -1): it is not a refused partial resync.
                replid="?" if self._no_history else node.repl.replid,
                offset=node.repl.offset,
            )
        )
        self._link = link
        master = node.new_client(f"{host}:{port}", "", _LeaderConnection(writer))
        master.kind = "master"
        master.authenticated = True
        # A partial resync continues the stream in the database it was in (also after a restart).
        master.db = node.keyspace.dbs[node.stream_db]
        master.update_slow_path()
        loader: KeyspaceLoader | None = None
        self._multi_pending = []  # a transaction cut by the previous link is resent whole
        full: tuple[str, int] | None = None
        try:
            for event in link.start():
                writer.write(event.data)
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    raise ConnectionError("leader closed the connection")
                self.last_leader_io = time.time()
                events = link.receive(data)
                for event in events:
                    kind = event.kind
                    if kind == "command":
                        self._apply(master, event.data, writer)
                    elif kind == "snapshot_data":
                        assert loader is not None
                        loader.feed(event.data)
                        self.sync_read_bytes += len(event.data)
                    elif kind == "send":
                        writer.write(event.data)
                    elif kind == "epoch":
                        node.set_epoch(event.data)
                    elif kind == "full_sync":
                        full = (event.data, event.extra)
                        log.info("Full resync from master: %s:%d", event.data, event.extra)
                        loader = KeyspaceLoader(node.keyspace)
                        self.sync_in_progress = True
                        self.sync_read_bytes = 0
                    elif kind == "snapshot_end":
                        assert loader is not None and full is not None
                        stats = loader.finish()
                        loader = None
                        self.sync_in_progress = False
                        node.repl.reset(full[0], full[1])
                        node.on_dataset_replaced()  # the AOF starts over from this dataset
                        self._disconnect_replicas()  # our history changed under them
                        log.info("MASTER <-> REPLICA sync: Finished with success (%d keys)", stats.keys)
                        self._link_up()
                    elif kind == "continue":
                        new_id = event.data
                        if new_id and new_id != node.repl.replid:
                            node.repl.replid2 = node.repl.replid
                            node.repl.second_offset = node.repl.offset
                            node.repl.replid = new_id
                            self._disconnect_replicas()
                        log.info("Successful partial resynchronization with master.")
                        self._link_up()
                    elif kind == "error":
                        raise ConnectionError(event.data)
                await writer.drain()
        except RDBError as e:
            log.error("MASTER <-> REPLICA sync: the snapshot is not valid: %s", e)
            raise ConnectionError(str(e)) from None
        finally:
            node.stream_db = master.db.id
            node.remove_client(master)
            self._link = None

    def _link_up(self) -> None:
        node = self.node
        self._no_history = False
        node.link_up = True
        node.propagating = True
        self._last_ack_sent = time.monotonic()
        self._send_ack()
        node.update_gate()

    def _apply(self, master: Client, args: list[bytes], writer: asyncio.StreamWriter) -> None:
        node = self.node
        if args[0].lower() == b"replconf" and len(args) > 1 and args[1].lower() == b"getack":
            # Answer with the offset before this command, then count it (as Redis does).
            writer.write(encode_command([b"REPLCONF", b"ACK", str(node.repl.offset).encode()]))
        else:
            # The leader ran this while its keys were alive: logically expired keys stay
            # visible to it here (our own clients never see them; keyspace._expire_if_due).
            ks = node.keyspace
            ks.applying_leader_stream = True
            try:
                reply = node.execute(master, args)
            finally:
                ks.applying_leader_stream = False
            if reply.__class__ is ErrorReply and args[0].lower() != b"ping":
                log.warning("command from the leader failed: %r: %s", args[:3], reply)
        encoded = encode_command(args)
        if master.multi is not None:
            # Inside the leader's MULTI: not applied until EXEC, so not counted until then
            # either (as Redis). A link lost mid-transaction resumes from its MULTI.
            self._multi_pending.append(encoded)
            return
        if self._multi_pending:
            encoded = b"".join(self._multi_pending) + encoded
            self._multi_pending = []
        node.relay(encoded)


def _write_all(fd: int, data: bytes) -> None:
    """Write everything to a non-blocking socket, waiting for room (at most 60 s without progress)."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            if not select.select([], [fd], [], 60)[1]:
                raise TimeoutError("the replica stopped reading") from None
            continue
        view = view[n:]


def _sync_job(keyspace: Any, fd: int, mark: bytes, position: tuple[str, int, int]) -> Callable[[], dict[str, Any]]:
    """The forked child's work in a full sync: the snapshot, framed for EOF capa, to the replica's socket."""

    def job() -> dict[str, Any]:
        replid, offset, stream_db = position
        writer = RDBWriter(keyspace, snapshot=False, repl_id=replid, repl_offset=offset, repl_stream_db=stream_db)
        _write_all(fd, b"$EOF:" + mark + b"\r\n")
        for chunk in writer:
            _write_all(fd, chunk)
        _write_all(fd, mark)
        return {"keys": writer.keys_written, "bytes": writer.bytes_written}

    return job
