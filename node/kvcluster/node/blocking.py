"""The waiting room of blocking commands (BLPOP, BLMOVE, BZPOPMIN, ...), sans-I/O.

Redis's ``blocking.c`` bookkeeping without the sockets: which clients wait on which
keys (a FIFO per ``(db, key)``: the client that blocked first is served first), each
waiter's deadline, and the keys a write touched since the last time the node served
waiters (Redis's ``signalKeyAsReady`` / ``server.ready_keys``). The command layer
(:mod:`kvcluster.node.commands.blocking`) decides what serving a waiter means; the
shell only supplies timers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

Slot = tuple[int, bytes]  # (database id, key)


@dataclass(eq=False)
class Waiter:
    """One blocked client: the command it re-runs when a key is ready, and until when it waits."""

    client: Any
    db_id: int
    keys: tuple[bytes, ...]
    args: list[bytes]
    command: Any
    # Monotonic seconds; None waits forever (timeout 0).
    deadline: float | None
    # The shell's timer handle (anything with cancel()), None without a deadline.
    timer: Any = None
    slots: tuple[Slot, ...] = field(init=False)

    def __post_init__(self) -> None:
        # A key named twice (BLPOP k k 0) waits once: dict keeps the first position.
        self.slots = tuple(dict.fromkeys((self.db_id, key) for key in self.keys))


class WaitingRoom:
    """Keys -> FIFO of waiters, client id -> waiter, and the ready keys to serve."""

    def __init__(self) -> None:
        self.by_slot: dict[Slot, deque[Waiter]] = {}
        self.by_client: dict[int, Waiter] = {}
        # Keys written since the last serve, in the order they were signalled, no repeats.
        self.ready: dict[Slot, None] = {}
        # The waiter whose command is being re-run (its handler must not block it a second time).
        self.serving: Waiter | None = None

    def __len__(self) -> int:
        return len(self.by_client)

    def add(self, waiter: Waiter) -> None:
        client_id = waiter.client.id
        if client_id in self.by_client:
            raise ValueError(f"client {client_id} is already blocked")
        self.by_client[client_id] = waiter
        for slot in waiter.slots:
            queue = self.by_slot.get(slot)
            if queue is None:
                queue = self.by_slot[slot] = deque()
            queue.append(waiter)

    def remove(self, waiter: Waiter) -> bool:
        """Forget ``waiter`` (served, timed out, unblocked, gone); False if it was not waiting."""
        if self.by_client.get(waiter.client.id) is not waiter:
            return False
        del self.by_client[waiter.client.id]
        for slot in waiter.slots:
            queue = self.by_slot.get(slot)
            if queue is None:
                continue
            try:
                queue.remove(waiter)
            except ValueError:
                pass
            if not queue:
                del self.by_slot[slot]
        return True

    def waiter_of(self, client_id: int) -> Waiter | None:
        return self.by_client.get(client_id)

    def signal(self, db_id: int, key: bytes) -> None:
        """A write touched ``key``: if anyone waits on it, it is ready to be served."""
        slot = (db_id, key)
        if slot in self.by_slot:
            self.ready[slot] = None

    def signal_db(self, db_id: int) -> None:
        """Every waited key of a database may have changed (SWAPDB)."""
        for slot in self.by_slot:
            if slot[0] == db_id:
                self.ready[slot] = None

    def take_ready(self) -> list[Slot]:
        """The ready keys, oldest signal first; the set starts over empty."""
        ready = list(self.ready)
        self.ready.clear()
        return ready

    def waiters_on(self, slot: Slot) -> list[Waiter]:
        """A snapshot of the FIFO on ``slot`` (serving changes the queue)."""
        queue = self.by_slot.get(slot)
        return list(queue) if queue else []

    def expired(self, now: float) -> list[Waiter]:
        """Waiters whose deadline has passed, in the order they blocked."""
        return [w for w in self.by_client.values() if w.deadline is not None and w.deadline <= now]

    def total_keys(self) -> int:
        return len(self.by_slot)
