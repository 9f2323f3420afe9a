"""Durability: the append-only file, snapshots on disk and recovery at start-up.

The formats are sans-I/O (:mod:`kvcluster.node.rdb`, :mod:`kvcluster.node.aof`); this
module is their I/O shell, driven by the node's event loop:

* **AOF writer** (:class:`AOFWriter`). ``Node.write_log`` hands it the replication
  stream bytes of every write; they collect in memory and are written once per event
  loop iteration, framed in checksummed batches. ``appendfsync always``: the write and
  fdatasync run in a background thread (group commit: one fsync for everything the
  loop produced meanwhile) and replies wait (``Node.hold_reply``) until the bytes they
  depend on are on disk. ``everysec``/``no``: the bytes are written before any reply
  leaves (so a killed process loses nothing it acknowledged) and fsynced by the thread
  once a second (``everysec``) or by the kernel (``no``).
* **Background children** (:meth:`Persistence._fork`): BGSAVE and BGREWRITEAOF fork,
  like Redis: the child sees a copy-on-write image of the keyspace, writes it with
  ``RDBWriter(snapshot=False)`` (or as commands), fsyncs and ``os._exit``s; the parent
  polls it from the cron and renames/switches files when it succeeded.
* **Rewrite** follows Redis 7: at the start a new incremental file takes the writes
  (listed in the manifest at once), the child writes a new base; when it is done the
  manifest switches to the new base + the increments since, atomically. No write is
  lost at any point: a crash before the switch loads old base + old increments + new.
* **Recovery** (:meth:`Persistence.load`): the AOF when enabled (base, then increments;
  a torn last record truncated with a warning when ``aof-load-truncated yes``; damage
  elsewhere stops start-up with the file and offset), else the RDB file. Meanwhile the
  server listens and answers ``-LOADING``. The replication id and offset come back too
  (RDB aux fields, AOF batch offsets) when the data provably corresponds to them, so a
  restarted replica partial-resyncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kvcluster.common.config import ConfigError
from kvcluster.node import aof
from kvcluster.node.client import Client
from kvcluster.node.forkchild import read_report, run_child
from kvcluster.node.rdb import KeyspaceLoader, RDBError, RDBWriter, save_rdb_file

if TYPE_CHECKING:
    from kvcluster.node.core import Node

log = logging.getLogger("kvcluster.node")

# Redis's CONFIG_BGSAVE_RETRY_DELAY: after a failed BGSAVE, save rules wait this long.
_BGSAVE_RETRY_DELAY = 5
_REWRITE_RETRY_DELAY = 1.0
_YIELD_EVERY = 0.02  # seconds of loading work between two turns of the event loop
_PING = (b"*1\r\n$4\r\nPING\r\n", b"*1\r\n$4\r\nping\r\n")
_MISCONF_RDB = (
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. "
    "Commands that may modify the data set are disabled, because this instance is configured to report "
    "errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the "
    "Redis logs for details about the RDB error."
)


class PersistenceError(Exception):
    """Start-up cannot go on: a data file is corrupt, unreadable or inconsistent."""


class _LoadingAborted(Exception):
    """SHUTDOWN or a signal while loading: stop at once (nothing is saved)."""


def fsync_dir(path: str) -> None:
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, fsync of the directory."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, "temp-" + os.path.basename(path))
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(directory)


def _write_all(fd: int, data: bytes | memoryview, size_before: int) -> None:
    """Write everything; on an error, cut a partial write off again so no half record stays."""
    view = memoryview(data)
    try:
        while view:
            n = os.write(fd, view)
            view = view[n:]
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size_before)
        raise


class _Worker:
    """One background thread running file jobs in order; completions run on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._done: deque[tuple[Callable[[BaseException | None], None], BaseException | None]] = deque()
        self._pending = 0
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="kvcluster-aof", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], None], on_done: Callable[[BaseException | None], None]) -> None:
        with self._cv:
            self._pending += 1
        self._jobs.put((fn, on_done))

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            fn, on_done = item
            err: BaseException | None = None
            try:
                fn()
            except BaseException as e:  # reported to the loop, which decides
                err = e
            self._done.append((on_done, err))
            with self._cv:
                self._pending -= 1
                self._cv.notify_all()
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                self.loop.call_soon_threadsafe(self.run_done)

    def run_done(self) -> None:
        while self._done:
            on_done, err = self._done.popleft()
            on_done(err)

    def wait_idle(self) -> None:
        """Block until every submitted job ran, then run their completions (rare operations only)."""
        with self._cv:
            while self._pending:
                self._cv.wait()
        self.run_done()

    def stop(self) -> None:
        self.wait_idle()
        self._jobs.put(None)
        self._thread.join(5)


class AOFWriter:
    """The open incremental AOF file and the bytes on their way to it (see the module docstring)."""

    def __init__(self, persistence: Persistence, fd: int, path: str, policy: str):
        self.p = persistence
        self.node = persistence.node
        self.loop = persistence.loop
        self.worker = _Worker(self.loop)
        self.fd = fd
        self.path = path
        self.size = os.fstat(fd).st_size
        self.always = policy == "always"
        self.everysec = policy == "everysec"
        # Pending batches: [stream offset, replid line or None, chunks, bytes].
        self.batches: list[list[Any]] = []
        self.end = -1  # stream offset just after the last byte appended
        self.replid: str | None = None  # the replication id the file's last batch was under
        # Replica side: a transaction from the leader, held until its EXEC (never half in a file).
        self.tx: list[tuple[int, bytes]] | None = None
        # Payload bytes appended / written to the file / known to be on disk.
        self.appended = 0
        self.written = 0
        self.synced = 0
        self.retry = b""  # framed bytes a failed write() left behind
        self.held: deque[tuple[int, Any, bytes]] = deque()  # (appended mark, connection, reply bytes)
        self.commit_scheduled = False
        self.commit_in_flight = False
        self.flush_scheduled = False
        self.fsync_in_flight = False
        self.last_fsync = time.monotonic()
        self.write_error: str | None = None

    # -- feeding (Node.write_log) --------------------------------------------------

    def feed(self, data: bytes) -> None:
        node = self.node
        start = node.repl.offset - len(data)
        if node.role != "master":
            # A replica relays its leader's stream one command at a time; PINGs and
            # REPLCONF GETACK are not writes (they leave a gap the offsets account for).
            if data in _PING or data[:18].upper() == b"*3\r\n$8\r\nREPLCONF\r\n":
                return
            head = data[:15].upper()
            if head == b"*1\r\n$5\r\nMULTI\r\n":
                self.tx = [(start, data)]
                return
            if self.tx is not None:
                self.tx.append((start, data))
                if head[:14] == b"*1\r\n$4\r\nEXEC\r\n" or head == b"*1\r\n$7\r\nDISCARD":
                    tx, self.tx = self.tx, None
                    for s, d in tx:
                        self._append(s, d)
                return
        elif self.tx is not None:
            self.tx = None  # promoted in the middle of a leader's transaction: it never completes
        self._append(start, data)

    def _append(self, start: int, data: bytes) -> None:
        n = len(data)
        batches = self.batches
        replid = self.node.repl.replid
        if replid != self.replid or start != self.end or not batches:
            note = None
            if replid != self.replid:
                note = aof.replid_line(replid)
                self.replid = replid
            batches.append([start, note, [data], n])
        else:
            batch = batches[-1]
            batch[2].append(data)
            batch[3] += n
        self.end = start + n
        self.appended += n
        if self.always:
            if not self.commit_scheduled and not self.commit_in_flight:
                self.commit_scheduled = True
                self.loop.call_soon(self._commit)
        elif not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush_soon)

    def _take(self) -> bytes:
        out: list[bytes] = []
        for offset, note, chunks, _n in self.batches:
            payload = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            if note is not None:
                out.append(note)
            out.append(aof.batch_header(offset, payload))
            out.append(payload)
        self.batches = []
        return b"".join(out)

    @property
    def pending_bytes(self) -> int:
        return sum(b[3] for b in self.batches) + len(self.retry)

    # -- replies wait for the disk (Node.hold_reply) ---------------------------------

    def hold(self, conn: Any, data: bytes) -> bool:
        """Called before any reply goes out: True if the writer took it to send later."""
        if self.always:
            if self.appended > self.synced:
                client = conn.client
                if client is not None and client.kind == "replica":
                    return False  # replicas get the stream at once; their copy is not our disk
                self.held.append((self.appended, conn, data))
                if not self.commit_scheduled and not self.commit_in_flight:
                    self.commit_scheduled = True
                    self.loop.call_soon(self._commit)
                return True
            return False
        # everysec/no: written to the file before the reply leaves (so a crash of the process
        # loses nothing acknowledged), once per event loop iteration for all connections.
        if self.appended > self.written:
            client = conn.client
            if client is not None and client.kind == "replica":
                self.write_now()  # never ahead of our own file
                return False
            self.held.append((self.appended, conn, data))
            if not self.flush_scheduled:
                self.flush_scheduled = True
                self.loop.call_soon(self._flush_soon)
            return True
        return False

    def _release(self, mark: int | None = None) -> None:
        held = self.held
        if mark is None:
            mark = self.synced if self.always else self.written
        while held and held[0][0] <= mark:
            _, conn, data = held.popleft()
            conn.send(data)

    # -- everysec / no -----------------------------------------------------------------

    def _flush_soon(self) -> None:
        self.flush_scheduled = False
        if self.batches or self.retry:
            self.write_now()
        self._release()

    def write_now(self) -> None:
        data = self.retry + self._take()
        if not data:
            return
        try:
            _write_all(self.fd, data, self.size)
        except OSError as e:
            self.retry = data
            self._write_failed(e)
            # As Redis: the write stays in memory (retried each tick), its reply goes out; the
            # next writes are refused (-MISCONF) until the disk takes them again.
            self._release(self.appended)
            return
        self.retry = b""
        self.size += len(data)
        self.written = self.appended
        if self.write_error is not None:
            log.warning("AOF write error looks solved, Redis can write again.")
            self.write_error = None
            self.p.update_refusal()

    def _write_failed(self, e: OSError) -> None:
        if self.write_error is None:
            log.error("Error writing to the AOF file %s: %s", self.path, e.strerror or e)
        self.write_error = e.strerror or str(e)
        self.p.update_refusal()

    def cron(self) -> None:
        if self.always:
            return
        if self.retry:
            self.write_now()
        if (
            self.everysec
            and self.written > self.synced
            and not self.fsync_in_flight
            and time.monotonic() - self.last_fsync >= 1.0
        ):
            target = self.written
            fd = self.fd
            self.fsync_in_flight = True
            self.worker.submit(lambda: os.fdatasync(fd), lambda err: self._fsynced(target, err))

    def _fsynced(self, target: int, err: BaseException | None) -> None:
        self.fsync_in_flight = False
        self.last_fsync = time.monotonic()
        if err is not None:
            log.error("fsync of the AOF file %s failed: %s", self.path, err)
            return
        self.synced = max(self.synced, target)

    # -- always: group commit in the worker thread -----------------------------------------

    def _commit(self) -> None:
        self.commit_scheduled = False
        if self.commit_in_flight:
            return
        data = self._take()
        if not data:
            self._release()
            return
        target = self.appended
        fd, size = self.fd, self.size
        self.commit_in_flight = True

        def job() -> None:
            _write_all(fd, data, size)
            os.fdatasync(fd)

        self.worker.submit(job, lambda err: self._committed(target, len(data), err))

    def _committed(self, target: int, n: int, err: BaseException | None) -> None:
        self.commit_in_flight = False
        if err is not None:
            # As Redis: with appendfsync always an acknowledged write must be on disk; no way on.
            log.critical("Can't persist to the AOF file %s with appendfsync always (%s): exiting.", self.path, err)
            logging.shutdown()
            os._exit(1)
        self.size += n
        self.written = self.synced = target
        self.last_fsync = time.monotonic()
        self._release()
        if self.batches:
            self._commit()

    # -- rare, blocking operations ---------------------------------------------------------

    def drain(self, fsync: bool = True) -> None:
        """Everything appended so far into the file (and on disk); blocks the loop briefly."""
        # A completed commit may start the next one (its completion runs here): wait for all.
        self.worker.wait_idle()
        while self.commit_in_flight or self.fsync_in_flight:
            self.worker.wait_idle()
        data = self.retry + self._take()
        if data:
            _write_all(self.fd, data, self.size)
            self.retry = b""
            self.size += len(data)
        self.written = self.appended
        if fsync:
            os.fdatasync(self.fd)
            self.synced = self.appended
            self.last_fsync = time.monotonic()
        self._release()

    def switch_to(self, fd: int, path: str) -> None:
        """Go on in a new incremental file (rewrite start): the old one is completed first."""
        try:
            self.drain(fsync=True)
        except OSError:
            os.close(fd)
            raise
        os.close(self.fd)
        self.fd = fd
        self.path = path
        self.size = os.fstat(fd).st_size
        self.replid = None  # the new file's first batch names its replication id
        self.end = -1

    def set_policy(self, policy: str) -> None:
        self.drain(fsync=True)
        self.always = policy == "always"
        self.everysec = policy == "everysec"

    def close(self) -> None:
        try:
            self.drain(fsync=True)
        except OSError as e:
            log.error("Error flushing the AOF file %s: %s", self.path, e)
        finally:
            self.worker.stop()
            with contextlib.suppress(OSError):
                os.close(self.fd)
            # Nothing will ever sync what is still held: those writes are not acknowledged.
            self.held.clear()


@dataclass
class _Child:
    kind: str  # "rdb" or "aof"
    pid: int
    pipe: int
    started: float
    tmp: str
    extra: dict[str, Any] = field(default_factory=dict)


class _Position:
    """The replication position the data loaded so far corresponds to (AOF recovery)."""

    def __init__(self) -> None:
        self.replid: str | None = None
        self.offset: int | None = None
        self.fresh = False  # a new replication id was announced since the last batch
        self.stream_db = 0

    def set(self, replid: str | None, offset: int | None) -> None:
        self.replid = replid
        self.offset = offset if replid else None
        self.fresh = False

    def note_replid(self, replid: str) -> None:
        if replid != self.replid:
            self.replid = replid
            self.fresh = True

    def batch(self, offset: int, length: int) -> None:
        if offset < 0:
            return  # a command base's batch: not part of the stream
        if self.replid is None:
            self.offset = None
        elif (self.offset is not None and offset >= self.offset) or self.fresh:
            # A gap is the stream's non-write bytes (PINGs); a new id starts a new history.
            self.offset = offset + length
        else:
            self.offset = None  # offsets went backwards under one id: do not trust them
        self.fresh = False

    @property
    def trusted(self) -> bool:
        return self.replid is not None and self.offset is not None


class Persistence:
    """Snapshots, the AOF and recovery for one node (created by the server shell)."""

    def __init__(self, node: Node):
        self.node = node
        self.config = node.config
        node.persistence = self
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started = False
        now = int(time.time())
        # -- RDB ----------------------------------------------------------------------------
        self.lastsave = now
        self.dirty_before_bgsave = 0
        self.lastbgsave_status = "ok"
        self.lastbgsave_try = 0.0
        self.rdb_saves = 0
        self.rdb_last_bgsave_time = -1
        self.rdb_last_cow = 0
        self.rdb_last_load_keys_loaded = 0
        self.rdb_last_load_keys_expired = 0
        self.bgsave_scheduled = False
        # -- AOF ----------------------------------------------------------------------------
        self.aof_state = "off"  # off, on, or wait_rewrite (enabled, but no complete base yet)
        self.writer: AOFWriter | None = None
        self.manifest: aof.Manifest | None = None  # what the manifest on disk says
        self.live_incrs: list[aof.AOFInfo] = []  # the increments since the base (or since waiting)
        self.closed_incr_size = 0  # bytes in live increments other than the open one
        self.aof_base_size = 0
        self.aof_rewrite_scheduled = False
        self.aof_last_rewrite_time = -1
        self.aof_last_bgrewrite_status = "ok"
        self.aof_rewrites = 0
        self.aof_rewrite_failures = 0
        self.aof_last_cow = 0
        self.last_rewrite_try = 0.0
        self._next_seq = 1
        # -- children and loading ----------------------------------------------------------------
        self.child: _Child | None = None
        self.stat_fork_usec = 0
        self.total_forks = 0
        self.loading_start = 0.0
        self.loading_total = 0
        self.loading_loaded = 0
        self._abort_loading = False
        self.config.on_change("appendonly", self._on_appendonly)
        self.config.on_change("appendfsync", self._on_appendfsync)
        self.config.on_change("dir", self._on_dir)
        for name in ("save", "stop-writes-on-bgsave-error"):
            self.config.on_change(name, lambda value: self.update_refusal())
        node.on_dataset_replaced = self.on_dataset_replaced

    # -- paths ------------------------------------------------------------------------------

    @property
    def dir(self) -> str:
        return self.config["dir"] or "."

    @property
    def rdb_path(self) -> str:
        return os.path.join(self.dir, self.config["dbfilename"])

    @property
    def aof_dir(self) -> str:
        return os.path.join(self.dir, self.config["appenddirname"])

    @property
    def aof_filename(self) -> str:
        return self.config["appendfilename"]

    @property
    def manifest_path(self) -> str:
        return os.path.join(self.aof_dir, aof.manifest_name(self.aof_filename))

    def _aof_path(self, name: str) -> str:
        return os.path.join(self.aof_dir, name)

    # -- start-up: recovery --------------------------------------------------------------------

    async def start(self) -> None:
        """Load the data (the server listens meanwhile, answering -LOADING), then open the AOF."""
        self.loop = asyncio.get_running_loop()
        node = self.node
        node.loading = True
        node.update_gate()
        self.loading_start = time.time()
        try:
            self._clean_temp_files()
            aof_on = self.config["appendonly"]
            if aof_on and os.path.exists(self.manifest_path):
                await self._load_aof()
            elif os.path.exists(self.rdb_path):
                await self._load_rdb(self.rdb_path)
            if aof_on:
                self._open_aof_at_start()
        except _LoadingAborted:
            # Still "loading" until the process exits: nothing is served from half a dataset.
            log.warning("Shutdown requested while loading: stopped loading, nothing saved")
            return
        node.loading = False
        node.update_gate()
        # Like Redis: what was loaded is not a change since the last save.
        node.keyspace.dirty = 0
        for cmd in node.table.values():
            cmd.reset_stats()  # the loader's commands are not client commands
        self.started = True

    def _clean_temp_files(self) -> None:
        # Left by a crash mid-save (a child that died with its parent, or a kill -9).
        save_tmp = self.config["dbfilename"] + ".tmp-"
        for directory in (self.dir, self.aof_dir):
            with contextlib.suppress(OSError):
                for name in os.listdir(directory):
                    if (name.startswith("temp-") and name.endswith((".rdb", ".aof", ".manifest"))) or name.startswith(
                        save_tmp
                    ):
                        with contextlib.suppress(OSError):
                            os.unlink(os.path.join(directory, name))

    def _is_replica_config(self) -> bool:
        leader = self.config["replicaof"]
        return bool(leader) and [w.lower() for w in leader] != ["no", "one"]

    async def _load_rdb(self, path: str) -> None:
        node = self.node
        ks = node.keyspace
        started = time.monotonic()
        # Like Redis: a master drops keys already expired, a replica keeps them for the leader's DEL.
        loader = KeyspaceLoader(ks, now_ms=None if self._is_replica_config() else ks.clock_ms())
        self.loading_total = os.path.getsize(path)
        self.loading_loaded = 0
        try:
            await self._feed_rdb(loader, path)
            stats = loader.finish()
        except RDBError as e:
            raise PersistenceError(f"Short read or corrupt RDB file {path}: {e}") from None
        except OSError as e:
            raise PersistenceError(f"Can't read the RDB file {path}: {e}") from None
        self.rdb_last_load_keys_loaded = stats.keys
        self.rdb_last_load_keys_expired = stats.expired_skipped
        log.info(
            "DB loaded from disk: %.3f seconds (%d keys, %d expired keys skipped)",
            time.monotonic() - started,
            stats.keys,
            stats.expired_skipped,
        )
        position = _rdb_position(stats.aux)
        if position is not None:
            self._restore_position(*position, source=path)

    async def _feed_rdb(self, loader: KeyspaceLoader, path: str) -> None:
        delay_us = self.config["key-load-delay"]
        last_yield = time.monotonic()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20 if delay_us <= 0 else 4096):
                before = loader.keys
                loader.feed(chunk)
                self.loading_loaded += len(chunk)
                if delay_us > 0:
                    await asyncio.sleep((loader.keys - before) * delay_us / 1e6)
                    self._check_abort()
                elif time.monotonic() - last_yield > _YIELD_EVERY:
                    await asyncio.sleep(0)  # serve clients (-LOADING) between chunks
                    self._check_abort()
                    last_yield = time.monotonic()

    def _check_abort(self) -> None:
        if self._abort_loading:
            raise _LoadingAborted

    def _restore_position(self, replid: str, offset: int, stream_db: int, source: str) -> None:
        node = self.node
        node.repl.reset(replid, offset)
        node.stream_db = stream_db
        if not self._is_replica_config():
            # A leader continues under a new id, the restored one as replid2 up to this offset
            # (as after a promotion): replicas at or before it continue; one that got stream
            # bytes this node lost (an unsynced tail) is ahead of it and full-syncs, instead of
            # one day continuing with different bytes at the same offsets.
            node.repl.shift_replid()
            node.propagating = True
        log.info("Replication id %s and offset %d restored from %s", replid, offset, source)

    def _loader_client(self) -> Client:
        client = Client(self.node, 0, "aof-loader")
        client.kind = "master"  # through the gate, never propagated, never refused
        client.authenticated = True
        client.update_slow_path()
        return client

    async def _load_aof(self) -> None:
        node = self.node
        ks = node.keyspace
        started = time.monotonic()
        try:
            with open(self.manifest_path, "rb") as f:
                manifest = aof.Manifest.parse(f.read(), self.manifest_path)
        except (OSError, aof.ManifestError) as e:
            raise PersistenceError(f"Can't load the AOF manifest: {e}") from None
        files = manifest.files()
        for info in files:
            if not os.path.exists(self._aof_path(info.name)):
                raise PersistenceError(f"The AOF file {self._aof_path(info.name)} listed in the manifest doesn't exist")
        self.loading_total = sum(os.path.getsize(self._aof_path(i.name)) for i in files)
        self.loading_loaded = 0
        client = self._loader_client()
        position = _Position()
        # Replay as a replica applies its leader's stream: keys expired meanwhile stay
        # visible to the commands that follow (the expiry's DEL is in the file too).
        was_replica = ks.is_replica
        ks.is_replica = True
        ks.applying_leader_stream = True
        commands = 0
        try:
            for i, info in enumerate(files):
                path = self._aof_path(info.name)
                last = i == len(files) - 1
                if info.type == aof.BASE and aof.is_rdb_file(path):
                    await self._load_base_rdb(path, position, client)
                else:
                    commands += await self._replay(path, position, client, last, info.type == aof.BASE)
        finally:
            ks.is_replica = was_replica
            ks.applying_leader_stream = False
        self.manifest = manifest
        self.live_incrs = list(manifest.incrs)
        self.aof_base_size = os.path.getsize(self._aof_path(manifest.base.name)) if manifest.base else 0
        log.info(
            "DB loaded from append only file: %.3f seconds (%d keys, %d commands replayed)",
            time.monotonic() - started,
            sum(len(db.data) for db in ks.dbs),
            commands,
        )
        if position.trusted:
            assert position.replid is not None and position.offset is not None
            self._restore_position(position.replid, position.offset, client.db.id, self.manifest_path)
        else:
            log.info("The AOF does not tell the replication offset of its data: starting a new replication history")
        self.aof_state = "on"

    async def _load_base_rdb(self, path: str, position: _Position, client: Client) -> None:
        loader = KeyspaceLoader(self.node.keyspace)
        try:
            await self._feed_rdb(loader, path)
            stats = loader.finish()
        except RDBError as e:
            raise PersistenceError(f"Bad file format reading the AOF base file {path}: {e}") from None
        self.rdb_last_load_keys_loaded = stats.keys
        found = _rdb_position(stats.aux)
        if found is None:
            position.set(None, None)
        else:
            position.set(found[0], found[1])
            client.db = self.node.keyspace.dbs[min(found[2], len(self.node.keyspace.dbs) - 1)]

    async def _replay(self, path: str, position: _Position, client: Client, last: bool, is_base: bool) -> int:
        node = self.node
        execute = node.execute
        delay_us = self.config["key-load-delay"]
        multi_at = -1  # where an open MULTI started (plain files: Redis reverts it at the end)
        in_batch = False
        batch_start = 0
        count = 0
        loaded_before = self.loading_loaded
        last_yield = time.monotonic()
        with open(path, "rb") as f:
            reader = aof.AOFReader(f, path)
            try:
                for kind, value, start, _end in reader.records():
                    if kind == aof.CMD:
                        name = value[0].lower()
                        if name == b"ping" or name == b"replconf":
                            continue
                        if name == b"multi":
                            multi_at = batch_start if in_batch else start
                        elif name == b"exec" or name == b"discard":
                            multi_at = -1
                        if not in_batch and not is_base:
                            position.offset = None  # commands without our framing: offset unknown
                        execute(client, value)
                        count += 1
                        if count & 255 == 0:
                            self.loading_loaded = loaded_before + reader.good_end
                            if delay_us > 0:
                                await asyncio.sleep(256 * delay_us / 1e6)
                                self._check_abort()
                            elif time.monotonic() - last_yield > _YIELD_EVERY:
                                await asyncio.sleep(0)
                                self._check_abort()
                                last_yield = time.monotonic()
                    elif kind == aof.BATCH:
                        in_batch = True
                        batch_start = start
                        position.batch(*value)
                    elif kind == aof.BATCH_END:
                        in_batch = False
                        if client.multi is not None:
                            raise PersistenceError(
                                f"{path}: a transaction is not closed in the batch at offset {start}"
                            )
                    elif kind == aof.REPLID:
                        position.note_replid(value)
                    elif kind == aof.BASE_POS:
                        position.set(value[0], value[1])
            except aof.AOFError as e:
                if not (e.torn and last and not is_base):
                    raise PersistenceError(
                        f"Bad file format reading the append only file {path}: {e.message} at offset {e.offset}. "
                        "Make a backup of the file and inspect it; `kvcluster check-aof` reports what is wrong"
                    ) from None
                if not self.config["aof-load-truncated"]:
                    raise PersistenceError(
                        f"Unexpected end of file reading the append only file {path} at offset {e.offset} "
                        f"({e.message}). You can: 1) make a backup of the AOF, then run `kvcluster check-aof --fix "
                        f"{path}`; 2) set aof-load-truncated yes and restart"
                    ) from None
                cut = e.offset if multi_at < 0 else min(e.offset, multi_at)
                log.warning(
                    "!!! Warning: short read while loading the AOF file %s!!! (%s at offset %d of %d bytes): "
                    "truncating the file at offset %d and going on (aof-load-truncated yes)",
                    path,
                    e.message,
                    e.offset,
                    os.path.getsize(path),
                    cut,
                )
                aof.truncate_file(path, cut)
                multi_at = -1
                if client.multi is not None:
                    client.multi = None
                    client.update_slow_path()
        if client.multi is not None:
            if not last:
                raise PersistenceError(f"{path}: the file ends in the middle of a MULTI/EXEC transaction")
            log.warning(
                "Revert incomplete MULTI/EXEC transaction in AOF file %s (truncated at offset %d)", path, multi_at
            )
            aof.truncate_file(path, multi_at)
            client.multi = None
            client.update_slow_path()
        self.loading_loaded = loaded_before + os.path.getsize(path)
        return count

    def _open_aof_at_start(self) -> None:
        """Open the AOF for appending; without one yet, write its base from the data now loaded."""
        os.makedirs(self.aof_dir, exist_ok=True)
        # From here on every write is counted in the stream, so the data always corresponds to
        # (replid, offset): either the restored history or a new one starting with this data.
        self.node.propagating = True
        self._next_seq = self._max_seq_on_disk() + 1
        if self.manifest is not None:
            manifest = self.manifest
            if manifest.incrs:
                info = manifest.incrs[-1]
                fd = os.open(self._aof_path(info.name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                log.info("Opening AOF incr file %s on server start", info.name)
            else:
                info, fd = self._new_incr()
                manifest = aof.Manifest(manifest.base, [info], manifest.history)
                self._write_manifest(manifest)
            self.live_incrs = list(manifest.incrs)
            self.closed_incr_size = sum(os.path.getsize(self._aof_path(i.name)) for i in manifest.incrs[:-1])
        else:
            # The data just loaded (from the RDB file, or nothing) becomes the first base, at once:
            # we are still loading, so nothing writes meanwhile.
            seq = self._take_seq()
            rdb = self.config["aof-use-rdb-preamble"]
            base = aof.AOFInfo(aof.base_name(self.aof_filename, seq, rdb), seq, aof.BASE)
            tmp = self._aof_path(f"temp-rewriteaof-{os.getpid()}.aof")
            _write_base(self.node.keyspace, tmp, rdb, self._position(), self._stream_db())
            os.replace(tmp, self._aof_path(base.name))
            info, fd = self._new_incr()
            manifest = aof.Manifest(base, [info])
            self._write_manifest(manifest)
            self.live_incrs = [info]
            self.closed_incr_size = 0
            self.aof_base_size = os.path.getsize(self._aof_path(base.name))
            log.info("Creating AOF base file %s on server start", base.name)
        self._install_writer(fd, self._aof_path(info.name))
        self.aof_state = "on"
        self._delete_unlisted()

    def _max_seq_on_disk(self) -> int:
        best = 0
        prefix = self.aof_filename + "."
        with contextlib.suppress(OSError):
            for name in os.listdir(self.aof_dir):
                if name.startswith(prefix):
                    part = name[len(prefix) :].split(".", 1)[0]
                    if part.isdigit():
                        best = max(best, int(part))
        for info in self.manifest.files() if self.manifest else []:
            best = max(best, info.seq)
        return best

    def _take_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def _new_incr(self) -> tuple[aof.AOFInfo, int]:
        seq = self._take_seq()
        info = aof.AOFInfo(aof.incr_name(self.aof_filename, seq), seq, aof.INCR)
        fd = os.open(self._aof_path(info.name), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
        fsync_dir(self.aof_dir)
        return info, fd

    def _write_manifest(self, manifest: aof.Manifest) -> None:
        atomic_write(self.manifest_path, manifest.format())
        self.manifest = manifest

    def _delete_unlisted(self) -> None:
        """Remove our AOF files the manifest no longer lists (replaced bases, abandoned increments)."""
        keep = {i.name for i in (self.manifest.files() if self.manifest else [])}
        keep.update(i.name for i in self.live_incrs)
        prefix = self.aof_filename + "."
        doomed = []
        with contextlib.suppress(OSError):
            for name in os.listdir(self.aof_dir):
                if (
                    name.startswith(prefix)
                    and name not in keep
                    and name.endswith((".base.rdb", ".base.aof", ".incr.aof"))
                ):
                    doomed.append(self._aof_path(name))
        if not doomed:
            return

        def unlink() -> None:
            for path in doomed:
                with contextlib.suppress(OSError):
                    os.unlink(path)

        # Unlinking a big file takes the filesystem a while (~0.2 s per GB here): neither on the
        # loop nor in the AOF thread (fsyncs would wait behind it).
        threading.Thread(target=unlink, name="kvcluster-unlink", daemon=True).start()

    def _install_writer(self, fd: int, path: str) -> None:
        assert self.loop is not None
        node = self.node
        self.writer = AOFWriter(self, fd, path, self.config["appendfsync"])
        node.write_log = self.writer.feed
        node.hold_reply = self.writer.hold
        node.propagating = True  # the AOF is the stream: it must flow with or without replicas
        node.repl.selected_db = -1  # the file's first write says which database it is in

    # -- position, stream database ------------------------------------------------------------------

    def _stream_db(self) -> int:
        node = self.node
        if node.role == "master":
            return max(node.repl.selected_db, 0)
        for c in node.clients.values():
            if c.kind == "master":
                return c.db.id
        return node.stream_db

    def _position(self) -> dict[str, Any]:
        """RDB aux fields naming the replication position of the data right now (if it has one)."""
        node = self.node
        if not node.propagating or not self._can_fork():
            # Writes not being counted, or a leader's MULTI half applied: the offset says nothing.
            return {}
        return {"repl_id": node.repl.replid, "repl_offset": node.repl.offset, "repl_stream_db": self._stream_db()}

    def _can_fork(self) -> bool:
        # A replica in the middle of its leader's MULTI has counted bytes it has not applied.
        return not any(c.kind == "master" and c.multi is not None for c in self.node.clients.values())

    # -- the cron (hz times a second) -------------------------------------------------------------

    def cron(self) -> None:
        if not self.started:
            return
        if self.child is not None:
            self._check_child()
        writer = self.writer
        if writer is not None:
            writer.cron()
        if self.child is not None:
            return
        now = time.time()
        if self.bgsave_scheduled:
            with contextlib.suppress(ValueError):
                self.bgsave(schedule=False)
            return
        if self.aof_rewrite_scheduled or (
            self.aof_state == "wait_rewrite" and time.monotonic() - self.last_rewrite_try > _REWRITE_RETRY_DELAY
        ):
            self.start_rewrite()
            return
        ks = self.node.keyspace
        points = self.config["save"]
        for i in range(0, len(points) - 1, 2):
            seconds, changes = int(points[i]), int(points[i + 1])
            if (
                ks.dirty >= changes
                and now - self.lastsave > seconds
                and (self.lastbgsave_status == "ok" or now - self.lastbgsave_try > _BGSAVE_RETRY_DELAY)
            ):
                log.info("%d changes in %d seconds. Saving...", changes, seconds)
                with contextlib.suppress(ValueError):
                    self.bgsave()
                return
        if self.aof_state == "on" and self.config["auto-aof-rewrite-percentage"]:
            size = self.aof_current_size()
            base = self.aof_base_size or 1
            growth = (size - base) * 100 // base
            if size > self.config["auto-aof-rewrite-min-size"] and growth >= self.config["auto-aof-rewrite-percentage"]:
                log.info("Starting automatic rewriting of AOF on %d%% growth", growth)
                self.start_rewrite()

    def aof_current_size(self) -> int:
        writer = self.writer
        return self.aof_base_size + self.closed_incr_size + (writer.size + writer.pending_bytes if writer else 0)

    # -- children ------------------------------------------------------------------------------------

    def _fork(self, kind: str, job: Callable[[], dict[str, Any]], tmp: str, **extra: Any) -> bool:
        r, w = os.pipe()
        # Frozen objects are skipped by the parent's collections, which would otherwise
        # touch (and so copy) every page the child still shares.
        gc.freeze()
        t0 = time.perf_counter()
        try:
            pid = os.fork()
        except OSError as e:
            gc.unfreeze()
            os.close(r)
            os.close(w)
            log.error("Can't fork for a background %s: %s", "save" if kind == "rdb" else "AOF rewrite", e)
            return False
        if pid == 0:  # the child: write the file, report, exit; never return into the event loop
            run_child(job, w)
        self.stat_fork_usec = int((time.perf_counter() - t0) * 1e6)
        self.total_forks += 1
        os.close(w)
        self.child = _Child(kind, pid, r, time.monotonic(), tmp.replace("{pid}", str(pid)), extra)
        return True

    def _check_child(self) -> None:
        child = self.child
        assert child is not None
        try:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = child.pid, 1 << 8
        if pid == 0:
            return
        self._child_done(child, os.waitstatus_to_exitcode(status))

    def _child_done(self, child: _Child, code: int) -> None:
        self.child = None
        gc.unfreeze()
        report = read_report(child.pipe)
        os.close(child.pipe)
        elapsed = time.monotonic() - child.started
        ok = code == 0 and report.get("ok")
        if child.kind == "rdb":
            self._bgsave_done(child, bool(ok), code, elapsed, report)
        else:
            self._rewrite_done(child, bool(ok), code, elapsed, report)

    def kill_child(self) -> None:
        child = self.child
        if child is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGUSR1)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child.pid, 0)
        with contextlib.suppress(OSError):
            os.unlink(child.tmp)
        os.close(child.pipe)
        self.child = None
        gc.unfreeze()
        log.info("Killed the background %s child %d", "save" if child.kind == "rdb" else "AOF rewrite", child.pid)

    # -- RDB snapshots ---------------------------------------------------------------------------------

    def save(self) -> bool:
        """SAVE: a snapshot now, blocking the event loop (as Redis's SAVE does)."""
        started = time.monotonic()
        try:
            save_rdb_file(self.node.keyspace, self.rdb_path, **self._position())
        except OSError as e:
            log.error("Failed saving the DB to %s: %s", self.rdb_path, e)
            self.lastbgsave_status = "err"
            self.update_refusal()
            return False
        self.node.keyspace.dirty = 0
        self.lastsave = int(time.time())
        self.lastbgsave_status = "ok"
        self.rdb_saves += 1
        self.update_refusal()
        log.info("DB saved on disk (%.3f s)", time.monotonic() - started)
        return True

    def bgsave(self, schedule: bool = False) -> str:
        """BGSAVE; returns the status reply text or raises ValueError with the error text."""
        if self.child is not None:
            if self.child.kind == "rdb":
                raise ValueError("ERR Background save already in progress")
            if not schedule:
                raise ValueError(
                    "ERR Another child process is active (AOF?): can't BGSAVE right now. "
                    "Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible."
                )
            self.bgsave_scheduled = True
            return "Background saving scheduled"
        if not self._can_fork():
            self.bgsave_scheduled = True
            return "Background saving scheduled"
        self.bgsave_scheduled = False
        ks = self.node.keyspace
        position = self._position()
        directory = self.dir

        def job() -> dict[str, Any]:
            tmp = os.path.join(directory, f"temp-{os.getpid()}.rdb")
            writer = RDBWriter(ks, snapshot=False, chunk_size=1 << 20, **position)
            with open(tmp, "wb") as f:
                for chunk in writer:
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            return {"keys": writer.keys_written, "bytes": writer.bytes_written}

        self.dirty_before_bgsave = ks.dirty
        self.lastbgsave_try = time.time()
        if not self._fork("rdb", job, os.path.join(directory, "temp-{pid}.rdb")):
            self.lastbgsave_status = "err"
            self.update_refusal()
            raise ValueError("ERR Background save failed")
        assert self.child is not None
        log.info("Background saving started by pid %d", self.child.pid)
        return "Background saving started"

    def _bgsave_done(self, child: _Child, ok: bool, code: int, elapsed: float, report: dict[str, Any]) -> None:
        if ok:
            try:
                os.replace(child.tmp, self.rdb_path)
                fsync_dir(self.dir)
            except OSError as e:
                log.error("Can't rename the snapshot %s to %s: %s", child.tmp, self.rdb_path, e)
                ok = False
        if ok:
            ks = self.node.keyspace
            ks.dirty = max(0, ks.dirty - self.dirty_before_bgsave)
            self.lastsave = int(time.time())
            self.lastbgsave_status = "ok"
            self.rdb_saves += 1
            self.rdb_last_cow = int(report.get("cow", 0))
            log.info(
                "Background saving terminated with success (%d keys, %.3f s, %d MB of copy-on-write)",
                report.get("keys", 0),
                elapsed,
                self.rdb_last_cow >> 20,
            )
        else:
            with contextlib.suppress(OSError):
                os.unlink(child.tmp)
            self.lastbgsave_status = "err"
            log.error("Background saving error (child exit code %d): %s", code, report.get("error", "see the log"))
        self.rdb_last_bgsave_time = int(elapsed)
        self.update_refusal()

    def update_refusal(self) -> None:
        """Refuse writes (-MISCONF) while the disk cannot take them, as Redis does."""
        node = self.node
        refusal = None
        if self.config["stop-writes-on-bgsave-error"] and self.config["save"] and self.lastbgsave_status == "err":
            refusal = _MISCONF_RDB
        elif self.writer is not None and self.writer.write_error is not None:
            refusal = f"MISCONF Errors writing to the AOF file: {self.writer.write_error}"
        if refusal != node.disk_refusal:
            node.disk_refusal = refusal
            node.update_gate()

    # -- AOF: rewrite, enable, disable -------------------------------------------------------------------

    def bgrewriteaof(self) -> str:
        if self.child is not None and self.child.kind == "aof":
            raise ValueError("ERR Background append only file rewriting already in progress")
        if self.child is not None or not self._can_fork():
            self.aof_rewrite_scheduled = True
            return "Background append only file rewriting scheduled"
        if not self.start_rewrite():
            raise ValueError(
                "ERR Can't execute an AOF background rewriting. Please check the server logs for more information."
            )
        return "Background append only file rewriting started"

    def start_rewrite(self, reuse_incr: bool = False) -> bool:
        """Fork a child writing a new base; the writes from now on go to a new increment."""
        if self.child is not None or not self._can_fork():
            self.aof_rewrite_scheduled = True
            return True
        self.aof_rewrite_scheduled = False
        self.last_rewrite_try = time.monotonic()
        node = self.node
        try:
            os.makedirs(self.aof_dir, exist_ok=True)
            if self._next_seq <= 1:
                self._next_seq = self._max_seq_on_disk() + 1
            if self.writer is not None and not reuse_incr:
                info, fd = self._new_incr()
                old_size = self.writer.size
                self.writer.switch_to(fd, self._aof_path(info.name))
                self.closed_incr_size += old_size
                self.live_incrs.append(info)
                if self.aof_state == "on":
                    # Listed at once: the writes from now on are durable with the old base.
                    assert self.manifest is not None
                    self._write_manifest(aof.Manifest(self.manifest.base, [*self.manifest.incrs, info]))
            first_incr = self.live_incrs[-1].seq if self.writer is not None else None
        except OSError as e:
            log.error("Can't start an AOF rewrite: %s", e)
            self._rewrite_failed()
            return False
        if node.role == "master":
            node.repl.selected_db = -1
        rdb = self.config["aof-use-rdb-preamble"]
        seq = self._take_seq()
        base = aof.AOFInfo(aof.base_name(self.aof_filename, seq, rdb), seq, aof.BASE)
        ks = node.keyspace
        position = self._position()
        stream_db = self._stream_db()
        aof_dir = self.aof_dir

        def job() -> dict[str, Any]:
            tmp = os.path.join(aof_dir, f"temp-rewriteaof-bg-{os.getpid()}.aof")
            return _write_base(ks, tmp, rdb, position, stream_db)

        tmp = os.path.join(aof_dir, "temp-rewriteaof-bg-{pid}.aof")
        if not self._fork("aof", job, tmp, base=base, first_incr=first_incr):
            self._rewrite_failed()
            return False
        assert self.child is not None
        log.info("Background append only file rewriting started by pid %d", self.child.pid)
        return True

    def _rewrite_failed(self) -> None:
        self.aof_last_bgrewrite_status = "err"
        self.aof_rewrite_failures += 1

    def _rewrite_done(self, child: _Child, ok: bool, code: int, elapsed: float, report: dict[str, Any]) -> None:
        base: aof.AOFInfo = child.extra["base"]
        first_incr: int | None = child.extra["first_incr"]
        if ok:
            try:
                os.replace(child.tmp, self._aof_path(base.name))
                fsync_dir(self.aof_dir)
                incrs = [i for i in self.live_incrs if first_incr is not None and i.seq >= first_incr]
                self._write_manifest(aof.Manifest(base, incrs))
            except OSError as e:
                log.error("Can't install the rewritten AOF base %s: %s", base.name, e)
                ok = False
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(child.tmp)
            self._rewrite_failed()
            log.error("Background AOF rewrite error (child exit code %d): %s", code, report.get("error", "see the log"))
            self.aof_last_rewrite_time = int(elapsed)
            return
        assert self.manifest is not None
        self.live_incrs = list(self.manifest.incrs)
        writer = self.writer
        open_path = writer.path if writer is not None else ""
        self.closed_incr_size = sum(
            os.path.getsize(self._aof_path(i.name)) for i in self.live_incrs if self._aof_path(i.name) != open_path
        )
        self.aof_base_size = os.path.getsize(self._aof_path(base.name))
        self.aof_last_bgrewrite_status = "ok"
        self.aof_rewrite_failures = 0
        self.aof_rewrites += 1
        self.aof_last_rewrite_time = int(elapsed)
        self.aof_last_cow = int(report.get("cow", 0))
        if self.aof_state == "wait_rewrite":
            self.aof_state = "on"
            log.info("AOF rewrite of the new dataset done: the append only file is on")
        self._delete_unlisted()
        log.info(
            "Background AOF rewrite terminated with success (%d keys, %.3f s, %d MB of copy-on-write)",
            report.get("keys", 0),
            elapsed,
            self.aof_last_cow >> 20,
        )

    def _start_waiting(self) -> None:
        """The dataset has no base on disk yet (AOF just enabled, or replaced by a full sync)."""
        if self.child is not None and self.child.kind == "aof":
            self.kill_child()  # it writes a base of the data being replaced
        os.makedirs(self.aof_dir, exist_ok=True)
        if self._next_seq <= 1:
            self._next_seq = self._max_seq_on_disk() + 1
        info, fd = self._new_incr()
        node = self.node
        if not node.propagating:
            # Writes were not counted meanwhile: the old id's offsets no longer describe the data.
            node.repl.shift_replid()
            node.repl.clear_replid2()
        if self.writer is None:
            self._install_writer(fd, self._aof_path(info.name))
        else:
            self.writer.tx = None
            self.writer.switch_to(fd, self._aof_path(info.name))
            self.node.repl.selected_db = -1
        self.live_incrs = [info]
        self.closed_incr_size = 0
        self.aof_state = "wait_rewrite"
        self.start_rewrite(reuse_incr=True)

    def on_dataset_replaced(self) -> None:
        """A replica loaded a full sync: the old AOF no longer describes the data."""
        if self.aof_state == "off":
            return
        try:
            self._start_waiting()
        except OSError as e:
            log.error("Can't restart the AOF after the full sync: %s", e)
            self._rewrite_failed()

    def _on_appendonly(self, value: bool) -> None:
        if not self.started:
            return
        if value and self.aof_state == "off":
            assert self.loop is not None
            try:
                self._start_waiting()
            except OSError as e:
                raise ConfigError(f"can't open the append only file: {e}") from None
            log.info("AOF enabled: writing its base in the background")
        elif not value and self.aof_state != "off":
            self.stop_aof()

    def stop_aof(self) -> None:
        if self.child is not None and self.child.kind == "aof":
            self.kill_child()
        writer = self.writer
        node = self.node
        node.write_log = None
        node.hold_reply = None
        self.writer = None
        self.aof_state = "off"
        self.aof_rewrite_scheduled = False
        if writer is not None:
            writer.close()
        self.update_refusal()
        log.info("AOF disabled")

    def _on_appendfsync(self, value: str) -> None:
        if self.writer is not None:
            try:
                self.writer.set_policy(value)
            except OSError as e:
                raise ConfigError(f"can't sync the append only file: {e}") from None

    def _on_dir(self, value: str) -> None:
        if (
            self.aof_state != "off"
            and self.writer is not None
            and os.path.dirname(self.writer.path) != os.path.join(value or ".", self.config["appenddirname"])
        ):
            raise ConfigError("can't change dir while appendonly is yes (turn it off, change dir, turn it on)")

    # -- shutdown ------------------------------------------------------------------------------------------

    def prepare_shutdown(self, save: bool | None, force: bool) -> bool:
        """SHUTDOWN / SIGTERM: stop children, sync the AOF, save if asked; False if that failed."""
        node = self.node
        if node.loading:
            save = False  # half a dataset must never replace the snapshot
            self._abort_loading = True
        self.kill_child()
        ok = True
        if self.writer is not None:
            log.info("Calling fsync() on the AOF file.")
            try:
                self.writer.drain(fsync=True)
            except OSError as e:
                log.error("Error flushing the AOF file before exiting: %s", e)
                ok = False
        if save or (save is None and self.config["save"]):
            log.info("Saving the final RDB snapshot before exiting.")
            if not self.save():
                log.error("Error trying to save the DB, can't exit.")
                ok = False
        if not ok and force:
            log.warning("Errors trying to shut down the server, but FORCE: exiting anyway.")
            ok = True
        return ok

    def close(self) -> None:
        """The process is exiting: nothing runs any more."""
        self.kill_child()
        if self.writer is not None:
            self.node.write_log = None
            self.node.hold_reply = None
            self.writer.close()
            self.writer = None

    # -- INFO -------------------------------------------------------------------------------------------------

    def info_fields(self) -> list[tuple[str, Any]]:
        node = self.node
        child = self.child
        now = time.monotonic()
        rdb_child = child is not None and child.kind == "rdb"
        aof_child = child is not None and child.kind == "aof"
        fields: list[tuple[str, Any]] = [("loading", 1 if node.loading else 0), ("async_loading", 0)]
        if node.loading:
            elapsed = time.time() - self.loading_start
            total = self.loading_total or 1
            perc = self.loading_loaded * 100 / total
            eta = int(elapsed * (total - self.loading_loaded) / self.loading_loaded) if self.loading_loaded else 1
            fields += [
                ("loading_start_time", int(self.loading_start)),
                ("loading_total_bytes", self.loading_total),
                ("loading_rdb_used_mem", 0),
                ("loading_loaded_bytes", self.loading_loaded),
                ("loading_loaded_perc", f"{perc:.2f}"),
                ("loading_eta_seconds", eta),
            ]
        fields += [
            ("current_cow_peak", 0),
            ("current_cow_size", 0),
            ("current_cow_size_age", 0),
            ("current_fork_perc", "0.00"),
            ("current_save_keys_processed", 0),
            ("current_save_keys_total", sum(len(db.data) for db in node.keyspace.dbs) if child else 0),
            ("rdb_changes_since_last_save", node.keyspace.dirty),
            ("rdb_bgsave_in_progress", 1 if rdb_child else 0),
            ("rdb_last_save_time", self.lastsave),
            ("rdb_last_bgsave_status", self.lastbgsave_status),
            ("rdb_last_bgsave_time_sec", self.rdb_last_bgsave_time),
            ("rdb_current_bgsave_time_sec", int(now - child.started) if rdb_child and child else -1),
            ("rdb_saves", self.rdb_saves),
            ("rdb_last_cow_size", self.rdb_last_cow),
            ("rdb_last_load_keys_expired", self.rdb_last_load_keys_expired),
            ("rdb_last_load_keys_loaded", self.rdb_last_load_keys_loaded),
            ("aof_enabled", 0 if self.aof_state == "off" else 1),
            ("aof_rewrite_in_progress", 1 if aof_child else 0),
            ("aof_rewrite_scheduled", 1 if self.aof_rewrite_scheduled else 0),
            ("aof_last_rewrite_time_sec", self.aof_last_rewrite_time),
            ("aof_current_rewrite_time_sec", int(now - child.started) if aof_child and child else -1),
            ("aof_last_bgrewrite_status", self.aof_last_bgrewrite_status),
            ("aof_rewrites", self.aof_rewrites),
            ("aof_rewrites_consecutive_failures", self.aof_rewrite_failures),
            ("aof_last_write_status", "err" if self.writer is not None and self.writer.write_error else "ok"),
            ("aof_last_cow_size", self.aof_last_cow),
            ("module_fork_in_progress", 0),
            ("module_fork_last_cow_size", 0),
        ]
        writer = self.writer
        if writer is not None:
            fields += [
                ("aof_current_size", self.aof_current_size()),
                ("aof_base_size", self.aof_base_size),
                ("aof_pending_rewrite", 1 if self.aof_rewrite_scheduled else 0),
                ("aof_buffer_length", writer.pending_bytes),
                ("aof_pending_bio_fsync", 1 if writer.fsync_in_flight or writer.commit_in_flight else 0),
                ("aof_delayed_fsync", 0),
            ]
        return fields


def _rdb_position(aux: dict[bytes, bytes]) -> tuple[str, int, int] | None:
    replid = aux.get(b"repl-id")
    offset = aux.get(b"repl-offset")
    if replid is None or offset is None or len(replid) != 40:
        return None
    try:
        return replid.decode(), int(offset), int(aux.get(b"repl-stream-db", b"0"))
    except ValueError:
        return None


def _write_base(keyspace: Any, tmp: str, rdb: bool, position: dict[str, Any], stream_db: int) -> dict[str, Any]:
    """A base file at ``tmp`` (RDB or commands), fsynced; runs in the rewrite child (or at start-up)."""
    with open(tmp, "wb") as f:
        if rdb:
            writer = RDBWriter(keyspace, snapshot=False, aof_base=True, chunk_size=1 << 20, **position)
            for chunk in writer:
                f.write(chunk)
            keys = writer.keys_written
        else:
            keys = aof.write_command_base(
                keyspace, f, position.get("repl_id"), position.get("repl_offset", -1), stream_db
            )
        f.flush()
        os.fsync(f.fileno())
    return {"keys": keys}
