"""``kvcluster bench``: a load generator for any Redis-compatible server, that can follow failovers.

``-c`` connections (redis-py asyncio connections, one task each) send GET/SET mixed by ``--ratio``
on random keys of ``--keyspace``, ``-P`` at a time (pipelined), for ``--duration`` seconds, then
stop by themselves. Every reply's latency goes into :class:`~kvcluster.tools.bench_core.Recorder`
(histograms per sample interval). With ``--sentinel``, a watcher asks the sentinels for the leader
ten times a second, records each change, and the connections move to the new leader (also at
once when their connection breaks or a write is refused with READONLY/FENCED), so the run shows
what a failover costs: the errors per second and how long no operation succeeded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import redis.asyncio
import redis.exceptions
from kvcluster.tools.bench_core import Recorder, is_read, parse_ratio
from kvcluster.tools.resp import format_address, parse_address

Address = tuple[str, int]
# A write refused without being run because the server is no longer the leader.
_MOVED = ("READONLY", "FENCED")


@dataclass
class BenchOptions:
    host: str = "127.0.0.1"
    port: int = 6379
    sentinels: list[Address] = field(default_factory=list)
    group: str = "mymaster"
    password: str | None = None
    connections: int = 50
    pipeline: int = 1
    ratio: tuple[int, int] = (1, 1)
    value_size: int = 64
    keyspace: int = 10000
    duration: float = 10.0
    interval: float = 1.0
    timeout: float = 2.0
    key_prefix: str = "bench:"
    seed: int = 0

    def describe(self) -> str:
        reads, writes = self.ratio
        mix = "GET only" if not writes else "SET only" if not reads else f"GET:SET {reads}:{writes}"
        if self.sentinels:
            where = f"leader of {self.group} via {', '.join(format_address(*s) for s in self.sentinels)}"
        else:
            where = format_address(self.host, self.port)
        return (
            f"{where}: {self.connections} connections, pipeline {self.pipeline}, {mix}, "
            f"{self.value_size}-byte values, {self.keyspace} keys, {self.duration:g} s"
        )

    def to_json(self) -> dict[str, Any]:
        target: dict[str, Any]
        if self.sentinels:
            target = {"sentinels": [format_address(*s) for s in self.sentinels], "group": self.group}
        else:
            target = {"address": format_address(self.host, self.port)}
        return {
            "target": target,
            "connections": self.connections,
            "pipeline": self.pipeline,
            "ratio": {"reads": self.ratio[0], "writes": self.ratio[1]},
            "value_size": self.value_size,
            "keyspace": self.keyspace,
            "duration_s": self.duration,
            "interval_s": self.interval,
        }


class LeaderWatch:
    """Where the connections should go: a fixed address, or the leader the sentinels name."""

    def __init__(self, options: BenchOptions, recorder: Recorder, clock: Callable[[], float]):
        self.options = options
        self.recorder = recorder
        self.clock = clock
        self.address: Address | None = None if options.sentinels else (options.host, options.port)
        self.changed = asyncio.Event()
        self._clients: dict[Address, redis.asyncio.Redis] = {}

    def _client(self, sentinel: Address, password: str | None) -> redis.asyncio.Redis:
        client = self._clients.get(sentinel)
        if client is None:
            timeout = min(1.0, self.options.timeout)
            client = redis.asyncio.Redis(
                host=sentinel[0], port=sentinel[1], password=password, socket_timeout=timeout,
                socket_connect_timeout=timeout, decode_responses=True,
            )  # fmt: skip
            self._clients[sentinel] = client
        return client

    async def ask(self) -> Address | None:
        for sentinel in self.options.sentinels:
            for password in (None, self.options.password):
                try:
                    reply = await self._client(sentinel, password).execute_command(
                        "SENTINEL", "get-master-addr-by-name", self.options.group
                    )
                except redis.exceptions.AuthenticationError:
                    client = self._clients.pop(sentinel)
                    await client.aclose()
                    if password is None and self.options.password:
                        continue
                    break
                except (redis.exceptions.RedisError, OSError):
                    break
                if reply:
                    return reply[0], int(reply[1])
                break
        return None

    def _set(self, address: Address) -> None:
        self.recorder.leader_changed(self.clock(), format_address(*address))
        if address != self.address:
            self.address = address
            self.changed.set()
            self.changed = asyncio.Event()

    async def start(self) -> None:
        if self.options.sentinels:
            address = await self.ask()
            if address is None:
                raise SystemExit(f"kvcluster bench: no sentinel names the leader of {self.options.group!r}")
            self._set(address)

    async def run(self, stop_at: float) -> None:
        while self.options.sentinels and self.clock() < stop_at:
            await asyncio.sleep(0.1)
            address = await self.ask()
            if address is not None:
                self._set(address)

    async def close(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()


class Worker:
    """One connection: sends batches of ``pipeline`` commands until the end of the run."""

    def __init__(self, number: int, options: BenchOptions, watch: LeaderWatch, recorder: Recorder, clock: Callable):
        self.options = options
        self.watch = watch
        self.recorder = recorder
        self.clock = clock
        self.rng = random.Random(options.seed * 100003 + number)
        self.value = bytes(self.rng.randrange(97, 123) for _ in range(options.value_size))
        self.op_number = number  # so connections do not all start with the same kind of operation
        self.conn: redis.asyncio.Connection | None = None
        self.address: Address | None = None

    async def _connect(self) -> redis.asyncio.Connection:
        address = self.watch.address
        assert address is not None
        conn = redis.asyncio.Connection(
            host=address[0], port=address[1], password=self.options.password,
            socket_timeout=self.options.timeout, socket_connect_timeout=self.options.timeout,
        )  # fmt: skip
        await conn.connect()
        self.conn, self.address = conn, address
        return conn

    async def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.disconnect()
        self.conn = None

    async def run(self, stop_at: float) -> None:
        backoff = 0.02
        while self.clock() < stop_at:
            if self.conn is not None and self.address != self.watch.address:
                await self._drop()  # the sentinels moved the leader: follow it
            try:
                conn = self.conn or await self._connect()
                moved = await self._batch(conn)
                backoff = 0.02
            except (redis.exceptions.RedisError, OSError) as e:  # connection lost, refused, timed out...
                self.recorder.error(self.clock(), type(e).__name__, self.options.pipeline)
                moved = True
            if moved:
                await self._drop()
                if self.options.sentinels:
                    # Wait for the sentinels to name a leader (or a little while), rather than spin.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.watch.changed.wait(), timeout=backoff)
                else:
                    await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
        await self._drop()

    async def _batch(self, conn: redis.asyncio.Connection) -> bool:
        """Send one batch and read its replies; True when the server says it is not the leader."""
        commands, reads = [], []
        for _ in range(self.options.pipeline):
            key = f"{self.options.key_prefix}{self.rng.randrange(self.options.keyspace)}"
            read = is_read(self.op_number, self.options.ratio)
            self.op_number += 1
            commands.append(("GET", key) if read else ("SET", key, self.value))
            reads.append(read)
        sent = time.perf_counter_ns()
        await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
        moved = False
        for read in reads:
            try:
                await conn.read_response()
            except redis.exceptions.ResponseError as e:
                message = str(e)
                self.recorder.error(self.clock(), message.split(" ", 1)[0] or type(e).__name__)
                moved = moved or isinstance(e, redis.exceptions.ReadOnlyError) or message.startswith(_MOVED)
                continue
            self.recorder.success(self.clock(), (time.perf_counter_ns() - sent) // 1000, read)
        return moved


class Progress:
    """Once per sample interval: a rich progress line on a terminal, else a plain line."""

    def __init__(self, options: BenchOptions, recorder: Recorder, out: TextIO | None):
        self.options = options
        self.recorder = recorder
        self.out = out
        self.bar: Any = None
        if out is not None and out.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("[bold]bench[/]"),
                BarColumn(),
                TextColumn("{task.completed:>4.0f}/{task.total:.0f} s"),
                TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(),
                console=Console(file=out),
                transient=True,
            )
            self.task = self.bar.add_task("bench", total=options.duration, status="connecting")
            self.bar.start()

    def update(self, elapsed: float) -> None:
        done = [s for s in self.recorder.samples if s.start + s.length <= elapsed]
        if not done:
            return
        last = done[-1]
        p99 = last.latency.percentile(99) / 1000
        rate, errors = last.ops / last.length, last.errors / last.length
        status = f"{rate:>9,.0f} ops/s  p99 {p99:7.2f} ms  {errors:>6,.0f} errors/s"
        if self.options.sentinels:
            status += f"  leader {self.recorder.leader}"
        if self.bar is not None:
            self.bar.update(self.task, completed=min(elapsed, self.options.duration), status=status)
        elif self.out is not None:
            self.out.write(f"{last.start + last.length:6.1f} s {status}\n")
            self.out.flush()

    def advance(self, elapsed: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=min(elapsed, self.options.duration))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


async def run_bench(options: BenchOptions, progress_out: TextIO | None = None) -> Recorder:
    clock = time.monotonic
    start = clock()
    recorder = Recorder(start, options.interval)
    watch = LeaderWatch(options, recorder, clock)
    progress = Progress(options, recorder, progress_out)
    try:
        await watch.start()
        stop_at = start + options.duration
        workers = [Worker(i, options, watch, recorder, clock) for i in range(options.connections)]
        tasks = [asyncio.create_task(w.run(stop_at)) for w in workers]
        watcher = asyncio.create_task(watch.run(stop_at))
        reported = 0
        while clock() < stop_at:
            await asyncio.sleep(min(0.1, max(0.0, stop_at - clock())))
            progress.advance(clock() - start)
            now_interval = int((clock() - start) // options.interval)
            if now_interval > reported:
                reported = now_interval
                progress.update(clock() - start)
        # In-flight batches end within the socket timeout; anything still stuck is cancelled.
        _, pending = await asyncio.wait([*tasks, watcher], timeout=options.timeout + 1.0)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        recorder.finish(clock(), planned_end=stop_at)
    finally:
        progress.close()
        await watch.close()
    return recorder


def report_text(options: BenchOptions, recorder: Recorder, plot_path: str | None) -> str:
    s = recorder.summary()
    lat = s["latency_ms"]
    lines = [
        f"kvcluster bench: {options.describe()}",
        f"  throughput  {s['ops']:,} ops in {s['elapsed_s']:.1f} s = {s['ops_per_sec']:,.0f} ops/s "
        f"({s['reads']:,} GET, {s['writes']:,} SET)",
        f"  latency     p50 {lat['p50']:.3f} ms  p95 {lat['p95']:.3f} ms  p99 {lat['p99']:.3f} ms  "
        f"max {lat['max']:.3f} ms",
    ]
    if s["errors"]:
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in s["errors_by_kind"].items())
        lines.append(f"  errors      {s['errors']:,} ({kinds})")
    else:
        lines.append("  errors      0")
    for change in recorder.leader_changes:
        lines.append(f"  failover    at {change.at:.1f} s: leader {change.old} -> {change.new}")
    for outage in recorder.outages:
        lines.append(
            f"  outage      no operation succeeded for {outage.seconds:.2f} s "
            f"({outage.start:.1f} s to {outage.end:.1f} s)"
        )
    if plot_path:
        lines.append(f"  plot        {plot_path}")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kvcluster bench",
        description=(
            "A load generator for kvcluster or any Redis-compatible server: GET/SET on random keys from many "
            "connections for a fixed time; prints ops/s and latency percentiles. With --sentinel it follows the "
            "leader through failovers and records them; --plot draws throughput and latency over time."
        ),
        epilog="Example: kvcluster bench --sentinel 127.0.0.1:26379 --duration 30 --plot bench.png",
        add_help=False,
        allow_abbrev=False,
    )
    parser.add_argument("--help", action="help", help="show this help message and exit")
    parser.add_argument("-h", dest="host", default="127.0.0.1", metavar="HOST", help="server host (127.0.0.1)")
    parser.add_argument("-p", dest="port", type=int, default=6379, metavar="PORT", help="server port (6379)")
    parser.add_argument(
        "--sentinel", action="append", default=[], metavar="HOST:PORT",
        help="a sentinel to ask for the leader (repeat, or comma-separate); the bench then follows failovers",
    )  # fmt: skip
    parser.add_argument("--name", default="mymaster", help="the sentinel group (mymaster)")
    parser.add_argument("-a", dest="password", metavar="PASSWORD", help="password of the server (and sentinels)")
    parser.add_argument("-c", dest="connections", type=int, default=50, metavar="N", help="connections (50)")
    parser.add_argument("-P", dest="pipeline", type=int, default=1, metavar="N", help="commands per batch (1)")
    parser.add_argument("--ratio", default="1:1", metavar="READS:WRITES", help="GET to SET mix (1:1)")
    parser.add_argument("-d", dest="value_size", type=int, default=64, metavar="BYTES", help="value size (64)")
    parser.add_argument("--keyspace", type=int, default=10000, metavar="N", help="number of distinct keys (10000)")
    parser.add_argument("--duration", type=float, default=10.0, metavar="SECONDS", help="how long to run (10)")
    parser.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="length of each sample in the report (1)"
    )
    parser.add_argument(
        "--timeout", type=float, default=2.0, metavar="SECONDS", help="connect/reply timeout per connection (2)"
    )
    parser.add_argument("--key-prefix", default="bench:", metavar="PREFIX", help="prefix of the keys (bench:)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for keys and values (0)")
    parser.add_argument("--plot", metavar="OUT.png", help="draw throughput and latency over time into a PNG")
    parser.add_argument("--json", action="store_true", help="print the results (with every sample) as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output while running")
    return parser


def options_from_args(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> BenchOptions:
    try:
        ratio = parse_ratio(ns.ratio)
        sentinels = [parse_address(p, 26379) for item in ns.sentinel for p in item.replace(",", " ").split()]
    except ValueError as e:
        parser.error(str(e))
    for name in ("connections", "pipeline", "keyspace"):
        if getattr(ns, name) < 1:
            parser.error(f"{name} must be at least 1")
    if ns.value_size < 0:
        parser.error("the value size cannot be negative")
    for name in ("duration", "interval", "timeout"):
        if getattr(ns, name) <= 0:
            parser.error(f"--{name} must be positive")
    return BenchOptions(
        host=ns.host, port=ns.port, sentinels=sentinels, group=ns.name, password=ns.password,
        connections=ns.connections, pipeline=ns.pipeline, ratio=ratio, value_size=ns.value_size,
        keyspace=ns.keyspace, duration=ns.duration, interval=ns.interval, timeout=ns.timeout,
        key_prefix=ns.key_prefix, seed=ns.seed,
    )  # fmt: skip


def main(argv: list[str]) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    options = options_from_args(parser, ns)
    if ns.plot and importlib.util.find_spec("matplotlib") is None:
        # Checked before the run, not after it: the plot is an optional extra (not in the image).
        parser.error("--plot needs matplotlib: pip install 'kvcluster[plot]' (make up installs it)")
    progress_out = None if ns.quiet else (sys.stderr if ns.json else sys.stdout)
    try:
        recorder = asyncio.run(run_bench(options, progress_out))
    except KeyboardInterrupt:
        print("kvcluster bench: interrupted", file=sys.stderr)
        return 130
    if ns.plot:
        from kvcluster.tools.plot import plot_run

        plot_run(options, recorder, ns.plot)
    if ns.json:
        json.dump({"settings": options.to_json(), **recorder.to_json()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report_text(options, recorder, ns.plot))
    if recorder.ops == 0:
        print("kvcluster bench: no operation succeeded", file=sys.stderr)
        return 1
    return 0
