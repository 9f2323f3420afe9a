"""BGSAVE and BGREWRITEAOF of a large dataset: how long do clients wait?

Starts a real ``kvcluster node`` (and with --redis a real redis-server for comparison), fills
it with ``--size-mb`` MB of string values, then runs BGSAVE and BGREWRITEAOF while a client
PINGs in a loop on its own connection and records every round trip. Prints, per operation:
the fork time the node reports (``latest_fork_usec``), the longest PING round trip during the
operation (the pause clients see), the 99th percentile, how long the child took, and the
copy-on-write the child caused.

    .venv/bin/python bench/persistence_pauses.py --size-mb 1024 [--redis] [--json out.json]

Results go to docs/benchmarks.md (with the date, the machine and the size actually run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Conn:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=600)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, *args: bytes | str | int) -> None:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%b\r\n" % (len(b), b))
        self.sock.sendall(b"".join(parts))

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self) -> bytes:
        line = self.line()
        if line[:1] == b"$":
            n = int(line[1:])
            if n < 0:
                return b""
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(1 << 20)
            data, self.buf = self.buf[:n], self.buf[n + 2 :]
            return data
        return line

    def call(self, *args: bytes | str | int) -> bytes:
        self.send(*args)
        return self.reply()

    def info(self, section: str) -> dict[str, str]:
        text = self.call("INFO", section).decode()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = Conn(port)
            if c.call("PING") == b"+PONG":
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("server did not start")


def fill(port: int, size_mb: int, value_size: int) -> int:
    """SET key:N to a value_size-byte value until size_mb MB of values are stored; returns keys."""
    keys = size_mb * 1024 * 1024 // value_size
    c = Conn(port)
    value = os.urandom(value_size // 2).hex().encode()[:value_size]
    batch = 5000
    t0 = time.monotonic()
    for start in range(0, keys, batch):
        n = min(batch, keys - start)
        out = []
        for i in range(start, start + n):
            key = b"key:%d" % i
            out.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(key), key, len(value), value))
        c.sock.sendall(b"".join(out))
        for _ in range(n):
            c.line()
        if start and start % (batch * 40) == 0:
            done = start / keys
            print(f"  filled {done:.0%} ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    return keys


class Pinger(threading.Thread):
    """PINGs in a loop; every round trip with its start time."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.conn = Conn(port)
        self.samples: list[tuple[float, float]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            t = time.perf_counter()
            self.conn.call("PING")
            self.samples.append((t, time.perf_counter() - t))
            time.sleep(0.001)

    def window(self, start: float, end: float) -> list[float]:
        return [d for t, d in self.samples if start <= t <= end]


def measure(port: int, pinger: Pinger, command: str, done_field: str, count_field: str) -> dict[str, Any]:
    c = Conn(port)
    before = int(c.info("persistence").get(count_field, 0))
    time.sleep(0.5)
    t0 = time.perf_counter()
    reply = c.call(command)
    while True:
        p = c.info("persistence")
        if p.get(done_field) == "0" and int(p.get(count_field, 0)) > before:
            break
        time.sleep(0.02)
    t1 = time.perf_counter()
    time.sleep(0.3)
    stats = c.info("stats")
    lat = pinger.window(t0 - 0.05, t1 + 0.2)
    base = pinger.window(t0 - 0.5, t0 - 0.05)
    cow = p.get("rdb_last_cow_size" if command == "BGSAVE" else "aof_last_cow_size", "0")
    return {
        "command": command,
        "reply": reply.decode(),
        "fork_ms": int(stats.get("latest_fork_usec", 0)) / 1000,
        "max_ping_ms": max(lat) * 1000 if lat else None,
        "p99_ping_ms": (statistics.quantiles(lat, n=100)[98] * 1000) if len(lat) > 100 else None,
        "baseline_max_ping_ms": max(base) * 1000 if base else None,
        "pings": len(lat),
        "duration_s": t1 - t0,
        "cow_mb": int(cow) / 2**20,
    }


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_server(kind: str, size_mb: int, value_size: int, workdir: Path) -> dict[str, Any]:
    port = free_port()
    d = workdir / kind
    d.mkdir(parents=True)
    if kind == "kvcluster":
        cmd = [sys.executable, "-m", "kvcluster.cli", "node", "--port", str(port), "--dir", str(d)]
        cmd += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--loglevel", "warning"]
        cmd += ["--auto-aof-rewrite-percentage", "0"]
    else:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (Debian package redis-server)")
        cmd = [binary, "--port", str(port), "--dir", str(d), "--save", "", "--appendonly", "yes"]
        cmd += ["--auto-aof-rewrite-percentage", "0", "--loglevel", "warning"]
    log = open(d / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=d)
    try:
        wait_ready(port, proc)
        t0 = time.monotonic()
        keys = fill(port, size_mb, value_size)
        fill_s = time.monotonic() - t0
        rss = rss_mb(proc.pid)
        print(f"{kind}: {keys} keys of {value_size} bytes filled in {fill_s:.0f} s, RSS {rss:.0f} MB", file=sys.stderr)
        pinger = Pinger(port)
        pinger.start()
        results = [
            measure(port, pinger, "BGSAVE", "rdb_bgsave_in_progress", "rdb_saves"),
            measure(port, pinger, "BGREWRITEAOF", "aof_rewrite_in_progress", "aof_rewrites"),
        ]
        pinger.stop_event.set()
        pinger.join(10)
        return {"server": kind, "keys": keys, "value_size": value_size, "rss_mb": rss, "fill_s": fill_s, "ops": results}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="MB of values to store (default 1024)")
    parser.add_argument("--value-size", type=int, default=1000)
    parser.add_argument("--redis", action="store_true", help="also run a real redis-server, for comparison")
    parser.add_argument("--json", help="write the results here too")
    ns = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT / "node"))
    workdir = Path(tempfile.mkdtemp(prefix="persistence-pauses-"))
    try:
        runs = [run_server("kvcluster", ns.size_mb, ns.value_size, workdir)]
        if ns.redis:
            runs.append(run_server("redis", ns.size_mb, ns.value_size, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\ndataset: {ns.size_mb} MB of {ns.value_size}-byte values; a client PINGs every ~1 ms throughout\n")
    print(f"{'server':10} {'operation':13} {'fork ms':>8} {'max ping ms':>12} {'p99 ms':>7} {'idle max':>9} "
          f"{'child s':>8} {'COW MB':>7}")  # fmt: skip
    for run in runs:
        for op in run["ops"]:
            print(
                f"{run['server']:10} {op['command']:13} {op['fork_ms']:8.1f} {op['max_ping_ms'] or 0:12.1f} "
                f"{op['p99_ping_ms'] or 0:7.2f} {op['baseline_max_ping_ms'] or 0:9.2f} {op['duration_s']:8.1f} "
                f"{op['cow_mb']:7.0f}"
            )
        print(f"{run['server']:10} RSS after fill: {run['rss_mb']:.0f} MB, {run['keys']} keys")
    if ns.json:
        Path(ns.json).write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
