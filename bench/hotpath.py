#!/usr/bin/env python3
"""CPU cost of the node's request hot path, without sockets.

Feeds pipelined requests to a real :class:`~kvcluster.node.server.Connection` whose
transport is an in-memory sink, so what is timed is exactly the Python side of a
request: parsing, the dispatch gate, the handler, statistics and reply encoding.
The kernel's share (read/write syscalls, epoll) is not included: compare with the
server CPU per request that ``redis_benchmark_compare.py`` reports to see it.

Usage::

    python bench/hotpath.py                 # GET and SET, pipelines of 1 and 16
    python bench/hotpath.py --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import time

from kvcluster.node.server import Connection, NodeServer
from kvcluster.node.settings import node_config


class SinkTransport(asyncio.Transport):
    """Counts what would have been written; never buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 7000)}.get(name, default)


def request(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def measure(conn: Connection, payload: bytes, commands_per_payload: int, seconds: float) -> float:
    """Nanoseconds of CPU per command, over about ``seconds``."""
    feed = conn.data_received
    rounds = 0
    start = time.process_time_ns()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            feed(payload)
        rounds += 200
    return (time.process_time_ns() - start) / (rounds * commands_per_payload)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=2.0, help="time per case (default 2)")
    p.add_argument("--keys", type=int, default=100_000, help="distinct keys (default 100000)")
    args = p.parse_args()

    server = NodeServer(node_config())
    conn = Connection(server)
    conn.connection_made(SinkTransport())
    keys = [b"key:%012d" % i for i in range(args.keys)]
    for k in keys:
        conn.data_received(request(b"SET", k, b"xxx"))
    print(f"{'case':<18} {'ns/command':>10}")
    for depth in (1, 16):
        for name in (b"GET", b"SET"):
            payloads = []
            for i in range(0, min(len(keys), 20_000), depth):
                batch = keys[i : i + depth]
                if len(batch) < depth:
                    break
                payloads.append(
                    b"".join(request(name, k) if name == b"GET" else request(name, k, b"xxx") for k in batch)
                )
            total_ns = 0.0
            for pl in payloads[:50]:
                total_ns += measure(conn, pl, depth, args.seconds / 50)
            print(f"{name.decode()} -P {depth:<10} {total_ns / 50:>10.0f}")


if __name__ == "__main__":
    main()
