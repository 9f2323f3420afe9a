"""Per-connection client state, independent of sockets.

A :class:`Client` is what command handlers see. The I/O shell attaches a
``conn`` object with ``write(bytes)`` and ``close()``; in-process callers (tests,
the replication link, scripts) can use a client without any connection.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from kvcluster.common.resp import encode2, encode3

if TYPE_CHECKING:
    from kvcluster.node.commands.table import Command
    from kvcluster.node.core import Node
    from kvcluster.node.keyspace import Database


class ClientConnection(Protocol):
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def output_buffer_size(self) -> int: ...


class Client:
    # Slots keep attribute access fast and catch typos in handlers.
    __slots__ = (
        "addr",
        "authenticated",
        "blocked",
        "close_after_reply",
        "conn",
        "created",
        "db",
        "encode",
        "id",
        "kind",
        "laddr",
        "last_command",
        "last_interaction",
        "lib_name",
        "lib_ver",
        "multi",
        "multi_error",
        "name",
        "no_evict",
        "node",
        "obuf_soft_since",
        "patterns",
        "replica",
        "resp",
        "shard_subscriptions",
        "slow_path",
        "subscriptions",
        "watch_dirty",
        "watched",
        "woff",
    )

    def __init__(self, node: Node, client_id: int, addr: str = "", laddr: str = "", conn: Any = None):
        self.node = node
        self.id = client_id
        self.addr = addr
        self.laddr = laddr
        self.conn: ClientConnection | None = conn
        self.db: Database = node.keyspace.dbs[0]
        self.resp = 2
        self.encode = encode2
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.created = time.time()
        self.last_interaction = time.monotonic()
        self.last_command: Command | None = None  # the last command run (CLIENT LIST cmd=)
        self.authenticated = not node.config["requirepass"]
        # Queued commands while in MULTI (None when not in a transaction).
        self.multi: list[tuple[Any, list[bytes]]] | None = None
        self.multi_error = False
        self.watched: set[tuple[int, bytes]] = set()
        self.watch_dirty = False
        self.subscriptions: set[bytes] = set()
        self.patterns: set[bytes] = set()
        self.shard_subscriptions: set[bytes] = set()
        self.close_after_reply = False
        self.no_evict = False
        # Client class for output buffer limits: normal, pubsub, replica.
        self.kind = "normal"
        # Leader side: the replication state of a replica connected through this client.
        self.replica: Any = None
        # A command is waiting (WAIT, a semi-sync write): the connection reads no further
        # commands until :meth:`unblock` sends its reply.
        self.blocked = False
        self.obuf_soft_since = 0.0
        # The replication offset just after this client's last write (what WAIT waits for).
        self.woff = 0
        self.update_slow_path()

    def update_slow_path(self) -> None:
        """Recompute whether dispatch must take the careful path (auth, MULTI, pub/sub).

        Call after changing any of the state it looks at.
        """
        self.slow_path = (
            not self.authenticated
            or self.multi is not None
            or bool(self.resp == 2 and (self.subscriptions or self.patterns or self.shard_subscriptions))
        )

    def set_resp(self, version: int) -> None:
        self.resp = version
        self.encode = encode3 if version == 3 else encode2
        self.update_slow_path()

    @property
    def in_pubsub(self) -> bool:
        return bool(self.subscriptions or self.patterns or self.shard_subscriptions)

    def push(self, value: Any) -> None:
        """Send an out-of-band reply (pub/sub message, MONITOR line) now."""
        if self.conn is not None:
            self.conn.write(self.encode(value))

    def push_raw(self, data: bytes) -> None:
        if self.conn is not None:
            self.conn.write(data)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def unblock(self, reply: Any) -> None:
        """Send the reply of the command this client waits on and go on with its next commands."""
        if not self.blocked:
            return
        self.blocked = False
        if self.conn is not None:
            self.conn.write(self.encode(reply))
            resume = getattr(self.conn, "resume", None)
            if resume is not None:
                resume()

    def flags_string(self) -> str:
        # Redis's letters, in Redis's order (CLIENT LIST flags=).
        flags = ""
        if self in self.node.monitors:
            flags += "O"
        elif self.kind == "replica":
            flags += "S"
        elif self.kind == "master":
            flags += "M"
        if self.in_pubsub:
            flags += "P"
        if self.multi is not None:
            flags += "x"
        if self.blocked:
            flags += "b"
        if self.watch_dirty:
            flags += "d"
        if self.close_after_reply:
            flags += "c"
        if self.no_evict:
            flags += "e"
        return flags or "N"
