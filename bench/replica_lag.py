#!/usr/bin/env python3
"""Replica lag under a fixed write rate: a leader, one replica, a paced writer.

Starts a ``kvcluster node`` leader and a replica on free ports in temporary directories
(no persistence), writes SETs at ``--rate`` per second for ``--seconds`` (pipelines of
``--batch`` every batch/rate seconds, on one redis-py connection), and samples every 50 ms
how far the replica is behind: the leader's ``master_repl_offset`` minus the replica's
``slave_repl_offset``, in bytes and in writes (bytes / bytes per write). Prints the achieved
rate and lag p50/p99/max. Both nodes are stopped by PID at the end, whatever happens.

Usage::

    python bench/replica_lag.py --rate 50000 --seconds 20
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(directory: str, port: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "kvcluster.cli", "node", "--port", str(port), "--dir", directory]
    cmd += ["--save", "", "--appendonly", "no", *extra]
    log = open(os.path.join(directory, "node.log"), "ab")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def wait_ping(port: int, timeout: float = 20) -> redis.Redis:
    deadline = time.monotonic() + timeout
    while True:
        try:
            c = redis.Redis(port=port, socket_timeout=5)
            c.ping()
            return c
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def info_offset(c: redis.Redis, field: str) -> int:
    return int(c.info("replication")[field])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=int, default=50_000, help="writes per second (default 50000)")
    p.add_argument("--seconds", type=float, default=20.0, help="duration of the load (default 20)")
    p.add_argument("--batch", type=int, default=100, help="writes per pipeline (default 100)")
    p.add_argument("--keys", type=int, default=100_000, help="distinct keys (default 100000)")
    args = p.parse_args()

    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            lport, rport = free_port(), free_port()
            os.makedirs(f"{tmp}/leader")
            os.makedirs(f"{tmp}/replica")
            procs.append(start(f"{tmp}/leader", lport))
            leader = wait_ping(lport)
            procs.append(start(f"{tmp}/replica", rport, "--replicaof", "127.0.0.1", str(lport)))
            replica = wait_ping(rport)
            deadline = time.monotonic() + 20
            while replica.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise RuntimeError("the replica did not connect")
                time.sleep(0.05)

            samples: list[int] = []
            done = threading.Event()

            def sample() -> None:
                lc = redis.Redis(port=lport, socket_timeout=5)
                rc = redis.Redis(port=rport, socket_timeout=5)
                while not done.is_set():
                    samples.append(info_offset(lc, "master_repl_offset") - info_offset(rc, "slave_repl_offset"))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            value = b"x" * 16
            written = 0
            start_t = time.monotonic()
            interval = args.batch / args.rate
            next_t = start_t
            while time.monotonic() - start_t < args.seconds:
                pipe = leader.pipeline(transaction=False)
                for i in range(args.batch):
                    pipe.set(b"key:%d" % ((written + i) % args.keys), value)
                pipe.execute()
                written += args.batch
                next_t += interval
                pause = next_t - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            elapsed = time.monotonic() - start_t
            # Catch-up time after the load stops.
            target = info_offset(leader, "master_repl_offset")
            t0 = time.monotonic()
            while info_offset(replica, "slave_repl_offset") < target and time.monotonic() - t0 < 120:
                time.sleep(0.01)
            catch_up = time.monotonic() - t0
            done.set()
            sampler.join(5)
            per_write = len(b"*3\r\n$3\r\nSET\r\n$10\r\nkey:000000\r\n$16\r\n") + 16 + 2
            lags = sorted(samples)
            p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
            print(f"rate asked {args.rate}/s, achieved {written / elapsed:,.0f}/s over {elapsed:.1f} s")
            p50 = statistics.median(lags)
            print(
                f"replica lag: p50 {p50:,.0f} B (~{p50 / per_write:,.0f} writes), "
                f"p99 {p99:,} B (~{p99 / per_write:,.0f} writes), max {lags[-1]:,} B; "
                f"caught up {catch_up * 1000:.0f} ms after the load ended"
            )
        finally:
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
